"""parrotpark-alert: tell the operator when something on the entrance needs them.

The parrotpark.llm.alerts role installs this file as
/usr/local/lib/parrotpark/alerts/parrotpark_alert.py; the command
/usr/local/sbin/parrotpark-alert calls ``main`` with the path of its
configuration (alerts.json, 0600: it holds the channels' credentials).
Standard library only, Python 3.9 or later.

Commands:

  check                        evaluate every condition once (parrotpark-alert-check.timer), send what opened,
                               what cleared and the reminders, retry what could not be delivered
  notify-failure UNIT          a systemd unit failed (OnFailure=parrotpark-alert@%n.service): alert at once
  send --subject S --body B    send one message through every channel now
  test                         send a test message through every channel now
  status                       the open conditions and the messages waiting for a channel, as JSON

Conditions (the key names the condition in the messages and the state):

  unit:<unit>          a watched systemd unit failed (ActiveState failed or Result not success)
  backup:age           no successful run of the backup unit for more than backup_max_age_hours
  health:<container>   a container labelled parrotpark.role is Docker-unhealthy for more than unhealthy_minutes
  disk:<path>          a file system is fuller than disk_percent
  teardown:<action>    the scheduler's last gpu_down (or gpu_reap) run failed: billable resources may be left
  cap:<reason>         a cost cap of the on-demand scheduler refuses or stops the GPU (cap_eur, cap_hours, cap_wakes)

Each condition is announced once when it opens, once more ("resolved") when it
clears, and, while it stays open, again every repeat_hours (0: never). The
decisions are plain functions of the probes' answers and the time
(``gather``, ``evaluate``, ``deliver``): the tests run them on fixed inputs
with a virtual clock. A message that a channel could not take stays in the
outbox of the state file for that channel and is retried at the next check.

Messages carry unit, container and path names, numbers and times, never a
credential: the program reads no secret but the channels' own, which only go
to the channel (and are masked in any text, log line included).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, this file runs on 3.9
DEFAULT_CONFIG = "/etc/parrotpark/alerts/alerts.json"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
# Messages kept for a channel that keeps refusing them; the oldest go first.
OUTBOX_LIMIT = 200
FAMILIES = ("unit", "backup", "health", "disk", "teardown", "cap")
CAPS = {
    "cap_eur": "the monthly euro cap (scheduler_max_eur_per_month)",
    "cap_hours": "the daily GPU hours cap (scheduler_max_gpu_hours_per_day)",
    "cap_wakes": "the daily wakes cap (scheduler_max_wakes_per_day)",
}
DOCS = "docs/operations.md, section Alerts"
# The waker's phases in which a cap is what keeps the GPU off or stops it.
CAP_PHASES = ("blocked", "stopping")
BUSY_STATES = ("activating", "deactivating", "reloading")

DEFAULTS: dict[str, Any] = {
    "host": socket.gethostname(),
    "state_dir": "/var/lib/parrotpark/alerts",
    "repeat_hours": 24,
    "units": [],
    "backup_unit": "parrotpark-backup.service",
    "backup_max_age_hours": 26,
    "container_label": "parrotpark.role",
    "unhealthy_minutes": 10,
    "disk_paths": ["/", "/var/lib/docker"],
    "disk_percent": 85,
    "scheduler_command": "/usr/local/bin/parrotpark-gpu",
    "scheduler_state_dir": "/var/lib/parrotpark/scheduler",
    "teardown_actions": ["down", "reap"],
    "caps": True,
    "timeout_seconds": 20,
    "webhook": None,
    "smtp": None,
}


class AlertError(Exception):
    """The configuration or the state cannot be used."""


class ProbeError(Exception):
    """A probe could not tell (docker not answering, the waker unreachable): its conditions stay as they are."""


class DeliveryError(Exception):
    """A channel did not take a message."""


def log(message: str) -> None:
    print(f"parrotpark-alert: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return utc(moment).isoformat(timespec="seconds")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def shown(moment: datetime) -> str:
    """A time in a message: UTC, to the minute."""
    return f"{utc(moment):%Y-%m-%d %H:%M} UTC"


def duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


# --------------------------------------------------------------------------
# Findings: what is wrong now, from the probes' answers (pure functions)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A condition that holds now. ``since``: when it began (None: when it was first seen)."""

    key: str
    title: str
    what: str
    todo: str
    since: datetime | None = None
    severity: str = "critical"

    @property
    def family(self) -> str:
        return self.key.split(":", 1)[0]


