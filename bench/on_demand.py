"""Replay a request trace through the on-demand GPU policy: GPU hours, cold starts, waits and euros per mode.

    .venv/bin/python bench/on_demand.py --trace bench/traces/parrotpark-evaluation.csv --mode on_demand \\
        [--idle-minutes N] [--boot-minutes M] [--config inventory-like.yml] [--hourly-price EUR] [--json]
        [--ledger-out LEDGER.json] [--usage-out USAGE.csv]

The trace is a CSV file with the header timestamp,user,prompt_tokens,completion_tokens
(ISO 8601 timestamps with an offset, one row per request; bench/parrotpark_trace.py makes one).
Every decision is taken by the scheduler's own policy, roles/scheduler/files/gpu_policy.py,
on a virtual clock: the simulator feeds it the requests, a Tick whenever the policy's
``next_wakeup`` says time alone may change something, and what the cloud would report
(ServerHealthy, ServerDestroyed, RequestFinished). It performs the actions:

- a Wake creates the server; it is healthy exactly ``boot_minutes`` later (billing starts at the wake:
  Scaleway bills per minute from the creation);
- a Destroy takes effect at once (billing stops);
- a request answered ``pass`` is served at once; one held, or answered 503 while the server starts (or
  will start once the minimum off time is over), is a cold request: its user waits, sends it again when the
  server is ready and is served then (its wait counts in max_wait_seconds); one refused (quiet hours, a
  cap, outside the working hours in scheduled mode) is counted in refused_requests and not served;
- service time, the time a request stays in flight, is estimated from its tokens for a 12B AWQ model on an
  L4 serving one stream: 0.5 s + prompt tokens / 2,500 per s (prefill) + completion tokens / 25 per s
  (decode). Requests do not queue (vLLM batches them).

The period is the trace's days, from local midnight of the first to local midnight after the last
(``period_days``); ``working_days`` are its days that are working days (scheduler_days, holidays
excluded). Monthly figures are scaled to the working month: the per-working-day value times
(days a week x 365.25 / 7 / 12), 21.74 working days for Monday to Friday.

--ledger-out and --usage-out write the replay as the inputs of the cost report
(roles/scheduler/files/gpu_report.py, docs/cost-report.md): the simulated sessions as LEDGER.json
(instance parrotpark-gpu, an L4-1-24G in fr-par-2 at the hourly price, started at the wake, healthy
when the boot is over, stopped at the destroy, started_by timer or wake) and the requests served as
USAGE.csv, their tokens per day (the day they were served) and user, model mistral-nemo-12b, served_by
local; refused requests are not in it (the GPU did not serve them).

Settings: the policy's defaults (gpu_policy.DEFAULTS), except that the floor window is Parrotpark's
evaluation's, Monday to Friday 08:00-18:00 Europe/Paris (10 h a working day), then the scheduler
variables of ``--config`` (scheduler_time_zone, scheduler_days, scheduler_up_time,
scheduler_down_time, scheduler_holidays, scheduler_mode, scheduler_idle_minutes, ... : the policy's
keys with the prefix scheduler_; other variables are ignored), then the options.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "roles" / "scheduler" / "files") not in sys.path:
    sys.path.insert(0, str(ROOT / "roles" / "scheduler" / "files"))
import gpu_policy as policy  # noqa: E402

HEADER = ["timestamp", "user", "prompt_tokens", "completion_tokens"]
# Parrotpark's evaluation: the GPU up 10 h a working day.
SIMULATOR_DEFAULTS = {"up_time": "08:00", "down_time": "18:00"}
OVERHEAD_SECONDS = 0.5
PREFILL_PER_SECOND = 2500
DECODE_PER_SECOND = 25
COLD_REASONS = ("starting", "min_off", "restarting")
# --users-wait: a user's requests less than this apart are one conversation.
CONVERSATION_GAP = timedelta(minutes=15)
# --ledger-out and --usage-out: what the report is told the replay ran and served.
INSTANCE = "parrotpark-gpu"
COMMERCIAL_TYPE = "L4-1-24G"
ZONE = "fr-par-2"
MODEL = "mistral-nemo-12b"
USAGE_HEADER = ["day", "model", "user", "prompt_tokens", "completion_tokens", "served_by"]


class TraceError(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    at: datetime
    user: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def service_seconds(self) -> float:
        return OVERHEAD_SECONDS + self.prompt_tokens / PREFILL_PER_SECOND + self.completion_tokens / DECODE_PER_SECOND


def read_trace(path: Path) -> list[Row]:
    """The trace's rows in time order; a TraceError names the line and what is wrong."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise TraceError(f"cannot read it: {exc.strerror or exc}") from exc
    rows = []
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [name.strip() for name in header] != HEADER:
            raise TraceError(f"the header must be {','.join(HEADER)}, got {','.join(header or [])!r}")
        for number, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(HEADER):
                raise TraceError(f"line {number}: {len(HEADER)} fields expected, got {len(fields)}")
            stamp, user, prompt, completion = (value.strip() for value in fields)
            try:
                at = datetime.fromisoformat(stamp)
            except ValueError:
                at = None
            if at is None or at.tzinfo is None:
                raise TraceError(f"line {number}: timestamp must be ISO 8601 with an offset, got {stamp!r}")
            tokens = []
            for name, value in (("prompt_tokens", prompt), ("completion_tokens", completion)):
                if not value.isdigit():
                    raise TraceError(f"line {number}: {name} must be a whole number, got {value!r}")
                tokens.append(int(value))
            rows.append(Row(at, user, tokens[0], tokens[1]))
    if not rows:
        raise TraceError("no request in the trace")
    rows.sort(key=lambda row: row.at)
    return rows


