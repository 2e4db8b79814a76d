# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stock-aware placement and creation of an instance (private to the collection).

Each (commercial_type, zone) combination is tried in the order placement_order
gives. One is skipped when the zone does not offer the type, reports a
shortage, has no compatible image or lacks an extra volume; when creation or
the first power-on answers out_of_stock, the next one is tried. Every
combination considered is recorded in the context's ``placements``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import UUID_RE, ScalewayError, to_plain
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    GB,
    InstanceContext,
    InstanceError,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_power import InstancePower
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_reconcile import InstanceReconciler
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_teardown import InstanceTeardown

try:
    from scaleway.instance.v1 import VolumeServerTemplate
except ImportError:  # the module reports the missing SDK
    VolumeServerTemplate = None

# Outcomes recorded for each (commercial_type, zone) placement that was considered.
SKIPPED_OUTCOMES = ("not_offered", "shortage", "no_image", "volumes_elsewhere")


class InstancePlacement:
    """Creates the instance in the first placement that works (predicts it in check mode)."""

    def __init__(
        self,
        ctx: InstanceContext,
        lookup: InstanceLookup,
        power: InstancePower,
        reconciler: InstanceReconciler,
        teardown: InstanceTeardown,
    ) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.lookup = lookup
        self.power = power
        self.reconciler = reconciler
        self.teardown = teardown
        self._availability: dict[str, dict[str, str]] = {}
        self._volumes_in: dict[str, bool] = {}

    def candidates(self) -> list[tuple[str, str]]:
        types = self.ctx.params["commercial_type"]
        zones = self.ctx.zones
        if self.ctx.params["placement_order"] == "zone_first":
            return [(commercial_type, zone) for zone in zones for commercial_type in types]
        return [(commercial_type, zone) for commercial_type in types for zone in zones]

    def availability(self, zone: str) -> dict[str, str]:
        if zone not in self._availability:
            answer = self.api.call(
                f"reading server type availability in {zone}",
                self.api.instance.get_server_types_availability,
                zone=zone,
                per_page=100,
            )
            self._availability[zone] = {
                name: str(to_plain(entry.availability)) for name, entry in (answer.servers or {}).items()
            }
        return self._availability[zone]

    def image_for(self, commercial_type: str, zone: str) -> str | None:
        image = self.ctx.params["image"]
        if UUID_RE.match(image):
            return image
        images = self.api.call(
            f"looking up image label {image!r} in {zone}",
            self.api.marketplace.list_local_images_all,
            image_label=image,
            zone=zone,
            type_="instance_sbs",
        )
        for local in images:
            compatible = local.compatible_commercial_types or []
            if not compatible or commercial_type in compatible:
                return local.id
        return None

    def volumes_in(self, zone: str) -> bool:
        """Whether every extra volume is in this zone (asked once per zone)."""
        if zone not in self._volumes_in:
            self._volumes_in[zone] = all(
                self.api.call_unless_gone(
                    f"reading volume {volume_id}", self.api.block.get_volume, volume_id=volume_id, zone=zone
                )
                is not None
                for volume_id in self.ctx.params["extra_volumes"] or []
            )
        return self._volumes_in[zone]

    def record(self, commercial_type: str, zone: str, outcome: str, message: str = "") -> None:
        self.ctx.placements.append(
            {"commercial_type": commercial_type, "zone": zone, "outcome": outcome, "message": message}
        )

    def tried(self) -> str:
        return "; ".join(
            f"{entry['commercial_type']} in {entry['zone']}: {entry['outcome']}" for entry in self.ctx.placements
        )

    def create(self) -> dict[str, Any] | None:
        """Try each placement in order; return the created server (None in check mode)."""
        ctx = self.ctx
        for commercial_type, zone in self.candidates():
            stock = self.availability(zone)
            if commercial_type not in stock:
                self.record(commercial_type, zone, "not_offered", f"{zone} does not offer {commercial_type}")
                continue
            if stock[commercial_type] == "shortage":
                self.record(commercial_type, zone, "shortage", "the availability endpoint reports a shortage")
                continue
            image_id = self.image_for(commercial_type, zone)
            if image_id is None:
                self.record(
                    commercial_type,
                    zone,
                    "no_image",
                    f"no instance_sbs image labelled {ctx.params['image']!r} for {commercial_type} in {zone}",
                )
                continue
            if not self.volumes_in(zone):
                self.record(commercial_type, zone, "volumes_elsewhere", "an extra volume is not in this zone")
                continue
            ctx.changed = True
            if ctx.check_mode:
                self.record(commercial_type, zone, "would_create")
                return None
            server = self.create_in(commercial_type, zone, image_id)
            if server is not None:
                return server
        raise InstanceError(
            f"Could not create instance {ctx.name}: no placement worked. Tried {self.tried() or 'nothing'}. "
            "Add zones or commercial types, or retry later.",
            kind="no_placement",
        )

    def create_in(self, commercial_type: str, zone: str, image_id: str) -> dict[str, Any] | None:
        """Create in one placement; None when it is out of stock (at creation or first power-on)."""
        ctx, params = self.ctx, self.ctx.params
        root = {"volume_type": "sbs_volume", "boot": True}
        if params["root_volume_size"]:
            root["size"] = params["root_volume_size"] * GB
        volumes: dict[str, Any] = {"0": VolumeServerTemplate(**root)}
        for index, volume_id in enumerate(params["extra_volumes"] or [], start=1):
            volumes[str(index)] = VolumeServerTemplate(id=volume_id, volume_type="sbs_volume")
        kwargs: dict[str, Any] = {
            "zone": zone,
            "commercial_type": commercial_type,
            "name": ctx.name,
            "image": image_id,
            "volumes": volumes,
            "dynamic_ip_required": False,
            "routed_ip_enabled": True,
            "tags": list(params["tags"] or []),
            "project": ctx.project,
        }
        security_group = self.lookup.security_group_id(zone)
        if security_group:
            kwargs["security_group"] = security_group
        try:
            answer = self.api.call(
                f"creating {commercial_type} instance {ctx.name} in {zone}", self.api.instance.create_server, **kwargs
            )
        except ScalewayError as error:
            if error.kind == "out_of_stock":
                self.record(commercial_type, zone, "out_of_stock", error.message)
                return None
            self.record(commercial_type, zone, "failed", error.message)
            raise InstanceError(f"{error.message} Tried so far: {self.tried()}.", error.kind, error.status) from None
        server = to_plain(answer.server)
        self.record(commercial_type, zone, "created")
        self.mark_root_volume(server)
        if params["user_data"] is not None:
            self.reconciler.set_user_data(server)
        for network in params["private_networks"] or []:
            self.reconciler.add_nic(server, network)
        self.reconciler.ensure_public_ip(server)
        server = self.lookup.get(server) or server
        if params["state"] == "running":
            try:
                self.power.action(server, "poweron")
            except ScalewayError as error:
                if error.kind != "out_of_stock":
                    raise
                ctx.placements[-1].update(outcome="out_of_stock", message=f"at power-on: {error.message}")
                self.teardown.teardown(server)
                return None
            server = self.power.wait_state(server, ("running",))
        return server

    def mark_root_volume(self, server: dict[str, Any]) -> None:
        """Tag the new root volume as owned, so teardown finds it even after the server is gone."""
        root = (server.get("volumes") or {}).get("0")
        if not root or root.get("volume_type") != "sbs_volume":
            return
        self.api.call(
            f"tagging the root volume of {self.ctx.name}",
            self.api.block.update_volume,
            volume_id=root["id"],
            zone=server["zone"],
            tags=[self.ctx.owner_tag],
        )