def monotonic_to_wall(value: Any, now: datetime, monotonic_now: float) -> datetime | None:
    """A systemd ``...TimestampMonotonic`` (microseconds of CLOCK_MONOTONIC) as a time; None for 0 or nonsense."""
    try:
        micro = int(value)
    except (TypeError, ValueError):
        return None
    if micro <= 0:
        return None
    return now - timedelta(seconds=max(0.0, monotonic_now - micro / 1e6))


def unit_todo(unit: str) -> str:
    journal = f"journalctl -u {unit} -n 200"
    if unit == "parrotpark-gpu-down.service":
        return (
            f"The GPU server may still exist and bill. Read `{journal}`, then run `systemctl start {unit}` "
            "(or `parrotpark-gpu down`) again; if it fails again, delete the server, its volumes and IPs in the "
            "Scaleway console (docs/operations.md, the GPU server)."
        )
    if unit == "parrotpark-gpu-up.service":
        return (
            f"The GPU is not serving. Read `{journal}` and `parrotpark-gpu status`; the up timer retries by itself "
            f"in the working hours; after a fix run `systemctl start {unit}` (or `parrotpark-gpu up --force`)."
        )
    if unit == "parrotpark-gpu-reap.service":
        return (
            f"Servers with the GPU tags that no session owns may be left and bill. Read `{journal}`, then run "
            f"`systemctl start {unit}`; if it fails again, look in the Scaleway console for servers with the GPU tags."
        )
    if unit == "parrotpark-backup.service":
        return (
            f"Tonight's backup is missing. Read `{journal}`, fix the cause, then run `systemctl start {unit}` and "
            "check `parrotpark-backup restic snapshots` (docs/backup.md)."
        )
    return f"Read `{journal}`, fix the cause, then run `systemctl start {unit}` again."


def unit_state(unit: str, props: dict[str, str], now: datetime, monotonic_now: float) -> Finding | str | None:
    """A finding when ``unit`` failed, None when it did not, "unknown" while it runs or does not exist."""
    if props.get("LoadState", "loaded") != "loaded":
        return "unknown"
    active = props.get("ActiveState", "")
    if active in BUSY_STATES:
        return "unknown"
    result = props.get("Result", "")
    if active != "failed" and result in ("success", ""):
        return None
    since = monotonic_to_wall(props.get("ExecMainExitTimestampMonotonic"), now, monotonic_now)
    if since is None:
        since = monotonic_to_wall(props.get("InactiveEnterTimestampMonotonic"), now, monotonic_now)
    status = props.get("ExecMainStatus", "")
    detail = f"result {result or active}" + (f", exit status {status}" if status not in ("", "0") else "")
    return Finding(
        key=f"unit:{unit}",
        title=f"{unit} failed",
        what=f"The systemd unit {unit} failed ({detail}).",
        todo=unit_todo(unit),
        since=since,
    )


def failure_finding(unit: str, props: dict[str, str], now: datetime, monotonic_now: float) -> Finding:
    """What ``notify-failure`` reports: systemd says the unit failed, whatever ``props`` shows by now."""
    found = unit_state(unit, props, now, monotonic_now)
    if isinstance(found, Finding):
        return found
    return Finding(
        key=f"unit:{unit}",
        title=f"{unit} failed",
        what=f"The systemd unit {unit} failed (reported by systemd through OnFailure=).",
        todo=unit_todo(unit),
        since=now,
    )


def note_backup(memory: dict[str, Any], props: dict[str, str], now: datetime, monotonic_now: float) -> None:
    """Remember the last successful run of the backup unit (systemd forgets it at a reboot; the state keeps it),
    and since when the backup is watched (the reference while no run has succeeded yet)."""
    memory.setdefault("backup_watch_since", iso(now))
    if props.get("LoadState", "loaded") != "loaded":
        return
    if props.get("Result") != "success" or props.get("ExecMainStatus", "0") != "0":
        return
    if props.get("ActiveState") in BUSY_STATES:
        return
    ended = monotonic_to_wall(props.get("ExecMainExitTimestampMonotonic"), now, monotonic_now)
    if ended is None:
        return
    known = parse_time(memory.get("backup_last_success"))
    if known is None or ended > known + timedelta(seconds=5):
        memory["backup_last_success"] = iso(ended)


