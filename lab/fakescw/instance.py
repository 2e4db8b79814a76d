"""Instance API: ``/instance/v1/zones/{zone}/...``."""

from __future__ import annotations

import secrets
from typing import Any

from .catalog import GB, IMAGE_LABELS, LOCAL_IMAGES, SERVER_TYPES, LocalImage, ServerType, types_in_zone
from .errors import ApiError
from .routing import (
    Request,
    Response,
    Router,
    check_zone,
    instance_list,
    owned_by,
    tags_match_all,
)
from .store import DEFAULT_SBS_ROOT_SIZE, MAX_SBS_SIZE, Store, iso, new_id

PREFIX = "/instance/v1/zones/{zone}"
ACTIONS = ("poweron", "poweroff", "stop_in_place", "reboot", "terminate", "backup", "enable_routed_ip")
BOOT_TYPES = ("local", "rescue", "bootscript")
IP_TYPES = ("routed_ipv4", "routed_ipv6")
TASK_DESCRIPTIONS = {
    "poweron": "server_batch_poweron",
    "poweroff": "server_poweroff",
    "stop_in_place": "server_stop_in_place",
    "reboot": "server_reboot",
    "terminate": "server_terminate",
}


# ------------------------------------------------------------------ helpers


def _string_list(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError.invalid_arguments({key: "must be a list of strings"}, reason="format")
    return list(value)


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError.invalid_arguments({key: "must be a boolean"}, reason="format")
    return value


def _size(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ApiError.invalid_arguments({field: "must be a positive number of bytes"}, reason="format")
    return value


def _offered(zone: str, commercial_type: Any, field: str = "commercial_type") -> ServerType:
    if not commercial_type:
        raise ApiError.invalid_arguments({field: "required key not provided"}, reason="required")
    stype = SERVER_TYPES.get(commercial_type) if isinstance(commercial_type, str) else None
    if stype is None or zone not in stype.zones:
        raise ApiError.invalid_arguments({field: f"commercial type {commercial_type!r} is not available in {zone}"})
    return stype


def _resolve_image(zone: str, ref: Any, commercial_type: str) -> LocalImage:
    if not isinstance(ref, str):
        raise ApiError.invalid_arguments({"image": "must be an image id or label"}, reason="format")
    image = LOCAL_IMAGES.get(ref)
    if image is None and ref in IMAGE_LABELS:
        candidates = [
            img
            for img in LOCAL_IMAGES.values()
            if img.label == ref and img.zone == zone and commercial_type in img.compatible_commercial_types
        ]
        candidates.sort(key=lambda img: img.type != "instance_sbs")  # SBS first, as the real API prefers
        if not candidates:
            raise ApiError.invalid_arguments({"image": f"no {ref} image compatible with {commercial_type} in {zone}"})
        image = candidates[0]
    if image is None or image.zone != zone:
        raise ApiError.not_found("instance_image", ref)
    if commercial_type not in image.compatible_commercial_types:
        raise ApiError.invalid_arguments(
            {"image": f"image {image.label} ({image.type}, {image.id}) is not compatible with {commercial_type}"}
        )
    return image


def _security_group(store: Store, zone: str, project: str, ref: Any) -> dict[str, Any]:
    if ref is None:
        return store.default_security_group(project, zone)
    sg_id = ref.get("id") if isinstance(ref, dict) else ref
    sg = store.security_groups.get(sg_id) if isinstance(sg_id, str) else None
    if sg is None or sg["zone"] != zone:
        raise ApiError.not_found("instance_security_group", str(sg_id))
    return sg


def _flexible_ip(store: Store, zone: str, ref: Any) -> dict[str, Any]:
    if isinstance(ref, str):
        for ip in store.ips.values():
            if ip["zone"] == zone and (ip["id"] == ref or (ip["address"] is not None and ip["address"] == ref)):
                store.check_access(ip["project"], "instance_ip")
                return ip
    raise ApiError.not_found("instance_ip", str(ref))


def _plan_existing(store: Store, zone: str, slot: str, template: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    if template.get("volume_type") not in (None, "sbs_volume"):
        raise ApiError.invalid_arguments({f"volumes.{slot}": "only sbs_volume volumes can be attached by id"})
    volume = store.block_volumes.get(template["id"])
    if volume is None or volume["zone"] != zone:
        raise ApiError.not_found("block_volume", str(template["id"]))
    store.check_access(volume["project_id"], "block_volume", "write")
    if store.settle_block_volume(volume)["status"] == "creating":
        raise ApiError.invalid_request(f"volume {volume['id']} is not available yet (status creating)")
    if volume["status"] != "available" or volume["references"] or volume["id"] in seen:
        raise ApiError.invalid_request(f"volume {volume['id']} is already attached to a server")
    seen.add(volume["id"])
    return {"slot": slot, "kind": "existing", "volume": volume, "boot": bool(template.get("boot"))}


def _plan_new(
    stype: ServerType, image: LocalImage | None, slot: str, template: dict[str, Any], server_name: str
) -> dict[str, Any]:
    field = f"volumes.{slot}"
    volume_type = template.get("volume_type")
    if volume_type is None:
        volume_type = "l_ssd" if image is not None and image.type == "instance_local" else "sbs_volume"
    if volume_type not in ("sbs_volume", "l_ssd"):
        raise ApiError.invalid_arguments({field: f"volume type {volume_type!r} is not supported by fakescw"})
    if volume_type == "l_ssd" and not stype.local_max:
        raise ApiError.invalid_arguments({field: f"{stype.name} has no local storage: use sbs_volume volumes"})
    size = template.get("size")
    if size is None and slot == "0" and image is not None:
        size = DEFAULT_SBS_ROOT_SIZE if volume_type == "sbs_volume" else stype.local_max
    size = _size(size, f"{field}.size")
    if volume_type == "sbs_volume" and not 1 * GB <= size <= MAX_SBS_SIZE:
        raise ApiError.invalid_arguments({f"{field}.size": f"must be between {GB} and {MAX_SBS_SIZE} bytes"})
    if slot == "0" and image is not None and size < image.root_size:
        raise ApiError.invalid_arguments(
            {f"{field}.size": f"must be at least {image.root_size} bytes, the size of the image's root volume"}
        )
    name = template.get("name") or (image.name if slot == "0" and image is not None else f"{server_name}-{slot}")
    return {
        "slot": slot,
        "kind": "new_sbs" if volume_type == "sbs_volume" else "new_local",
        "size": size,
        "name": name,
        "boot": bool(template.get("boot")),
    }


def _check_root(plan: list[dict[str, Any]], stype: ServerType, image: LocalImage | None) -> None:
    """Add the default root volume of an image if none is given; check root and local sizes."""
    root = next((entry for entry in plan if entry["slot"] == "0"), None)
    if image is not None:
        if root is None:
            kind = "new_sbs" if image.type == "instance_sbs" else "new_local"
            size = max(DEFAULT_SBS_ROOT_SIZE, image.root_size) if kind == "new_sbs" else stype.local_max
            root = {"slot": "0", "kind": kind, "size": size, "name": image.name, "boot": False}
            plan.insert(0, root)
        if image.type == "instance_sbs" and root["kind"] == "new_local":
            raise ApiError.invalid_arguments({"volumes.0": f"image {image.id} is an SBS image: use an sbs_volume root"})
        if image.type == "instance_local" and root["kind"] == "new_sbs":
            raise ApiError.invalid_arguments({"volumes.0": f"image {image.id} is a local image: use an l_ssd root"})
    local_total = sum(entry["size"] for entry in plan if entry["kind"] == "new_local")
    if local_total > stype.local_max:
        raise ApiError.invalid_arguments(
            {"volumes": f"the total size of local volumes must be at most {stype.local_max // GB}GB for {stype.name}"}
        )


def _plan_volumes(
    store: Store, zone: str, stype: ServerType, image: LocalImage | None, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Validate the ``volumes`` template of a create call; nothing is created yet."""
    volumes = body.get("volumes") or {}
    if not isinstance(volumes, dict):
        raise ApiError.invalid_arguments({"volumes": "must be an object of volume templates"}, reason="format")
    plan: list[dict[str, Any]] = []
    seen: set[str] = set()
    for slot, template in sorted(volumes.items(), key=lambda item: (len(item[0]), item[0])):
        if not slot.isdigit() or not isinstance(template, dict):
            raise ApiError.invalid_arguments({f"volumes.{slot}": "keys are volume indexes, values volume templates"})
        if template.get("id"):
            plan.append(_plan_existing(store, zone, slot, template, seen))
        else:
            plan.append(_plan_new(stype, image, slot, template, str(body.get("name"))))
    _check_root(plan, stype, image)
    return plan


def _server_response(store: Store, server: dict[str, Any], status: int = 200) -> Response:
    return Response(status, {"server": store.render_server(server)})


# ------------------------------------------------------------------ servers


def list_servers(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    name = (req.q("name") or "").lower()
    tags = req.q_all("tags")
    state = req.q("state")
    ctype = req.q("commercial_type")
    networks = set(req.q_all("private_network") + req.q_all("private_networks"))
    mac = (req.q("private_nic_mac_address") or "").lower()
    ids = set(req.q_all("servers"))
    private_ip = req.q("private_ip")
    with_ip = req.q("with_ip")
    without_ip = req.q_bool("without_ip")
    out = []
    for server in store.servers.values():
        nics = store.server_nics(server)
        public = [ip["address"] for ip in store.render_server_ips(server)]
        private = [store.nic_address(nic).split("/")[0] for nic in nics]
        if not (
            server["zone"] == zone
            and owned_by(req, store, server["project"], server["organization"])
            and name in server["name"].lower()
            and tags_match_all(tags, server["tags"])
            and (not state or store.server_state(server) == state)
            and (not ctype or server["commercial_type"] == ctype)
            and (not networks or any(nic["private_network_id"] in networks for nic in nics))
            and (not mac or any(nic["mac_address"] == mac for nic in nics))
            and (not ids or server["id"] in ids)
            and (not private_ip or private_ip in private)
            and (not with_ip or with_ip in public + private)
            and (without_ip is None or without_ip == (not public))
        ):
            continue
        out.append(server)
    order = req.q("order") or "creation_date_desc"
    field = "modification_date" if order.startswith("modification") else "creation_date"
    out.sort(key=lambda s: (s[field], s["seq"]), reverse=order.endswith("desc"))
    return instance_list(req, "servers", [store.render_server(s) for s in out])


def quota_resource(commercial_type: str) -> str:
    """The name a quotas_exceeded error gives an instance type's quota (an approximation of the real one)."""
    return "instances_" + commercial_type.lower().replace("-", "_")


def _check_create_faults(store: Store, zone: str, stype: ServerType) -> None:
    quota = store.faults.take("quotas_exceeded", lambda f: f.matches_quota(zone, stype.name))
    if quota is not None:
        raise ApiError.quotas_exceeded(quota.params.get("resource") or quota_resource(stype.name))
    limit = store.quotas.get(stype.name)
    if limit is not None:
        # Like the organization's quotas: per commercial type, over every zone and project, stopped servers included.
        current = sum(
            1
            for server in store.servers.values()
            if server["commercial_type"] == stype.name and server["organization"] == store.organization_id
        )
        if current >= limit:
            raise ApiError.quotas_exceeded(quota_resource(stype.name), quota=limit, current=current)
    if store.faults.take("out_of_stock", lambda f: f.matches_stock(zone, stype.name, "create")) is not None:
        raise ApiError.out_of_stock(stype.name, zone)


def _create_volumes(store: Store, server: dict[str, Any], plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create and attach the planned volumes; returns the volumes created (for a rollback)."""
    created = []
    for entry in plan:
        if entry["kind"] == "new_local":
            volume = store.create_local_volume(server["zone"], server["project"], entry["name"], entry["size"])
            volume["server_id"] = server["id"]
            created.append(volume)
            server["volumes"][entry["slot"]] = {"id": volume["id"], "volume_type": "l_ssd", "boot": entry["boot"]}
            continue
        if entry["kind"] == "existing":
            volume = entry["volume"]
        else:
            volume = store.create_block_volume(server["zone"], server["project"], entry["name"], entry["size"])
            created.append(volume)
        store.attach_block_volume(volume, server["id"])
        server["volumes"][entry["slot"]] = {"id": volume["id"], "volume_type": "sbs_volume", "boot": entry["boot"]}
    return created


def _rollback_create(
    store: Store, server: dict[str, Any], plan: list[dict[str, Any]], created: list[dict[str, Any]]
) -> None:
    for ip in store.server_ips(server):
        store.detach_ip(ip)
    for entry in plan:
        if entry["kind"] == "existing":
            store.detach_block_volume(entry["volume"])
    for volume in created:
        store.block_volumes.pop(volume["id"], None)
        store.local_volumes.pop(volume["id"], None)
    store.servers.pop(server["id"], None)


def create_server(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    body = dict(req.json())
    stype = _offered(zone, body.get("commercial_type"))
    project = store.resolve_project(body)
    store.check_access(project, "instance_server", "write")
    name = body.setdefault("name", None) or f"scw-{secrets.token_hex(3)}"
    if not isinstance(name, str):
        raise ApiError.invalid_arguments({"name": "must be a string"}, reason="format")
    body["name"] = name
    tags = _string_list(body, "tags") or []
    protected = _bool(body, "protected", False)
    dynamic_ip_required = _bool(body, "dynamic_ip_required", True)
    boot_type = body.get("boot_type") or "local"
    if boot_type not in BOOT_TYPES:
        raise ApiError.invalid_arguments({"boot_type": f"one of {', '.join(BOOT_TYPES)}"})
    image = _resolve_image(zone, body["image"], stype.name) if body.get("image") else None
    plan = _plan_volumes(store, zone, stype, image, body)
    ip_refs = ([body["public_ip"]] if body.get("public_ip") else []) + (_string_list(body, "public_ips") or [])
    ips = [_flexible_ip(store, zone, ref) for ref in dict.fromkeys(ip_refs)]
    for ip in ips:
        if ip["server_id"] is not None:
            raise ApiError.invalid_request(f"IP {ip['id']} is already attached to a server")
    sg = _security_group(store, zone, project, body.get("security_group"))
    _check_create_faults(store, zone, stype)

    stamp = iso(store.now())
    server: dict[str, Any] = {
        "id": new_id(),
        "name": name,
        "zone": zone,
        "commercial_type": stype.name,
        "arch": stype.arch,
        "project": project,
        "organization": store.organization_id,
        "hostname": name,
        "image_id": image.id if image else None,
        "volumes": {},
        "tags": tags,
        "protected": protected,
        "boot_type": boot_type,
        "dynamic_ip_required": dynamic_ip_required,
        "security_group_id": sg["id"],
        "mac_address": store.new_mac(),
        "creation_date": stamp,
        "modification_date": stamp,
        "state": "stopped",
        "transition": None,
        "dynamic_ip": None,
        "published": {},
        "seq": store.next_seq(),
    }
    store.servers[server["id"]] = server
    created = _create_volumes(store, server, plan)
    for ip in ips:
        store.attach_ip(ip, server)
    try:
        store.hook("server_created", server)
    except ApiError:
        _rollback_create(store, server, plan, created)
        raise
    response = _server_response(store, server, 201)
    response.headers["location"] = f"{req.base_url}/instance/v1/zones/{zone}/servers/{server['id']}"
    return response


def get_server(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    return _server_response(store, store.get_server(zone, server_id))


def update_server(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id, "write")
    body = req.json()
    changes: dict[str, Any] = {}
    if body.get("name") is not None:
        if not isinstance(body["name"], str) or not body["name"]:
            raise ApiError.invalid_arguments({"name": "must be a non-empty string"}, reason="format")
        changes["name"] = changes["hostname"] = body["name"]
    if body.get("tags") is not None:
        changes["tags"] = _string_list(body, "tags")
    for key in ("protected", "dynamic_ip_required"):
        if body.get(key) is not None:
            changes[key] = _bool(body, key, False)
    if body.get("routed_ip_enabled") is False:
        raise ApiError.invalid_request("routed_ip_enabled cannot be set back to false")
    if body.get("boot_type") is not None:
        if body["boot_type"] not in BOOT_TYPES:
            raise ApiError.invalid_arguments({"boot_type": f"one of {', '.join(BOOT_TYPES)}"})
        changes["boot_type"] = body["boot_type"]
    if body.get("security_group") is not None:
        changes["security_group_id"] = _security_group(store, zone, server["project"], body["security_group"])["id"]
    if body.get("commercial_type") is not None and body["commercial_type"] != server["commercial_type"]:
        stype = _offered(zone, body["commercial_type"])
        if store.in_transition(server) or server["state"] != "stopped":
            raise ApiError.invalid_request("server should be stopped")
        local = sum(
            store.local_volumes[slot["id"]]["size"]
            for slot in server["volumes"].values()
            if slot["volume_type"] == "l_ssd" and slot["id"] in store.local_volumes
        )
        if local > stype.local_max:
            limit = f"{stype.name} allows {stype.local_max // GB}GB of local volumes, not {local // GB}GB"
            raise ApiError.invalid_arguments({"commercial_type": limit})
        changes["commercial_type"] = stype.name
        changes["arch"] = stype.arch
    new_ips = None
    if body.get("public_ips") is not None:
        new_ips = [_flexible_ip(store, zone, ref) for ref in dict.fromkeys(_string_list(body, "public_ips") or [])]
    new_volumes = None
    if body.get("volumes") is not None:
        new_volumes = _plan_volume_update(store, server, body["volumes"])

    server.update(changes)
    if new_ips is not None:
        wanted = {ip["id"] for ip in new_ips}
        for ip in store.server_ips(server):
            if ip["id"] not in wanted:
                store.detach_ip(ip)
        for ip in new_ips:
            if ip["server_id"] != server["id"]:
                store.attach_ip(ip, server)
    if new_volumes is not None:
        _apply_volume_update(store, server, new_volumes)
    server["modification_date"] = iso(store.now())
    return _server_response(store, server)


def _plan_volume_update(store: Store, server: dict[str, Any], volumes: Any) -> dict[str, dict[str, Any]]:
    """PATCH ``volumes``: the complete new slot map (existing volumes by id only)."""
    if not isinstance(volumes, dict):
        raise ApiError.invalid_arguments({"volumes": "must be an object of volume templates"}, reason="format")
    current = {slot["id"]: slot for slot in server["volumes"].values()}
    result: dict[str, dict[str, Any]] = {}
    for slot, template in volumes.items():
        if not slot.isdigit() or not isinstance(template, dict) or not template.get("id"):
            raise ApiError.invalid_arguments({f"volumes.{slot}": "fakescw only accepts existing volumes by id here"})
        volume_id = template["id"]
        if volume_id in current:
            result[slot] = dict(current[volume_id])
            continue
        volume = store.block_volumes.get(volume_id)
        if volume is None or volume["zone"] != server["zone"]:
            raise ApiError.not_found("block_volume", volume_id)
        if volume["references"]:
            raise ApiError.invalid_request(f"volume {volume_id} is already attached to a server")
        result[slot] = {"id": volume_id, "volume_type": "sbs_volume", "boot": bool(template.get("boot"))}
    return result


def _apply_volume_update(store: Store, server: dict[str, Any], slots: dict[str, dict[str, Any]]) -> None:
    kept = {slot["id"] for slot in slots.values()}
    for slot in server["volumes"].values():
        if slot["id"] in kept:
            continue
        if slot["volume_type"] == "sbs_volume" and slot["id"] in store.block_volumes:
            store.detach_block_volume(store.block_volumes[slot["id"]])
        elif slot["id"] in store.local_volumes:
            store.local_volumes[slot["id"]]["server_id"] = None
    attached = {slot["id"] for slot in server["volumes"].values()}
    for slot in slots.values():
        if slot["id"] not in attached:
            store.attach_block_volume(store.block_volumes[slot["id"]], server["id"])
    server["volumes"] = slots


def delete_server(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id, "delete")
    if store.in_transition(server):
        raise ApiError.transient_state("instance_server", server_id, store.server_state(server))
    if server["protected"]:
        raise ApiError.invalid_request("server is protected")
    if server["state"] != "stopped":
        raise ApiError.invalid_request("server should be stopped")
    store.remove_server(server, delete_local=False)
    return Response(204)


def list_actions(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id)
    return Response(200, {"actions": store.render_server(server)["allowed_actions"]})


def server_action(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id, "write")
    action = req.json().get("action") or "poweron"
    if action not in ACTIONS:
        raise ApiError.invalid_arguments({"action": f"one of {', '.join(ACTIONS)}"})
    if store.in_transition(server):
        raise ApiError.transient_state("instance_server", server_id, store.server_state(server))
    state = server["state"]
    if action == "backup":
        raise ApiError(501, "not_implemented", "fakescw does not implement the backup action")
    if action == "enable_routed_ip":
        raise ApiError.invalid_request("server already uses routed IPs")
    if action not in {"poweron", "backup"} and state == "stopped":
        raise ApiError.invalid_request("server should be running")
    if action == "poweron" and state == "running":
        raise ApiError.invalid_request("server should be stopped")
    if action in ("stop_in_place", "reboot", "terminate") and state != "running":
        raise ApiError.invalid_request("server should be running")
    if action == "terminate" and server["protected"]:
        raise ApiError.invalid_request("server is protected")

    if action == "poweron":
        ctype = server["commercial_type"]
        if store.faults.take("out_of_stock", lambda f: f.matches_stock(zone, ctype, "poweron")) is not None:
            raise ApiError.out_of_stock(ctype, zone)
        published = store.hook("server_power_on", server)
        transition = store.start_transition(server, action, "starting", "running")
        server["published"] = dict(published or {})
        has_flexible_v4 = any(ip["type"] == "routed_ipv4" for ip in store.server_ips(server))
        if server["dynamic_ip_required"] and not has_flexible_v4 and server["dynamic_ip"] is None:
            server["dynamic_ip"] = store.new_dynamic_ip(server)
    elif action == "reboot":
        published = store.hook("server_reboot", server)
        transition = store.start_transition(server, action, "starting", "running")
        server["published"] = dict(published or {})
    else:
        store.hook("server_power_off", server)
        target = {"poweroff": "stopped", "stop_in_place": "stopped_in_place", "terminate": "terminated"}[action]
        transition = store.start_transition(server, action, "stopping", target)
    task = {
        "id": transition["task_id"],
        "description": TASK_DESCRIPTIONS[action],
        "status": "pending",
        "href_from": f"/servers/{server_id}/action",
        "href_result": f"/servers/{server_id}",
        "started_at": iso(transition["started_at"]),
        "terminated_at": None,
        "progress": 0,
        "zone": zone,
    }
    return Response(202, {"task": task})


# ---------------------------------------------------------------- user data


def list_user_data(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    store.get_server(zone, server_id)
    return Response(200, {"user_data": sorted(store.user_data.get(server_id, {}))})


def get_user_data(store: Store, req: Request, zone: str, server_id: str, key: str) -> Response:
    check_zone(zone)
    store.get_server(zone, server_id)
    data = store.user_data.get(server_id, {})
    if key not in data:
        raise ApiError.not_found("instance_user_data", key)
    return Response(200, data[key], content_type="text/plain")


def set_user_data(store: Store, req: Request, zone: str, server_id: str, key: str) -> Response:
    check_zone(zone)
    store.get_server(zone, server_id, "write")
    store.user_data.setdefault(server_id, {})[key] = req.body
    return Response(204)


def delete_user_data(store: Store, req: Request, zone: str, server_id: str, key: str) -> Response:
    check_zone(zone)
    store.get_server(zone, server_id, "write")
    data = store.user_data.get(server_id, {})
    if key not in data:
        raise ApiError.not_found("instance_user_data", key)
    del data[key]
    return Response(204)


# ------------------------------------------------------------ attach/detach


def attach_volume(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id, "write")
    body = req.json()
    volume_id = body.get("volume_id")
    if body.get("volume_type") not in (None, "sbs_volume"):
        raise ApiError.invalid_arguments({"volume_type": "fakescw only attaches sbs_volume volumes"})
    volume = store.block_volumes.get(volume_id) if isinstance(volume_id, str) else None
    if volume is None or volume["zone"] != zone:
        raise ApiError.not_found("block_volume", str(volume_id))
    if store.settle_block_volume(volume)["status"] == "creating":
        raise ApiError.invalid_request(f"volume {volume_id} is not available yet (status creating)")
    if volume["references"]:
        raise ApiError.invalid_request(f"volume {volume_id} is already attached to a server")
    slot = 0
    while str(slot) in server["volumes"]:
        slot += 1
    store.attach_block_volume(volume, server_id)
    server["volumes"][str(slot)] = {"id": volume_id, "volume_type": "sbs_volume", "boot": bool(body.get("boot"))}
    server["modification_date"] = iso(store.now())
    return _server_response(store, server)


def detach_volume(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id, "write")
    volume_id = req.json().get("volume_id")
    slot = next((key for key, value in server["volumes"].items() if value["id"] == volume_id), None)
    if slot is None:
        raise ApiError.not_found("instance_volume", str(volume_id))
    entry = server["volumes"].pop(slot)
    if entry["volume_type"] == "sbs_volume" and volume_id in store.block_volumes:
        store.detach_block_volume(store.block_volumes[volume_id])
    elif volume_id in store.local_volumes:
        store.local_volumes[volume_id]["server_id"] = None
    server["modification_date"] = iso(store.now())
    return _server_response(store, server)


# -------------------------------------------------------------------- IPs


def _ip_type(value: Any) -> str:
    ip_type = value or "routed_ipv4"
    if ip_type not in IP_TYPES:
        raise ApiError.invalid_arguments({"type": f"one of {', '.join(IP_TYPES)}"})
    return ip_type


def list_ips(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    tags = req.q_all("tags")
    name = req.q("name") or ""
    ip_type = req.q("type")
    out = [
        ip
        for ip in store.ips.values()
        if ip["zone"] == zone
        and owned_by(req, store, ip["project"], ip["organization"])
        and tags_match_all(tags, ip["tags"])
        and name in (store.ip_address(ip) or ip["prefix"] or "")
        and (not ip_type or ip["type"] == ip_type)
    ]
    out.sort(key=lambda ip: ip["seq"], reverse=True)
    return instance_list(req, "ips", [store.render_ip(ip) for ip in out])


def create_ip(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    body = req.json()
    project = store.resolve_project(body)
    store.check_access(project, "instance_ip", "write")
    ip_type = _ip_type(body.get("type"))
    tags = _string_list(body, "tags") or []
    server = store.get_server(zone, body["server"], "write") if body.get("server") else None
    ip = store.create_ip(zone, project, ip_type, tags)
    if server is not None:
        store.attach_ip(ip, server)
    response = Response(201, {"ip": store.render_ip(ip)})
    response.headers["location"] = f"{req.base_url}/instance/v1/zones/{zone}/ips/{ip['id']}"
    return response


def get_ip(store: Store, req: Request, zone: str, ip_id: str) -> Response:
    check_zone(zone)
    return Response(200, {"ip": store.render_ip(_flexible_ip(store, zone, ip_id))})


def update_ip(store: Store, req: Request, zone: str, ip_id: str) -> Response:
    check_zone(zone)
    ip = _flexible_ip(store, zone, ip_id)
    store.check_access(ip["project"], "instance_ip", "write")
    body = req.json()
    if body.get("type") is not None and _ip_type(body["type"]) != ip["type"]:
        raise ApiError.invalid_request("the type of an IP cannot be changed")
    if "tags" in body and body["tags"] is not None:
        ip["tags"] = _string_list(body, "tags") or []
    if "reverse" in body:
        ip["reverse"] = body["reverse"] or None
    if "server" in body:
        target = body["server"]
        if target in (None, ""):
            store.detach_ip(ip)
        else:
            server = store.get_server(zone, target, "write")
            if ip["server_id"] != server["id"]:
                store.attach_ip(ip, server)
    ip["updated_at"] = store.now()
    return Response(200, {"ip": store.render_ip(ip)})


def delete_ip(store: Store, req: Request, zone: str, ip_id: str) -> Response:
    check_zone(zone)
    ip = _flexible_ip(store, zone, ip_id)
    store.check_access(ip["project"], "instance_ip", "delete")
    del store.ips[ip["id"]]
    return Response(204)


# -------------------------------------------------------- security groups


def list_security_groups(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    name = (req.q("name") or "").lower()
    tags = req.q_all("tags")
    project_default = req.q_bool("project_default")
    out = [
        sg
        for sg in store.security_groups.values()
        if sg["zone"] == zone
        and owned_by(req, store, sg["project"], sg["organization"])
        and name in sg["name"].lower()
        and tags_match_all(tags, sg["tags"])
        and (project_default is None or sg["project_default"] == project_default)
    ]
    out.sort(key=lambda sg: sg["seq"], reverse=True)
    return instance_list(req, "security_groups", [store.render_security_group(sg) for sg in out])


def create_security_group(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    body = req.json()
    project = store.resolve_project(body)
    store.check_access(project, "instance_security_group", "write")
    _string_list(body, "tags")
    for key in ("inbound_default_policy", "outbound_default_policy"):
        if body.get(key) is not None and body[key] not in ("accept", "drop"):
            raise ApiError.invalid_arguments({key: f"must be accept or drop, not {body[key]!r}"})
    if body.get("stateful") is not None and not isinstance(body["stateful"], bool):
        raise ApiError.invalid_arguments({"stateful": "must be a boolean"}, reason="format")
    sg = store.create_security_group(zone, project, body)
    if sg["project_default"]:
        for other in store.security_groups.values():
            if other is not sg and other["zone"] == zone and other["project"] == project:
                other["project_default"] = False
    return Response(201, {"security_group": store.render_security_group(sg)})


def _get_zonal(collection: dict[str, dict[str, Any]], store: Store, kind: str, zone: str, ref: str) -> dict[str, Any]:
    """A resource of this zone that the caller's key may read, or the API's not_found."""
    resource = collection.get(ref)
    if resource is None or resource["zone"] != zone:
        raise ApiError.not_found(kind, ref)
    store.check_access(resource["project"], kind)
    return resource


def _get_sg(store: Store, zone: str, sg_id: str) -> dict[str, Any]:
    return _get_zonal(store.security_groups, store, "instance_security_group", zone, sg_id)


def get_security_group(store: Store, req: Request, zone: str, sg_id: str) -> Response:
    check_zone(zone)
    return Response(200, {"security_group": store.render_security_group(_get_sg(store, zone, sg_id))})


def delete_security_group(store: Store, req: Request, zone: str, sg_id: str) -> Response:
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    if any(server["security_group_id"] == sg_id for server in store.servers.values()):
        raise ApiError.invalid_request("group is in use. you cannot delete it")
    if sg["project_default"]:
        raise ApiError.invalid_request("cannot delete the project's default security group")
    del store.security_groups[sg_id]
    store.security_group_rules.pop(sg_id, None)
    return Response(204)


# ------------------------------------------------------------ private NICs


def list_private_nics(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id)
    tags = req.q_all("tags")
    nics = [nic for nic in store.server_nics(server) if tags_match_all(tags, nic["tags"])]
    return instance_list(req, "private_nics", [store.render_private_nic(nic) for nic in nics])


def create_private_nic(store: Store, req: Request, zone: str, server_id: str) -> Response:
    check_zone(zone)
    server = store.get_server(zone, server_id, "write")
    body = req.json()
    network = body.get("private_network_id")
    if not network or not isinstance(network, str):
        raise ApiError.invalid_arguments({"private_network_id": "required key not provided"}, reason="required")
    tags = _string_list(body, "tags") or []
    if any(nic["private_network_id"] == network for nic in store.server_nics(server)):
        raise ApiError.invalid_request(f"server {server_id} is already attached to private network {network}")
    nic = store.create_private_nic(server, network, tags)
    server["modification_date"] = iso(store.now())
    return Response(201, {"private_nic": store.render_private_nic(nic)})


def _get_nic(store: Store, zone: str, server_id: str, nic_id: str, action: str = "read") -> dict[str, Any]:
    store.get_server(zone, server_id, action)
    nic = store.private_nics.get(nic_id)
    if nic is None or nic["server_id"] != server_id:
        raise ApiError.not_found("instance_private_nic", nic_id)
    return nic


def get_private_nic(store: Store, req: Request, zone: str, server_id: str, nic_id: str) -> Response:
    check_zone(zone)
    return Response(200, {"private_nic": store.render_private_nic(_get_nic(store, zone, server_id, nic_id))})


def update_private_nic(store: Store, req: Request, zone: str, server_id: str, nic_id: str) -> Response:
    check_zone(zone)
    nic = _get_nic(store, zone, server_id, nic_id, "write")
    tags = _string_list(req.json(), "tags")
    if tags is not None:
        nic["tags"] = tags
    return Response(200, store.render_private_nic(nic))


def delete_private_nic(store: Store, req: Request, zone: str, server_id: str, nic_id: str) -> Response:
    check_zone(zone)
    store.delete_private_nic(_get_nic(store, zone, server_id, nic_id, "write"))
    return Response(204)


# ----------------------------------------------------------------- catalog


def list_server_types(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    offered = sorted(types_in_zone(zone), key=lambda t: t.name)
    page = instance_list(req, "servers", [(t.name, t.to_api()) for t in offered])
    page.body["servers"] = dict(page.body["servers"])
    return page


def server_types_availability(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    offered = sorted(types_in_zone(zone), key=lambda t: t.name)
    entries = [(t.name, {"availability": store.availability.get((zone, t.name), "available")}) for t in offered]
    page = instance_list(req, "servers", entries)
    page.body["servers"] = dict(page.body["servers"])
    page.body["total_count"] = len(entries)
    return page


# ------------------------------------------------------------------ images


def list_images(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    name = (req.q("name") or "").lower()
    arch = req.q("arch")
    public = req.q_bool("public")
    images = [
        image.instance_image()
        for image in LOCAL_IMAGES.values()
        if image.zone == zone
        and name in image.name.lower()
        and (not arch or image.arch == arch)
        and public is not False
    ]
    return instance_list(req, "images", images)


def get_image(store: Store, req: Request, zone: str, image_id: str) -> Response:
    check_zone(zone)
    image = LOCAL_IMAGES.get(image_id)
    if image is None or image.zone != zone:
        raise ApiError.not_found("instance_image", image_id)
    return Response(200, {"image": image.instance_image()})


# --------------------------------------------------------- local volumes


def list_volumes(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    name = (req.q("name") or "").lower()
    tags = req.q_all("tags")
    out = [
        volume
        for volume in store.local_volumes.values()
        if volume["zone"] == zone
        and owned_by(req, store, volume["project"], volume["organization"])
        and name in volume["name"].lower()
        and tags_match_all(tags, volume["tags"])
    ]
    out.sort(key=lambda volume: volume["seq"], reverse=True)
    return instance_list(req, "volumes", [store.render_local_volume(volume) for volume in out])


def _get_local_volume(store: Store, zone: str, volume_id: str) -> dict[str, Any]:
    return _get_zonal(store.local_volumes, store, "instance_volume", zone, volume_id)


def get_volume(store: Store, req: Request, zone: str, volume_id: str) -> Response:
    check_zone(zone)
    return Response(200, {"volume": store.render_local_volume(_get_local_volume(store, zone, volume_id))})


def delete_volume(store: Store, req: Request, zone: str, volume_id: str) -> Response:
    check_zone(zone)
    volume = _get_local_volume(store, zone, volume_id)
    if volume["server_id"]:
        raise ApiError.invalid_request("a volume attached to a server cannot be deleted")
    del store.local_volumes[volume_id]
    return Response(204)


def register(router: Router) -> None:
    routes = [
        ("GET", "/servers", list_servers),
        ("POST", "/servers", create_server),
        ("GET", "/servers/{server_id}", get_server),
        ("PATCH", "/servers/{server_id}", update_server),
        ("DELETE", "/servers/{server_id}", delete_server),
        ("GET", "/servers/{server_id}/action", list_actions),
        ("POST", "/servers/{server_id}/action", server_action),
        ("GET", "/servers/{server_id}/user_data", list_user_data),
        ("GET", "/servers/{server_id}/user_data/{key}", get_user_data),
        ("PATCH", "/servers/{server_id}/user_data/{key}", set_user_data),
        ("DELETE", "/servers/{server_id}/user_data/{key}", delete_user_data),
        ("POST", "/servers/{server_id}/attach-volume", attach_volume),
        ("POST", "/servers/{server_id}/detach-volume", detach_volume),
        ("GET", "/servers/{server_id}/private_nics", list_private_nics),
        ("POST", "/servers/{server_id}/private_nics", create_private_nic),
        ("GET", "/servers/{server_id}/private_nics/{nic_id}", get_private_nic),
        ("PATCH", "/servers/{server_id}/private_nics/{nic_id}", update_private_nic),
        ("DELETE", "/servers/{server_id}/private_nics/{nic_id}", delete_private_nic),
        ("GET", "/ips", list_ips),
        ("POST", "/ips", create_ip),
        ("GET", "/ips/{ip_id}", get_ip),
        ("PATCH", "/ips/{ip_id}", update_ip),
        ("DELETE", "/ips/{ip_id}", delete_ip),
        ("GET", "/security_groups", list_security_groups),
        ("POST", "/security_groups", create_security_group),
        ("GET", "/security_groups/{sg_id}", get_security_group),
        ("DELETE", "/security_groups/{sg_id}", delete_security_group),
        ("GET", "/products/servers", list_server_types),
        ("GET", "/products/servers/availability", server_types_availability),
        ("GET", "/images", list_images),
        ("GET", "/images/{image_id}", get_image),
        ("GET", "/volumes", list_volumes),
        ("GET", "/volumes/{volume_id}", get_volume),
        ("DELETE", "/volumes/{volume_id}", delete_volume),
    ]
    for method, path, handler in routes:
        router.add(method, PREFIX + path, handler)
