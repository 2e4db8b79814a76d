# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the scaleway_instance logic shares (private to the collection).

One ``InstanceContext`` per module run holds the API client, the parameters,
check mode, and the three things the result reports whatever happens:
``changed``, the ``placements`` considered and the IDs ``removed``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    OWNER_TAG_PREFIX,
    ScalewayClient,
    ScalewayError,
)

USER_DATA_KEY = "cloud-init"
GB = 1000**3
STABLE_STATES = ("running", "stopped", "stopped in place")


class InstanceError(ScalewayError):
    """A failure after which the result (placements tried, resources removed) is still worth returning."""


def owner_tag(name: str) -> str:
    return f"{OWNER_TAG_PREFIX}{name}"


def digest(text: str | None) -> str | None:
    return None if text is None else "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class InstanceContext:
    """The state of one run, shared by lookup, power, placement, reconciliation and teardown."""

    def __init__(self, api: ScalewayClient, params: dict[str, Any], check_mode: bool) -> None:
        self.api = api
        self.params = params
        self.check_mode = check_mode
        self.name: str = params["name"]
        self.project: str | None = api.project_id
        self.zones: list[str] = params["zone"]
        self.changed = False
        self.placements: list[dict[str, Any]] = []
        self.removed: dict[str, list[str]] = {"servers": [], "volumes": [], "ips": []}

    @property
    def owner_tag(self) -> str:
        """The tag on everything the module creates for this instance."""
        return owner_tag(self.name)