def backup_age(memory: dict[str, Any], unit: str, now: datetime, max_age_hours: float) -> Finding | None:
    last = parse_time(memory.get("backup_last_success"))
    reference = last or parse_time(memory.get("backup_watch_since")) or now
    if now - reference <= timedelta(hours=max_age_hours):
        return None
    if last is None:
        what = (
            f"No run of {unit} has succeeded since the alerts began watching it ({shown(reference)}), "
            f"more than {max_age_hours:g} hours ago."
        )
    else:
        what = f"The last successful backup ({unit}) ended {shown(last)}, more than {max_age_hours:g} hours ago."
    return Finding(
        key="backup:age",
        title=f"no backup for more than {max_age_hours:g} hours",
        what=what,
        todo=(
            "Check that the timer runs (`systemctl list-timers parrotpark-backup.timer`) and why the last run "
            f"did not succeed (`systemctl status {unit}`, `journalctl -u {unit} -n 200`); then run "
            f"`systemctl start {unit}` (docs/backup.md)."
        ),
        since=reference,
    )


def health_findings(
    containers: list[dict[str, Any]], memory: dict[str, Any], now: datetime, minutes: float
) -> list[Finding]:
    """Containers unhealthy for more than ``minutes``; ``memory['unhealthy_since']`` remembers since when."""
    before = memory.get("unhealthy_since") or {}
    since_map: dict[str, str] = {}
    found = []
    for container in sorted(containers, key=lambda item: str(item.get("name"))):
        name = str(container.get("name", ""))
        if container.get("health") != "unhealthy" or not name:
            continue
        since = parse_time(before.get(name)) or now
        since_map[name] = iso(since)
        if now - since < timedelta(minutes=minutes):
            continue
        role = container.get("role") or "?"
        streak = container.get("failing_streak")
        what = f"The container {name} (role {role}) has been unhealthy for more than {minutes:g} minutes" + (
            f" ({streak} failed health checks in a row)." if streak else "."
        )
        found.append(
            Finding(
                key=f"health:{name}",
                title=f"container {name} unhealthy",
                what=what,
                todo=(
                    f"Read `docker logs --tail 200 {name}` and its health checks "
                    f"(`docker inspect --format '{{{{json .State.Health}}}}' {name}`); `docker restart {name}` may "
                    f"help, re-applying the entrance playbook (role {role}) repairs its configuration."
                ),
                since=since,
                severity="warning",
            )
        )
    memory["unhealthy_since"] = since_map
    return found


def disk_findings(usage: dict[str, tuple[int, int, int]], percent: float) -> list[Finding]:
    """File systems fuller than ``percent``; ``usage``: path -> (total, used, free) as shutil.disk_usage (the
    share counted as df does: used / (used + available))."""
    found = []
    for path, (_total, used, free) in sorted(usage.items()):
        if used + free <= 0:
            continue
        share = used * 100 / (used + free)
        if share <= percent:
            continue
        found.append(
            Finding(
                key=f"disk:{path}",
                title=f"disk {path} {share:.0f}% full",
                what=(
                    f"The file system of {path} is {share:.0f}% full (threshold {percent:g}%), "
                    f"{free / 1e9:.1f} GB left."
                ),
                todo=(
                    f"Find what grows: `du -xh --max-depth=2 {path} | sort -h | tail`; on the Docker volume "
                    "`docker system df`, then `docker image prune` or `docker builder prune`; for the journal "
                    "`journalctl --vacuum-size=500M`. Or grow the volume."
                ),
                severity="warning",
            )
        )
    return found


def teardown_finding(action: str, record: dict[str, Any] | None) -> Finding | None:
    """The scheduler's last ``action`` run (last-<action>.json) failed: what it should have removed may bill."""
    if not record or record.get("outcome") in ("ok", None):
        return None
    playbook = f"gpu_{action}"
    return Finding(
        key=f"teardown:{action}",
        title=f"billable GPU resources may be left ({playbook} failed)",
        what=(
            f"The last {playbook} run failed (exit code {record.get('exit_code')}, started {record.get('started')}): "
            "it checks that no server, volume or IP is left, so billable resources may still exist."
        ),
        todo=(
            f"Read `journalctl -u parrotpark-gpu-{action}.service -n 200` (the line 'Billable resources are left' "
            f"names them), then run `systemctl start parrotpark-gpu-{action}.service`; if it fails again, delete "
            "them in the Scaleway console. This clears when a run succeeds."
        ),
        since=parse_time(record.get("finished")),
    )


