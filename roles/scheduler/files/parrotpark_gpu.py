"""parrotpark-gpu: bring the Parrotpark GPU server up and down on a schedule.

The parrotpark.llm.scheduler role installs this file as
/usr/local/lib/parrotpark/parrotpark_gpu.py; the command /usr/local/bin/parrotpark-gpu
calls ``main`` with the paths of the installation. The systemd units
parrotpark-gpu-up.service and parrotpark-gpu-down.service run it, and so can
an operator. Standard library only, Python 3.9 or later (zoneinfo).

Commands:

  should-be-up [--at ISO]      exit 0 when the schedule says the GPU should be up now (or at ISO), else 1
  next-up [--at ISO] [--iso]   the next time the up timer brings the GPU up, HH:MM in the schedule's zone
  up [--force] [-- ARGS]       run the gpu_up playbook if the schedule says so (always with --force)
  down [-- ARGS]               run the gpu_down playbook (no schedule check)
  reap [-- ARGS]               run the gpu_reap playbook: destroy the GPU-tagged servers no session owns
  reap-plan --gpu-name NAME    read the tagged servers (JSON) on stdin, print which ones to destroy and why
  status                       what the schedule says now, the last runs and, on demand, the GPU's state
  waker-address                where Caddy sends the GPU's routes while it is off (empty: scheduled mode)
  event NAME [--data JSON]     tell the waker what happened (healthy, destroyed, boot_failed, ...)
  report [--month YYYY-MM] [--out DIR] [--ledger F] [--usage F] [--prices F] [--timezone TZ] [--schedule F]
         [--timer]             the month's cost and usage report (gpu_report.py, docs/cost-report.md); installed,
                               from the waker's ledger and the metrics database by default

On demand (scheduler_mode on_demand or hybrid) the waker (gpu_waker.py, the
service parrotpark-gpu-waker) decides when the GPU runs and starts the up and
down services itself: ``up`` by hand asks it for a manual wake instead of
running the playbook, and a failed up run tells it the boot failed.

ARGS after ``--`` go to ansible-playbook (-v, -e ...). Every run of a
playbook is recorded in STATE_DIR/last-<action>.json and in
STATE_DIR/scheduler.influx (InfluxDB line protocol, one line per action, for
Telegraf's file input).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9
    sys.exit("parrotpark-gpu needs Python 3.9 or later (zoneinfo)")

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ACTIONS = ("up", "down")
MEASUREMENT = "parrotpark_scheduler"
# The systemd units take the lock with flock(1) and say so in the environment.
LOCK_HELD_ENV = "PARROTPARK_GPU_LOCK_HELD"
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Where the role installs everything; /usr/local/bin/parrotpark-gpu passes its own.
DEFAULTS: dict[str, Any] = {
    "schedule": "/etc/parrotpark/scheduler/schedule.json",
    "environment_file": "/etc/parrotpark/scheduler/environment",
    "ansible_playbook": "/opt/parrotpark/venv/bin/ansible-playbook",
    "inventory": "/etc/parrotpark/scheduler/inventory",
    "state_dir": "/var/lib/parrotpark/scheduler",
    "lock_file": "/run/lock/parrotpark-gpu.lock",
    "lock_wait": 3600,
    "playbooks": {"up": "parrotpark.llm.gpu_up", "down": "parrotpark.llm.gpu_down", "reap": "parrotpark.llm.gpu_reap"},
    "session_cap_hours": 24,
    # On demand: {"listen": "ADDR:PORT" (Caddy's routes), "control": "127.0.0.1:PORT"}; None: scheduled mode.
    "waker": None,
    # The report's defaults (gpu_report.run_installed): {"prices", "out_dir", "timezone", "psql": [argv of psql
    # reading SQL on stdin, printing CSV], "fallback": {"name", "models"}}; None: every input on the command line.
    "report": None,
}
# How long the CLI waits for the waker's control listener.
WAKER_TIMEOUT = 10
EVENTS = ("starting", "healthy", "boot_failed", "destroyed", "manual_wake")


class ScheduleError(Exception):
    """The schedule file is missing or wrong."""


def log(message: str) -> None:
    print(f"parrotpark-gpu: {message}", flush=True)


def _minutes(value: Any, name: str) -> int:
    match = HHMM.match(str(value))
    if not match:
        raise ScheduleError(f"{name} must be HH:MM (00:00 to 23:59), got {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Schedule:
    """Working days and hours in a time zone, with holidays; the up timer ticks every ``retry`` minutes."""

    zone_name: str
    days: tuple[int, ...]
    up: int
    down: int
    retry: int
    holidays: frozenset[date]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        zone_name = str(data.get("time_zone", ""))
        try:
            ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"time_zone: unknown time zone {zone_name!r}") from exc
        days = data.get("days")
        if not isinstance(days, list) or not days or any(day not in DAYS for day in days):
            raise ScheduleError(f"days must be a non-empty list of {', '.join(DAYS)}, got {days!r}")
        up = _minutes(data.get("up_time"), "up_time")
        down = _minutes(data.get("down_time"), "down_time")
        if up >= down:
            raise ScheduleError(f"up_time ({_hhmm(up)}) must be before down_time ({_hhmm(down)})")
        retry = data.get("retry_minutes")
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 1:
            raise ScheduleError(f"retry_minutes must be a positive integer, got {retry!r}")
        holidays = set()
        for value in data.get("holidays") or []:
            try:
                holidays.add(date.fromisoformat(str(value)))
            except ValueError as exc:
                raise ScheduleError(f"holidays: {value!r} is not a date YYYY-MM-DD") from exc
        return cls(zone_name, tuple(sorted(DAYS.index(day) for day in days)), up, down, retry, frozenset(holidays))

    @classmethod
    def load(cls, path: str | Path) -> Schedule:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ScheduleError(f"cannot read the schedule {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ScheduleError(f"the schedule {path} is not a JSON object")
        return cls.from_dict(data)

    def local(self, when: datetime | None = None) -> datetime:
        """``when`` (default now) in the schedule's zone; a naive ``when`` is read as local time there."""
        if when is None:
            return datetime.now(self.zone)
        if when.tzinfo is None:
            return when.replace(tzinfo=self.zone)
        return when.astimezone(self.zone)

    def describe(self) -> str:
        days = ",".join(DAYS[day] for day in self.days)
        return (
            f"{days} {_hhmm(self.up)}-{_hhmm(self.down)} {self.zone_name}, up timer every {self.retry} min, "
            f"{len(self.holidays)} holiday(s)"
        )

    def working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def check(self, when: datetime | None = None) -> tuple[bool, str]:
        """Whether the GPU should be up at ``when``, and why."""
        local = self.local(when)
        day = local.date()
        stamp = f"{DAYS[day.weekday()]} {day.isoformat()} {local:%H:%M} {self.zone_name}"
        if day in self.holidays:
            return False, f"{stamp}: {day.isoformat()} is a holiday"
        if day.weekday() not in self.days:
            days = ",".join(DAYS[d] for d in self.days)
            return False, f"{stamp}: {DAYS[day.weekday()]} is not a working day ({days})"
        minute = local.hour * 60 + local.minute
        if minute < self.up:
            return False, f"{stamp}: before the up time {_hhmm(self.up)}"
        if minute >= self.down:
            return False, f"{stamp}: at or after the down time {_hhmm(self.down)}"
        return True, f"{stamp}: inside the working hours {_hhmm(self.up)}-{_hhmm(self.down)}"

    def ticks(self, day: date) -> list[datetime]:
        """The up timer's ticks on ``day`` (those of parrotpark-gpu-up.timer): the up time, then every retry."""
        return [
            datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.zone)
            for minute in range(self.up, self.down, self.retry)
        ]

    def next_up(self, when: datetime | None = None) -> datetime | None:
        """The first tick after ``when`` on a working day: when the up timer next starts the GPU."""
        local = self.local(when)
        for offset in range(0, 400):
            day = local.date() + timedelta(days=offset)
            if not self.working_day(day):
                continue
            for tick in self.ticks(day):
                if tick > local:
                    return tick
        return None


