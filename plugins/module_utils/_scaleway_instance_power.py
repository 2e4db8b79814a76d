# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Power actions and waits of the scaleway_instance logic (private to the collection)."""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import wait_until
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import (
    STABLE_STATES,
    InstanceContext,
    InstanceError,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_lookup import InstanceLookup


class InstancePower:
    """Starts and stops the instance and waits for its state (bounded by wait_timeout)."""

    def __init__(self, ctx: InstanceContext, lookup: InstanceLookup) -> None:
        self.ctx = ctx
        self.lookup = lookup

    def wait_state(self, server: dict[str, Any], wanted: tuple[str, ...]) -> dict[str, Any]:
        params = self.ctx.params
        if not params["wait"]:
            return self.lookup.get(server) or server

        def fetch() -> dict[str, Any]:
            current = self.lookup.get(server)
            if current is None:
                raise InstanceError(
                    f"Instance {server['id']} disappeared while waiting for it to be {'/'.join(wanted)}."
                )
            return current

        return wait_until(
            fetch,
            lambda current: current["state"] in wanted,
            what=f"instance {self.ctx.name} ({server['id']}) to be {' or '.join(wanted)}",
            timeout=params["wait_timeout"],
            interval=params["wait_interval"],
            describe=lambda current: f"state {current['state']!r} {current.get('state_detail') or ''}".strip(),
        )

    def wait_gone(self, server: dict[str, Any]) -> None:
        wait_until(
            lambda: self.lookup.get(server),
            lambda current: current is None,
            what=f"instance {self.ctx.name} ({server['id']}) to be deleted",
            timeout=self.ctx.params["wait_timeout"],
            interval=self.ctx.params["wait_interval"],
            describe=lambda current: f"state {current['state']!r}" if current else "gone",
        )

    def wait_stable(self, server: dict[str, Any]) -> dict[str, Any]:
        if server["state"] in STABLE_STATES:
            return server
        return self.wait_state(server, STABLE_STATES)

    def action(self, server: dict[str, Any], action: str) -> None:
        """Ask for a power action (never in check mode); counted as a change once the API accepted it."""
        api = self.ctx.api
        self.ctx.apply(
            f"{action} of instance {self.ctx.name} ({server['id']}) in {server['zone']}",
            api.instance.server_action,
            server_id=server["id"],
            zone=server["zone"],
            action=action,
        )

    def power(self, server: dict[str, Any], wanted: str) -> dict[str, Any]:
        """Bring an existing instance to running or stopped (present: leave it); returns the fresh server."""
        ctx = self.ctx
        target = {"running": "running", "stopped": "stopped"}.get(wanted)
        if target is None or server["state"] == target:
            return self.wait_stable(server) if target is None and ctx.params["wait"] else server
        if server["state"] == ("starting" if target == "running" else "stopping"):
            # Already on its way to the target: nothing to do but wait.
            return server if ctx.check_mode else self.wait_state(server, (target,))
        if ctx.check_mode:
            ctx.changed = True
            return server
        server = self.wait_stable(server)
        if server["state"] != target:
            self.action(server, "poweron" if target == "running" else "poweroff")
        return self.wait_state(server, (target,))
