# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of the scaleway_instance module (private to the collection): checks and coordination.

Identity is the exact name within a project and one of the given zones.
Everything the module creates for an instance (the root volume, a reserved
public IP) carries the tag ``parrotpark.llm/instance=<name>``; teardown
removes the instance and whatever carries that tag, and never touches
volumes or IPs it was given.

The work is split by concern, each part sharing one ``InstanceContext``:

- ``_scaleway_instance_lookup``: read-only queries (find by name, owned volumes and IPs, IDs by name);
- ``_scaleway_instance_power``: power actions and bounded waits;
- ``_scaleway_instance_placement``: stock-aware creation across types and zones;
- ``_scaleway_instance_reconcile``: tags, security group, user data, NICs, volumes, public IPs;
- ``_scaleway_instance_teardown``: removal of the instance and what it owns;
- ``_scaleway_instance_cache``: the persistent cache volume (found by name, created once, never deleted);
- ``_scaleway_instance_diff``: the diff, and its prediction in check mode.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    UUID_RE,
    ZONE_RE,
    ScalewayClient,
    ScalewayInputError,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_cache import CacheVolume, check_spec
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    InstanceContext,
    InstanceError,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_diff import predicted, snapshot
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_placement import InstancePlacement
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_power import InstancePower
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_reconcile import InstanceReconciler
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_teardown import InstanceTeardown

