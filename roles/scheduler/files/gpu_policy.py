"""gpu_policy: when the Parrotpark GPU server should exist (issue 14).

The decision logic of the on-demand GPU, as plain data and pure functions:
``step(config, state, event)`` returns the new state and the actions to
take; ``next_wakeup`` says when a ``Tick`` can next change anything;
``status`` summarises the state for ``parrotpark-gpu status``;
``state_to_dict`` and ``state_from_dict`` keep the state as JSON. Nothing here
reads the clock, a file or the network: the caller passes the time in every
event (an aware datetime), performs the actions (create or destroy the
server, answer the request) and reports what happened as further events.
The same code runs in the replay simulator (bench/on_demand.py) and is meant
for the entrance's scheduler. Standard library only, Python 3.9 or later.

Modes (``mode``):

- ``scheduled``: the floor windows only (days, up_time, down_time,
  holidays in time_zone): the server is woken at the window's start and
  destroyed at its end; requests never wake it. Today's behaviour.
- ``on_demand``: a user request (kinds ``chat``, ``completion``) that finds
  the server off wakes it, once however many requests arrive (single flight);
  it is destroyed after ``idle_minutes`` with no request and no stream open.
- ``hybrid``: the floor windows keep it up; outside them it follows demand.

The chat site (with the gateway on the GPU server, LibreChat is off with the
GPU): ``offline_view`` says what its offline page shows, and changes nothing
(a page load never wakes); the page's button is a ``Request`` of kind
``button``, a user's wake like a chat request, answered at once.

Phases: off, starting, ready, stopping (draining, or destroyed and waiting
for the confirmation), blocked (off, and a cap refuses a wake; ``why`` names
the cap).

Rules, in order of precedence:

1. Always, inside a floor window too: the session cap
   (``session_cap_hours``, the reaper's), the boot deadline, a failed boot,
   the reaper (``reap_plan``: tagged servers that are not the session's).
2. Inside a floor window nothing else stops the server, and it is woken
   (trigger ``timer``) whatever the quiet hours and the caps say: the floor's
   cost is known in advance, the caps bound what demand adds to it.
3. Outside the floor: quiet hours and days refuse a wake (the answer says
   when the model is available); ``max_eur_per_month``,
   ``max_gpu_hours_per_day`` and ``max_wakes_per_day`` refuse a wake that
   would exceed them (the floor's hours count), and the first two stop a
   running session; ``min_off_minutes`` after a destroy delays a wake (the
   wake happens when the time is up, the answer gives the ETA); after
   ``idle_minutes`` without a user request, and with no request or stream in
   flight, the server is destroyed. A manual wake ignores the quiet hours,
   the wakes cap and the off time.
4. A stop for any reason but idleness waits for the requests and streams in
   flight, at most ``drain_seconds``; the caps begin that stop
   ``drain_seconds`` before the limit, so the server is gone by the limit.
   Idleness never cuts a stream: a server with requests in flight is not
   idle, unless the counters stay up ``drain_seconds`` past the idle deadline
   (a lost "finished" event must not keep a GPU up for ever).

Counters (wakes and GPU seconds today, EUR this month) follow the local day
and month in ``time_zone``; durations are real elapsed time (a summer time
change does not add or remove an hour).

Default idle time: a cold start costs ``boot_minutes`` of billed time with
no service (Scaleway bills per minute from the creation). Keeping the idle
server costs one minute per minute. As in the ski-rental problem, keeping it
up for as long as a cold start costs (idle = boot time) never pays more than
twice the best choice made in hindsight, whatever the gap until the next
request; hence ``idle_minutes`` defaults to ``boot_minutes``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Union

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9
    raise SystemExit("gpu_policy needs Python 3.9 or later (zoneinfo)") from None

MODES = ("scheduled", "on_demand", "hybrid")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PHASES = ("off", "starting", "ready", "stopping", "blocked")
# Request kinds: users' requests may wake the server; probes, the model list and the smoke test never do.
WAKING_KINDS = ("chat", "completion")
PROBE_KINDS = ("health", "models", "smoke")
# The chat site's wake button (the gateway on the GPU server, see offline_view): a user's request to start the
# model, with the quiet hours and every cap of a chat request, which is never held nor forwarded.
BUTTON_KIND = "button"
# How often the chat site's offline page reloads itself: soon while a wake is possible or under way, so the chat
# appears once the model is ready; slowly while the quiet hours or a cap refuse a wake.
PAGE_REFRESH_SECONDS = 15
PAGE_REFRESH_REFUSED_SECONDS = 60
TRIGGERS = ("timer", "wake", "manual")
REASONS = (
    "idle",
    "floor_end",
    "boot_deadline",
    "boot_failed",
    "cap_hours",
    "cap_eur",
    "session_cap",
    "reaper",
)
CAPS = ("cap_eur", "cap_hours", "cap_wakes")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, this file runs on 3.9

DEFAULTS: dict[str, Any] = {
    "mode": "scheduled",
    "time_zone": "Europe/Paris",
    # The floor windows (scheduled and hybrid): the scheduler role's schedule.
    "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
    "up_time": "08:00",
    "down_time": "19:00",
    "holidays": [],
    # No wake on demand at night, at weekends and on holidays.
    "quiet_start": "20:00",
    "quiet_end": "07:00",
    "quiet_days": ["Sat", "Sun"],
    "quiet_on_holidays": True,
    # An L4 without a warm cache boots in 7-8 min (measured by on-demand Scaleway gateways).
    "boot_minutes": 8,
    "idle_minutes": None,  # None: boot_minutes (the ski-rental break-even)
    "hold_seconds": 20,
    "drain_seconds": 300,
    "max_gpu_hours_per_day": 12,
    "max_eur_per_month": 250,
    "max_wakes_per_day": 20,
    "min_off_minutes": 2,
    "boot_deadline_minutes": 20,
    "session_cap_hours": 24,
    "hourly_price_eur": 0.79,
}


class PolicyError(ValueError):
    """A setting of the policy is wrong; the message names it and says what is expected."""


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes_of(value: Any, key: str) -> int:
    match = HHMM.match(str(value))
    if not match:
        raise PolicyError(f"{key} must be HH:MM (00:00 to 23:59), got {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _number(value: Any, key: str, minimum: float, *, strict: bool = False, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if (
        not ok
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < minimum
        or (strict and value == minimum)
    ):
        bound = f"above {minimum:g}" if strict else f"at least {minimum:g}"
        raise PolicyError(f"{key} must be {kind} {bound}, got {value!r}")
    return value


def _cap(value: Any, key: str, *, integer: bool = False) -> float | None:
    if value is None:
        return None
    return _number(value, key, 0, strict=True, integer=integer)


def _days(value: Any, key: str, *, empty: bool) -> tuple[int, ...]:
    if not isinstance(value, list) or (not value and not empty) or any(day not in DAYS for day in value):
        what = "a list" if empty else "a non-empty list"
        raise PolicyError(f"{key} must be {what} of {', '.join(DAYS)}, got {value!r}")
    return tuple(sorted({DAYS.index(day) for day in value}))


@dataclass(frozen=True)
class Config:
    """The policy's settings; build it with ``Config.from_dict`` (keys as in ``DEFAULTS``)."""

    mode: str
    time_zone: str
    days: tuple[int, ...]
    up: int  # minutes after local midnight
    down: int
    holidays: frozenset[date]
    quiet_start: int | None  # None: no quiet hours
    quiet_end: int | None
    quiet_days: tuple[int, ...]
    quiet_on_holidays: bool
    boot_minutes: float
    idle_minutes: float
    hold_seconds: float
    drain_seconds: float
    max_gpu_hours_per_day: float | None
    max_eur_per_month: float | None
    max_wakes_per_day: int | None
    min_off_minutes: float
    boot_deadline_minutes: float
    session_cap_hours: float
    hourly_price_eur: float

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def has_floor(self) -> bool:
        return self.mode != "on_demand"

    @property
    def floor_hours(self) -> float:
        return (self.down - self.up) / 60

    @property
    def min_session_hours(self) -> float:
        """What a wake commits to at least: the boot, then the idle time."""
        return (self.boot_minutes + self.idle_minutes) / 60

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        if not isinstance(data, dict):
            raise PolicyError(f"the policy's settings must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise PolicyError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
        d = {**DEFAULTS, **data}
        mode = d["mode"]
        if mode not in MODES:
            raise PolicyError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        zone_name = str(d["time_zone"])
        try:
            ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PolicyError(f"time_zone must be a known time zone (Europe/Paris), got {zone_name!r}") from exc
        up = _minutes_of(d["up_time"], "up_time")
        down = _minutes_of(d["down_time"], "down_time")
        if up >= down:
            raise PolicyError(f"up_time ({_hhmm(up)}) must be before down_time ({_hhmm(down)})")
        holidays = set()
        if not isinstance(d["holidays"], list):
            raise PolicyError(f"holidays must be a list of dates YYYY-MM-DD, got {d['holidays']!r}")
        for value in d["holidays"]:
            try:
                holidays.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
            except ValueError as exc:
                raise PolicyError(f"holidays: {value!r} is not a date YYYY-MM-DD") from exc
        quiet_start, quiet_end = d["quiet_start"], d["quiet_end"]
        if quiet_start in (None, "") and quiet_end in (None, ""):
            quiet_start = quiet_end = None
        else:
            quiet_start = _minutes_of(quiet_start, "quiet_start")
            quiet_end = _minutes_of(quiet_end, "quiet_end")
            if quiet_start == quiet_end:
                raise PolicyError(f"quiet_start and quiet_end must differ (both {_hhmm(quiet_start)})")
        if not isinstance(d["quiet_on_holidays"], bool):
            raise PolicyError(f"quiet_on_holidays must be true or false, got {d['quiet_on_holidays']!r}")
        boot = _number(d["boot_minutes"], "boot_minutes", 0, strict=True)
        idle = boot if d["idle_minutes"] is None else _number(d["idle_minutes"], "idle_minutes", 0)
        config = cls(
            mode=mode,
            time_zone=zone_name,
            days=_days(d["days"], "days", empty=False),
            up=up,
            down=down,
            holidays=frozenset(holidays),
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            quiet_days=_days(d["quiet_days"], "quiet_days", empty=True),
            quiet_on_holidays=d["quiet_on_holidays"],
            boot_minutes=boot,
            idle_minutes=idle,
            hold_seconds=_number(d["hold_seconds"], "hold_seconds", 0),
            drain_seconds=_number(d["drain_seconds"], "drain_seconds", 0),
            max_gpu_hours_per_day=_cap(d["max_gpu_hours_per_day"], "max_gpu_hours_per_day"),
            max_eur_per_month=_cap(d["max_eur_per_month"], "max_eur_per_month"),
            max_wakes_per_day=_cap(d["max_wakes_per_day"], "max_wakes_per_day", integer=True),
            min_off_minutes=_number(d["min_off_minutes"], "min_off_minutes", 0),
            boot_deadline_minutes=_number(d["boot_deadline_minutes"], "boot_deadline_minutes", 0, strict=True),
            session_cap_hours=_number(d["session_cap_hours"], "session_cap_hours", 0, strict=True),
            hourly_price_eur=_number(d["hourly_price_eur"], "hourly_price_eur", 0),
        )
        config._check_relations()
        return config

    def _check_relations(self) -> None:
        if self.boot_deadline_minutes <= self.boot_minutes:
            raise PolicyError(
                f"boot_deadline_minutes ({self.boot_deadline_minutes:g}) must be above boot_minutes "
                f"({self.boot_minutes:g}): a server is given the expected boot time at least"
            )
        if self.has_floor and self.session_cap_hours <= self.floor_hours:
            raise PolicyError(
                f"session_cap_hours ({self.session_cap_hours:g}) must be above the floor window "
                f"{_hhmm(self.up)}-{_hhmm(self.down)} ({self.floor_hours:g} h)"
            )


# --------------------------------------------------------------------------
# State, events, actions
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Everything the policy remembers (persist it to survive a restart). ``step`` returns a new one."""

    phase: str = "off"
    why: str | None = None  # blocked: the cap; stopping: the reason
    session_start: datetime | None = None  # the wake: billing starts here
    trigger: str | None = None
    price: float = 0.0  # EUR per hour of the running session
    healthy_at: datetime | None = None
    last_request: datetime | None = None  # the last user request (probes do not count)
    last_activity: datetime | None = None  # the last user request, stream or request end, or ready
    in_flight: int = 0
    open_streams: int = 0
    drain_deadline: datetime | None = None
    destroy_sent: bool = False
    pending_wake_at: datetime | None = None  # a wake delayed by the minimum off time
    last_stop: datetime | None = None
    day: date | None = None  # the local day of the day's counters
    wakes_today: int = 0
    gpu_seconds_today: float = 0.0  # of the sessions that ended, within the day
    eur_today: float = 0.0
    month: str | None = None  # YYYY-MM of the month's counters
    gpu_seconds_month: float = 0.0
    eur_month: float = 0.0

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or self.open_streams > 0


@dataclass(frozen=True)
class Request:
    """A request reached the gateway. ``kind``: chat, completion (may wake), health, models, smoke (never wake)."""

    at: datetime
    kind: str = "chat"


@dataclass(frozen=True)
class StreamOpened:
    at: datetime


@dataclass(frozen=True)
class StreamClosed:
    at: datetime


@dataclass(frozen=True)
class RequestFinished:
    """A request that was passed (or held) is over, answered or not."""

    at: datetime


@dataclass(frozen=True)
class ServerHealthy:
    at: datetime


@dataclass(frozen=True)
class ServerDestroyed:
    """The session's server and everything it owned are gone (billing stopped)."""

    at: datetime


@dataclass(frozen=True)
class BootFailed:
    at: datetime


@dataclass(frozen=True)
class Tick:
    at: datetime


@dataclass(frozen=True)
class ManualWake:
    """The operator asked for the server (``parrotpark-gpu up --force``)."""

    at: datetime


@dataclass(frozen=True)
class Observed:
    """What the GPU's own counters say (vLLM's /metrics), polled while the server is ready or stopping.

    ``in_flight``: requests running or waiting now, streams included (it replaces the counted ``in_flight``, and
    ``open_streams`` becomes 0: they are in it); ``finished``: requests completed since the previous observation.
    Either above 0 is user activity, as a request is. Ignored while off, blocked or starting: there is no server
    to observe, and the requests held during the boot are counted by the gateway."""

    at: datetime
    in_flight: int
    finished: int


Event = Union[  # noqa: UP007 - X | Y on classes needs Python 3.10, this file runs on 3.9
    Request,
    StreamOpened,
    StreamClosed,
    RequestFinished,
    ServerHealthy,
    ServerDestroyed,
    BootFailed,
    Tick,
    ManualWake,
    Observed,
]


@dataclass(frozen=True)
class Wake:
    """Create the server (the up path). ``trigger``: timer, wake or manual."""

    trigger: str


@dataclass(frozen=True)
class Destroy:
    """Destroy the session's server through the API with everything it owned."""

    reason: str


@dataclass(frozen=True)
class Answer:
    """How to answer the request of a ``Request`` event.

    ``kind``: ``pass`` (forward it), ``hold`` (keep it up to ``seconds``, forward it when the server is healthy,
    else answer 503; report ``RequestFinished`` either way) or ``unavailable`` (answer 503 with ``message`` and
    ``Retry-After: retry_after`` at once). ``reason`` says why: ready, starting, min_off, restarting, quiet,
    schedule, cap_eur, cap_hours, cap_wakes, stopping, off.
    """

    kind: str
    reason: str
    message: str = ""
    seconds: int = 0
    retry_after: int | None = None
    eta_seconds: int | None = None

    @property
    def status(self) -> int:
        return 503 if self.kind == "unavailable" else 200

    def openai_error(self) -> dict[str, Any]:
        """The body of the 503, in the shape OpenAI clients read."""
        return {"error": {"message": self.message, "type": "service_unavailable", "code": self.reason}}


@dataclass(frozen=True)
class Refused:
    """A manual wake the caps refuse; ``message`` for the operator."""

    reason: str
    message: str


Action = Union[Wake, Destroy, Answer, Refused]  # noqa: UP007 - Python 3.9


@dataclass(frozen=True)
class Step:
    state: State
    actions: tuple[Action, ...]

    @property
    def answer(self) -> Answer | None:
        return next((action for action in self.actions if isinstance(action, Answer)), None)


# --------------------------------------------------------------------------
# Time: local windows, quiet hours, counters
# --------------------------------------------------------------------------


# Times are kept and computed in UTC: Python subtracts and adds datetimes of the same zone on the wall clock
# (23:00 to 07:00 is 8 h even across the change to summer time), so local times serve only to read the
# clock face (windows, days, months) and to print.


def _aware(when: datetime) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise PolicyError(f"event times must be datetimes with a time zone, got {when!r}")
    return when.astimezone(UTC)


def _at(config: Config, day: date, minutes: int) -> datetime:
    """HH:MM local time on ``day``, in UTC."""
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=config.zone).astimezone(UTC)


