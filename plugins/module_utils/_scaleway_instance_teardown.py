# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Teardown of the scaleway_instance logic (private to the collection).

Removes the instance (every copy, when the name is duplicated), then every
volume and IP tagged ``parrotpark.llm/instance=<name>`` in the listed zones
(also what an interrupted earlier teardown left). Volumes and IPs the module
was given are never tagged, so they are never deleted here. Defence in depth:
a listed volume or IP of another project is left alone, and so is a tagged
volume attached to a server that is not being removed (with a warning, never
a wait for it). A volume carrying a cache tag (``parrotpark.llm/cache=<name>``,
see ``_scaleway_instance_cache``) is never deleted, whatever other tag it has.

The owner tag of the root volume is ensured here too, by every run that sees
the instance: an interrupted creation or teardown must never leave a root
volume that nothing can find.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import ScalewayError, wait_until
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_cache import is_cache
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    STABLE_STATES,
    InstanceContext,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_power import InstancePower


class InstanceTeardown:
    """Deletes the instance and what it owns, recording each ID in the context's ``removed`` once it is gone."""

    def __init__(self, ctx: InstanceContext, lookup: InstanceLookup, power: InstancePower) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.lookup = lookup
        self.power = power
        self.removing: set[str] = set()  # IDs of the servers this teardown removes

    def ensure_root_tag(self, server: dict[str, Any]) -> None:
        """Tag the server's root SBS volume as owned (if it is not yet), so teardown finds it after the server."""
        ctx = self.ctx
        root = (server.get("volumes") or {}).get("0")
        if not root or root.get("volume_type") != "sbs_volume" or not root.get("id"):
            return
        volume = self.lookup.volume(server["zone"], root["id"])
        if volume is None or ctx.owner_tag in (volume.get("tags") or []):
            return
        ctx.apply(
            f"tagging the root volume {root['id']} of {ctx.name}",
            self.api.block.update_volume,
            volume_id=root["id"],
            zone=server["zone"],
            tags=[*(volume.get("tags") or []), ctx.owner_tag],
        )

    def teardown(self, servers: list[dict[str, Any]]) -> None:
        """Remove the instances (if any), then every volume and IP tagged as owned by this name in every zone."""
        ctx = self.ctx
        roots: dict[str, set[str]] = {}
        self.removing.update(server["id"] for server in servers)
        for server in servers:
            root = (server.get("volumes") or {}).get("0")
            if root and root.get("volume_type") == "sbs_volume":
                roots.setdefault(server["zone"], set()).add(root["id"])
            if ctx.check_mode:
                ctx.changed = True
                ctx.removed["servers"].append(server["id"])
                continue
            self.ensure_root_tag(server)
            self.delete_server(server)
        for zone in ctx.zones:
            for ip in self.lookup.owned_ips(zone):
                server_id = (ip.get("server") or {}).get("id")
                if server_id and server_id not in self.removing:
                    ctx.warn(
                        f"Left IP {ip['id']} in {zone} alone: it carries the tag {ctx.owner_tag} but is attached to "
                        f"server {server_id}, which is not being removed."
                    )
                    continue
                self.release_ip(zone, ip["id"])
            owned = [volume["id"] for volume in self.lookup.owned_volumes(zone)]
            owned += sorted(roots.get(zone, set()) - set(owned))
            for volume_id in owned:
                self.delete_volume(zone, volume_id)

    def delete_server(self, server: dict[str, Any]) -> None:
        current = self.lookup.get(server)
        if current is None:
            return
        if current["state"] in ("starting", "stopping"):
            current = self.power.wait_state(current, STABLE_STATES)
        if current["state"] != "stopped":
            self.power.action(current, "poweroff")
            current = self.power.wait_state(current, ("stopped",))
        if not self.gone_after(
            f"deleting instance {self.ctx.name} ({server['id']})",
            self.api.instance.delete_server,
            server_id=server["id"],
            zone=server["zone"],
        ):
            self.ctx.removed["servers"].append(server["id"])
        self.power.wait_gone(server)

    def gone_after(self, what: str, func: Any, **kwargs: Any) -> bool:
        """Call a deletion; True when the resource was already gone (nothing deleted), False once deleted."""
        try:
            self.api.call(what, func, **kwargs)
        except ScalewayError as error:
            if error.status == 404 or error.kind == "not_found":
                return True
            raise
        self.ctx.changed = True
        return False

    def attached_elsewhere(self, volume: dict[str, Any]) -> list[str]:
        """IDs of the servers, other than those being removed, that a volume is attached to."""
        if volume.get("status") != "in_use":
            return []
        return [
            reference.get("product_resource_id")
            for reference in volume.get("references") or []
            if reference.get("product_resource_type") == "instance_server"
            and reference.get("product_resource_id") not in self.removing
        ]

    def delete_volume(self, zone: str, volume_id: str) -> None:
        ctx = self.ctx
        volume = self.lookup.volume(zone, volume_id)
        if volume is None:
            return
        if is_cache(volume):
            ctx.warn(
                f"Left volume {volume_id} in {zone} alone: it carries a cache tag "
                f"({', '.join(volume.get('tags') or [])}) and a cache volume is never deleted by a teardown. "
                "Delete it through the Block Storage API if you no longer want it."
            )
            return
        others = self.attached_elsewhere(volume)
        if others:
            ctx.warn(
                f"Left volume {volume_id} in {zone} alone: it carries the tag {ctx.owner_tag} but is attached to "
                f"server {', '.join(others)}, which is not being removed. Detach it and run again to delete it, "
                "or remove the tag to keep it."
            )
            return
        if ctx.check_mode:
            ctx.changed = True
            ctx.removed["volumes"].append(volume_id)
            return
        volume = wait_until(
            lambda: self.lookup.volume(zone, volume_id),
            lambda current: current is None or current.get("status") != "in_use",
            what=f"volume {volume_id} to be detached",
            timeout=ctx.params["wait_timeout"],
            interval=ctx.params["wait_interval"],
            describe=lambda current: f"status {current.get('status')!r}" if current else "gone",
        )
        if volume is None:
            return
        if not self.gone_after(
            f"deleting volume {volume_id}", self.api.block.delete_volume, volume_id=volume_id, zone=zone
        ):
            ctx.removed["volumes"].append(volume_id)

    def release_ip(self, zone: str, ip_id: str) -> None:
        ctx = self.ctx
        if ctx.check_mode:
            ctx.changed = True
            ctx.removed["ips"].append(ip_id)
            return
        if not self.gone_after(f"releasing IP {ip_id}", self.api.instance.delete_ip, ip=ip_id, zone=zone):
            ctx.removed["ips"].append(ip_id)