def read_config(path: Path) -> dict[str, Any]:
    """The policy's settings from an inventory-like YAML file of scheduler_* variables."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"must be a mapping of scheduler_* variables, got {type(data).__name__}")
    return policy.from_scheduler_vars(data)


@dataclass
class Session:
    start: datetime
    trigger: str
    end: datetime | None = None
    reason: str | None = None
    healthy: datetime | None = None


@dataclass
class Replay:
    """The simulation's own bookkeeping: what happened to every request and every server."""

    config: policy.Config
    state: policy.State = field(default_factory=policy.State)
    sessions: list[Session] = field(default_factory=list)
    queue: list[tuple[datetime, int, str, Any]] = field(default_factory=list)
    seq: int = 0
    waiting: list[Row] = field(default_factory=list)  # cold requests answered 503: sent again when ready
    held: list[Row] = field(default_factory=list)  # cold requests held by the gateway
    waits: list[float] = field(default_factory=list)
    users_wait: bool = False
    delay: dict[str, timedelta] = field(default_factory=dict)  # --users-wait: how late each user's conversation runs
    last_seen: dict[str, datetime] = field(default_factory=dict)  # the trace time of each user's last request
    parked: dict[str, list[Row]] = field(default_factory=dict)  # follow-ups of a user whose request waits
    served_rows: list[tuple[datetime, Row]] = field(default_factory=list)  # (when it was served, the request)
    cold: int = 0
    refused: int = 0
    served: int = 0

    def push(self, at: datetime, kind: str, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, payload))

    def apply(self, event: policy.Event) -> policy.Answer | None:
        stepped = policy.step(self.config, self.state, event)
        self.state = stepped.state
        for action in stepped.actions:
            if isinstance(action, policy.Wake):
                self.sessions.append(Session(event.at, action.trigger))
                self.push(event.at + timedelta(minutes=self.config.boot_minutes), "healthy")
            elif isinstance(action, policy.Destroy):  # the session's server (the reaper is not replayed)
                self.sessions[-1].end = event.at
                self.sessions[-1].reason = action.reason
                self.push(event.at, "destroyed")
        return stepped.answer

    def serve(self, row: Row, at: datetime) -> None:
        self.served += 1
        self.served_rows.append((at, row))
        self.push(at + timedelta(seconds=row.service_seconds), "finished")
        if at > row.at and self.users_wait:  # answered late: the rest of the conversation runs late too
            self.delay[row.user] = self.delay.get(row.user, timedelta(0)) + (at - row.at)
            for follow_up in self.parked.pop(row.user, []):
                self.push(follow_up.at + self.delay[row.user], "request", follow_up)

    def follow(self, row: Row, at: datetime) -> bool:
        """--users-wait: hold back a request of a user whose conversation runs late; True when it was."""
        if not self.users_wait or at != row.at:
            return False
        previous = self.last_seen.get(row.user)
        self.last_seen[row.user] = row.at
        if previous is None or row.at - previous > CONVERSATION_GAP:
            self.delay[row.user] = timedelta(0)
        if row.user in self.parked:
            self.parked[row.user].append(row)
            return True
        delay = self.delay.get(row.user, timedelta(0))
        if delay > timedelta(0):
            self.push(row.at + delay, "request", row)
            return True
        return False

    def arrive(self, row: Row, at: datetime) -> None:
        """``row`` sent at ``at`` (its trace time, or later with --users-wait)."""
        if self.follow(row, at):
            return
        sent = replace(row, at=at)
        answer = self.apply(policy.Request(at, "chat"))
        assert answer is not None
        if answer.kind == "pass":
            self.serve(sent, at)
            return
        if answer.kind == "hold" or answer.reason in COLD_REASONS:
            self.cold += 1
            (self.held if answer.kind == "hold" else self.waiting).append(sent)
            if self.users_wait:
                self.parked.setdefault(row.user, [])
        else:
            self.refused += 1

    def ready(self, at: datetime) -> None:
        self.apply(policy.ServerHealthy(at))
        if self.state.phase != "ready":
            return
        if self.sessions and self.sessions[-1].end is None and self.sessions[-1].healthy is None:
            self.sessions[-1].healthy = at
        for row in self.held:
            self.waits.append((at - row.at).total_seconds())
            self.serve(row, at)
        waiting, self.held, self.waiting = self.waiting, [], []
        for row in waiting:  # the user sends it again now
            answer = self.apply(policy.Request(at, "chat"))
            if answer is not None and answer.kind == "pass":
                self.waits.append((at - row.at).total_seconds())
                self.serve(row, at)
            else:
                self.refused += 1

    def run(self, rows: list[Row], start: datetime, end: datetime) -> None:
        for row in rows:
            self.push(row.at, "request", row)
        self.apply(policy.Tick(start))
        now = start
        horizon = end + timedelta(days=3)
        while True:
            wakeup = policy.next_wakeup(self.config, self.state, now)
            upcoming = self.queue[0][0] if self.queue else None
            idle = self.state.phase in ("off", "blocked")
            if wakeup is not None and (upcoming is None or wakeup < upcoming):
                if (idle and wakeup >= end and not self.waiting) or wakeup >= horizon:
                    break
                now = wakeup
                self.apply(policy.Tick(now))
                continue
            if upcoming is None:
                break
            now, _seq, kind, payload = heapq.heappop(self.queue)
            if kind == "request":
                self.arrive(payload, now)
            elif kind == "healthy":
                self.ready(now)
            elif kind == "destroyed":
                self.apply(policy.ServerDestroyed(now))
            elif kind == "finished":
                self.apply(policy.RequestFinished(now))
        self.refused += len(self.waiting) + len(self.held) + sum(len(rows) for rows in self.parked.values())
        for session in self.sessions:
            if session.end is None:  # still up at the horizon
                session.end, session.reason = now, "end_of_replay"