# What a commercial type looks like (DEV1-S, L4-1-24G, POP2-HM-2C-16G, RENDER-S): no blanks, no spaces.
COMMERCIAL_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _unique(option: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ScalewayInputError(f"{option} lists {value!r} twice.")
        seen.add(value)


def _public_ip_ok(value: str) -> bool:
    """dynamic, none, a flexible IP's ID (UUID), or its address (IPv4, IPv6 or IPv6 prefix)."""
    if value in ("dynamic", "none") or UUID_RE.match(value):
        return True
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def validate(params: dict[str, Any]) -> None:
    """Semantic checks the argument spec cannot express; raise ScalewayInputError naming the option.

    Everything that can be checked without the API is checked here, before any call.
    """
    if not params["name"] or params["name"].strip() != params["name"]:
        raise ScalewayInputError("name must be a non-empty string without leading or trailing spaces.")
    zones = params["zone"] or []
    if not zones:
        raise ScalewayInputError("zone is required: give one zone or an ordered list (or set SCW_DEFAULT_ZONE).")
    for zone in zones:
        if not ZONE_RE.match(zone):
            raise ScalewayInputError(f"zone: {zone!r} is not a Scaleway zone (expected e.g. fr-par-2).")
    if len(set(zones)) != len(zones):
        raise ScalewayInputError(f"zone lists a zone twice: {zones}.")
    if params["wait_timeout"] <= 0:
        raise ScalewayInputError(f"wait_timeout must be a positive number of seconds, got {params['wait_timeout']}.")
    if params["wait_interval"] <= 0:
        raise ScalewayInputError(
            f"wait_interval must be a positive number of seconds, got {params['wait_interval']:g}."
        )
    check_spec(params.get("cache_volume"))
    if params["state"] == "absent":
        return
    # The module's required_if refuses these options when omitted; an empty list or an explicit null passes it.
    if not params["commercial_type"]:
        raise ScalewayInputError(
            f"commercial_type is required with state={params['state']}: one type or an ordered list."
        )
    for commercial_type in params["commercial_type"]:
        if not COMMERCIAL_TYPE_RE.match(commercial_type or ""):
            raise ScalewayInputError(
                f"commercial_type: {commercial_type!r} is not a commercial type (expected e.g. L4-1-24G)."
            )
    _unique("commercial_type", params["commercial_type"])
    if not params["image"]:
        raise ScalewayInputError(f"image is required with state={params['state']}: an image label or a local image ID.")
    size = params["root_volume_size"]
    if size is not None and not 10 <= size <= 10000:
        raise ScalewayInputError(f"root_volume_size must be between 10 and 10000 (GB), got {size}.")
    for volume in params["extra_volumes"] or []:
        if not UUID_RE.match(volume):
            raise ScalewayInputError(f"extra_volumes: {volume!r} is not a volume ID (UUID).")
    _unique("extra_volumes", params["extra_volumes"] or [])
    for network in params["private_networks"] or []:
        if not UUID_RE.match(network):
            raise ScalewayInputError(f"private_networks: {network!r} is not a private network ID (UUID).")
    _unique("private_networks", params["private_networks"] or [])
    if params["security_group"] is not None and not params["security_group"].strip():
        raise ScalewayInputError("security_group must not be empty: give a security group ID or name, or omit it.")
    if not _public_ip_ok(params["public_ip"]):
        raise ScalewayInputError(
            f"public_ip: {params['public_ip']!r} is not dynamic, none, or the ID (UUID) or address of a flexible IP."
        )


class InstanceManager:
    """Reconciles one instance with the module's parameters by coordinating the parts above."""

    def __init__(self, api: ScalewayClient, params: dict[str, Any], check_mode: bool) -> None:
        self.ctx = InstanceContext(api, params, check_mode)
        self.lookup = InstanceLookup(self.ctx)
        self.power = InstancePower(self.ctx, self.lookup)
        self.teardown = InstanceTeardown(self.ctx, self.lookup, self.power)
        self.reconciler = InstanceReconciler(self.ctx, self.lookup, self.teardown)
        self.cache = CacheVolume(self.ctx, self.lookup)
        self.placement = InstancePlacement(
            self.ctx, self.lookup, self.power, self.reconciler, self.teardown, cache=self.cache
        )

    # What the module returns on failure too.
    @property
    def changed(self) -> bool:
        return self.ctx.changed

    @property
    def placements(self) -> list[dict[str, Any]]:
        return self.ctx.placements

    @property
    def removed(self) -> dict[str, list[str]]:
        return self.ctx.removed

    @property
    def warnings(self) -> list[str]:
        return self.ctx.warnings

    def run(self) -> dict[str, Any]:
        ctx, params = self.ctx, self.ctx.params
        state = params["state"]
        manage_user_data = params["user_data"] is not None
        if state == "absent":
            # Every copy of a duplicated name goes too: that is what the duplicate-name error advises.
            servers = self.lookup.find_all()
            before = snapshot(servers[0]) if len(servers) == 1 else {}
            if len(servers) > 1:
                before = {"copies": [snapshot(server) for server in servers]}
            self.teardown.teardown(servers)
            self.cache.kept()
            return {
                "changed": ctx.changed,
                "removed": ctx.removed,
                "cache_volume": self.cache.result,
                "diff": {"before": before, "after": {}},
            }
        self.cache.locate()
        server = self.lookup.find()
        user_data_before = self.lookup.user_data(server) if server and manage_user_data else None
        before = snapshot(server, user_data_before)
        if server is None:
            server = self.placement.create()
            created = True
        else:
            server = self.reconciler.update(server, user_data_before)
            if self.cache.ensure(server, server["zone"]):
                server = self.lookup.get(server) or server
            created = False
        if server is not None and not (created and state == "running"):
            server = self.power.power(server, state)
        if ctx.check_mode:
            after = predicted(before, params, ctx.placements)
            instance = self.lookup.describe(server) if server is not None else None
        else:
            if server is None:
                raise InstanceError(f"Instance {ctx.name} was not created and no error was reported.", kind="error")
            after = snapshot(server, self.lookup.user_data(server) if manage_user_data else None)
            instance = self.lookup.describe(server)
        return {
            "changed": ctx.changed,
            "instance": instance,
            "placements": ctx.placements,
            "removed": ctx.removed,
            "cache_volume": self.cache.result,
            "diff": {"before": before, "after": after},
        }