def cap_finding(status: dict[str, Any] | None) -> Finding | None:
    """The waker's status (``parrotpark-gpu status --json``): a cap keeps the GPU off or stops it."""
    if not status:
        return None
    why = status.get("why")
    if why not in CAPS or status.get("phase") not in CAP_PHASES:
        return None
    until = status.get("available_from")
    message = status.get("message") or ""
    spent = (
        f"This month: {float(status.get('eur_month') or 0):.2f} EUR, "
        f"{float(status.get('gpu_hours_month') or 0):.1f} GPU hours; today: "
        f"{float(status.get('gpu_hours_today') or 0):.1f} GPU hours, {int(status.get('wakes_today') or 0)} wakes."
    )
    return Finding(
        key=f"cap:{why}",
        title=f"cost cap reached: {why}",
        what=(
            f"The scheduler reached {CAPS[why]}: the GPU "
            f"{'is being stopped' if status.get('phase') == 'stopping' else 'stays off'}"
            f"{f' until {until}' if until else ''}. {message} {spent}"
        ).replace("  ", " "),
        todo=(
            "Nothing, if the cap is right: the GPU is available again when the cap resets. To allow more, raise the "
            "cap in the inventory and apply the entrance playbook; `parrotpark-gpu status` shows the counters "
            "(docs/on-demand.md)."
        ),
        severity="warning",
    )


# --------------------------------------------------------------------------
# Probes: the host's answers (replaced by fakes in the tests)
# --------------------------------------------------------------------------


class SystemProbes:
    """The real probes: systemctl, docker, the file systems, the scheduler's records and status."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.timeout = int(config.get("timeout_seconds") or 20)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProbeError(f"{argv[0]}: {exc}") from exc

    def monotonic(self) -> float:
        return time.monotonic()

    def unit(self, unit: str) -> dict[str, str]:
        keys = (
            "LoadState,ActiveState,Result,ExecMainStatus,ExecMainExitTimestampMonotonic,InactiveEnterTimestampMonotonic"
        )
        done = self._run(["systemctl", "show", unit, "-p", keys])
        if done.returncode != 0:
            raise ProbeError(f"systemctl show {unit}: {done.stderr.strip()}")
        props = {}
        for line in done.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        return props

    def containers(self) -> list[dict[str, Any]]:
        if shutil.which("docker") is None:
            return []
        label = str(self.config.get("container_label") or "parrotpark.role")
        done = self._run(["docker", "ps", "--quiet", "--no-trunc", "--filter", f"label={label}"])
        if done.returncode != 0:
            raise ProbeError(f"docker ps: {done.stderr.strip()}")
        ids = done.stdout.split()
        if not ids:
            return []
        done = self._run(["docker", "inspect", *ids])
        if done.returncode != 0:
            raise ProbeError(f"docker inspect: {done.stderr.strip()}")
        try:
            return containers_from_inspect(json.loads(done.stdout), label)
        except ValueError as exc:
            raise ProbeError(f"docker inspect: {exc}") from exc

    def disk(self, path: str) -> tuple[int, int, int] | None:
        try:
            usage = shutil.disk_usage(path)
        except OSError:
            return None
        return usage.total, usage.used, usage.free

    def record(self, action: str) -> dict[str, Any] | None:
        path = Path(str(self.config.get("scheduler_state_dir"))) / f"last-{action}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ProbeError(f"{path}: {exc}") from exc
        return data if isinstance(data, dict) else None

    def gpu_status(self) -> dict[str, Any] | None:
        command = str(self.config.get("scheduler_command") or "")
        if not command or not os.access(command, os.X_OK):
            return None
        done = self._run([command, "status", "--json"])
        if done.returncode == 3:
            raise ProbeError("the waker does not answer (systemctl status parrotpark-gpu-waker)")
        if done.returncode != 0:
            raise ProbeError(f"parrotpark-gpu status: exit code {done.returncode}")
        return status_from_output(done.stdout)


def containers_from_inspect(items: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The name, role, health and failing streak of each container of ``docker inspect``."""
    found = []
    for item in items:
        state = item.get("State") or {}
        health = state.get("Health") or {}
        found.append(
            {
                "name": str(item.get("Name", "")).lstrip("/"),
                "role": ((item.get("Config") or {}).get("Labels") or {}).get(label),
                "health": health.get("Status"),
                "failing_streak": health.get("FailingStreak"),
            }
        )
    return found


