"""The fake's state: every resource, the clock, faults, and the shared operations.

One re-entrant lock (``Store.lock``) guards everything; the HTTP layer takes it
around each request, the Python API around each call. State transitions are
computed lazily: ``settle()`` (run before every request) completes the
transitions whose deadline has passed.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from .backend import Backend, NullBackend
from .catalog import (
    GB,
    IPV4_GATEWAY,
    IPV4_POOLS,
    LOCAL_IMAGES,
    ZONES,
    region_of,
    stable_id,
)
from .errors import ApiError
from .faults import FaultBook

log = logging.getLogger("fakescw")

PRIVATE_NETWORK = ipaddress.ip_network("172.16.0.0/22")
DEFAULT_SBS_ROOT_SIZE = 20 * GB
MAX_SBS_SIZE = 10_000 * GB
REQUEST_LOG_SIZE = 10_000

ALLOWED_ACTIONS: dict[str, list[str]] = {
    "stopped": ["poweron", "backup"],
    "running": ["poweroff", "terminate", "reboot", "stop_in_place", "backup"],
    "stopped_in_place": ["poweron", "poweroff", "backup"],
}
STATE_DETAIL = {
    "stopped": "",
    "running": "booted",
    "stopped_in_place": "stopped in place",
    "starting": "provisioning node",
    "stopping": "stopping",
}


@dataclass
class Config:
    transition_seconds: float = 0.0  # how long starting/stopping/syncing last
    latency: float = 0.0  # added to every API request
    max_sleep: float = 30.0  # upper bound of a ``slow`` fault's sleep

    def update(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if key not in ("transition_seconds", "latency", "max_sleep"):
                raise ApiError.invalid_arguments({key: "unknown setting"})
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ApiError.invalid_arguments({key: "must be a non-negative number"})
            setattr(self, key, float(value))


def iso(timestamp: float) -> str:
    """Instance API dates: ``2025-09-02T07:48:18.035029+00:00``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def iso_z(timestamp: float) -> str:
    """Block/IPAM API dates: ``2025-09-02T07:48:14.738496Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return str(uuid.uuid4())


class Store:
    def __init__(
        self,
        *,
        organization_id: str,
        project_id: str,
        secret_keys: Mapping[str, Collection[str] | None] | None = None,
        backend: Backend | None = None,
        config: Config | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.organization_id = organization_id
        self.project_id = project_id
        self.secret_keys: dict[str, frozenset[str] | None] = {
            key: None if projects is None else frozenset(projects) for key, projects in (secret_keys or {}).items()
        }
        self.backend = backend or NullBackend()
        self.config = config or Config()
        self.faults = FaultBook()
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._offset = 0.0
        self._scope: frozenset[str] | None = None
        self._reset_resources()

    # ------------------------------------------------------------------ basics

    def _reset_resources(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}
        self.block_volumes: dict[str, dict[str, Any]] = {}
        self.local_volumes: dict[str, dict[str, Any]] = {}
        self.ips: dict[str, dict[str, Any]] = {}
        self.security_groups: dict[str, dict[str, Any]] = {}
        self.security_group_rules: dict[str, list[dict[str, Any]]] = {}  # group id -> its editable rules, in order
        self.private_nics: dict[str, dict[str, Any]] = {}
        self.user_data: dict[str, dict[str, bytes]] = {}
        self.availability: dict[tuple[str, str], str] = {}
        self.quotas: dict[str, int] = {}  # commercial type -> servers the organization may have
        self._seq = 0
        self._macs = 0
        self._ipv4: dict[str, int] = {}
        self._ipv6 = 0
        self._private_ips: dict[str, dict[int, str]] = {}  # private network -> offset -> nic id
        for zone in ZONES:
            self.default_security_group(self.project_id, zone)

    def reset(self) -> None:
        """Forget every resource, fault, availability override, quota and logged request."""
        with self.lock:
            self._reset_resources()
            self.faults.clear()
            self.requests.clear()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def clock_offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (transitions complete without sleeping)."""
        with self.lock:
            self._offset += seconds
            self.settle()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -------------------------------------------------------------- projects

    def set_scope(self, projects: frozenset[str] | None) -> None:
        """The projects the current request's key may touch (None: all)."""
        self._scope = projects

    def can_access(self, project: str) -> bool:
        return self._scope is None or project in self._scope

    def check_access(self, project: str, resource: str, action: str = "read") -> None:
        if not self.can_access(project):
            raise ApiError.permissions_denied(resource, action)

    def resolve_project(self, body: Mapping[str, Any], key: str = "project") -> str:
        """The project of a resource to create (``project``, else ``organization``)."""
        project = body.get(key) or body.get("organization") or body.get("organization_id")
        if not project:
            raise ApiError.invalid_arguments({key: "required key not provided"}, reason="required")
        if not isinstance(project, str):
            raise ApiError.invalid_arguments({key: "must be a string"}, reason="format")
        return project

    # ------------------------------------------------------------- addresses

    def new_mac(self, prefix: str = "de:00:00") -> str:
        self._macs += 1
        value = 0xC60000 + self._macs
        return f"{prefix}:{(value >> 16) & 0xFF:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"

    def new_ipv4(self, zone: str) -> str:
        first, second = IPV4_POOLS[region_of(zone)]
        count = self._ipv4.get(zone, 0)
        self._ipv4[zone] = count + 1
        third = ZONES.index(zone) * 16 + count // 254
        return f"{first}.{second}.{third % 256}.{count % 254 + 1}"

    def new_ipv6_prefix(self, zone: str) -> str:
        self._ipv6 += 1
        return f"2001:bc8:{0x700 + ZONES.index(zone) * 0x100:x}:{0x1000 + self._ipv6:x}::/64"

    def allocate_private_ip(self, private_network_id: str, nic_id: str) -> int:
        used = self._private_ips.setdefault(private_network_id, {})
        for offset in range(2, PRIVATE_NETWORK.num_addresses - 1):
            if offset not in used:
                used[offset] = nic_id
                return offset
        raise ApiError(412, "precondition_failed", "no free IP address left in the private network's subnet")

    # ------------------------------------------------------------------ hooks

    def hook(self, name: str, server: dict[str, Any], *, strict: bool = True) -> Any:
        """Call a backend hook with the rendered server; see :class:`Backend`."""
        rendered = self.render_server(server)
        try:
            return getattr(self.backend, name)(rendered)
        except ApiError:
            if strict:
                raise
            log.exception("backend hook %s failed for server %s", name, server["id"])
        except Exception as exc:
            if strict:
                raise ApiError(500, "internal_error", f"backend hook {name} failed: {exc}") from exc
            log.exception("backend hook %s failed for server %s", name, server["id"])
        return None

    # ------------------------------------------------------- security groups

    def default_security_group(self, project: str, zone: str) -> dict[str, Any]:
        sg_id = stable_id("security-group", project, zone)
        if sg_id not in self.security_groups:
            self.create_security_group(
                zone,
                project,
                {
                    "name": "Default security group",
                    "description": "Auto generated security group.",
                    "project_default": True,
                },
                sg_id=sg_id,
            )
        return self.security_groups[sg_id]

    def create_security_group(
        self, zone: str, project: str, body: Mapping[str, Any], sg_id: str | None = None
    ) -> dict[str, Any]:
        stamp = iso(self.now())
        sg = {
            "id": sg_id or new_id(),
            "name": body.get("name") or "sg",
            "description": body.get("description") or "",
            "enable_default_security": True,
            "inbound_default_policy": body.get("inbound_default_policy") or "accept",
            "outbound_default_policy": body.get("outbound_default_policy") or "accept",
            "organization": self.organization_id,
            "project": project,
            "tags": list(body.get("tags") or []),
            "project_default": bool(body.get("project_default", False)),
            "organization_default": bool(body.get("organization_default", False)),
            "stateful": bool(body.get("stateful", True)),
            "state": "available",
            "zone": zone,
            "creation_date": stamp,
            "modification_date": stamp,
            "seq": self.next_seq(),
        }
        self.security_groups[sg["id"]] = sg
        return sg

    def render_security_group(self, sg: dict[str, Any]) -> dict[str, Any]:
        out = {key: value for key, value in sg.items() if key != "seq"}
        out["tags"] = list(sg["tags"])
        out["servers"] = [
            {"id": s["id"], "name": s["name"]} for s in self.servers.values() if s["security_group_id"] == sg["id"]
        ]
        return out

    # --------------------------------------------------------------- volumes

    def create_block_volume(
        self,
        zone: str,
        project: str,
        name: str,
        size: int,
        *,
        tags: list[str] | None = None,
        perf_iops: int = 5000,
        creating: bool = False,
    ) -> dict[str, Any]:
        """A Block volume; ``creating``: ``creating`` for ``transition_seconds`` (a volume made by the Block API)."""
        stamp = self.now()
        volume = {
            "id": new_id(),
            "name": name,
            "type": "sbs_15k" if perf_iops >= 15000 else "sbs_5k",
            "size": size,
            "project_id": project,
            "organization_id": self.organization_id,
            "created_at": stamp,
            "updated_at": stamp,
            "references": [],
            "parent_snapshot_id": None,
            "status": "creating" if creating and self.config.transition_seconds > 0 else "available",
            "ready_at": stamp + (self.config.transition_seconds if creating else 0),
            "tags": list(tags or []),
            "perf_iops": perf_iops,
            "last_detached_at": None,
            "zone": zone,
            "seq": self.next_seq(),
        }
        self.block_volumes[volume["id"]] = volume
        return volume

    def attach_block_volume(self, volume: dict[str, Any], server_id: str) -> None:
        stamp = self.now()
        volume["references"] = [
            {
                "id": new_id(),
                "product_resource_type": "instance_server",
                "product_resource_id": server_id,
                "created_at": stamp,
                "type": "exclusive",
                "status": "attached",
            }
        ]
        volume["status"] = "in_use"
        volume["updated_at"] = stamp

    def detach_block_volume(self, volume: dict[str, Any]) -> None:
        stamp = self.now()
        volume["references"] = []
        volume["status"] = "available"
        volume["updated_at"] = stamp
        volume["last_detached_at"] = stamp

    def settle_block_volume(self, volume: dict[str, Any]) -> dict[str, Any]:
        """Finish a ``creating`` volume whose time has come (lazily, like every transition)."""
        if volume["status"] == "creating" and self.now() >= volume.get("ready_at", 0):
            volume["status"] = "available"
            volume["updated_at"] = volume["ready_at"]
        return volume

    def render_block_volume(self, volume: dict[str, Any]) -> dict[str, Any]:
        self.settle_block_volume(volume)
        return {
            "id": volume["id"],
            "name": volume["name"],
            "type": volume["type"],
            "size": volume["size"],
            "project_id": volume["project_id"],
            "created_at": iso_z(volume["created_at"]),
            "updated_at": iso_z(volume["updated_at"]),
            "references": [{**ref, "created_at": iso_z(ref["created_at"])} for ref in volume["references"]],
            "parent_snapshot_id": volume["parent_snapshot_id"],
            "status": volume["status"],
            "tags": list(volume["tags"]),
            "specs": {"perf_iops": volume["perf_iops"], "class": "sbs"},
            "last_detached_at": iso_z(volume["last_detached_at"]) if volume["last_detached_at"] else None,
            "zone": volume["zone"],
        }

    def create_local_volume(self, zone: str, project: str, name: str, size: int) -> dict[str, Any]:
        stamp = iso(self.now())
        volume = {
            "id": new_id(),
            "name": name,
            "volume_type": "l_ssd",
            "export_uri": None,
            "organization": self.organization_id,
            "project": project,
            "server_id": None,
            "size": size,
            "state": "available",
            "creation_date": stamp,
            "modification_date": stamp,
            "tags": [],
            "zone": zone,
            "seq": self.next_seq(),
        }
        self.local_volumes[volume["id"]] = volume
        return volume

    def render_local_volume(self, volume: dict[str, Any], *, boot: bool | None = None) -> dict[str, Any]:
        server = self.servers.get(volume["server_id"] or "")
        out: dict[str, Any] = {} if boot is None else {"boot": boot}
        out.update(
            {
                "id": volume["id"],
                "name": volume["name"],
                "volume_type": "l_ssd",
                "export_uri": None,
                "organization": volume["organization"],
                "project": volume["project"],
                "server": {"id": server["id"], "name": server["name"]} if server else None,
                "size": volume["size"],
                "state": volume["state"],
                "creation_date": volume["creation_date"],
                "modification_date": volume["modification_date"],
                "tags": list(volume["tags"]),
                "zone": volume["zone"],
            }
        )
        return out

    # ------------------------------------------------------------------- IPs

    def create_ip(self, zone: str, project: str, ip_type: str, tags: list[str]) -> dict[str, Any]:
        ip = {
            "id": new_id(),
            "address": self.new_ipv4(zone) if ip_type == "routed_ipv4" else None,
            "prefix": self.new_ipv6_prefix(zone) if ip_type == "routed_ipv6" else None,
            "reverse": None,
            "server_id": None,
            "organization": self.organization_id,
            "project": project,
            "zone": zone,
            "type": ip_type,
            "tags": list(tags),
            "ipam_id": new_id(),
            "created_at": self.now(),
            "updated_at": self.now(),
            "attached_seq": 0,
            "seq": self.next_seq(),
        }
        self.ips[ip["id"]] = ip
        return ip

    def attach_ip(self, ip: dict[str, Any], server: dict[str, Any]) -> None:
        ip["server_id"] = server["id"]
        ip["attached_seq"] = self.next_seq()
        ip["updated_at"] = self.now()
        if ip["type"] == "routed_ipv4":
            server["dynamic_ip"] = None  # a flexible IPv4 replaces the dynamic one

    def detach_ip(self, ip: dict[str, Any]) -> None:
        ip["server_id"] = None
        ip["updated_at"] = self.now()

    def server_ips(self, server: dict[str, Any]) -> list[dict[str, Any]]:
        attached = [ip for ip in self.ips.values() if ip["server_id"] == server["id"]]
        return sorted(attached, key=lambda ip: ip["attached_seq"])

    def published_ipv4(self, server: dict[str, Any]) -> tuple[str | None, str | None]:
        """(IP id or "dynamic", address) the backend published as the server's public IPv4."""
        address = (server.get("published") or {}).get("public_ipv4")
        if not address:
            return None, None
        for ip in self.server_ips(server):
            if ip["type"] == "routed_ipv4":
                return ip["id"], address
        return "dynamic", address

    def ip_address(self, ip: dict[str, Any]) -> str | None:
        server = self.servers.get(ip["server_id"] or "")
        if server is not None:
            published_id, address = self.published_ipv4(server)
            if published_id == ip["id"]:
                return address
        return ip["address"]

    def render_ip(self, ip: dict[str, Any]) -> dict[str, Any]:
        server = self.servers.get(ip["server_id"] or "")
        return {
            "id": ip["id"],
            "address": self.ip_address(ip),
            "prefix": ip["prefix"],
            "reverse": ip["reverse"],
            "server": {"id": server["id"], "name": server["name"]} if server else None,
            "organization": ip["organization"],
            "project": ip["project"],
            "zone": ip["zone"],
            "type": ip["type"],
            "state": "attached" if server else "detached",
            "tags": list(ip["tags"]),
            "ipam_id": ip["ipam_id"],
        }

    @staticmethod
    def _slaac(prefix: str, mac: str, *, plus: int = 0) -> str:
        """SLAAC (EUI-64) address of ``mac`` in ``prefix`` (``plus`` shifts the MAC, for the gateway)."""
        octets = list((int(mac.replace(":", ""), 16) + plus).to_bytes(6, "big"))
        octets[0] ^= 0x02
        interface = int.from_bytes(bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]]), "big")
        return str(ipaddress.ip_network(prefix)[interface])

    def render_server_ips(self, server: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        published_id, published_address = self.published_ipv4(server)
        for ip in self.server_ips(server):
            if ip["type"] == "routed_ipv4":
                out.append(
                    {
                        "id": ip["id"],
                        "address": published_address if published_id == ip["id"] else ip["address"],
                        "dynamic": False,
                        "gateway": IPV4_GATEWAY,
                        "netmask": "32",
                        "family": "inet",
                        "provisioning_mode": "dhcp",
                        "tags": list(ip["tags"]),
                        "state": "attached",
                        "ipam_id": ip["ipam_id"],
                    }
                )
            else:
                out.append(
                    {
                        "id": ip["id"],
                        "address": self._slaac(ip["prefix"], server["mac_address"]),
                        "dynamic": False,
                        "gateway": self._slaac("fe80::/64", server["mac_address"], plus=1),
                        "netmask": "64",
                        "family": "inet6",
                        "provisioning_mode": "slaac",
                        "tags": list(ip["tags"]),
                        "state": "attached",
                        "ipam_id": ip["ipam_id"],
                    }
                )
        dynamic = server.get("dynamic_ip")
        if dynamic is not None:
            out.append(
                {
                    "id": dynamic["id"],
                    "address": published_address if published_id == "dynamic" else dynamic["address"],
                    "dynamic": True,
                    "gateway": IPV4_GATEWAY,
                    "netmask": "32",
                    "family": "inet",
                    "provisioning_mode": "dhcp",
                    "tags": [],
                    "state": "attached",
                    "ipam_id": dynamic["ipam_id"],
                }
            )
        return out

    # ---------------------------------------------------------- private NICs

    def create_private_nic(self, server: dict[str, Any], private_network_id: str, tags: list[str]) -> dict[str, Any]:
        nic_id = new_id()
        offset = self.allocate_private_ip(private_network_id, nic_id)
        stamp = self.now()
        nic = {
            "id": nic_id,
            "private_network_id": private_network_id,
            "server_id": server["id"],
            "mac_address": self.new_mac("02:00:00"),
            "created_at": stamp,
            "zone": server["zone"],
            "tags": list(tags),
            "ipam_id": new_id(),
            "ip_offset": offset,
            "seq": self.next_seq(),
        }
        self.private_nics[nic_id] = nic
        return nic

    def delete_private_nic(self, nic: dict[str, Any]) -> None:
        self._private_ips.get(nic["private_network_id"], {}).pop(nic["ip_offset"], None)
        self.private_nics.pop(nic["id"], None)

    def nic_state(self, nic: dict[str, Any]) -> str:
        return "available" if self.now() >= nic["created_at"] + self.config.transition_seconds else "syncing"

    def render_private_nic(self, nic: dict[str, Any]) -> dict[str, Any]:
        state = self.nic_state(nic)
        modified = nic["created_at"] + (self.config.transition_seconds if state == "available" else 0)
        return {
            "id": nic["id"],
            "private_network_id": nic["private_network_id"],
            "server_id": nic["server_id"],
            "mac_address": nic["mac_address"],
            "state": state,
            "creation_date": iso(nic["created_at"]),
            "modification_date": iso(modified),
            "zone": nic["zone"],
            "tags": list(nic["tags"]),
            "ipam_ip_ids": [nic["ipam_id"]],
        }

    def server_nics(self, server: dict[str, Any]) -> list[dict[str, Any]]:
        nics = [nic for nic in self.private_nics.values() if nic["server_id"] == server["id"]]
        return sorted(nics, key=lambda nic: nic["seq"])

    def nic_address(self, nic: dict[str, Any]) -> str:
        """``a.b.c.d/len`` of a NIC: the backend's published address, else the allocated one."""
        server = self.servers.get(nic["server_id"])
        published = ((server or {}).get("published") or {}).get("private_ipv4")
        if isinstance(published, Mapping):
            published = published.get(nic["private_network_id"])
        if published:
            return published if "/" in published else f"{published}/{PRIVATE_NETWORK.prefixlen}"
        return f"{PRIVATE_NETWORK[nic['ip_offset']]}/{PRIVATE_NETWORK.prefixlen}"

    # ------------------------------------------------------------------ IPAM

    def ipam_ips(self) -> list[dict[str, Any]]:
        """Every IPAM IP: private NIC addresses, flexible IPs and dynamic IPs."""
        out: list[tuple[int, dict[str, Any]]] = []
        for nic in self.private_nics.values():
            server = self.servers[nic["server_id"]]
            out.append(
                (
                    nic["seq"],
                    {
                        "id": nic["ipam_id"],
                        "address": self.nic_address(nic),
                        "project_id": server["project"],
                        "is_ipv6": False,
                        "created_at": iso_z(nic["created_at"]),
                        "updated_at": iso_z(nic["created_at"]),
                        "source": {
                            "private_network_id": nic["private_network_id"],
                            "subnet_id": stable_id("subnet", nic["private_network_id"]),
                        },
                        "resource": {
                            "type": "instance_private_nic",
                            "id": nic["id"],
                            "mac_address": nic["mac_address"],
                            "name": server["name"],
                        },
                        "tags": [],
                        "reverses": [],
                        "region": region_of(nic["zone"]),
                        "zone": None,
                        "_organization": self.organization_id,
                    },
                )
            )
        for ip in self.ips.values():
            server = self.servers.get(ip["server_id"] or "")
            is_ipv6 = ip["type"] == "routed_ipv6"
            address = ip["prefix"] if is_ipv6 else f"{self.ip_address(ip)}/32"
            resource = (
                {
                    "type": "instance_server",
                    "id": server["id"],
                    "mac_address": server["mac_address"],
                    "name": server["name"],
                }
                if server
                else {"type": "instance_ip", "id": ip["id"], "mac_address": None, "name": None}
            )
            out.append((ip["seq"], self._zonal_ipam(ip["ipam_id"], address, is_ipv6, ip, resource)))
        for server in self.servers.values():
            dynamic = server.get("dynamic_ip")
            if dynamic is not None:
                published_id, published = self.published_ipv4(server)
                address = published if published_id == "dynamic" else dynamic["address"]
                resource = {
                    "type": "instance_server",
                    "id": server["id"],
                    "mac_address": server["mac_address"],
                    "name": server["name"],
                }
                entry = self._zonal_ipam(
                    dynamic["ipam_id"],
                    f"{address}/32",
                    False,
                    {"project": server["project"], "zone": server["zone"], "tags": [], **dynamic},
                    resource,
                )
                out.append((dynamic["seq"], entry))
        return [pair[1] for pair in sorted(out, key=lambda pair: pair[0])]

    def _zonal_ipam(
        self, ipam_id: str, address: str, is_ipv6: bool, ip: Mapping[str, Any], resource: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": ipam_id,
            "address": address,
            "project_id": ip["project"],
            "is_ipv6": is_ipv6,
            "created_at": iso_z(ip["created_at"]),
            "updated_at": iso_z(ip.get("updated_at", ip["created_at"])),
            "source": {"zonal": ip["zone"]},
            "resource": resource,
            "tags": list(ip["tags"]),
            "reverses": [],
            "region": region_of(ip["zone"]),
            "zone": ip["zone"],
            "_organization": self.organization_id,
        }

    # ---------------------------------------------------------------- servers

    def get_server(self, zone: str, server_id: str, action: str = "read") -> dict[str, Any]:
        server = self.servers.get(server_id)
        if server is None or server["zone"] != zone:
            raise ApiError.not_found("instance_server", server_id)
        self.check_access(server["project"], "instance_server", action)
        return server

    def server_state(self, server: dict[str, Any]) -> str:
        transition = server["transition"]
        return transition["via"] if transition else server["state"]

    def in_transition(self, server: dict[str, Any]) -> bool:
        return server["transition"] is not None

    def start_transition(self, server: dict[str, Any], action: str, via: str, to: str) -> dict[str, Any]:
        stuck = self.faults.take("stuck", lambda fault: fault.matches_server(server, action))
        now = self.now()
        server["transition"] = {
            "action": action,
            "via": via,
            "to": to,
            "started_at": now,
            "deadline": now + self.config.transition_seconds,
            "stuck": stuck.id if stuck else None,
            "task_id": new_id(),
        }
        server["modification_date"] = iso(now)
        transition = server["transition"]
        self._settle_server(server)
        return transition

    def settle(self) -> None:
        for server in list(self.servers.values()):
            self._settle_server(server)

    def _settle_server(self, server: dict[str, Any]) -> None:
        transition = server["transition"]
        if transition is None:
            return
        if transition["stuck"] and self.faults.exists(transition["stuck"]):
            return
        if self.now() < transition["deadline"]:
            return
        server["transition"] = None
        server["modification_date"] = iso(max(transition["deadline"], transition["started_at"]))
        target = transition["to"]
        if target == "terminated":
            self.remove_server(server, delete_local=True, strict=False)
            return
        server["state"] = target
        if target in ("stopped", "stopped_in_place"):
            server["published"] = {}
        if target == "stopped":
            server["dynamic_ip"] = None

    def new_dynamic_ip(self, server: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        return {
            "id": new_id(),
            "address": self.new_ipv4(server["zone"]),
            "ipam_id": new_id(),
            "created_at": now,
            "updated_at": now,
            "seq": self.next_seq(),
        }

    def remove_server(self, server: dict[str, Any], *, delete_local: bool, strict: bool = True) -> None:
        """Delete a server record: SBS volumes and IPs are detached, NICs and user data go.

        Local volumes are deleted too when ``delete_local`` (``terminate``), else kept detached.
        """
        self.hook("server_deleted", server, strict=strict)
        for slot in server["volumes"].values():
            if slot["volume_type"] == "sbs_volume":
                volume = self.block_volumes.get(slot["id"])
                if volume is not None:
                    self.detach_block_volume(volume)
            else:
                volume = self.local_volumes.get(slot["id"])
                if volume is None:
                    continue
                if delete_local:
                    del self.local_volumes[volume["id"]]
                else:
                    volume["server_id"] = None
        for ip in self.server_ips(server):
            self.detach_ip(ip)
        for nic in self.server_nics(server):
            self.delete_private_nic(nic)
        self.user_data.pop(server["id"], None)
        self.servers.pop(server["id"], None)

    def render_server_volume(self, server: dict[str, Any], slot: dict[str, Any]) -> dict[str, Any]:
        if slot["volume_type"] == "sbs_volume":
            return {"boot": slot["boot"], "volume_type": "sbs_volume", "id": slot["id"], "zone": server["zone"]}
        volume = self.local_volumes[slot["id"]]
        return self.render_local_volume(volume, boot=slot["boot"])

    def server_location(self, server: dict[str, Any]) -> dict[str, str] | None:
        if self.server_state(server) == "stopped":
            return None
        node = int(server["id"][:4], 16)
        return {
            "zone_id": server["zone"],
            "platform_id": "14",
            "cluster_id": str(node % 64),
            "hypervisor_id": str(node % 1000),
            "node_id": str(node % 32),
        }

    def render_server(self, server: dict[str, Any]) -> dict[str, Any]:
        state = self.server_state(server)
        image = LOCAL_IMAGES.get(server["image_id"] or "")
        public_ips = self.render_server_ips(server)
        ipv4 = [ip for ip in public_ips if ip["family"] == "inet"]
        sg = self.security_groups.get(server["security_group_id"])
        return {
            "id": server["id"],
            "name": server["name"],
            "arch": server["arch"],
            "commercial_type": server["commercial_type"],
            "boot_type": server["boot_type"],
            "organization": server["organization"],
            "project": server["project"],
            "hostname": server["hostname"],
            "image": image.instance_image() if image else None,
            "volumes": {
                key: self.render_server_volume(server, slot)
                for key, slot in sorted(server["volumes"].items(), key=lambda item: int(item[0]))
            },
            "tags": list(server["tags"]),
            "state": state,
            "protected": server["protected"],
            "state_detail": STATE_DETAIL.get(state, ""),
            "public_ip": copy.deepcopy(ipv4[0]) if ipv4 else None,
            "public_ips": public_ips,
            "mac_address": server["mac_address"],
            "routed_ip_enabled": True,
            "ipv6": None,
            "extra_networks": [],
            "dynamic_ip_required": server["dynamic_ip_required"],
            "enable_ipv6": False,
            "private_ip": None,
            "creation_date": server["creation_date"],
            "modification_date": server["modification_date"],
            "bootscript": None,
            "security_group": {"id": sg["id"], "name": sg["name"]} if sg else None,
            "location": self.server_location(server),
            "maintenances": [],
            "allowed_actions": [] if self.in_transition(server) else list(ALLOWED_ACTIONS.get(state, [])),
            "placement_group": None,
            "private_nics": [self.render_private_nic(nic) for nic in self.server_nics(server)],
            "zone": server["zone"],
            "filesystems": [],
            "end_of_service": False,
        }

    # ------------------------------------------------------------------ dump

    def dump(self) -> dict[str, Any]:
        with self.lock:
            self.settle()
            servers = sorted(self.servers.values(), key=lambda s: s["seq"])
            state = {
                "clock": iso(self.now()),
                "config": asdict(self.config),
                "servers": [self.render_server(s) for s in servers],
                "volumes": [self.render_block_volume(v) for v in self.block_volumes.values()],
                "instance_volumes": [self.render_local_volume(v) for v in self.local_volumes.values()],
                "ips": [self.render_ip(ip) for ip in self.ips.values()],
                "security_groups": [self.render_security_group(sg) for sg in self.security_groups.values()],
                "security_group_rules": {
                    sg_id: [dict(rule) for rule in rules] for sg_id, rules in self.security_group_rules.items() if rules
                },
                "private_nics": [self.render_private_nic(nic) for nic in self.private_nics.values()],
                "ipam_ips": [public_ipam(entry) for entry in self.ipam_ips()],
                "user_data": {
                    server_id: {key: value.decode("utf-8", errors="replace") for key, value in data.items()}
                    for server_id, data in self.user_data.items()
                },
                "faults": [fault.to_api() for fault in self.faults.all()],
                "availability": [
                    {"zone": zone, "commercial_type": ctype, "availability": value}
                    for (zone, ctype), value in sorted(self.availability.items())
                ],
                "quotas": dict(sorted(self.quotas.items())),
            }
            state["counts"] = {
                key: len(state[key])
                for key in ("servers", "volumes", "instance_volumes", "ips", "security_groups", "private_nics")
            }
            state["counts"]["requests"] = len(self.requests)
            return state


def public_ipam(entry: dict[str, Any]) -> dict[str, Any]:
    """An IPAM entry without its internal keys."""
    return {key: value for key, value in entry.items() if not key.startswith("_")}
