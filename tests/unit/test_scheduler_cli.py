"""The scheduler's command, roles/scheduler/files/parrotpark_gpu.py, run directly as the timers run it.

should-be-up, next-up, a broken schedule, up outside the schedule, up --force
and down with a stand-in ansible-playbook, and the records for Telegraf. (The
role's rendering of its schedule and timers, read by this program and by
systemd, is tested in tests/integration/test_scheduler_role_input.py.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "roles" / "scheduler" / "files" / "parrotpark_gpu.py"
# Scaleway credentials of the shape the command passes on (the fake Scaleway API's, tests/integration).
ACCESS_KEY = "SCWPARROTPARK0TEST01"
SECRET_KEY = "5d0c2f3e-8b1a-4c6d-9e7f-a1b2c3d4e5f6"

SCHEDULE = {
    "time_zone": "Europe/Paris",
    "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
    "up_time": "08:00",
    "down_time": "19:00",
    "retry_minutes": 15,
    "holidays": ["2025-12-25"],
}


def program(tmp_path: Path, *args: str, schedule: dict[str, Any] | None = None, env: dict[str, str] | None = None):
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(schedule or SCHEDULE))
    return subprocess.run(
        [
            sys.executable,
            str(PROGRAM),
            "--schedule",
            str(path),
            "--state-dir",
            str(tmp_path / "state"),
            "--lock-file",
            str(tmp_path / "lock"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("at", "expected", "reason"),
    [
        ("2025-01-06T10:00", 0, r"inside the working hours 08:00-19:00"),  # Monday
        ("2025-01-06T08:00", 0, r"inside"),
        ("2025-01-06T18:59", 0, r"inside"),
        ("2025-01-06T07:59", 1, r"before the up time 08:00"),
        ("2025-01-06T19:00", 1, r"at or after the down time 19:00"),
        ("2025-01-04T10:00", 1, r"Sat is not a working day"),
        ("2025-12-25T10:00", 1, r"2025-12-25 is a holiday"),  # a Thursday
        ("2025-01-06T07:30:00+00:00", 0, r"08:30 Europe/Paris"),  # an offset is converted to the zone
        ("2025-07-07T06:30:00+00:00", 0, r"08:30 Europe/Paris"),  # summer time: UTC+2
    ],
)
def test_should_be_up(tmp_path, at, expected, reason):
    result = program(tmp_path, "should-be-up", "--at", at)
    assert result.returncode == expected, result.stdout + result.stderr
    assert re.search(reason, result.stdout), result.stdout


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-01-10T19:30", "2025-01-13T08:00+01:00"),  # Friday evening: Monday's up time
        ("2025-01-11T12:00", "2025-01-13T08:00+01:00"),  # Saturday
        ("2025-01-06T06:00", "2025-01-06T08:00+01:00"),  # Monday morning: today
        ("2025-01-06T10:01", "2025-01-06T10:15+01:00"),  # inside the hours: the up timer's next tick
        ("2025-12-24T19:00", "2025-12-26T08:00+01:00"),  # the holiday is skipped
        ("2025-03-28T20:00", "2025-03-31T08:00+02:00"),  # across the change to summer time
    ],
)
def test_next_up(tmp_path, at, expected):
    iso = program(tmp_path, "next-up", "--at", at, "--iso")
    assert iso.returncode == 0, iso.stderr
    assert iso.stdout.strip() == expected
    short = program(tmp_path, "next-up", "--at", at)
    assert short.stdout.strip() == expected[11:16]


def test_a_broken_schedule_is_an_error(tmp_path):
    result = program(tmp_path, "should-be-up", schedule={**SCHEDULE, "up_time": "20:00"})
    assert result.returncode == 2
    assert "up_time (20:00) must be before down_time (19:00)" in result.stderr


def stand_in_playbook(tmp_path: Path, exit_code: int) -> Path:
    """An ansible-playbook that records its arguments and the environment it got, then exits with exit_code."""
    path = tmp_path / f"ansible-playbook-{exit_code}"
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(tmp_path / 'called.json')!r}, 'w').write(json.dumps("
        "{'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() if k.startswith(('SCW_', 'ANSIBLE_'))}}))\n"
        "print('PLAY RECAP stand-in')\n"
        f"sys.exit({exit_code})\n"
    )
    path.chmod(0o755)
    return path


def test_up_outside_the_schedule_does_nothing(tmp_path):
    today = datetime.now(UTC).date()
    holidays = [(today + timedelta(days=offset)).isoformat() for offset in (-1, 0, 1)]
    playbook = stand_in_playbook(tmp_path, 0)
    result = program(tmp_path, "--ansible-playbook", str(playbook), "up", schedule={**SCHEDULE, "holidays": holidays})
    assert result.returncode == 0, result.stderr
    for words in ("outside the schedule", "is a holiday", "nothing to do"):
        assert words in result.stdout, result.stdout
    assert not (tmp_path / "called.json").exists(), "the playbook must not run"
    assert not (tmp_path / "state" / "last-up.json").exists()


def test_up_force_and_down_run_the_playbooks_and_record_them(tmp_path):
    env_file = tmp_path / "environment"
    env_file.write_text(f"# managed\nSCW_ACCESS_KEY={ACCESS_KEY}\nSCW_SECRET_KEY={SECRET_KEY}\nANSIBLE_CONFIG=/x.cfg\n")
    common = ["--environment-file", str(env_file), "--inventory", str(tmp_path / "inventory")]

    up = program(tmp_path, *common, "--ansible-playbook", str(stand_in_playbook(tmp_path, 0)), "up", "--force")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "PLAY RECAP stand-in" in up.stdout, "the playbook's output is streamed"
    called = json.loads((tmp_path / "called.json").read_text())
    assert called["argv"] == ["-i", str(tmp_path / "inventory"), "parrotpark.llm.gpu_up"]
    assert called["env"]["SCW_SECRET_KEY"] == SECRET_KEY and called["env"]["ANSIBLE_CONFIG"] == "/x.cfg"
    record = json.loads((tmp_path / "state" / "last-up.json").read_text())
    assert record["action"] == "up" and record["outcome"] == "ok" and record["exit_code"] == 0
    assert isinstance(record["duration_seconds"], float) and record["duration_seconds"] >= 0
    assert datetime.fromisoformat(record["started"]) <= datetime.fromisoformat(record["finished"])

    down_playbook = stand_in_playbook(tmp_path, 3)
    down = program(tmp_path, *common, "--ansible-playbook", str(down_playbook), "down", "--", "-v", "-e", "x=1")
    assert down.returncode == 3, "the playbook's exit code"
    called = json.loads((tmp_path / "called.json").read_text())
    assert called["argv"] == ["-i", str(tmp_path / "inventory"), "parrotpark.llm.gpu_down", "-v", "-e", "x=1"]
    record = json.loads((tmp_path / "state" / "last-down.json").read_text())
    assert record["outcome"] == "failed" and record["exit_code"] == 3

    lines = (tmp_path / "state" / "scheduler.influx").read_text().splitlines()
    line = r"parrotpark_scheduler,action={} success={}i,exit_code={}i,duration_seconds=\d+\.\d,last_run=(\d+)i"
    up_line = re.fullmatch(line.format("up", 1, 0), lines[0])
    down_line = re.fullmatch(line.format("down", 0, 3), lines[1])
    assert len(lines) == 2 and up_line and down_line, lines
    finished = datetime.fromisoformat(record["finished"]).timestamp()
    assert int(down_line.group(1)) == int(finished)

    status = program(tmp_path, "status")
    assert "last up: ok (exit code 0)" in status.stdout and "last down: failed (exit code 3)" in status.stdout


def _tagged(name: str, hours_old: float) -> dict[str, Any]:
    created = datetime.now(UTC) - timedelta(hours=hours_old)
    return {"name": name, "zone": "fr-par-2", "id": f"id-{name}", "creation_date": created.isoformat()}


def reap_plan(tmp_path: Path, servers: Any, schedule: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(schedule))
    command = [sys.executable, str(PROGRAM), "--schedule", str(path), "--state-dir", str(tmp_path / "state")]
    return subprocess.run(
        [*command, "reap-plan", "--gpu-name", "parrotpark-gpu"],
        input=servers if isinstance(servers, str) else json.dumps(servers),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reap_plan_outside_the_schedule_reaps_the_gpu_unless_it_was_brought_up_by_hand(tmp_path):
    today = datetime.now(UTC).date()
    closed = {**SCHEDULE, "holidays": [(today + timedelta(days=offset)).isoformat() for offset in (-1, 0, 1)]}
    servers = [_tagged("parrotpark-gpu", 1), _tagged("someone-elses-test", 0.2), _tagged("parrotpark-gpu-x", 30)]

    result = reap_plan(tmp_path, servers, closed)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert {e["name"]: e["reason"] for e in plan["destroy"]} == {
        "parrotpark-gpu": "no_session",
        "someone-elses-test": "unknown_name",
        "parrotpark-gpu-x": "unknown_name",
    }
    assert plan["session"]["owns_the_gpu_server"] is False and "outside the schedule" in plan["session"]["why"]

    # An operator's "up --force" after the last down: the session owns the server, the strays still go.
    state = tmp_path / "state"
    state.mkdir()
    (state / "last-down.json").write_text(json.dumps({"action": "down", "started": "2025-01-06T19:00:00+01:00"}))
    (state / "last-up.json").write_text(json.dumps({"action": "up", "started": "2025-01-06T21:00:00+01:00"}))
    plan = json.loads(reap_plan(tmp_path, servers, closed).stdout)
    assert [e["name"] for e in plan["keep"]] == ["parrotpark-gpu"]
    assert sorted(e["name"] for e in plan["destroy"]) == ["parrotpark-gpu-x", "someone-elses-test"]
    assert "by hand" in plan["session"]["why"]

    # Past the session cap (24 h by default) even the session's server goes.
    plan = json.loads(reap_plan(tmp_path, [_tagged("parrotpark-gpu", 25)], closed).stdout)
    assert [(e["name"], e["reason"]) for e in plan["destroy"]] == [("parrotpark-gpu", "session_cap")]


def test_reap_plan_refuses_input_it_cannot_read(tmp_path):
    for bad, words in (
        ("{}", "expected a JSON list of servers"),
        ("[{}]", "each server must be an object with a name"),
    ):
        result = reap_plan(tmp_path, bad, SCHEDULE)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert result.stdout == ""


def test_reap_runs_its_playbook_under_the_lock(tmp_path):
    env_file = tmp_path / "environment"
    env_file.write_text(f"SCW_ACCESS_KEY={ACCESS_KEY}\n")
    playbook = stand_in_playbook(tmp_path, 0)
    common = ["--environment-file", str(env_file), "--inventory", str(tmp_path / "inventory")]
    result = program(tmp_path, *common, "--ansible-playbook", str(playbook), "reap", "--", "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    called = json.loads((tmp_path / "called.json").read_text())
    assert called["argv"] == ["-i", str(tmp_path / "inventory"), "parrotpark.llm.gpu_reap", "-v"]
    assert json.loads((tmp_path / "state" / "last-reap.json").read_text())["outcome"] == "ok"