def status_from_output(text: str) -> dict[str, Any] | None:
    """The JSON object that ``parrotpark-gpu status --json`` prints after its text lines (none in scheduled mode)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("{"):
            try:
                data = json.loads("\n".join(lines[index:]))
            except ValueError as exc:
                raise ProbeError(f"parrotpark-gpu status --json: {exc}") from exc
            return data if isinstance(data, dict) else None
    return None


def gather(
    config: dict[str, Any], probes: Any, memory: dict[str, Any], now: datetime, watched: list[str]
) -> tuple[list[Finding], set[str], set[str]]:
    """Ask every probe; returns (findings, the families that answered, the keys to leave as they are).

    A family whose probe failed keeps its conditions (a docker daemon that does not answer closes nothing);
    ``watched``: the units to ask about (the configured ones and those with an open condition)."""
    findings: list[Finding] = []
    checked: set[str] = set()
    keep: set[str] = set()
    monotonic_now = probes.monotonic()

    def attempt(family: str, work: Callable[[], None]) -> None:
        try:
            work()
        except ProbeError as exc:
            log(f"{family}: cannot tell ({exc}); its alerts stay as they are")
        else:
            checked.add(family)

    def units() -> None:
        for unit in watched:
            try:
                found = unit_state(unit, probes.unit(unit), now, monotonic_now)
            except ProbeError as exc:
                log(f"unit {unit}: cannot tell ({exc})")
                found = "unknown"
            if found == "unknown":
                keep.add(f"unit:{unit}")
            elif isinstance(found, Finding):
                findings.append(found)

    def backup() -> None:
        unit = str(config.get("backup_unit") or "")
        if not unit:
            return
        props = probes.unit(unit)
        if props.get("LoadState", "loaded") != "loaded":
            keep.add("backup:age")
            return
        note_backup(memory, props, now, monotonic_now)
        found = backup_age(memory, unit, now, float(config["backup_max_age_hours"]))
        if found:
            findings.append(found)

    def health() -> None:
        findings.extend(health_findings(probes.containers(), memory, now, float(config["unhealthy_minutes"])))

    def disk() -> None:
        usage = {}
        for path in config.get("disk_paths") or []:
            answer = probes.disk(path)
            if answer is not None:
                usage[path] = answer
        findings.extend(disk_findings(usage, float(config["disk_percent"])))

    def teardown() -> None:
        for action in config.get("teardown_actions") or []:
            found = teardown_finding(action, probes.record(action))
            if found:
                findings.append(found)

    def cap() -> None:
        if config.get("caps"):
            found = cap_finding(probes.gpu_status())
            if found:
                findings.append(found)

    for family, work in (
        ("unit", units),
        ("backup", backup),
        ("health", health),
        ("disk", disk),
        ("teardown", teardown),
        ("cap", cap),
    ):
        attempt(family, work)
    return findings, checked, keep


# --------------------------------------------------------------------------
# Decisions: what to send (pure functions over the state)
# --------------------------------------------------------------------------


def new_state() -> dict[str, Any]:
    return {"version": 1, "conditions": {}, "outbox": [], "memory": {}}


def render(kind: str, condition: dict[str, Any], host: str, now: datetime) -> tuple[str, str]:
    """The title and text of a message about ``condition`` (kind alert, reminder or resolved)."""
    since = parse_time(condition.get("since")) or now
    title = condition["title"]
    footer = f"(parrotpark-alert on {host}, condition {condition['key']}; {DOCS})"
    if kind == "resolved":
        return (
            f"[RESOLVED] {host}: {title}",
            f"RESOLVED on {host}: {title}.\n"
            f"It cleared at {shown(now)}, after {duration(now - since)} (since {shown(since)}). Nothing left to do.\n"
            f"{footer}",
        )
    label = "ALERT" if kind == "alert" else "STILL OPEN"
    return (
        f"[{label}] {host}: {title}",
        f"{label} on {host}: {title}.\n"
        f"What happened: {condition['what']}\n"
        f"Since: {shown(since)} ({duration(now - since)} ago).\n"
        f"What to do: {condition['todo']}\n"
        f"{footer}",
    )


def _queue(
    state: dict[str, Any], kind: str, condition: dict[str, Any], *, host: str, now: datetime, channels: list[str]
) -> dict[str, Any]:
    title, text = render(kind, condition, host, now)
    message = {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "condition": condition["key"],
        "severity": "resolved" if kind == "resolved" else condition["severity"],
        "title": title,
        "text": text,
        "created": iso(now),
        "pending": list(channels),
    }
    state["outbox"].append(message)
    return message


def evaluate(
    state: dict[str, Any],
    findings: list[Finding],
    *,
    checked: set[str],
    keep: set[str],
    now: datetime,
    host: str,
    channels: list[str],
    repeat_hours: float,
) -> list[dict[str, Any]]:
    """Open, remind and close the conditions; returns the messages queued (also in ``state['outbox']``).

    A finding whose condition is not open opens it (one alert); one that is open stays silent, but for a
    reminder every ``repeat_hours`` (0: never) when nothing about it is still waiting for a channel. An open
    condition of a family in ``checked`` without a finding, and not in ``keep``, closes: a "resolved" message
    goes to each channel that had (or still will have) its alert; a channel that never got the alert gets
    neither."""
    conditions: dict[str, dict[str, Any]] = state.setdefault("conditions", {})
    state.setdefault("outbox", [])
    queued = []
    current = {finding.key: finding for finding in findings}
    for key, finding in current.items():
        known = conditions.get(key)
        if known is None:
            since = finding.since or now
            conditions[key] = known = {
                "key": key,
                "title": finding.title,
                "what": finding.what,
                "todo": finding.todo,
                "severity": finding.severity,
                "since": iso(since),
                "opened": iso(now),
                "notified": iso(now),
            }
            queued.append(_queue(state, "alert", known, host=host, now=now, channels=channels))
            continue
        # The details may change (a fuller disk); when it began does not.
        known.update(title=finding.title, what=finding.what, todo=finding.todo, severity=finding.severity)
        waiting = any(message["condition"] == key and message["pending"] for message in state["outbox"])
        last = parse_time(known.get("notified")) or now
        if repeat_hours > 0 and not waiting and now - last >= timedelta(hours=repeat_hours):
            known["notified"] = iso(now)
            queued.append(_queue(state, "reminder", known, host=host, now=now, channels=channels))
    for key in sorted(conditions):
        family = key.split(":", 1)[0]
        if key in current or key in keep or family not in checked:
            continue
        condition = conditions.pop(key)
        unheard = set()
        for message in state["outbox"]:
            if message["condition"] == key and message["kind"] in ("alert", "reminder"):
                if message["kind"] == "alert":
                    unheard |= set(message["pending"])
                message["pending"] = []
        told = [channel for channel in channels if channel not in unheard]
        if told:
            queued.append(_queue(state, "resolved", condition, host=host, now=now, channels=told))
    state["outbox"] = [message for message in state["outbox"] if message["pending"]]
    return queued


def payload(message: dict[str, Any], host: str) -> dict[str, Any]:
    """The webhook's JSON body: ``text`` for Slack and Matrix (hookshot), the rest for any JSON receiver."""
    return {
        "text": message["text"],
        "title": message["title"],
        "severity": message["severity"],
        "host": host,
        "condition": message["condition"],
        "kind": message["kind"],
        "id": message["id"],
    }


