# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of the scaleway_instance module (private to the collection).

Identity is the exact name within a project and one of the given zones.
Everything the module creates for an instance (the root volume, a reserved
public IP) carries the tag ``parrotpark.llm/instance=<name>``; teardown
removes the instance and whatever carries that tag, and never touches
volumes or IPs it was given.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    OWNER_TAG_PREFIX,
    UUID_RE,
    ZONE_RE,
    ScalewayClient,
    ScalewayError,
    list_servers,
    summarize_server,
    to_plain,
    wait_until,
)

try:
    from scaleway.instance.v1 import SecurityGroupTemplate, VolumeServerTemplate
except ImportError:  # the caller reports the missing SDK
    SecurityGroupTemplate = VolumeServerTemplate = None

USER_DATA_KEY = "cloud-init"
GB = 1000**3
STABLE_STATES = ("running", "stopped", "stopped in place")
# Outcomes recorded for each (commercial_type, zone) placement that was considered.
SKIPPED_OUTCOMES = ("not_offered", "shortage", "no_image", "volumes_elsewhere")


class InstanceError(ScalewayError):
    """A failure after which the result (placements tried, resources removed) is still worth returning."""


def owner_tag(name: str) -> str:
    return f"{OWNER_TAG_PREFIX}{name}"


def digest(text: str | None) -> str | None:
    return None if text is None else "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    """Reconciles one instance with the module's parameters."""

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
        self._availability: dict[str, dict[str, str]] = {}
        self._volumes_in: dict[str, bool] = {}
        # User data of the existing instance, read once by run() (when user_data is managed).
        self._user_data_before: str | None = None

    # ------------------------------------------------------------------ lookup

    def find(self) -> dict[str, Any] | None:
        found = []
        for zone in self.zones:
            found.extend(list_servers(self.api, zone, name=self.name, project=self.project))
        if len(found) > 1:
            where = ", ".join(f"{server['id']} in {server['zone']}" for server in found)
            raise ScalewayError(
                f"{len(found)} instances are named {self.name!r} in project {self.project} ({where}). The name is "
                "the identity of an instance: delete the extra ones (state=absent removes all of them)."
            )
        return found[0] if found else None

    def get(self, server: dict[str, Any]) -> dict[str, Any] | None:
        answer = self.api.call_unless_gone(
            f"reading instance {server['id']}",
            self.api.instance.get_server,
            server_id=server["id"],
            zone=server["zone"],
        )
        return None if answer is None else to_plain(answer.server)

    def user_data(self, server: dict[str, Any]) -> str | None:
        keys = self.api.call(
            f"listing user data of {server['id']}",
            self.api.instance.list_server_user_data,
            server_id=server["id"],
            zone=server["zone"],
        )
        if USER_DATA_KEY not in (keys.user_data or []):
            return None
        response = self.api.call(
            f"reading user data of {server['id']}",
            self.api.instance.get_server_user_data,
            server_id=server["id"],
            key=USER_DATA_KEY,
            zone=server["zone"],
        )
        return response.content.decode("utf-8", errors="replace")

    def describe(self, server: dict[str, Any]) -> dict[str, Any]:
        return summarize_server(server, self.api.private_addresses(server))

    # ------------------------------------------------------------------ waits

    def wait_state(self, server: dict[str, Any], wanted: tuple[str, ...]) -> dict[str, Any]:
        if not self.params["wait"]:
            return self.get(server) or server

        def fetch() -> dict[str, Any]:
            current = self.get(server)
            if current is None:
                raise InstanceError(
                    f"Instance {server['id']} disappeared while waiting for it to be {'/'.join(wanted)}."
                )
            return current

        return wait_until(
            fetch,
            lambda current: current["state"] in wanted,
            what=f"instance {self.name} ({server['id']}) to be {' or '.join(wanted)}",
            timeout=self.params["wait_timeout"],
            interval=self.params["wait_interval"],
            describe=lambda current: f"state {current['state']!r} {current.get('state_detail') or ''}".strip(),
        )

    def wait_gone(self, server: dict[str, Any]) -> None:
        wait_until(
            lambda: self.get(server),
            lambda current: current is None,
            what=f"instance {self.name} ({server['id']}) to be deleted",
            timeout=self.params["wait_timeout"],
            interval=self.params["wait_interval"],
            describe=lambda current: f"state {current['state']!r}" if current else "gone",
        )

    def wait_stable(self, server: dict[str, Any]) -> dict[str, Any]:
        if server["state"] in STABLE_STATES:
            return server
        return self.wait_state(server, STABLE_STATES)

    # ------------------------------------------------------------------ power

    def action(self, server: dict[str, Any], action: str) -> None:
        self.api.call(
            f"{action} of instance {self.name} ({server['id']}) in {server['zone']}",
            self.api.instance.server_action,
            server_id=server["id"],
            zone=server["zone"],
            action=action,
        )

    def power(self, server: dict[str, Any], wanted: str) -> dict[str, Any]:
        """Bring an existing instance to running or stopped (present: leave it); returns the fresh server."""
        target = {"running": "running", "stopped": "stopped"}.get(wanted)
        if target is None or server["state"] == target:
            return self.wait_stable(server) if target is None and self.params["wait"] else server
        if server["state"] == ("starting" if target == "running" else "stopping"):
            # Already on its way to the target: nothing to do but wait.
            return server if self.check_mode else self.wait_state(server, (target,))
        self.changed = True
        if self.check_mode:
            return server
        server = self.wait_stable(server)
        if server["state"] != target:
            self.action(server, "poweron" if target == "running" else "poweroff")
        return self.wait_state(server, (target,))

    # ------------------------------------------------------------------ placement

    def candidates(self) -> list[tuple[str, str]]:
        types = self.params["commercial_type"]
        if self.params["placement_order"] == "zone_first":
            return [(commercial_type, zone) for zone in self.zones for commercial_type in types]
        return [(commercial_type, zone) for commercial_type in types for zone in self.zones]

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
        image = self.params["image"]
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
                for volume_id in self.params["extra_volumes"] or []
            )
        return self._volumes_in[zone]

    def record(self, commercial_type: str, zone: str, outcome: str, message: str = "") -> None:
        self.placements.append(
            {"commercial_type": commercial_type, "zone": zone, "outcome": outcome, "message": message}
        )

    def tried(self) -> str:
        return "; ".join(
            f"{entry['commercial_type']} in {entry['zone']}: {entry['outcome']}" for entry in self.placements
        )

    def create(self) -> dict[str, Any] | None:
        """Try each placement in order; return the created server (None in check mode)."""
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
                    f"no instance_sbs image labelled {self.params['image']!r} for {commercial_type} in {zone}",
                )
                continue
            if not self.volumes_in(zone):
                self.record(commercial_type, zone, "volumes_elsewhere", "an extra volume is not in this zone")
                continue
            self.changed = True
            if self.check_mode:
                self.record(commercial_type, zone, "would_create")
                return None
            server = self.create_in(commercial_type, zone, image_id)
            if server is not None:
                return server
        raise InstanceError(
            f"Could not create instance {self.name}: no placement worked. Tried {self.tried() or 'nothing'}. "
            "Add zones or commercial types, or retry later.",
            kind="no_placement",
        )

    def create_in(self, commercial_type: str, zone: str, image_id: str) -> dict[str, Any] | None:
        volumes: dict[str, Any] = {}
        root = {"volume_type": "sbs_volume", "boot": True}
        if self.params["root_volume_size"]:
            root["size"] = self.params["root_volume_size"] * GB
        volumes["0"] = VolumeServerTemplate(**root)
        for index, volume_id in enumerate(self.params["extra_volumes"] or [], start=1):
            volumes[str(index)] = VolumeServerTemplate(id=volume_id, volume_type="sbs_volume")
        kwargs: dict[str, Any] = {
            "zone": zone,
            "commercial_type": commercial_type,
            "name": self.name,
            "image": image_id,
            "volumes": volumes,
            "dynamic_ip_required": False,
            "routed_ip_enabled": True,
            "tags": list(self.params["tags"] or []),
            "project": self.project,
        }
        security_group = self.security_group_id(zone)
        if security_group:
            kwargs["security_group"] = security_group
        try:
            answer = self.api.call(
                f"creating {commercial_type} instance {self.name} in {zone}", self.api.instance.create_server, **kwargs
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
        if self.params["user_data"] is not None:
            self.set_user_data(server)
        for network in self.params["private_networks"] or []:
            self.add_nic(server, network)
        self.ensure_public_ip(server)
        server = self.get(server) or server
        if self.params["state"] == "running":
            try:
                self.action(server, "poweron")
            except ScalewayError as error:
                if error.kind != "out_of_stock":
                    raise
                self.placements[-1].update(outcome="out_of_stock", message=f"at power-on: {error.message}")
                self.teardown(server)
                return None
            server = self.wait_state(server, ("running",))
        return server

    def mark_root_volume(self, server: dict[str, Any]) -> None:
        root = (server.get("volumes") or {}).get("0")
        if not root or root.get("volume_type") != "sbs_volume":
            return
        self.api.call(
            f"tagging the root volume of {self.name}",
            self.api.block.update_volume,
            volume_id=root["id"],
            zone=server["zone"],
            tags=[owner_tag(self.name)],
        )

    # ------------------------------------------------------------------ properties

    def security_group_id(self, zone: str) -> str | None:
        wanted = self.params["security_group"]
        if not wanted:
            return None
        if UUID_RE.match(wanted):
            return wanted
        groups = self.api.call(
            f"listing security groups in {zone}",
            self.api.instance.list_security_groups_all,
            zone=zone,
            project=self.project,
            name=wanted,
        )
        exact = [group for group in groups if group.name == wanted]
        if len(exact) != 1:
            raise InstanceError(
                f"security_group: {len(exact)} security groups are named {wanted!r} in {zone}; give its ID instead."
            )
        return exact[0].id

    def set_user_data(self, server: dict[str, Any]) -> None:
        self.api.call(
            f"setting the cloud-init user data of {self.name}",
            self.api.instance.set_server_user_data,
            server_id=server["id"],
            key=USER_DATA_KEY,
            content=self.params["user_data"].encode("utf-8"),
            zone=server["zone"],
        )

    def add_nic(self, server: dict[str, Any], network: str) -> None:
        self.api.call(
            f"attaching {self.name} to private network {network}",
            self.api.instance.create_private_nic,
            server_id=server["id"],
            private_network_id=network,
            zone=server["zone"],
        )

    def ensure_public_ip(self, server: dict[str, Any]) -> None:
        """Make the public IPs match the public_ip option; creates/releases only IPs this module owns."""
        mode = self.params["public_ip"]
        zone = server["zone"]
        attached = {entry["id"]: entry for entry in server.get("public_ips") or [] if entry.get("id")}
        owned = {ip["id"]: ip for ip in self.owned_ips(zone)}
        wanted_id: str | None = None
        if mode not in ("none", "dynamic"):
            wanted_id = self.resolve_ip(mode, zone)
        keep_owned = mode == "dynamic"
        for ip_id in list(attached):
            if ip_id in owned and keep_owned:
                continue
            if ip_id == wanted_id:
                continue
            if attached[ip_id].get("dynamic"):
                continue
            self.changed = True
            if self.check_mode:
                continue
            if ip_id in owned:
                self.release_ip(zone, ip_id)
            else:
                self.api.call(
                    f"detaching IP {ip_id} from {self.name}",
                    self.api.instance.update_ip,
                    ip=ip_id,
                    zone=zone,
                    server=None,
                )
        if mode == "dynamic" and not any(ip_id in owned for ip_id in attached):
            self.changed = True
            if not self.check_mode:
                self.api.call(
                    f"reserving a routed IPv4 for {self.name} in {zone}",
                    self.api.instance.create_ip,
                    zone=zone,
                    project=self.project,
                    type_="routed_ipv4",
                    tags=[owner_tag(self.name)],
                    server=server["id"],
                )
        if wanted_id and wanted_id not in attached:
            self.changed = True
            if not self.check_mode:
                self.api.call(
                    f"attaching IP {mode} to {self.name}",
                    self.api.instance.update_ip,
                    ip=wanted_id,
                    zone=zone,
                    server=server["id"],
                )

    def resolve_ip(self, wanted: str, zone: str) -> str:
        if UUID_RE.match(wanted):
            return wanted
        ips = self.api.call(
            f"listing flexible IPs in {zone}", self.api.instance.list_ips_all, zone=zone, project=self.project
        )
        for ip in ips:
            if ip.address == wanted:
                return ip.id
        raise InstanceError(f"public_ip: no flexible IP {wanted!r} in {zone} and project {self.project}.")

    def owned_ips(self, zone: str) -> list[dict[str, Any]]:
        ips = self.api.call(
            f"listing IPs owned by {self.name} in {zone}",
            self.api.instance.list_ips_all,
            zone=zone,
            project=self.project,
            tags=[owner_tag(self.name)],
        )
        return [to_plain(ip) for ip in ips if owner_tag(self.name) in (ip.tags or [])]

    def release_ip(self, zone: str, ip_id: str) -> None:
        self.api.call_unless_gone(f"releasing IP {ip_id}", self.api.instance.delete_ip, ip=ip_id, zone=zone)
        self.removed["ips"].append(ip_id)

    def update(self, server: dict[str, Any]) -> dict[str, Any]:
        """Reconcile the mutable properties of an existing instance."""
        zone = server["zone"]
        if server["commercial_type"] not in self.params["commercial_type"]:
            raise InstanceError(
                f"Instance {self.name} exists in {zone} as {server['commercial_type']}, which is not in "
                f"commercial_type {self.params['commercial_type']}. The type of an existing instance is not "
                "changed: remove it (state=absent) to recreate it, or list its type."
            )
        patch: dict[str, Any] = {}
        wanted_tags = list(self.params["tags"] or [])
        if sorted(server.get("tags") or []) != sorted(wanted_tags):
            patch["tags"] = wanted_tags
        group = self.security_group_id(zone)
        if group and (server.get("security_group") or {}).get("id") != group:
            patch["security_group"] = SecurityGroupTemplate(id=group, name=self.params["security_group"])
        if patch:
            self.changed = True
            if not self.check_mode:
                self.api.call(
                    f"updating instance {self.name}",
                    self.api.instance._update_server,  # the SDK exposes updates only under this name
                    server_id=server["id"],
                    zone=zone,
                    **patch,
                )
        if self.params["user_data"] is not None and self._user_data_before != self.params["user_data"]:
            self.changed = True
            if not self.check_mode:
                self.set_user_data(server)
        self.reconcile_nics(server)
        self.reconcile_volumes(server)
        self.ensure_public_ip(server)
        if self.check_mode:
            return server
        return self.get(server) or server

    def reconcile_nics(self, server: dict[str, Any]) -> None:
        wanted = self.params["private_networks"]
        if wanted is None:
            return
        current = {nic["private_network_id"]: nic for nic in server.get("private_nics") or []}
        for network in wanted:
            if network not in current:
                self.changed = True
                if not self.check_mode:
                    self.add_nic(server, network)
        for network, nic in current.items():
            if network not in wanted:
                self.changed = True
                if not self.check_mode:
                    self.api.call(
                        f"detaching {self.name} from private network {network}",
                        self.api.instance.delete_private_nic,
                        server_id=server["id"],
                        private_nic_id=nic["id"],
                        zone=server["zone"],
                    )

    def reconcile_volumes(self, server: dict[str, Any]) -> None:
        attached = {volume.get("id") for volume in (server.get("volumes") or {}).values()}
        for volume_id in self.params["extra_volumes"] or []:
            if volume_id in attached:
                continue
            self.changed = True
            if not self.check_mode:
                self.api.call(
                    f"attaching volume {volume_id} to {self.name}",
                    self.api.instance.attach_server_volume,
                    server_id=server["id"],
                    volume_id=volume_id,
                    volume_type="sbs_volume",
                    zone=server["zone"],
                )

    # ------------------------------------------------------------------ teardown

    def owned_volumes(self, zone: str) -> list[dict[str, Any]]:
        volumes = self.api.call(
            f"listing volumes owned by {self.name} in {zone}",
            self.api.block.list_volumes_all,
            include_deleted=False,
            zone=zone,
            project_id=self.project,
            tags=[owner_tag(self.name)],
        )
        return [to_plain(volume) for volume in volumes if owner_tag(self.name) in (volume.tags or [])]

    def teardown(self, server: dict[str, Any] | None) -> None:
        """Remove the instance (if any), then every volume and IP tagged as owned by this name in every zone."""
        root_ids: set[str] = set()
        if server is not None:
            self.changed = True
            root = (server.get("volumes") or {}).get("0")
            if root and root.get("volume_type") == "sbs_volume":
                root_ids.add(root["id"])
            self.removed["servers"].append(server["id"])
            if not self.check_mode:
                self.delete_server(server)
        for zone in self.zones:
            for ip in self.owned_ips(zone):
                self.changed = True
                if self.check_mode:
                    self.removed["ips"].append(ip["id"])
                else:
                    self.release_ip(zone, ip["id"])
            owned = {volume["id"]: volume for volume in self.owned_volumes(zone)}
            if server is not None and server["zone"] == zone:
                owned.update({volume_id: {"id": volume_id} for volume_id in root_ids if volume_id not in owned})
            for volume_id in owned:
                self.changed = True
                if self.check_mode:
                    self.removed["volumes"].append(volume_id)
                else:
                    self.delete_volume(zone, volume_id)

    def delete_server(self, server: dict[str, Any]) -> None:
        current = self.get(server)
        if current is None:
            return
        if current["state"] in ("starting", "stopping"):
            current = self.wait_state(current, STABLE_STATES)
        if current["state"] != "stopped":
            self.action(current, "poweroff")
            current = self.wait_state(current, ("stopped",))
        self.api.call_unless_gone(
            f"deleting instance {self.name} ({server['id']})",
            self.api.instance.delete_server,
            server_id=server["id"],
            zone=server["zone"],
        )
        self.wait_gone(server)

    def delete_volume(self, zone: str, volume_id: str) -> None:
        def fetch() -> dict[str, Any] | None:
            answer = self.api.call_unless_gone(
                f"reading volume {volume_id}", self.api.block.get_volume, volume_id=volume_id, zone=zone
            )
            return None if answer is None else to_plain(answer)

        volume = wait_until(
            fetch,
            lambda current: current is None or current.get("status") != "in_use",
            what=f"volume {volume_id} to be detached",
            timeout=self.params["wait_timeout"],
            interval=self.params["wait_interval"],
            describe=lambda current: f"status {current.get('status')!r}" if current else "gone",
        )
        if volume is None:
            return
        self.api.call_unless_gone(
            f"deleting volume {volume_id}", self.api.block.delete_volume, volume_id=volume_id, zone=zone
        )
        self.removed["volumes"].append(volume_id)

    # ------------------------------------------------------------------ entry point

    def snapshot(self, server: dict[str, Any] | None, user_data: str | None = None) -> dict[str, Any]:
        """What the diff shows: the properties this module manages (user data only as a digest)."""
        if server is None:
            return {}
        return {
            "name": server.get("name"),
            "zone": server.get("zone"),
            "commercial_type": server.get("commercial_type"),
            "state": server.get("state"),
            "tags": sorted(server.get("tags") or []),
            "security_group_id": (server.get("security_group") or {}).get("id"),
            "private_networks": sorted(nic.get("private_network_id") for nic in server.get("private_nics") or []),
            "volumes": sorted(volume.get("id") or "" for volume in (server.get("volumes") or {}).values()),
            "public_ips": sorted(entry.get("address") or "" for entry in server.get("public_ips") or []),
            "user_data": digest(user_data),
        }

    def predicted(self, before: dict[str, Any]) -> dict[str, Any]:
        """The diff's 'after' in check mode, from the parameters."""
        after = dict(before) if before else {"name": self.name}
        if not before:
            chosen = next((entry for entry in self.placements if entry["outcome"] == "would_create"), None)
            after.update(
                zone=chosen["zone"] if chosen else None,
                commercial_type=chosen["commercial_type"] if chosen else None,
                volumes=["(new root volume)", *sorted(self.params["extra_volumes"] or [])],
                public_ips=["(new routed IPv4)"] if self.params["public_ip"] == "dynamic" else [],
            )
        after["tags"] = sorted(self.params["tags"] or [])
        if self.params["private_networks"] is not None or not before:
            after["private_networks"] = sorted(self.params["private_networks"] or [])
        if self.params["user_data"] is not None:
            after["user_data"] = digest(self.params["user_data"])
        state = self.params["state"]
        if state in ("running", "stopped"):
            after["state"] = state
        elif not before:
            after["state"] = "stopped"
        return after

    def run(self) -> dict[str, Any]:
        state = self.params["state"]
        server = self.find()
        if server and self.params["user_data"] is not None:
            self._user_data_before = self.user_data(server)
        before = self.snapshot(server, self._user_data_before)
        if state == "absent":
            self.teardown(server)
            return {"changed": self.changed, "removed": self.removed, "diff": {"before": before, "after": {}}}
        if server is None:
            server = self.create()
            created = True
        else:
            server = self.update(server)
            created = False
        if server is not None and not (created and state == "running"):
            server = self.power(server, state)
        if self.check_mode:
            after = self.predicted(before)
            instance = self.describe(server) if server is not None else None
        else:
            if server is None:
                raise InstanceError(f"Instance {self.name} was not created and no error was reported.")
            after_user_data = self.user_data(server) if self.params["user_data"] is not None else None
            after = self.snapshot(server, after_user_data)
            instance = self.describe(server)
        return {
            "changed": self.changed,
            "instance": instance,
            "placements": self.placements,
            "removed": self.removed,
            "diff": {"before": before, "after": after},
        }
