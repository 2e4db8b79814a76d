"""gpu_waker: the entrance's on-demand GPU daemon (issue 14).

It carries out gpu_policy's decisions: it answers the requests that Caddy
sends while the GPU is not ready (the routes gpu-<port>), wakes the GPU with
the up command when a user's request finds it off, destroys it with the down
command when the policy says so, and hears from the up and down services on a
loopback control listener. The role installs it beside gpu_policy.py and
parrotpark_gpu.py in /usr/local/lib/parrotpark/ (service parrotpark-gpu-waker).
Standard library only, Python 3.9 or later.

  gpu_waker.py serve --config CONFIG.json --state-dir DIR --listen ADDR:PORT --control ADDR:PORT
                     [--up-command CMD] [--down-command CMD] [--poll-seconds 15]
  gpu_waker.py status --control ADDR:PORT [--json]
  gpu_waker.py event --control ADDR:PORT NAME [--field value ...]

CONFIG.json: ``{"policy": {<gpu_policy settings>}, "models": ["chat-model", ...]}``.

The listener (any method and path):
  POST /v1/chat/completions, /v1/completions, /v1/responses   kind chat (may wake the GPU)
  POST /v1/embeddings                                         kind completion (may wake the GPU)
  GET /v1/models                                              200, the configured models (never wakes)
  a request with the header X-Parrotpark-Probe, anything else kind health (503, never wakes)
With the gateway on the GPU server, Caddy's routes also bring the chat site (LibreChat) here while the GPU is
not ready; the waker tells its requests by their shape, whatever the route or the Host:
  GET or HEAD accepting text/html (a browser's page load)     the offline page (503, never wakes)
  any method under /api/ (LibreChat's own calls)              a JSON 503 with the same sentence (never wakes)
  POST /.parrotpark/wake (the page's button, same origin)     kind button (may wake), then 303 to /
The page (gpu_policy.offline_view) says whether the model is starting and when it is ready, or when it is
available, offers the button when a wake is possible, and reloads itself; when the GPU is ready these requests
are forwarded like any other.
A request the policy refuses or that finds the GPU starting gets an
OpenAI-shaped 503 with Retry-After at once; one it holds is forwarded if the
GPU becomes ready in time, streamed chunk by chunk to the upstream of its
route (header X-Parrotpark-Route: gpu-<port>; else the first).

The control listener (loopback only):
  POST /event {"event": "starting", "trigger": "timer|manual"}
              {"event": "healthy", "upstreams": {"gpu-8000": "http://10.0.0.5:8000"}, "metrics_urls": [...],
               "commercial_type": "L4-1-24G", "zone": "fr-par-2", "hourly_price_eur": 0.79}
              {"event": "boot_failed"} {"event": "destroyed"} {"event": "manual_wake"}
  GET /status the policy's status with the session's type, zone, price and upstreams

Files in DIR: gpu-state.json (the policy's state, and under "waker" the
session's type, zone, price and upstreams: a restart keeps them),
gpu-sessions.jsonl (the ledger, one JSON object per session change) and
gpu-sessions.influx (the same in InfluxDB line protocol, appended line by
line for Telegraf's tail input, which stores each line once; past 1 MiB it
becomes gpu-sessions.influx.1 and a new file starts).

While the GPU is ready or stopping, the waker reads vLLM's /metrics every
poll: requests running and waiting are in flight, requests that succeeded
since the previous poll are activity (gpu_policy.Observed).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.client
import ipaddress
import json
import math
import os
import shlex
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gpu_policy as gp
from parrotpark_gpu import write_atomically

UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, this file runs on 3.9

DEFAULT_UP_COMMAND = "systemctl start --no-block parrotpark-gpu-up.service"
DEFAULT_DOWN_COMMAND = "systemctl start --no-block parrotpark-gpu-down.service"
STATE_FILE = "gpu-state.json"
LEDGER_FILE = "gpu-sessions.jsonl"
INFLUX_FILE = "gpu-sessions.influx"
INFLUX_MAX_BYTES = 1024 * 1024  # then gpu-sessions.influx becomes .influx.1 and a new one starts
MEASUREMENT = "parrotpark_gpu_session"
CONFIG_KEYS = ("policy", "models")

CHAT_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/responses")
COMPLETION_PATHS = ("/v1/embeddings",)
PROBE_HEADER = "X-Parrotpark-Probe"
# The chat site while the GPU is off (the gateway on the GPU server): the offline page's wake button posts here
# (a path LibreChat does not use), and LibreChat's own calls are under /api/.
WAKE_PATH = "/.parrotpark/wake"
SITE_API_PREFIX = "/api/"
SITE_KINDS = ("page", "site_api", gp.BUTTON_KIND)
ROUTE_HEADER = "X-Parrotpark-Route"
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
        "host",
        "content-length",
    )
)
MAX_BODY = 64 * 1024 * 1024  # a chat request with images stays far below
MAX_CONTROL_BODY = 1024 * 1024
UPSTREAM_TIMEOUT = 600  # LiteLLM's own request timeout
CLIENT_TIMEOUT = 120  # a client that neither sends nor reads for this long is dropped
METRICS_TIMEOUT = 5
COMMAND_WAIT = 120  # how long a command's exit status is waited for (systemctl --no-block: a moment)
DOWN_RETRY = timedelta(minutes=10)  # the down command again while a destroy is not confirmed
CONTROL_TIMEOUT = 10

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
SUCCESS = "vllm:request_success_total"

EVENTS = ("starting", "healthy", "boot_failed", "destroyed", "manual_wake")
STRING_FIELDS = ("event", "trigger", "server", "commercial_type", "zone")


class WakerError(Exception):
    """A setting or a file is wrong: the message names it (exit code 2)."""


class ControlError(ValueError):
    """A control event is wrong; ``field`` names the bad field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def log(message: str) -> None:
    print(f"gpu-waker: {message}", flush=True)


