"""The replay simulator bench/on_demand.py and the trace generator bench/parrotpark_trace.py.

The trace's totals are Parrotpark's evaluation's, exactly; on tiny hand-made
traces the simulator gives the numbers worked out by hand; scheduled mode on
the evaluation's trace costs its 10 h a working day; the command line prints
valid JSON and refuses bad arguments naming the option.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))
import on_demand  # noqa: E402
import parrotpark_trace  # noqa: E402

SIMULATOR = ROOT / "bench" / "on_demand.py"
GENERATOR = ROOT / "bench" / "parrotpark_trace.py"
TRACE = ROOT / "bench" / "traces" / "parrotpark-evaluation.csv"
REQUIRED = (
    "gpu_hours",
    "sessions",
    "requests",
    "cold_requests",
    "max_wait_seconds",
    "eur",
    "period_days",
    "eur_per_million_tokens",
    "cold_starts_per_day",
    "cold_request_share",
    "gpu_hours_per_month",
    "eur_per_month",
)


def simulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SIMULATOR), *args], capture_output=True, text=True, timeout=120, check=False
    )


def write_trace(path: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(on_demand.HEADER)
        writer.writerows(rows)
    return path


def service(prompt: int, completion: int) -> float:
    """The simulator's stated service model: 0.5 s + prompt / 2,500 + completion / 25."""
    return 0.5 + prompt / 2500 + completion / 25


