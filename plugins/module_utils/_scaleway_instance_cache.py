# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The persistent cache volume of the scaleway_instance logic (private to the collection).

A block storage (SBS) volume found by its exact name and the tag
``parrotpark.llm/cache=<name>`` in the listed zones, created once (in the zone
of the first instance that needs it, when no listed zone holds it), attached
to the instance in its zone and kept across sessions: it carries no owner tag
(``parrotpark.llm/instance=...``), so no teardown finds it, and teardown
refuses to delete a volume carrying the cache tag even if someone adds an
owner tag to it. An instance in another zone than the cache's starts without
it, with a warning: a block volume cannot be attached across zones, and a
second cache in another zone would bill twice for a copy of the same files.

Pure decisions (``check_spec``, ``zones_first``, ``attached_to``) are plain
functions with unit tests; ``CacheVolume`` makes the API calls.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    ScalewayError,
    ScalewayInputError,
    to_plain,
    wait_until,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    GB,
    InstanceContext,
    InstanceError,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup

try:
    from scaleway.block.v1 import CreateVolumeRequestFromEmpty
except ImportError:  # the module reports the missing SDK
    CreateVolumeRequestFromEmpty = None

CACHE_TAG_PREFIX = "parrotpark.llm/cache="
# A volume name the tag can carry: letters, digits, dot, dash and underscore, at most 63 characters.
CACHE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
CACHE_MIN_GB = 10
CACHE_MAX_GB = 10000
CACHE_IOPS = (5000, 15000)

# The module's argument spec of the option (suboptions).
CACHE_VOLUME_SPEC: dict[str, Any] = {
    "type": "dict",
    "options": {
        "name": {"type": "str", "required": True},
        "size": {"type": "int", "default": 100},
        "perf_iops": {"type": "int", "choices": list(CACHE_IOPS), "default": 5000},
        "prefer_zone": {"type": "bool", "default": True},
    },
}


def cache_tag(name: str) -> str:
    return f"{CACHE_TAG_PREFIX}{name}"


def is_cache(volume: dict[str, Any]) -> bool:
    """Whether a volume carries a cache tag (then no teardown path may delete it)."""
    return any(str(tag).startswith(CACHE_TAG_PREFIX) for tag in volume.get("tags") or [])


def check_spec(spec: dict[str, Any] | None) -> None:
    """Refuse a cache_volume option that can never work, before any API call, naming the suboption."""
    if spec is None:
        return
    name = spec.get("name")
    if not isinstance(name, str) or not CACHE_NAME_RE.match(name):
        raise ScalewayInputError(
            f"cache_volume.name: {name!r} is not a volume name (1 to 63 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit)."
        )
    size = spec.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not CACHE_MIN_GB <= size <= CACHE_MAX_GB:
        raise ScalewayInputError(
            f"cache_volume.size must be between {CACHE_MIN_GB} and {CACHE_MAX_GB} (GB), got {size!r}."
        )
    if spec.get("perf_iops") not in CACHE_IOPS:
        raise ScalewayInputError(f"cache_volume.perf_iops must be 5000 or 15000, got {spec.get('perf_iops')!r}.")


def zones_first(zones: list[str], preferred: set[str]) -> list[str]:
    """The zones with the preferred ones first, each group in its given order."""
    return [zone for zone in zones if zone in preferred] + [zone for zone in zones if zone not in preferred]


def attached_to(volume: dict[str, Any]) -> list[str]:
    """IDs of the servers a block volume is attached to."""
    return [
        reference.get("product_resource_id")
        for reference in volume.get("references") or []
        if reference.get("product_resource_type") == "instance_server" and reference.get("product_resource_id")
    ]


