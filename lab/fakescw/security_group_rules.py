"""Instance API: security group updates and rules, ``/instance/v1/zones/{zone}/security_groups/...``.

The shapes follow the real API as the Go SDK's recordings show it (a rule is
``id, protocol, direction, ip_range, dest_ip_range, dest_port_from, dest_port_to,
position, editable, action, zone``; ``protocol`` in capitals; a ``/32`` range
answered as a bare address; ``dest_port_to`` null when it equals
``dest_port_from``) and the SDK's documentation of the endpoints (rules sent
with ``editable: false`` are ignored; ports are null for ICMP and ANY).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .catalog import stable_id
from .errors import ApiError
from .routing import Request, Response, Router, check_zone, instance_list
from .store import Store, iso, new_id

PREFIX = "/instance/v1/zones/{zone}/security_groups"
PROTOCOLS = ("TCP", "UDP", "ICMP", "ANY")
DIRECTIONS = ("inbound", "outbound")
ACTIONS = ("accept", "drop")
POLICIES = ("accept", "drop")
RULE_KIND = "instance_security_group_rule"
# What ``enable_default_security`` adds to every group: outbound SMTP dropped, over IPv4 and IPv6. The real
# API lists such rules with ``editable: false``; their exact set and place in the list are a best guess.
DEFAULT_RULES = [("TCP", port, ip_range) for ip_range in ("0.0.0.0/0", "::/0") for port in (25, 465, 587)]


# ------------------------------------------------------------------ rules


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...], field: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError.invalid_arguments({field: "required key not provided"}, reason="required")
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ApiError.invalid_arguments({field: f"must be one of {', '.join(choices)}, not {value!r}"})


def _port(body: dict[str, Any], key: str, field: str) -> int | None:
    value = body.get(key)
    if value is None or value == 0:  # the SDK sends 0 for "not set"
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ApiError.invalid_arguments({field: "must be a port between 1 and 65535"})
    return value


def _ip_range(body: dict[str, Any], field: str) -> str:
    value = body.get("ip_range")
    if not isinstance(value, str) or not value:
        raise ApiError.invalid_arguments({field: "required key not provided"}, reason="required")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ApiError.invalid_arguments({field: f"not an IP network: {exc}"}, reason="format") from None
    return str(network)


def parse_rule(body: Any, prefix: str = "") -> dict[str, Any]:
    """A rule's fields from a request body, normalized as the API stores them; 400 naming the field otherwise."""
    if not isinstance(body, dict):
        raise ApiError.invalid_arguments({prefix.rstrip(".") or "rule": "must be an object"}, reason="format")
    protocol = _choice(body, "protocol", PROTOCOLS, f"{prefix}protocol")
    rule = {
        "protocol": protocol,
        "direction": _choice(body, "direction", DIRECTIONS, f"{prefix}direction"),
        "action": _choice(body, "action", ACTIONS, f"{prefix}action"),
        "ip_range": _ip_range(body, f"{prefix}ip_range"),
        "dest_port_from": _port(body, "dest_port_from", f"{prefix}dest_port_from"),
        "dest_port_to": _port(body, "dest_port_to", f"{prefix}dest_port_to"),
    }
    if protocol in ("ICMP", "ANY"):
        rule["dest_port_from"] = rule["dest_port_to"] = None
    if rule["dest_port_to"] is not None:
        if rule["dest_port_from"] is None:
            raise ApiError.invalid_arguments({f"{prefix}dest_port_to": "needs dest_port_from"})
        if rule["dest_port_to"] < rule["dest_port_from"]:
            raise ApiError.invalid_arguments({f"{prefix}dest_port_to": "must not be lower than dest_port_from"})
        if rule["dest_port_to"] == rule["dest_port_from"]:
            rule["dest_port_to"] = None
    return rule


def _position(body: dict[str, Any], field: str) -> int | None:
    value = body.get("position")
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiError.invalid_arguments({field: "must be a positive integer"})
    return value


def _shown_range(ip_range: str) -> str:
    """``8.8.8.8/32`` is answered as ``8.8.8.8``, as the real API does; other networks keep their prefix."""
    network = ipaddress.ip_network(ip_range)
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def render_rule(rule: dict[str, Any], zone: str, position: int, editable: bool = True) -> dict[str, Any]:
    return {
        "id": rule["id"],
        "protocol": rule["protocol"],
        "direction": rule["direction"],
        "ip_range": _shown_range(rule["ip_range"]),
        "dest_ip_range": None,
        "dest_port_from": rule["dest_port_from"],
        "dest_port_to": rule["dest_port_to"],
        "position": position,
        "editable": editable,
        "action": rule["action"],
        "zone": zone,
    }