def run_json(*args: str) -> dict:
    result = simulator(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --------------------------------------------------------------------------
# The trace
# --------------------------------------------------------------------------


def test_the_trace_has_the_evaluations_totals_exactly(tmp_path):
    out = tmp_path / "trace.csv"
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--seed", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = on_demand.read_trace(out)
    assert sum(row.prompt_tokens for row in rows) == 329_503
    assert sum(row.completion_tokens for row in rows) == 103_083
    days = {row.at.date() for row in rows}
    assert len(days) == 9 and all(day.weekday() < 5 for day in days)
    assert min(row.at.time() for row in rows) >= parrotpark_trace.FIRST
    assert max(row.at.time() for row in rows) <= parrotpark_trace.LAST
    assert 2 <= len({row.user for row in rows}) <= 6
    assert all(row.prompt_tokens >= 1 and row.completion_tokens >= 1 for row in rows)


def test_the_committed_trace_is_seed_14_and_the_generator_is_deterministic():
    rows = parrotpark_trace.generate(14)
    assert rows == parrotpark_trace.generate(14)
    assert rows != parrotpark_trace.generate(15)
    with TRACE.open(encoding="utf-8", newline="") as handle:
        committed = list(csv.reader(handle))
    assert committed[0] == list(parrotpark_trace.HEADER)
    assert committed[1:] == [[stamp, user, str(prompt), str(completion)] for stamp, user, prompt, completion in rows]
    assert sum(int(row[2]) + int(row[3]) for row in committed[1:]) == 432_586


def test_scaling_keeps_the_total_and_every_share_positive():
    assert parrotpark_trace._scale([1.0, 1.0, 1.0], 10) in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    scaled = parrotpark_trace._scale([0.001, 500.0, 1000.0], 100)
    assert sum(scaled) == 100 and min(scaled) == 1


# --------------------------------------------------------------------------
# The simulator on hand-made traces
# --------------------------------------------------------------------------


def test_two_requests_three_hours_apart_make_two_sessions(tmp_path):
    trace = write_trace(
        tmp_path / "two.csv",
        [("2025-03-17T10:00:00+01:00", "a", 1000, 100), ("2025-03-17T13:00:00+01:00", "a", 500, 50)],
    )
    result = run_json("--trace", str(trace), "--mode", "on_demand", "--idle-minutes", "15", "--boot-minutes", "5")
    # Each: 5 min of boot (the request waits), its service, then 15 min idle.
    hours = (5 + 15) * 2 / 60 + (service(1000, 100) + service(500, 50)) / 3600
    assert result["sessions"] == 2
    assert result["gpu_hours"] == pytest.approx(hours, abs=1e-4)
    assert result["eur"] == pytest.approx(hours * 0.79, abs=0.006)
    assert (result["requests"], result["cold_requests"], result["max_wait_seconds"]) == (2, 2, 300)
    assert result["cold_request_share"] == 1.0
    assert (result["period_days"], result["working_days"]) == (1, 1)
    assert result["stop_reasons"] == {"idle": 2}


def test_twenty_requests_at_once_wake_one_server_and_warm_ones_are_not_cold(tmp_path):
    rows = [(f"2025-03-17T10:00:{second:02d}+01:00", f"u{second}", 100, 10) for second in range(20)]
    rows.append(("2025-03-17T10:06:00+01:00", "u0", 100, 10))  # ready at 10:05: served warm
    trace = write_trace(tmp_path / "burst.csv", rows)
    result = run_json("--trace", str(trace), "--mode", "on_demand", "--boot-minutes", "5", "--idle-minutes", "5")
    assert (result["sessions"], result["cold_requests"], result["requests"]) == (1, 20, 21)
    assert result["max_wait_seconds"] == 300
    hours = (5 + 1 + 5) / 60 + service(100, 10) / 3600  # ready 10:05, last request 10:06, idle 5 min
    assert result["gpu_hours"] == pytest.approx(hours, abs=1e-4)


def test_price_and_token_cost(tmp_path):
    trace = write_trace(tmp_path / "one.csv", [("2025-03-17T10:00:00+01:00", "a", 6_000, 4_000)])
    result = run_json(
        "--trace",
        str(trace),
        "--mode",
        "on_demand",
        "--idle-minutes",
        "10",
        "--boot-minutes",
        "5",
        "--hourly-price",
        "2",
    )
    hours = 15 / 60 + service(6_000, 4_000) / 3600  # the request is in flight 163 s
    assert result["gpu_hours"] == pytest.approx(hours, abs=1e-4)
    assert result["eur"] == pytest.approx(2 * hours, abs=0.006)
    assert result["eur_per_million_tokens"] == pytest.approx(2 * hours * 100, abs=0.006)  # 10,000 tokens
    # The working month: 5 days a week x 365.25 / 7 / 12 = 21.74 working days.
    assert result["gpu_hours_per_month"] == pytest.approx(hours * 5 * 365.25 / 7 / 12, abs=0.01)


def test_quiet_hours_refuse_and_the_users_wait_option_shifts_a_conversation(tmp_path):
    rows = [
        ("2025-03-17T22:00:00+01:00", "night", 100, 10),  # quiet hours: refused, never served
        ("2025-03-18T10:00:00+01:00", "a", 100, 10),
        ("2025-03-18T10:01:00+01:00", "a", 100, 10),
        ("2025-03-18T10:02:00+01:00", "a", 100, 10),
    ]
    trace = write_trace(tmp_path / "conv.csv", rows)
    plain = run_json("--trace", str(trace), "--mode", "on_demand", "--boot-minutes", "5")
    assert (plain["refused_requests"], plain["cold_requests"], plain["sessions"]) == (1, 3, 1)
    assert plain["max_wait_seconds"] == 300
    waiting = run_json("--trace", str(trace), "--mode", "on_demand", "--boot-minutes", "5", "--users-wait")
    # The follow-ups come 1 and 2 min after the first answer (at 10:05): warm.
    assert (waiting["refused_requests"], waiting["cold_requests"], waiting["sessions"]) == (1, 1, 1)
    first = service(100, 10)
    hours = (5 + 2 + 5) / 60 + first / 3600  # ready 10:05, last request 10:07 + its service, idle 5 (the boot)
    assert waiting["gpu_hours"] == pytest.approx(hours, abs=1e-4)


def test_hybrid_floor_from_the_config_and_demand_outside_it(tmp_path):
    config = tmp_path / "inventory.yml"
    config.write_text(
        "scheduler_time_zone: Europe/Paris\n"
        "scheduler_days: [Mon, Tue, Wed, Thu, Fri]\n"
        'scheduler_up_time: "09:00"\n'
        'scheduler_down_time: "12:00"\n'
        "scheduler_holidays: []\n"
        "scheduler_retry_minutes: 15\n"
        "scheduler_idle_minutes: 10\n"
        "scheduler_boot_minutes: 5\n"
        "scheduler_quiet_start: ''\n"
        "scheduler_quiet_end: ''\n"
    )
    trace = write_trace(
        tmp_path / "t.csv", [("2025-03-17T10:00:00+01:00", "a", 100, 10), ("2025-03-17T15:00:00+01:00", "a", 100, 10)]
    )
    result = run_json("--trace", str(trace), "--mode", "hybrid", "--config", str(config))
    # The floor 09:00-12:00 (3 h, the 10:00 request warm), then 15:00 wakes: 5 min boot + service + 10 min idle.
    assert (result["sessions"], result["cold_requests"]) == (2, 1)
    assert result["gpu_hours"] == pytest.approx(3 + 15 / 60 + service(100, 10) / 3600, abs=1e-4)
    assert result["stop_reasons"] == {"floor_end": 1, "idle": 1}


# --------------------------------------------------------------------------
# The simulator on the evaluation's trace
# --------------------------------------------------------------------------


def test_scheduled_mode_on_the_trace_is_ten_hours_a_working_day():
    result = run_json("--trace", str(TRACE), "--mode", "scheduled")
    working_days = len({row.at.date() for row in on_demand.read_trace(TRACE)})
    assert working_days == 9
    assert result["working_days"] == working_days
    assert result["gpu_hours"] == pytest.approx(10 * working_days)
    assert result["sessions"] == working_days
    assert result["eur"] == pytest.approx(10 * working_days * 0.79)
    assert (result["cold_requests"], result["refused_requests"], result["requests"]) == (0, 0, 422)
    assert result["period_days"] == (date(2025, 3, 27) - date(2025, 3, 17)).days + 1


def test_on_demand_on_the_trace_costs_less_than_the_schedule_with_cold_starts():
    scheduled = run_json("--trace", str(TRACE), "--mode", "scheduled")
    demand = run_json("--trace", str(TRACE), "--mode", "on_demand")
    assert demand["gpu_hours"] < scheduled["gpu_hours"] / 2
    assert demand["sessions"] > scheduled["sessions"]
    assert demand["cold_requests"] > 0
    assert demand["refused_requests"] == 0
    # A cold wait is the boot (8 min), or the boot after the minimum off time (2 min) when a request came
    # just after an idle stop.
    assert 480 <= demand["max_wait_seconds"] <= 600


def test_json_has_the_required_keys_and_a_table_without_json():
    result = run_json("--trace", str(TRACE), "--mode", "on_demand")
    assert set(REQUIRED) <= set(result)
    assert result["requests"] == 422
    text = simulator("--trace", str(TRACE), "--mode", "on_demand")
    assert text.returncode == 0
    assert "sessions (cold starts)" in text.stdout and "EUR per million tokens" in text.stdout


# --------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--mode", "lazy"], "argument --mode: invalid choice"),
        (["--mode", "on_demand", "--idle-minutes", "-5"], "argument --idle-minutes: must be a number of at least 0"),
        (["--mode", "on_demand", "--boot-minutes", "0"], "argument --boot-minutes: must be above 0"),
        (["--mode", "on_demand", "--hourly-price", "cheap"], "argument --hourly-price: must be a number"),
        (
            ["--mode", "on_demand", "--boot-minutes", "30"],
            "boot_deadline_minutes (20) must be above --boot-minutes (30)",
        ),
        (["--mode", "on_demand", "--config", "/nonexistent.yml"], "--config /nonexistent.yml: cannot read it"),
        ([], "the following arguments are required: --mode"),
    ],
)
def test_bad_arguments_exit_non_zero_naming_the_option(args, option):
    result = simulator("--trace", str(TRACE), *args)
    assert result.returncode != 0
    assert option in result.stderr, result.stderr


