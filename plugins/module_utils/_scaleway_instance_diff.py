# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diff of the scaleway_instance module: what it shows and, in check mode, predicts (private).

Pure functions of a server dict, the parameters and the placements: no API call.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_context import digest


def snapshot(server: dict[str, Any] | None, user_data: str | None = None) -> dict[str, Any]:
    """The properties this module manages (user data only as a digest); {} for no server."""
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


def predicted(before: dict[str, Any], params: dict[str, Any], placements: list[dict[str, Any]]) -> dict[str, Any]:
    """The diff's 'after' in check mode, from the snapshot before, the parameters and the placements."""
    after = dict(before) if before else {"name": params["name"]}
    if not before:
        chosen = next((entry for entry in placements if entry["outcome"] == "would_create"), None)
        after.update(
            zone=chosen["zone"] if chosen else None,
            commercial_type=chosen["commercial_type"] if chosen else None,
            volumes=["(new root volume)", *sorted(params["extra_volumes"] or [])],
            public_ips=["(new routed IPv4)"] if params["public_ip"] == "dynamic" else [],
        )
    after["tags"] = sorted(params["tags"] or [])
    if params["private_networks"] is not None or not before:
        after["private_networks"] = sorted(params["private_networks"] or [])
    if params["user_data"] is not None:
        after["user_data"] = digest(params["user_data"])
    state = params["state"]
    if state in ("running", "stopped"):
        after["state"] = state
    elif not before:
        after["state"] = "stopped"
    return after
