"""The parrotpark.llm.scaleway inventory plugin, run by ansible-inventory against the fake Scaleway API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_run import BIN, group_members, inventory_hosts, run_inventory
from fake_scaleway import ACCESS_KEY, SECRET_KEY, Seeded, Seeder

NETWORK = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
TWO_ZONES = ["fr-par-2", "pl-waw-2"]


def write_config(tmp_path: Path, options: dict[str, Any], name: str = "x.scaleway.yml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"plugin": "parrotpark.llm.scaleway", **options}, indent=2) + "\n")
    return path


def listing(tmp_path: Path, env: dict[str, str], options: dict[str, Any], *args: str) -> dict[str, Any]:
    run, data = run_inventory(write_config(tmp_path, options), env, *args)
    assert run.returncode == 0, run.output
    return data


@pytest.fixture
def fleet(seed: Seeder) -> dict[str, Seeded]:
    """Four servers: two in fr-par-2, one in pl-waw-2, one in nl-ams-1 (never listed unless asked for)."""
    return {
        "web": seed.server("web-1", tags=["parrotpark", "web"], public_ip=True, private_network=NETWORK, running=True),
        "gpu1": seed.server(
            "gpu-1",
            commercial_type="L4-1-24G",
            image="ubuntu_noble_gpu_os_13_nvidia",
            tags=["parrotpark", "gpu"],
            private_network=NETWORK,
        ),
        "gpu2": seed.server(
            "gpu-2",
            zone="pl-waw-2",
            commercial_type="L4-1-24G",
            image="ubuntu_noble_gpu_os_13_nvidia",
            tags=["parrotpark", "gpu"],
            public_ip=True,
            running=True,
        ),
        "other": seed.server("other-1", zone="nl-ams-1", tags=["other"], public_ip=True),
    }


def test_hosts_prefixed_variables_and_constructed_groups(
    fleet: dict[str, Seeded], run_env: dict[str, str], tmp_path: Path
) -> None:
    data = listing(
        tmp_path,
        run_env,
        {
            "zones": TWO_ZONES,
            "keyed_groups": [{"key": "scaleway_tags", "prefix": "tag"}, {"key": "scaleway_zone", "prefix": "zone"}],
            "groups": {"gpu": "scaleway_commercial_type.startswith('L4')"},
            "compose": {"ansible_user": "'root'", "private_address": "scaleway_private_ip"},
            "strict": True,
        },
    )
    hosts = inventory_hosts(data)
    assert set(hosts) == {"web-1", "gpu-1", "gpu-2"}, "other-1 is in a zone not listed"

    web, gpu1 = hosts["web-1"], hosts["gpu-1"]
    assert web["ansible_host"] == fleet["web"].public_ip and isinstance(web["ansible_host"], str)
    assert "ansible_host" not in gpu1, "no public IP: connect_with=public_ip leaves ansible_host unset"
    assert hosts["gpu-2"]["ansible_host"] == fleet["gpu2"].public_ip
    assert web["scaleway_id"] == fleet["web"].id
    assert web["scaleway_zone"] == "fr-par-2"
    assert web["scaleway_state"] == "running"
    assert gpu1["scaleway_state"] == "stopped"
    assert web["scaleway_public_ip"] == fleet["web"].public_ip
    assert web["scaleway_private_ip"] == fleet["web"].private_ip and "/" not in web["scaleway_private_ip"]
    assert web["scaleway_tags"] == ["parrotpark", "web"]
    assert gpu1["scaleway_commercial_type"] == "L4-1-24G"
    assert web["scaleway_hostname"] == "web-1"
    # ansible_local: added by ansible-inventory itself when facts are not injected as variables
    own = {"ansible_host", "ansible_user", "private_address", "ansible_local"}
    for name, variables in hosts.items():
        stray = [key for key in variables if key not in own and not key.startswith("scaleway_")]
        assert not stray, f"{name}: variables without the prefix: {stray}"

    assert group_members(data, "tag_gpu") == {"gpu-1", "gpu-2"}
    assert group_members(data, "tag_web") == {"web-1"}
    assert group_members(data, "tag_parrotpark") == {"web-1", "gpu-1", "gpu-2"}
    assert group_members(data, "zone_pl_waw_2") == {"gpu-2"}
    assert group_members(data, "gpu") == {"gpu-1", "gpu-2"}
    assert all(variables["ansible_user"] == "root" for variables in hosts.values())
    assert web["private_address"] == fleet["web"].private_ip


def test_filters_by_tags_states_and_zones(fleet: dict[str, Seeded], run_env: dict[str, str], tmp_path: Path) -> None:
    every_zone = [*TWO_ZONES, "nl-ams-1"]
    running_gpus = listing(
        tmp_path, run_env, {"zones": every_zone, "tags": ["parrotpark", "gpu"], "states": ["running"]}
    )
    assert set(inventory_hosts(running_gpus)) == {"gpu-2"}

    stopped = listing(tmp_path, run_env, {"zones": every_zone, "states": ["stopped"]})
    assert set(inventory_hosts(stopped)) == {"gpu-1", "other-1"}


def test_strict_fails_on_a_broken_compose_and_lenient_skips_it(
    fleet: dict[str, Seeded], run_env: dict[str, str], tmp_path: Path
) -> None:
    options = {"zones": ["fr-par-2"], "compose": {"broken": "scaleway_no_such_variable | upper"}}
    lenient = listing(tmp_path, run_env, {**options, "strict": False})
    hosts = inventory_hosts(lenient)
    assert set(hosts) == {"web-1", "gpu-1"}
    assert not any("broken" in variables for variables in hosts.values())

    run, nothing = run_inventory(write_config(tmp_path, {**options, "strict": True}), run_env)
    assert run.returncode != 0 and not nothing
    assert "Could not set broken" in run.output, run.output


def test_hostnames_preferences_and_duplicate_names(
    fleet: dict[str, Seeded], seed: Seeder, run_env: dict[str, str], tmp_path: Path
) -> None:
    twin = seed.server("web-1", zone="pl-waw-2", tags=["parrotpark"], public_ip=True)
    web = fleet["web"]

    run, by_name = run_inventory(write_config(tmp_path, {"zones": TWO_ZONES, "hostnames": ["name"]}), run_env)
    assert run.returncode == 0, run.output
    assert f"Instance {twin.id} (pl-waw-2) is named 'web-1_{twin.id}'" in " ".join(run.stderr.split()), run.stderr
    hosts = inventory_hosts(by_name)
    assert set(hosts) == {"web-1", f"web-1_{twin.id}", "gpu-1", "gpu-2"}
    assert hosts["web-1"]["scaleway_id"] == web.id, "the older server keeps the plain name"
    assert hosts[f"web-1_{twin.id}"]["scaleway_id"] == twin.id
    assert hosts[f"web-1_{twin.id}"]["ansible_host"] == twin.public_ip

    by_address = listing(
        tmp_path,
        run_env,
        {"zones": TWO_ZONES, "hostnames": ["public_ip", "name"], "connect_with": "private_ip"},
    )
    hosts = inventory_hosts(by_address)
    assert set(hosts) == {web.public_ip, twin.public_ip, "gpu-1", fleet["gpu2"].public_ip}
    assert hosts[web.public_ip]["ansible_host"] == web.private_ip
    assert hosts["gpu-1"]["ansible_host"] == fleet["gpu1"].private_ip
    assert "ansible_host" not in hosts[fleet["gpu2"].public_ip], "gpu-2 has no private NIC"

    by_name_then_id = listing(
        tmp_path, run_env, {"zones": TWO_ZONES, "hostnames": ["name", "id"], "connect_with": "none"}
    )
    hosts = inventory_hosts(by_name_then_id)
    assert set(hosts) == {"web-1", twin.id, "gpu-1", "gpu-2"}
    assert hosts[twin.id]["scaleway_name"] == "web-1"
    assert not any("ansible_host" in variables for variables in hosts.values())


def test_vaulted_secret_key_and_templated_project(
    fleet: dict[str, Seeded], run_env: dict[str, str], tmp_path: Path
) -> None:
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    encrypted = subprocess.run(
        [
            str(BIN / "ansible-vault"),
            "encrypt_string",
            "--vault-password-file",
            str(password),
            "--stdin-name",
            "secret_key",
        ],
        input=SECRET_KEY,
        capture_output=True,
        text=True,
        env=run_env,
        check=True,
    ).stdout
    assert SECRET_KEY not in encrypted and "!vault" in encrypted
    config = tmp_path / "vaulted.scw.yml"
    config.write_text(
        "plugin: parrotpark.llm.scaleway\n"
        f"access_key: {ACCESS_KEY}\n"
        f"{encrypted.strip()}\n"
        "project_id: \"{{ lookup('ansible.builtin.env', 'PP_TEST_PROJECT') }}\"\n"
        "zones: [fr-par-2]\n"
    )
    env = {key: value for key, value in run_env.items() if key not in ("SCW_SECRET_KEY", "SCW_DEFAULT_PROJECT_ID")}
    env["PP_TEST_PROJECT"] = run_env["SCW_DEFAULT_PROJECT_ID"]

    run, data = run_inventory(config, env, "--vault-password-file", str(password))
    assert run.returncode == 0, run.output
    assert set(inventory_hosts(data)) == {"web-1", "gpu-1"}
    assert SECRET_KEY not in run.output

    without_password, nothing = run_inventory(config, env)
    assert without_password.returncode != 0 and not nothing, "the vaulted key is the only secret key available"


def test_cache_serves_the_stored_list_until_flushed_or_turned_off(
    fake: Any, fleet: dict[str, Seeded], seed: Seeder, run_env: dict[str, str], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    cached = {
        "zones": ["fr-par-2"],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(cache_dir),
        "cache_timeout": 3600,
    }
    assert set(inventory_hosts(listing(tmp_path, run_env, cached))) == {"web-1", "gpu-1"}
    assert any(cache_dir.iterdir()), "the listing was written to the cache"

    seed.server("new-1")
    fake.clear_requests()
    again = listing(tmp_path, run_env, cached)
    assert set(inventory_hosts(again)) == {"web-1", "gpu-1"}, "served from the cache"
    assert fake.requests(path=r"/servers$") == [], "no API listing while the cache is valid"
    assert inventory_hosts(again)["web-1"]["ansible_host"] == fleet["web"].public_ip

    flushed = listing(tmp_path, run_env, cached, "--flush-cache")
    assert set(inventory_hosts(flushed)) == {"web-1", "gpu-1", "new-1"}

    seed.server("new-2", tags=["parrotpark"])
    other_query = listing(tmp_path, run_env, {**cached, "tags": ["parrotpark"]})
    assert set(inventory_hosts(other_query)) == {"web-1", "gpu-1", "new-2"}, "a changed query is not served stale"

    uncached = listing(tmp_path, run_env, {**cached, "cache": False})
    assert set(inventory_hosts(uncached)) == {"web-1", "gpu-1", "new-1", "new-2"}

    for path in cache_dir.rglob("*"):
        if path.is_file():
            assert SECRET_KEY not in path.read_text(errors="replace"), f"secret key in cache file {path}"
