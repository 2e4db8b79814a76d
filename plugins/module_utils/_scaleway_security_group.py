# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of the scaleway_security_group module (private).

``validate`` checks and normalizes every option without the API; ``SecurityGroupManager``
finds the group by its exact name, predicts or applies the changes (group settings
through ``update_security_group``, the whole rule list at once through
``set_security_group_rules``) and describes the result.

Rules are compared in a normal form: protocol in capitals, the IP range as a
network with its prefix length (the API answers ``203.0.113.7/32`` as
``203.0.113.7``), ``dest_port_to`` empty when it equals ``dest_port_from``, no
ports for ICMP and ANY. Only editable rules count: the API also lists the
rules Scaleway adds to every group (outbound SMTP blocked), which nobody can
change. Order matters within a direction (the first matching rule wins).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    ZONE_RE,
    ScalewayClient,
    ScalewayError,
    ScalewayInputError,
    to_plain,
)

try:
    from scaleway.instance.v1 import (
        SecurityGroupRuleAction,
        SecurityGroupRuleDirection,
        SecurityGroupRuleProtocol,
        SetSecurityGroupRulesRequestRule,
    )
except ImportError:  # reported by ScalewayModule
    SecurityGroupRuleAction = SecurityGroupRuleDirection = SecurityGroupRuleProtocol = None
    SetSecurityGroupRulesRequestRule = None

PROTOCOLS = ("TCP", "UDP", "ICMP", "ANY")
DIRECTIONS = ("inbound", "outbound")
ACTIONS = ("accept", "drop")
POLICIES = ("accept", "drop")
DEFAULT_DESCRIPTION = "Managed by Ansible (parrotpark.llm.scaleway_security_group)"
RULE_KEYS = ("direction", "action", "protocol", "ip_range", "dest_port_from", "dest_port_to")

RULE_SPEC: dict[str, Any] = {
    "direction": {"type": "str", "required": True, "choices": list(DIRECTIONS)},
    "action": {"type": "str", "required": True, "choices": list(ACTIONS)},
    "protocol": {"type": "str", "required": True, "choices": list(PROTOCOLS)},
    "ip_range": {"type": "str", "required": True},
    "dest_port_from": {"type": "int"},
    "dest_port_to": {"type": "int"},
}

ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "zone": {"type": "str"},
    "description": {"type": "str"},
    "inbound_default_policy": {"type": "str", "choices": list(POLICIES)},
    "outbound_default_policy": {"type": "str", "choices": list(POLICIES)},
    "stateful": {"type": "bool", "default": True},
    "rules": {"type": "list", "elements": "dict", "options": RULE_SPEC},
}


# --------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------


def _network(value: str, where: str) -> str:
    """The CIDR network of an ip_range option (a bare address is one host); ScalewayInputError otherwise."""
    text = (value or "").strip()
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ScalewayInputError(
            f"{where}.ip_range: {value!r} is not an IPv4 or IPv6 network in CIDR notation "
            "(such as 10.0.0.0/8, or 203.0.113.7/32 for one address)."
        ) from None
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        address = text.split("/", 1)[0]
        single = f"{address}/{loose.max_prefixlen}"
        raise ScalewayInputError(
            f"{where}.ip_range: {value!r} has host bits set; write {loose} for the whole network "
            f"or {single} for the one address."
        ) from None
    return str(loose)


def _port(value: int | None, where: str, key: str) -> int | None:
    if value is None:
        return None
    if not 1 <= value <= 65535:
        raise ScalewayInputError(f"{where}.{key}: a port is between 1 and 65535, got {value}.")
    return value


