# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only queries of the scaleway_instance logic (private to the collection).

Finding the instance by its exact name, reading it and its user data, the
volumes and IPs it owns (by tag, and by project checked client-side), and
resolving a security group or a flexible IP given by name or address.
Nothing here changes anything.
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

    def find_all(self) -> list[dict[str, Any]]:
        """Every instance with exactly this name in the project and the listed zones (normally 0 or 1)."""
        ctx = self.ctx
        found = []
        for zone in ctx.zones:
            found.extend(list_servers(self.api, zone, name=ctx.name, project=ctx.project))
        return found

    def find(self) -> dict[str, Any] | None:
        ctx = self.ctx
        found = self.find_all()
        if len(found) > 1:
            where = ", ".join(f"{server['id']} in {server['zone']}" for server in found)
            raise InstanceError(
                f"{len(found)} instances are named {ctx.name!r} in project {ctx.project} ({where}). The name is "
                "the identity of an instance: delete the extra ones (state=absent removes all of them).",
                kind="duplicate_name",
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

    def belongs(self, what: str, resource: dict[str, Any], project: str | None, organization: str | None) -> bool:
        """Whether a listed resource is the configured project's; a foreign one is left alone with a warning.

        The list calls filter by project already; this is the client-side check, in case a filter is ever
        dropped on the way (an API or SDK change, a key that sees several projects).
        """
        ctx = self.ctx
        if ctx.project is not None:
            expected, actual, scope = ctx.project, project, "project"
        elif ctx.organization is not None and organization is not None:  # block volumes name no organization
            expected, actual, scope = ctx.organization, organization, "organization"
        else:
            return True
        if actual == expected:
            return True
        ctx.warn(
            f"Left {what} {resource.get('id')} alone: it carries the tag {ctx.owner_tag} but belongs to {scope} "
            f"{actual}, not {expected} (the API listed it although the list was filtered by {scope})."
        )
        return False

    def owned_ips(self, zone: str) -> list[dict[str, Any]]:
        tag = self.ctx.owner_tag
        ips = self.api.call(
            f"listing IPs owned by {self.ctx.name} in {zone}",
            self.api.instance.list_ips_all,
            zone=zone,
            project=self.ctx.project,
            tags=[tag],
        )
        owned = [to_plain(ip) for ip in ips if tag in (ip.tags or [])]
        return [ip for ip in owned if self.belongs("IP", ip, ip.get("project"), ip.get("organization"))]

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
        owned = [to_plain(volume) for volume in volumes if tag in (volume.tags or [])]
        return [
            volume
            for volume in owned
            if self.belongs("volume", volume, volume.get("project_id"), volume.get("organization_id"))
        ]

    def volume(self, zone: str, volume_id: str) -> dict[str, Any] | None:
        """A block volume as it is now, or None when it does not exist in that zone."""
        answer = self.api.call_unless_gone(
            f"reading volume {volume_id}", self.api.block.get_volume, volume_id=volume_id, zone=zone
        )
        return None if answer is None else to_plain(answer)

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
                f"security_group: {len(exact)} security groups are named {wanted!r} in {zone}; give its ID instead.",
                kind="invalid_input",
            )
        return exact[0].id

    def flexible_ip_id(self, wanted: str, zone: str) -> str | None:
        """The ID of the flexible IP of the project given by ID or address (the public_ip option) in a zone.

        None when the zone has no such IP.
        """
        if UUID_RE.match(wanted):
            try:
                answer = self.api.call_unless_gone(
                    f"reading flexible IP {wanted} in {zone}", self.api.instance.get_ip, ip=wanted, zone=zone
                )
            except ScalewayError as error:
                if error.status == 403:  # another project's IP, under a key restricted to ours
                    return None
                raise
            if answer is None:
                return None
            ip = to_plain(answer.ip)
            return wanted if self.ctx.project is None or ip.get("project") == self.ctx.project else None
        ips = self.api.call(
            f"listing flexible IPs in {zone}", self.api.instance.list_ips_all, zone=zone, project=self.ctx.project
        )
        for ip in ips:
            if wanted in (ip.address, ip.prefix) and (self.ctx.project is None or ip.project == self.ctx.project):
                return ip.id
        return None

    def public_ip_error(self, zones: list[str]) -> InstanceError:
        """The error for a public_ip option that names no flexible IP of the project in those zones."""
        wanted = self.ctx.params["public_ip"]
        return InstanceError(
            f"public_ip: {wanted!r} is not a flexible IP of project {self.ctx.project} in {', '.join(zones)}. "
            "Give the ID or address of an IP reserved in the instance's zone, or dynamic, or none.",
            kind="invalid_input",
        )
