# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the scaleway_instance logic shares (private to the collection).

One ``InstanceContext`` per module run holds the API client, the parameters,
check mode, and what the result reports whatever happens: ``changed``, the
``placements`` considered, the IDs ``removed`` and the ``warnings``.

``changed`` is exact on failures too: a change counts once its API call has
succeeded (in check mode, once it is predicted), never before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    OWNER_TAG_PREFIX,
    ScalewayClient,
    ScalewayError,
)

T = TypeVar("T")

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
        self.organization: str | None = api.organization_id
        self.zones: list[str] = params["zone"]
        self.changed = False
        self.placements: list[dict[str, Any]] = []
        self.removed: dict[str, list[str]] = {"servers": [], "volumes": [], "ips": []}
        self.warnings: list[str] = []

    @property
    def owner_tag(self) -> str:
        """The tag on everything the module creates for this instance."""
        return owner_tag(self.name)

    def apply(self, what: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Make one change: in check mode only predicted (nothing is called), else called, then counted."""
        if self.check_mode:
            self.changed = True
            return None
        result = self.api.call(what, func, *args, **kwargs)
        self.changed = True
        return result

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