def test_a_bad_config_value_is_named(tmp_path):
    config = tmp_path / "bad.yml"
    config.write_text("scheduler_up_time: 9:30\n")  # unquoted: YAML 1.1 reads 570 (sexagesimal)
    result = simulator("--trace", str(TRACE), "--mode", "scheduled", "--config", str(config))
    assert result.returncode != 0
    assert f"scheduler_up_time (--config {config}) must be HH:MM" in result.stderr, result.stderr
    assert "quote times in YAML" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,user,prompt_tokens,completion_tokens\n", "the header must be timestamp,user,prompt_tokens"),
        ("timestamp,user,prompt_tokens,completion_tokens\n2025-03-17T10:00:00,a,1,1\n", "line 2: timestamp"),
        ("timestamp,user,prompt_tokens,completion_tokens\n2025-03-17T10:00:00+01:00,a,x,1\n", "line 2: prompt_tokens"),
        ("timestamp,user,prompt_tokens,completion_tokens\n", "no request in the trace"),
    ],
)
def test_a_bad_trace_is_named(tmp_path, content, message):
    trace = tmp_path / "bad.csv"
    trace.write_text(content)
    result = simulator("--trace", str(trace), "--mode", "on_demand")
    assert result.returncode != 0
    assert f"--trace {trace}" in result.stderr and message in result.stderr, result.stderr
