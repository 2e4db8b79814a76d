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
}


def inventory(tmp_path: Path, variables: dict) -> Path:
    """One local host in every group the playbooks use, with the variables as inventory values."""
    hosts = {"e1": {"ansible_connection": "local"}}
    groups = {name: {"hosts": hosts} for name in ("entrance", "gateway", "chat", "inference")}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"vars": variables, "children": groups}}))
    return path


def first_task_failure(output: str) -> str:
    """The name of the task the run failed in (the TASK banner before the first failure)."""
    failure = re.search(r"^(fatal|failed): ", output, re.MULTILINE)
    assert failure, output
    return re.findall(r"TASK \[([^\]]+)\]", output[: failure.start()])[-1]


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/gpu_up.yml", "playbooks/gpu_down.yml"])
@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_setting_stops_the_playbook_first(tmp_path, playbook, case):
    variables, pattern = BAD[case]
    result = run_playbook("-i", str(inventory(tmp_path, variables)), str(ROOT / playbook), cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert re.search(pattern, " ".join(output.split())), output
    # The stack's checks are the first tasks of the first play: nothing ran before them.
    assert "parrotpark.llm.parrotpark" in first_task_failure(output), output
    assert re.search(r"changed=0", output), output


def test_good_settings_pass_the_checks(tmp_path):
    variables = {
        "parrotpark_gpu_zones": ["nl-ams-1"],
        "parrotpark_gpu_commercial_types": ["L40S-1-48G", "L4-1-24G"],
        "parrotpark_gpu_root_volume_size": 200,
        "parrotpark_gpu_ports": [8000],
        "parrotpark_gpu_smoke_url": "https://api.example.org",
    }
    playbook = tmp_path / "contract.yml"
    playbook.write_text(
        "- hosts: entrance\n  gather_facts: false\n  roles: [parrotpark.llm.parrotpark]\n"
        "  tasks:\n    - ansible.builtin.debug:\n        msg: 'zones {{ parrotpark_gpu_zones }} state "
        "{{ _parrotpark_scheduler_state_dir }}'\n"
    )
    result = run_playbook("-i", str(inventory(tmp_path, variables)), str(playbook), cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "zones ['nl-ams-1'] state /var/lib/parrotpark/scheduler" in output, output
