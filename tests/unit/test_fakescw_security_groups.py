"""The fake Scaleway API's security group updates and rules (lab/fakescw/security_group_rules.py), through the SDK."""

from __future__ import annotations

from typing import Any

import pytest
import scaleway
from scaleway.instance.v1 import (
    InstanceV1API,
    SecurityGroupPolicy,
    SecurityGroupRuleAction,
    SecurityGroupRuleDirection,
    SecurityGroupRuleProtocol,
    SetSecurityGroupRulesRequestRule,
)
from scaleway_core.api import ScalewayException

from fakescw import FakeScaleway

ZONE = "fr-par-2"
# The keys of a rule, in the order of the real API's answers (the Go SDK's recording of security group rules).
RULE_KEYS = [
    "id",
    "protocol",
    "direction",
    "ip_range",
    "dest_ip_range",
    "dest_port_from",
    "dest_port_to",
    "position",
    "editable",
    "action",
    "zone",
]
SMTP = {(port, ip_range) for ip_range in ("0.0.0.0/0", "::/0") for port in (25, 465, 587)}


@pytest.fixture
def api(fake_scaleway: FakeScaleway) -> InstanceV1API:
    return InstanceV1API(scaleway.Client(**fake_scaleway.client_kwargs(ZONE)))


@pytest.fixture
def group(api: InstanceV1API, fake_scaleway: FakeScaleway) -> Any:
    return api.create_security_group(
        description="GPU",
        stateful=True,
        name="parrotpark-gpu",
        project=fake_scaleway.project_id,
        inbound_default_policy=SecurityGroupPolicy.DROP,
    ).security_group


def rule(**fields: Any) -> SetSecurityGroupRulesRequestRule:
    values: dict[str, Any] = {
        "action": SecurityGroupRuleAction.ACCEPT,
        "protocol": SecurityGroupRuleProtocol.TCP,
        "direction": SecurityGroupRuleDirection.INBOUND,
        "ip_range": "10.0.0.0/8",
        "position": 1,
        "dest_port_from": None,
        "dest_port_to": None,
        "editable": True,
    }
    values.update(fields)
    return SetSecurityGroupRulesRequestRule(**values)


def raw_rules(fake: FakeScaleway, group_id: str) -> list[dict[str, Any]]:
    status, body = fake.call("GET", f"/instance/v1/zones/{ZONE}/security_groups/{group_id}/rules")
    assert status == 200, body
    return body["rules"]


def error_of(exc: pytest.ExceptionInfo[ScalewayException]) -> tuple[int | None, dict[str, Any]]:
    return exc.value.status_code, exc.value.response.json()


def test_set_rules_answers_in_the_real_api_shape(api: InstanceV1API, fake_scaleway: FakeScaleway, group: Any) -> None:
    answer = api.set_security_group_rules(
        security_group_id=group.id,
        zone=ZONE,
        rules=[
            rule(protocol=SecurityGroupRuleProtocol.ANY, ip_range="172.16.0.0/22", position=1),
            rule(ip_range="203.0.113.7/32", dest_port_from=22, dest_port_to=22, position=2),
            rule(protocol=SecurityGroupRuleProtocol.UDP, dest_port_from=60000, dest_port_to=61000, position=3),
            rule(protocol=SecurityGroupRuleProtocol.ICMP, dest_port_from=8, position=4),
        ],
    )
    listed = raw_rules(fake_scaleway, group.id)
    assert [r.id for r in answer.rules] == [r["id"] for r in listed]
    assert all(list(r) == RULE_KEYS for r in listed)
    editable = [r for r in listed if r["editable"]]
    # protocol in capitals whatever the SDK sent; a /32 answered as the bare address; dest_port_to null when it
    # equals dest_port_from; no ports for ANY and ICMP; positions from 1 in the order sent
    assert [
        (r["protocol"], r["ip_range"], r["dest_port_from"], r["dest_port_to"], r["position"]) for r in editable
    ] == [
        ("ANY", "172.16.0.0/22", None, None, 1),
        ("TCP", "203.0.113.7", 22, None, 2),
        ("UDP", "10.0.0.0/8", 60000, 61000, 3),
        ("ICMP", "10.0.0.0/8", None, None, 4),
    ]
    assert {(r["direction"], r["action"], r["zone"], r["dest_ip_range"]) for r in editable} == {
        ("inbound", "accept", ZONE, None)
    }
    # the group's non-editable rules (outbound SMTP dropped) come after, untouched
    locked = [r for r in listed if not r["editable"]]
    assert {(r["dest_port_from"], r["ip_range"]) for r in locked} == SMTP
    assert {(r["direction"], r["action"], r["protocol"]) for r in locked} == {("outbound", "drop", "TCP")}
    assert [r["position"] for r in listed] == list(range(1, len(listed) + 1))
    # the SDK reads them back, all pages
    assert len(api.list_security_group_rules_all(security_group_id=group.id, zone=ZONE, per_page=3)) == len(listed)


