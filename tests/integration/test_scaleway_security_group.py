"""scaleway_security_group through ansible-playbook and the real SDK against the fake Scaleway API.

The lifecycle follows community.docker's order: check, apply, idempotent check,
idempotent apply, changed check, changed apply; then removal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_run import run_tasks

MODULE = "parrotpark.llm.scaleway_security_group"
ZONE = "fr-par-2"
PRIVATE = "172.16.0.0/22"
ENTRANCE = "203.0.113.7"

# The GPU server's rule set (docs/security.md): everything from the private network, SSH from the entrance.
GPU_RULES = [
    {"direction": "inbound", "action": "accept", "protocol": "ANY", "ip_range": PRIVATE},
    {"direction": "inbound", "action": "accept", "protocol": "TCP", "dest_port_from": 22, "ip_range": ENTRANCE},
]


def gpu(**overrides: Any) -> dict[str, Any]:
    args = {
        "name": "parrotpark-gpu",
        "zone": ZONE,
        "inbound_default_policy": "drop",
        "outbound_default_policy": "accept",
        "rules": GPU_RULES,
    }
    args.update(overrides)
    return args


def groups_named(fake: Any, name: str) -> list[dict[str, Any]]:
    return [sg for sg in fake.state()["security_groups"] if sg["name"] == name]


def editable_rules(fake: Any, group_id: str) -> list[dict[str, Any]]:
    """The group's rules as the API lists them (the SDK's view), editable ones only, by position."""
    status, body = fake.call("GET", f"/instance/v1/zones/{ZONE}/security_groups/{group_id}/rules")
    assert status == 200, body
    return sorted((rule for rule in body["rules"] if rule["editable"]), key=lambda rule: rule["position"])


def shape(rule: dict[str, Any]) -> tuple[Any, ...]:
    return (rule["direction"], rule["action"], rule["protocol"], rule["ip_range"], rule["dest_port_from"])


def writes(fake: Any) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in fake.requests() if r["method"] != "GET"]


def test_lifecycle_check_apply_idempotent_changed_absent(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    ssh_from_elsewhere = [GPU_RULES[0], {**GPU_RULES[1], "ip_range": "198.51.100.9/32"}]
    fake.clear_requests()
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(), {"check_mode": True, "diff": True}),  # 0
            (MODULE, gpu(), {"diff": True}),  # 1
            (MODULE, gpu(), {"check_mode": True}),  # 2
            (MODULE, gpu()),  # 3
        ],
    )
    check, apply, idem_check, idem_apply = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")

    # check mode predicts the group and its rules, and writes nothing
    assert check["changed"] is True
    assert check["security_group"]["id"] is None
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["inbound_default_policy"] == "drop"
    assert [rule["ip_range"] for rule in check["security_group"]["rules"]] == [PRIVATE, f"{ENTRANCE}/32"]

    # apply creates exactly that, as the API itself lists it
    assert apply["changed"] is True
    group = apply["security_group"]
    assert apply["diff"]["after"] == check["diff"]["after"]
    assert (group["name"], group["zone"], group["stateful"]) == ("parrotpark-gpu", ZONE, True)
    assert (group["inbound_default_policy"], group["outbound_default_policy"]) == ("drop", "accept")
    (stored,) = groups_named(fake, "parrotpark-gpu")
    assert stored["id"] == group["id"] and stored["inbound_default_policy"] == "drop" and stored["stateful"] is True
    listed = editable_rules(fake, group["id"])
    assert [shape(rule) for rule in listed] == [
        ("inbound", "accept", "ANY", PRIVATE, None),
        ("inbound", "accept", "TCP", ENTRANCE, 22),  # the API answers a /32 as the bare address
    ]
    assert [rule["id"] for rule in group["rules"]] == [rule["id"] for rule in listed]
    first_ids = [rule["id"] for rule in listed]
    # the rules went in with one request that sets them all
    rule_writes = [entry for entry in writes(fake) if "/rules" in entry[1]]
    assert rule_writes == [("PUT", f"/instance/v1/zones/{ZONE}/security_groups/{group['id']}/rules")]

    # idempotent: the non-editable SMTP rules the API adds, and its /32 spelling, are no change
    assert idem_check["changed"] is False
    assert idem_apply["changed"] is False
    assert idem_apply["security_group"] == group

    # a changed rule is predicted, then applied: exactly the new list, the unchanged rule keeps its ID
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(rules=ssh_from_elsewhere), {"check_mode": True, "diff": True}),
            (MODULE, gpu(rules=ssh_from_elsewhere)),
        ],
    )
    changed_check, changed_apply = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")
    assert changed_check["changed"] is True
    assert changed_check["diff"]["before"]["rules"][1]["ip_range"] == f"{ENTRANCE}/32"
    assert changed_check["diff"]["after"]["rules"][1]["ip_range"] == "198.51.100.9/32"
    assert changed_apply["changed"] is True
    listed = editable_rules(fake, group["id"])
    assert [shape(rule) for rule in listed] == [
        ("inbound", "accept", "ANY", PRIVATE, None),
        ("inbound", "accept", "TCP", "198.51.100.9", 22),
    ]
    assert listed[0]["id"] == first_ids[0]
    assert changed_apply["diff"]["after"] == changed_check["diff"]["after"]
    # the check-mode runs wrote nothing: two creations of rules, one group, no other write
    assert [method for method, path in writes(fake)] == ["POST", "PUT", "PUT"]


def test_settings_change_and_check_mode_changes_nothing(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    changes = {"stateful": False, "outbound_default_policy": "drop", "description": "the GPU server"}
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu()),
            (MODULE, gpu(**changes), {"check_mode": True, "diff": True}),
            (MODULE, gpu(**changes)),
            (MODULE, gpu(**changes)),
        ],
    )
    created, check, apply, again = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")
    assert check["changed"] is True
    assert (check["diff"]["before"]["stateful"], check["diff"]["after"]["stateful"]) == (True, False)
    assert created["security_group"]["description"] == "Managed by Ansible (parrotpark.llm.scaleway_security_group)"
    assert check["diff"]["after"]["description"] == "the GPU server"
    assert apply["changed"] is True
    (stored,) = groups_named(fake, "parrotpark-gpu")
    assert (stored["stateful"], stored["outbound_default_policy"], stored["description"]) == (
        False,
        "drop",
        "the GPU server",
    )
    assert apply["security_group"]["rules"] == created["security_group"]["rules"]  # rules untouched
    assert again["changed"] is False


def test_rules_not_given_are_left_alone_and_an_empty_list_clears(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    without_rules = gpu()
    del without_rules["rules"]
    run = run_tasks(
        tmp_path,
        run_env,
        [(MODULE, gpu()), (MODULE, without_rules), (MODULE, gpu(rules=[])), (MODULE, gpu(rules=[]))],
    )
    created, untouched, cleared, again = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")
    assert untouched["changed"] is False
    assert len(untouched["security_group"]["rules"]) == 2
    assert cleared["changed"] is True and cleared["security_group"]["rules"] == []
    assert editable_rules(fake, created["security_group"]["id"]) == []
    assert again["changed"] is False


def test_order_within_a_direction_counts(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    drop_one = {"direction": "inbound", "action": "drop", "protocol": "TCP", "ip_range": "172.16.0.9"}
    outbound = {"direction": "outbound", "action": "drop", "protocol": "UDP", "ip_range": "0.0.0.0/0"}
    first = [drop_one, *GPU_RULES, outbound]
    # the same inbound order, the outbound rule moved: what a packet meets is the same
    interleaved = [outbound, drop_one, *GPU_RULES]
    # the drop after the accept: a different firewall
    reordered = [*GPU_RULES, drop_one, outbound]
    run = run_tasks(
        tmp_path,
        run_env,
        [(MODULE, gpu(rules=first)), (MODULE, gpu(rules=interleaved)), (MODULE, gpu(rules=reordered))],
    )
    created, same, changed = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")
    assert same["changed"] is False
    assert changed["changed"] is True
    listed = editable_rules(fake, created["security_group"]["id"])
    assert [shape(rule)[:3] for rule in listed if rule["direction"] == "inbound"] == [
        ("inbound", "accept", "ANY"),
        ("inbound", "accept", "TCP"),
        ("inbound", "drop", "TCP"),
    ]


def test_absent_removes_the_group_and_refuses_one_in_use(
    fake: Any, seed: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu()),
            (MODULE, gpu(name="parrotpark-other")),
            (MODULE, {"name": "parrotpark-gpu", "zone": ZONE, "state": "absent"}, {"check_mode": True}),
            (MODULE, {"name": "parrotpark-gpu", "zone": ZONE, "state": "absent"}),
            (MODULE, {"name": "parrotpark-gpu", "zone": ZONE, "state": "absent"}),
        ],
    )
    created, other, check, removed, again = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")
    assert check["changed"] is True
    assert removed["changed"] is True and removed["security_group"] is None
    assert removed["diff"]["after"] == {}
    assert again["changed"] is False
    assert groups_named(fake, "parrotpark-gpu") == []
    assert fake.state()["security_group_rules"].get(created["security_group"]["id"]) is None
    assert len(groups_named(fake, "parrotpark-other")) == 1  # only the named group went

    # a group an instance still uses is not removed; the message names the instance
    server = seed.server("parrotpark-gpu-0")
    fake.call(
        "PATCH",
        f"/instance/v1/zones/{ZONE}/servers/{server.id}",
        {"security_group": {"id": other["security_group"]["id"]}},
    )
    fake.clear_requests()
    (in_use,) = run_tasks(
        tmp_path, run_env, [(MODULE, {"name": "parrotpark-other", "zone": ZONE, "state": "absent"})]
    ).results
    assert in_use["failed"] is True
    assert in_use["error_kind"] == "in_use"
    assert "parrotpark-gpu-0" in in_use["msg"]
    assert not fake.requests(method="DELETE")
    assert len(groups_named(fake, "parrotpark-other")) == 1


def test_the_name_is_exact_and_duplicates_are_refused(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    for name in ("parrotpark-gpu-10", "parrotpark-gpu", "parrotpark-gpu"):
        fake.call(
            "POST",
            f"/instance/v1/zones/{ZONE}/security_groups",
            {"name": name, "description": "", "project": fake.project_id, "stateful": True},
        )
    fake.clear_requests()
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu())]).results
    assert result["failed"] is True
    assert result["error_kind"] == "duplicate_name"
    assert "2 security groups are named 'parrotpark-gpu'" in result["msg"]
    assert writes(fake) == []


BAD_INPUTS = [
    ({"name": ""}, "name must not be empty"),
    ({"name": "   "}, "name must not be empty"),
    ({"zone": "paris"}, "zone must look like fr-par-2"),
    ({"rules": [{**GPU_RULES[0], "ip_range": "172.16.0.0/33"}]}, "rules[0].ip_range: '172.16.0.0/33' is not an"),
    ({"rules": [{**GPU_RULES[0], "ip_range": "private"}]}, "rules[0].ip_range: 'private' is not an"),
    ({"rules": [{**GPU_RULES[0], "ip_range": "172.16.0.1/22"}]}, "has host bits set; write 172.16.0.0/22"),
    (
        {"rules": [GPU_RULES[0], {**GPU_RULES[1], "dest_port_from": 8000, "dest_port_to": 22}]},
        "rules[1]: dest_port_from (8000) is greater than dest_port_to (22)",
    ),
    ({"rules": [{**GPU_RULES[1], "dest_port_from": 0}]}, "rules[0].dest_port_from: a port is between 1 and 65535"),
    ({"rules": [{**GPU_RULES[1], "dest_port_from": 70000}]}, "rules[0].dest_port_from: a port is between 1 and"),
    ({"rules": [{**GPU_RULES[1], "dest_port_from": None, "dest_port_to": 22}]}, "rules[0].dest_port_to: set dest_po"),
    ({"rules": [{**GPU_RULES[0], "dest_port_from": 22}]}, "rules[0]: a ANY rule applies to every port"),
    (
        {"rules": [{**GPU_RULES[0], "protocol": "ICMP", "dest_port_to": 8}]},
        "rules[0]: a ICMP rule applies to every port",
    ),
    ({"rules": [{**GPU_RULES[0], "protocol": "SCTP"}]}, "value of protocol must be one of: TCP, UDP, ICMP, ANY"),
    ({"rules": [{**GPU_RULES[0], "direction": "in"}]}, "value of direction must be one of: inbound, outbound"),
    ({"rules": [{**GPU_RULES[0], "action": "allow"}]}, "value of action must be one of: accept, drop"),
    ({"rules": [{k: v for k, v in GPU_RULES[0].items() if k != "ip_range"}]}, "missing required arguments: ip_range"),
    (
        {"rules": [*GPU_RULES, {**GPU_RULES[1], "ip_range": f"{ENTRANCE}/32", "dest_port_to": 22}]},
        "rules[2] repeats rules[1]",
    ),
    ({"inbound_default_policy": "reject"}, "value of inbound_default_policy must be one of: accept, drop"),
    ({"api_timeout": 0}, "api_timeout must be a positive number"),
]


def test_bad_input_is_refused_before_any_request(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Each refused before any API call, naming the option; one playbook for all the cases."""
    fake.clear_requests()
    cases = [(gpu(**overrides), message) for overrides, message in BAD_INPUTS]
    absent = {"name": "parrotpark-gpu", "zone": ZONE, "state": "absent", "rules": [{**GPU_RULES[0], "ip_range": "x"}]}
    cases.append((absent, "rules[0].ip_range: 'x' is not an"))
    run = run_tasks(tmp_path, run_env, [(MODULE, args) for args, _message in cases])
    wrong = [
        (args, result.get("msg"), result.get("error_kind"))
        for (args, message), result in zip(cases, run.results, strict=True)
        if not (result.get("failed") and message in result["msg"] and result.get("error_kind") == "invalid_input")
    ]
    assert wrong == []
    assert fake.requests() == []
    assert groups_named(fake, "parrotpark-gpu") == []


@pytest.mark.parametrize("state", ["present", "absent"])
def test_an_unreachable_api_is_a_clear_transport_error(
    fake: Any, run_env: dict[str, str], tmp_path: Path, state: str
) -> None:
    env = {**run_env, "SCW_API_URL": "http://127.0.0.1:9"}
    (result,) = run_tasks(tmp_path, env, [(MODULE, gpu(state=state, api_retries=0))]).results
    assert result["failed"] is True
    assert result["error_kind"] == "transport"
    assert "connection refused by http://127.0.0.1:9" in result["msg"]
    assert result["changed"] is False