def _iso(config: gp.Config, moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(config.zone).isoformat(timespec="seconds")


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


def load_config(path: str | Path) -> tuple[gp.Config, list[str]]:
    """The policy's settings and the model names of CONFIG.json; WakerError naming the key when wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WakerError(f"cannot read the config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise WakerError(f"the config {path} must be a JSON object with the keys {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise WakerError(f"the config {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}")
    policy = data.get("policy", {})
    if not isinstance(policy, dict):
        raise WakerError(f"the config {path}: policy must be an object of gpu_policy settings, got {policy!r}")
    try:
        config = gp.Config.from_dict(policy)
    except gp.PolicyError as exc:
        raise WakerError(f"the config {path}: policy: {exc}") from exc
    models = data.get("models", [])
    if (
        not isinstance(models, list)
        or any(not isinstance(model, str) or not model.strip() for model in models)
        or len(set(models)) != len(models)
    ):
        raise WakerError(f"the config {path}: models must be a list of distinct model names, got {models!r}")
    return config, models


def parse_address(value: str, option: str) -> tuple[str, int]:
    """ADDR:PORT ([::1]:PORT for IPv6) as (host, port)."""
    host, sep, port = str(value).rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise WakerError(f"{option} must be ADDR:PORT (127.0.0.1:8701, [::1]:8701), got {value!r}")
    return host, int(port)


def check_loopback(host: str, option: str) -> None:
    """Refuse a control address that is not loopback: that listener starts and stops the GPU."""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            found = socket.getaddrinfo(host, None)
        except OSError as exc:
            raise WakerError(f"{option}: cannot resolve {host!r}: {exc}") from exc
        addresses = {ipaddress.ip_address(item[4][0].split("%")[0]) for item in found}
    if not addresses or not all(address.is_loopback for address in addresses):
        raise WakerError(
            f"{option} must be a loopback address (127.0.0.1, ::1 or localhost), got {host!r}: "
            "its events start and stop the GPU server, nothing outside the entrance may send them"
        )


def split_command(value: str, option: str) -> list[str]:
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise WakerError(f"{option}: {exc} in {value!r}") from exc
    if not argv:
        raise WakerError(f"{option} must be a command, got an empty string")
    return argv


# --------------------------------------------------------------------------
# vLLM's metrics
# --------------------------------------------------------------------------


def _sample(line: str) -> tuple[str, str] | None:
    """A sample line of the Prometheus text format as (metric name, the rest after the labels)."""
    end = len(line)
    for index, char in enumerate(line):
        if char == "{" or char.isspace():
            end = index
            break
    name = line[:end]
    if end == len(line):
        return None
    if line[end] != "{":
        return name, line[end:]
    quoted = escaped = False
    for index in range(end + 1, len(line)):
        char = line[index]
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "}" and not quoted:
            return name, line[index + 1 :]
    return None


def parse_metrics(text: str, names: Iterable[str] = (RUNNING, WAITING, SUCCESS)) -> dict[str, float]:
    """The sum over all label sets of each metric in ``names`` (0 when absent), from Prometheus' text format."""
    sums = dict.fromkeys(names, 0.0)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sample = _sample(line)
        if sample is None or sample[0] not in sums:
            continue
        fields = sample[1].split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if math.isfinite(value):
            sums[sample[0]] += value
    return sums


def fetch_text(url: str, timeout: float = METRICS_TIMEOUT) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the GPU is reached directly
    with opener.open(url, timeout=timeout) as answer:
        return answer.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------
# Files: the state, the ledger
# --------------------------------------------------------------------------


def _escape_tag(value: Any) -> str:
    text = str(value)
    for char in ("\\", ",", "=", " "):
        text = text.replace(char, f"\\{char}")
    return text


def influx_line(record: dict[str, Any]) -> str:
    """A ledger record in InfluxDB line protocol, stamped with the moment of the change (nanoseconds): Telegraf
    reads the whole file at every interval, and the same line keeps the same time."""
    at_unix = int(datetime.fromisoformat(str(record["at"])).timestamp())
    tags = "".join(
        f",{key}={_escape_tag(record[key])}"
        for key in ("session", "event", "trigger", "reason", "commercial_type", "zone")
        if record.get(key) not in (None, "")
    )
    fields = [f"at_unix={at_unix}i"]
    if record.get("hourly_price_eur") is not None:
        fields.append(f"hourly_price_eur={float(record['hourly_price_eur'])!r}")
    return f"{MEASUREMENT}{tags} {','.join(fields)} {at_unix * 1_000_000_000}"


class Files:
    """DIR/gpu-state.json, DIR/gpu-sessions.jsonl and DIR/gpu-sessions.influx."""

    def __init__(self, state_dir: str | Path):
        self.dir = Path(state_dir)
        self.state = self.dir / STATE_FILE
        self.ledger = self.dir / LEDGER_FILE
        self.influx = self.dir / INFLUX_FILE

    def prepare(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)  # Telegraf reads the .influx file
        except OSError as exc:
            raise WakerError(f"--state-dir {self.dir}: {exc}") from exc

    def load(self) -> tuple[gp.State, dict[str, Any]]:
        """The saved state and session details; a fresh state when there is no file."""
        try:
            text = self.state.read_text(encoding="utf-8")
        except FileNotFoundError:
            return gp.State(), {}
        except OSError as exc:
            raise WakerError(f"cannot read the state {self.state}: {exc}") from exc
        try:
            data = json.loads(text)
            state = gp.state_from_dict(data)
        except (ValueError, gp.PolicyError) as exc:
            raise WakerError(
                f"the state {self.state} is damaged ({exc}); a GPU server may be running: check the cloud, "
                "then move the file aside to start afresh"
            ) from exc
        session = data.get("waker") if isinstance(data.get("waker"), dict) else {}
        return state, _clean_session(session)

    def save(self, state: gp.State, session: dict[str, Any]) -> None:
        data = gp.state_to_dict(state)
        data["waker"] = session
        write_atomically(self.state, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)

    def append(self, record: dict[str, Any]) -> None:
        fd = os.open(self.ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=False) + "\n")
        # Appended, never rewritten: Telegraf's tail input reads each new line once. A full file is renamed
        # (tail follows the name and reads the new file from its start).
        with contextlib.suppress(FileNotFoundError):
            if self.influx.stat().st_size >= INFLUX_MAX_BYTES:
                os.replace(self.influx, self.influx.with_name(INFLUX_FILE + ".1"))
        fd = os.open(self.influx, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(influx_line(record) + "\n")


def _clean_session(data: dict[str, Any]) -> dict[str, Any]:
    """The session details kept in the state file, without what an older or newer version left that is wrong."""
    session: dict[str, Any] = {}
    upstreams = data.get("upstreams")
    if isinstance(upstreams, dict) and all(isinstance(v, str) for v in upstreams.values()):
        session["upstreams"] = dict(upstreams)
    urls = data.get("metrics_urls")
    if isinstance(urls, list) and all(isinstance(url, str) for url in urls):
        session["metrics_urls"] = list(urls)
    for key in ("commercial_type", "zone"):
        if isinstance(data.get(key), str):
            session[key] = data[key]
    price = data.get("hourly_price_eur")
    if isinstance(price, (int, float)) and not isinstance(price, bool):
        session["hourly_price_eur"] = float(price)
    return session


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def run_command(argv: list[str]) -> int:
    """Run a command without a shell (its output goes to the journal); its exit code, 0 if it is still running
    after COMMAND_WAIT seconds (systemctl --no-block returns at once)."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        return process.wait(timeout=COMMAND_WAIT)
    except subprocess.TimeoutExpired:
        log(f"{shlex.join(argv)} still runs after {COMMAND_WAIT} s; not waiting for it")
        return 0


# --------------------------------------------------------------------------
# The waker: the policy's state behind one lock, and what its actions do
# --------------------------------------------------------------------------


def _validate_url(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ControlError(field, f"{field} must hold http(s) URLs, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ControlError(field, f"{field} must hold http(s) URLs (http://10.0.0.5:8000), got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ControlError(field, f"{field}: bad port in {value!r}") from exc
    return value


def _healthy_details(data: dict[str, Any]) -> dict[str, Any]:
    upstreams = data.get("upstreams")
    if not isinstance(upstreams, dict) or not upstreams:
        raise ControlError(
            "upstreams", f"upstreams must be an object route -> URL (gpu-8000: http://...), got {upstreams!r}"
        )
    for route, url in upstreams.items():
        if not route:
            raise ControlError("upstreams", "upstreams: a route name is empty")
        _validate_url(url, "upstreams")
    urls = data.get("metrics_urls", [])
    if not isinstance(urls, list):
        raise ControlError("metrics_urls", f"metrics_urls must be a list of URLs, got {urls!r}")
    for url in urls:
        _validate_url(url, "metrics_urls")
    details: dict[str, Any] = {"upstreams": dict(upstreams), "metrics_urls": list(urls)}
    for key in ("commercial_type", "zone"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ControlError(key, f"{key} must be a non-empty string, got {value!r}")
        if value is not None:
            details[key] = value
    price = data.get("hourly_price_eur")
    if price is not None:
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0:
            raise ControlError("hourly_price_eur", f"hourly_price_eur must be a number at least 0, got {price!r}")
        details["hourly_price_eur"] = float(price)
    return details


class Waker:
    """The policy's state behind one lock (single flight), the files, and what the actions do."""

    def __init__(
        self,
        config: gp.Config,
        models: list[str],
        state_dir: str | Path,
        up_command: list[str],
        down_command: list[str],
        *,
        poll_seconds: float = 15,
        now: Callable[[], datetime] | None = None,
        run: Callable[[list[str]], int] = run_command,
        fetch: Callable[[str], str] = fetch_text,
        logger: Callable[[str], None] = log,
    ):
        self.config = config
        self.models = list(models)
        self.files = Files(state_dir)
        self.files.prepare()
        self.up_command = list(up_command)
        self.down_command = list(down_command)
        self.poll_seconds = poll_seconds
        self.now = now or (lambda: datetime.now(UTC))
        self.run = run
        self.fetch = fetch
        self.log = logger
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.loop_wake = threading.Event()
        self.stopping = threading.Event()
        self.commands: list[threading.Thread] = []
        self.loop_thread: threading.Thread | None = None
        self.poll_lock = threading.Lock()
        self.metrics_seen: dict[str, float] = {}
        self.down_sent_at: datetime | None = None
        state, self.session = self.files.load()
        if state.phase not in ("ready", "stopping") and (state.in_flight or state.open_streams):
            # Requests held by this process's predecessor: their connections are gone. (While ready, the counts
            # are vLLM's own, and the first poll of its metrics renews them.)
            state = replace(state, in_flight=0, open_streams=0)
        self.state = state
        # A destroy that was sent but not confirmed before a restart is sent again at the first tick.
        self.down_due = state.phase == "stopping" and state.destroy_sent
        # An up run cut by a restart of the entrance is run again at the first tick: gpu_up finds the server it
        # created by name and adopts it (no second server, no second wake). After a restart of the waker alone,
        # the up service still runs and systemd merges the second start into it.
        self.up_due = state.phase == "starting"
        if state.phase != "off":
            self.log(f"state loaded: {state.phase}" + (f" ({state.why})" if state.why else ""))

    # -- the policy ---------------------------------------------------------

    def _save(self) -> None:
        try:
            self.files.save(self.state, self.session)
        except OSError as exc:
            self.log(f"error: cannot write the state {self.files.state}: {exc}")

    def _record(self, event: str, at: datetime | None, state: gp.State, reason: str | None = None) -> None:
        record = {
            # The session's name: its start in UTC, the same whatever time_zone says when the event is written.
            "session": None
            if state.session_start is None
            else state.session_start.astimezone(gp.UTC).isoformat(timespec="seconds"),
            "event": event,
            "at": _iso(self.config, at or self.now()),
            "trigger": state.trigger,
            "reason": reason,
            "commercial_type": self.session.get("commercial_type"),
            "zone": self.session.get("zone"),
            "hourly_price_eur": state.price,
        }
        try:
            self.files.append(record)
        except OSError as exc:
            self.log(f"error: cannot write the ledger in {self.files.dir}: {exc}")

    def _apply(self, event: Any, context: str = "") -> gp.Step:
        """Step the policy (the lock held), write the ledger and the state, carry out Wake and Destroy."""
        old = self.state
        stepped = gp.step(self.config, old, event)
        new = stepped.state
        for action in stepped.actions:
            if isinstance(action, gp.Wake):
                self.session = {}
                self.metrics_seen.clear()
                self._record("created", new.session_start, new)
            elif isinstance(action, gp.Destroy):
                if action.reason in ("boot_failed", "boot_deadline"):
                    self._record("boot_failed", event.at, new, action.reason)
                elif action.reason in ("idle", "floor_end"):
                    self._record("idle", new.last_activity, new, action.reason)
        if old.phase == "starting" and new.phase == "ready":
            self._record("healthy", new.healthy_at, new)
        if isinstance(event, gp.ServerDestroyed) and old.session_start is not None and new.session_start is None:
            self._record("destroyed", event.at, old, old.why)
            self.session = {}
            self.metrics_seen.clear()
            self.down_due = False
            self.down_sent_at = None
        self.state = new
        if new != old:
            self._save()
        self._perform(old, stepped.actions, event, context)
        self.changed.notify_all()
        if threading.current_thread() is not self.loop_thread:
            self.loop_wake.set()
        return stepped

    def _perform(self, old: gp.State, actions: Iterable[Any], event: Any, context: str) -> None:
        for action in actions:
            if isinstance(action, gp.Wake):
                self.log(f"wake: trigger {action.trigger}" + (f", {context}" if context else ""))
                self._command("up", self.state.session_start)
            elif isinstance(action, gp.Destroy):
                self.log(f"destroy: {self._why_destroy(old, action.reason, event.at)}")
                self._command("down", self.state.session_start)

    def _why_destroy(self, old: gp.State, reason: str, now: datetime) -> str:
        if reason in ("idle", "floor_end") and old.last_activity is not None:
            minutes = (now - old.last_activity).total_seconds() / 60
            where = " (the floor window ended)" if reason == "floor_end" else ""
            return f"idle for {minutes:.0f} min{where}"
        return {
            "boot_deadline": f"not healthy {self.config.boot_deadline_minutes:g} min after the wake (boot deadline)",
            "boot_failed": "the boot failed",
            "cap_hours": "the daily GPU hours cap",
            "cap_eur": "the monthly EUR cap",
            "session_cap": f"the session reached {self.config.session_cap_hours:g} h (session cap)",
            "floor_end": "the floor window ended",
        }.get(reason, reason)

    def _command(self, which: str, session_start: datetime | None) -> None:
        argv = self.up_command if which == "up" else self.down_command
        if which == "down":
            self.down_sent_at = self.now()
            self.down_due = False

        # One command at a time, in the order the policy gave them: a "start down" must never overtake the
        # "start up" before it (systemd would queue the up job last and the server would come back).
        previous = next((known for known in reversed(self.commands) if known.is_alive()), None)

        def target() -> None:
            if previous is not None:
                previous.join(COMMAND_WAIT + 10)
            try:
                code = self.run(argv)
            except (OSError, ValueError) as exc:
                self.log(f"error: {which} command {shlex.join(argv)} cannot run: {exc}")
                code = 127
            if code == 0:
                return
            self.log(f"error: {which} command {shlex.join(argv)} failed (exit code {code})")
            with self.lock:
                if which == "up":
                    if self.state.phase == "starting" and self.state.session_start == session_start:
                        self._apply(gp.BootFailed(self.now()), "the up command failed")
                elif self.state.phase == "stopping" and self.state.destroy_sent:
                    self.down_due = True  # again at the next tick
                    self.log("destroy: the down command runs again at the next tick")

        thread = threading.Thread(target=target, name=f"gpu-waker-{which}", daemon=True)
        self.commands = [known for known in self.commands if known.is_alive()]
        self.commands.append(thread)
        thread.start()

    # -- the listener's requests --------------------------------------------

    def request(self, kind: str, what: str) -> gp.Answer:
        with self.lock:
            stepped = self._apply(gp.Request(self.now(), kind), f"1 request ({what})")
            answer = stepped.answer
            assert answer is not None
            return answer

    def finished(self) -> None:
        with self.lock:
            self._apply(gp.RequestFinished(self.now()))

    def wait_ready(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (real time) while the server starts; whether it became ready."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while True:
                if self.state.phase == "ready":
                    return True
                left = deadline - time.monotonic()
                if self.state.phase != "starting" or left <= 0 or self.stopping.is_set():
                    return False
                self.changed.wait(min(left, 1.0))

    def not_ready_answer(self) -> gp.Answer:
        """The 503 of a held request the server was not ready for."""
        with self.lock:
            report = gp.status(self.config, self.state, self.now())
        if report["phase"] == "starting":
            eta = report["eta_seconds"] or 0
            if eta <= 0:
                return gp.Answer("unavailable", "starting", "The model is starting, ready shortly.", retry_after=30)
            minutes = max(1, math.ceil(eta / 60))
            message = f"The model is starting, ready in about {minutes} minute{'s' if minutes != 1 else ''}."
            return gp.Answer("unavailable", "starting", message, retry_after=eta, eta_seconds=eta)
        message = report["message"] or "The model could not start in time; try again in a few minutes."
        return gp.Answer("unavailable", report["why"] or report["phase"], message, retry_after=60)

    def upstream(self, route: str | None) -> tuple[str, str] | None:
        with self.lock:
            upstreams = self.session.get("upstreams") or {}
        if not upstreams:
            return None
        if route in upstreams:
            return route, upstreams[route]
        first = next(iter(upstreams))
        return first, upstreams[first]

    def offline_view(self) -> gp.Offline:
        """What the chat site's offline page says now (no state change: a page load never wakes the GPU)."""
        with self.lock:
            return gp.offline_view(self.config, self.state, self.now())

    def model_list(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "parrotpark"} for m in self.models]}

    # -- the control listener -------------------------------------------------

    def status_report(self) -> dict[str, Any]:
        with self.lock:
            report = gp.status(self.config, self.state, self.now())
            report.update(
                {
                    "commercial_type": self.session.get("commercial_type"),
                    "zone": self.session.get("zone"),
                    "hourly_price_eur": self.state.price if self.state.session_start else None,
                    "upstreams": dict(self.session.get("upstreams") or {}),
                    "metrics_urls": list(self.session.get("metrics_urls") or []),
                }
            )
            return report

    def control(self, data: Any) -> tuple[int, dict[str, Any]]:
        """A control event: (HTTP status, answer)."""
        if not isinstance(data, dict):
            raise ControlError("event", "the body must be a JSON object with an event")
        name = data.get("event")
        if name not in EVENTS:
            raise ControlError("event", f"event must be one of {', '.join(EVENTS)}, got {name!r}")
        handler = getattr(self, f"_on_{name}")
        with self.lock:
            status, answer = handler(data)
            answer.setdefault("ok", status == 200)
            answer["status"] = self.status_report()
            return status, answer

    def _on_starting(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        trigger = data.get("trigger")
        if trigger is not None and trigger not in gp.TRIGGERS:
            raise ControlError("trigger", f"trigger must be one of {', '.join(gp.TRIGGERS)}, got {trigger!r}")
        self.log(f"starting: the up service runs (trigger {trigger or 'not given'})")
        if trigger == "manual":
            return self._manual("the up service, started by an operator")
        self._apply(gp.Tick(self.now()), "the up service started")
        return 200, {}

    def _on_manual_wake(self, _data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._manual("an operator")

    def _manual(self, who: str) -> tuple[int, dict[str, Any]]:
        stepped = self._apply(gp.ManualWake(self.now()), f"asked by {who}")
        refused = next((action for action in stepped.actions if isinstance(action, gp.Refused)), None)
        if refused is not None:
            self.log(f"manual wake refused ({refused.reason}): {refused.message}")
            return 409, {"ok": False, "error": refused.message, "reason": refused.reason}
        if not any(isinstance(action, gp.Wake) for action in stepped.actions):
            self.log(f"manual wake: nothing to do, the GPU is {self.state.phase}")
        return 200, {}

    def _on_healthy(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        details = _healthy_details(data)
        answer: dict[str, Any] = {}
        if self.state.session_start is None:
            self.log(f"warning: healthy while {self.state.phase}: the policy knows no session; ignored")
            answer["warning"] = f"the GPU is {self.state.phase} for the waker: no session to make ready"
        else:
            self.session.update(details)
            if "hourly_price_eur" in details:
                self.state = replace(self.state, price=details["hourly_price_eur"])
            self._save()
        self._apply(gp.ServerHealthy(self.now()))
        routes = ", ".join(f"{route} {url}" for route, url in details["upstreams"].items())
        self.log(f"healthy: {self.state.phase}, upstreams {routes}")
        return 200, answer

    def _on_boot_failed(self, _data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.log(f"boot failed reported while {self.state.phase}")
        self._apply(gp.BootFailed(self.now()))
        return 200, {}

    def _on_destroyed(self, _data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        before = self.state.phase
        self._apply(gp.ServerDestroyed(self.now()))
        self.log(f"destroyed: {before} -> {self.state.phase}")
        return 200, {}

    # -- the clock and the metrics ----------------------------------------------

    def tick(self) -> None:
        with self.lock:
            now = self.now()
            self._apply(gp.Tick(now), "the clock")
            state = self.state
            if state.phase == "starting" and self.up_due:
                self.up_due = False
                self.log("wake: the up run was cut by a restart: running it again (it adopts the server it created)")
                self._command("up", state.session_start)
            if state.phase == "stopping" and state.destroy_sent:
                late = self.down_sent_at is not None and now - self.down_sent_at >= DOWN_RETRY
                if self.down_due or late:
                    why = "not confirmed yet" if late else "after a failure or a restart"
                    self.log(f"destroy: running the down command again ({why})")
                    self._command("down", state.session_start)

    def poll_metrics(self) -> gp.Step | None:
        """Read vLLM's counters while ready or stopping and feed Observed; None when nothing was read."""
        with self.poll_lock:
            with self.lock:
                if self.state.phase not in ("ready", "stopping"):
                    return None
                urls = list(self.session.get("metrics_urls") or [])
            in_flight, finished, answered = 0.0, 0.0, 0
            for url in urls:
                try:
                    counts = parse_metrics(self.fetch(url))
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    self.log(f"metrics: {url} does not answer ({exc}); no activity from it")
                    continue
                answered += 1
                in_flight += counts[RUNNING] + counts[WAITING]
                success = counts[SUCCESS]
                seen = self.metrics_seen.get(url)
                if seen is not None:
                    finished += success if success < seen else success - seen  # it went down: vLLM restarted
                self.metrics_seen[url] = success
            if not answered:
                return None
            with self.lock:
                if self.state.phase not in ("ready", "stopping"):
                    return None
                before = self.state.in_flight
                event = gp.Observed(self.now(), round(in_flight), round(finished))
                stepped = self._apply(event, "the GPU's metrics")
                if event.in_flight != before or event.finished:
                    self.log(f"metrics: {event.in_flight} in flight, {event.finished} finished since the last poll")
                return stepped

    def loop(self) -> None:
        """Tick every poll_seconds and at the policy's next wakeup; read the metrics while the GPU is up."""
        while not self.stopping.is_set():
            self.loop_wake.clear()
            try:
                self.poll_metrics()  # fresh counts before the clock decides
                self.tick()
            except Exception as exc:  # the loop must survive anything, and say so
                self.log(f"error: the loop: {exc!r}")
            with self.lock:
                now = self.now()
                wakeup = gp.next_wakeup(self.config, self.state, now)
            delay = float(self.poll_seconds)
            if wakeup is not None:
                delay = min(delay, max(0.05, (wakeup - now).total_seconds()))
            self.loop_wake.wait(delay)

    def close(self, timeout: float = 5) -> None:
        """Stop the loop, let the commands' threads end, write the state."""
        self.stopping.set()
        self.loop_wake.set()
        with self.changed:
            self.changed.notify_all()
        if self.loop_thread is not None:
            self.loop_thread.join(timeout)
        for thread in list(self.commands):
            thread.join(timeout)
        with self.lock:
            self._save()


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


def _accepts_html(headers: Any) -> bool:
    accept = str(headers.get("Accept") or "").lower()
    return any(item.split(";")[0].strip() in ("text/html", "application/xhtml+xml") for item in accept.split(","))


def classify(method: str, path: str, headers: Any) -> str:  # noqa: PLR0911 - one per kind
    """The kind of a request: chat, completion, models, health (gpu_policy's kinds), or the chat site's page,
    site_api (LibreChat's calls) and button (the wake button)."""
    if headers.get(PROBE_HEADER) is not None:
        return "health"
    route = urlsplit(path).path
    if len(route) > 1:
        route = route.rstrip("/")
    if route == WAKE_PATH:
        return gp.BUTTON_KIND if method == "POST" else "page"
    if route.startswith(SITE_API_PREFIX) or route == SITE_API_PREFIX.rstrip("/"):
        return "site_api"
    if method in ("GET", "HEAD") and not route.startswith("/v1/") and _accepts_html(headers):
        return "page"
    if method == "POST" and route in CHAT_PATHS:
        return "chat"
    if method == "POST" and route in COMPLETION_PATHS:
        return "completion"
    if method == "GET" and route == "/v1/models":
        return "models"
    return "health"


def same_origin(headers: Any) -> bool:
    """Whether a browser's POST comes from the page of the same site (the wake button): a cross-site form or
    script must not start the GPU. Browsers send Sec-Fetch-Site, and Origin on a POST; Caddy keeps the Host."""
    site = str(headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site and site not in ("same-origin", "none"):
        return False
    origin = str(headers.get("Origin") or "").strip()
    if not origin:
        return True  # not a browser's cross-site request (they send Origin on every POST); the caps still apply
    if origin == "null":
        return False
    host = str(headers.get("Host") or "").strip().lower()
    return urlsplit(origin).netloc.lower() == host


def offline_page(view: gp.Offline, wake_path: str = WAKE_PATH) -> str:
    """The chat site's offline page: self-contained (no script, no external asset), every text escaped; it
    reloads itself every ``view.refresh_seconds`` so the chat appears once the model is ready."""
    title = {
        "starting": "The model is starting",
        "restarting": "The model is restarting",
        "off": "The model is off",
        "stopping": "The model is stopping",
    }.get(view.reason, "The model is not available now")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex, nofollow">',
        f'<meta http-equiv="refresh" content="{int(view.refresh_seconds)}">',
        f"<title>{html.escape(title)} - Parrotpark</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:4rem auto;max-width:36rem;padding:0 1rem;color:#222}"
        "button{font-size:1.1rem;padding:.6rem 1.2rem;cursor:pointer}p.note{color:#666;font-size:.9rem}</style>",
        "</head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p id="message">{html.escape(view.message)}</p>',
    ]
    if view.can_wake:
        parts += [
            f'<form method="post" action="{html.escape(wake_path, quote=True)}">',
            '<button type="submit" id="wake">Start the model</button></form>',
        ]
    parts += [
        f'<p class="note">This page reloads every {int(view.refresh_seconds)} seconds; '
        "the chat appears as soon as the model is ready.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


class BodyError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "parrotpark-gpu-waker"
    timeout = CLIENT_TIMEOUT

    @property
    def waker(self) -> Waker:
        return self.server.waker  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per decision instead, never headers or bodies

    def read_body(self, limit: int) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1026)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError(400, "bad chunked request body") from None
                if size == 0:
                    while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > limit:
                    raise BodyError(413, f"the request body is larger than {limit} bytes")
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        if not length.strip().isdigit():
            raise BodyError(400, "bad Content-Length")
        if int(length) > limit:
            raise BodyError(413, f"the request body is larger than {limit} bytes")
        return self.rfile.read(int(length))

    def send_json(self, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_body(status, "application/json", json.dumps(payload).encode(), headers)

    def send_body(self, status: int, content_type: str, data: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        """One answer, never cached, and the connection closed after it (no body for HEAD)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True


class ProxyHandler(_Handler):
    """The listener Caddy's gpu-<port> routes send to while the GPU is not ready."""

    def handle_any(self) -> None:
        what = f"{self.command} {urlsplit(self.path).path}"
        try:
            body = self.read_body(MAX_BODY)
        except BodyError as exc:
            self.send_json(exc.status, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        kind = classify(self.command, self.path, self.headers)
        if kind in SITE_KINDS:
            self.site(kind, body, what)
            return
        if kind == "models":
            self.send_json(200, self.waker.model_list())
            return
        answer = self.waker.request(kind, what)
        counted = kind in gp.WAKING_KINDS and answer.kind in ("pass", "hold")
        try:
            if answer.kind == "hold":
                self.waker.log(f"holding {what} up to {answer.seconds} s")
                if not self.waker.wait_ready(answer.seconds):
                    counted = False
                    self.waker.finished()  # over before its 503 leaves
                    answer = self.waker.not_ready_answer()
            if answer.kind == "unavailable":
                self.unavailable(answer, what)
            else:
                self.forward(body, what)
        finally:
            if counted:
                self.waker.finished()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    def site(self, kind: str, body: bytes | None, what: str) -> None:
        """The chat site while the GPU is not ready: the offline page, LibreChat's calls, the wake button."""
        if kind == gp.BUTTON_KIND:
            if not same_origin(self.headers):
                self.waker.log(f"refused {what}: not from the chat site's own page")
                self.send_json(403, {"error": {"message": "The wake button works from the chat site's own page."}})
                return
            answer = self.waker.request(kind, what)
            self.waker.log(f"wake button: {answer.reason}, back to the page")
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        view = self.waker.offline_view()
        if view.phase == "ready":
            self.forward(body, what)
            return
        headers = [("Retry-After", str(max(1, view.retry_after)))]
        if kind == "site_api":
            self.waker.log(f"answered 503 {view.reason} to {what}")
            error = {"message": view.message, "type": "service_unavailable", "code": view.reason}
            self.send_json(503, {"message": view.message, "error": error}, headers)
            return
        self.waker.log(f"answered the offline page ({view.reason}) to {what}")
        page = offline_page(view).encode()
        self.send_body(503, "text/html; charset=utf-8", page, [("X-Robots-Tag", "noindex"), *headers])

    def unavailable(self, answer: gp.Answer, what: str) -> None:
        self.waker.log(f"answered 503 {answer.reason} to {what}")
        headers = [] if answer.retry_after is None else [("Retry-After", str(answer.retry_after))]
        self.send_json(503, answer.openai_error(), headers)

    def forward(self, body: bytes | None, what: str) -> None:
        found = self.waker.upstream(self.headers.get(ROUTE_HEADER))
        if found is None:
            message = "The model is ready, but the gateway knows no address for it yet; try again in a minute."
            self.unavailable(gp.Answer("unavailable", "ready", message, retry_after=30), what)
            return
        route, base = found
        parts = urlsplit(base)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        upstream = connection_class(parts.hostname, parts.port, timeout=UPSTREAM_TIMEOUT)
        listed = {name.strip().lower() for name in self.headers.get("Connection", "").split(",")}
        headers = {
            key: value
            for key, value in self.headers.items()
            if key.lower() not in HOP_BY_HOP and key.lower() not in listed
        }
        headers["Host"] = parts.netloc
        if body is not None:
            headers["Content-Length"] = str(len(body))
        started = time.monotonic()
        try:
            upstream.request(self.command, parts.path.rstrip("/") + self.path, body=body, headers=headers)
            response = upstream.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            upstream.close()
            self.waker.log(f"forward {what} to {route}: the GPU does not answer ({exc})")
            error = {"message": "The model's server did not answer.", "type": "bad_gateway", "code": "upstream"}
            self.send_json(502, {"error": error})
            return
        try:
            self.relay(response)
            self.waker.log(f"forwarded {what} to {route}: {response.status} in {time.monotonic() - started:.1f} s")
        except (OSError, http.client.HTTPException) as exc:
            self.waker.log(f"forward {what} to {route}: cut after {time.monotonic() - started:.1f} s ({exc})")
        finally:
            upstream.close()
            self.close_connection = True

    def relay(self, response: http.client.HTTPResponse) -> None:
        """The upstream's answer to the client, chunk by chunk as it comes (server-sent events flow)."""
        self.send_response(response.status, response.reason)
        listed = {name.strip().lower() for name in (response.getheader("Connection") or "").split(",")}
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() not in listed:
                self.send_header(key, value)
        self.send_header("Connection", "close")
        length = response.getheader("Content-Length")
        if self.command == "HEAD" or response.status in (204, 304) or response.status < 200:
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            return
        if length is not None and not response.chunked and length.strip().isdigit():
            self.send_header("Content-Length", length.strip())
            self.end_headers()
            while True:
                data = response.read1(65536)
                if not data:
                    break
                self.wfile.write(data)
                self.wfile.flush()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            data = response.read1(65536)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ControlHandler(_Handler):
    """Events from the up and down services, the status for the CLI."""

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/status":
            self.send_json(200, self.waker.status_report())
        else:
            self.send_json(404, {"ok": False, "error": "unknown path: GET /status, POST /event"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/event":
            self.send_json(404, {"ok": False, "error": "unknown path: GET /status, POST /event"})
            return
        try:
            body = self.read_body(MAX_CONTROL_BODY)
            data = json.loads(body or b"")
        except BodyError as exc:
            self.send_json(exc.status, {"ok": False, "error": str(exc)})
            return
        except ValueError:
            self.send_json(400, {"ok": False, "error": "the body must be a JSON object", "field": "body"})
            return
        try:
            status, answer = self.waker.control(data)
        except ControlError as exc:
            self.waker.log(f"control: refused an event: {exc}")
            self.send_json(400, {"ok": False, "error": str(exc), "field": exc.field})
            return
        self.send_json(status, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # 20 cold requests at once must not wait for a SYN retry

    def __init__(self, address: tuple[str, int], handler: type[_Handler], waker: Waker):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)
        self.waker = waker

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # without HTTPServer's reverse DNS lookup of the address
        self.server_name, self.server_port = self.server_address[:2]


class Service:
    """The two listeners and the loop around a Waker."""

    def __init__(self, waker: Waker, listen: tuple[str, int], control: tuple[str, int]):
        self.waker = waker
        self.proxy = _Server(listen, ProxyHandler, waker)
        try:
            self.control = _Server(control, ControlHandler, waker)
        except OSError:
            self.proxy.server_close()
            raise
        self.threads: list[threading.Thread] = []
        self.started = False

    @property
    def listen_address(self) -> tuple[str, int]:
        return self.proxy.server_address[:2]  # type: ignore[return-value]

    @property
    def control_address(self) -> tuple[str, int]:
        return self.control.server_address[:2]  # type: ignore[return-value]

    def start(self, loop: bool = True) -> None:
        self.started = True
        for name, server in (("listen", self.proxy), ("control", self.control)):
            thread = threading.Thread(target=server.serve_forever, args=(0.2,), name=f"gpu-waker-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        if loop:
            self.waker.loop_thread = threading.Thread(target=self.waker.loop, name="gpu-waker-loop", daemon=True)
            self.waker.loop_thread.start()

    def stop(self) -> None:
        for server in (self.proxy, self.control):
            if self.started:
                server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(5)
        self.waker.close()


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        config, models = load_config(args.config)
        listen = parse_address(args.listen, "--listen")
        control = parse_address(args.control, "--control")
        check_loopback(control[0], "--control")
        up = split_command(args.up_command, "--up-command")
        down = split_command(args.down_command, "--down-command")
        if not args.poll_seconds > 0:
            raise WakerError(f"--poll-seconds must be above 0, got {args.poll_seconds:g}")
        waker = Waker(config, models, args.state_dir, up, down, poll_seconds=args.poll_seconds)
    except WakerError as exc:
        print(f"gpu-waker: {exc}", file=sys.stderr)
        return 2
    try:
        service = Service(waker, listen, control)
    except OSError as exc:
        print(f"gpu-waker: cannot listen on {args.listen} and {args.control}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    service.start()
    host, port = service.listen_address
    chost, cport = service.control_address
    log(
        f"listening on {host}:{port}, control on {chost}:{cport}; mode {config.mode}, "
        f"{waker.state.phase}, state in {waker.files.dir}"
    )
    while not stop.wait(0.5):
        pass
    service.stop()
    log("stopped; state written")
    return 0


def _control_url(value: str) -> str:
    host, port = parse_address(value, "--control")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def control_call(control: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One request to the control listener at ``control`` (no proxy): (HTTP status, decoded JSON answer).

    parrotpark_gpu.py (the command parrotpark-gpu) calls the waker through it too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        _control_url(control) + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=CONTROL_TIMEOUT) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None


def cmd_status(args: argparse.Namespace) -> int:
    try:
        status, report = control_call(args.control, "GET", "/status")
    except (OSError, ValueError) as exc:
        print(f"gpu-waker: the waker does not answer on {args.control}: {exc}", file=sys.stderr)
        return 3
    if status != 200 or not isinstance(report, dict):
        print(f"gpu-waker: the waker answered HTTP {status}: {report}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    phase = report.get("phase")
    line = f"gpu: {phase}"
    if report.get("why"):
        line += f" ({report['why']})"
    if phase == "starting" and report.get("eta_seconds") is not None:
        line += f", ready in about {max(1, math.ceil(report['eta_seconds'] / 60))} min"
    print(line)
    if report.get("message"):
        print(f"users hear: {report['message']}")
    if report.get("session_start"):
        print(
            f"session: since {report['session_start']} (trigger {report.get('trigger')}), "
            f"{report.get('commercial_type') or '?'} in {report.get('zone') or '?'} "
            f"at EUR {report.get('hourly_price_eur')}/h, {report.get('in_flight')} in flight"
        )
    for route, url in (report.get("upstreams") or {}).items():
        print(f"upstream {route}: {url}")
    print(
        f"today: {report.get('gpu_hours_today')} h, EUR {report.get('eur_today')}, "
        f"{report.get('wakes_today')} wake(s); "
        f"this month: {report.get('gpu_hours_month')} h, EUR {report.get('eur_month')}"
    )
    floor = "on" if report.get("floor_active") else "off"
    print(f"mode {report.get('mode')}, floor window {floor}, quiet hours {'on' if report.get('quiet') else 'off'}")
    return 0


def _event_fields(extra: list[str]) -> dict[str, Any]:
    """--key value / --key=value pairs: JSON objects, lists and numbers decoded, other values strings."""
    fields: dict[str, Any] = {}
    items = list(extra)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or len(item) < 3:
            raise WakerError(f"event fields are --name value, got {item!r}")
        key, sep, value = item[2:].partition("=")
        if not sep:
            if not items:
                raise WakerError(f"--{key} needs a value")
            value = items.pop(0)
        key = key.replace("-", "_")
        if key in STRING_FIELDS:
            fields[key] = value
            continue
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


def cmd_event(args: argparse.Namespace) -> int:
    try:
        body = {**_event_fields(args.fields), "event": args.name}
    except WakerError as exc:
        print(f"gpu-waker: {exc}", file=sys.stderr)
        return 2
    try:
        status, answer = control_call(args.control, "POST", "/event", body)
    except (OSError, ValueError) as exc:
        print(f"gpu-waker: the waker does not answer on {args.control}: {exc}", file=sys.stderr)
        return 3
    if status == 200 and isinstance(answer, dict) and answer.get("ok"):
        report = answer.get("status") or {}
        print(f"{args.name}: accepted; gpu {report.get('phase')}")
        for server in answer.get("destroy") or []:
            print(f"destroy: {server}")
        return 0
    message = answer.get("error") if isinstance(answer, dict) else answer
    print(f"gpu-waker: {args.name} refused (HTTP {status}): {message}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gpu_waker.py", description="The entrance's on-demand GPU waker.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the waker")
    serve.add_argument("--config", required=True, help='CONFIG.json: {"policy": {...}, "models": [...]}')
    serve.add_argument("--state-dir", required=True, help="where the state and the session ledger are kept")
    serve.add_argument("--listen", required=True, help="ADDR:PORT for the requests Caddy sends while the GPU is off")
    serve.add_argument("--control", required=True, help="ADDR:PORT (loopback) for the events and the status")
    serve.add_argument("--up-command", default=DEFAULT_UP_COMMAND, help="starts the up path (no shell)")
    serve.add_argument("--down-command", default=DEFAULT_DOWN_COMMAND, help="starts the down path (no shell)")
    serve.add_argument("--poll-seconds", type=float, default=15, help="tick and metrics interval (default 15)")
    serve.set_defaults(handler=cmd_serve)
    status = commands.add_parser("status", help="the waker's status")
    status.add_argument("--control", required=True, help="ADDR:PORT of the control listener")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(handler=cmd_status)
    event = commands.add_parser("event", help="post an event: NAME [--field value ...]")
    event.add_argument("--control", required=True, help="ADDR:PORT of the control listener")
    event.add_argument("name", metavar="NAME", help=", ".join(EVENTS))
    event.add_argument("fields", nargs=argparse.REMAINDER, metavar="--field value", help="the event's fields")
    event.set_defaults(handler=cmd_event)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.handler(args))
    except WakerError as exc:
        print(f"gpu-waker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
