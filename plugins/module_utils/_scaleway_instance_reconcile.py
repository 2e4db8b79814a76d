# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconciliation of an instance's mutable properties (private to the collection).

Tags, security group, user data, private NICs, extra volumes and public IPs
are made to match the parameters; in check mode only ``changed`` is set. The
type, image, zone and root volume of an existing instance are never changed.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    USER_DATA_KEY,
    InstanceContext,
    InstanceError,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_teardown import InstanceTeardown

try:
    from scaleway.instance.v1 import SecurityGroupTemplate
except ImportError:  # the module reports the missing SDK
    SecurityGroupTemplate = None


class InstanceReconciler:
    """Brings an existing (or just created) instance's properties to what the parameters ask."""

    def __init__(self, ctx: InstanceContext, lookup: InstanceLookup, teardown: InstanceTeardown) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.lookup = lookup
        self.teardown = teardown

    def update(self, server: dict[str, Any], user_data_before: str | None) -> dict[str, Any]:
        """Reconcile the mutable properties of an existing instance; returns the fresh server."""
        ctx, params = self.ctx, self.ctx.params
        zone = server["zone"]
        if server["commercial_type"] not in params["commercial_type"]:
            raise InstanceError(
                f"Instance {ctx.name} exists in {zone} as {server['commercial_type']}, which is not in "
                f"commercial_type {params['commercial_type']}. The type of an existing instance is not "
                "changed: remove it (state=absent) to recreate it, or list its type.",
                kind="conflict",
            )
        self.teardown.ensure_root_tag(server)
        patch: dict[str, Any] = {}
        wanted_tags = list(params["tags"] or [])
        if sorted(server.get("tags") or []) != sorted(wanted_tags):
            patch["tags"] = wanted_tags
        group = self.lookup.security_group_id(zone)
        if group and (server.get("security_group") or {}).get("id") != group:
            patch["security_group"] = SecurityGroupTemplate(id=group, name=params["security_group"])
        if patch:
            ctx.apply(
                f"updating instance {ctx.name}",
                self.api.instance._update_server,  # the SDK exposes updates only under this name
                server_id=server["id"],
                zone=zone,
                **patch,
            )
        if params["user_data"] is not None and user_data_before != params["user_data"]:
            self.set_user_data(server)
        self.reconcile_nics(server)
        self.reconcile_volumes(server)
        self.ensure_public_ip(server)
        if ctx.check_mode:
            return server
        return self.lookup.get(server) or server

    def set_user_data(self, server: dict[str, Any]) -> None:
        self.ctx.apply(
            f"setting the cloud-init user data of {self.ctx.name}",
            self.api.instance.set_server_user_data,
            server_id=server["id"],
            key=USER_DATA_KEY,
            content=self.ctx.params["user_data"].encode("utf-8"),
            zone=server["zone"],
        )

    def add_nic(self, server: dict[str, Any], network: str) -> None:
        self.ctx.apply(
            f"attaching {self.ctx.name} to private network {network}",
            self.api.instance.create_private_nic,
            server_id=server["id"],
            private_network_id=network,
            zone=server["zone"],
        )

    def reconcile_nics(self, server: dict[str, Any]) -> None:
        ctx = self.ctx
        wanted = ctx.params["private_networks"]
        if wanted is None:
            return
        current = {nic["private_network_id"]: nic for nic in server.get("private_nics") or []}
        for network in wanted:
            if network not in current:
                self.add_nic(server, network)
        for network, nic in current.items():
            if network not in wanted:
                ctx.apply(
                    f"detaching {ctx.name} from private network {network}",
                    self.api.instance.delete_private_nic,
                    server_id=server["id"],
                    private_nic_id=nic["id"],
                    zone=server["zone"],
                )

    def reconcile_volumes(self, server: dict[str, Any]) -> None:
        ctx = self.ctx
        attached = {volume.get("id") for volume in (server.get("volumes") or {}).values()}
        for volume_id in ctx.params["extra_volumes"] or []:
            if volume_id in attached:
                continue
            ctx.apply(
                f"attaching volume {volume_id} to {ctx.name}",
                self.api.instance.attach_server_volume,
                server_id=server["id"],
                volume_id=volume_id,
                volume_type="sbs_volume",
                zone=server["zone"],
            )

    def ensure_public_ip(self, server: dict[str, Any]) -> None:
        """Make the public IPs match the public_ip option; creates/releases only IPs this module owns.

        A given flexible IP is detached with an explicit ``"server": null`` (``ScalewayClient.detach_ip``).
        """
        ctx = self.ctx
        mode = ctx.params["public_ip"]
        zone = server["zone"]
        attached = {entry["id"]: entry for entry in server.get("public_ips") or [] if entry.get("id")}
        owned = {ip["id"]: ip for ip in self.lookup.owned_ips(zone)}
        wanted_id: str | None = None
        if mode not in ("none", "dynamic"):
            wanted_id = self.lookup.flexible_ip_id(mode, zone)
            if wanted_id is None:
                raise self.lookup.public_ip_error([zone])
        keep_owned = mode == "dynamic"
        for ip_id in list(attached):
            if (ip_id in owned and keep_owned) or ip_id == wanted_id or attached[ip_id].get("dynamic"):
                continue
            if ip_id in owned:
                self.teardown.release_ip(zone, ip_id)
            else:
                ctx.apply(f"detaching IP {ip_id} from {ctx.name}", self.api.detach_ip, zone, ip_id)
        if mode == "dynamic" and not any(ip_id in owned for ip_id in attached):
            ctx.apply(
                f"reserving a routed IPv4 for {ctx.name} in {zone}",
                self.api.instance.create_ip,
                zone=zone,
                project=ctx.project,
                type_="routed_ipv4",
                tags=[ctx.owner_tag],
                server=server["id"],
            )
        if wanted_id and wanted_id not in attached:
            ctx.apply(
                f"attaching IP {mode} to {ctx.name}",
                self.api.instance.update_ip,
                ip=wanted_id,
                zone=zone,
                server=server["id"],
            )