def _local(config: Config, now: datetime) -> datetime:
    return now.astimezone(config.zone)


def _floor_day(config: Config, day: date) -> bool:
    return config.has_floor and day.weekday() in config.days and day not in config.holidays


def floor_active(config: Config, now: datetime) -> bool:
    local = _local(config, now)
    minute = local.hour * 60 + local.minute
    return _floor_day(config, local.date()) and config.up <= minute < config.down


def _next_floor_start(config: Config, now: datetime) -> datetime | None:
    """The start of the floor window active at ``now``, or of the next one."""
    if not config.has_floor:
        return None
    local = _local(config, now)
    for offset in range(400):
        day = local.date() + timedelta(days=offset)
        if _floor_day(config, day) and _at(config, day, config.down) > now:
            return _at(config, day, config.up)
    return None


def _floor_end(config: Config, now: datetime) -> datetime | None:
    """The end of the floor window active at ``now``."""
    return _at(config, _local(config, now).date(), config.down) if floor_active(config, now) else None


def _last_floor_end(config: Config, now: datetime) -> datetime | None:
    """The end of the last floor window that ended at or before ``now``."""
    if not config.has_floor:
        return None
    local = _local(config, now)
    for offset in range(8):
        day = local.date() - timedelta(days=offset)
        end = _at(config, day, config.down)
        if _floor_day(config, day) and end <= now:
            return end
    return None


