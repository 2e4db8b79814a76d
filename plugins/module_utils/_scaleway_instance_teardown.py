# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Teardown of the scaleway_instance logic (private to the collection).

Removes the instance, then every volume and IP tagged
``parrotpark.llm/instance=<name>`` in the listed zones (also what an
interrupted earlier teardown left). Volumes and IPs the module was given are
never tagged, so they are never deleted here.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import to_plain, wait_until
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    STABLE_STATES,
    InstanceContext,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_power import InstancePower


class InstanceTeardown:
    """Deletes the instance and what it owns, recording each ID in the context's ``removed``."""

    def __init__(self, ctx: InstanceContext, lookup: InstanceLookup, power: InstancePower) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.lookup = lookup
        self.power = power

    def teardown(self, server: dict[str, Any] | None) -> None:
        """Remove the instance (if any), then every volume and IP tagged as owned by this name in every zone."""
        ctx = self.ctx
        root_ids: set[str] = set()
        if server is not None:
            ctx.changed = True
            root = (server.get("volumes") or {}).get("0")
            if root and root.get("volume_type") == "sbs_volume":
                root_ids.add(root["id"])
            ctx.removed["servers"].append(server["id"])
            if not ctx.check_mode:
                self.delete_server(server)
        for zone in ctx.zones:
            for ip in self.lookup.owned_ips(zone):
                ctx.changed = True
                if ctx.check_mode:
                    ctx.removed["ips"].append(ip["id"])
                else:
                    self.release_ip(zone, ip["id"])
            owned = {volume["id"]: volume for volume in self.lookup.owned_volumes(zone)}
            if server is not None and server["zone"] == zone:
                owned.update({volume_id: {"id": volume_id} for volume_id in root_ids if volume_id not in owned})
            for volume_id in owned:
                ctx.changed = True
                if ctx.check_mode:
                    ctx.removed["volumes"].append(volume_id)
                else:
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
        self.api.call_unless_gone(
            f"deleting instance {self.ctx.name} ({server['id']})",
            self.api.instance.delete_server,
            server_id=server["id"],
            zone=server["zone"],
        )
        self.power.wait_gone(server)

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
            timeout=self.ctx.params["wait_timeout"],
            interval=self.ctx.params["wait_interval"],
            describe=lambda current: f"status {current.get('status')!r}" if current else "gone",
        )
        if volume is None:
            return
        self.api.call_unless_gone(
            f"deleting volume {volume_id}", self.api.block.delete_volume, volume_id=volume_id, zone=zone
        )
        self.ctx.removed["volumes"].append(volume_id)

    def release_ip(self, zone: str, ip_id: str) -> None:
        self.api.call_unless_gone(f"releasing IP {ip_id}", self.api.instance.delete_ip, ip=ip_id, zone=zone)
        self.ctx.removed["ips"].append(ip_id)
