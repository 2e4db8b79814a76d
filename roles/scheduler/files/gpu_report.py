"""gpu_report: what the Parrotpark GPU cost and what it served, for one month (issue 17).

The report engine behind ``parrotpark-gpu report``: it reads the GPU session
ledger (a JSON list of sessions, or the waker's own gpu-sessions.jsonl, one
event a line), the usage per day, model and user (CSV) and a price
table (YAML), and writes DIR/report.html (plots embedded), DIR/report.json,
DIR/report.csv (one row per day) and the plots as PNG files. docs/cost-report.md
describes the formats, the arithmetic and the price table.

  parrotpark_gpu.py report --ledger LEDGER.json --usage USAGE.csv [--prices PRICES.yml] --out DIR
                           [--month YYYY-MM] [--timezone Europe/Paris] [--schedule SCHEDULE.yml]

Money is computed with decimal.Decimal and rounded to the cent (ROUND_HALF_UP)
only where a figure is shown; tokens are exact integers. GPU time is billed per
minute from ``started`` to ``stopped``, rounded up to the whole minute per
session; a minute counts for the day (and the month) in which it begins.
Everything is read and checked before anything is written; the files are made
in a temporary folder and moved into DIR at the end, so bad input leaves no
partial report. Needs PyYAML; matplotlib (Agg) only to draw the plots.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, this file runs on 3.9
CENT = Decimal("0.01")
MILLION = Decimal(1_000_000)
MINUTE_US = 60_000_000
DEFAULT_TIMEZONE = "Europe/Paris"
DEFAULT_PRICES = Path(__file__).resolve().with_name("hosted_prices.yml")
LEDGER_FIELDS = (
    "instance",
    "commercial_type",
    "zone",
    "hourly_price_eur",
    "started",
    "healthy",
    "stopped",
    "started_by",
)
# The waker's ledger (gpu_waker.Waker._record): one JSON object a line, one line per session event.
EVENT_FIELDS = ("session", "event", "at", "trigger", "hourly_price_eur")
EVENT_OPTIONAL = ("reason", "commercial_type", "zone")
EVENTS = ("created", "healthy", "idle", "boot_failed", "destroyed")
WAKER_INSTANCE = "parrotpark-gpu"
USAGE_FIELDS = ("day", "model", "user", "prompt_tokens", "completion_tokens", "served_by")
# Who started a session: the schedule's timer is the floor, a user's request (wake) or an operator (manual) is demand.
STARTERS = {"timer": "floor", "wake": "on_demand", "manual": "on_demand"}
UNITS = ("hour", "month", "GB-month")
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
WHOLE = re.compile(r"^[+-]?\d+$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
TOP = 10
FILES = {
    "html": "report.html",
    "json": "report.json",
    "csv": "report.csv",
    "gpu_plot": "gpu_hours_per_day.png",
    "tokens_plot": "tokens_per_day.png",
    "cost_plot": "costs.png",
}
CSV_COLUMNS = (
    "day",
    "gpu_minutes_floor",
    "gpu_minutes_on_demand",
    "gpu_hours_floor",
    "gpu_hours_on_demand",
    "gpu_eur",
    "cold_starts",
    "local_prompt_tokens",
    "local_completion_tokens",
    "fallback_prompt_tokens",
    "fallback_completion_tokens",
)


class ReportError(Exception):
    """Bad input: the message names the file, the row and the field, and what is expected."""

    def __init__(self, path: str | Path, where: str, field: str | None, message: str):
        self.path, self.where, self.field = str(path), where, field
        place = ", ".join(part for part in (where, f"field {field!r}" if field else "") if part)
        super().__init__(f"{path}: {place}: {message}" if place else f"{path}: {message}")


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    row: int  # the row of LEDGER.json, or the line of the session's first event in the waker's ledger
    instance: str
    commercial_type: str | None  # None: the waker's ledger does not say (a session that never became healthy)
    zone: str | None
    price: Decimal  # EUR per hour
    started: datetime  # UTC
    healthy: datetime | None
    stopped: datetime | None  # None: still running
    started_by: str
    where: str = ""  # how the notes name it; default "ledger row N"
    note: str | None = None  # something the report must say about this session (a stop inferred)

    @property
    def kind(self) -> str:
        return STARTERS[self.started_by]

    @property
    def place(self) -> str:
        return self.where or f"ledger row {self.row}"

    def billed_minutes(self, until: datetime) -> int:
        """Minutes billed from the start to the stop (or ``until`` while running), rounded up."""
        end = self.stopped or until
        return max(0, _ceil_div(_microseconds(end - self.started), MINUTE_US))

    def minutes_within(self, billed: int, low: datetime, high: datetime) -> int:
        """How many of the ``billed`` minutes begin in [low, high): minute k begins at started + k minutes."""
        first = max(0, _ceil_div(_microseconds(low - self.started), MINUTE_US))
        last = min(billed, _ceil_div(_microseconds(high - self.started), MINUTE_US))
        return max(0, last - first)


@dataclass(frozen=True)
class Usage:
    line: int
    day: date
    model: str
    user: str
    prompt: int
    completion: int
    served_by: str

    @property
    def local(self) -> bool:
        return self.served_by == "local"


@dataclass(frozen=True)
class Offer:
    id: str
    provider: str
    model: str
    currency: str
    input_per_million: Decimal
    output_per_million: Decimal
    per_eur: Decimal  # 1 EUR = per_eur units of the currency (1 for EUR)
    source: str
    date: str

    def eur(self, prompt: int, completion: int) -> Decimal:
        amount = (prompt * self.input_per_million + completion * self.output_per_million) / MILLION
        return amount / self.per_eur


@dataclass(frozen=True)
class FixedItem:
    name: str
    quantity: Decimal
    unit: str
    unit_price_eur: Decimal
    source: str
    date: str

    def eur(self, period_hours: Decimal, month_hours: Decimal) -> tuple[Decimal, Decimal]:
        """(units billed in the period, EUR): per hour for the period's hours, per month pro rata."""
        units = period_hours if self.unit == "hour" else period_hours / month_hours
        return units, self.quantity * self.unit_price_eur * units