def quiet(config: Config, now: datetime) -> bool:
    """Whether a demand wake is refused at ``now`` (quiet hours, quiet days, holidays)."""
    local = _local(config, now)
    day = local.date()
    if day.weekday() in config.quiet_days or (config.quiet_on_holidays and day in config.holidays):
        return True
    if config.quiet_start is None or config.quiet_end is None:
        return False
    minute = local.hour * 60 + local.minute
    if config.quiet_start < config.quiet_end:
        return config.quiet_start <= minute < config.quiet_end
    return minute >= config.quiet_start or minute < config.quiet_end


def _next_not_quiet(config: Config, now: datetime) -> datetime | None:
    if not quiet(config, now):
        return now
    local = _local(config, now)
    for offset in range(400):
        day = local.date() + timedelta(days=offset)
        for minutes in sorted({0, config.quiet_end or 0}):
            moment = _at(config, day, minutes)
            if moment > now and not quiet(config, moment):
                return moment
    return None


def available_from(config: Config, demand_from: datetime, floor_from: datetime | None = None) -> datetime | None:
    """When a request would next find the model up or able to start: the first moment from ``demand_from`` outside
    the quiet hours (not in scheduled mode), or the next floor window from ``floor_from`` (default ``demand_from``)."""
    candidates = []
    if config.mode != "scheduled":
        candidates.append(_next_not_quiet(config, demand_from))
    if config.has_floor:
        candidates.append(_next_floor_start(config, floor_from or demand_from))
    found = [moment for moment in candidates if moment is not None]
    return min(found) if found else None


