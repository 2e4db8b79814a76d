# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stock-aware placement and creation of an instance (private to the collection).

Each (commercial_type, zone) combination is tried in the order placement_order
gives. One is skipped when the zone does not offer the type, reports a
shortage, has no compatible image, lacks an extra volume or lacks the given
flexible IP: every input that can be checked before a create is checked
before it, so nothing billable exists because of bad input. When creation or
the first power-on answers out_of_stock, the next combination is tried; when
creation answers quotas_exceeded, the type's other zones are skipped (quotas
are the organization's, per commercial type) and the next type is tried.
Every combination considered is recorded in the context's ``placements``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    UUID_RE,
    ScalewayError,
    error_hint,
    quota_summary,
    to_plain,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_cache import CacheVolume, zones_first
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
SKIPPED_OUTCOMES = ("not_offered", "shortage", "no_image", "volumes_elsewhere", "ip_elsewhere")


class InstancePlacement:
    """Creates the instance in the first placement that works (predicts it in check mode)."""

    def __init__(
        self,
        ctx: InstanceContext,
        lookup: InstanceLookup,
        power: InstancePower,
        reconciler: InstanceReconciler,
        teardown: InstanceTeardown,
        *,
        cache: CacheVolume,
    ) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.lookup = lookup
        self.power = power
        self.reconciler = reconciler
        self.teardown = teardown
        self.cache = cache
        self._availability: dict[str, dict[str, str]] = {}
        self._images: dict[tuple[str, str], str | None] = {}
        self._missing_volumes: dict[str, list[str]] = {}
        self._public_ip: dict[str, str | None] = {}
        self.quotas_hit: dict[str, ScalewayError] = {}  # commercial type -> its quotas_exceeded error

    def candidates(self) -> list[tuple[str, str]]:
        types = self.ctx.params["commercial_type"]
        # The zone holding the cache volume first (cache_volume.prefer_zone): a warm start there.
        zones = zones_first(self.ctx.zones, self.cache.preferred_zones())
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
        """The image ID to create from (asked once per type and zone); None when the label has none."""
        image = self.ctx.params["image"]
        if UUID_RE.match(image):
            return image
        if (commercial_type, zone) not in self._images:
            images = self.api.call(
                f"looking up image label {image!r} in {zone}",
                self.api.marketplace.list_local_images_all,
                image_label=image,
                zone=zone,
                type_="instance_sbs",
            )
            self._images[(commercial_type, zone)] = next(
                (
                    local.id
                    for local in images
                    if not local.compatible_commercial_types or commercial_type in local.compatible_commercial_types
                ),
                None,
            )
        return self._images[(commercial_type, zone)]

    def missing_volumes(self, zone: str) -> list[str]:
        """The extra volumes that are not in this zone (asked once per zone)."""
        if zone not in self._missing_volumes:
            self._missing_volumes[zone] = [
                volume_id
                for volume_id in self.ctx.params["extra_volumes"] or []
                if self.lookup.volume(zone, volume_id) is None
            ]
        return self._missing_volumes[zone]

    def public_ip_in(self, zone: str) -> str | None:
        """The ID of the given flexible IP in this zone (asked once per zone); None when it is not there."""
        if zone not in self._public_ip:
            self._public_ip[zone] = self.lookup.flexible_ip_id(self.ctx.params["public_ip"], zone)
        return self._public_ip[zone]

    def record(self, commercial_type: str, zone: str, outcome: str, message: str = "") -> None:
        self.ctx.placements.append(
            {"commercial_type": commercial_type, "zone": zone, "outcome": outcome, "message": message}
        )

    def tried(self) -> str:
        return "; ".join(
            f"{entry['commercial_type']} in {entry['zone']}: {entry['outcome']}" for entry in self.ctx.placements
        )

    def skip_reason(self, commercial_type: str, zone: str) -> tuple[str, str] | None:
        """Why this placement cannot work, as (outcome, message); None when it is worth a create."""
        params = self.ctx.params
        stock = self.availability(zone)
        if commercial_type not in stock:
            return "not_offered", f"{zone} does not offer {commercial_type}"
        if stock[commercial_type] == "shortage":
            return "shortage", "the availability endpoint reports a shortage"
        if self.image_for(commercial_type, zone) is None:
            return "no_image", f"no instance_sbs image labelled {params['image']!r} for {commercial_type} in {zone}"
        missing = self.missing_volumes(zone)
        if missing:
            return "volumes_elsewhere", f"extra_volumes not in {zone}: {', '.join(missing)}"
        if params["public_ip"] not in ("dynamic", "none") and self.public_ip_in(zone) is None:
            return "ip_elsewhere", f"public_ip {params['public_ip']!r} is not a flexible IP of the project in {zone}"
        return None

    def create(self) -> dict[str, Any] | None:
        """Try each placement in order; return the created server (None in check mode)."""
        ctx = self.ctx
        for commercial_type, zone in self.candidates():
            if commercial_type in self.quotas_hit:
                continue  # the organization's quota of this type is used up in every zone
            skipped = self.skip_reason(commercial_type, zone)
            if skipped is not None:
                self.record(commercial_type, zone, *skipped)
                continue
            if ctx.check_mode:
                ctx.changed = True
                self.record(commercial_type, zone, "would_create")
                self.cache.ensure(None, zone)
                return None
            server = self.create_in(commercial_type, zone, self.image_for(commercial_type, zone) or "")
            if server is not None:
                return server
        raise self.failure()

    def failure(self) -> InstanceError:
        """The error once no placement worked: the quotas hit, and each option and value that can never work."""
        ctx, params = self.ctx, self.ctx.params
        types = params["commercial_type"]
        zones = ", ".join(ctx.zones)
        quotas = "; ".join(
            f"{name}: {quota_summary(error.details) or error.message}" for name, error in self.quotas_hit.items()
        )
        if set(types) <= set(self.quotas_hit):
            return InstanceError(
                f"Could not create instance {ctx.name}: the quota of every commercial type is used up ({quotas}). "
                f"{error_hint('quotas_exceeded')} Tried {self.tried()}.",
                kind="quotas_exceeded",
            )
        reasons = []
        if quotas:
            reasons.append(f"Quotas used up: {quotas}.")
        for commercial_type in types:
            entries = [entry for entry in ctx.placements if entry["commercial_type"] == commercial_type]
            outcomes = {entry["outcome"] for entry in entries}
            if outcomes == {"not_offered"}:
                reasons.append(f"commercial_type: {commercial_type!r} is not offered in {zones}.")
            elif "no_image" in outcomes and outcomes <= {"not_offered", "no_image"}:
                where = ", ".join(entry["zone"] for entry in entries if entry["outcome"] == "no_image")
                reasons.append(
                    f"image: no instance_sbs image labelled {params['image']!r} for {commercial_type} in {where}."
                )
        if any(entry["outcome"] == "volumes_elsewhere" for entry in ctx.placements):
            for volume_id in params["extra_volumes"] or []:
                if all(volume_id in self.missing_volumes(zone) for zone in ctx.zones):
                    reasons.append(f"extra_volumes: {volume_id!r} is in none of the zones {zones}.")
        if any(entry["outcome"] == "ip_elsewhere" for entry in ctx.placements):
            if all(self.public_ip_in(zone) is None for zone in ctx.zones):
                reasons.append(self.lookup.public_ip_error(ctx.zones).message)
        advice = (
            "Fix the options named above, or add zones or commercial types"
            if reasons
            else "Add zones or commercial types"
        )
        return InstanceError(
            " ".join(
                [
                    f"Could not create instance {ctx.name}: no placement worked.",
                    *reasons,
                    f"Tried {self.tried() or 'nothing'}.",
                    f"{advice}, or retry later.",
                ]
            ),
            kind="no_placement",
        )

    def create_in(self, commercial_type: str, zone: str, image_id: str) -> dict[str, Any] | None:
        """Create in one placement; None when it is out of stock (at creation or first power-on) or over quota."""
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
            if error.kind == "quotas_exceeded":
                self.quotas_hit[commercial_type] = error
                ctx.placements[-1]["message"] = (
                    f"quotas_exceeded: {quota_summary(error.details) or error.message}; the other zones of "
                    f"{commercial_type} are skipped (quotas are the organization's, in every zone)"
                )
                return None
            raise InstanceError(
                f"{error.message} Tried so far: {self.tried()}.", error.kind, error.status, error.details
            ) from None
        ctx.changed = True
        server = to_plain(answer.server)
        self.record(commercial_type, zone, "created")
        self.teardown.ensure_root_tag(server)
        self.cache.ensure(server, zone)
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
                self.teardown.teardown([server])
                self.cache.discard_new(zone)
                return None
            server = self.power.wait_state(server, ("running",))
        return server
