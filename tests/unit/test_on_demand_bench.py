"""The replay simulator bench/on_demand.py and the trace generator bench/parrotpark_trace.py.

The trace's totals are Parrotpark's evaluation's, exactly; on tiny hand-made
traces the simulator gives the numbers worked out by hand; scheduled mode on
the evaluation's trace costs its 10 h a working day; the command line prints
valid JSON and refuses bad arguments naming the option; --ledger-out and
--usage-out write the cost report's LEDGER.json and USAGE.csv, which the
report (roles/scheduler/files/gpu_report.py) reads.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))
import on_demand  # noqa: E402
import parrotpark_trace  # noqa: E402

if str(ROOT / "roles" / "scheduler" / "files") not in sys.path:
    sys.path.insert(0, str(ROOT / "roles" / "scheduler" / "files"))
import gpu_report  # noqa: E402

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
# --ledger-out and --usage-out: the cost report's inputs
# --------------------------------------------------------------------------


def read_usage(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_the_replay_as_the_reports_ledger_and_usage(tmp_path):
    trace = write_trace(
        tmp_path / "two.csv",
        [
            ("2025-03-17T10:00:00+01:00", "a", 1000, 100),
            ("2025-03-17T13:00:00+01:00", "b", 500, 50),
            ("2025-03-17T13:10:00+01:00", "a", 200, 20),  # warm: ready at 13:05
        ],
    )
    ledger, usage = tmp_path / "LEDGER.json", tmp_path / "USAGE.csv"
    options = ["--trace", str(trace), "--mode", "on_demand", "--idle-minutes", "15", "--boot-minutes", "5"]
    plain = simulator(*options, "--json")
    result = simulator(*options, "--json", "--ledger-out", str(ledger), "--usage-out", str(usage))
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout  # the JSON output is unchanged
    sessions = json.loads(ledger.read_text())
    # 10:00 wake, healthy 10:05 (served then), in flight service(1000, 100) = 4.9 s, then 15 min idle;
    # 13:00 wake, healthy 13:05, the 13:10 request in flight service(200, 20) = 1.38 s, then 15 min idle
    assert sessions == [
        {
            "instance": "parrotpark-gpu",
            "commercial_type": "L4-1-24G",
            "zone": "fr-par-2",
            "hourly_price_eur": 0.79,
            "started": "2025-03-17T10:00:00+01:00",
            "healthy": "2025-03-17T10:05:00+01:00",
            "stopped": "2025-03-17T10:20:04.900000+01:00",
            "started_by": "wake",
        },
        {
            "instance": "parrotpark-gpu",
            "commercial_type": "L4-1-24G",
            "zone": "fr-par-2",
            "hourly_price_eur": 0.79,
            "started": "2025-03-17T13:00:00+01:00",
            "healthy": "2025-03-17T13:05:00+01:00",
            "stopped": "2025-03-17T13:25:01.380000+01:00",
            "started_by": "wake",
        },
    ]
    assert read_usage(usage) == [
        ["day", "model", "user", "prompt_tokens", "completion_tokens", "served_by"],
        ["2025-03-17", "mistral-nemo-12b", "a", "1200", "120", "local"],
        ["2025-03-17", "mistral-nemo-12b", "b", "500", "50", "local"],
    ]
    # The report reads both: 20 min 4.9 s -> 21 minutes, 25 min 1.38 s -> 26 minutes; 47 x 0.79 / 60 = 0.61883
    report = gpu_report.build(ledger, usage, month="2025-03", now=datetime(2026, 1, 1, tzinfo=UTC))
    assert (report["gpu_minutes"], report["gpu_eur"]) == (47, Decimal("0.62"))
    assert (report["cold_starts"], report["wake_seconds_p50"], report["mode_as_run"]) == (2, 300, "on_demand")
    assert (report["prompt_tokens"], report["completion_tokens"]) == (1700, 170)


def test_refused_requests_are_not_in_the_usage(tmp_path):
    rows = [
        ("2025-03-17T22:00:00+01:00", "night", 100, 10),  # quiet hours: refused, never served
        ("2025-03-18T10:00:00+01:00", "a", 100, 10),
        ("2025-03-18T10:01:00+01:00", "a", 300, 30),
    ]
    trace = write_trace(tmp_path / "conv.csv", rows)
    usage = tmp_path / "USAGE.csv"
    result = simulator("--trace", str(trace), "--mode", "on_demand", "--usage-out", str(usage))
    assert result.returncode == 0, result.stderr
    assert read_usage(usage)[1:] == [["2025-03-18", "mistral-nemo-12b", "a", "400", "40", "local"]]
    assert "1 refused requests are not in --usage-out" in result.stderr


def test_the_evaluation_trace_scheduled_as_the_reports_inputs(tmp_path):
    ledger, usage = tmp_path / "LEDGER.json", tmp_path / "USAGE.csv"
    result = simulator(
        "--trace", str(TRACE), "--mode", "scheduled", "--ledger-out", str(ledger), "--usage-out", str(usage)
    )
    assert result.returncode == 0, result.stderr
    sessions = json.loads(ledger.read_text())
    assert len(sessions) == 9
    assert {(s["started"][10:], s["stopped"][10:], s["started_by"]) for s in sessions} == {
        ("T08:00:00+01:00", "T18:00:00+01:00", "timer")
    }
    rows = read_usage(usage)[1:]
    assert sum(int(row[3]) for row in rows) == 329_503 and sum(int(row[4]) for row in rows) == 103_083
    assert {row[2] for row in rows} == {"alice", "bruno", "chloe", "dmitri"}
    assert len({row[0] for row in rows}) == 9


def test_an_output_in_a_missing_folder_is_refused_before_the_replay(tmp_path):
    missing = tmp_path / "nowhere" / "LEDGER.json"
    result = simulator("--trace", str(TRACE), "--mode", "on_demand", "--ledger-out", str(missing))
    assert result.returncode == 2
    assert f"--ledger-out {missing}: the folder {missing.parent} does not exist" in result.stderr


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
