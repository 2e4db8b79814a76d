"""scaleway_instance_info and scaleway_server_type_info, run by ansible-playbook against the fake Scaleway API.

The fake is seeded with the real SDK; the modules run in a real playbook on
localhost, so these tests see exactly what a user's play sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible_run import ansible_env, run_tasks
from fake_scaleway import ACCESS_KEY, SECRET_KEY, Seeder, scw_environ

INSTANCE_INFO = "parrotpark.llm.scaleway_instance_info"
SERVER_TYPE_INFO = "parrotpark.llm.scaleway_server_type_info"
GIB = 1024**3
NETWORK = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("failed"), result.get("msg")
    assert result.get("changed") is False, result
    return result


def names_and_zones(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["name"], item["zone"]) for item in ok(result)["instances"]]


def test_instance_info_finds_exact_names_tags_states_and_zones(
    seed: Seeder, run_env: dict[str, str], tmp_path: Path
) -> None:
    gpu1 = seed.server("gpu-1", tags=["parrotpark", "llm"], public_ip=True, private_network=NETWORK)
    gpu10 = seed.server("gpu-10", tags=["parrotpark"], running=True)
    waw = seed.server("gpu-1", zone="pl-waw-2", tags=["parrotpark", "llm"], public_ip=True, running=True)

    run = run_tasks(
        tmp_path,
        run_env,
        [
            # 0: exact name in the default zone (SCW_DEFAULT_ZONE=fr-par-2); the API alone would add gpu-10
            (INSTANCE_INFO, {"name": "gpu-1"}),
            # 1: the same name across two zones, in the order asked
            (INSTANCE_INFO, {"name": "gpu-1", "zone": ["pl-waw-2", "fr-par-2"]}),
            # 2: every tag must match
            (INSTANCE_INFO, {"tags": ["parrotpark", "llm"], "zone": ["fr-par-2"]}),
            # 3: state filter across zones
            (INSTANCE_INFO, {"state": ["running"], "zone": ["fr-par-2", "pl-waw-2"]}),
            # 4: a name nobody has
            (INSTANCE_INFO, {"name": "gpu", "zone": ["fr-par-2", "pl-waw-2"]}),
            # 5: check mode answers the same
            (INSTANCE_INFO, {"name": "gpu-1"}, {"check_mode": True}),
        ],
    )

    exact = ok(run.results[0])["instances"]
    assert [item["id"] for item in exact] == [gpu1.id], "gpu-10 must not match name gpu-1"
    instance = exact[0]
    assert instance["public_ip"] == gpu1.public_ip and isinstance(instance["public_ip"], str)
    assert instance["private_ip"] == gpu1.private_ip and isinstance(instance["private_ip"], str)
    assert "/" not in instance["private_ip"]
    assert instance["public_ipv6"] is None
    assert instance["zone"] == "fr-par-2"
    assert instance["state"] == "stopped"
    assert instance["commercial_type"] == "DEV1-S"
    assert instance["tags"] == ["parrotpark", "llm"]
    assert instance["private_nics"][0]["private_network_id"] == NETWORK
    assert instance["private_nics"][0]["private_ip"] == gpu1.private_ip

    both = ok(run.results[1])["instances"]
    assert [(item["id"], item["zone"]) for item in both] == [(waw.id, "pl-waw-2"), (gpu1.id, "fr-par-2")]

    assert names_and_zones(run.results[2]) == [("gpu-1", "fr-par-2")]
    assert sorted(item["id"] for item in ok(run.results[3])["instances"]) == sorted([gpu10.id, waw.id])
    assert ok(run.results[4])["instances"] == []
    assert ok(run.results[5])["instances"] == exact


def test_server_type_info_joins_catalog_with_availability(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    fake.set_availability("pl-waw-2", "L4-1-24G", "shortage")

    run = run_tasks(
        tmp_path,
        run_env,
        [
            (SERVER_TYPE_INFO, {"zone": ["fr-par-2", "pl-waw-2"], "gpu_only": True}),
            (
                SERVER_TYPE_INFO,
                {"zone": ["fr-par-2", "pl-waw-2"], "commercial_types": ["L4-1-24G"], "available_only": True},
            ),
            (SERVER_TYPE_INFO, {"commercial_types": ["DEV1-S", "L4"]}),
        ],
    )

    gpus = ok(run.results[0])["server_types"]
    assert gpus and all(entry["gpu"] >= 1 for entry in gpus)
    assert {entry["zone"] for entry in gpus} == {"fr-par-2", "pl-waw-2"}
    l4 = {entry["zone"]: entry for entry in gpus if entry["name"] == "L4-1-24G"}
    assert set(l4) == {"fr-par-2", "pl-waw-2"}
    paris = l4["fr-par-2"]
    assert paris["hourly_price"] == 0.79
    assert paris["gpu"] == 1
    assert paris["gpu_name"] == "L4"
    assert paris["gpu_manufacturer"] == "NVIDIA"
    assert paris["gpu_memory"] == 24 * GIB
    assert paris["ram"] == 48 * GIB
    assert paris["ncpus"] == 8
    assert paris["availability"] == "available"
    assert l4["pl-waw-2"]["availability"] == "shortage", "the shortage set on the fake must show"
    for zone in ("fr-par-2", "pl-waw-2"):
        prices = [entry["hourly_price"] for entry in gpus if entry["zone"] == zone]
        assert prices == sorted(prices), "cheapest first within a zone"

    available = ok(run.results[1])["server_types"]
    assert [(entry["name"], entry["zone"]) for entry in available] == [("L4-1-24G", "fr-par-2")]

    # default zone only; names are exact (no "L4" type exists, so no L4-1-24G)
    default = ok(run.results[2])["server_types"]
    assert [(entry["name"], entry["zone"], entry["gpu"]) for entry in default] == [("DEV1-S", "fr-par-2", 0)]


def test_missing_credentials_and_zone_fail_naming_the_option_and_never_show_the_secret(
    seed: Seeder, fake: Any, tmp_path: Path
) -> None:
    seed.server("gpu-1")
    (tmp_path / "xdg").mkdir()
    # Only the API URL and the project come from the environment: no keys, no default zone, no profile file.
    env = ansible_env(
        {
            **scw_environ(fake, SCW_ACCESS_KEY=None, SCW_SECRET_KEY=None, SCW_DEFAULT_ZONE=None),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        }
    )
    wrong_secret = "77777777-8888-4999-aaaa-bbbbbbbbbbbb"
    keys = {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}

    run = run_tasks(
        tmp_path,
        env,
        [
            (INSTANCE_INFO, {"name": "gpu-1", "zone": ["fr-par-2"]}),
            (INSTANCE_INFO, {"name": "gpu-1", **keys}),
            (
                INSTANCE_INFO,
                {"name": "gpu-1", "zone": ["fr-par-2"], "access_key": ACCESS_KEY, "secret_key": wrong_secret},
            ),
            (INSTANCE_INFO, {"name": "gpu-1", "zone": ["fr-par-2"], **keys}),
            (SERVER_TYPE_INFO, {"zone": ["fr-par-2"], "gpu_only": True, **keys}),
        ],
        verbosity=3,
    )

    missing, no_zone, refused, found, types = run.results
    assert missing["failed"] and "access_key" in missing["msg"] and "secret_key" in missing["msg"]
    assert "SCW_SECRET_KEY" in missing["msg"]
    assert no_zone["failed"] and no_zone["msg"].startswith("zone:"), no_zone["msg"]
    assert refused["failed"] and "secret key was refused" in refused["msg"], refused["msg"]
    assert refused["invocation"]["module_args"]["secret_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert [item["name"] for item in ok(found)["instances"]] == ["gpu-1"]
    assert ok(types)["server_types"]
    # Neither the accepted nor the refused secret appears anywhere in the -vvv output or the results.
    assert SECRET_KEY not in run.output
    assert wrong_secret not in run.output
