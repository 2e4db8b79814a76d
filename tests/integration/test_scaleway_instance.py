"""scaleway_instance through ansible-playbook and the real SDK against the fake Scaleway API.

Order of the lifecycle test follows community.docker's: check, apply,
idempotent check, idempotent apply, changed check, changed apply.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from ansible_run import run_tasks
from fake_scaleway import SECRET_KEY

MODULE = "parrotpark.llm.scaleway_instance"
GB = 1000**3
NETWORK = str(uuid.UUID(int=0x5CA1AB1E))
CLOUD_INIT = "#cloud-config\npackage_upgrade: true\napt_get_upgrade_subcommand: upgrade\n"


def gpu(**overrides: Any) -> dict[str, Any]:
    args = {
        "name": "parrotpark-gpu",
        "state": "running",
        "zone": ["fr-par-2", "pl-waw-2"],
        "commercial_type": ["L4-1-24G", "L40S-1-48G"],
        "image": "ubuntu_noble_gpu_os_13_nvidia",
        "root_volume_size": 125,
        "tags": ["parrotpark", "gpu"],
        "user_data": CLOUD_INIT,
        "private_networks": [NETWORK],
        "wait_interval": 0.2,
        "wait_timeout": 30,
    }
    args.update(overrides)
    return args


def absent(**overrides: Any) -> dict[str, Any]:
    args = {"name": "parrotpark-gpu", "state": "absent", "zone": ["fr-par-2", "pl-waw-2"], "wait_interval": 0.2}
    args.update(overrides)
    return args


def counts(fake: Any) -> dict[str, int]:
    state = fake.state()
    return {key: state["counts"][key] for key in ("servers", "volumes", "ips", "private_nics")}


def outcomes(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(p["commercial_type"], p["zone"], p["outcome"]) for p in result["placements"]]


def test_lifecycle_check_apply_idempotent_changed(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    fake.configure(transition_seconds=0.3)
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(), {"check_mode": True, "diff": True}),
            (MODULE, gpu(), {"diff": True}),
            (MODULE, gpu(), {"check_mode": True}),
            (MODULE, gpu()),
            (MODULE, gpu(tags=["parrotpark", "gpu", "evening"]), {"check_mode": True, "diff": True}),
            (MODULE, gpu(tags=["parrotpark", "gpu", "evening"])),
        ],
    )
    check, apply, idem_check, idem_apply, changed_check, changed_apply = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")

    # check mode predicts the creation and its placement, and creates nothing
    assert check["changed"] is True
    assert outcomes(check) == [("L4-1-24G", "fr-par-2", "would_create")]
    assert check["instance"] is None
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["state"] == "running"
    assert check["diff"]["after"]["zone"] == "fr-par-2"

    # apply creates it running, with a 125 GB root volume, a routed IPv4 and a private address
    assert apply["changed"] is True
    instance = apply["instance"]
    assert instance["state"] == "running"
    assert (instance["commercial_type"], instance["zone"]) == ("L4-1-24G", "fr-par-2")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", instance["public_ip"])
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", instance["private_ip"])
    assert apply["diff"]["after"] == check["diff"]["after"] | {
        "volumes": apply["diff"]["after"]["volumes"],
        "public_ips": [instance["public_ip"]],
        "security_group_id": apply["diff"]["after"]["security_group_id"],
    }
    state = fake.state()
    (root,) = [v for v in state["volumes"] if v["id"] == instance["volumes"][0]["id"]]
    assert root["size"] == 125 * GB
    assert "parrotpark.llm/instance=parrotpark-gpu" in root["tags"]
    assert fake.user_data(instance["id"])["cloud-init"].decode() == CLOUD_INIT
    # the user data was in place before the first power-on
    log = [(r["method"], r["path"]) for r in fake.requests() if instance["id"] in r["path"]]
    first_user_data = log.index(("PATCH", f"/instance/v1/zones/fr-par-2/servers/{instance['id']}/user_data/cloud-init"))
    poweron = log.index(("POST", f"/instance/v1/zones/fr-par-2/servers/{instance['id']}/action"))
    assert first_user_data < poweron
    # the cloud-init content is a secret: only its digest is shown
    assert "apt_get_upgrade_subcommand" not in run.output
    assert apply["diff"]["after"]["user_data"].startswith("sha256:")

    # idempotent
    assert idem_check["changed"] is False
    assert idem_apply["changed"] is False
    assert idem_apply["placements"] == []
    assert idem_apply["instance"]["id"] == instance["id"]

    # a changed tag list is predicted, then applied
    assert changed_check["changed"] is True
    assert changed_check["diff"]["after"]["tags"] == ["evening", "gpu", "parrotpark"]
    assert changed_apply["changed"] is True
    assert sorted(fake.get_server(instance["id"])["tags"]) == ["evening", "gpu", "parrotpark"]
    assert counts(fake) == {"servers": 1, "volumes": 1, "ips": 1, "private_nics": 1}


def test_out_of_stock_moves_to_the_next_zone_and_shortage_is_skipped(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    fake.out_of_stock("L4-1-24G", "fr-par-2")
    fake.set_availability("pl-waw-2", "L4-1-24G", "shortage")
    run = run_tasks(tmp_path, run_env, [(MODULE, gpu())])
    (result,) = run.results
    assert not result.get("failed"), result.get("msg")
    assert outcomes(result) == [
        ("L4-1-24G", "fr-par-2", "out_of_stock"),
        ("L4-1-24G", "pl-waw-2", "shortage"),
        ("L40S-1-48G", "fr-par-2", "created"),
    ]
    assert (result["instance"]["commercial_type"], result["instance"]["zone"]) == ("L40S-1-48G", "fr-par-2")
    # the shortage was read from the availability endpoint: nothing was attempted in pl-waw-2
    assert not fake.requests(method="POST", path=r"/zones/pl-waw-2/servers$")
    # the failed attempt left nothing behind
    assert counts(fake) == {"servers": 1, "volumes": 1, "ips": 1, "private_nics": 1}


def test_no_placement_works_fails_clearly_and_leaks_nothing(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    fake.out_of_stock("L4-1-24G")
    fake.out_of_stock("L40S-1-48G", on=("create", "poweron"))
    run = run_tasks(tmp_path, run_env, [(MODULE, gpu(commercial_type=["L4-1-24G"])), (MODULE, gpu())])
    only_l4, both = run.results
    assert only_l4["failed"] is True
    assert "no placement worked" in only_l4["msg"]
    assert "L4-1-24G in fr-par-2: out_of_stock; L4-1-24G in pl-waw-2: out_of_stock" in only_l4["msg"]
    assert only_l4["error_kind"] == "no_placement"
    assert both["failed"] is True
    assert [p["outcome"] for p in both["placements"]] == ["out_of_stock"] * 4
    assert counts(fake) == {"servers": 0, "volumes": 0, "ips": 0, "private_nics": 0}


def test_quota_is_not_retried_elsewhere(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    fake.quotas_exceeded("L4-1-24G", "fr-par-2")
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu())]).results
    assert result["failed"] is True
    assert result["error_kind"] == "quotas_exceeded"
    assert "raise it" in result["msg"]
    assert outcomes(result) == [("L4-1-24G", "fr-par-2", "failed")]
    assert counts(fake)["servers"] == 0


def test_name_is_exact_not_a_substring(fake: Any, seed: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    other = seed.server(
        "parrotpark-gpu-10", zone="fr-par-2", commercial_type="L4-1-24G", image="ubuntu_noble_gpu_os_13_nvidia"
    )
    run = run_tasks(tmp_path, run_env, [(MODULE, gpu(state="present")), (MODULE, absent())])
    created, removed = run.results
    assert created["changed"] is True
    assert created["instance"]["id"] != other.id
    assert created["instance"]["state"] == "stopped"  # present leaves a new instance powered off
    assert removed["removed"]["servers"] == [created["instance"]["id"]]
    assert [server["name"] for server in fake.state()["servers"]] == ["parrotpark-gpu-10"]


def test_absent_removes_what_it_created_and_keeps_what_it_was_given(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    cache = fake._call_ok(
        "POST",
        "/block/v1/zones/fr-par-2/volumes",
        {"name": "model-cache", "project_id": fake.project_id, "from_empty": {"size": 200 * GB}},
    )
    flexible = fake._call_ok(
        "POST", "/instance/v1/zones/fr-par-2/ips", {"project": fake.project_id, "type": "routed_ipv4"}
    )
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(extra_volumes=[cache["id"]], public_ip=flexible["ip"]["address"])),
            (MODULE, absent(), {"check_mode": True}),
            (MODULE, absent()),
            (MODULE, absent()),
        ],
    )
    up, check, down, again = run.results
    assert not up.get("failed"), up.get("msg")
    assert up["instance"]["public_ip"] == flexible["ip"]["address"]
    assert cache["id"] in [volume["id"] for volume in up["instance"]["volumes"]]
    root = up["instance"]["volumes"][0]["id"]

    assert check["changed"] is True
    assert check["removed"] == {"servers": [up["instance"]["id"]], "volumes": [root], "ips": []}
    assert down["changed"] is True
    assert down["removed"] == check["removed"]
    assert again["changed"] is False

    state = fake.state()
    assert state["counts"]["servers"] == 0
    assert [volume["id"] for volume in state["volumes"]] == [cache["id"]]
    assert [volume["status"] for volume in state["volumes"]] == ["available"]
    assert [ip["id"] for ip in state["ips"]] == [flexible["ip"]["id"]]


def test_interrupted_teardown_is_finished_by_the_next_run(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(private_networks=[]))]).results
    instance = up["instance"]
    # an earlier teardown got as far as deleting the server, then stopped
    fake.server_action(instance["id"], "poweroff")
    fake.advance(60)
    fake._call_ok("DELETE", f"/instance/v1/zones/fr-par-2/servers/{instance['id']}")
    assert counts(fake) == {"servers": 0, "volumes": 1, "ips": 1, "private_nics": 0}

    (down,) = run_tasks(tmp_path, run_env, [(MODULE, absent())]).results
    assert down["changed"] is True
    assert down["removed"]["servers"] == []
    assert down["removed"]["volumes"] == [instance["volumes"][0]["id"]]
    assert down["removed"]["ips"] == [instance["public_ips"][0]["id"]]
    assert counts(fake) == {"servers": 0, "volumes": 0, "ips": 0, "private_nics": 0}


def test_power_states_and_a_stuck_transition(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    fake.configure(transition_seconds=0.3)
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(state="stopped")),
            (MODULE, gpu(state="running")),
            (MODULE, gpu(state="stopped")),
            (MODULE, gpu(state="stopped")),
        ],
    )
    created, started, stopped, again = run.results
    assert created["instance"]["state"] == "stopped"
    assert started["changed"] is True
    assert started["instance"]["state"] == "running"
    assert stopped["changed"] is True
    assert stopped["instance"]["state"] == "stopped"
    assert again["changed"] is False

    fake.stuck(action="poweron")
    (stuck,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(wait_timeout=2))]).results
    assert stuck["failed"] is True
    assert stuck["error_kind"] == "timeout"
    assert "Timed out after 2s waiting for instance parrotpark-gpu" in stuck["msg"]
    assert "'starting'" in stuck["msg"]


def test_transient_server_errors_are_retried(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    fake.http_error(r"/products/servers/availability", method="GET", status=503, count=2)
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(state="present", api_retries=2))]).results
    assert not result.get("failed"), result.get("msg")
    assert len(fake.requests(method="GET", path="availability")) == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"commercial_type": []}, "commercial_type is required with state=running"),
        ({"image": None}, "image is required with state=running"),
        ({"zone": ["paris"]}, "zone: 'paris' is not a Scaleway zone"),
        ({"root_volume_size": 5}, "root_volume_size must be between 10 and 10000"),
        ({"extra_volumes": ["cache"]}, "extra_volumes: 'cache' is not a volume ID"),
        ({"state": "sideways"}, "value of state must be one of"),
    ],
)
def test_bad_input_fails_before_any_request(
    fake: Any, run_env: dict[str, str], tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    fake.clear_requests()
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(**overrides))]).results
    assert result["failed"] is True
    assert message in result["msg"]
    assert fake.requests() == []


def test_wrong_secret_is_refused_and_never_shown(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    wrong = str(uuid.UUID(int=12345))
    env = {**run_env, "SCW_SECRET_KEY": wrong}
    run = run_tasks(tmp_path, env, [(MODULE, gpu(state="present"))], verbosity=3)
    (result,) = run.results
    assert result["failed"] is True
    assert result["error_kind"] == "denied_authentication"
    assert "secret key was refused" in result["msg"]
    assert wrong not in run.output
    assert SECRET_KEY not in run.output


def test_changed_user_data_is_written_once(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    other = "#cloud-config\nruncmd: [true]\n"
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(state="present")),
            (MODULE, gpu(state="present", user_data=other)),
            (MODULE, gpu(state="present", user_data=other)),
        ],
    )
    created, changed, again = run.results
    assert not created.get("failed"), created.get("msg")
    assert changed["changed"] is True
    assert changed["diff"]["after"]["user_data"] != changed["diff"]["before"]["user_data"]
    assert fake.user_data(created["instance"]["id"])["cloud-init"].decode() == other
    assert again["changed"] is False
