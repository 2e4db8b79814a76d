"""The stack's shared settings (roles/parrotpark) are checked at the start of every playbook.

A bad parrotpark_gpu_* value stops site.yml, gpu_up.yml and gpu_down.yml in
their first tasks, with a message that names the variable, before any task
that could change a host or call the cloud; good values pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible_run import ROOT, run_playbook

# Each bad value, and what the message must say.
BAD = {
    "zone": ({"parrotpark_gpu_zones": ["paris"]}, r"parrotpark_gpu_zones must list Scaleway zones"),
    "no type": ({"parrotpark_gpu_commercial_types": []}, r"parrotpark_gpu_commercial_types must list"),
    "volume": ({"parrotpark_gpu_root_volume_size": 5}, r"parrotpark_gpu_root_volume_size must be between 20"),
    "port": ({"parrotpark_gpu_vllm_ports": [8000, 70000]}, r"parrotpark_gpu_vllm_ports .* between 1 and 65535"),
    "name": ({"parrotpark_gpu_name": "GPU server"}, r"parrotpark_gpu_name must be a host name"),
    "timeout": ({"parrotpark_gpu_ssh_timeout": 0}, r"parrotpark_gpu_create_timeout and parrotpark_gpu_ssh_timeout"),
    "smoke url": ({"parrotpark_gpu_smoke_url": "localhost:4000"}, r"parrotpark_gpu_smoke_url must be empty"),
    "wrong type": ({"parrotpark_gpu_create_timeout": "soon"}, r"parrotpark_gpu_create_timeout"),
    "https port is http": ({"parrotpark_https_port": 80}, r"parrotpark_https_port must be a port from 1 to 65535 oth"),
    "https port too high": ({"parrotpark_https_port": 70000}, r"parrotpark_https_port must be a port from 1 to 65535"),
    "https port a word": ({"parrotpark_https_port": "https"}, r"parrotpark_https_port"),
    # The cache volume (parrotpark_gpu_cache_volume_*): 0 (off), or a size an SBS volume can have.
    "cache too small": ({"parrotpark_gpu_cache_volume_size": 5}, r"parrotpark_gpu_cache_volume_size must be 0"),
    "cache too big": ({"parrotpark_gpu_cache_volume_size": 20000}, r"parrotpark_gpu_cache_volume_size must be 0"),
    "cache iops": ({"parrotpark_gpu_cache_volume_iops": 7000}, r"parrotpark_gpu_cache_volume_iops"),
    "cache size not a number": ({"parrotpark_gpu_cache_volume_size": "big"}, r"parrotpark_gpu_cache_volume_size"),
    "private range without a prefix": (
        {"parrotpark_gpu_private_cidrs": ["172.16.4.1"]},
        r"parrotpark_gpu_private_cidrs must list networks in CIDR notation",
    ),
    "entrance address not an ipv4": (
        {"parrotpark_entrance_public_ipv4": "entrance.example.org"},
        r"parrotpark_entrance_public_ipv4 must be empty or an IPv4 address",
    ),
}


def inventory(tmp_path: Path, hosts: dict[str, dict]) -> Path:
    """Local hosts in every group the playbooks use, each with its variables as inventory values."""
    members = {host: {"ansible_connection": "local", **variables} for host, variables in hosts.items()}
    groups = {name: {"hosts": members} for name in ("entrance", "gateway", "chat", "inference")}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"children": groups}}))
    return path


def failures_by_host(output: str) -> dict[str, tuple[str, str]]:
    """host -> (the task it first failed in, the failure's text), from ansible-playbook's default output."""
    failures: dict[str, tuple[str, str]] = {}
    task = ""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        banner = re.match(r"TASK \[([^\]]+)\]", line)
        if banner:
            task = banner.group(1)
        failure = re.match(r"^(?:fatal|failed): \[([^\]]+)\]", line)
        if failure and failure.group(1) not in failures:
            text = " ".join(" ".join(lines[index : index + 12]).split())
            failures[failure.group(1)] = (task, text)
    return failures


@pytest.fixture(scope="module", params=["site.yml", "playbooks/gpu_up.yml", "playbooks/gpu_down.yml"])
def refused(request, tmp_path_factory):
    """One run of the playbook with one host per bad case (every case fails on its own host)."""
    tmp_path = tmp_path_factory.mktemp("contract")
    hosts = {f"case_{index}": BAD[case][0] for index, case in enumerate(BAD)}
    result = run_playbook("-i", str(inventory(tmp_path, hosts)), str(ROOT / request.param), cwd=ROOT)
    return result.stdout + result.stderr


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_setting_stops_the_playbook_first(refused, case):
    host = f"case_{list(BAD).index(case)}"
    failures = failures_by_host(refused)
    assert host in failures, refused
    task, text = failures[host]
    # The stack's checks are the first tasks of the first play: nothing ran before them.
    assert "parrotpark.llm.parrotpark" in task, refused
    assert re.search(BAD[case][1], text), text
    recap = re.search(rf"^{host}\s+: ok=\d+\s+changed=(\d+)", refused, re.MULTILINE)
    assert recap and recap.group(1) == "0", refused


def test_good_settings_pass_the_checks(tmp_path):
    variables = {
        "parrotpark_gpu_zones": ["nl-ams-1"],
        "parrotpark_gpu_commercial_types": ["L40S-1-48G", "L4-1-24G"],
        "parrotpark_gpu_root_volume_size": 200,
        "parrotpark_gpu_ports": [8000],
        "parrotpark_gpu_smoke_url": "https://api.example.org",
        "parrotpark_gpu_private_cidrs": ["172.16.4.0/22", "fd00:4::/64"],
        "parrotpark_entrance_public_ipv4": "203.0.113.10",
        "parrotpark_https_port": "8443",
    }
    playbook = tmp_path / "contract.yml"
    playbook.write_text(
        "- hosts: entrance\n  gather_facts: false\n  roles: [parrotpark.llm.parrotpark]\n"
        "  tasks:\n    - ansible.builtin.debug:\n        msg: 'zones {{ parrotpark_gpu_zones }} state "
        "{{ _parrotpark_scheduler_state_dir }} port {{ parrotpark_https_port }}'\n"
    )
    result = run_playbook("-i", str(inventory(tmp_path, {"e1": variables})), str(playbook), cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "zones ['nl-ams-1'] state /var/lib/parrotpark/scheduler port 8443" in output, output
