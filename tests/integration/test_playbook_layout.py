"""The playbooks place the services by the inventory's groups alone.

The default layout (gateway and chat on the entrance) and the seeds' layout
(LiteLLM and LibreChat on the GPU server) give the playbooks' shared
settings (playbooks/vars/gpu.yml) different Caddy routes and upstreams; the
plays of entrance.yml and gpu_up.yml list the roles for the right hosts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_run import ROOT, run_playbook

LAYOUTS = {
    "default": (
        {"entrance": ["e1"], "gateway": ["e1"], "chat": ["e1"], "inference": []},
        [{"name": "gpu-8000", "port": 8000}, {"name": "gpu-8001", "port": 8001}],
        (True, True),
    ),
    "seeds": (
        {"entrance": ["e1"], "gateway": [], "chat": [], "inference": []},
        [{"name": "gpu-4000", "port": 4000}, {"name": "gpu-3080", "port": 3080}],
        (False, False),
    ),
    "gateway on the entrance, chat on the GPU": (
        {"entrance": ["e1"], "gateway": ["e1"], "chat": [], "inference": []},
        [{"name": "gpu-8000", "port": 8000}, {"name": "gpu-8001", "port": 8001}, {"name": "gpu-3080", "port": 3080}],
        (True, False),
    ),
}


def write_inventory(path: Path, groups: dict[str, list[str]]) -> Path:
    children = {
        name: {"hosts": {host: {"ansible_connection": "local"} for host in hosts}} for name, hosts in groups.items()
    }
    path.write_text(json.dumps({"all": {"children": children}}))
    return path


@pytest.mark.parametrize("layout", LAYOUTS)
def test_routes_follow_the_groups(tmp_path, layout):
    groups, routes, (gateway_here, chat_here) = LAYOUTS[layout]
    inventory = write_inventory(tmp_path / "hosts.json", groups)
    playbook = tmp_path / "show.yml"
    out = tmp_path / "out.json"
    playbook.write_text(
        f"""
- hosts: entrance
  gather_facts: false
  vars_files: [{ROOT}/playbooks/vars/gpu.yml]
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ {{'routes': __pp_gpu_routes, 'gateway': __pp_gateway_on_entrance | bool,
                   'chat': __pp_chat_on_entrance | bool}} | to_json }}}}"
        dest: {out}
      delegate_to: localhost
"""
    )
    result = run_playbook("-i", str(inventory), str(playbook))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data == {"routes": routes, "gateway": gateway_here, "chat": chat_here}


@pytest.mark.parametrize(
    ("playbook", "play", "hosts"),
    [
        ("entrance.yml", "Entrance server", "e1"),
        ("gpu_up.yml", "GPU up - engine, models and metrics", "gpu1"),
    ],
)
def test_plays_target_the_groups(tmp_path, playbook, play, hosts):
    groups = {"entrance": ["e1"], "gateway": ["gpu1"], "chat": ["gpu1"], "inference": ["gpu1"]}
    inventory = write_inventory(tmp_path / "hosts.json", groups)
    result = run_playbook("-i", str(inventory), "--list-hosts", str(ROOT / "playbooks" / playbook))
    assert result.returncode == 0, result.stdout + result.stderr
    block = [part for part in result.stdout.split("play #") if play in part]
    assert block, result.stdout
    assert hosts in block[0], block[0]