# --------------------------------------------------------------------------
# Records for the operator and for Telegraf
# --------------------------------------------------------------------------


def read_record(state_dir: Path, action: str) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / f"last-{action}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` in one step (a reader never sees half a file), with ``mode`` from the start.

    The waker (gpu_waker.py) writes its state and ledger with it too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def influx_line(record: dict[str, Any]) -> str:
    """The last run of an action, without a timestamp: Telegraf reads the file
    at every interval and stamps each reading, so the table holds a series of
    "last outcome" samples rather than the same row again and again."""
    finished = datetime.fromisoformat(str(record["finished"]))
    seconds = int(finished.timestamp())
    success = 1 if record.get("outcome") == "ok" else 0
    return (
        f"{MEASUREMENT},action={record['action']} success={success}i,exit_code={int(record['exit_code'])}i,"
        f"duration_seconds={float(record['duration_seconds']):.1f},last_run={seconds}i"
    )


def write_records(state_dir: Path, record: dict[str, Any]) -> None:
    """last-<action>.json, then scheduler.influx with one line per action recorded so far."""
    write_atomically(state_dir / f"last-{record['action']}.json", json.dumps(record, indent=2) + "\n")
    lines = []
    for action in ACTIONS:
        known = read_record(state_dir, action)
        if known is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                lines.append(influx_line(known))
    write_atomically(state_dir / "scheduler.influx", "".join(f"{line}\n" for line in lines))