def normalize_rule(rule: dict[str, Any], where: str) -> dict[str, Any]:
    """One option rule in the normal form; ScalewayInputError naming the rule and the field otherwise."""
    protocol = rule["protocol"]
    port_from = _port(rule.get("dest_port_from"), where, "dest_port_from")
    port_to = _port(rule.get("dest_port_to"), where, "dest_port_to")
    if protocol in ("ICMP", "ANY") and (port_from is not None or port_to is not None):
        raise ScalewayInputError(
            f"{where}: a {protocol} rule applies to every port; remove dest_port_from and dest_port_to "
            "(ports only go with TCP or UDP)."
        )
    if port_to is not None and port_from is None:
        raise ScalewayInputError(
            f"{where}.dest_port_to: set dest_port_from too (the first port of the range); "
            "for one port set only dest_port_from."
        )
    if port_from is not None and port_to is not None and port_from > port_to:
        raise ScalewayInputError(
            f"{where}: dest_port_from ({port_from}) is greater than dest_port_to ({port_to}); "
            "a range goes from the lower port to the higher."
        )
    return {
        "direction": rule["direction"],
        "action": rule["action"],
        "protocol": protocol,
        "ip_range": _network(rule["ip_range"], where),
        "dest_port_from": port_from,
        "dest_port_to": None if port_to == port_from else port_to,
    }


