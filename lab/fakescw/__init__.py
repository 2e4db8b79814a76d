"""fakescw: a fake of the Scaleway API, as far as the official Python SDK and our modules see it.

Pure standard library. See README.md in this directory.
"""

from __future__ import annotations

from .app import FakeScaleway
from .backend import Backend, NullBackend
from .catalog import IMAGE_LABELS, LOCAL_IMAGES, SERVER_TYPES, ZONES, local_image_id
from .errors import ApiError

__all__ = [
    "IMAGE_LABELS",
    "LOCAL_IMAGES",
    "SERVER_TYPES",
    "ZONES",
    "ApiError",
    "Backend",
    "FakeScaleway",
    "NullBackend",
    "local_image_id",
]