def _day_start(config: Config, now: datetime) -> datetime:
    return _at(config, _local(config, now).date(), 0)


def _next_day_start(config: Config, now: datetime) -> datetime:
    return _at(config, _local(config, now).date() + timedelta(days=1), 0)


def _month_start(config: Config, now: datetime) -> datetime:
    return _at(config, _local(config, now).date().replace(day=1), 0)


def _next_month_start(config: Config, now: datetime) -> datetime:
    first = _local(config, now).date().replace(day=1)
    return _at(config, (first + timedelta(days=32)).replace(day=1), 0)


def _seconds(start: datetime | None, end: datetime, since: datetime) -> float:
    if start is None:
        return 0.0
    return max(0.0, (end - max(start, since)).total_seconds())


def gpu_hours_today(config: Config, state: State, now: datetime) -> float:
    return (state.gpu_seconds_today + _seconds(state.session_start, now, _day_start(config, now))) / 3600


def eur_today(config: Config, state: State, now: datetime) -> float:
    return state.eur_today + _seconds(state.session_start, now, _day_start(config, now)) / 3600 * state.price


def gpu_hours_month(config: Config, state: State, now: datetime) -> float:
    return (state.gpu_seconds_month + _seconds(state.session_start, now, _month_start(config, now))) / 3600


def eur_month(config: Config, state: State, now: datetime) -> float:
    return state.eur_month + _seconds(state.session_start, now, _month_start(config, now)) / 3600 * state.price