def test_set_rules_replaces_the_list_and_keeps_the_ids_given(
    api: InstanceV1API, fake_scaleway: FakeScaleway, group: Any
) -> None:
    first = api.set_security_group_rules(
        security_group_id=group.id,
        zone=ZONE,
        rules=[rule(ip_range="10.1.0.0/16", position=1), rule(ip_range="10.2.0.0/16", position=2)],
    ).rules
    kept, dropped = first[0], first[1]
    api.set_security_group_rules(
        security_group_id=group.id,
        zone=ZONE,
        rules=[
            rule(ip_range="10.3.0.0/16", position=1),
            rule(id=kept.id, ip_range="10.1.0.0/16", action=SecurityGroupRuleAction.DROP, position=2),
            rule(ip_range="10.4.0.0/16", position=3, editable=False),  # ignored, as the SDK documents
        ],
    )
    editable = [r for r in raw_rules(fake_scaleway, group.id) if r["editable"]]
    assert [(r["ip_range"], r["action"]) for r in editable] == [("10.3.0.0/16", "accept"), ("10.1.0.0/16", "drop")]
    assert editable[1]["id"] == kept.id
    assert dropped.id not in {r["id"] for r in editable}
    # an empty list removes every editable rule and keeps the locked ones
    api.set_security_group_rules(security_group_id=group.id, zone=ZONE, rules=[])
    remaining = raw_rules(fake_scaleway, group.id)
    assert [r for r in remaining if r["editable"]] == []
    assert len(remaining) == len(SMTP)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"ip_range": "10.0.0.0/33"}, "rules.1.ip_range"),
        ({"ip_range": "10.0.0.1/8"}, "rules.1.ip_range"),
        ({"protocol": "SCTP"}, "rules.1.protocol"),
        ({"direction": "sideways"}, "rules.1.direction"),
        ({"dest_port_from": 70000}, "rules.1.dest_port_from"),
        ({"dest_port_from": 90, "dest_port_to": 80}, "rules.1.dest_port_to"),
        ({"dest_port_to": 80}, "rules.1.dest_port_to"),
        ({"ip_range": None}, "rules.1.ip_range"),
    ],
)
def test_a_bad_rule_is_refused_and_changes_nothing(
    fake_scaleway: FakeScaleway, group: Any, entry: dict[str, Any], field: str
) -> None:
    path = f"/instance/v1/zones/{ZONE}/security_groups/{group.id}/rules"
    good = {"protocol": "TCP", "direction": "inbound", "action": "accept", "ip_range": "10.0.0.0/8", "position": 1}
    status, _body = fake_scaleway.call("PUT", path, {"rules": [good]})
    assert status == 200
    before = raw_rules(fake_scaleway, group.id)
    status, body = fake_scaleway.call("PUT", path, {"rules": [{**good, "ip_range": "10.9.0.0/16"}, {**good, **entry}]})
    assert status == 400
    assert body["type"] == "invalid_arguments"
    assert [detail["argument_name"] for detail in body["details"]] == [field]
    assert raw_rules(fake_scaleway, group.id) == before


def test_unknown_groups_and_rules_are_404_like_other_objects(
    api: InstanceV1API, fake_scaleway: FakeScaleway, group: Any
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ScalewayException) as exc:
        api.list_security_group_rules(security_group_id=missing, zone=ZONE)
    assert error_of(exc) == (
        404,
        {
            "type": "not_found",
            "message": "resource is not found",
            "resource": "instance_security_group",
            "resource_id": missing,
        },
    )
    with pytest.raises(ScalewayException) as exc:
        api.set_security_group_rules(security_group_id=group.id, zone=ZONE, rules=[rule(id=missing)])
    assert error_of(exc)[0] == 404
    assert error_of(exc)[1]["resource"] == "instance_security_group_rule"
    with pytest.raises(ScalewayException) as exc:  # the group exists in fr-par-2 only
        api.list_security_group_rules(security_group_id=group.id, zone="fr-par-1")
    assert error_of(exc)[0] == 404


