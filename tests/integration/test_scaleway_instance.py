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
    # L4 only: since issue 15 a quota of one type moves on to the next type (test_quota_of_one_type_moves_on...)
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(commercial_type=["L4-1-24G"]))]).results
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


# ----------------------------------------------------------------------------------------------------------------
# Issue 15, the instance module: each test below failed on the code before the fix it names.
# ----------------------------------------------------------------------------------------------------------------

OWNER = "parrotpark.llm/instance=parrotpark-gpu"
OTHER_PROJECT = str(uuid.UUID(int=0xF00D))


def flexible_ip(fake: Any, zone: str = "fr-par-2", **body: Any) -> dict[str, Any]:
    """A flexible IPv4 reserved outside the module (never tagged as owned)."""
    return fake._call_ok(
        "POST", f"/instance/v1/zones/{zone}/ips", {"project": fake.project_id, "type": "routed_ipv4", **body}
    )["ip"]


def ip_state(fake: Any, ip_id: str) -> dict[str, Any]:
    (ip,) = [ip for ip in fake.state()["ips"] if ip["id"] == ip_id]
    return ip


def test_public_ip_none_and_dynamic_detach_a_given_flexible_ip_once(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """Item 1: detaching sends an explicit "server": null, converges and reports changed once."""
    flexible = flexible_ip(fake)
    base = {"state": "present", "private_networks": []}
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(**base, public_ip=flexible["address"])),
            (MODULE, gpu(**base, public_ip="none")),
            (MODULE, gpu(**base, public_ip="none")),
            (MODULE, gpu(**base, public_ip=flexible["id"])),
            (MODULE, gpu(**base, public_ip="dynamic")),
            (MODULE, gpu(**base, public_ip="dynamic")),
        ],
    )
    given, none, none_again, back, dynamic, dynamic_again = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")
    assert given["instance"]["public_ip"] == flexible["address"]

    assert none["changed"] is True
    assert none["instance"]["public_ips"] == []
    assert none_again["changed"] is False
    assert back["changed"] is True
    assert back["instance"]["public_ip"] == flexible["address"]

    assert dynamic["changed"] is True
    assert dynamic_again["changed"] is False
    (public,) = dynamic_again["instance"]["public_ips"]  # one public IP, not two
    assert public["id"] != flexible["id"]
    assert OWNER in ip_state(fake, public["id"])["tags"]
    # the given IP is detached, never released
    assert ip_state(fake, flexible["id"])["server"] is None
    detaches = [r["body"] for r in fake.requests(method="PATCH", path=f"/ips/{flexible['id']}$")]
    assert detaches.count({"server": None}) == 2
    assert {} not in detaches


def test_root_volume_tag_is_ensured_on_every_run(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Item 2: a creation interrupted before the root volume was tagged is repaired by the next run."""
    tagging = fake.http_error(r"^/block/v1/zones/[^/]+/volumes/[^/]+$", method="PATCH", status=500)
    base = {"state": "present", "private_networks": []}
    (interrupted,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(**base, api_retries=0))]).results
    assert interrupted["failed"] is True
    assert interrupted["changed"] is True  # the server exists
    (server,) = fake.state()["servers"]
    root_id = server["volumes"]["0"]["id"]
    fake.remove_fault(tagging)

    (adopted,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(**base))]).results
    assert not adopted.get("failed"), adopted.get("msg")
    (root,) = [volume for volume in fake.state()["volumes"] if volume["id"] == root_id]
    assert OWNER in root["tags"]

    # the server goes by another path; absent still finds the 125 GB volume by its tag
    fake._call_ok("DELETE", f"/instance/v1/zones/fr-par-2/servers/{server['id']}")
    (down,) = run_tasks(tmp_path, run_env, [(MODULE, absent())]).results
    assert not down.get("failed"), down.get("msg")
    assert root_id in down["removed"]["volumes"]
    assert counts(fake) == {"servers": 0, "volumes": 0, "ips": 0, "private_nics": 0}


def test_quota_of_one_type_moves_on_to_the_next_type(
    fake: Any, seed: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """Item 3: an L4 quota used up elsewhere skips L4's other zones and creates an L40S."""
    seed.server("other-l4", zone="pl-waw-2", commercial_type="L4-1-24G", image="ubuntu_noble_gpu_os_13_nvidia")
    fake.set_quota("L4-1-24G", 1)
    fake.clear_requests()
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(state="present"))]).results
    assert not result.get("failed"), result.get("msg")
    assert outcomes(result) == [("L4-1-24G", "fr-par-2", "failed"), ("L40S-1-48G", "fr-par-2", "created")]
    assert "instances_l4_1_24g" in result["placements"][0]["message"]
    assert (result["instance"]["commercial_type"], result["instance"]["zone"]) == ("L40S-1-48G", "fr-par-2")
    creates = fake.requests(method="POST", path=r"/servers$")
    assert [r["body"]["commercial_type"] for r in creates] == ["L4-1-24G", "L40S-1-48G"]


