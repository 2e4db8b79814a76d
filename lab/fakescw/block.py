"""Block Storage API: ``/block/v1/zones/{zone}/volumes`` (``v1alpha1`` answers the same)."""

from __future__ import annotations

from typing import Any

from .catalog import GB
from .errors import ApiError
from .routing import Request, Response, Router, check_zone, counted_list, owned_by
from .store import MAX_SBS_SIZE, Store

PERF_IOPS = (5000, 15000)


def _tags(body: dict[str, Any]) -> list[str] | None:
    tags = body.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ApiError.invalid_arguments({"tags": "must be a list of strings"}, reason="format")
    return tags


def _size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not GB <= value <= MAX_SBS_SIZE:
        raise ApiError.invalid_arguments({"size": f"must be between {GB} and {MAX_SBS_SIZE} bytes"})
    return value


def _get(store: Store, zone: str, volume_id: str, action: str = "read") -> dict[str, Any]:
    volume = store.block_volumes.get(volume_id)
    if volume is None or volume["zone"] != zone:
        raise ApiError.not_found("volume", volume_id)
    store.check_access(volume["project_id"], "block_volume", action)
    return volume


def list_volumes(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    name = (req.q("name") or "").lower()
    product = req.q("product_resource_id")
    tags = set(req.q_all("tags"))
    ids = set(req.q_all("volume_ids"))
    volume_type = req.q("volume_type")
    out = [
        volume
        for volume in store.block_volumes.values()
        if volume["zone"] == zone
        and owned_by(req, store, volume["project_id"], volume["organization_id"], suffix="_id")
        and name in volume["name"].lower()
        and (not product or any(ref["product_resource_id"] == product for ref in volume["references"]))
        and (not tags or tags & set(volume["tags"]))
        and (not ids or volume["id"] in ids)
        and (not volume_type or volume["type"] == volume_type)
    ]
    order = req.q("order_by") or "created_at_asc"
    out.sort(key=lambda volume: (volume["created_at"], volume["seq"]), reverse=order.endswith("desc"))
    return counted_list(req, "volumes", [store.render_block_volume(volume) for volume in out])


def create_volume(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    body = req.json()
    project = store.resolve_project(body, "project_id")
    store.check_access(project, "block_volume", "write")
    if body.get("from_snapshot") is not None:
        raise ApiError(501, "not_implemented", "fakescw does not implement volumes from snapshots")
    from_empty = body.get("from_empty")
    if not isinstance(from_empty, dict):
        raise ApiError.invalid_arguments({"from_empty": "required key not provided"}, reason="required")
    size = _size(from_empty.get("size"))
    perf_iops = body.get("perf_iops") or 5000
    if perf_iops not in PERF_IOPS:
        raise ApiError.invalid_arguments({"perf_iops": "one of 5000, 15000"})
    name = body.get("name") or "vol"
    volume = store.create_block_volume(zone, project, name, size, tags=_tags(body), perf_iops=perf_iops, creating=True)
    return Response(200, store.render_block_volume(volume))


def get_volume(store: Store, req: Request, zone: str, volume_id: str) -> Response:
    check_zone(zone)
    return Response(200, store.render_block_volume(_get(store, zone, volume_id)))


def update_volume(store: Store, req: Request, zone: str, volume_id: str) -> Response:
    check_zone(zone)
    volume = _get(store, zone, volume_id, "write")
    body = req.json()
    if body.get("size") is not None:
        size = _size(body["size"])
        if size < volume["size"]:
            raise ApiError.invalid_arguments({"size": "a volume can only grow"})
        volume["size"] = size
    if body.get("name") is not None:
        volume["name"] = body["name"]
    tags = _tags(body)
    if tags is not None:
        volume["tags"] = tags
    if body.get("perf_iops") is not None:
        if body["perf_iops"] not in PERF_IOPS:
            raise ApiError.invalid_arguments({"perf_iops": "one of 5000, 15000"})
        volume["perf_iops"] = body["perf_iops"]
        volume["type"] = "sbs_15k" if body["perf_iops"] >= 15000 else "sbs_5k"
    volume["updated_at"] = store.now()
    return Response(200, store.render_block_volume(volume))


def delete_volume(store: Store, req: Request, zone: str, volume_id: str) -> Response:
    check_zone(zone)
    volume = _get(store, zone, volume_id, "delete")
    if volume["references"]:
        raise ApiError.precondition_failed("resource_still_in_use", "the volume is attached to an Instance")
    del store.block_volumes[volume_id]
    return Response(204)


def register(router: Router) -> None:
    for version in ("v1", "v1alpha1"):
        prefix = f"/block/{version}/zones/{{zone}}/volumes"
        router.add("GET", prefix, list_volumes)
        router.add("POST", prefix, create_volume)
        router.add("GET", prefix + "/{volume_id}", get_volume)
        router.add("PATCH", prefix + "/{volume_id}", update_volume)
        router.add("DELETE", prefix + "/{volume_id}", delete_volume)