# --------------------------------------------------------------------------
# Running a playbook
# --------------------------------------------------------------------------


def read_environment_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines (no quoting); blank lines and lines starting with # are ignored."""
    env = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not ENV_KEY.match(key.strip()):
            raise ValueError(f"{path}, line {number}: not KEY=VALUE")
        env[key.strip()] = value
    return env


@contextlib.contextmanager
def locked(path: str, wait: int) -> Iterator[None]:
    """Hold the lock the systemd units take with flock(1), unless they already hold it for this process."""
    if os.environ.get(LOCK_HELD_ENV) == "1":
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another run holds {path}; waiting up to {wait} s")
            deadline = time.monotonic() + wait
            while True:
                time.sleep(1)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{path} is still held after {wait} s") from None
        yield
    finally:
        os.close(fd)


def run_playbook(settings: dict[str, Any], schedule: Schedule | None, action: str, extra: list[str]) -> int:
    """Run the action's playbook with the environment file, stream its output, record the outcome."""
    state_dir = Path(settings["state_dir"])
    playbook = settings["playbooks"][action]
    command = [settings["ansible_playbook"], "-i", settings["inventory"], playbook, *extra]
    env = dict(os.environ)
    env.setdefault("HOME", pwd.getpwuid(os.getuid()).pw_dir)
    env["PYTHONUNBUFFERED"] = "1"
    if not sys.stdout.isatty():
        env.setdefault("ANSIBLE_NOCOLOR", "1")
    zone = schedule.zone if schedule else ZoneInfo("UTC")
    started = datetime.now(zone)
    clock = time.monotonic()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: Any) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    try:
        env.update(read_environment_file(settings["environment_file"]))
        log(f"{action}: running {' '.join(command)}")
        sys.stdout.flush()
        child = subprocess.Popen(command, env=env)
        previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = child.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if code < 0:
            code = 128 - code
    except (OSError, ValueError) as exc:
        log(f"{action}: cannot run {playbook}: {exc}")
        code = 127
    finished = datetime.now(zone)
    record = {
        "action": action,
        "outcome": "ok" if code == 0 else "failed",
        "exit_code": code,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - clock, 1),
    }
    try:
        write_records(state_dir, record)
    except OSError as exc:
        log(f"{action}: cannot write the records in {state_dir}: {exc}")
    log(f"{action}: {record['outcome']} (exit code {code}) after {record['duration_seconds']} s")
    return code


# --------------------------------------------------------------------------
# The waker (on demand)
# --------------------------------------------------------------------------


class WakerUnreachable(Exception):
    """The waker's control listener does not answer."""


