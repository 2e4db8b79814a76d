"""The playbooks place the services by the inventory's groups alone.

The default layout (the gateway on the entrance: gateway and chat there) and
the gateway on the GPU server (LiteLLM and LibreChat there, the entrance in
neither group gateway nor chat; gpu-gateway in ids) give the playbooks' shared
settings (playbooks/vars/gpu.yml) different Caddy routes and upstreams; the
plays of entrance.yml and gpu_up.yml list the roles for the right hosts.
A layout that splits LiteLLM from LibreChat, or the gateway on the GPU server
without what it needs, is refused before anything runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible_run import ROOT, run_playbook

LAYOUTS = {
    "default": (
        {"entrance": ["e1"], "gateway": ["e1"], "chat": ["e1"], "inference": []},
        [{"name": "gpu-8000", "port": 8000}, {"name": "gpu-8001", "port": 8001}],
        (True, True),
    ),
    "gpu-gateway": (
        {"entrance": ["e1"], "gateway": [], "chat": [], "inference": []},
        [{"name": "gpu-4000", "port": 4000}, {"name": "gpu-3080", "port": 3080}],
        (False, False),
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
  roles: [parrotpark.llm.parrotpark]
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


REFUSED_LAYOUTS = {
    "gateway on the entrance, chat on the GPU": (
        {"entrance": ["e1"], "gateway": ["e1"], "chat": [], "inference": []},
        {},
        [r"is in the group gateway\s+but not in the group chat", r"both on the entrance"],
    ),
    "chat on the entrance, gateway on the GPU": (
        {"entrance": ["e1"], "gateway": [], "chat": ["e1"], "inference": []},
        {},
        [r"is in the group chat\s+but not in the group gateway"],
    ),
    "gpu-gateway without an external MongoDB": (
        {"entrance": ["e1"], "gateway": [], "chat": [], "inference": []},
        {"pgvector_listen_addresses": ["10.0.0.2"], "pgvector_allowed_networks": ["10.0.0.0/24"]},
        [r"Set librechat_mongodb_enabled to false and librechat_mongo_uri", r"librechat_mongo_uri empty"],
    ),
    "gpu-gateway with PostgreSQL unreachable from the GPU server": (
        {"entrance": ["e1"], "gateway": [], "chat": [], "inference": []},
        {
            "librechat_mongodb_enabled": False,
            "librechat_mongo_uri": "mongodb://db.example.test:27017/LibreChat",
            "librechat_file_strategy": "s3",
        },
        [r"publish\s+PostgreSQL on the private network with pgvector_listen_addresses", r"got\s+\[\]\s+and\s+\[\]"],
    ),
    # Uploads in a docker volume of a server destroyed every evening would be lost with it.
    "gpu-gateway with uploads on the GPU server": (
        {"entrance": ["e1"], "gateway": [], "chat": [], "inference": []},
        {
            "librechat_mongodb_enabled": False,
            "librechat_mongo_uri": "mongodb://db.example.test:27017/LibreChat",
            "pgvector_listen_addresses": ["10.0.0.2"],
            "pgvector_allowed_networks": ["10.0.0.0/24"],
        },
        [r"set\s+librechat_file_strategy\s+to\s+s3\s+so\s+that\s+uploaded\s+files\s+outlive", r"\(got\s+local\)"],
    ),
}


@pytest.mark.parametrize("layout", REFUSED_LAYOUTS)
def test_entrance_refuses_a_layout_it_cannot_deploy(tmp_path, layout):
    """entrance.yml stops before any role when the groups split LiteLLM from LibreChat, or the gateway on the GPU
    server lacks what a GPU server destroyed every evening needs; the message names the groups or variables."""
    groups, variables, patterns = REFUSED_LAYOUTS[layout]
    inventory = write_inventory(tmp_path / "hosts.json", groups)
    # Secrets in tmp_path: a layout that is not refused (the test fails) goes on to generate them.
    settings = {"parrotpark_domain": "example.test", "parrotpark_secrets_dir": str(tmp_path / "secrets"), **variables}
    (tmp_path / "vars.json").write_text(json.dumps(settings))
    result = run_playbook(
        "--check", "-i", str(inventory), str(ROOT / "playbooks" / "entrance.yml"), "-e", f"@{tmp_path / 'vars.json'}"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert re.search(r"e1\s*:.*changed=0.*failed=1", output), output
    for pattern in patterns:
        assert re.search(pattern, output), (pattern, output)
    assert "parrotpark.llm.docker" not in output, "a role ran before the layout was checked"