def replay_trace(config: policy.Config, rows: list[Row], *, users_wait: bool = False) -> Replay:
    """Replay ``rows`` through the policy, from local midnight of the first day to midnight after the last."""
    zone = config.zone
    first = rows[0].at.astimezone(zone).date()
    last = rows[-1].at.astimezone(zone).date()
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    replay = Replay(config, users_wait=users_wait)
    replay.run(rows, start, end)
    return replay


def simulate(
    config: policy.Config, rows: list[Row], *, users_wait: bool = False, replay: Replay | None = None
) -> dict[str, Any]:
    """Replay ``rows`` through the policy (or take ``replay``, their replay); the figures of the report."""
    if replay is None:
        replay = replay_trace(config, rows, users_wait=users_wait)
    zone = config.zone
    first = rows[0].at.astimezone(zone).date()
    last = rows[-1].at.astimezone(zone).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    working_days = sum(1 for day in days if day.weekday() in config.days and day not in config.holidays)
    per_month = len(config.days) * 365.25 / 7 / 12
    seconds = sum((session.end - session.start).total_seconds() for session in replay.sessions if session.end)
    gpu_hours = seconds / 3600
    eur = gpu_hours * config.hourly_price_eur
    prompt = sum(row.prompt_tokens for row in rows)
    completion = sum(row.completion_tokens for row in rows)
    tokens = prompt + completion
    reasons: dict[str, int] = {}
    for session in replay.sessions:
        reasons[session.reason or "?"] = reasons.get(session.reason or "?", 0) + 1
    scale = per_month / working_days if working_days else math.nan
    return {
        "mode": config.mode,
        "period_days": len(days),
        "working_days": working_days,
        "requests": len(rows),
        "served_requests": replay.served,
        "cold_requests": replay.cold,
        "refused_requests": replay.refused,
        "cold_request_share": round(replay.cold / len(rows), 4),
        "max_wait_seconds": round(max(replay.waits, default=0.0), 1),
        "mean_cold_wait_seconds": round(sum(replay.waits) / len(replay.waits), 1) if replay.waits else 0.0,
        "sessions": len(replay.sessions),
        "cold_starts_per_day": round(len(replay.sessions) / working_days, 2) if working_days else None,
        "gpu_hours": round(gpu_hours, 4),
        "eur": round(eur, 2),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": tokens,
        "eur_per_million_tokens": round(eur / tokens * 1e6, 2) if tokens else None,
        "gpu_hours_per_month": round(gpu_hours * scale, 2) if working_days else None,
        "eur_per_month": round(eur * scale, 2) if working_days else None,
        "month_basis": f"working month: {per_month:.2f} working days ({len(config.days)} a week x 365.25/7/12)",
        "stop_reasons": dict(sorted(reasons.items())),
        "settings": {
            "idle_minutes": config.idle_minutes,
            "boot_minutes": config.boot_minutes,
            "hourly_price_eur": config.hourly_price_eur,
            "floor": None
            if not config.has_floor
            else f"{','.join(policy.DAYS[d] for d in config.days)} "
            f"{policy._hhmm(config.up)}-{policy._hhmm(config.down)} {config.time_zone}",
            "quiet": None
            if config.quiet_start is None or config.quiet_end is None
            else f"{policy._hhmm(config.quiet_start)}-{policy._hhmm(config.quiet_end)}, "
            f"{','.join(policy.DAYS[d] for d in config.quiet_days) or 'no day'}",
            "users_wait": users_wait,
            "service_model": f"{OVERHEAD_SECONDS} s + prompt/{PREFILL_PER_SECOND} + completion/{DECODE_PER_SECOND} s",
        },
    }