def waker_call(settings: dict[str, Any], method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One request to the waker's control listener: (HTTP status, decoded JSON answer)."""
    waker = settings.get("waker") or {}
    control = waker.get("control")
    if not control:
        raise WakerUnreachable("the waker is not configured (scheduler_mode is scheduled)")
    # The waker's own client (gpu_waker.py, installed beside this file); imported here: scheduled mode needs none.
    import gpu_waker

    try:
        return gpu_waker.control_call(control, method, path, body)
    except (OSError, ValueError, gpu_waker.WakerError) as exc:
        raise WakerUnreachable(f"the waker does not answer on {control}: {exc}") from exc


def tell_waker(settings: dict[str, Any], event: str, data: dict[str, Any] | None = None) -> int:
    """Post an event to the waker; 0 accepted, 1 refused, 3 unreachable (no waker in scheduled mode: 0)."""
    if not (settings.get("waker") or {}).get("control"):
        return 0
    try:
        status, answer = waker_call(settings, "POST", "/event", {"event": event, **(data or {})})
    except WakerUnreachable as exc:
        log(f"event {event}: {exc}")
        return 3
    if status == 200:
        log(f"event {event}: accepted by the waker")
        return 0
    message = answer.get("error") or answer.get("message") if isinstance(answer, dict) else answer
    log(f"event {event}: the waker refused it (HTTP {status}): {message}")
    return 1


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def _at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        message = f"parrotpark-gpu: --at must be an ISO date and time (2025-01-06T08:00), got {value!r}"
        raise SystemExit(message) from None


def cmd_should_be_up(settings: dict[str, Any], args: argparse.Namespace) -> int:
    up, reason = Schedule.load(settings["schedule"]).check(_at(args.at))
    print(f"{'up' if up else 'down'}: {reason}")
    return 0 if up else 1


def cmd_next_up(settings: dict[str, Any], args: argparse.Namespace) -> int:
    tick = Schedule.load(settings["schedule"]).next_up(_at(args.at))
    if tick is None:
        print("parrotpark-gpu: no working day in the coming year", file=sys.stderr)
        return 1
    print(tick.isoformat(timespec="minutes") if args.iso else f"{tick:%H:%M}")
    return 0


def cmd_up(settings: dict[str, Any], args: argparse.Namespace) -> int:
    schedule = Schedule.load(settings["schedule"])
    if settings.get("waker"):
        if os.environ.get(LOCK_HELD_ENV) != "1":
            # By hand, on demand: the waker is the one actor on the cloud; it starts the up service.
            log("up: on demand, asking the waker for a manual wake")
            return tell_waker(settings, "manual_wake")
        with locked(settings["lock_file"], int(settings["lock_wait"])):
            code = run_playbook(settings, schedule, "up", args.extra)
        if code != 0:
            tell_waker(settings, "boot_failed")
        return code
    if not args.force:
        up, reason = schedule.check()
        if not up:
            log(f"up: outside the schedule ({reason}), nothing to do")
            return 0
    with locked(settings["lock_file"], int(settings["lock_wait"])):
        if not args.force:
            up, reason = schedule.check()  # the wait for the lock may have taken us out of the window
            if not up:
                log(f"up: outside the schedule ({reason}), nothing to do")
                return 0
        return run_playbook(settings, schedule, "up", args.extra)


def run_whatever_the_schedule(settings: dict[str, Any], action: str, extra: list[str], anyway: str) -> int:
    """Run the action's playbook under the lock of every run, even when the schedule cannot be read."""
    try:
        schedule: Schedule | None = Schedule.load(settings["schedule"])
    except ScheduleError as exc:
        log(f"{action}: {exc}; {anyway} anyway")
        schedule = None
    with locked(settings["lock_file"], int(settings["lock_wait"])):
        return run_playbook(settings, schedule, action, extra)


def cmd_down(settings: dict[str, Any], args: argparse.Namespace) -> int:
    return run_whatever_the_schedule(settings, "down", args.extra, "going down")


def cmd_reap(settings: dict[str, Any], args: argparse.Namespace) -> int:
    # Under the lock of up and down: a server being created or destroyed is theirs until they finish.
    return run_whatever_the_schedule(settings, "reap", args.extra, "reaping")


def session_owner(settings: dict[str, Any]) -> tuple[bool, str]:
    """Whether a session of the scheduler owns the GPU's server now, and why (the reaper's question)."""
    if (settings.get("waker") or {}).get("control"):
        try:
            status, answer = waker_call(settings, "GET", "/status")
        except WakerUnreachable as exc:
            return True, f"{exc}: the GPU's server is kept"
        phase = answer.get("phase") if status == 200 and isinstance(answer, dict) else None
        if phase is None:
            return True, f"the waker's status is unreadable (HTTP {status}): the GPU's server is kept"
        return phase in ("starting", "ready", "stopping"), f"the waker's session is {phase}"
    up, reason = Schedule.load(settings["schedule"]).check()
    if up:
        return True, f"inside the schedule ({reason})"
    state_dir = Path(settings["state_dir"])
    last_up, last_down = read_record(state_dir, "up"), read_record(state_dir, "down")
    if last_up and (not last_down or str(last_up.get("started")) > str(last_down.get("started"))):
        return True, f"outside the schedule, but the last run was up ({last_up.get('started')}), by hand"
    return False, f"outside the schedule ({reason}) and the last run was down"


def cmd_reap_plan(settings: dict[str, Any], args: argparse.Namespace) -> int:
    """Read the tagged servers (JSON list) on stdin, print the reaper's plan (JSON)."""
    import gpu_policy  # beside this file; standard library only

    try:
        servers = json.load(sys.stdin)
        if not isinstance(servers, list):
            raise ValueError(f"expected a JSON list of servers, got {type(servers).__name__}")
        known, why = session_owner(settings)
        plan = gpu_policy.reap_plan(
            servers,
            gpu_name=args.gpu_name,
            session_cap_hours=float(settings["session_cap_hours"]),
            session_known=known,
            now=datetime.now().astimezone(),
        )
    except (ValueError, gpu_policy.PolicyError) as exc:
        print(f"parrotpark-gpu: reap-plan: {exc}", file=sys.stderr)
        return 2
    plan["session"] = {"owns_the_gpu_server": known, "why": why}
    print(json.dumps(plan))
    return 0


def cmd_status(settings: dict[str, Any], args: argparse.Namespace) -> int:
    schedule = Schedule.load(settings["schedule"])
    when = _at(args.at)
    up, reason = schedule.check(when)
    tick = schedule.next_up(when)
    print(f"schedule: {schedule.describe()}")
    print(f"now: should be {'up' if up else 'down'} ({reason})")
    print(f"next up: {tick.isoformat(timespec='minutes') if tick else 'none in the coming year'}")
    for action in ACTIONS:
        record = read_record(Path(settings["state_dir"]), action)
        if record is None:
            print(f"last {action}: never")
        else:
            print(
                f"last {action}: {record.get('outcome')} (exit code {record.get('exit_code')}), "
                f"{record.get('started')} to {record.get('finished')}, {record.get('duration_seconds')} s"
            )
    if settings.get("waker"):
        return print_waker_status(settings, args.json)
    return 0


def print_waker_status(settings: dict[str, Any], as_json: bool) -> int:
    try:
        status, answer = waker_call(settings, "GET", "/status")
    except WakerUnreachable as exc:
        print(f"gpu: unknown ({exc}; systemctl status parrotpark-gpu-waker)")
        return 3
    if status != 200 or not isinstance(answer, dict):
        print(f"gpu: unknown (the waker answered HTTP {status})")
        return 3
    if as_json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    for key, value in answer.items():
        if not isinstance(value, (dict, list)):
            print(f"gpu {key}: {value}")
    return 0


def cmd_waker_address(settings: dict[str, Any], _args: argparse.Namespace) -> int:
    print((settings.get("waker") or {}).get("listen") or "")
    return 0


def cmd_event(settings: dict[str, Any], args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data) if args.data else {}
    except ValueError as exc:
        print(f"parrotpark-gpu: --data must be a JSON object: {exc}", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print("parrotpark-gpu: --data must be a JSON object", file=sys.stderr)
        return 2
    if not settings.get("waker"):
        log(f"event {args.name}: no waker (scheduled mode), nothing to tell")
        return 0
    return tell_waker(settings, args.name, data)


def cmd_report(settings: dict[str, Any], args: argparse.Namespace) -> int:
    # The report engine (gpu_report.py, installed beside this file); imported here: the other commands need none.
    import gpu_report

    return gpu_report.run_installed(settings, args)


def parser(settings: dict[str, Any]) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="parrotpark-gpu", description="Bring the Parrotpark GPU server up and down on a schedule."
    )
    top.add_argument("--schedule", default=settings["schedule"], help="schedule file (JSON)")
    top.add_argument("--state-dir", default=settings["state_dir"], help="where the last runs are recorded")
    top.add_argument("--environment-file", default=settings["environment_file"], help="KEY=VALUE file for the runs")
    top.add_argument("--ansible-playbook", default=settings["ansible_playbook"], help="ansible-playbook to run")
    top.add_argument("--inventory", default=settings["inventory"], help="inventory of the runs")
    top.add_argument("--lock-file", default=settings["lock_file"], help="lock shared with the systemd units")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    should = commands.add_parser("should-be-up", help="exit 0 when the GPU should be up now, 1 otherwise")
    should.add_argument("--at", help="ask for this ISO date and time instead of now")
    should.set_defaults(handler=cmd_should_be_up)
    nxt = commands.add_parser("next-up", help="the next time the up timer brings the GPU up (HH:MM)")
    nxt.add_argument("--at", help="from this ISO date and time instead of now")
    nxt.add_argument("--iso", action="store_true", help="print the whole ISO date and time")
    nxt.set_defaults(handler=cmd_next_up)
    up = commands.add_parser("up", help="run the gpu_up playbook if the schedule says so")
    up.add_argument("--force", action="store_true", help="ignore the schedule")
    up.set_defaults(handler=cmd_up)
    down = commands.add_parser("down", help="run the gpu_down playbook")
    down.set_defaults(handler=cmd_down)
    reap = commands.add_parser("reap", help="run the gpu_reap playbook: destroy the tagged servers no session owns")
    reap.set_defaults(handler=cmd_reap)
    plan = commands.add_parser("reap-plan", help="which tagged servers (JSON on stdin) the reaper destroys, as JSON")
    plan.add_argument("--gpu-name", required=True, help="the GPU server's name (parrotpark_gpu_name)")
    plan.set_defaults(handler=cmd_reap_plan)
    status = commands.add_parser("status", help="what the schedule says, the last runs and the GPU's state")
    status.add_argument("--at", help="ask for this ISO date and time instead of now")
    status.add_argument("--json", action="store_true", help="the GPU's state (on demand) as JSON")
    status.set_defaults(handler=cmd_status)
    address = commands.add_parser("waker-address", help="where Caddy sends the GPU's routes while it is off")
    address.set_defaults(handler=cmd_waker_address)
    event = commands.add_parser("event", help="tell the waker what happened to the GPU server")
    event.add_argument("name", choices=EVENTS)
    event.add_argument("--data", help="the event's fields, a JSON object")
    event.set_defaults(handler=cmd_event)
    report = commands.add_parser("report", help="the month's cost and usage report (GPU sessions, tokens, prices)")
    report.add_argument(
        "--ledger",
        help="the GPU sessions: a JSON list (LEDGER.json) or the waker's gpu-sessions.jsonl "
        "(default: STATE_DIR/gpu-sessions.jsonl)",
    )
    report.add_argument(
        "--usage", help="tokens per day, model and user (USAGE.csv); default: the metrics database (PostgreSQL)"
    )
    report.add_argument("--prices", help="price table (YAML); default: the installed table, else hosted_prices.yml")
    report.add_argument(
        "--out", help="folder that receives report.html, report.json, report.csv, plots (default: REPORT_DIR/YYYY-MM)"
    )
    report.add_argument("--month", help="YYYY-MM (default: this month; from files: the month of the latest data)")
    report.add_argument("--timezone", help="days and months in this zone (default: the schedule's, Europe/Paris)")
    report.add_argument(
        "--schedule", dest="report_schedule", help="days and hours of the scheduled mode (YAML), to price it"
    )
    report.add_argument(
        "--timer",
        action="store_true",
        help="the timer's run: this month into REPORT_DIR/YYYY-MM, on the 1st the previous month too",
    )
    report.set_defaults(handler=cmd_report)
    return top


def main(argv: list[str] | None = None, settings: dict[str, Any] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    merged = {**DEFAULTS, **(settings or {})}
    extra: list[str] = []
    if "--" in argv:
        index = argv.index("--")
        argv, extra = argv[:index], argv[index + 1 :]
    args = parser(merged).parse_args(argv)
    args.extra = extra
    if extra and args.command not in (*ACTIONS, "reap"):
        print(f"parrotpark-gpu: {args.command} takes no ansible-playbook arguments", file=sys.stderr)
        return 2
    for key in ("schedule", "state_dir", "environment_file", "ansible_playbook", "inventory", "lock_file"):
        merged[key] = getattr(args, key)
    try:
        return int(args.handler(merged, args))
    except ScheduleError as exc:
        print(f"parrotpark-gpu: {exc}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        log(f"{args.command}: {exc}; giving up")
        return 75


if __name__ == "__main__":
    sys.exit(main())