@dataclass(frozen=True)
class Prices:
    path: str
    offers: tuple[Offer, ...]
    fixed: tuple[FixedItem, ...]
    rates: dict[str, dict[str, Any]]


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _read_text(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReportError(path, "", None, f"cannot read the {what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReportError(path, "", None, f"the {what} is not UTF-8 text: {exc}") from exc


def _text(value: Any, path: str | Path, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReportError(path, where, field, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _number(value: Any, path: str | Path, where: str, field: str, *, positive: bool = False) -> Decimal:
    expected = "a number above 0" if positive else "a number at least 0"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ReportError(path, where, field, f"must be {expected}, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ReportError(path, where, field, f"must be {expected}, got {value!r}") from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise ReportError(path, where, field, f"must be {expected}, got {value!r}")
    return number


def _one_of(value: Any, allowed: Collection[str], path: str | Path, where: str, field: str) -> str:
    if value not in allowed:
        raise ReportError(path, where, field, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _moment(value: Any, path: str | Path, where: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise ReportError(path, where, field, f"must be an ISO 8601 date and time with an offset, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(
            path,
            where,
            field,
            f"must be an ISO 8601 date and time with an offset (2025-10-01T08:00:00+02:00), got {value!r}",
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ReportError(path, where, field, f"{value!r} has no UTC offset: add one (+02:00, Z)")
    return moment.astimezone(UTC)


def _day(value: Any, path: str | Path, where: str, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ReportError(path, where, field, f"must be a date YYYY-MM-DD, got {value!r}") from None


def load_ledger(path: str | Path) -> list[Session]:
    """The sessions of LEDGER.json (a JSON list of objects), or of the waker's JSON lines, each checked.

    A file named ``*.jsonl``, or whose text begins with ``{`` (a JSON list begins with ``[``), is read as the
    waker's ledger (load_events)."""
    text = _read_text(path, "ledger")
    if Path(path).suffix == ".jsonl" or text.lstrip().startswith("{"):
        return sessions_from_events(load_events(path, text), path)
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ReportError(path, "", None, f"not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ReportError(path, "", None, f"must be a JSON list of sessions, got {type(data).__name__}")
    return [_session(item, path, number) for number, item in enumerate(data, start=1)]


def _session(item: Any, path: str | Path, number: int) -> Session:
    where = f"row {number} (session {number} of the list)"
    if not isinstance(item, dict):
        raise ReportError(path, where, None, f"must be a JSON object, got {type(item).__name__}")
    for field in LEDGER_FIELDS:
        if field not in item:
            raise ReportError(path, where, field, f"missing; every session has {', '.join(LEDGER_FIELDS)}")
    started_by = _one_of(item["started_by"], STARTERS, path, where, "started_by")
    started = _moment(item["started"], path, where, "started")
    healthy = None if item["healthy"] is None else _moment(item["healthy"], path, where, "healthy")
    stopped = None if item["stopped"] is None else _moment(item["stopped"], path, where, "stopped")
    if stopped is not None and stopped < started:
        raise ReportError(
            path,
            where,
            "stopped",
            f"{item['stopped']} is before started {item['started']}: a session cannot stop before it starts",
        )
    if healthy is not None and healthy < started:
        raise ReportError(path, where, "healthy", f"{item['healthy']} is before started {item['started']}")
    if healthy is not None and stopped is not None and healthy > stopped:
        raise ReportError(
            path, where, "healthy", f"{item['healthy']} is after stopped {item['stopped']} (null if never healthy)"
        )
    return Session(
        row=number,
        instance=_text(item["instance"], path, where, "instance"),
        commercial_type=_text(item["commercial_type"], path, where, "commercial_type"),
        zone=_text(item["zone"], path, where, "zone"),
        price=_number(item["hourly_price_eur"], path, where, "hourly_price_eur"),
        started=started,
        healthy=healthy,
        stopped=stopped,
        started_by=started_by,
    )


@dataclass(frozen=True)
class Event:
    """One line of the waker's ledger gpu-sessions.jsonl."""

    line: int
    session: datetime  # UTC: the session's start (the wake), which names the session
    session_text: str
    event: str
    at: datetime  # UTC
    at_text: str
    trigger: str
    reason: str | None
    commercial_type: str | None
    zone: str | None
    price: Decimal


def load_events(path: str | Path, text: str | None = None) -> list[Event]:
    """The lines of the waker's ledger, each checked (blank lines are skipped)."""
    if text is None:
        text = _read_text(path, "ledger")
    events = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = json.loads(line, parse_float=Decimal)
        except ValueError as exc:
            detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ReportError(
                path,
                where,
                None,
                f"not valid JSON ({detail}): the waker's ledger has one JSON object a line "
                "(a LEDGER.json list begins with '[')",
            ) from None
        events.append(_event(item, path, number))
    return events


def _event(item: Any, path: str | Path, number: int) -> Event:
    where = f"line {number}"
    if not isinstance(item, dict):
        raise ReportError(path, where, None, f"must be a JSON object (one session event), got {type(item).__name__}")
    for field in EVENT_FIELDS:
        if field not in item:
            raise ReportError(
                path,
                where,
                field,
                f"missing; every line of the waker's ledger has {', '.join(EVENT_FIELDS)} "
                f"(and {', '.join(EVENT_OPTIONAL)}, which may be null)",
            )
    event = _one_of(item["event"], EVENTS, path, where, "event")
    trigger = _one_of(item["trigger"], STARTERS, path, where, "trigger")
    session = _moment(item["session"], path, where, "session")
    at = _moment(item["at"], path, where, "at")
    if at < session:
        raise ReportError(
            path, where, "at", f"{item['at']} is before the session's start {item['session']} (field 'session')"
        )
    optional = {}
    for field in EVENT_OPTIONAL:
        value = item.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ReportError(path, where, field, f"must be a non-empty string or null, got {value!r}")
        optional[field] = None if value is None else value.strip()
    return Event(
        line=number,
        session=session,
        session_text=item["session"].strip(),
        event=event,
        at=at,
        at_text=item["at"].strip(),
        trigger=trigger,
        reason=optional["reason"],
        commercial_type=optional["commercial_type"],
        zone=optional["zone"],
        price=_number(item["hourly_price_eur"], path, where, "hourly_price_eur"),
    )


def sessions_from_events(events: list[Event], path: str | Path) -> list[Session]:
    """The sessions of the waker's events, grouped by their ``session`` (its start), in the order they started.

    started is the session's start, healthy the first ``healthy`` event (a restart makes more), stopped the first
    ``destroyed`` (none: still running). The type, zone and price are the first ``healthy`` row's (the server's
    own); without one, the price is the ``created`` row's (else the first row's) and the type and zone those of
    any row that has them, else unknown. A session with no ``destroyed`` that a later session follows cannot
    still run (the waker runs one GPU server at a time): it is billed up to the next start, and a note says so."""
    groups: dict[datetime, list[Event]] = {}
    for event in events:
        groups.setdefault(event.session, []).append(event)
    starts = sorted(groups)
    sessions = []
    for index, start in enumerate(starts):
        group = groups[start]
        first = group[0]
        for event in group[1:]:
            if event.trigger != first.trigger:
                raise ReportError(
                    path,
                    f"line {event.line}",
                    "trigger",
                    f"{event.trigger!r} differs from {first.trigger!r} on line {first.line} of the same session "
                    f"{first.session_text}",
                )
        found = {kind: next((event for event in group if event.event == kind), None) for kind in EVENTS}
        healthy, destroyed, created = found["healthy"], found["destroyed"], found["created"]
        stopped = destroyed.at if destroyed else None
        note = None
        if destroyed is None and index + 1 < len(starts):
            following = groups[starts[index + 1]][0]
            stopped = following.session
            note = (
                f"Session {first.session_text} ({path} line {first.line}) has no 'destroyed' line, yet the next "
                f"session started at {following.session_text} (line {following.line}): billed up to then, "
                "which may be less than what the cloud billed (check the invoice)."
            )
        if healthy is not None and stopped is not None and healthy.at > stopped:
            ended = (
                f"was destroyed at {destroyed.at_text} (line {destroyed.line})"
                if destroyed
                else f"ended, the next one starting at {following.session_text} (line {following.line})"
            )
            raise ReportError(
                path, f"line {healthy.line}", "at", f"healthy at {healthy.at_text}, after the session {ended}"
            )
        described = healthy or next((event for event in group if event.commercial_type or event.zone), None)
        priced = healthy or created or first
        sessions.append(
            Session(
                row=first.line,
                instance=WAKER_INSTANCE,
                commercial_type=described.commercial_type if described else None,
                zone=described.zone if described else None,
                price=priced.price,
                started=start,
                healthy=healthy.at if healthy else None,
                stopped=stopped,
                started_by=first.trigger,
                where=f"ledger line {first.line}, session {first.session_text}",
                note=note,
            )
        )
    return sessions


def load_usage(path: str | Path) -> list[Usage]:
    """The rows of USAGE.csv (header day,model,user,prompt_tokens,completion_tokens,served_by), each checked."""
    text = _read_text(path, "usage file")
    reader = csv.reader(text.splitlines())
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ReportError(path, "line 1", None, f"no header: the first line must be {','.join(USAGE_FIELDS)}") from None
    except csv.Error as exc:
        raise ReportError(path, "line 1", None, f"not CSV: {exc}") from exc
    for field in USAGE_FIELDS:
        if field not in header:
            raise ReportError(
                path, "header (line 1)", field, f"missing column; the header must name {','.join(USAGE_FIELDS)}"
            )
    index = {field: header.index(field) for field in USAGE_FIELDS}
    rows: list[Usage] = []
    try:
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            rows.append(_usage(row, index, path, width=len(header), number=len(rows) + 1, line=reader.line_num))
    except csv.Error as exc:
        raise ReportError(path, f"line {reader.line_num}", None, f"not CSV: {exc}") from exc
    return rows


def _usage(row: list[str], index: dict[str, int], path: str | Path, *, width: int, number: int, line: int) -> Usage:
    where = f"row {number} (line {line})"
    if len(row) != width:
        raise ReportError(path, where, None, f"has {len(row)} fields, the header has {width}")
    cells = {field: row[position].strip() for field, position in index.items()}
    tokens = {}
    for field in ("prompt_tokens", "completion_tokens"):
        value = cells[field]
        if not WHOLE.match(value):
            raise ReportError(path, where, field, f"must be a whole number of tokens at least 0, got {value!r}")
        tokens[field] = int(value)
        if tokens[field] < 0:
            raise ReportError(path, where, field, f"negative token count {value}: must be a whole number at least 0")
    return Usage(
        line=line,
        day=_day(cells["day"], path, where, "day"),
        model=_text(cells["model"], path, where, "model"),
        user=cells["user"],
        prompt=tokens["prompt_tokens"],
        completion=tokens["completion_tokens"],
        served_by=_text(cells["served_by"], path, where, "served_by"),
    )


def _yaml(path: str | Path, what: str) -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML is in the role's and the developers' environments
        raise ReportError(path, "", None, "reading it needs PyYAML (python3-yaml)") from exc
    text = _read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReportError(path, "", None, f"not valid YAML: {exc}") from exc


def _dated(item: dict[str, Any], path: str | Path, where: str) -> tuple[str, str]:
    source = _text(item.get("source"), path, where, "source")
    return source, _day(item.get("date"), path, where, "date").isoformat()


def load_prices(path: str | Path) -> Prices:
    """The price table: hosted offers, currency rates, unit prices and the fixed monthly items."""
    data = _yaml(path, "price table")
    if not isinstance(data, dict):
        raise ReportError(
            path, "", None, "must be a YAML mapping with hosted, currency_rates, unit_prices, fixed_monthly"
        )
    rates = _rates(data.get("currency_rates") or {}, path)
    offers = data.get("hosted")
    if not isinstance(offers, list):
        raise ReportError(path, "", "hosted", f"must be a list of offers, got {offers!r}")
    parsed = tuple(_offer(item, path, number, rates) for number, item in enumerate(offers, start=1))
    ids = [offer.id for offer in parsed]
    for number, offer in enumerate(parsed, start=1):
        if ids.count(offer.id) > 1:
            raise ReportError(path, f"hosted row {number}", "id", f"{offer.id!r} names two offers")
    unit_prices = _unit_prices(data.get("unit_prices") or {}, path)
    items = data.get("fixed_monthly") or []
    if not isinstance(items, list):
        raise ReportError(path, "", "fixed_monthly", f"must be a list (may be empty), got {items!r}")
    fixed = tuple(_fixed(item, path, number, unit_prices) for number, item in enumerate(items, start=1))
    return Prices(str(path), parsed, fixed, rates)


def _rates(data: Any, path: str | Path) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise ReportError(
            path, "", "currency_rates", f"must be a mapping CURRENCY: {{per_eur, source, date}}, got {data!r}"
        )
    rates: dict[str, dict[str, Any]] = {}
    for code, item in data.items():
        where = f"currency_rates {code}"
        if not isinstance(code, str) or not CURRENCY.match(code):
            raise ReportError(path, where, None, "the currency must be a three-letter code (USD)")
        if not isinstance(item, dict):
            raise ReportError(path, where, None, f"must be a mapping with per_eur, source, date, got {item!r}")
        source, day = _dated(item, path, where)
        rates[code] = {
            "per_eur": _number(item.get("per_eur"), path, where, "per_eur", positive=True),
            "source": source,
            "date": day,
        }
    return rates


def _offer(item: Any, path: str | Path, number: int, rates: dict[str, dict[str, Any]]) -> Offer:
    where = f"hosted row {number}"
    if not isinstance(item, dict):
        raise ReportError(path, where, None, f"must be a mapping, got {item!r}")
    provider = _text(item.get("provider"), path, where, "provider")
    model = _text(item.get("model"), path, where, "model")
    currency = item.get("currency")
    if currency == "EUR":
        per_eur = Decimal(1)
    elif isinstance(currency, str) and currency in rates:
        per_eur = rates[currency]["per_eur"]
    else:
        known = ", ".join(["EUR", *sorted(rates)])
        raise ReportError(
            path,
            where,
            "currency",
            f"unknown currency {currency!r}: not EUR and no rate under currency_rates ({known})",
        )
    source, day = _dated(item, path, where)
    offer_id = item.get("id", f"{provider} {model}")
    return Offer(
        id=_text(offer_id, path, where, "id"),
        provider=provider,
        model=model,
        currency=currency,
        input_per_million=_number(item.get("input_per_million"), path, where, "input_per_million"),
        output_per_million=_number(item.get("output_per_million"), path, where, "output_per_million"),
        per_eur=per_eur,
        source=source,
        date=day,
    )


def _unit_prices(data: Any, path: str | Path) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise ReportError(path, "", "unit_prices", f"must be a mapping NAME: {{unit, eur, source, date}}, got {data!r}")
    prices = {}
    for name, item in data.items():
        where = f"unit_prices {name}"
        if not isinstance(item, dict):
            raise ReportError(path, where, None, f"must be a mapping with unit, eur, source, date, got {item!r}")
        prices[str(name)] = _unit_price(item, path, where)
    return prices


def _unit_price(item: dict[str, Any], path: str | Path, where: str) -> dict[str, Any]:
    unit = _one_of(item.get("unit"), UNITS, path, where, "unit")
    source, day = _dated(item, path, where)
    return {"unit": unit, "eur": _number(item.get("eur"), path, where, "eur"), "source": source, "date": day}


def _fixed(item: Any, path: str | Path, number: int, unit_prices: dict[str, dict[str, Any]]) -> FixedItem:
    where = f"fixed_monthly row {number}"
    if not isinstance(item, dict):
        raise ReportError(path, where, None, f"must be a mapping, got {item!r}")
    name = _text(item.get("name"), path, where, "name")
    quantity = _number(item.get("quantity"), path, where, "quantity")
    if "price" in item:
        price = unit_prices.get(str(item["price"]))
        if price is None:
            known = ", ".join(sorted(unit_prices)) or "none"
            raise ReportError(path, where, "price", f"{item['price']!r} is not under unit_prices (known: {known})")
    else:
        price = _unit_price(item, path, where)
    return FixedItem(name, quantity, price["unit"], price["eur"], price["source"], price["date"])


@dataclass(frozen=True)
class ScheduleWindows:
    """The schedule's working windows (the scheduler's own rules), and the price they would be billed at."""

    path: str
    schedule: Any  # parrotpark_gpu.Schedule
    price: Decimal | None


def load_schedule(path: str | Path, zone_name: str) -> ScheduleWindows:
    """A schedule in the scheduler's format (the installed schedule.json works too), read as YAML.

    ``time_zone`` defaults to the report's, ``retry_minutes`` is not needed; ``hourly_price_eur`` (optional)
    prices the windows, else the latest session's price does."""
    from parrotpark_gpu import Schedule, ScheduleError  # the scheduler's own rules, beside this file

    data = _yaml(path, "schedule")
    if not isinstance(data, dict):
        raise ReportError(path, "", None, "must be a mapping with days, up_time, down_time (and time_zone, holidays)")
    fields = dict(data)
    fields.setdefault("time_zone", zone_name)
    fields.setdefault("retry_minutes", 15)
    fields["holidays"] = [str(day) for day in fields.get("holidays") or []]
    try:
        schedule = Schedule.from_dict(fields)
    except ScheduleError as exc:
        raise ReportError(path, "", None, str(exc)) from exc
    price = data.get("hourly_price_eur")
    return ScheduleWindows(str(path), schedule, None if price is None else _number(price, path, "", "hourly_price_eur"))


# --------------------------------------------------------------------------
# Usage from PostgreSQL: the metrics database that Telegraf writes
# --------------------------------------------------------------------------

# LiteLLM's token counters as Telegraf stores them (inputs.prometheus, metric_version 1: one table per metric,
# named as the sample, the value in `counter`, or in `value` when the family is untyped); the first name that
# exists is read. The names changed between LiteLLM releases, hence the candidates.
LITELLM_TABLES = {
    "prompt": ("litellm_input_tokens_metric_total", "litellm_input_tokens_total"),
    "completion": ("litellm_output_tokens_metric_total", "litellm_output_tokens_total"),
}
# vLLM's own counters: all tokens the GPU served, without user (read when LiteLLM's are not in the database).
VLLM_TABLES = {"prompt": ("vllm:prompt_tokens_total",), "completion": ("vllm:generation_tokens_total",)}
# The increase of a counter in the month needs its last sample before the month: samples from this many days
# before the month are read too (a series first seen inside the month counts from zero).
LOOKBACK_DAYS = 7
DATABASE_COLUMNS = ("kind", "day", "requested_model", "model", "end_user", "user", "tokens")
DATABASE_TIMEOUT = 300


@dataclass(frozen=True)
class Database:
    """How to ask the metrics database: ``command`` runs psql reading SQL on stdin and printing CSV
    (``docker exec -i parrotpark-postgres psql ... --csv``); requests whose requested model or model is one of
    ``fallback_models`` were served by the fallback ``fallback_name``."""

    command: tuple[str, ...]
    fallback_name: str = "parrotpark-fallback"
    fallback_models: tuple[str, ...] = ()
    schema: str = "public"  # telegraf_postgresql_schema


@dataclass(frozen=True)
class UsageFromDatabase:
    """The usage read from PostgreSQL (or why it could not be): the report's usage instead of a file."""

    rows: tuple[Usage, ...]
    source: str
    available: bool
    notes: tuple[str, ...] = ()


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_name(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def tables_sql(names: Iterable[str], schema: str = "public") -> str:
    """The query for which of the token tables exist in the schema."""
    listed = ", ".join(_sql_text(name) for name in names)
    return f"SELECT tablename FROM pg_tables WHERE schemaname = {_sql_text(schema)} AND tablename IN ({listed});\n"


def usage_sql(tables: dict[str, str], start: datetime, end: datetime, zone_name: str, schema: str = "public") -> str:
    """Tokens per day (in ``zone_name``), kind (prompt, completion), requested model, model, end user and user,
    from the counters in ``tables`` (kind -> table), for [start, end).

    A series is one set of labels (every column but time and the value, as JSON). Its increase over a sample is
    the difference to the previous sample, or the sample itself after a reset (the value went down: the exporter
    restarted) or when there is no previous one (the series began)."""
    lower = (start - timedelta(days=LOOKBACK_DAYS)).isoformat()
    parts = []
    for kind, table in sorted(tables.items()):
        parts.append(
            f"""SELECT {_sql_text(kind)} AS kind, day, requested_model, model, end_user, "user",
       round(sum(increase))::bigint AS tokens
FROM (
  SELECT to_char(time AT TIME ZONE {_sql_text(zone_name)}, 'YYYY-MM-DD') AS day,
         coalesce(series->>'requested_model', series->>'model_name', '') AS requested_model,
         coalesce(series->>'model', series->>'model_name', '') AS model,
         coalesce(series->>'end_user', '') AS end_user,
         coalesce(series->>'user', '') AS "user",
         CASE WHEN previous IS NULL OR reading < previous THEN reading ELSE reading - previous END AS increase
  FROM (
    SELECT time, series, reading, lag(reading) OVER (PARTITION BY series ORDER BY time) AS previous
    FROM (
      SELECT time, to_jsonb(t) - 'time' - 'counter' - 'value' AS series,
             coalesce(to_jsonb(t)->>'counter', to_jsonb(t)->>'value')::double precision AS reading
      FROM {_sql_name(schema)}.{_sql_name(table)} AS t
      WHERE time >= {_sql_text(lower)}::timestamptz AND time < {_sql_text(end.isoformat())}::timestamptz
    ) AS samples
    WHERE reading IS NOT NULL
  ) AS ordered
  WHERE time >= {_sql_text(start.isoformat())}::timestamptz
) AS increases
GROUP BY day, requested_model, model, end_user, "user"
HAVING round(sum(increase)) > 0"""
        )
    return "\nUNION ALL\n".join(parts) + "\nORDER BY 2, 1, 3, 4, 5, 6;\n"


def _fallback_served(database: Database, requested: str, model: str) -> bool:
    names = set(database.fallback_models) | {database.fallback_name}
    bare = model.split("/", 1)[1] if "/" in model else model
    return requested in names or model in names or bare in {name.split("/", 1)[-1] for name in names}


def parse_usage_rows(text: str, database: Database, where: str = "PostgreSQL") -> list[Usage]:
    """The usage rows of the CSV that ``usage_sql`` makes psql print: prompt and completion tokens merged per day,
    model, user and who served them. The model is the requested model (the name users chose), else the model;
    the user the end user (LibreChat's user header), else LiteLLM's user of the key."""
    reader = csv.reader(text.splitlines())
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ReportError(where, "", None, f"no header: psql must print {','.join(DATABASE_COLUMNS)}") from None
    for field in DATABASE_COLUMNS:
        if field not in header:
            raise ReportError(where, "header (line 1)", field, f"missing column; expected {','.join(DATABASE_COLUMNS)}")
    index = {field: header.index(field) for field in DATABASE_COLUMNS}
    merged: dict[tuple[date, str, str, str], dict[str, int]] = {}
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        place = f"line {line}"
        if len(row) != len(header):
            raise ReportError(where, place, None, f"has {len(row)} fields, the header has {len(header)}")
        cells = {field: row[position].strip() for field, position in index.items()}
        if cells["kind"] not in ("prompt", "completion"):
            raise ReportError(where, place, "kind", f"must be prompt or completion, got {cells['kind']!r}")
        if not WHOLE.match(cells["tokens"]) or int(cells["tokens"]) < 0:
            raise ReportError(where, place, "tokens", f"must be a whole number at least 0, got {cells['tokens']!r}")
        day = _day(cells["day"], where, place, "day")
        model = cells["requested_model"] or cells["model"] or "(unknown)"
        user = cells["end_user"] or cells["user"]
        served = (
            database.fallback_name if _fallback_served(database, cells["requested_model"], cells["model"]) else "local"
        )
        counts = merged.setdefault((day, model, user, served), {"prompt": 0, "completion": 0})
        counts[cells["kind"]] += int(cells["tokens"])
    return [
        Usage(
            line=number,
            day=day,
            model=model,
            user=user,
            prompt=counts["prompt"],
            completion=counts["completion"],
            served_by=served,
        )
        for number, ((day, model, user, served), counts) in enumerate(sorted(merged.items()), start=1)
    ]


def _psql(database: Database, sql: str) -> str:
    """psql's output; UsageUnavailable with what went wrong."""
    try:
        done = subprocess.run(
            list(database.command),
            input=sql,
            capture_output=True,
            text=True,
            timeout=DATABASE_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise UsageUnavailable(f"{database.command[0]} is not installed ({exc.strerror})") from exc
    except subprocess.TimeoutExpired as exc:
        raise UsageUnavailable(f"the query did not answer within {DATABASE_TIMEOUT} s") from exc
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[-500:] or f"exit status {done.returncode}"
        raise UsageUnavailable(detail)
    return done.stdout


class UsageUnavailable(Exception):
    """The metrics database could not be read (the reason, without secrets)."""


def usage_from_database(database: Database, start: datetime, end: datetime, zone_name: str) -> UsageFromDatabase:
    """The month's usage from LiteLLM's token counters, else vLLM's; never raises for a database that does not
    answer: the report then says the usage is unavailable and still prices the GPU."""
    try:
        candidates = [name for names in (*LITELLM_TABLES.values(), *VLLM_TABLES.values()) for name in names]
        found = {
            line.strip()
            for line in _psql(database, tables_sql(candidates, database.schema)).splitlines()[1:]
            if line.strip()
        }
        results = {}
        for family, tables in (("LiteLLM", LITELLM_TABLES), ("vLLM", VLLM_TABLES)):
            chosen = {kind: next((name for name in names if name in found), None) for kind, names in tables.items()}
            if None in chosen.values():
                continue
            picked = {kind: str(name) for kind, name in chosen.items()}
            rows = parse_usage_rows(
                _psql(database, usage_sql(picked, start, end, zone_name, database.schema)), database
            )
            results[family] = (tuple(rows), f"PostgreSQL metrics database, tables {', '.join(sorted(picked.values()))}")
            if rows:
                break
    except UsageUnavailable as exc:
        return UsageFromDatabase(
            (),
            "PostgreSQL metrics database",
            False,
            (
                f"Usage unavailable: the metrics database could not be read ({exc}); this report shows the GPU "
                "cost only, without tokens (give a usage file with --usage to price the traffic).",
            ),
        )
    except ReportError as exc:
        return UsageFromDatabase(
            (),
            "PostgreSQL metrics database",
            False,
            (f"Usage unavailable: unexpected answer from the metrics database ({exc}); GPU cost only.",),
        )
    litellm, vllm = results.get("LiteLLM"), results.get("vLLM")
    if litellm and (litellm[0] or not vllm or not vllm[0]):
        return UsageFromDatabase(litellm[0], litellm[1], True)
    if vllm:
        why = "hold no tokens for this month" if litellm else "are not in the metrics database"
        return UsageFromDatabase(
            vllm[0],
            vllm[1],
            True,
            (
                f"Tokens come from vLLM's own counters: LiteLLM's token counters {why}, so users and what a "
                "fallback served are not known (Telegraf's scrape of LiteLLM's /metrics puts them there).",
            ),
        )
    tables = ", ".join(name for names in (*LITELLM_TABLES.values(), *VLLM_TABLES.values()) for name in names)
    return UsageFromDatabase(
        (),
        "PostgreSQL metrics database",
        False,
        (
            f"Usage unavailable: none of the token counters' tables ({tables}) is in the metrics database; this "
            "report shows the GPU cost only, without tokens.",
        ),
    )


# --------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def hours(minutes: int | Decimal) -> Decimal:
    return (Decimal(minutes) / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def percentile(values: list[int], share: int) -> int | None:
    """Nearest rank: the smallest value with at least ``share`` percent of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share / 100)) - 1]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of ``day`` in ``zone``, in UTC (a day there lasts 23 or 25 hours when the clocks change)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """The report's month in its time zone: [start, end) in UTC, billed up to ``until`` (the end, or now)."""

    month: str
    zone: ZoneInfo
    first: date
    following: date
    now: datetime

    @classmethod
    def of(cls, month: str, zone: ZoneInfo, now: datetime) -> Period:
        match = MONTH.match(month)
        if not match:
            raise ReportError("--month", "", None, f"must be YYYY-MM (2025-10), got {month!r}")
        first = date(int(match.group(1)), int(match.group(2)), 1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return cls(month, zone, first, following, now)

    @property
    def start(self) -> datetime:
        return _midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        return _midnight(self.following, self.zone)

    @property
    def until(self) -> datetime:
        return max(self.start, min(self.end, self.now))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=offset) for offset in range((self.following - self.first).days)]

    def holds(self, day: date) -> bool:
        return self.first <= day < self.following


def _latest_month(sessions: list[Session], usage: list[Usage], zone: ZoneInfo, now: datetime) -> str:
    moments = []
    for session in sessions:
        moments.extend(moment for moment in (session.started, session.healthy, session.stopped) if moment)
        if session.stopped is None:
            moments.append(now)
    latest = max(moments).astimezone(zone).date() if moments else None
    if usage:
        last_day = max(row.day for row in usage)
        latest = last_day if latest is None else max(latest, last_day)
    latest = latest or now.astimezone(zone).date()
    return f"{latest.year:04d}-{latest.month:02d}"


def _mode(sessions: list[Session]) -> str:
    kinds = {session.kind for session in sessions}
    if not kinds:
        return "none"
    if kinds == {"floor"}:
        return "scheduled"
    return "on_demand" if kinds == {"on_demand"} else "hybrid"


def _eur(value: Decimal | None) -> str:
    return "n/a" if value is None else f"€{cents(value):,.2f}"


def zone_of(timezone_name: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            "--timezone", "", None, f"unknown time zone {timezone_name!r}: give an IANA name like Europe/Paris"
        ) from None


def build(
    ledger: str | Path,
    usage: str | Path | UsageFromDatabase,
    prices: str | Path | None = None,
    *,
    month: str | None = None,
    timezone_name: str = DEFAULT_TIMEZONE,
    schedule: str | Path | None = None,
    now: datetime | None = None,
    ledger_optional: bool = False,
) -> dict[str, Any]:
    """Read and check every input, and compute the report of the month (nothing is written).

    ``usage`` is a USAGE.csv, or what usage_from_database read; ``ledger_optional``: a ledger file that does not
    exist is an empty ledger (the installed command's default, before the waker's first session)."""
    zone = zone_of(timezone_name)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    missing_ledger = ledger_optional and not Path(ledger).exists()
    sessions = [] if missing_ledger else load_ledger(ledger)
    from_database = isinstance(usage, UsageFromDatabase)
    rows = list(usage.rows) if isinstance(usage, UsageFromDatabase) else load_usage(usage)
    table = load_prices(prices or DEFAULT_PRICES)
    windows = load_schedule(schedule, timezone_name) if schedule else None
    period = Period.of(month or _latest_month(sessions, rows, zone, now), zone, now)
    report: dict[str, Any] = {
        "month": period.month,
        "timezone": timezone_name,
        "period": {
            "start": period.start.astimezone(zone).isoformat(),
            "end": period.until.astimezone(zone).isoformat(),
            "complete": period.until == period.end,
        },
        "generated_at": now.astimezone(zone).isoformat(timespec="seconds"),
        "inputs": {
            "ledger": str(ledger),
            "usage": usage.source if isinstance(usage, UsageFromDatabase) else str(usage),
            "prices": str(prices or DEFAULT_PRICES),
            "schedule": None if schedule is None else str(schedule),
        },
        "usage_available": usage.available if isinstance(usage, UsageFromDatabase) else True,
        "notes": list(usage.notes) if isinstance(usage, UsageFromDatabase) else [],
    }
    if missing_ledger:
        report["notes"].append(
            f"No GPU session is recorded: the ledger {ledger} does not exist yet (the waker writes it from its first "
            "session, in the on_demand and hybrid modes)."
        )
    gpu = _gpu(report, period, sessions)
    traffic = _traffic(report, period, rows, table)
    fixed = _fixed_costs(report, period, table)
    total_exact = gpu + fixed + traffic["fallback_eur"]
    report["total_eur"] = cents(total_exact)
    tokens = report["tokens"]
    report["eur_per_million_tokens"] = cents(total_exact * MILLION / tokens) if tokens else None
    if not tokens:
        report["notes"].append("No tokens in this month's usage: no cost per million tokens.")
    _daily(report, period, sessions, rows)
    _hosted(report, table, traffic)
    _other_modes(report, period, windows, sessions, fixed + traffic["fallback_eur"])
    _cheapest(report, total_exact)
    _break_even(report, gpu)
    if from_database and not report["usage_available"]:
        report["summary"] = (
            f"Usage from PostgreSQL is unavailable (see the notes): GPU {_eur(report['gpu_eur'])}, total "
            f"{_eur(report['total_eur'])} without the traffic; no comparison with hosted offers is possible."
        )
    return report


def _gpu(report: dict[str, Any], period: Period, sessions: list[Session]) -> Decimal:
    """GPU minutes and EUR of the month (minutes that begin in it), cold starts and wake times."""
    zone, start, end, now = period.zone, period.start, period.end, period.now
    minutes = {"floor": 0, "on_demand": 0}
    eur = Decimal(0)
    wakes: list[int] = []
    cold = never = 0
    involved: list[Session] = []
    details: list[dict[str, Any]] = []
    for session in sessions:
        billed = session.billed_minutes(now)
        inside = session.minutes_within(billed, start, end)
        if inside or start <= session.started < end:
            involved.append(session)
            details.append(
                {
                    "instance": session.instance,
                    "where": session.place,
                    "started_by": session.started_by,
                    "commercial_type": session.commercial_type,
                    "zone": session.zone,
                    "hourly_price_eur": session.price,
                    "started": session.started.astimezone(zone).isoformat(),
                    "healthy": None if session.healthy is None else session.healthy.astimezone(zone).isoformat(),
                    "stopped": None if session.stopped is None else session.stopped.astimezone(zone).isoformat(),
                    "minutes": inside,
                    "eur": cents(inside * session.price / 60),
                }
            )
        minutes[session.kind] += inside
        eur += inside * session.price / 60
        if session.note and inside:
            report["notes"].append(session.note)
        if session.stopped is None and inside:
            until = min(now, end)
            why = "the end of the month" if until == end else "now (the report's time)"
            report["notes"].append(
                f"Session {session.instance} ({session.place}), started "
                f"{session.started.astimezone(zone):%Y-%m-%d %H:%M %Z}, is still running: billed up to {why}, "
                f"{until.astimezone(zone):%Y-%m-%d %H:%M %Z}."
            )
            report.setdefault("running_sessions", []).append(
                {"instance": session.instance, "row": session.row, "billed_until": until.astimezone(zone).isoformat()}
            )
        if session.started_by == "wake" and start <= session.started < end:
            cold += 1
            if session.healthy is not None:
                wakes.append((_microseconds(session.healthy - session.started) + 500_000) // 1_000_000)  # half up
            elif session.stopped is not None:
                never += 1
    total = minutes["floor"] + minutes["on_demand"]
    report.update(
        {
            "mode_as_run": _mode(involved),
            "sessions": len(involved),
            "session_list": details,
            "running_sessions": report.get("running_sessions", []),
            "gpu_minutes": total,
            "gpu_hours": hours(total),
            "gpu_hours_floor": hours(minutes["floor"]),
            "gpu_hours_on_demand": hours(minutes["on_demand"]),
            "gpu_eur": cents(eur),
            "cold_starts": cold,
            "wakes_never_healthy": never,
            "wake_seconds_p50": percentile(wakes, 50),
            "wake_seconds_p95": percentile(wakes, 95),
        }
    )
    return eur


def _traffic(report: dict[str, Any], period: Period, rows: list[Usage], table: Prices) -> dict[str, Any]:
    """Tokens of the month: in total, local and by fallback; what the priced fallbacks cost."""
    local = {"prompt": 0, "completion": 0}
    fallback: dict[str, dict[str, int]] = defaultdict(lambda: {"prompt": 0, "completion": 0})
    for row in rows:
        if not period.holds(row.day):
            continue
        bucket = local if row.local else fallback[row.served_by]
        bucket["prompt"] += row.prompt
        bucket["completion"] += row.completion
    offers = {offer.id: offer for offer in table.offers}
    fallback_eur = Decimal(0)
    unpriced = []
    for name, counts in sorted(fallback.items()):
        offer = offers.get(name)
        if offer is None:
            unpriced.append(name)
            continue
        fallback_eur += offer.eur(counts["prompt"], counts["completion"])
    if unpriced:
        report["notes"].append(
            f"Tokens served by {', '.join(unpriced)} are not priced: no hosted offer in the price table has that id, "
            "so what the fallback cost is not in total_eur."
        )
    prompt = local["prompt"] + sum(counts["prompt"] for counts in fallback.values())
    completion = local["completion"] + sum(counts["completion"] for counts in fallback.values())
    report.update(
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "tokens": prompt + completion,
            "local_tokens": dict(local),
            "fallback_tokens": {
                "prompt": prompt - local["prompt"],
                "completion": completion - local["completion"],
                "by_name": {name: dict(counts) for name, counts in sorted(fallback.items())},
            },
            "fallback_eur": cents(fallback_eur),
            "fallback_unpriced": unpriced,
        }
    )
    _tops(report, [row for row in rows if period.holds(row.day)])
    return {"prompt": prompt, "completion": completion, "fallback_eur": fallback_eur}


def _tops(report: dict[str, Any], rows: list[Usage]) -> None:
    for key, attribute in (("top_users", "user"), ("top_models", "model")):
        totals: dict[str, dict[str, int]] = defaultdict(
            lambda: {"prompt_tokens": 0, "completion_tokens": 0, "local_tokens": 0, "fallback_tokens": 0}
        )
        for row in rows:
            entry = totals[getattr(row, attribute) or "(none)"]
            entry["prompt_tokens"] += row.prompt
            entry["completion_tokens"] += row.completion
            entry["local_tokens" if row.local else "fallback_tokens"] += row.prompt + row.completion
        ranked = sorted(
            totals.items(), key=lambda item: (-(item[1]["prompt_tokens"] + item[1]["completion_tokens"]), item[0])
        )
        report[key] = [
            {attribute: name, "tokens": counts["prompt_tokens"] + counts["completion_tokens"], **counts}
            for name, counts in ranked[:TOP]
        ]


def _fixed_costs(report: dict[str, Any], period: Period, table: Prices) -> Decimal:
    """The fixed items for the period: per hour for its real hours (DST included), per month pro rata."""
    month_hours = Decimal(_microseconds(period.end - period.start)) / 3_600_000_000
    period_hours = Decimal(_microseconds(period.until - period.start)) / 3_600_000_000
    total = Decimal(0)
    items = []
    for item in table.fixed:
        units, eur = item.eur(period_hours, month_hours)
        total += eur
        items.append(
            {
                "name": item.name,
                "quantity": item.quantity,
                "unit": item.unit,
                "unit_price_eur": item.unit_price_eur,
                "units_billed": units.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                "eur": cents(eur),
                "source": item.source,
                "date": item.date,
            }
        )
    if not table.fixed:
        report["notes"].append(
            "No fixed costs are configured (fixed_monthly in the price table): the cache volume and flexible IPs that "
            "bill while the GPU is off are not counted."
        )
    report["fixed"] = items
    report["fixed_eur"] = cents(total)
    report["month_hours"] = month_hours.quantize(CENT)
    return total


def _daily(report: dict[str, Any], period: Period, sessions: list[Session], rows: list[Usage]) -> None:
    """One entry per day of the month: GPU minutes floor / on demand, EUR, cold starts, tokens local / fallback."""
    zone = period.zone
    tokens: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        side = "local" if row.local else "fallback"
        tokens[row.day][f"{side}_prompt_tokens"] += row.prompt
        tokens[row.day][f"{side}_completion_tokens"] += row.completion
    billed = [(session, session.billed_minutes(period.now)) for session in sessions]
    table = []
    for day in period.days:
        low, high = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        minutes = {"floor": 0, "on_demand": 0}
        eur = Decimal(0)
        for session, count in billed:
            inside = session.minutes_within(count, low, high)
            minutes[session.kind] += inside
            eur += inside * session.price / 60
        entry = {
            "day": day.isoformat(),
            "gpu_minutes_floor": minutes["floor"],
            "gpu_minutes_on_demand": minutes["on_demand"],
            "gpu_hours_floor": hours(minutes["floor"]),
            "gpu_hours_on_demand": hours(minutes["on_demand"]),
            "gpu_eur": cents(eur),
            "cold_starts": sum(
                1 for session in sessions if session.started_by == "wake" and low <= session.started < high
            ),
        }
        for column in CSV_COLUMNS[7:]:
            entry[column] = tokens[day][column]
        table.append(entry)
    report["days"] = table


def _hosted(report: dict[str, Any], table: Prices, traffic: dict[str, Any]) -> None:
    entries = []
    for offer in table.offers:
        eur = offer.eur(traffic["prompt"], traffic["completion"])
        entry: dict[str, Any] = {
            "id": offer.id,
            "provider": offer.provider,
            "model": offer.model,
            "currency": offer.currency,
            "input_per_million": offer.input_per_million,
            "output_per_million": offer.output_per_million,
            "source": offer.source,
            "date": offer.date,
            "eur": cents(eur),
            "_exact": eur,
        }
        if offer.currency != "EUR":
            rate = table.rates[offer.currency]
            entry["rate"] = {"per_eur": rate["per_eur"], "source": rate["source"], "date": rate["date"]}
        entries.append(entry)
    report["hosted"] = entries


def _windows(windows: ScheduleWindows, period: Period) -> int:
    """Minutes of the schedule's working windows that fall in the report's period."""
    schedule = windows.schedule
    total = 0
    for day in period.days:
        if not schedule.working_day(day):
            continue
        low = datetime(day.year, day.month, day.day, schedule.up // 60, schedule.up % 60, tzinfo=schedule.zone)
        high = datetime(day.year, day.month, day.day, schedule.down // 60, schedule.down % 60, tzinfo=schedule.zone)
        low, high = max(low.astimezone(UTC), period.start), min(high.astimezone(UTC), period.until)
        if high > low:
            total += _ceil_div(_microseconds(high - low), MINUTE_US)
    return total


def _describe(windows: ScheduleWindows, period: Period) -> str:
    schedule = windows.schedule
    days = ",".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[day] for day in schedule.days)
    text = f"{days} {schedule.up // 60:02d}:{schedule.up % 60:02d}-{schedule.down // 60:02d}:{schedule.down % 60:02d}"
    holidays = sorted(day.isoformat() for day in schedule.holidays if period.holds(day))
    return f"{text} {schedule.zone_name}" + (f", not on {', '.join(holidays)}" if holidays else "")


def _other_modes(
    report: dict[str, Any],
    period: Period,
    windows: ScheduleWindows | None,
    sessions: list[Session],
    same_costs: Decimal,
) -> None:
    """What the other GPU mode would have cost: scheduled from --schedule's windows; on demand never (no request
    times in these inputs)."""
    mode = report["mode_as_run"]
    others: list[dict[str, Any]] = []
    if mode != "scheduled":
        entry: dict[str, Any] = {"mode": "scheduled", "computed": False, "eur": None}
        if windows is None:
            entry["sentence"] = "Scheduled mode is not computed: give its days and hours with --schedule."
        else:
            price = windows.price
            if price is None and sessions:
                price = max(sessions, key=lambda session: session.started).price
            if price is None:
                entry["sentence"] = (
                    "Scheduled mode is not computed: no hourly price (hourly_price_eur in the schedule, or a session)."
                )
            else:
                minutes = _windows(windows, period)
                gpu = minutes * price / 60
                entry.update(
                    {
                        "computed": True,
                        "windows": _describe(windows, period),
                        "gpu_hours": hours(minutes),
                        "hourly_price_eur": price,
                        "gpu_eur": cents(gpu),
                        "eur": cents(gpu + same_costs),
                        "_exact": gpu + same_costs,
                    }
                )
                entry["sentence"] = (
                    f"Scheduled mode would have cost {_eur(gpu + same_costs)} for the windows {entry['windows']}: "
                    f"{entry['gpu_hours']} GPU hours at €{price}/h ({_eur(gpu)}) plus the same fixed and fallback "
                    "costs; whether those windows would have served the same requests is not known from daily totals."
                )
        others.append(entry)
    if mode != "on_demand":
        others.append(
            {
                "mode": "on_demand",
                "computed": False,
                "eur": None,
                "sentence": "On-demand mode is not computed: it depends on when each request came, which daily "
                "totals do not say (bench/on_demand.py replays a request trace through the policy).",
            }
        )
    report["other_modes"] = others
    report["notes"].extend(entry["sentence"] for entry in others if not entry["computed"])


def _cheapest(report: dict[str, Any], total_exact: Decimal) -> None:
    """One plain sentence: which option was cheapest for this month's traffic, and by how much."""
    as_run = "this stack as run"
    options = [(as_run, total_exact)]
    options += [(f"{entry['provider']} {entry['model']}", entry["_exact"]) for entry in report["hosted"]]
    for entry in report["other_modes"]:
        if entry["computed"]:
            options.append(("the scheduled mode", entry["_exact"]))
    ranked = sorted(options, key=lambda option: (cents(option[1]), option[0] != as_run))
    best_label, best = ranked[0]
    report["options"] = [{"option": label, "eur": cents(eur)} for label, eur in ranked]
    if len(ranked) == 1:
        sentence = f"This stack as run cost {_eur(best)}; no other option is priced (the price table has no offers)."
    elif best_label == as_run:
        next_label, following = ranked[1]
        sentence = (
            f"This stack as run was the cheapest option for this month's traffic at {_eur(best)}, "
            f"{_eur(cents(following) - cents(best))} less than the next, {next_label} ({_eur(following)})."
        )
    else:
        sentence = (
            f"{best_label[0].upper()}{best_label[1:]} would have been the cheapest option for this month's traffic "
            f"at {_eur(best)}, {_eur(cents(total_exact) - cents(best))} less than this stack as run "
            f"({_eur(total_exact)})."
        )
    report["cheapest"] = {"option": best_label, "eur": cents(best)}
    report["summary"] = sentence


def _break_even(report: dict[str, Any], gpu: Decimal) -> None:
    """How many tokens a GPU-hour would have had to serve to cost per token what the cheapest hosted offer does."""
    minutes = report["gpu_minutes"]
    tokens = report["tokens"]
    if not minutes or not tokens or not report["hosted"]:
        report["break_even"] = None
        return
    cheapest = min(report["hosted"], key=lambda entry: entry["_exact"])
    offer_eur = cheapest["_exact"]
    gpu_hours = Decimal(minutes) / 60
    local = report["local_tokens"]["prompt"] + report["local_tokens"]["completion"]
    served = (Decimal(local) / gpu_hours).to_integral_value(rounding=ROUND_HALF_UP)
    if offer_eur == 0:
        needed = None
        sentence = f"{cheapest['provider']} {cheapest['model']} would have cost nothing to speak of for this traffic."
    else:
        needed = (gpu / gpu_hours * tokens / offer_eur).to_integral_value(rounding=ROUND_HALF_UP)
        sentence = (
            f"To cost as little per token as {cheapest['provider']} {cheapest['model']}, the GPU would have had to "
            f"serve about {needed:,} tokens per GPU-hour; it served {served:,}."
        )
    report["break_even"] = {
        "offer": cheapest["id"],
        "local_tokens_per_gpu_hour": served,
        "tokens_per_gpu_hour_to_match": needed,
        "sentence": sentence,
    }


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """The report with Decimals as JSON numbers (cents print as 12.34)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if not key.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _csv(report: dict[str, Any]) -> str:
    lines: list[list[Any]] = [list(CSV_COLUMNS)]
    for entry in report["days"]:
        lines.append([str(entry[column]) for column in CSV_COLUMNS])  # Decimals keep their cents: 0.50
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()


def _plots(report: dict[str, Any], folder: Path) -> None:
    """The three PNG plots, drawn with matplotlib's Agg backend (no display, no pyplot state)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels = [entry["day"][8:] for entry in report["days"]]
    positions = list(range(len(labels)))

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    axes = figure.subplots()
    floor = [float(entry["gpu_minutes_floor"]) / 60 for entry in report["days"]]
    demand = [float(entry["gpu_minutes_on_demand"]) / 60 for entry in report["days"]]
    axes.bar(positions, floor, label="floor (timer)", color="#4c72b0")
    axes.bar(positions, demand, bottom=floor, label="on demand (wake, manual)", color="#dd8452")
    _axes(axes, positions, labels, f"GPU hours per day, {report['month']} ({report['timezone']})", "hours")
    figure.savefig(folder / FILES["gpu_plot"], dpi=100)

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    axes = figure.subplots()
    local = [(entry["local_prompt_tokens"] + entry["local_completion_tokens"]) / 1e6 for entry in report["days"]]
    fallback = [
        (entry["fallback_prompt_tokens"] + entry["fallback_completion_tokens"]) / 1e6 for entry in report["days"]
    ]
    axes.bar(positions, local, label="local GPU", color="#55a868")
    axes.bar(positions, fallback, bottom=local, label="fallback", color="#c44e52")
    _axes(axes, positions, labels, f"Tokens per day (prompt + completion), {report['month']}", "million tokens")
    figure.savefig(folder / FILES["tokens_plot"], dpi=100)

    options = list(reversed(report["options"]))
    figure = Figure(figsize=(10, 0.9 + 0.45 * len(options)), layout="constrained")
    axes = figure.subplots()
    colours = ["#dd8452" if option["option"] == "this stack as run" else "#8172b3" for option in options]
    values = [float(option["eur"]) for option in options]
    axes.barh([option["option"] for option in options], values, color=colours)
    for index, value in enumerate(values):
        axes.annotate(f" €{value:,.2f}", (value, index), va="center", fontsize=8)
    axes.set_xlabel("EUR for this month's traffic")
    axes.set_title(f"The same traffic, priced ({report['month']})")
    axes.margins(x=0.15)
    figure.savefig(folder / FILES["cost_plot"], dpi=100)


def _axes(axes: Any, positions: list[int], labels: list[str], title: str, unit: str) -> None:
    axes.set_xticks(positions, labels, fontsize=7)
    axes.set_xlabel("day of the month")
    axes.set_ylabel(unit)
    axes.set_title(title)
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(folder: Path, name: str, alt: str) -> str:
    data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _html(report: dict[str, Any], folder: Path) -> str:
    escape = html.escape
    tokens = report["tokens"]
    totals = [
        (
            "GPU hours",
            f"{report['gpu_hours']} (floor {report['gpu_hours_floor']}, on demand {report['gpu_hours_on_demand']})",
        ),
        ("GPU", _eur(report["gpu_eur"])),
        ("Fixed costs (storage, IPs)", _eur(report["fixed_eur"])),
        ("Fallback (priced)", _eur(report["fallback_eur"])),
        ("Total", _eur(report["total_eur"])),
        ("Tokens", f"{tokens:,} ({report['prompt_tokens']:,} prompt, {report['completion_tokens']:,} completion)"),
        ("Total per million tokens", _eur(report["eur_per_million_tokens"])),
        ("Cold starts (wakes)", f"{report['cold_starts']} ({report['wakes_never_healthy']} never became healthy)"),
        ("Wake time p50 / p95", f"{_seconds(report['wake_seconds_p50'])} / {_seconds(report['wake_seconds_p95'])}"),
    ]
    hosted = [
        (
            entry["provider"],
            entry["model"],
            f"{entry['input_per_million']} / {entry['output_per_million']} {entry['currency']}",
            _eur(entry["eur"]),
            f"{entry['source']}, {entry['date']}{_rate_note(entry)}",
        )
        for entry in report["hosted"]
    ]
    fixed = [
        (
            item["name"],
            f"{item['quantity']} x €{item['unit_price_eur']}/{item['unit']}",
            item["units_billed"],
            _eur(item["eur"]),
            f"{item['source']}, {item['date']}",
        )
        for item in report["fixed"]
    ]
    users = [
        (entry["user"], f"{entry['tokens']:,}", f"{entry['local_tokens']:,}", f"{entry['fallback_tokens']:,}")
        for entry in report["top_users"]
    ]
    models = [
        (entry["model"], f"{entry['tokens']:,}", f"{entry['local_tokens']:,}", f"{entry['fallback_tokens']:,}")
        for entry in report["top_models"]
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Parrotpark GPU report {escape(report['month'])}</title>",
        "<style>body{font-family:sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
        "text-align:left}th{background:#f3f3f3}img{max-width:100%}.summary{font-size:1.15rem;padding:.8rem;"
        "background:#f6f8fa;border-left:4px solid #4c72b0}</style></head><body>",
        f"<h1>What the GPU cost and what it served: {escape(report['month'])}</h1>",
        f"<p>{escape(report['period']['start'])} to {escape(report['period']['end'])} ({escape(report['timezone'])})"
        + ("" if report["period"]["complete"] else ", the month so far")
        + f"; mode as run: {escape(report['mode_as_run'])}; generated {escape(report['generated_at'])}.</p>",
        f'<p class="summary">{escape(report["summary"])}</p>',
        "<h2>Totals</h2>",
        _table(("figure", "this month"), totals),
        "<h2>GPU hours per day</h2>",
        _image(folder, FILES["gpu_plot"], "GPU hours per day, floor and on demand"),
        "<h2>Tokens per day</h2>",
        _image(folder, FILES["tokens_plot"], "Tokens per day, local and fallback"),
        "<h2>The same traffic on a hosted API</h2>",
        _image(folder, FILES["cost_plot"], "The month's traffic priced at each option"),
        _table(("provider", "model", "per million tokens in / out", "this month's traffic", "source, date"), hosted),
    ]
    if report["break_even"]:
        parts.append(f"<p>{escape(report['break_even']['sentence'])}</p>")
    parts.append("<h2>The other GPU mode</h2>")
    parts.extend(f"<p>{escape(entry['sentence'])}</p>" for entry in report["other_modes"])
    parts.append("<h2>Fixed costs</h2>")
    parts.append(
        _table(("item", "price", "units billed", "EUR", "source, date"), fixed) if fixed else "<p>None configured.</p>"
    )
    parts += [
        "<h2>Top users</h2>",
        _table(("user", "tokens", "local", "fallback"), users),
        "<h2>Top models</h2>",
        _table(("model", "tokens", "local", "fallback"), models),
        "<h2>Notes</h2>",
        "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in report["notes"]) + "</ul>",
        f'<p>The same numbers: <a href="{FILES["json"]}">report.json</a>, <a href="{FILES["csv"]}">report.csv</a> '
        "(one row per day). GPU time is billed per minute, rounded up per session; money is rounded to the cent "
        "(half up) from exact sums.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _rate_note(entry: dict[str, Any]) -> str:
    if "rate" not in entry:
        return ""
    rate = entry["rate"]
    return f"; 1 EUR = {rate['per_eur']} {entry['currency']} ({rate['source']}, {rate['date']})"


def _seconds(value: int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value} s ({value // 60} min {value % 60:02d} s)"


def write(report: dict[str, Any], out: str | Path) -> Path:
    """Write the report's files into a temporary folder beside ``out``, then move them into ``out``."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        report["files"] = {key: name for key, name in FILES.items() if key != "json"}
        _plots(report, staging)
        (staging / FILES["csv"]).write_text(_csv(report), encoding="utf-8")
        (staging / FILES["json"]).write_text(
            json.dumps(_plain(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (staging / FILES["html"]).write_text(_html(report, staging), encoding="utf-8")
        for path in staging.iterdir():
            path.chmod(0o644)
        if not target.exists():
            staging.chmod(0o755)
            os.replace(staging, target)
            return target
        for name in FILES.values():
            os.replace(staging / name, target / name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


MONTH_FOLDER = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
INDEX = "index.html"


def write_index(folder: str | Path) -> Path:
    """Write ``index.html`` in the reports directory: every month folder that holds a ``report.json``, newest first,
    with its total, tokens, euros per million tokens and the one-sentence verdict, linked to its pages. The web
    page of the reports (the reports role) opens on it. Replaced atomically; folders without a report are left
    out, a report.json that cannot be read is listed as such."""
    root = Path(folder)
    rows = []
    for month_dir in sorted((path for path in root.iterdir() if path.is_dir()), reverse=True):
        if not MONTH_FOLDER.fullmatch(month_dir.name) or not (month_dir / FILES["json"]).is_file():
            continue
        month = html.escape(month_dir.name)
        links = " ".join(
            f'<a href="{month}/{name}">{label}</a>'
            for label, name in (("page", FILES["html"]), ("JSON", FILES["json"]), ("CSV", FILES["csv"]))
        )
        try:
            report = json.loads((month_dir / FILES["json"]).read_text(encoding="utf-8"))
            cells = [
                _eur(Decimal(str(report["total_eur"]))),
                f"{int(report['prompt_tokens']) + int(report['completion_tokens']):,}",
                _eur(
                    None if report["eur_per_million_tokens"] is None else Decimal(str(report["eur_per_million_tokens"]))
                ),
                html.escape(str(report.get("summary", ""))),
            ]
        except (OSError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
            cells = ["", "", "", html.escape(f"report.json cannot be read: {exc}")]
        rows.append(
            f'<tr><td><a href="{month}/{FILES["html"]}">{month}</a></td>'
            + "".join(f"<td>{cell}</td>" for cell in cells)
            + f"<td>{links}</td></tr>"
        )
    body = (
        "<table><tr><th>month</th><th>total</th><th>tokens</th><th>per million tokens</th><th>verdict</th>"
        "<th>files</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p>No report yet: the timer writes one every week and month, "
        "<code>parrotpark-gpu report</code> at once.</p>"
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>GPU cost and usage reports</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;"
        "vertical-align:top}th{background:#f3f3f3}</style></head><body><h1>GPU cost and usage reports</h1>"
        f"{body}</body></html>\n"
    )
    from parrotpark_gpu import write_atomically  # the scheduler's own atomic write, beside this file

    write_atomically(root / INDEX, page, 0o644)
    return root / INDEX


def run(
    ledger: str,
    usage: str | UsageFromDatabase,
    prices: str | None,
    out: str,
    *,
    month: str | None = None,
    timezone_name: str = DEFAULT_TIMEZONE,
    schedule: str | None = None,
    now: datetime | None = None,
    ledger_optional: bool = False,
) -> int:
    """The report command: 0 written, 2 bad input (nothing written), 1 the report could not be written."""
    try:
        report = build(
            ledger,
            usage,
            prices,
            month=month,
            timezone_name=timezone_name,
            schedule=schedule,
            now=now,
            ledger_optional=ledger_optional,
        )
    except ReportError as exc:
        print(f"parrotpark-gpu report: {exc}", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401 - checked before anything is written
    except ImportError:
        print(
            "parrotpark-gpu report: the plots need matplotlib (pip install matplotlib); nothing written",
            file=sys.stderr,
        )
        return 1
    try:
        target = write(report, out)
    except OSError as exc:
        print(f"parrotpark-gpu report: cannot write the report into {out}: {exc}", file=sys.stderr)
        return 1
    print(f"parrotpark-gpu report: {report['month']} written to {target}: {report['summary']}")
    return 0


# --------------------------------------------------------------------------
# On the entrance: the installed command's defaults, and the timer's run
# --------------------------------------------------------------------------


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def timer_months(now: datetime, zone: ZoneInfo) -> list[str]:
    """The months the timer writes: this month, and on its first day the month before (then complete) first."""
    local = now.astimezone(zone)
    months = [month_of(now, zone)]
    if local.day == 1:
        months.insert(0, month_of(_midnight(local.date(), zone) - timedelta(days=1), zone))
    return months


def database_of(settings: dict[str, Any]) -> Database | None:
    """The metrics database of the installed command's settings (``report.psql``), if any."""
    conf = settings.get("report") or {}
    command = conf.get("psql") or []
    if not command:
        return None
    fallback = conf.get("fallback") or {}
    return Database(
        tuple(str(part) for part in command),
        str(fallback.get("name") or "parrotpark-fallback"),
        tuple(str(model) for model in fallback.get("models") or ()),
    )


def run_installed(settings: dict[str, Any], args: Any, now: datetime | None = None) -> int:
    """``parrotpark-gpu report`` with the installation's defaults (settings from /usr/local/bin/parrotpark-gpu):
    the waker's ledger in the state directory, the installed price table and schedule, the usage from the
    metrics database (a file given with --usage wins), the report into --out or REPORT_DIR/YYYY-MM.
    ``--timer``: this month's report into REPORT_DIR/YYYY-MM, and on the first day of a month the previous one's."""
    conf = settings.get("report") or {}
    timezone_name = args.timezone or conf.get("timezone") or DEFAULT_TIMEZONE
    try:
        zone = zone_of(timezone_name)
        if args.month:
            Period.of(args.month, zone, datetime.now(UTC))
    except ReportError as exc:
        print(f"parrotpark-gpu report: {exc}", file=sys.stderr)
        return 2
    now = (now or datetime.now(UTC)).astimezone(UTC)
    ledger_given = bool(args.ledger)
    ledger = args.ledger or str(Path(settings.get("state_dir") or ".") / "gpu-sessions.jsonl")
    prices = args.prices or (conf.get("prices") if conf.get("prices") and Path(conf["prices"]).is_file() else None)
    schedule = args.report_schedule
    if schedule is None and conf and settings.get("schedule") and Path(settings["schedule"]).is_file():
        schedule = settings["schedule"]
    database = None if args.usage else database_of(settings)
    if not args.usage and database is None:
        print(
            "parrotpark-gpu report: --usage USAGE.csv is required (no metrics database is configured)", file=sys.stderr
        )
        return 2
    out_root = conf.get("out_dir")
    if args.timer:
        if not out_root:
            print("parrotpark-gpu report: --timer needs the report directory of the installation", file=sys.stderr)
            return 2
        months = timer_months(now, zone)
    else:
        if not args.out and not out_root:
            print("parrotpark-gpu report: --out DIR is required", file=sys.stderr)
            return 2
        months = [args.month or month_of(now, zone)] if database is not None or not args.out else [args.month]
    status = 0
    for month in months:
        out = args.out if (args.out and not args.timer) else str(Path(out_root) / str(month))
        usage: str | UsageFromDatabase
        if database is not None:
            period = Period.of(str(month), zone, now)
            usage = usage_from_database(database, period.start, period.end, timezone_name)
        else:
            usage = args.usage
        code = run(
            ledger,
            usage,
            prices,
            out,
            month=month,
            timezone_name=timezone_name,
            schedule=schedule,
            now=now,
            ledger_optional=not ledger_given,
        )
        status = max(status, code)
        if code == 0 and out_root and Path(out).parent == Path(out_root):
            write_index(out_root)
    return status


def main(argv: list[str] | None = None) -> int:
    """``gpu_report.py check-prices FILE``: check a price table (the role's validate: step)."""
    import argparse

    top = argparse.ArgumentParser(prog="gpu_report.py", description="Check a price table of parrotpark-gpu report.")
    top.add_argument("command", choices=["check-prices"])
    top.add_argument("file")
    args = top.parse_args(argv)
    try:
        table = load_prices(args.file)
    except ReportError as exc:
        print(f"gpu_report.py: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: {len(table.offers)} hosted offers, {len(table.fixed)} fixed items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
