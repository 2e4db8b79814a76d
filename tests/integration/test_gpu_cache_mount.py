"""gpu_up's use of the cache volume on the GPU server, with its own task definitions, on a file instead of a disk.

The tasks are read from playbooks/gpu_up.yml (the engine play's "Use the cache
volume" block) and run on localhost up to the file system: the disk is found
by its serial (a stand-in ``lsblk`` on PATH lists a regular file with the
serial ``volume-<id>``), the ext4 file system is made the first time and never
again (the second run changes nothing and keeps the UUID, so the cache
survives), and a disk that never shows up is a cold start with a message, not
a failure. Mounting and systemd are not run here (the lab and a real server
do that).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_run import ROOT, ansible_env, run_playbook

VOLUME_ID = str(uuid.UUID(int=0xCAC4E))
MKFS = Path("/usr/sbin/mkfs.ext4")


def cache_block() -> list[dict[str, Any]]:
    plays = yaml.safe_load((ROOT / "playbooks/gpu_up.yml").read_text())
    (engine,) = [play for play in plays if play["name"] == "GPU up - engine, models and metrics"]
    (use,) = [task for task in engine["pre_tasks"] if task["name"] == "Use the cache volume"]
    return use["block"]


def tasks_up_to_the_file_system() -> list[dict[str, Any]]:
    """The block's tasks, the mount block cut after the file system's UUID (no systemd on the test host)."""
    keep = ("Make its file system once (an existing one is never replaced)", "Read the file system's UUID")
    tasks = []
    for task in cache_block():
        if task["name"] == "Mount the cache volume and put the caches on it":
            inner = [step for step in task["block"] if step["name"] in keep]
            assert len(inner) == 2, [step["name"] for step in task["block"]]
            tasks.append({**task, "block": inner})
        else:
            tasks.append(task)
    return tasks


def write_lsblk(bin_dir: Path, devices: list[dict[str, Any]]) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "lsblk"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + json.dumps({"blockdevices": devices}) + "\nEOF\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def run(tmp_path: Path, *, retries: int | None = None) -> tuple[subprocess.CompletedProcess[str], str]:
    tasks = tasks_up_to_the_file_system()
    if retries is not None:
        tasks[0] = {**tasks[0], "retries": retries, "delay": 0}
    report = "{{ {'dev': __pp_cache_dev, 'uuid': (__pp_cache_uuid.stdout | default('') | trim)} | to_json }}"
    tasks.append({"name": "Report", "ansible.builtin.copy": {"content": report, "dest": str(tmp_path / "result.json")}})
    playbook = tmp_path / "cache.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {"__pp_cache": {"id": VOLUME_ID, "name": "parrotpark-gpu-cache", "attached": True}},
                    "tasks": tasks,
                }
            ]
        )
    )
    env = ansible_env()
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}{os.pathsep}/usr/sbin{os.pathsep}/sbin"
    result = run_playbook("-i", "localhost,", str(playbook), env=env, timeout=180)
    return result, result.stdout + result.stderr


def reported(tmp_path: Path) -> dict[str, str]:
    return json.loads((tmp_path / "result.json").read_text())


@pytest.mark.skipif(not MKFS.exists(), reason="needs mkfs.ext4")
def test_the_file_system_is_made_once_and_kept(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with image.open("wb") as disk:
        disk.truncate(64 * 1024 * 1024)
    write_lsblk(
        tmp_path / "bin",
        [
            {"path": "/dev/sda", "serial": "volume-00000000-0000-0000-0000-000000000001"},
            {"path": str(image), "serial": f"volume-{VOLUME_ID}"},
        ],
    )
    first, output = run(tmp_path)
    assert first.returncode == 0, output
    made = reported(tmp_path)
    assert made["dev"] == str(image)
    assert re.fullmatch(r"[0-9a-f-]{36}", made["uuid"]), output
    assert (
        re.search(r"TASK \[Make its file system once.*?\n(changed|ok): \[localhost\]", output, re.S).group(1)
        == "changed"
    )

    second, output = run(tmp_path)
    assert second.returncode == 0, output
    assert re.search(r"TASK \[Make its file system once.*?\n(changed|ok): \[localhost\]", output, re.S).group(1) == "ok"
    assert reported(tmp_path) == made  # same file system: what the last session cached is still there


def test_a_disk_that_never_shows_up_is_a_cold_start_not_a_failure(tmp_path: Path) -> None:
    write_lsblk(tmp_path / "bin", [{"path": "/dev/sda", "serial": "volume-00000000-0000-0000-0000-000000000001"}])
    result, output = run(tmp_path, retries=1)
    assert result.returncode == 0, output
    assert reported(tmp_path)["dev"] == ""
    assert f"no disk with the serial volume-{VOLUME_ID}" in " ".join(output.split())
    step = re.search(r"TASK \[Make its file system once.*?\n(\w+): \[localhost\]", output, re.S)
    assert step and step.group(1) == "skipping", output