def test_one_rule_at_a_time_and_the_locked_rules(api: InstanceV1API, fake_scaleway: FakeScaleway, group: Any) -> None:
    created = api.create_security_group_rule(
        security_group_id=group.id,
        zone=ZONE,
        protocol=SecurityGroupRuleProtocol.TCP,
        direction=SecurityGroupRuleDirection.INBOUND,
        action=SecurityGroupRuleAction.ACCEPT,
        ip_range="8.8.8.8/32",
        dest_port_from=1,
        dest_port_to=1024,
        position=1,
        editable=True,
    ).rule
    assert (created.protocol, created.ip_range, created.dest_port_to, created.position) == ("TCP", "8.8.8.8", 1024, 1)
    first = api.create_security_group_rule(
        security_group_id=group.id,
        zone=ZONE,
        protocol=SecurityGroupRuleProtocol.UDP,
        direction=SecurityGroupRuleDirection.OUTBOUND,
        action=SecurityGroupRuleAction.DROP,
        ip_range="1.1.1.1/32",
        position=1,
        editable=True,
    ).rule
    assert [r["id"] for r in raw_rules(fake_scaleway, group.id)[:2]] == [first.id, created.id]
    fetched = api.get_security_group_rule(security_group_id=group.id, security_group_rule_id=created.id, zone=ZONE)
    assert fetched.rule.position == 2
    updated = api.update_security_group_rule(
        security_group_id=group.id, security_group_rule_id=created.id, zone=ZONE, dest_port_from=22, dest_port_to=22
    ).rule
    assert (updated.dest_port_from, updated.dest_port_to) == (22, None)
    api.delete_security_group_rule(security_group_id=group.id, security_group_rule_id=first.id, zone=ZONE)
    assert [r["id"] for r in raw_rules(fake_scaleway, group.id) if r["editable"]] == [created.id]
    locked = next(r for r in raw_rules(fake_scaleway, group.id) if not r["editable"])
    with pytest.raises(ScalewayException) as exc:
        api.delete_security_group_rule(security_group_id=group.id, security_group_rule_id=locked["id"], zone=ZONE)
    assert error_of(exc)[0] == 400
    assert error_of(exc)[1]["type"] == "invalid_request_error"
    defaults = api.list_default_security_group_rules(zone=ZONE).rules
    assert {(r.dest_port_from, r.ip_range) for r in defaults} == SMTP
    assert not any(r.editable for r in defaults)


def test_update_group_settings_and_refuse_bad_policies(
    api: InstanceV1API, fake_scaleway: FakeScaleway, group: Any
) -> None:
    assert (group.inbound_default_policy, group.outbound_default_policy, group.stateful) == ("drop", "accept", True)
    updated = api.update_security_group(
        security_group_id=group.id, zone=ZONE, outbound_default_policy="drop", stateful=False, description="new"
    ).security_group
    assert (updated.outbound_default_policy, updated.stateful, updated.description) == ("drop", False, "new")
    assert updated.modification_date >= group.modification_date
    got = api.get_security_group(security_group_id=group.id, zone=ZONE).security_group
    assert (got.outbound_default_policy, got.stateful, got.name) == ("drop", False, "parrotpark-gpu")
    for method, path in (
        ("PATCH", f"/instance/v1/zones/{ZONE}/security_groups/{group.id}"),
        ("POST", f"/instance/v1/zones/{ZONE}/security_groups"),
    ):
        body = {"inbound_default_policy": "reject", "name": "x", "project": fake_scaleway.project_id}
        status, answer = fake_scaleway.call(method, path, body)
        assert status == 400, (method, answer)
        assert answer["fields"] == {"inbound_default_policy": [answer["details"][0]["help_message"]]}


def test_deleting_a_group_drops_its_rules_and_reset_forgets_them(
    api: InstanceV1API, fake_scaleway: FakeScaleway, group: Any
) -> None:
    api.set_security_group_rules(security_group_id=group.id, zone=ZONE, rules=[rule()])
    assert list(fake_scaleway.state()["security_group_rules"]) == [group.id]
    api.delete_security_group(security_group_id=group.id, zone=ZONE)
    assert fake_scaleway.state()["security_group_rules"] == {}
    other = api.create_security_group(
        description="", stateful=True, name="other", project=fake_scaleway.project_id
    ).security_group
    api.set_security_group_rules(security_group_id=other.id, zone=ZONE, rules=[rule()])
    fake_scaleway.reset()
    assert fake_scaleway.state()["security_group_rules"] == {}
