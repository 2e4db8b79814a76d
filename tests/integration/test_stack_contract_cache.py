"""The cache volume's stack settings (parrotpark_gpu_cache_volume_*): what gpu_up passes on.

A good size becomes the scaleway_instance option cache_volume (named after
the GPU server), and 0 gives no option at all. A bad size or storage class is
a case of test_stack_contract.py (site.yml, gpu_up.yml and gpu_down.yml stop
in the stack's checks, naming the variable).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible_run import ROOT, run_playbook
from test_stack_contract import inventory


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