class CacheVolume:
    """Finds, creates once and attaches the cache volume; reports what happened in ``result``."""

    def __init__(self, ctx: InstanceContext, lookup: InstanceLookup) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.lookup = lookup
        self.spec: dict[str, Any] | None = ctx.params.get("cache_volume")
        self.found: dict[str, dict[str, Any]] = {}  # zone -> the cache volume there
        self.created: set[str] = set()  # IDs created by this run
        self.result: dict[str, Any] | None = None

    @property
    def enabled(self) -> bool:
        return self.spec is not None

    @property
    def name(self) -> str:
        return self.spec["name"] if self.spec else ""

    def locate(self) -> None:
        """Find the cache volume in every listed zone (exact name and tag); two in one zone is an error."""
        if not self.enabled:
            return
        ctx, tag = self.ctx, cache_tag(self.name)
        for zone in ctx.zones:
            volumes = self.api.call(
                f"looking for the cache volume {self.name} in {zone}",
                self.api.block.list_volumes_all,
                include_deleted=False,
                zone=zone,
                project_id=ctx.project,
                name=self.name,
                tags=[tag],
            )
            mine = [
                to_plain(volume)
                for volume in volumes
                if volume.name == self.name
                and tag in (volume.tags or [])
                and (ctx.project is None or volume.project_id == ctx.project)
            ]
            if len(mine) > 1:
                raise InstanceError(
                    f"cache_volume: {len(mine)} volumes are named {self.name!r} with the tag {tag} in {zone} "
                    f"({', '.join(volume['id'] for volume in mine)}). Keep one: delete or rename the others.",
                    kind="duplicate_name",
                )
            if mine:
                self.found[zone] = mine[0]

    def preferred_zones(self) -> set[str]:
        """The zones to try first at creation: where the cache volume is, when prefer_zone is on."""
        if not self.enabled or not self.spec.get("prefer_zone", True):
            return set()
        return set(self.found)

    def report(self, volume: dict[str, Any] | None, zone: str | None, attached: bool, message: str = "") -> None:
        self.result = {
            "name": self.name,
            "id": volume.get("id") if volume else None,
            "zone": zone,
            "size_gb": (volume.get("size") or 0) // GB if volume else self.spec["size"],
            "attached": attached,
            "created": bool(volume and volume.get("id") in self.created) or (volume is None and attached),
            "message": message,
        }

    def ensure(self, server: dict[str, Any] | None, zone: str) -> bool:
        """Attach the cache volume to the server in ``zone`` (None in check mode: predicted), creating it once.

        True when the server was changed (the volume attached to it now).
        """
        if not self.enabled:
            return False
        volume = self.volume_for(zone)
        if volume is None:
            return False
        if server is None:  # check mode, a new instance: the volume would be attached at creation
            free = not attached_to(volume)
            self.report(volume, zone, free)
            self.ctx.changed = self.ctx.changed or free
            return False
        return self.attach(server, volume, zone)

    def volume_for(self, zone: str) -> dict[str, Any] | None:
        """The cache volume of ``zone``, created when no listed zone holds one; None (reported) when there is none."""
        ctx = self.ctx
        volume = self.found.get(zone)
        if volume is not None:
            return volume
        elsewhere = sorted(self.found)
        if elsewhere:
            message = (
                f"The cache volume {self.name} is in {', '.join(elsewhere)}, not in {zone} where instance "
                f"{ctx.name} is: it starts without the cache (a cold start: image pull and model download). "
                "A block volume cannot be attached across zones; a second cache is not created."
            )
            ctx.warn(message)
            self.report(self.found[elsewhere[0]], elsewhere[0], False, message)
            return None
        volume = self.create(zone)
        if volume is None:  # check mode: predicted
            self.report(None, zone, True, "would be created")
        return volume

    def attach(self, server: dict[str, Any], volume: dict[str, Any], zone: str) -> bool:
        """Attach the volume unless it is attached already (no change) or to another server (a warning)."""
        ctx = self.ctx
        holders = attached_to(volume)
        if server.get("id") in holders:
            self.report(volume, zone, True)
            return False
        if holders:
            message = (
                f"The cache volume {self.name} ({volume['id']}) is attached to server {', '.join(holders)}, not to "
                f"instance {ctx.name}: it starts without the cache. Remove the other server (the reaper does) "
                "to free it."
            )
            ctx.warn(message)
            self.report(volume, zone, False, message)
            return False
        ctx.apply(
            f"attaching the cache volume {self.name} ({volume['id']}) to {ctx.name}",
            self.api.instance.attach_server_volume,
            server_id=server["id"],
            volume_id=volume["id"],
            volume_type="sbs_volume",
            zone=zone,
        )
        self.report(volume, zone, True)
        return not ctx.check_mode

    def create(self, zone: str) -> dict[str, Any] | None:
        """Create the cache volume in ``zone`` (None in check mode)."""
        ctx, spec = self.ctx, self.spec
        answer = ctx.apply(
            f"creating the cache volume {self.name} ({spec['size']} GB) in {zone}",
            self.api.block.create_volume,
            zone=zone,
            name=self.name,
            perf_iops=spec["perf_iops"],
            project_id=ctx.project,
            from_empty=CreateVolumeRequestFromEmpty(size=spec["size"] * GB),
            tags=[cache_tag(self.name)],
        )
        if answer is None:
            return None
        volume = to_plain(answer)
        self.created.add(volume["id"])
        self.found[zone] = volume
        if volume.get("status") != "available":  # a new volume is ``creating`` for a moment; attach waits for it
            volume = (
                wait_until(
                    lambda: self.lookup.volume(zone, volume["id"]),
                    lambda now: now is None or now.get("status") != "creating",
                    what=f"the new cache volume {volume['id']} to be available",
                    timeout=ctx.params["wait_timeout"],
                    interval=ctx.params["wait_interval"],
                    describe=lambda now: f"status {now.get('status')!r}" if now else "gone",
                )
                or volume
            )
            self.found[zone] = volume
        return volume

    def discard_new(self, zone: str) -> None:
        """Delete a cache volume this run created in ``zone`` for a placement that was given up (it is empty)."""
        volume = self.found.get(zone)
        if volume is None or volume["id"] not in self.created:
            return
        ctx = self.ctx
        current = wait_until(
            lambda: self.lookup.volume(zone, volume["id"]),
            lambda now: now is None or now.get("status") != "in_use",
            what=f"the new cache volume {volume['id']} to be detached",
            timeout=ctx.params["wait_timeout"],
            interval=ctx.params["wait_interval"],
            describe=lambda now: f"status {now.get('status')!r}" if now else "gone",
        )
        if current is not None:
            try:
                self.api.call(
                    f"deleting the new, empty cache volume {volume['id']}",
                    self.api.block.delete_volume,
                    volume_id=volume["id"],
                    zone=zone,
                )
            except ScalewayError as error:
                if error.status != 404:
                    raise
        del self.found[zone]
        self.created.discard(volume["id"])
        self.result = None

    def kept(self) -> None:
        """After a teardown: report the cache volume, kept and detached (the first zone holding it)."""
        if not self.enabled:
            return
        self.locate()
        zone = next(iter(self.found), None)
        volume = self.found.get(zone) if zone else None
        if volume is None:
            self.report(None, None, False, "no cache volume of that name in the listed zones")
            self.result["size_gb"] = None
            return
        self.report(volume, zone, bool(attached_to(volume)), "kept: teardown never deletes the cache volume")
