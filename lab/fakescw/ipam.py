"""IPAM API: ``/ipam/v1/regions/{region}/ips`` (read only)."""

from __future__ import annotations

from typing import Any

from .errors import ApiError
from .routing import Request, Response, Router, check_region, counted_list, owned_by
from .store import Store, public_ipam


def _matches(req: Request, store: Store, entry: dict[str, Any]) -> bool:
    source = entry["source"]
    resource = entry["resource"]
    resource_ids = set(req.q_all("resource_id") + req.q_all("resource_ids"))
    resource_types = set(req.q_all("resource_type") + req.q_all("resource_types"))
    ip_ids = set(req.q_all("ip_ids"))
    tags = set(req.q_all("tags"))
    mac = (req.q("mac_address") or "").lower()
    is_ipv6 = req.q_bool("is_ipv6")
    attached = req.q_bool("attached")
    checks = (
        owned_by(req, store, entry["project_id"], entry["_organization"], suffix="_id"),
        not req.q("zonal") or source.get("zonal") == req.q("zonal"),
        not req.q("private_network_id") or source.get("private_network_id") == req.q("private_network_id"),
        not req.q("subnet_id") or source.get("subnet_id") == req.q("subnet_id"),
        not resource_ids or resource["id"] in resource_ids,
        not resource_types or resource["type"] in resource_types,
        not req.q("resource_name") or resource.get("name") == req.q("resource_name"),
        not mac or (resource.get("mac_address") or "").lower() == mac,
        is_ipv6 is None or entry["is_ipv6"] == is_ipv6,
        attached is None or attached == (resource["type"] != "instance_ip"),
        not ip_ids or entry["id"] in ip_ids,
        not tags or bool(tags & set(entry["tags"])),
    )
    return all(checks)


def list_ips(store: Store, req: Request, region: str) -> Response:
    check_region(region)
    entries = [
        public_ipam(entry) for entry in store.ipam_ips() if entry["region"] == region and _matches(req, store, entry)
    ]
    return counted_list(req, "ips", entries, max_size=1000)


def get_ip(store: Store, req: Request, region: str, ip_id: str) -> Response:
    check_region(region)
    for entry in store.ipam_ips():
        if entry["id"] == ip_id and entry["region"] == region:
            store.check_access(entry["project_id"], "ipam_ip")
            return Response(200, public_ipam(entry))
    raise ApiError.not_found("ip", ip_id)


def register(router: Router) -> None:
    router.add("GET", "/ipam/v1/regions/{region}/ips", list_ips)
    router.add("GET", "/ipam/v1/regions/{region}/ips/{ip_id}", get_ip)
