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
- ``_scaleway_instance_diff``: the diff, and its prediction in check mode.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    UUID_RE,
    ZONE_RE,
    ScalewayClient,
    ScalewayError,
)
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


def validate(params: dict[str, Any]) -> None:
    """Semantic checks the argument spec cannot express; raise ScalewayError naming the option."""
    if not params["name"] or params["name"].strip() != params["name"]:
        raise ScalewayError("name must be a non-empty string without leading or trailing spaces.")
    zones = params["zone"] or []
    if not zones:
        raise ScalewayError("zone is required: give one zone or an ordered list (or set SCW_DEFAULT_ZONE).")
    for zone in zones:
        if not ZONE_RE.match(zone):
            raise ScalewayError(f"zone: {zone!r} is not a Scaleway zone (expected e.g. fr-par-2).")
    if len(set(zones)) != len(zones):
        raise ScalewayError(f"zone lists a zone twice: {zones}.")
    if params["state"] == "absent":
        return
    # The module's required_if refuses these options when omitted; an empty list or an explicit null passes it.
    if not params["commercial_type"]:
        raise ScalewayError(f"commercial_type is required with state={params['state']}: one type or an ordered list.")
    if not params["image"]:
        raise ScalewayError(f"image is required with state={params['state']}: an image label or a local image ID.")
    size = params["root_volume_size"]
    if size is not None and not 10 <= size <= 10000:
        raise ScalewayError(f"root_volume_size must be between 10 and 10000 (GB), got {size}.")
    for volume in params["extra_volumes"] or []:
        if not UUID_RE.match(volume):
            raise ScalewayError(f"extra_volumes: {volume!r} is not a volume ID (UUID).")
    for network in params["private_networks"] or []:
        if not UUID_RE.match(network):
            raise ScalewayError(f"private_networks: {network!r} is not a private network ID (UUID).")
    if params["wait_timeout"] <= 0:
        raise ScalewayError("wait_timeout must be a positive number of seconds.")


class InstanceManager:
    """Reconciles one instance with the module's parameters by coordinating the parts above."""

    def __init__(self, api: ScalewayClient, params: dict[str, Any], check_mode: bool) -> None:
        self.ctx = InstanceContext(api, params, check_mode)
        self.lookup = InstanceLookup(self.ctx)
        self.power = InstancePower(self.ctx, self.lookup)
        self.teardown = InstanceTeardown(self.ctx, self.lookup, self.power)
        self.reconciler = InstanceReconciler(self.ctx, self.lookup, self.teardown)
        self.placement = InstancePlacement(self.ctx, self.lookup, self.power, self.reconciler, self.teardown)

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

    def run(self) -> dict[str, Any]:
        ctx, params = self.ctx, self.ctx.params
        state = params["state"]
        manage_user_data = params["user_data"] is not None
        server = self.lookup.find()
        user_data_before = self.lookup.user_data(server) if server and manage_user_data else None
        before = snapshot(server, user_data_before)
        if state == "absent":
            self.teardown.teardown(server)
            return {"changed": ctx.changed, "removed": ctx.removed, "diff": {"before": before, "after": {}}}
        if server is None:
            server = self.placement.create()
            created = True
        else:
            server = self.reconciler.update(server, user_data_before)
            created = False
        if server is not None and not (created and state == "running"):
            server = self.power.power(server, state)
        if ctx.check_mode:
            after = predicted(before, params, ctx.placements)
            instance = self.lookup.describe(server) if server is not None else None
        else:
            if server is None:
                raise InstanceError(f"Instance {ctx.name} was not created and no error was reported.")
            after = snapshot(server, self.lookup.user_data(server) if manage_user_data else None)
            instance = self.lookup.describe(server)
        return {
            "changed": ctx.changed,
            "instance": instance,
            "placements": ctx.placements,
            "removed": ctx.removed,
            "diff": {"before": before, "after": after},
        }
