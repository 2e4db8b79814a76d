# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only queries of the scaleway_instance logic (private to the collection).

Finding the instance by its exact name, reading it and its user data, the
volumes and IPs it owns (by tag), and resolving a security group or a
flexible IP given by name or address to its ID. Nothing here changes anything.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    UUID_RE,
    ScalewayError,
    list_servers,
    summarize_server,
    to_plain,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    USER_DATA_KEY,
    InstanceContext,
    InstanceError,
)


class InstanceLookup:
    """Queries about the instance named in the context."""

    def __init__(self, ctx: InstanceContext) -> None:
        self.ctx = ctx
        self.api = ctx.api

    def find(self) -> dict[str, Any] | None:
        ctx = self.ctx
        found = []
        for zone in ctx.zones:
            found.extend(list_servers(self.api, zone, name=ctx.name, project=ctx.project))
        if len(found) > 1:
            where = ", ".join(f"{server['id']} in {server['zone']}" for server in found)
            raise ScalewayError(
                f"{len(found)} instances are named {ctx.name!r} in project {ctx.project} ({where}). The name is "
                "the identity of an instance: delete the extra ones (state=absent removes all of them)."
            )
        return found[0] if found else None

    def get(self, server: dict[str, Any]) -> dict[str, Any] | None:
        """The server as it is now, or None when it is gone."""
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

    def owned_ips(self, zone: str) -> list[dict[str, Any]]:
        tag = self.ctx.owner_tag
        ips = self.api.call(
            f"listing IPs owned by {self.ctx.name} in {zone}",
            self.api.instance.list_ips_all,
            zone=zone,
            project=self.ctx.project,
            tags=[tag],
        )
        return [to_plain(ip) for ip in ips if tag in (ip.tags or [])]

    def owned_volumes(self, zone: str) -> list[dict[str, Any]]:
        tag = self.ctx.owner_tag
        volumes = self.api.call(
            f"listing volumes owned by {self.ctx.name} in {zone}",
            self.api.block.list_volumes_all,
            include_deleted=False,
            zone=zone,
            project_id=self.ctx.project,
            tags=[tag],
        )
        return [to_plain(volume) for volume in volumes if tag in (volume.tags or [])]

    def security_group_id(self, zone: str) -> str | None:
        """The ID of the security_group option (an ID or an exact name), None when it is not given."""
        wanted = self.ctx.params["security_group"]
        if not wanted:
            return None
        if UUID_RE.match(wanted):
            return wanted
        groups = self.api.call(
            f"listing security groups in {zone}",
            self.api.instance.list_security_groups_all,
            zone=zone,
            project=self.ctx.project,
            name=wanted,
        )
        exact = [group for group in groups if group.name == wanted]
        if len(exact) != 1:
            raise InstanceError(
                f"security_group: {len(exact)} security groups are named {wanted!r} in {zone}; give its ID instead."
            )
        return exact[0].id

    def flexible_ip_id(self, wanted: str, zone: str) -> str:
        """The ID of a flexible IP given by ID or address (the public_ip option)."""
        if UUID_RE.match(wanted):
            return wanted
        ips = self.api.call(
            f"listing flexible IPs in {zone}", self.api.instance.list_ips_all, zone=zone, project=self.ctx.project
        )
        for ip in ips:
            if ip.address == wanted:
                return ip.id
        raise InstanceError(f"public_ip: no flexible IP {wanted!r} in {zone} and project {self.ctx.project}.")