def ledger(config: policy.Config, replay: Replay) -> list[dict[str, Any]]:
    """The replay's sessions in the cost report's LEDGER.json format (times in the policy's zone)."""
    zone = config.zone

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(zone).isoformat()

    return [
        {
            "instance": INSTANCE,
            "commercial_type": COMMERCIAL_TYPE,
            "zone": ZONE,
            "hourly_price_eur": config.hourly_price_eur,
            "started": iso(session.start),
            "healthy": iso(session.healthy),
            "stopped": iso(session.end),
            "started_by": session.trigger,
        }
        for session in replay.sessions
    ]


def usage(config: policy.Config, replay: Replay) -> str:
    """The requests the replay served, in the cost report's USAGE.csv format: tokens per day (served) and user."""
    totals: dict[tuple[str, str], list[int]] = {}
    for at, row in replay.served_rows:
        counts = totals.setdefault((at.astimezone(config.zone).date().isoformat(), row.user), [0, 0])
        counts[0] += row.prompt_tokens
        counts[1] += row.completion_tokens
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(USAGE_HEADER)
    for (day, user), (prompt, completion) in sorted(totals.items()):
        writer.writerow([day, MODEL, user, prompt, completion, "local"])
    return buffer.getvalue()


def table(result: dict[str, Any]) -> str:
    settings = result["settings"]
    lines = [
        f"mode {result['mode']}: idle {settings['idle_minutes']:g} min, boot {settings['boot_minutes']:g} min, "
        f"EUR {settings['hourly_price_eur']:g}/h, floor {settings['floor'] or 'none'}",
        f"period: {result['period_days']} days, {result['working_days']} working days",
    ]
    rows = [
        (
            "requests",
            f"{result['requests']} ({result['served_requests']} served, {result['refused_requests']} refused)",
        ),
        ("cold requests", f"{result['cold_requests']} ({result['cold_request_share']:.1%})"),
        ("max / mean cold wait", f"{result['max_wait_seconds']:g} s / {result['mean_cold_wait_seconds']:g} s"),
        ("sessions (cold starts)", f"{result['sessions']} ({result['cold_starts_per_day']} a working day)"),
        ("GPU hours", f"{result['gpu_hours']:.2f} ({result['gpu_hours_per_month']} a month)"),
        ("EUR", f"{result['eur']:.2f} ({result['eur_per_month']} a month)"),
        ("EUR per million tokens", f"{result['eur_per_million_tokens']} ({result['tokens']:,} tokens)"),
        ("stops", ", ".join(f"{reason} {count}" for reason, count in result["stop_reasons"].items()) or "none"),
    ]
    width = max(len(name) for name, _value in rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines.append(f"  ({result['month_basis']})")
    return "\n".join(lines)


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {value!r}")
    return number


def _positive(value: str) -> float:
    number = _non_negative(value)
    if number == 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value!r}")
    return number


