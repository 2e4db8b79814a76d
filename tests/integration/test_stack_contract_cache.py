"""The cache volume's stack settings (parrotpark_gpu_cache_volume_*): checked first, and what gpu_up passes on.

A bad size or storage class stops gpu_up.yml and gpu_down.yml in the stack's
checks, naming the variable, before anything calls the cloud; a good size
becomes the scaleway_instance option cache_volume (named after the GPU
server), and 0 gives no option at all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible_run import ROOT, run_playbook
from test_stack_contract import failures_by_host, inventory

BAD = {
    "too small": ({"parrotpark_gpu_cache_volume_size": 5}, r"parrotpark_gpu_cache_volume_size must be 0"),
    "too big": ({"parrotpark_gpu_cache_volume_size": 20000}, r"parrotpark_gpu_cache_volume_size must be 0"),
    "iops": ({"parrotpark_gpu_cache_volume_iops": 7000}, r"parrotpark_gpu_cache_volume_iops"),
    "not a number": ({"parrotpark_gpu_cache_volume_size": "big"}, r"parrotpark_gpu_cache_volume_size"),
}


@pytest.fixture(scope="module", params=["playbooks/gpu_up.yml", "playbooks/gpu_down.yml"])
def refused(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cache-contract")
    hosts = {f"case_{index}": BAD[case][0] for index, case in enumerate(BAD)}
    result = run_playbook("-i", str(inventory(tmp_path, hosts)), str(ROOT / request.param), cwd=ROOT)
    return result.stdout + result.stderr


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_cache_setting_stops_the_playbook_first(refused, case):
    host = f"case_{list(BAD).index(case)}"
    failures = failures_by_host(refused)
    assert host in failures, refused
    task, text = failures[host]
    assert "parrotpark.llm.parrotpark" in task, refused
    assert re.search(BAD[case][1], text), text
    recap = re.search(rf"^{host}\s+: ok=\d+\s+changed=(\d+)", refused, re.MULTILINE)
    assert recap and recap.group(1) == "0", refused


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, {}),
        (
            {"parrotpark_gpu_cache_volume_size": 150, "parrotpark_gpu_name": "pp-gpu"},
            {"name": "pp-gpu-cache", "size": 150, "perf_iops": 5000},
        ),
        (
            {"parrotpark_gpu_cache_volume_size": 10, "parrotpark_gpu_cache_volume_iops": 15000},
            {"name": "parrotpark-gpu-cache", "size": 10, "perf_iops": 15000},
        ),
    ],
)
def test_the_option_gpu_up_passes(tmp_path: Path, variables: dict, expected: dict) -> None:
    playbook = tmp_path / "cache.yml"
    playbook.write_text(
        "- hosts: entrance\n  gather_facts: false\n"
        f"  vars_files: [{ROOT / 'playbooks/vars/gpu.yml'}]\n"
        "  roles: [parrotpark.llm.parrotpark]\n"
        "  tasks:\n    - ansible.builtin.debug:\n        msg: 'CACHE={{ __pp_cache_volume | to_json }}'\n"
    )
    result = run_playbook("-i", str(inventory(tmp_path, {"e1": variables})), str(playbook), cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    match = re.search(r"CACHE=(\{.*\})", output)
    assert match, output
    assert json.loads(match.group(1)) == expected