def validate(params: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Check every option without the API; the wanted rules in normal form (None: rules not managed)."""
    if not (params["name"] or "").strip():
        raise ScalewayInputError("name must not be empty: give the security group's exact name.")
    if params["name"] != params["name"].strip():
        raise ScalewayInputError(f"name must not begin or end with spaces, got {params['name']!r}.")
    if params["zone"] is not None and not ZONE_RE.match(params["zone"]):
        raise ScalewayInputError(f"zone must look like fr-par-2, got {params['zone']!r}.")
    if params["rules"] is None:
        return None
    wanted: list[dict[str, Any]] = []
    for index, rule in enumerate(params["rules"]):
        normal = normalize_rule(rule, f"rules[{index}]")
        if normal in wanted:
            first = wanted.index(normal)
            raise ScalewayInputError(
                f"rules[{index}] repeats rules[{first}] ({describe_rule(normal)}); give each rule once."
            )
        wanted.append(normal)
    return wanted


def describe_rule(rule: dict[str, Any]) -> str:
    ports = ""
    if rule["dest_port_from"] is not None:
        ports = f" port {rule['dest_port_from']}"
        if rule["dest_port_to"] is not None:
            ports = f" ports {rule['dest_port_from']}-{rule['dest_port_to']}"
    return f"{rule['direction']} {rule['action']} {rule['protocol']}{ports} {rule['ip_range']}"


# --------------------------------------------------------------------------
# What the API answers
# --------------------------------------------------------------------------


def _value(value: Any) -> str:
    return str(to_plain(value) or "")


def api_rule(rule: Any) -> dict[str, Any]:
    """An API rule (SDK object or dict) in the normal form, with its id, position and editable flag."""
    plain = to_plain(rule)
    protocol = _value(plain.get("protocol")).upper()
    port_from = plain.get("dest_port_from") or None
    port_to = plain.get("dest_port_to") or None
    if protocol in ("ICMP", "ANY"):
        port_from = port_to = None
    try:
        ip_range = str(ipaddress.ip_network(plain.get("ip_range") or "", strict=False))
    except ValueError:
        ip_range = plain.get("ip_range")
    return {
        "id": plain.get("id"),
        "position": plain.get("position"),
        "editable": plain.get("editable") is not False,
        "direction": _value(plain.get("direction")).lower(),
        "action": _value(plain.get("action")).lower(),
        "protocol": protocol,
        "ip_range": ip_range,
        "dest_port_from": port_from,
        "dest_port_to": None if port_to == port_from else port_to,
    }


def content(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: rule[key] for key in RULE_KEYS}


def by_direction(rules: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rules' contents per direction, in order: what decides what a packet meets."""
    return {direction: [content(rule) for rule in rules if rule["direction"] == direction] for direction in DIRECTIONS}


# --------------------------------------------------------------------------
# The manager
# --------------------------------------------------------------------------


class SecurityGroupManager:
    """Finds, creates, converges or removes one security group identified by its exact name."""

    def __init__(
        self,
        api: ScalewayClient,
        params: dict[str, Any],
        zone: str,
        wanted: list[dict[str, Any]] | None,
        check_mode: bool,
    ) -> None:
        self.api = api
        self.params = params
        self.zone = zone
        self.wanted = wanted
        self.check_mode = check_mode
        self.changed = False

    # ---------------------------------------------------------------- reading

    def find(self) -> dict[str, Any] | None:
        name = self.params["name"]
        groups = self.api.call(
            f"listing security groups in {self.zone}",
            self.api.instance.list_security_groups_all,
            zone=self.zone,
            project=self.api.project_id,
            name=name,
        )
        exact = [to_plain(group) for group in groups if group.name == name]
        if len(exact) > 1:
            ids = ", ".join(group["id"] for group in exact)
            raise ScalewayError(
                f"name: {len(exact)} security groups are named {name!r} in {self.zone} ({ids}); the module manages "
                "one group per name. Rename or remove the extra ones.",
                kind="duplicate_name",
            )
        return exact[0] if exact else None

    def rules_of(self, group_id: str) -> list[dict[str, Any]]:
        """The group's editable rules, by position."""
        rules = self.api.call(
            f"listing the rules of security group {group_id}",
            self.api.instance.list_security_group_rules_all,
            security_group_id=group_id,
            zone=self.zone,
        )
        return _editable(rules)

    # ---------------------------------------------------------------- running

    def run(self) -> dict[str, Any]:
        group = self.find()
        if self.params["state"] == "absent":
            return self.remove(group)
        return self.ensure(group)

    def remove(self, group: dict[str, Any] | None) -> dict[str, Any]:
        if group is None:
            return self.result(None, {}, {})
        before = snapshot(group, self.rules_of(group["id"]))
        servers = group.get("servers") or []
        if servers:
            names = ", ".join(f"{server.get('name')} ({server.get('id')})" for server in servers)
            raise ScalewayError(
                f"security group {group['name']!r} ({group['id']}) is used by {names}; give those instances another "
                "security group (or remove them) first.",
                kind="in_use",
            )
        self.changed = True
        if not self.check_mode:
            self.api.call(
                f"deleting security group {group['id']}",
                self.api.instance.delete_security_group,
                security_group_id=group["id"],
                zone=self.zone,
            )
        return self.result(None, before, {})

    def settings(self) -> dict[str, Any]:
        """The group settings the options ask for (a policy or description not given is not managed)."""
        wanted = {"stateful": self.params["stateful"]}
        for key in ("inbound_default_policy", "outbound_default_policy", "description"):
            if self.params[key] is not None:
                wanted[key] = self.params[key]
        return wanted

    def ensure(self, group: dict[str, Any] | None) -> dict[str, Any]:
        wanted = self.settings()
        if group is None:
            return self.create(wanted)
        current = self.rules_of(group["id"])
        before = snapshot(group, current)
        updates = {key: value for key, value in wanted.items() if _setting(group, key) != value}
        if updates:
            self.changed = True
            if self.check_mode:
                group = {**group, **updates}
            else:
                answer = self.api.call(
                    f"updating security group {group['id']}",
                    self.api.instance.update_security_group,
                    security_group_id=group["id"],
                    zone=self.zone,
                    **updates,
                )
                group = to_plain(answer.security_group)
        rules = current
        if self.wanted is not None and by_direction(current) != by_direction(self.wanted):
            self.changed = True
            rules = self.predicted(current) if self.check_mode else self.set_rules(group["id"], current)
        return self.result(group, before, snapshot(group, rules), rules)

    def create(self, wanted: dict[str, Any]) -> dict[str, Any]:
        self.changed = True
        settings = {
            "inbound_default_policy": wanted.get("inbound_default_policy", "accept"),
            "outbound_default_policy": wanted.get("outbound_default_policy", "accept"),
            "description": wanted.get("description", DEFAULT_DESCRIPTION),
            "stateful": wanted["stateful"],
        }
        if self.check_mode:
            group = {
                "id": None,
                "name": self.params["name"],
                "zone": self.zone,
                "project": self.api.project_id,
                "project_default": False,
                "servers": [],
                **settings,
            }
            rules = self.predicted([])
            return self.result(group, {}, snapshot(group, rules), rules)
        answer = self.api.call(
            f"creating security group {self.params['name']!r} in {self.zone}",
            self.api.instance.create_security_group,
            zone=self.zone,
            name=self.params["name"],
            project=self.api.project_id,
            **settings,
        )
        group = to_plain(answer.security_group)
        rules = self.set_rules(group["id"], []) if self.wanted else []
        return self.result(group, {}, snapshot(group, rules), rules)

    def predicted(self, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rules as they will be: existing ones keep their id when their content is unchanged."""
        ids = self.reused_ids(current)
        return [
            {"id": rule_id, "position": index + 1, "editable": True, **rule}
            for index, (rule, rule_id) in enumerate(zip(self.wanted or [], ids, strict=True))
        ]

    def reused_ids(self, current: list[dict[str, Any]]) -> list[str | None]:
        free = list(current)
        ids: list[str | None] = []
        for rule in self.wanted or []:
            match = next((old for old in free if content(old) == rule), None)
            if match is not None:
                free.remove(match)
            ids.append(match["id"] if match is not None else None)
        return ids

    def set_rules(self, group_id: str, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the group's editable rules by the wanted list in one request; the rules as the API answers."""
        entries = [
            SetSecurityGroupRulesRequestRule(
                action=SecurityGroupRuleAction(rule["action"]),
                protocol=SecurityGroupRuleProtocol[rule["protocol"]],
                direction=SecurityGroupRuleDirection(rule["direction"]),
                ip_range=rule["ip_range"],
                position=index + 1,
                id=rule_id,
                dest_port_from=rule["dest_port_from"],
                dest_port_to=rule["dest_port_to"] or rule["dest_port_from"],
                editable=True,
            )
            for index, (rule, rule_id) in enumerate(zip(self.wanted or [], self.reused_ids(current), strict=True))
        ]
        answer = self.api.call(
            f"setting the rules of security group {group_id}",
            self.api.instance.set_security_group_rules,
            security_group_id=group_id,
            zone=self.zone,
            rules=entries,
        )
        if answer.rules is None:
            return self.rules_of(group_id)
        return _editable(answer.rules)

    def result(
        self,
        group: dict[str, Any] | None,
        before: dict[str, Any],
        after: dict[str, Any],
        rules: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "security_group": summarize(group, rules or []) if group is not None else None,
            "diff": {"before": before, "after": after},
        }


def _editable(rules: list[Any]) -> list[dict[str, Any]]:
    plain = [api_rule(rule) for rule in rules]
    return sorted((rule for rule in plain if rule["editable"]), key=lambda rule: rule["position"] or 0)


def _setting(group: dict[str, Any], key: str) -> Any:
    value = group.get(key)
    return value if isinstance(value, bool) else _value(value)


def _managed(group: dict[str, Any]) -> dict[str, Any]:
    """The group's settings the module manages, as the diff and the result show them."""
    return {
        "name": group.get("name"),
        "zone": group.get("zone"),
        "description": group.get("description"),
        "stateful": group.get("stateful"),
        "inbound_default_policy": _setting(group, "inbound_default_policy"),
        "outbound_default_policy": _setting(group, "outbound_default_policy"),
    }


def snapshot(group: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """What the diff shows: the managed settings and the editable rules in order, without ids."""
    return {**_managed(group), "rules": [content(rule) for rule in rules]}


def summarize(group: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The group as the module returns it."""
    return {
        "id": group.get("id"),
        **_managed(group),
        "project": group.get("project"),
        "project_default": bool(group.get("project_default")),
        "servers": [{"id": server.get("id"), "name": server.get("name")} for server in group.get("servers") or []],
        "rules": [{"id": rule["id"], "position": rule["position"], **content(rule)} for rule in rules],
    }