def deliver(state: dict[str, Any], senders: dict[str, Callable[[dict[str, Any]], None]]) -> dict[str, int]:
    """Send what waits in the outbox, in order; a channel that fails is left for this run (order kept) and its
    messages wait for the next. Returns how many messages each channel took."""
    taken = dict.fromkeys(senders, 0)
    down: set[str] = set()
    for message in state.get("outbox", []):
        for channel in list(message["pending"]):
            if channel in down:
                continue
            send = senders.get(channel)
            if send is None:  # a channel no longer configured
                message["pending"].remove(channel)
                continue
            try:
                send(message)
            except DeliveryError as exc:
                log(f"{channel}: {message['kind']} {message['condition']} not delivered ({exc}); retried next time")
                down.add(channel)
                continue
            message["pending"].remove(channel)
            taken[channel] += 1
    outbox = [message for message in state.get("outbox", []) if message["pending"]]
    if len(outbox) > OUTBOX_LIMIT:
        log(f"{len(outbox) - OUTBOX_LIMIT} undelivered messages dropped (the oldest)")
        outbox = outbox[-OUTBOX_LIMIT:]
    state["outbox"] = outbox
    return taken


# --------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------


def secrets_of(config: dict[str, Any]) -> list[str]:
    """The channels' credentials, masked in every text this program writes."""
    found = []
    webhook = config.get("webhook") or {}
    if webhook.get("url"):
        found.append(str(webhook["url"]))
    found.extend(str(value) for value in (webhook.get("headers") or {}).values())
    smtp = config.get("smtp") or {}
    if smtp.get("password"):
        found.append(str(smtp["password"]))
    return sorted((secret for secret in found if len(secret) >= 4), key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[hidden]")
    return text


def send_webhook(settings: dict[str, Any], body: dict[str, Any], timeout: float) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "parrotpark-alert"}
    headers.update({str(key): str(value) for key, value in (settings.get("headers") or {}).items()})
    request = urllib.request.Request(
        str(settings["url"]), data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            code = answer.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"the webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"the webhook is unreachable: {reason}") from None
    if not 200 <= code < 300:
        raise DeliveryError(f"the webhook answered HTTP {code}")


def send_mail(settings: dict[str, Any], subject: str, text: str, headers: dict[str, str], timeout: float) -> None:
    mail = EmailMessage()
    mail["From"] = str(settings["from"])
    mail["To"] = ", ".join(settings["to"])
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=str(settings["from"]).rpartition("@")[2] or None)
    for key, value in headers.items():
        mail[key] = value
    mail.set_content(text)
    host, port = str(settings["host"]), int(settings.get("port") or 587)
    try:
        if port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if port != 465 and settings.get("starttls", True):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if settings.get("user"):
                client.login(str(settings["user"]), str(settings.get("password") or ""))
            client.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"the SMTP server refused the login (code {exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"the SMTP server refused the message (code {exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {host}:{port}: {exc.__class__.__name__}: {exc}") from None


def senders_for(config: dict[str, Any]) -> dict[str, Callable[[dict[str, Any]], None]]:
    """One function per configured channel, taking a message of the outbox."""
    host = str(config["host"])
    timeout = float(config.get("timeout_seconds") or 20)
    secrets = secrets_of(config)
    senders: dict[str, Callable[[dict[str, Any]], None]] = {}
    webhook = config.get("webhook")
    if webhook and webhook.get("url"):

        def to_webhook(message: dict[str, Any]) -> None:
            body = {
                key: mask(value, secrets) if isinstance(value, str) else value
                for key, value in payload(message, host).items()
            }
            send_webhook(webhook, body, timeout)

        senders["webhook"] = to_webhook
    smtp = config.get("smtp")
    if smtp and smtp.get("host") and smtp.get("to"):

        def to_mail(message: dict[str, Any]) -> None:
            headers = {
                "X-Parrotpark-Host": host,
                "X-Parrotpark-Condition": message["condition"],
                "X-Parrotpark-Kind": message["kind"],
                "X-Parrotpark-Id": message["id"],
            }
            send_mail(smtp, mask(message["title"], secrets), mask(message["text"], secrets), headers, timeout)

        senders["smtp"] = to_mail
    return {channel: _masked(send, secrets) for channel, send in senders.items()}


def _masked(send: Callable[[dict[str, Any]], None], secrets: list[str]) -> Callable[[dict[str, Any]], None]:
    """``send``, whose errors never show a credential (a library's message might quote one)."""

    def masked(message: dict[str, Any]) -> None:
        try:
            send(message)
        except DeliveryError as exc:
            raise DeliveryError(mask(str(exc), secrets)) from None

    return masked


# --------------------------------------------------------------------------
# State and configuration
# --------------------------------------------------------------------------


def load_config(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AlertError(f"cannot read the configuration {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AlertError(f"{path} must hold a JSON object")
    return {**DEFAULTS, **data}


def load_state(state_dir: Path) -> dict[str, Any]:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return new_state()
    except (OSError, ValueError) as exc:
        log(f"{path} is unreadable ({exc}); starting afresh")
        return new_state()
    if not isinstance(data, dict):
        return new_state()
    state = new_state()
    state.update(data)
    return state


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / STATE_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(state, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """One run at a time (the timer's check and an OnFailure= notification may meet)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def watched_units(config: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """The configured units, and those with an open condition (a notify-failure for another unit)."""
    units = list(dict.fromkeys(str(unit) for unit in config.get("units") or []))
    for key in state.get("conditions", {}):
        if key.startswith("unit:") and key[5:] not in units:
            units.append(key[5:])
    return units


def apply_findings(
    config: dict[str, Any],
    senders: dict[str, Callable[[dict[str, Any]], None]],
    clock: Callable[[], datetime],
    find: Callable[[dict[str, Any], datetime], tuple[list[Finding], set[str], set[str]]],
    repeat_hours: float,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, int]]:
    """Under the state's lock: load the state, take the findings of find(state, now) (with the conditions it
    checked and those it keeps as they are), open and close conditions, deliver, save. Returns the state, the
    messages queued and what was delivered."""
    state_dir = Path(str(config["state_dir"]))
    with locked(state_dir):
        state = load_state(state_dir)
        now = utc(clock())
        findings, checked, keep = find(state, now)
        queued = evaluate(
            state,
            findings,
            checked=checked,
            keep=keep,
            now=now,
            host=str(config["host"]),
            channels=sorted(senders),
            repeat_hours=repeat_hours,
        )
        taken = deliver(state, senders)
        save_state(state_dir, state)
    return state, queued, taken


def run_check(
    config: dict[str, Any],
    probes: Any,
    senders: dict[str, Callable[[dict[str, Any]], None]],
    clock: Callable[[], datetime],
) -> dict[str, Any]:
    """One check: gather, evaluate, deliver, keep the state. Returns what happened (for the log and the tests)."""

    def find(state: dict[str, Any], now: datetime) -> tuple[list[Finding], set[str], set[str]]:
        return gather(config, probes, state["memory"], now, watched_units(config, state))

    state, queued, taken = apply_findings(config, senders, clock, find, float(config.get("repeat_hours") or 0))
    return {
        "open": sorted(state["conditions"]),
        "queued": [f"{message['kind']} {message['condition']}" for message in queued],
        "delivered": taken,
        "waiting": len(state["outbox"]),
    }


def run_notify_failure(
    config: dict[str, Any],
    unit: str,
    probes: Any,
    senders: dict[str, Callable[[dict[str, Any]], None]],
    clock: Callable[[], datetime],
) -> dict[str, Any]:
    """OnFailure=: open the unit's condition now (nothing if it is open already) and deliver."""

    def find(state: dict[str, Any], now: datetime) -> tuple[list[Finding], set[str], set[str]]:
        try:
            props = probes.unit(unit)
        except ProbeError as exc:
            log(f"unit {unit}: {exc}")
            props = {}
        return [failure_finding(unit, props, now, probes.monotonic())], set(), set()

    state, queued, taken = apply_findings(config, senders, clock, find, 0)
    return {
        "queued": [f"{message['kind']} {message['condition']}" for message in queued],
        "delivered": taken,
        "waiting": len(state["outbox"]),
    }


def send_now(
    config: dict[str, Any], senders: dict[str, Callable[[dict[str, Any]], None]], subject: str, body: str, kind: str
) -> dict[str, str]:
    """One message through every channel now, not kept for a retry: channel -> "sent" or why not."""
    host = str(config["host"])
    message = {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "condition": kind,
        "severity": "info",
        "title": subject,
        "text": body,
        "created": iso(datetime.now(UTC)),
        "pending": sorted(senders),
    }
    outcome = {}
    for channel, send in sorted(senders.items()):
        try:
            send(message)
        except DeliveryError as exc:
            outcome[channel] = str(exc)
        else:
            outcome[channel] = "sent"
    if not senders:
        log(f"no channel is configured on {host}: nothing sent")
    return outcome


def test_message(host: str, now: datetime) -> tuple[str, str]:
    return (
        f"[TEST] {host}: parrotpark-alert test",
        f"TEST on {host}: this is a test of the Parrotpark alerts, sent {shown(now)} by `parrotpark-alert test`.\n"
        "What to do: nothing; if you read this, the channel works.\n"
        f"(parrotpark-alert on {host}; {DOCS})",
    )


def main(argv: list[str] | None = None, clock: Callable[[], datetime] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parrotpark-alert", description="Alerts of the Parrotpark entrance.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the configuration (JSON)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="evaluate every condition once, send what changed, retry what waits")
    failure = commands.add_parser("notify-failure", help="a systemd unit failed (OnFailure=)")
    failure.add_argument("unit")
    send = commands.add_parser("send", help="send one message through every channel now")
    send.add_argument("--subject", required=True)
    send.add_argument("--body", required=True)
    commands.add_parser("test", help="send a test message through every channel now")
    commands.add_parser("status", help="the open conditions and the waiting messages (JSON)")
    arguments = parser.parse_args(argv)
    clock = clock or (lambda: datetime.now(UTC))
    try:
        config = load_config(arguments.config)
        secrets = secrets_of(config)
        senders = senders_for(config)
        if arguments.command == "check":
            outcome = run_check(config, SystemProbes(config), senders, clock)
        elif arguments.command == "notify-failure":
            outcome = run_notify_failure(config, arguments.unit, SystemProbes(config), senders, clock)
        elif arguments.command == "status":
            state = load_state(Path(str(config["state_dir"])))
            outcome = {
                "host": config["host"],
                "channels": sorted(senders),
                "open": {key: {"since": value.get("since"), "title": value.get("title")}
                         for key, value in sorted(state["conditions"].items())},
                "waiting": [
                    {"kind": message["kind"], "condition": message["condition"], "channels": message["pending"]}
                    for message in state["outbox"]
                ],
            }  # fmt: skip
        else:
            if arguments.command == "test":
                subject, body = test_message(str(config["host"]), clock())
            else:
                subject, body = arguments.subject, arguments.body
            sent = send_now(config, senders, subject, body, arguments.command)
            print(mask(json.dumps({"sent": sent}, sort_keys=True), secrets))
            return 0 if sent and all(value == "sent" for value in sent.values()) else 1
    except AlertError as exc:
        log(str(exc))
        return 2
    print(mask(json.dumps(outcome, sort_keys=True), secrets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