def test_every_type_over_quota_fails_naming_the_quotas(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Item 3 and 6: fail only once every type is exhausted, name the quotas, report nothing changed."""
    fake.set_quota("L4-1-24G", 0)
    fake.set_quota("L40S-1-48G", 0)
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu())]).results
    assert result["failed"] is True
    assert result["error_kind"] == "quotas_exceeded"
    assert "instances_l4_1_24g (0/0)" in result["msg"]
    assert "instances_l40s_1_48g (0/0)" in result["msg"]
    assert result["changed"] is False
    assert len(fake.requests(method="POST", path=r"/servers$")) == 2  # one try per type, not per zone
    assert counts(fake) == {"servers": 0, "volumes": 0, "ips": 0, "private_nics": 0}


@pytest.mark.parametrize(
    ("public_ip", "zone"),
    [("51.158.0.99", None), (str(uuid.UUID(int=0xBAD)), None), ("(reserved in fr-par-1)", "fr-par-1")],
)
def test_public_ip_that_is_not_reserved_creates_nothing(
    fake: Any, run_env: dict[str, str], tmp_path: Path, public_ip: str, zone: str | None
) -> None:
    """Item 4: an IP that is not a flexible IP of the listed zones is found before any server exists."""
    if zone:  # a real flexible IP, in a zone the module does not list
        public_ip = flexible_ip(fake, zone)["address"]
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(public_ip=public_ip))]).results
    assert result["failed"] is True
    assert f"public_ip: {public_ip!r} is not a flexible IP" in result["msg"]
    assert result["changed"] is False
    assert not fake.requests(method="POST", path=r"/servers$")
    assert counts(fake)["servers"] == 0
    assert counts(fake)["volumes"] == 0


def test_a_flexible_ip_of_the_second_zone_places_the_instance_there(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """Item 4: the check is per zone; a zone without the given IP is skipped, not an error."""
    flexible = flexible_ip(fake, "pl-waw-2")
    (result,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(public_ip=flexible["address"]))]).results
    assert not result.get("failed"), result.get("msg")
    assert outcomes(result) == [("L4-1-24G", "fr-par-2", "ip_elsewhere"), ("L4-1-24G", "pl-waw-2", "created")]
    assert result["instance"]["public_ip"] == flexible["address"]


BAD_INPUTS = [
    ({"wait_interval": 0}, "wait_interval must be a positive number"),
    ({"wait_interval": -1}, "wait_interval must be a positive number"),
    ({"state": "absent", "wait_interval": 0}, "wait_interval must be a positive number"),
    ({"api_timeout": 0}, "api_timeout must be a positive number"),
    ({"api_timeout": -5}, "api_timeout must be a positive number"),
    ({"api_retries": -1}, "api_retries must be 0 or more"),
    ({"commercial_type": [""]}, "commercial_type: '' is not a commercial type"),
    ({"commercial_type": ["L4-1-24G", ""]}, "commercial_type: '' is not a commercial type"),
    ({"commercial_type": [" L4-1-24G"]}, "commercial_type: ' L4-1-24G' is not a commercial type"),
    ({"commercial_type": ["L4-1-24G", "L4-1-24G"]}, "commercial_type lists 'L4-1-24G' twice"),
    ({"public_ip": "banana"}, "public_ip: 'banana' is not"),
    ({"public_ip": ""}, "public_ip: '' is not"),
    ({"security_group": ""}, "security_group must not be empty"),
    ({"extra_volumes": [NETWORK, NETWORK]}, f"extra_volumes lists '{NETWORK}' twice"),
    ({"private_networks": [NETWORK, NETWORK]}, f"private_networks lists '{NETWORK}' twice"),
    ({"state": "absent", "wait_timeout": 0}, "wait_timeout must be a positive number"),
]


def test_more_bad_input_is_refused_before_any_request(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Items 4 and 5: each refused before any API call, naming the option; nothing billable exists.

    One playbook for all the cases (one ansible-playbook start instead of one per case).
    """
    fake.clear_requests()
    run = run_tasks(tmp_path, run_env, [(MODULE, gpu(**overrides)) for overrides, _message in BAD_INPUTS])
    wrong = [
        (overrides, result.get("msg"), result.get("error_kind"))
        for (overrides, message), result in zip(BAD_INPUTS, run.results, strict=True)
        if not (result.get("failed") and message in result["msg"] and result.get("error_kind") == "invalid_input")
    ]
    assert wrong == []
    assert fake.requests() == []
    assert counts(fake) == {"servers": 0, "volumes": 0, "ips": 0, "private_nics": 0}


def test_absent_removes_every_copy_of_a_duplicated_name(
    fake: Any, seed: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """Item 6: the duplicate-name advice (state=absent removes all of them) is true."""
    copies = [
        seed.server("parrotpark-gpu", zone=zone, commercial_type="L4-1-24G", image="ubuntu_noble_gpu_os_13_nvidia")
        for zone in ("fr-par-2", "pl-waw-2")
    ]
    run = run_tasks(tmp_path, run_env, [(MODULE, gpu()), (MODULE, absent()), (MODULE, absent())])
    refused, down, again = run.results
    assert refused["failed"] is True
    assert refused["error_kind"] == "duplicate_name"
    assert "state=absent removes all of them" in refused["msg"]
    assert not down.get("failed"), down.get("msg")
    assert sorted(down["removed"]["servers"]) == sorted(copy.id for copy in copies)
    assert len(down["removed"]["volumes"]) == 2  # both root volumes
    assert again["changed"] is False
    assert counts(fake) == {"servers": 0, "volumes": 0, "ips": 0, "private_nics": 0}


def test_a_failed_deletion_is_not_reported_as_removed(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Item 6: removed.servers lists only what was removed; a failure that changed nothing says changed=false."""
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(state="present", private_networks=[]))]).results
    assert not up.get("failed"), up.get("msg")
    fake.http_error(r"/servers/[^/]+$", method="DELETE", status=403, error_type="permissions_denied")
    (down,) = run_tasks(tmp_path, run_env, [(MODULE, absent())]).results
    assert down["failed"] is True
    assert down["error_kind"] == "permissions_denied"
    assert down["removed"] == {"servers": [], "volumes": [], "ips": []}
    assert down["changed"] is False
    assert counts(fake)["servers"] == 1


def test_every_failure_says_its_kind(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Item 6: error_kind is on every failure, as RETURN promises."""
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(state="sideways")),
            (MODULE, gpu(wait_interval=0)),
            (MODULE, gpu(state="present", private_networks=[])),
            (MODULE, gpu(state="present", private_networks=[], commercial_type=["H100-1-80G"])),
            (MODULE, gpu(state="present", private_networks=[], security_group="no-such-group")),
        ],
    )
    spec, interval, created, other_type, group = run.results
    assert not created.get("failed"), created.get("msg")
    kinds = [result.get("error_kind") for result in (spec, interval, other_type, group)]
    assert kinds == ["invalid_input", "invalid_input", "conflict", "invalid_input"]
    assert "security_group: 0 security groups are named 'no-such-group'" in group["msg"]
    assert other_type["changed"] is False

    env = {key: value for key, value in run_env.items() if key != "SCW_SECRET_KEY"}
    (config,) = run_tasks(tmp_path, env, [(MODULE, gpu())]).results
    assert config["failed"] is True
    assert config["error_kind"] == "config"