def _roll(config: Config, state: State, now: datetime) -> State:
    """Start the day's and the month's counters afresh when the local day or month changed."""
    local = _local(config, now)
    if state.day != local.date():
        state = replace(state, day=local.date(), wakes_today=0, gpu_seconds_today=0.0, eur_today=0.0)
    month = f"{local:%Y-%m}"
    if state.month != month:
        state = replace(state, month=month, gpu_seconds_month=0.0, eur_month=0.0)
    return state


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def _about(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


def _when(config: Config, moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "no time in the coming year"
    local = _local(config, moment)
    day = DAYS[local.weekday()]
    if moment - now >= timedelta(days=6):
        return f"{day} {local:%Y-%m-%d %H:%M} {config.time_zone}"
    return f"{day} {local:%H:%M} {config.time_zone}"


def _retry_after(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(1, math.ceil((moment - now).total_seconds()))


def _cap_answer(config: Config, now: datetime, reason: str, what: str, moment: datetime | None) -> Answer:
    message = f"{what}; the model is available again from {_when(config, moment, now)}."
    return Answer("unavailable", reason, message, retry_after=_retry_after(moment, now))


def _closed_answer(config: Config, now: datetime, reason: str, label: str) -> Answer:
    moment = available_from(config, now)
    message = f"The model is available from {_when(config, moment, now)} ({label})."
    return Answer("unavailable", reason, message, retry_after=_retry_after(moment, now))


def _need_hours(config: Config) -> float:
    """What a wake must fit under a cap: the shortest session (boot and idle time), and the drain's lead."""
    return max(config.min_session_hours, _lead(config))


def _refusal(config: Config, state: State, now: datetime, trigger: str) -> Answer | None:  # noqa: PLR0911 - one per rule
    """The answer refusing a wake by ``trigger`` now (a cap, the schedule, the quiet hours), if it is refused.

    Timer wakes (the floor) are never refused; manual ones only by the EUR and hours caps."""
    if trigger == "timer":
        return None
    eur_cap = config.max_eur_per_month
    need = _need_hours(config)
    if eur_cap is not None and eur_month(config, state, now) + need * config.hourly_price_eur >= eur_cap:
        moment = available_from(config, _next_month_start(config, now), now)
        what = f"This month's GPU budget (EUR {eur_cap:g}) is spent"
        return _cap_answer(config, now, "cap_eur", what, moment)
    hours_cap = config.max_gpu_hours_per_day
    if hours_cap is not None and gpu_hours_today(config, state, now) + need >= hours_cap:
        moment = available_from(config, _next_day_start(config, now), now)
        what = f"The GPU has run its {hours_cap:g} hours for today (the daily limit)"
        return _cap_answer(config, now, "cap_hours", what, moment)
    if trigger == "manual":
        return None
    wakes_cap = config.max_wakes_per_day
    if wakes_cap is not None and state.wakes_today >= wakes_cap:
        moment = available_from(config, _next_day_start(config, now), now)
        what = f"The GPU was started {state.wakes_today} times today (the daily limit)"
        return _cap_answer(config, now, "cap_wakes", what, moment)
    if config.mode == "scheduled":
        return _closed_answer(config, now, "schedule", "working hours")
    if quiet(config, now):
        return _closed_answer(config, now, "quiet", "quiet hours")
    return None


def _starting(config: Config, state: State, now: datetime) -> Answer:
    """The answer while the server boots: a hold when it is nearly ready, else a 503 with the ETA."""
    assert state.session_start is not None
    ready = state.session_start + timedelta(minutes=config.boot_minutes)
    eta = (ready - now).total_seconds()
    if eta <= 0:  # later than expected: hold if allowed, it may be a matter of seconds
        if config.hold_seconds >= 1:
            return Answer("hold", "starting", seconds=math.floor(config.hold_seconds), eta_seconds=0)
        return Answer("unavailable", "starting", "The model is starting, ready shortly.", retry_after=30, eta_seconds=0)
    if eta <= config.hold_seconds:
        return Answer("hold", "starting", seconds=math.ceil(eta), eta_seconds=math.ceil(eta))
    message = f"The model is starting, ready in {_about(eta)}."
    return Answer("unavailable", "starting", message, retry_after=math.ceil(eta), eta_seconds=math.ceil(eta))


# --------------------------------------------------------------------------
# The state machine
# --------------------------------------------------------------------------


def _wake(config: Config, state: State, now: datetime, trigger: str, out: list[Action]) -> State:
    out.append(Wake(trigger))
    return replace(
        state,
        phase="starting",
        why=None,
        session_start=now,
        trigger=trigger,
        price=config.hourly_price_eur,
        healthy_at=None,
        last_activity=now,
        drain_deadline=None,
        destroy_sent=False,
        pending_wake_at=None,
        wakes_today=state.wakes_today + 1,
    )


def _destroy(state: State, reason: str, out: list[Action]) -> State:
    out.append(Destroy(reason))
    return replace(state, phase="stopping", why=reason, destroy_sent=True, drain_deadline=None)


def _begin_stop(config: Config, state: State, now: datetime, reason: str, out: list[Action]) -> State:
    if not state.busy:
        return _destroy(state, reason, out)
    return replace(state, phase="stopping", why=reason, drain_deadline=now + timedelta(seconds=config.drain_seconds))


def _lead(config: Config) -> float:
    return config.drain_seconds / 3600


def _idle_deadline(config: Config, state: State) -> datetime | None:
    if state.last_activity is None:
        return None
    return state.last_activity + timedelta(minutes=config.idle_minutes)


def _stop_reason(config: Config, state: State, now: datetime) -> str | None:  # noqa: PLR0911 - one per rule
    """Why a running session must stop now, if it must: the session cap (always), then, outside the floor, the
    floor's end (scheduled), idleness (floor_end when the floor alone kept it up), the EUR and hours caps (with the
    drain's lead)."""
    assert state.session_start is not None
    if (now - state.session_start).total_seconds() / 3600 + _lead(config) >= config.session_cap_hours:
        return "session_cap"
    if floor_active(config, now):
        return None
    if config.mode == "scheduled" and state.trigger == "timer":
        return "floor_end"
    idle = _idle_reason(config, state, now)
    if idle is not None:
        return idle
    cap = config.max_eur_per_month
    if cap is not None and eur_month(config, state, now) + _lead(config) * state.price >= cap:
        return "cap_eur"
    cap = config.max_gpu_hours_per_day
    if cap is not None and gpu_hours_today(config, state, now) + _lead(config) >= cap:
        return "cap_hours"
    return None


def _idle_reason(config: Config, state: State, now: datetime) -> str | None:
    deadline = _idle_deadline(config, state)
    if state.phase != "ready" or deadline is None or now < deadline:
        return None
    if state.busy and now < deadline + timedelta(seconds=config.drain_seconds):
        return None  # a request or a stream in flight is activity
    ended = _last_floor_end(config, now)
    return "floor_end" if ended is not None and ended >= deadline else "idle"


def _unblock(config: Config, state: State, now: datetime) -> State:
    if state.phase != "blocked":
        return state
    refusal = _refusal(config, state, now, "wake")
    if refusal is not None and refusal.reason == state.why:
        return state
    return replace(state, phase="off", why=None)


def _evaluate(config: Config, state: State, now: datetime, out: list[Action]) -> State:  # noqa: PLR0911 - per phase
    """What the clock alone decides: floor wakes, delayed wakes, boot deadline, caps, idleness, drains."""
    phase = state.phase
    if phase in ("off", "blocked"):
        state = _unblock(config, state, now)
        if floor_active(config, now):
            return _wake(config, state, now, "timer", out)
        if state.pending_wake_at is not None and now >= state.pending_wake_at:
            state = replace(state, pending_wake_at=None)
            refusal = _refusal(config, state, now, "wake")
            if refusal is None:
                return _wake(config, state, now, "wake", out)
            if refusal.reason in CAPS:
                return replace(state, phase="blocked", why=refusal.reason)
        return state
    if phase == "starting":
        assert state.session_start is not None
        if now >= state.session_start + timedelta(minutes=config.boot_deadline_minutes):
            return _destroy(state, "boot_deadline", out)
        reason = _stop_reason(config, state, now)
        # Nothing is served yet: a cap or the floor's end stops the boot at once (held requests get their 503).
        return _destroy(state, reason, out) if reason else state
    if phase == "ready":
        reason = _stop_reason(config, state, now)
        if reason == "idle" or (reason == "floor_end" and config.mode == "hybrid"):
            return _destroy(state, reason, out)  # _stop_reason waited for the requests in flight
        return _begin_stop(config, state, now, reason, out) if reason else state
    if phase == "stopping" and not state.destroy_sent:
        assert state.drain_deadline is not None and state.why is not None
        if not state.busy or now >= state.drain_deadline:
            return _destroy(state, state.why, out)
    return state


def _on_request(config: Config, state: State, event: Request, now: datetime, out: list[Action]) -> State:
    kinds = (*WAKING_KINDS, BUTTON_KIND, *PROBE_KINDS)
    if event.kind not in kinds:
        raise PolicyError(f"request kind must be one of {', '.join(kinds)}, got {event.kind!r}")
    if event.kind == BUTTON_KIND:
        return _on_button(config, state, now, out)
    if event.kind in PROBE_KINDS:
        if state.phase == "ready":
            out.append(Answer("pass", "ready"))
        else:
            out.append(
                Answer("unavailable", "off", "The model is not running (a probe never starts it).", retry_after=60)
            )
        return state
    state = replace(state, last_request=now, last_activity=now)
    phase = state.phase
    if phase == "ready":
        out.append(Answer("pass", "ready"))
        return replace(state, in_flight=state.in_flight + 1)
    if phase == "starting":
        answer = _starting(config, state, now)
        out.append(answer)
        return replace(state, in_flight=state.in_flight + 1) if answer.kind == "hold" else state
    if phase == "stopping":
        return _request_while_stopping(config, state, now, out)
    return _request_while_off(config, state, now, out)


def _on_button(config: Config, state: State, now: datetime, out: list[Action]) -> State:
    """The wake button: what a chat request would do (wake once, or the refusal), but the button's own request is
    answered at once (the page then shows the state): never held, never forwarded, never counted in flight."""
    inner: list[Action] = []
    new = _on_request(config, state, Request(now, "chat"), now, inner)
    for action in inner:
        if not isinstance(action, Answer):
            out.append(action)
        elif action.kind == "unavailable":
            out.append(action)
        else:
            new = replace(new, in_flight=max(0, new.in_flight - 1))  # counted by the chat path, not in flight here
            if action.kind == "pass":
                out.append(action)
            else:  # hold: nearly ready
                message = "The model is starting, ready shortly."
                out.append(Answer("unavailable", "starting", message, retry_after=action.seconds or 1, eta_seconds=0))
    return new


def _request_while_off(config: Config, state: State, now: datetime, out: list[Action]) -> State:
    trigger = "timer" if floor_active(config, now) else "wake"
    refusal = _refusal(config, state, now, trigger)
    if refusal is not None:
        out.append(refusal)
        return replace(state, phase="blocked", why=refusal.reason) if refusal.reason in CAPS else state
    if trigger == "wake" and state.last_stop is not None:
        allowed = state.last_stop + timedelta(minutes=config.min_off_minutes)
        if now < allowed:
            eta = (allowed - now).total_seconds() + config.boot_minutes * 60
            message = f"The model was stopped moments ago; it starts again, ready in {_about(eta)}."
            out.append(
                Answer("unavailable", "min_off", message, retry_after=math.ceil(eta), eta_seconds=math.ceil(eta))
            )
            return replace(state, pending_wake_at=allowed)
    state = _wake(config, state, now, trigger, out)
    answer = _starting(config, state, now)
    out.append(answer)
    return replace(state, in_flight=state.in_flight + 1) if answer.kind == "hold" else state


def _request_while_stopping(config: Config, state: State, now: datetime, out: list[Action]) -> State:
    if state.why in CAPS:
        refusal = _refusal(config, state, now, "wake")
        if refusal is not None:
            out.append(refusal)
            return state
    if config.mode == "scheduled" and not floor_active(config, now):
        out.append(_closed_answer(config, now, "schedule", "working hours"))
        return state
    # Idleness, the floor's end, the session cap, a failed boot: wake again once the server is gone.
    eta = config.min_off_minutes * 60 + config.boot_minutes * 60
    message = f"The model is restarting, ready in {_about(eta)}."
    out.append(Answer("unavailable", "restarting", message, retry_after=math.ceil(eta), eta_seconds=math.ceil(eta)))
    return replace(state, pending_wake_at=state.pending_wake_at or now)


def _on_destroyed(config: Config, state: State, now: datetime) -> State:
    if state.session_start is None:
        return state
    today = _seconds(state.session_start, now, _day_start(config, now))
    month = _seconds(state.session_start, now, _month_start(config, now))
    pending = state.pending_wake_at
    if pending is not None:
        pending = max(pending, now + timedelta(minutes=config.min_off_minutes))
    blocked = state.why in CAPS
    return replace(
        state,
        phase="blocked" if blocked else "off",
        why=state.why if blocked else None,
        session_start=None,
        trigger=None,
        price=0.0,
        healthy_at=None,
        in_flight=0,
        open_streams=0,
        drain_deadline=None,
        destroy_sent=False,
        pending_wake_at=pending,
        last_stop=now,
        gpu_seconds_today=state.gpu_seconds_today + today,
        eur_today=state.eur_today + today / 3600 * state.price,
        gpu_seconds_month=state.gpu_seconds_month + month,
        eur_month=state.eur_month + month / 3600 * state.price,
    )


def _on_observed(state: State, event: Observed, now: datetime) -> State:
    for key in ("in_flight", "finished"):
        value = getattr(event, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PolicyError(f"Observed.{key} must be an integer at least 0, got {value!r}")
    if state.phase not in ("ready", "stopping"):
        return state
    state = replace(state, in_flight=event.in_flight, open_streams=0)
    if event.in_flight > 0 or event.finished > 0:
        state = replace(state, last_request=now, last_activity=now)
    return state


def step(config: Config, state: State, event: Event) -> Step:
    """Apply ``event`` (at ``event.at``) to ``state``: the new state and the actions, in order."""
    now = _aware(event.at)
    out: list[Action] = []
    state = _roll(config, state, now)
    if isinstance(event, Request):
        state = _on_request(config, state, event, now, out)
    elif isinstance(event, StreamOpened):
        state = replace(state, open_streams=state.open_streams + 1, last_activity=now)
    elif isinstance(event, StreamClosed):
        state = replace(state, open_streams=max(0, state.open_streams - 1), last_activity=now)
    elif isinstance(event, RequestFinished):
        state = replace(state, in_flight=max(0, state.in_flight - 1), last_activity=now)
    elif isinstance(event, ServerHealthy):
        if state.phase == "starting":
            state = replace(state, phase="ready", healthy_at=now, last_activity=now)
    elif isinstance(event, ServerDestroyed):
        state = _on_destroyed(config, state, now)
    elif isinstance(event, BootFailed):
        if state.phase == "starting":
            state = _destroy(state, "boot_failed", out)
    elif isinstance(event, ManualWake):
        if state.phase in ("off", "blocked"):
            refusal = _refusal(config, state, now, "manual")
            if refusal is None:
                state = _wake(config, state, now, "manual", out)
            else:
                out.append(Refused(refusal.reason, refusal.message))
    elif isinstance(event, Observed):
        state = _on_observed(state, event, now)
    elif not isinstance(event, Tick):
        raise PolicyError(f"unknown event {event!r}")
    state = _evaluate(config, state, now, out)
    return Step(state, tuple(out))


def next_wakeup(config: Config, state: State, now: datetime) -> datetime | None:
    """The first moment after ``now`` at which a ``Tick`` may change the state (None: only events will)."""
    now = _aware(now)
    candidates: list[datetime | None] = [_next_day_start(config, now)]
    phase = state.phase
    if phase in ("off", "blocked"):
        candidates += [_next_floor_start(config, now), state.pending_wake_at]
    elif state.session_start is not None:
        start = state.session_start
        candidates.append(start + timedelta(hours=config.session_cap_hours - _lead(config)))
        if config.max_eur_per_month is not None and state.price > 0:
            left = (config.max_eur_per_month - eur_month(config, state, now)) / state.price - _lead(config)
            candidates += [now + timedelta(hours=max(0.0, left)), _next_month_start(config, now)]
        if phase == "starting":
            candidates.append(start + timedelta(minutes=config.boot_deadline_minutes))
        elif phase == "ready":
            candidates.append(_floor_end(config, now))
            deadline = _idle_deadline(config, state)
            if deadline is not None:
                candidates += [deadline, deadline + timedelta(seconds=config.drain_seconds)]
            if config.max_gpu_hours_per_day is not None:
                left = config.max_gpu_hours_per_day - gpu_hours_today(config, state, now) - _lead(config)
                candidates.append(now + timedelta(hours=max(0.0, left)))
        elif phase == "stopping":
            candidates.append(state.drain_deadline)
    future = [moment for moment in candidates if moment is not None and moment > now]
    return min(future) if future else None


def status(config: Config, state: State, now: datetime) -> dict[str, Any]:
    """What ``parrotpark-gpu status`` shows: phase (blocked when a cap refuses a wake), ETA while starting,
    hours and EUR today and this month, what a user request would be answered now."""
    now = _aware(now)
    state = _unblock(config, _roll(config, state, now), now)
    phase, why = state.phase, state.why
    answer: Answer | None = None
    if phase == "off":
        answer = _refusal(config, state, now, "timer" if floor_active(config, now) else "wake")
        if answer is not None and answer.reason in CAPS:
            phase, why = "blocked", answer.reason
    eta = None
    if phase == "starting":
        assert state.session_start is not None
        ready = state.session_start + timedelta(minutes=config.boot_minutes)
        eta = max(0, math.ceil((ready - now).total_seconds()))
    return {
        "mode": config.mode,
        "phase": phase,
        "why": why,
        "eta_seconds": eta,
        "message": answer.message if answer else None,
        "available_from": None
        if phase != "blocked" or answer is None or answer.retry_after is None
        else _local(config, now + timedelta(seconds=answer.retry_after)).isoformat(timespec="minutes"),
        "session_start": _local(config, state.session_start).isoformat(timespec="seconds")
        if state.session_start
        else None,
        "trigger": state.trigger,
        "in_flight": state.in_flight,
        "open_streams": state.open_streams,
        "floor_active": floor_active(config, now),
        "quiet": quiet(config, now),
        "wakes_today": state.wakes_today,
        "gpu_hours_today": round(gpu_hours_today(config, state, now), 4),
        "eur_today": round(eur_today(config, state, now), 4),
        "gpu_hours_month": round(gpu_hours_month(config, state, now), 4),
        "eur_month": round(eur_month(config, state, now), 4),
    }


@dataclass(frozen=True)
class Offline:
    """What the chat site says while the GPU server is not ready (the gateway on the GPU server: LibreChat runs
    there, so while it is off the entrance's waker answers for the chat site): see ``offline_view``.

    ``phase``: off, starting, stopping, blocked or ready (then the request is forwarded instead); ``reason``: why
    (off, starting, restarting, min_off, stopping, quiet, schedule, cap_eur, cap_hours, cap_wakes, ready);
    ``message``: the plain sentence users read; ``can_wake``: the page offers the wake button; ``retry_after``:
    seconds for Retry-After; ``refresh_seconds``: how often the page reloads itself; ``eta_seconds``: until the
    model is ready when it is starting (or would be, after a press of the button)."""

    phase: str
    reason: str
    message: str
    can_wake: bool
    retry_after: int
    refresh_seconds: int
    eta_seconds: int | None = None


def offline_view(config: Config, state: State, now: datetime) -> Offline:  # noqa: PLR0911 - one per phase
    """What the chat site's offline page says now: nothing here changes the state (a GET never wakes the GPU;
    the page's button sends a ``Request`` of kind ``button``, which does, within the quiet hours and the caps)."""
    now = _aware(now)
    state = _unblock(config, _roll(config, state, now), now)
    boot = math.ceil(config.boot_minutes * 60)
    fast = PAGE_REFRESH_SECONDS
    if state.phase == "ready":
        return Offline("ready", "ready", "The model is ready.", False, 0, fast, 0)
    if state.phase == "starting":
        assert state.session_start is not None
        eta = math.ceil((state.session_start + timedelta(minutes=config.boot_minutes) - now).total_seconds())
        if eta <= 0:
            return Offline("starting", "starting", "The model is starting, ready shortly.", False, fast, fast, 0)
        message = f"The model is starting, ready in {_about(eta)}."
        return Offline("starting", "starting", message, False, min(eta, fast), fast, eta)
    if state.pending_wake_at is not None:  # a wake asked for while it stopped, or within the minimum off time
        refusal = _refusal(config, state, now, "wake")
        if refusal is None:
            start = max(now, state.pending_wake_at)
            if state.phase == "stopping":
                start = max(start, now + timedelta(minutes=config.min_off_minutes))
            eta = math.ceil((start - now).total_seconds()) + boot
            message = f"The model is restarting, ready in {_about(eta)}."
            return Offline(state.phase, "restarting", message, False, fast, fast, eta)
    trigger = "timer" if floor_active(config, now) else "wake"
    refusal = _refusal(config, state, now, trigger)
    if refusal is not None:
        phase = "blocked" if refusal.reason in CAPS else state.phase
        retry = refusal.retry_after if refusal.retry_after is not None else PAGE_REFRESH_REFUSED_SECONDS
        return Offline(phase, refusal.reason, refusal.message, False, retry, PAGE_REFRESH_REFUSED_SECONDS)
    if state.phase == "stopping":
        eta = math.ceil(config.min_off_minutes * 60) + boot
        message = f"The model is stopping (nobody used it for a while); starting it again takes {_about(eta)}."
        return Offline("stopping", "stopping", message, True, fast, fast, eta)
    eta = boot
    if trigger == "wake" and state.last_stop is not None:
        allowed = state.last_stop + timedelta(minutes=config.min_off_minutes)
        if now < allowed:
            eta += math.ceil((allowed - now).total_seconds())
    message = f"The model is off; starting it takes {_about(eta)}."
    return Offline("off", "off", message, True, fast, fast, eta)


# --------------------------------------------------------------------------
# The state as JSON (the entrance's waker keeps it in a file across restarts)
# --------------------------------------------------------------------------

_DATETIME_FIELDS = (
    "session_start",
    "healthy_at",
    "last_request",
    "last_activity",
    "drain_deadline",
    "pending_wake_at",
    "last_stop",
)
_TEXT_FIELDS = {"phase": PHASES, "why": REASONS + CAPS, "trigger": TRIGGERS}
_COUNT_FIELDS = ("in_flight", "open_streams", "wakes_today")
_AMOUNT_FIELDS = ("price", "gpu_seconds_today", "eur_today", "gpu_seconds_month", "eur_month")


def state_to_dict(state: State) -> dict[str, Any]:
    """The state as JSON-ready data: times ISO 8601 with their offset (UTC), the day YYYY-MM-DD."""
    data: dict[str, Any] = {}
    for item in fields(State):
        value = getattr(state, item.name)
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        data[item.name] = value
    return data


def _state_datetime(value: Any, key: str) -> datetime | None:
    if value is None:
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if not isinstance(value, str) or parsed is None or parsed.utcoffset() is None:
        raise PolicyError(f"state {key} must be an ISO 8601 date and time with an offset, or null, got {value!r}")
    return parsed.astimezone(UTC)


def state_from_dict(data: dict[str, Any]) -> State:
    """The state written by ``state_to_dict``. Missing keys take their defaults; unknown keys (a newer version's)
    are ignored; a wrong value is refused naming the key."""
    if not isinstance(data, dict):
        raise PolicyError(f"the state must be a mapping, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for key in _DATETIME_FIELDS:
        if key in data:
            values[key] = _state_datetime(data[key], key)
    for key, allowed in _TEXT_FIELDS.items():
        if key in data:
            value = data[key]
            if not (value in allowed or (value is None and key != "phase")):
                expected = ", ".join(allowed) + ("" if key == "phase" else " or null")
                raise PolicyError(f"state {key} must be one of {expected}, got {value!r}")
            values[key] = value
    for key in _COUNT_FIELDS:
        if key in data:
            values[key] = int(_number(data[key], f"state {key}", 0, integer=True))
    for key in _AMOUNT_FIELDS:
        if key in data:
            values[key] = float(_number(data[key], f"state {key}", 0))
    if "destroy_sent" in data:
        if not isinstance(data["destroy_sent"], bool):
            raise PolicyError(f"state destroy_sent must be true or false, got {data['destroy_sent']!r}")
        values["destroy_sent"] = data["destroy_sent"]
    if data.get("day") is not None:
        try:
            values["day"] = date.fromisoformat(str(data["day"]))
        except ValueError as exc:
            raise PolicyError(f"state day must be a date YYYY-MM-DD or null, got {data['day']!r}") from exc
    if data.get("month") is not None:
        if not re.match(r"^[0-9]{4}-(0[1-9]|1[0-2])$", str(data["month"])):
            raise PolicyError(f"state month must be YYYY-MM or null, got {data['month']!r}")
        values["month"] = str(data["month"])
    return State(**values)


# --------------------------------------------------------------------------
# The reaper: tagged servers the scheduler does not know, or too old
# --------------------------------------------------------------------------

REAP_REASONS = ("unknown_name", "no_session", "session_cap")


def _created(server: dict[str, Any]) -> datetime | None:
    value = server.get("creation_date")
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def reap_plan(
    servers: list[dict[str, Any]],
    *,
    gpu_name: str,
    session_cap_hours: float,
    session_known: bool,
    now: datetime,
) -> dict[str, list[dict[str, Any]]]:
    """Which of the servers carrying the GPU tags to destroy, and why (the reaper's decision).

    ``servers``: the instances with the GPU tags, as ``scaleway_instance_info`` lists them (``name``, ``zone``,
    ``id``, ``creation_date``). ``session_known``: the scheduler has a session that owns a server named
    ``gpu_name`` now (on demand: the waker is starting, ready or stopping; scheduled: inside the window).

    A server is destroyed when its name is not ``gpu_name`` (the scheduler never creates it), when it has
    existed for ``session_cap_hours`` or more (whoever made it), or when it is named ``gpu_name`` and no
    session owns it. The rest is kept. Returns ``{"destroy": [...], "keep": [...]}``, each entry the server's
    name, zone, id, age in hours (None when the API gave no creation date), and for ``destroy`` the reason
    (one of ``REAP_REASONS``) and a sentence for the log."""
    now = _aware(now)
    if session_cap_hours <= 0:
        raise PolicyError(f"session_cap_hours must be above 0, got {session_cap_hours!r}")
    plan: dict[str, list[dict[str, Any]]] = {"destroy": [], "keep": []}
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("name"), str) or not server["name"]:
            raise PolicyError(f"each server must be an object with a name, got {server!r}")
        created = _created(server)
        age = None if created is None else round((now - created).total_seconds() / 3600, 2)
        entry = {"name": server["name"], "zone": server.get("zone"), "id": server.get("id"), "age_hours": age}
        if server["name"] != gpu_name:
            reason = "unknown_name"
            message = f"carries the GPU tags but is not named {gpu_name}: the scheduler did not create it"
        elif age is not None and age >= session_cap_hours:
            reason = "session_cap"
            message = f"has existed for {age:g} h, the session cap is {session_cap_hours:g} h"
        elif not session_known:
            reason = "no_session"
            message = "no session of the scheduler owns it (the GPU is off)"
        else:
            plan["keep"].append(entry)
            continue
        plan["destroy"].append({**entry, "reason": reason, "message": f"{server['name']} {message}"})
    return plan


def from_scheduler_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """The policy's settings from the scheduler role's variables (``scheduler_<key>``); other names are ignored."""
    return {key: variables[f"scheduler_{key}"] for key in DEFAULTS if f"scheduler_{key}" in variables}