# Options that override a setting of the policy.
OPTIONS = {"idle_minutes": "idle_minutes", "boot_minutes": "boot_minutes", "hourly_price": "hourly_price_eur"}


def explain(message: str, names: dict[str, str]) -> str:
    """The policy's message with each setting named as the user gave it (scheduler_<key> of --config, an option)."""
    for key, name in names.items():
        message = re.sub(rf"\b{key}\b", name, message)
    if "must be HH:MM" in message and re.search(r"got \d+$", message):
        message += ' (quote times in YAML, "09:30": unquoted, YAML 1.1 reads 9:30 as the number 570)'
    return message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Replay a request trace through the on-demand GPU policy (roles/scheduler/files/gpu_policy.py).",
    )
    parser.add_argument("--trace", type=Path, required=True, help="CSV: timestamp,user,prompt_tokens,completion_tokens")
    parser.add_argument("--mode", required=True, choices=policy.MODES)
    parser.add_argument("--idle-minutes", type=_non_negative, help="default: the boot minutes (break-even)")
    parser.add_argument("--boot-minutes", type=_positive, help=f"default {policy.DEFAULTS['boot_minutes']}")
    parser.add_argument("--config", type=Path, help="YAML with the scheduler_* variables of an inventory")
    parser.add_argument(
        "--hourly-price", type=_non_negative, help=f"EUR per GPU hour, default {policy.DEFAULTS['hourly_price_eur']}"
    )
    parser.add_argument(
        "--users-wait",
        action="store_true",
        help="a user's next request in a conversation (< 15 min after their last) waits for the late answer",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--ledger-out", type=Path, help="write the simulated sessions as the cost report's LEDGER.json")
    parser.add_argument(
        "--usage-out", type=Path, help="write the served requests' tokens per day and user as the report's USAGE.csv"
    )
    args = parser.parse_args(argv)
    for option in ("ledger_out", "usage_out"):
        path = getattr(args, option)
        if path is not None and not path.parent.is_dir():
            parser.error(f"--{option.replace('_', '-')} {path}: the folder {path.parent} does not exist")

    settings: dict[str, Any] = dict(SIMULATOR_DEFAULTS)
    names: dict[str, str] = {}  # where each setting came from, for the error messages
    if args.config is not None:
        try:
            from_file = read_config(args.config)
        except ValueError as exc:
            parser.error(f"--config {args.config}: {exc}")
        settings.update(from_file)
        names.update({key: f"scheduler_{key} (--config {args.config})" for key in from_file})
    settings["mode"] = args.mode
    for option, key in OPTIONS.items():
        if getattr(args, option) is not None:
            settings[key] = getattr(args, option)
            names[key] = f"--{option.replace('_', '-')}"
    try:
        config = policy.Config.from_dict(settings)
    except policy.PolicyError as exc:
        parser.error(explain(str(exc), names))
    try:
        rows = read_trace(args.trace)
    except TraceError as exc:
        parser.error(f"--trace {args.trace}: {exc}")
    replay = replay_trace(config, rows, users_wait=args.users_wait)
    result = simulate(config, rows, replay=replay)
    outputs = []
    if args.ledger_out is not None:
        outputs.append(("--ledger-out", args.ledger_out, json.dumps(ledger(config, replay), indent=2) + "\n"))
    if args.usage_out is not None:
        outputs.append(("--usage-out", args.usage_out, usage(config, replay)))
    for option, path, text in outputs:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            parser.error(f"{option} {path}: cannot write it: {exc.strerror or exc}")
    if args.usage_out is not None and replay.refused:
        print(
            f"on_demand: {replay.refused} refused requests are not in --usage-out {args.usage_out} (not served)",
            file=sys.stderr,
        )
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