def test_placements_that_can_never_work_name_the_option(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Item 6: no_placement says which option and value can never work."""
    elsewhere = fake._call_ok(
        "POST",
        "/block/v1/zones/fr-par-1/volumes",
        {"name": "cache-in-par-1", "project_id": fake.project_id, "from_empty": {"size": 50 * GB}},
    )
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(image="ubuntu_nope")),
            (MODULE, gpu(commercial_type=["L4-9-99G"])),
            (MODULE, gpu(extra_volumes=[elsewhere["id"]])),
        ],
    )
    image, commercial_type, volume = run.results
    for result in run.results:
        assert result["failed"] is True
        assert result["error_kind"] == "no_placement"
        assert result["changed"] is False
    assert "image: no instance_sbs image labelled 'ubuntu_nope'" in image["msg"]
    assert "commercial_type: 'L4-9-99G' is not offered in fr-par-2, pl-waw-2" in commercial_type["msg"]
    assert f"extra_volumes: '{elsewhere['id']}' is in none of the zones fr-par-2, pl-waw-2" in volume["msg"]
    assert counts(fake)["servers"] == 0


def test_a_refused_connection_is_named(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    """Item 6: a refused connection says so, with the URL, instead of 'no answer within 30s'."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**run_env, "SCW_API_URL": f"http://127.0.0.1:{port}"}
    (result,) = run_tasks(tmp_path, env, [(MODULE, gpu(api_retries=0))]).results
    assert result["failed"] is True
    assert result["error_kind"] == "transport"
    assert f"connection refused by http://127.0.0.1:{port}" in result["msg"]
    assert "within" not in result["msg"]


def test_teardown_ignores_what_another_project_owns_even_when_listed(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """Item 7: teardown checks the project of every listed IP and volume client-side."""
    mine_ip = flexible_ip(fake, tags=[OWNER])
    theirs_ip = flexible_ip(fake, project=OTHER_PROJECT, tags=[OWNER])
    volume = {"from_empty": {"size": 20 * GB}, "tags": [OWNER]}
    mine_volume = fake._call_ok(
        "POST", "/block/v1/zones/fr-par-2/volumes", {"name": "mine", "project_id": fake.project_id, **volume}
    )
    theirs_volume = fake._call_ok(
        "POST", "/block/v1/zones/fr-par-2/volumes", {"name": "theirs", "project_id": OTHER_PROJECT, **volume}
    )
    # an API (or SDK) that silently drops the project filter lists the other project's resources too
    fake.ignore_query(r"/(ips|volumes)$", ["project", "project_id"], method="GET")
    (down,) = run_tasks(tmp_path, run_env, [(MODULE, absent())]).results
    assert not down.get("failed"), down.get("msg")
    assert down["removed"] == {"servers": [], "volumes": [mine_volume["id"]], "ips": [mine_ip["id"]]}
    state = fake.state()
    assert [ip["id"] for ip in state["ips"]] == [theirs_ip["id"]]
    assert [v["id"] for v in state["volumes"]] == [theirs_volume["id"]]
    warnings = " ".join(down.get("warnings") or [])
    assert theirs_ip["id"] in warnings
    assert theirs_volume["id"] in warnings


def test_teardown_never_waits_on_a_volume_attached_to_another_server(
    fake: Any, seed: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """Item 7: a tagged volume attached to another server is skipped with a warning, not waited on."""
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(state="present", private_networks=[]))]).results
    instance = up["instance"]
    root_id = instance["volumes"][0]["id"]
    fake._call_ok("DELETE", f"/instance/v1/zones/fr-par-2/servers/{instance['id']}")
    other = seed.server("someone-else", zone="fr-par-2")
    fake._call_ok(
        "POST",
        f"/instance/v1/zones/fr-par-2/servers/{other.id}/attach-volume",
        {"volume_id": root_id, "volume_type": "sbs_volume"},
    )
    (down,) = run_tasks(tmp_path, run_env, [(MODULE, absent(wait_timeout=3))]).results
    assert not down.get("failed"), down.get("msg")
    assert down["removed"]["volumes"] == []
    assert down["removed"]["ips"] == [instance["public_ips"][0]["id"]]
    assert any(root_id in warning and other.id in warning for warning in down.get("warnings") or [])
    (kept,) = [volume for volume in fake.state()["volumes"] if volume["id"] == root_id]
    assert kept["status"] == "in_use"