def default_rules(zone: str, owner: str) -> list[dict[str, Any]]:
    """The non-editable rules of ``enable_default_security`` (``owner``: a group's id, or ``default``)."""
    return [
        {
            "id": stable_id("security-group-default-rule", zone, owner, str(index)),
            "protocol": protocol,
            "direction": "outbound",
            "action": "drop",
            "ip_range": ip_range,
            "dest_port_from": port,
            "dest_port_to": None,
        }
        for index, (protocol, port, ip_range) in enumerate(DEFAULT_RULES)
    ]


def _editable(store: Store, sg: dict[str, Any]) -> list[dict[str, Any]]:
    return store.security_group_rules.setdefault(sg["id"], [])


def rendered_rules(store: Store, sg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rule of a group by position: the editable ones (1..n), then the non-editable defaults."""
    editable = _editable(store, sg)
    out = [render_rule(rule, sg["zone"], index + 1) for index, rule in enumerate(editable)]
    if sg["enable_default_security"]:
        start = len(out) + 1
        out += [
            render_rule(rule, sg["zone"], start + index, editable=False)
            for index, rule in enumerate(default_rules(sg["zone"], sg["id"]))
        ]
    return out


def _get_sg(store: Store, zone: str, sg_id: str) -> dict[str, Any]:
    sg = store.security_groups.get(sg_id)
    if sg is None or sg["zone"] != zone:
        raise ApiError.not_found("instance_security_group", sg_id)
    store.check_access(sg["project"], "instance_security_group")
    return sg


def _touch(store: Store, sg: dict[str, Any]) -> None:
    sg["modification_date"] = iso(store.now())


def _find_rule(store: Store, sg: dict[str, Any], rule_id: str) -> tuple[int, dict[str, Any]] | None:
    for index, rule in enumerate(_editable(store, sg)):
        if rule["id"] == rule_id:
            return index, rule
    return None


def _rule_or_404(store: Store, sg: dict[str, Any], rule_id: str) -> tuple[int, dict[str, Any]]:
    found = _find_rule(store, sg, rule_id)
    if found is None:
        if any(rule["id"] == rule_id for rule in default_rules(sg["zone"], sg["id"])):
            raise ApiError.invalid_request("this rule is not editable")
        raise ApiError.not_found(RULE_KIND, rule_id)
    return found


# ---------------------------------------------------------------- handlers


def update_security_group(store: Store, req: Request, zone: str, sg_id: str) -> Response:
    """PATCH: name, description, tags, stateful, the default policies, project_default."""
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    store.check_access(sg["project"], "instance_security_group", "write")
    body = req.json()
    changes: dict[str, Any] = {}
    for key in ("name", "description"):
        if body.get(key) is not None:
            if not isinstance(body[key], str) or (key == "name" and not body[key]):
                raise ApiError.invalid_arguments({key: "must be a non-empty string"})
            changes[key] = body[key]
    for key in ("inbound_default_policy", "outbound_default_policy"):
        if body.get(key) is not None:
            changes[key] = _choice(body, key, POLICIES, key)
    for key in ("stateful", "project_default"):
        if body.get(key) is not None:
            if not isinstance(body[key], bool):
                raise ApiError.invalid_arguments({key: "must be a boolean"}, reason="format")
            changes[key] = body[key]
    if body.get("tags") is not None:
        tags = body["tags"]
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ApiError.invalid_arguments({"tags": "must be a list of strings"}, reason="format")
        changes["tags"] = list(tags)
    if changes.get("project_default"):
        for other in store.security_groups.values():
            if other is not sg and other["zone"] == zone and other["project"] == sg["project"]:
                other["project_default"] = False
    sg.update(changes)
    _touch(store, sg)
    return Response(200, {"security_group": store.render_security_group(sg)})


def list_rules(store: Store, req: Request, zone: str, sg_id: str) -> Response:
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    return instance_list(req, "rules", rendered_rules(store, sg))


def list_default_rules(store: Store, req: Request, zone: str) -> Response:
    check_zone(zone)
    rules = [
        render_rule(rule, zone, index + 1, editable=False) for index, rule in enumerate(default_rules(zone, "default"))
    ]
    return instance_list(req, "rules", rules)


def set_rules(store: Store, req: Request, zone: str, sg_id: str) -> Response:
    """PUT: the group's editable rules become exactly the list (ids given: updated in place; others: new).

    Every rule is checked before anything changes. A rule sent with ``editable: false`` is ignored, as the
    SDK documents; the non-editable default rules always stay.
    """
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    store.check_access(sg["project"], "instance_security_group", "write")
    entries = req.json().get("rules")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ApiError.invalid_arguments({"rules": "must be a list"}, reason="format")
    existing = {rule["id"]: rule for rule in _editable(store, sg)}
    planned: list[tuple[int, int, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        prefix = f"rules.{index}."
        if isinstance(entry, dict) and entry.get("editable") is False:
            continue
        rule = parse_rule(entry, prefix)
        rule_id = entry.get("id")
        if rule_id is not None:
            if not isinstance(rule_id, str) or rule_id not in existing:
                if isinstance(rule_id, str) and any(r["id"] == rule_id for r in default_rules(zone, sg["id"])):
                    raise ApiError.invalid_request("this rule is not editable")
                raise ApiError.not_found(RULE_KIND, str(rule_id))
            if rule_id in seen:
                raise ApiError.invalid_arguments({f"{prefix}id": "the same rule is given twice"})
            seen.add(rule_id)
        rule["id"] = rule_id or new_id()
        position = _position(entry, f"{prefix}position")
        planned.append((position if position is not None else len(entries) + index + 1, index, rule))
    planned.sort(key=lambda item: (item[0], item[1]))
    store.security_group_rules[sg["id"]] = [rule for _position_, _index, rule in planned]
    _touch(store, sg)
    return Response(200, {"rules": rendered_rules(store, sg)})


def create_rule(store: Store, req: Request, zone: str, sg_id: str) -> Response:
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    store.check_access(sg["project"], "instance_security_group", "write")
    body = req.json()
    rule = parse_rule(body)
    position = _position(body, "position")
    rule["id"] = new_id()
    rules = _editable(store, sg)
    place = len(rules) if position is None else min(position - 1, len(rules))
    rules.insert(place, rule)
    _touch(store, sg)
    location = f"{req.base_url}/instance/v1/zones/{zone}/security_groups/{sg['id']}/rules/{rule['id']}"
    return Response(201, {"rule": render_rule(rule, zone, place + 1)}, headers={"location": location})


def get_rule(store: Store, req: Request, zone: str, sg_id: str, rule_id: str) -> Response:
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    for rendered in rendered_rules(store, sg):
        if rendered["id"] == rule_id:
            return Response(200, {"rule": rendered})
    raise ApiError.not_found(RULE_KIND, rule_id)


def update_rule(store: Store, req: Request, zone: str, sg_id: str, rule_id: str) -> Response:
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    store.check_access(sg["project"], "instance_security_group", "write")
    index, rule = _rule_or_404(store, sg, rule_id)
    body = req.json()
    merged = {key: rule[key] for key in ("protocol", "direction", "action", "ip_range")}
    merged |= {"dest_port_from": rule["dest_port_from"], "dest_port_to": rule["dest_port_to"]}
    merged |= {key: value for key, value in body.items() if value is not None}
    if "dest_port_from" in body and "dest_port_to" not in body:
        merged["dest_port_to"] = None
    updated = parse_rule(merged)
    rule.update(updated)
    position = _position(body, "position")
    rules = _editable(store, sg)
    if position is not None:
        rules.pop(index)
        index = min(position - 1, len(rules))
        rules.insert(index, rule)
    _touch(store, sg)
    return Response(200, {"rule": render_rule(rule, zone, index + 1)})


def delete_rule(store: Store, req: Request, zone: str, sg_id: str, rule_id: str) -> Response:
    check_zone(zone)
    sg = _get_sg(store, zone, sg_id)
    store.check_access(sg["project"], "instance_security_group", "write")
    index, _rule = _rule_or_404(store, sg, rule_id)
    _editable(store, sg).pop(index)
    _touch(store, sg)
    return Response(204)


def register(router: Router) -> None:
    routes = [
        ("PATCH", "/{sg_id}", update_security_group),
        # before the {sg_id} routes: "default" is not a group id
        ("GET", "/default/rules", list_default_rules),
        ("GET", "/{sg_id}/rules", list_rules),
        ("PUT", "/{sg_id}/rules", set_rules),
        ("POST", "/{sg_id}/rules", create_rule),
        ("GET", "/{sg_id}/rules/{rule_id}", get_rule),
        ("PATCH", "/{sg_id}/rules/{rule_id}", update_rule),
        ("DELETE", "/{sg_id}/rules/{rule_id}", delete_rule),
    ]
    for method, path, handler in routes:
        router.add(method, PREFIX + path, handler)
