"""The on-demand GPU waker, roles/scheduler/files/gpu_waker.py, run for real on 127.0.0.1.

Each test starts the waker's two listeners in-process on ephemeral ports with
a fake clock (Europe/Paris, Monday 17 March 2025), up and down commands that
are `python3 -c` scripts appending to a file, a fake vLLM (a tiny HTTP server
that streams server-sent events) and fake /metrics texts; the command line
(bad config, control address, serve, status, event, SIGTERM) runs as a
subprocess. Everything is bounded by timeouts and stopped at the end.
"""

from __future__ import annotations

import http.client
import json
import re
import selectors
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "scheduler" / "files"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
import gpu_policy as gp  # noqa: E402
import gpu_report  # noqa: E402
import gpu_waker as gw  # noqa: E402

PROGRAM = FILES / "gpu_waker.py"
PARIS = ZoneInfo("Europe/Paris")
MONDAY_9 = datetime(2025, 3, 17, 9, 0, tzinfo=PARIS)
CHAT = "/v1/chat/completions"
SECRET = "sk-parrotpark-secret-0123"
PROMPT = "a confidential prompt about parrots"
MODELS = ["gemma-3-12b", "mistral-small"]

POLICY = {
    "mode": "on_demand",
    "quiet_start": None,
    "quiet_end": None,
    "quiet_days": [],
    "boot_minutes": 8,
    "hold_seconds": 20,
    "drain_seconds": 300,
    "max_gpu_hours_per_day": None,
    "max_eur_per_month": None,
    "max_wakes_per_day": None,
    "min_off_minutes": 2,
}

METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="gemma-3-12b"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="gemma-3-12b"} 1.0
vllm:num_requests_waiting{engine="1",model_name="odd } name \\" x"} 4 1742198400000
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="gemma-3-12b"} 12.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="gemma-3-12b"} 3.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="gemma-3-12b"} 0.0
# HELP vllm:request_success_created Count of successfully processed requests.
# TYPE vllm:request_success_created gauge
vllm:request_success_created{engine="0",finished_reason="stop",model_name="gemma-3-12b"} 1.7421984e+09
vllm:num_requests_running_total 99
vllm:num_requests_running_sum{engine="0"} 98
vllm:gpu_cache_usage_perc{engine="0",model_name="gemma-3-12b"} 0.25
"""


def vllm_metrics(running: int, waiting: int, success: int) -> str:
    return (
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{model_name="m"}} {running}.0\n'
        f'vllm:num_requests_waiting{{model_name="m"}} {waiting}.0\n'
        "# TYPE vllm:request_success_total counter\n"
        f'vllm:request_success_total{{finished_reason="stop",model_name="m"}} {success}.0\n'
        f'vllm:request_success_created{{finished_reason="stop",model_name="m"}} 1742198400.0\n'
    )


class Clock:
    """The waker's clock, moved by hand."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def recorder(path: Path, name: str, exit_code: int = 0) -> list[str]:
    """A command that appends ``name`` to ``path`` (and exits with ``exit_code``)."""
    script = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); sys.exit(int(sys.argv[3]))"
    return [sys.executable, "-c", script, str(path), name, str(exit_code)]


class Harness:
    """A waker and its listeners on 127.0.0.1, with a fake clock and recording commands."""

    def __init__(self, where: Path, policy=None, *, up_exit=0, down=None, fetch=None, loop=False, poll=15):
        self.dir = where / "state"
        self.commands = where / "commands.txt"
        self.stopped = False
        self.clock = Clock(MONDAY_9)
        self.logs: list[str] = []
        self.config = gp.Config.from_dict({**POLICY, **(policy or {})})
        self.metrics: dict[str, object] = {}
        self.waker = gw.Waker(
            self.config,
            MODELS,
            self.dir,
            recorder(self.commands, "up", up_exit),
            down or recorder(self.commands, "down"),
            poll_seconds=poll,
            now=self.clock,
            fetch=fetch or self.fetch,
            logger=self.logs.append,
        )
        self.service = gw.Service(self.waker, ("127.0.0.1", 0), ("127.0.0.1", 0))
        self.service.start(loop=loop)
        self.port = self.service.listen_address[1]
        self.control_port = self.service.control_address[1]

    def fetch(self, url: str) -> str:
        value = self.metrics[url]
        if isinstance(value, Exception):
            raise value
        return str(value)

    def call(self, method, path, body=None, headers=None, *, port=None, timeout=15):
        """One request: (status, headers, decoded JSON or bytes, seconds it took)."""
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            sent = {"Content-Type": "application/json", **(headers or {})}
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read()
            content = json.loads(raw) if response.getheader("Content-Type") == "application/json" else raw
            return response.status, dict(response.getheaders()), content, time.monotonic() - started
        finally:
            connection.close()

    def chat(self, **headers):
        body = {"model": "gemma-3-12b", "messages": [{"role": "user", "content": PROMPT}]}
        return self.call("POST", CHAT, body, {"Authorization": f"Bearer {SECRET}", **headers})

    def event(self, **data):
        status, _headers, answer, _seconds = self.call("POST", "/event", data, port=self.control_port)
        return status, answer

    def status(self):
        return self.call("GET", "/status", port=self.control_port)[2]

    def settle(self) -> None:
        """Wait for the commands started so far (and those they start) to end."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.waker.lock:  # a step in progress has started its commands
                alive = [thread for thread in list(self.waker.commands) if thread.is_alive()]
            if not alive:
                return
            for thread in alive:
                thread.join(max(0.1, deadline - time.monotonic()))
        raise AssertionError("the commands did not end in 30 s")

    def ran(self) -> list[str]:
        self.settle()
        return self.commands.read_text().split() if self.commands.exists() else []

    def ledger(self) -> list[dict]:
        path = self.dir / gw.LEDGER_FILE
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def wait_for(self, predicate, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.02)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.service.stop()


@pytest.fixture
def harness(tmp_path):
    made: list[Harness] = []

    def make(*args, where: str = "main", **kwargs) -> Harness:
        made.append(Harness(tmp_path / where, *args, **kwargs))
        return made[-1]

    before = set(threading.enumerate())
    yield make
    for item in made:
        item.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            break
        time.sleep(0.02)
    assert not left, f"threads left running: {left}"


class FakeVllm:
    """A tiny upstream: /v1/chat/completions streams server-sent events, held between the first and the rest."""

    def __init__(self, name: str):
        self.name = name
        self.received: list[tuple[str, str, dict, bytes]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                data = METRICS.encode() if self.path == "/metrics" else b"not found"
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.received.append((self.command, self.path, dict(self.headers), body))
                if json.loads(body).get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for index, text in enumerate(("first", "second", "[DONE]")):
                        if index == 1:
                            fake.release.wait(10)  # the client must have had the first event by now
                        event = f"data: {text}\n\n".encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data = json.dumps({"served_by": fake.name, "choices": [{"message": {"content": "hello"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def vllm():
    made: list[FakeVllm] = []

    def make(name: str) -> FakeVllm:
        made.append(FakeVllm(name))
        return made[-1]

    yield make
    for item in made:
        item.close()


def up_and_healthy(h: Harness, upstreams: dict[str, str], metrics_urls=()) -> None:
    """A cold request wakes the GPU; boot_minutes later the up service reports it healthy."""
    assert h.chat()[0] == 503
    h.clock.advance(minutes=h.config.boot_minutes)
    status, answer = h.event(
        event="healthy",
        upstreams=upstreams,
        metrics_urls=list(metrics_urls),
        commercial_type="L4-1-24G",
        zone="fr-par-2",
        hourly_price_eur=0.85,
    )
    assert status == 200, answer
    assert answer["status"]["phase"] == "ready"


# --------------------------------------------------------------------------
# Cold requests
# --------------------------------------------------------------------------


def test_a_cold_chat_request_gets_a_503_with_the_eta_at_once_and_wakes_once(harness):
    h = harness()
    status, headers, body, seconds = h.chat()
    assert status == 503 and seconds < 2
    assert body == {
        "error": {
            "message": "The model is starting, ready in about 8 minutes.",
            "type": "service_unavailable",
            "code": "starting",
        }
    }
    assert headers["Retry-After"] == "480"
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert h.ran() == ["up"]
    h.clock.advance(minutes=3)
    status, headers, body, _elapsed = h.chat()
    assert (status, headers["Retry-After"]) == (503, "300")
    assert body["error"]["message"] == "The model is starting, ready in about 5 minutes."
    assert h.ran() == ["up"]  # single flight
    assert "wake: trigger wake, 1 request (POST /v1/chat/completions)" in h.logs
    assert h.logs.count("answered 503 starting to POST /v1/chat/completions") == 2
    assert h.waker.state.phase == "starting"
    assert not any(SECRET in line or "Bearer" in line or PROMPT in line for line in h.logs)


def test_the_ledger_names_a_session_to_the_second_and_the_cost_report_reads_it(harness):
    """A clock with a fraction of a second: the session's name and its events' times are both to the second, so
    no event reads as earlier than its session (the cost report refuses such a ledger: the lab found it)."""
    h = harness()
    h.clock.now = h.clock.now.replace(microsecond=919497)
    h.chat()
    created = h.ledger()[0]
    assert created["event"] == "created"
    assert created["session"] == "2025-03-17T08:00:00+00:00"
    assert datetime.fromisoformat(created["at"]) >= datetime.fromisoformat(created["session"])
    assert len(gpu_report.load_ledger(h.dir / gw.LEDGER_FILE)) == 1


def test_twenty_concurrent_cold_requests_run_the_up_command_once(harness):
    h = harness()
    barrier = threading.Barrier(20, timeout=10)
    results: list[tuple[int, float]] = []

    def one() -> None:
        barrier.wait()
        status, _headers, _body, seconds = h.chat()
        results.append((status, seconds))

    threads = [threading.Thread(target=one) for _attempt in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 20
    assert {status for status, _seconds in results} == {503}
    assert max(seconds for _status, seconds in results) < 2
    assert h.ran() == ["up"]
    assert h.waker.state.wakes_today == 1
    assert [record["event"] for record in h.ledger()] == ["created"]


def test_embeddings_wake_too(harness):
    h = harness()
    status, _headers, body, _elapsed = h.call("POST", "/v1/embeddings", {"model": "e5", "input": "x"})
    assert (status, body["error"]["code"]) == (503, "starting")
    assert h.ran() == ["up"]


def test_the_model_list_and_probes_never_wake(harness):
    h = harness()
    status, _headers, body, _elapsed = h.call("GET", "/v1/models")
    assert status == 200
    assert body == {
        "object": "list",
        "data": [
            {"id": "gemma-3-12b", "object": "model", "owned_by": "parrotpark"},
            {"id": "mistral-small", "object": "model", "owned_by": "parrotpark"},
        ],
    }
    for method, path, headers in [
        ("POST", CHAT, {"X-Parrotpark-Probe": "litellm"}),  # a probe shaped like a chat
        ("GET", "/health", {}),
        ("GET", "/ping", {}),
        ("GET", "/version", {}),
        ("GET", "/metrics", {}),
        ("POST", "/v1/rerank", {}),
        ("GET", CHAT, {}),
    ]:
        body = {"model": "m", "messages": []} if method == "POST" else None
        status, answer_headers, answer, _elapsed = h.call(method, path, body, headers)
        assert status == 503, (method, path)
        assert answer["error"]["message"] == "The model is not running (a probe never starts it)."
        assert answer_headers["Content-Type"] == "application/json"
    assert h.ran() == []
    assert h.waker.state.phase == "off"
    assert not (h.dir / gw.LEDGER_FILE).exists()


@pytest.mark.parametrize(
    ("method", "path", "headers", "kind"),
    [
        ("POST", "/v1/chat/completions", {}, "chat"),
        ("POST", "/v1/chat/completions/", {}, "chat"),
        ("POST", "/v1/completions?x=1", {}, "chat"),
        ("POST", "/v1/responses", {}, "chat"),
        ("POST", "/v1/embeddings", {}, "completion"),
        ("GET", "/v1/models", {}, "models"),
        ("POST", "/v1/chat/completions", {"X-Parrotpark-Probe": "1"}, "health"),
        ("GET", "/v1/models", {"X-Parrotpark-Probe": ""}, "health"),
        ("GET", "/health", {}, "health"),
        ("GET", "/v1/chat/completions", {}, "health"),
        ("POST", "/chat/completions", {}, "health"),
        ("DELETE", "/anything", {}, "health"),
    ],
)
def test_classify(method, path, headers, kind):
    assert gw.classify(method, path, headers) == kind


def test_quiet_hours_answer_when_the_model_is_available_and_do_not_wake(harness):
    h = harness({"quiet_start": "20:00", "quiet_end": "07:00"})
    h.clock.now = datetime(2025, 3, 17, 23, 0, tzinfo=PARIS)
    status, headers, body, seconds = h.chat()
    assert status == 503 and seconds < 2
    assert body["error"]["message"] == "The model is available from Tue 07:00 Europe/Paris (quiet hours)."
    assert body["error"]["code"] == "quiet"
    assert headers["Retry-After"] == str(8 * 3600)
    assert h.ran() == []
    assert h.waker.state.phase == "off"
    assert "answered 503 quiet to POST /v1/chat/completions" in h.logs


# --------------------------------------------------------------------------
# Ready: holding, forwarding, streaming
# --------------------------------------------------------------------------


def test_a_held_request_is_forwarded_and_streamed_when_the_gpu_becomes_ready(harness, vllm):
    h = harness()
    first, second = vllm("gpu-8000"), vllm("gpu-8001")
    assert h.chat()[0] == 503  # 09:00: the wake
    h.clock.advance(minutes=7, seconds=50)  # 10 s before the expected boot: within hold_seconds
    outcome: dict[str, object] = {}

    def held() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", h.port, timeout=20)
        body = json.dumps({"model": "gemma-3-12b", "stream": True, "messages": []}).encode()
        headers = {"Authorization": f"Bearer {SECRET}", "X-Parrotpark-Route": "gpu-8001", "Connection": "close"}
        connection.request("POST", CHAT, body=body, headers=headers)
        response = connection.getresponse()
        outcome["status"] = response.status
        outcome["type"] = response.getheader("Content-Type")
        outcome["first"] = response.readline()
        outcome["seen_before_release"] = not second.release.is_set()
        second.release.set()
        outcome["rest"] = response.read()
        connection.close()

    client = threading.Thread(target=held)
    client.start()
    h.wait_for(lambda: h.waker.state.in_flight == 1)  # held: counted in flight, not answered
    status, answer = h.event(
        event="healthy",
        upstreams={"gpu-8000": first.url, "gpu-8001": second.url},
        metrics_urls=[f"{first.url}/metrics"],
        commercial_type="L4-1-24G",
        zone="fr-par-2",
        hourly_price_eur=0.85,
    )
    assert status == 200 and answer["ok"] is True
    client.join(20)
    assert not client.is_alive()
    assert "holding POST /v1/chat/completions up to 10 s" in h.logs
    assert outcome["status"] == 200 and outcome["type"] == "text/event-stream"
    assert outcome["first"] == b"data: first\n"
    assert outcome["seen_before_release"] is True  # the first event came while the upstream still held the rest
    assert outcome["rest"] == b"\ndata: second\n\ndata: [DONE]\n\n"
    assert first.received == []  # X-Parrotpark-Route chose gpu-8001
    method, path, headers, body = second.received[0]
    assert (method, path, json.loads(body)["stream"]) == ("POST", CHAT, True)
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["Host"] == second.url.removeprefix("http://")
    assert "Connection" not in headers  # hop-by-hop headers stay here
    h.wait_for(lambda: h.waker.state.in_flight == 0)  # RequestFinished once the stream ended
    assert h.waker.state.phase == "ready"
    # A request that still reaches the waker while ready (a race with the route switch) passes; no route header:
    # the first upstream.
    status, _headers, body, _elapsed = h.chat()
    assert (status, body["served_by"]) == (200, "gpu-8000")
    h.wait_for(lambda: h.waker.state.in_flight == 0)
    assert h.ran() == ["up"]
    report = h.status()
    assert (report["phase"], report["commercial_type"], report["zone"]) == ("ready", "L4-1-24G", "fr-par-2")
    assert report["upstreams"] == {"gpu-8000": first.url, "gpu-8001": second.url}
    assert report["hourly_price_eur"] == 0.85
    assert [(r["event"], r["commercial_type"], r["hourly_price_eur"]) for r in h.ledger()] == [
        ("created", None, 0.79),
        ("healthy", "L4-1-24G", 0.85),
    ]
    assert not any(SECRET in line or PROMPT in line for line in h.logs)


def test_a_held_request_gets_the_503_when_the_gpu_is_not_ready_in_time(harness):
    h = harness({"hold_seconds": 2})
    assert h.chat()[0] == 503
    h.clock.advance(minutes=8, seconds=-1)  # 1 s before the expected boot: a hold of 1 s
    status, headers, body, seconds = h.chat()
    assert status == 503 and 0.9 < seconds < 3
    assert body["error"]["message"] == "The model is starting, ready in about 1 minute."
    assert headers["Retry-After"] == "1"
    assert h.waker.state.in_flight == 0  # the held request was counted, then finished
    assert h.ran() == ["up"]


# --------------------------------------------------------------------------
# vLLM's metrics, idleness, the down command
# --------------------------------------------------------------------------


def test_parse_metrics_sums_every_label_set_of_the_exact_names():
    sums = gw.parse_metrics(METRICS)
    assert sums == {
        "vllm:num_requests_running": 2.0,
        "vllm:num_requests_waiting": 5.0,
        "vllm:request_success_total": 15.0,
    }
    assert gw.parse_metrics("") == dict.fromkeys(sums, 0.0)
    assert gw.parse_metrics('vllm:num_requests_running{a="unterminated 3\nvllm:num_requests_running 1')[
        "vllm:num_requests_running"
    ] == pytest.approx(1.0)


def test_metrics_are_read_over_http(vllm):
    fake = vllm("gpu-8000")
    assert gw.parse_metrics(gw.fetch_text(f"{fake.url}/metrics"))["vllm:request_success_total"] == 15.0
    with pytest.raises(OSError):
        gw.fetch_text(f"{fake.url}/nothing")


def test_metrics_keep_the_gpu_up_while_in_flight_then_idle_destroys_it_once(harness):
    h = harness()
    url, dead = "http://10.0.0.5:8000/metrics", "http://10.0.0.6:8000/metrics"
    up_and_healthy(h, {"gpu-8000": "http://10.0.0.5:8000"}, [url, dead])  # ready 09:08
    h.metrics[dead] = ConnectionRefusedError("connection refused")
    h.metrics[url] = vllm_metrics(running=1, waiting=1, success=40)  # the first reading is the baseline
    h.clock.advance(minutes=5)  # 09:13
    h.waker.poll_metrics()
    assert h.waker.state.in_flight == 2
    assert any("does not answer" in line and dead in line for line in h.logs)
    for _attempt in range(6):  # 09:15 ... 09:25: a long generation, seen by vLLM only
        h.clock.advance(minutes=2)
        h.waker.poll_metrics()
        h.waker.tick()
    assert h.waker.state.phase == "ready"
    h.metrics[url] = vllm_metrics(running=0, waiting=0, success=42)  # 09:27: both finished
    h.clock.advance(minutes=2)
    h.waker.poll_metrics()
    assert h.waker.state.in_flight == 0
    assert h.waker.state.last_activity == h.clock.now.astimezone(gp.UTC)
    h.clock.advance(minutes=7, seconds=59)
    h.waker.poll_metrics()  # nothing new: not activity
    h.waker.tick()
    assert h.waker.state.phase == "ready"
    h.clock.advance(seconds=1)  # 8 min after the last activity
    h.waker.tick()
    assert (h.waker.state.phase, h.waker.state.why) == ("stopping", "idle")
    assert "destroy: idle for 8 min" in h.logs
    h.clock.advance(minutes=1)
    h.waker.tick()
    assert h.ran() == ["up", "down"]  # once
    status, answer = h.event(event="destroyed")
    assert status == 200 and answer["status"]["phase"] == "off"
    assert h.waker.session == {}
    events = h.ledger()
    assert [(r["event"], r["reason"]) for r in events] == [
        ("created", None),
        ("healthy", None),
        ("idle", "idle"),
        ("destroyed", "idle"),
    ]
    assert events[2]["at"] == "2025-03-17T09:27:00+01:00"  # idle since the last activity
    assert events[3]["at"] == "2025-03-17T09:36:00+01:00"
    # The session is named by its start in UTC, whatever time_zone says (it may change during a session).
    assert {r["session"] for r in events} == {"2025-03-17T08:00:00+00:00"}
    assert events[3]["commercial_type"] == "L4-1-24G" and events[3]["hourly_price_eur"] == 0.85
    assert h.waker.state.eur_today == pytest.approx(36 / 60 * 0.85)  # the session's price, not the default


def test_a_vllm_restart_counts_its_new_successes(harness):
    h = harness()
    url = "http://10.0.0.5:8000/metrics"
    up_and_healthy(h, {"gpu-8000": "http://10.0.0.5:8000"}, [url])
    h.metrics[url] = vllm_metrics(0, 0, 100)
    assert h.waker.poll_metrics().state.last_request == h.clock.now.astimezone(gp.UTC) - timedelta(minutes=8)
    h.clock.advance(minutes=1)
    h.metrics[url] = vllm_metrics(0, 0, 3)  # went down: vLLM restarted and served 3
    h.waker.poll_metrics()
    assert h.waker.state.last_request == h.clock.now.astimezone(gp.UTC)
    assert "metrics: 0 in flight, 3 finished since the last poll" in h.logs


def test_no_metrics_answer_changes_nothing(harness):
    h = harness()
    url = "http://10.0.0.5:8000/metrics"
    up_and_healthy(h, {"gpu-8000": "http://10.0.0.5:8000"}, [url])
    h.metrics[url] = TimeoutError("timed out")
    before = h.waker.state
    assert h.waker.poll_metrics() is None
    assert h.waker.state == before


def test_the_destroyed_event_turns_it_off(harness):
    h = harness()
    up_and_healthy(h, {"gpu-8000": "http://10.0.0.5:8000"})
    h.clock.advance(minutes=30)
    status, answer = h.event(event="destroyed")  # an operator ran gpu_down by hand
    assert status == 200
    assert (answer["status"]["phase"], answer["status"]["gpu_hours_today"]) == ("off", pytest.approx(38 / 60, abs=1e-4))
    assert h.waker.upstream(None) is None
    assert h.ledger()[-1]["event"] == "destroyed"


def test_a_failing_up_command_is_a_failed_boot_and_runs_the_down_command(harness):
    h = harness(up_exit=3)
    assert h.chat()[0] == 503
    assert h.ran() == ["up", "down"]
    assert (h.waker.state.phase, h.waker.state.why) == ("stopping", "boot_failed")
    assert [(r["event"], r["reason"]) for r in h.ledger()] == [("created", None), ("boot_failed", "boot_failed")]
    assert any("up command" in line and "failed (exit code 3)" in line for line in h.logs)


def test_a_failing_down_command_runs_again_at_the_next_tick(harness, tmp_path):
    counter = tmp_path / "down-runs"
    script = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); n = len(p.read_text()) if p.exists() else 0; "
        "p.write_text('x' * (n + 1)); sys.exit(1 if n == 0 else 0)"
    )
    h = harness(down=[sys.executable, "-c", script, str(counter)])
    up_and_healthy(h, {"gpu-8000": "http://10.0.0.5:8000"})
    h.clock.advance(minutes=8)
    h.waker.tick()
    h.settle()
    assert counter.read_text() == "x"
    h.clock.advance(seconds=15)
    h.waker.tick()  # the retry
    h.settle()
    h.waker.tick()  # succeeded: not again
    h.settle()
    assert counter.read_text() == "xx"
    assert "destroy: running the down command again (after a failure or a restart)" in h.logs


def test_the_loop_ticks_by_itself(harness):
    h = harness(loop=True, poll=0.05)
    assert h.chat()[0] == 503
    h.clock.advance(minutes=20)  # the boot deadline
    h.wait_for(lambda: h.waker.state.phase == "stopping")
    assert h.waker.state.why == "boot_deadline"
    assert h.ran() == ["up", "down"]
    assert any(line.startswith("destroy: not healthy 20 min after the wake") for line in h.logs)


# --------------------------------------------------------------------------
# The control listener
# --------------------------------------------------------------------------


def test_control_events_are_checked_and_answered(harness):
    h = harness({"max_gpu_hours_per_day": 1, "boot_minutes": 8, "idle_minutes": 60})
    status, answer = h.event(event="healthy", upstreams={})
    assert (status, answer["field"]) == (400, "upstreams")
    assert "upstreams must be an object" in answer["error"]
    status, answer = h.event(event="healthy", upstreams={"gpu-8000": "ftp://x"})
    assert (status, answer["field"]) == (400, "upstreams")
    status, answer = h.event(event="healthy", upstreams={"gpu-8000": "http://x:8000"}, hourly_price_eur="cheap")
    assert (status, answer["field"]) == (400, "hourly_price_eur")
    status, answer = h.event(event="starting", trigger="cron")
    assert (status, answer["field"]) == (400, "trigger")
    status, answer = h.event(event="reboot")
    assert (status, answer["field"]) == (400, "event")
    assert "event must be one of starting, healthy" in answer["error"]
    # A manual wake the hours cap refuses (a wake needs 8 + 60 min, more than the 1 h a day).
    status, answer = h.event(event="manual_wake")
    assert status == 409 and answer["ok"] is False
    assert answer["error"].startswith("The GPU has run its 1 hours for today (the daily limit)")
    assert h.ran() == []
    status, _headers, body, _elapsed = h.call("POST", "/event", None, port=h.control_port)
    assert status == 400 and body["error"] == "the body must be a JSON object"


def test_manual_wake_and_timer_start(harness):
    h = harness({"mode": "hybrid", "days": ["Mon"], "up_time": "10:00", "down_time": "12:00"})
    status, answer = h.event(event="starting", trigger="timer")  # 09:00: not the floor yet, recorded only
    assert (status, answer["status"]["phase"]) == (200, "off")
    h.clock.now = datetime(2025, 3, 17, 10, 0, tzinfo=PARIS)
    status, answer = h.event(event="starting", trigger="timer")  # the floor: the policy's own tick wakes
    assert (status, answer["status"]["phase"], answer["status"]["trigger"]) == (200, "starting", "timer")
    assert h.ran() == ["up"]
    h2 = harness(where="second")
    status, answer = h2.event(event="manual_wake")
    assert (status, answer["status"]["trigger"]) == (200, "manual")
    assert h2.event(event="manual_wake")[0] == 200  # already starting: nothing more
    assert h2.ran() == ["up"]
    assert h2.ledger()[0]["trigger"] == "manual"


def test_boot_failed_event(harness):
    h = harness()
    assert h.chat()[0] == 503
    status, answer = h.event(event="boot_failed")
    assert (status, answer["status"]["phase"], answer["status"]["why"]) == (200, "stopping", "boot_failed")
    assert h.ran() == ["up", "down"]


def test_the_control_listener_only_on_loopback():
    for host in ("127.0.0.1", "::1", "127.0.0.53", "localhost"):
        gw.check_loopback(host, "--control")
    for host in ("0.0.0.0", "::", "10.0.0.1", "192.168.1.2"):
        with pytest.raises(gw.WakerError, match=r"--control must be a loopback address"):
            gw.check_loopback(host, "--control")


# --------------------------------------------------------------------------
# Files: the state across a restart, the ledger
# --------------------------------------------------------------------------


def test_the_state_survives_a_restart(harness):
    h = harness()
    up_and_healthy(h, {"gpu-8000": "http://10.0.0.5:8000"}, ["http://10.0.0.5:8000/metrics"])
    saved = h.waker.state
    h.stop()
    path = h.dir / gw.STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["phase"] == "ready" and data["waker"]["zone"] == "fr-par-2"
    again = gw.Waker(h.config, MODELS, h.dir, ["true"], ["true"], now=h.clock, logger=h.logs.append)
    assert again.state == saved
    assert again.upstream("gpu-8000") == ("gpu-8000", "http://10.0.0.5:8000")
    assert again.status_report()["commercial_type"] == "L4-1-24G"
    assert again.status_report()["hourly_price_eur"] == 0.85
    again.close()


def test_a_restart_while_starting_keeps_starting_and_runs_the_up_again_to_adopt_the_server(harness):
    h = harness()
    assert h.chat()[0] == 503
    h.stop()
    assert h.ran() == ["up"]
    h2 = harness()  # the same state directory, a new waker and listeners (the entrance restarted mid-boot)
    assert h2.waker.state.phase == "starting" and h2.waker.state.wakes_today == 1
    h2.clock.advance(minutes=2)
    status, _headers, body, _elapsed = h2.chat()
    assert (status, body["error"]["message"]) == (503, "The model is starting, ready in about 6 minutes.")
    h2.waker.tick()
    h2.settle()
    # The cut up run runs again once (gpu_up adopts the server by name); it is not a second wake.
    assert h2.ran() == ["up", "up"]
    assert h2.waker.state.wakes_today == 1 and h2.waker.state.phase == "starting"
    assert any("the up run was cut by a restart: running it again" in line for line in h2.logs), h2.logs
    h2.waker.tick()
    h2.settle()
    assert h2.ran() == ["up", "up"]
    assert h2.event(event="healthy", upstreams={"gpu-8000": "http://10.0.0.5:8000"})[1]["status"]["phase"] == "ready"


def test_a_damaged_state_file_is_refused(tmp_path):
    (tmp_path / gw.STATE_FILE).write_text('{"phase": "dozing"}')
    with pytest.raises(gw.WakerError, match=r"is damaged \(state phase must be one of .*move the file aside"):
        gw.Waker(gp.Config.from_dict(POLICY), [], tmp_path, ["true"], ["true"])


def test_ledger_lines_in_json_and_line_protocol(tmp_path):
    files = gw.Files(tmp_path)
    record = {
        "session": "2025-03-17T09:00:00+01:00",
        "event": "destroyed",
        "at": "2025-03-17T09:36:00+01:00",
        "trigger": "wake",
        "reason": "idle",
        "commercial_type": "L4-1-24G",
        "zone": "fr par,2",  # escaped in a tag
        "hourly_price_eur": 0.85,
    }
    files.influx.write_text("old line\n")
    inode = files.influx.stat().st_ino
    files.append(record)
    assert [json.loads(line) for line in files.ledger.read_text().splitlines()] == [record]
    # Appended to the same file (Telegraf's tail input reads each new line once), not rewritten.
    lines = files.influx.read_text().splitlines()
    assert files.influx.stat().st_ino == inode and len(lines) == 2 and lines[0] == "old line"
    stamp = int(datetime(2025, 3, 17, 8, 36, tzinfo=gp.UTC).timestamp())
    assert lines[-1] == (
        "parrotpark_gpu_session,session=2025-03-17T09:00:00+01:00,event=destroyed,trigger=wake,reason=idle,"
        f"commercial_type=L4-1-24G,zone=fr\\ par\\,2 at_unix={stamp}i,hourly_price_eur=0.85 {stamp}000000000"
    )
    created = gw.influx_line({**record, "event": "created", "reason": None, "commercial_type": None, "zone": None})
    assert created.startswith("parrotpark_gpu_session,session=2025-03-17T09:00:00+01:00,event=created,trigger=wake ")


def test_a_full_line_protocol_file_is_renamed_and_a_new_one_started(tmp_path):
    files = gw.Files(tmp_path)
    record = {"session": "2025-03-17T09:00:00+01:00", "event": "created", "at": "2025-03-17T09:00:00+01:00"}
    files.influx.write_text("x" * gw.INFLUX_MAX_BYTES)
    files.append(record)
    assert files.influx.with_name("gpu-sessions.influx.1").stat().st_size == gw.INFLUX_MAX_BYTES
    assert files.influx.read_text().splitlines() == [gw.influx_line(record)]
    files.append(record)
    assert len(files.influx.read_text().splitlines()) == 2


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


def run_program(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROGRAM), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_config(tmp_path: Path, data) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"policy": {"idle_minutes": -1}}, r"policy: idle_minutes must be a number at least 0, got -1"),
        ({"policy": {"mode": "lazy"}}, r"policy: mode must be one of"),
        ({"policy": {"idel_minutes": 5}}, r"unknown setting\(s\) idel_minutes"),
        ({"policy": [], "models": []}, r"policy must be an object"),
        ({"models": "gemma"}, r"models must be a list of distinct model names"),
        ({"models": ["a", "a"]}, r"models must be a list of distinct model names"),
        ({"model": ["a"]}, r"unknown key\(s\) model; known: policy, models"),
        ([], r"must be a JSON object"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key(tmp_path, data, message):
    result = run_program(
        "serve",
        "--config",
        str(write_config(tmp_path, data)),
        "--state-dir",
        str(tmp_path / "state"),
        "--listen",
        "127.0.0.1:0",
        "--control",
        "127.0.0.1:0",
    )
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was made or bound


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--control", "0.0.0.0:8701", r"--control must be a loopback address .* got '0.0.0.0'"),
        ("--control", "[::]:8701", r"--control must be a loopback address"),
        ("--listen", "8700", r"--listen must be ADDR:PORT"),
        ("--up-command", "", r"--up-command must be a command"),
        ("--poll-seconds", "0", r"--poll-seconds must be above 0"),
    ],
)
def test_bad_options_exit_2(tmp_path, option, value, message):
    args = {
        "--config": str(write_config(tmp_path, {"policy": POLICY, "models": MODELS})),
        "--state-dir": str(tmp_path / "state"),
        "--listen": "127.0.0.1:0",
        "--control": "127.0.0.1:0",
        option: value,
    }
    result = run_program("serve", *[item for pair in args.items() for item in pair])
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr), result.stderr


def read_line(process: subprocess.Popen, pattern: str, seconds: float = 20) -> re.Match:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    seen = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
    finally:
        selector.close()
    raise AssertionError(f"no line matching {pattern!r} in {seen}")


def test_serve_status_event_and_sigterm(tmp_path):
    commands = tmp_path / "commands.txt"
    config = write_config(tmp_path, {"policy": POLICY, "models": MODELS})
    state = tmp_path / "state"
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROGRAM),
            "serve",
            "--config",
            str(config),
            "--state-dir",
            str(state),
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--up-command",
            shlex.join(recorder(commands, "up")),
            "--down-command",
            f"{sys.executable} -c pass",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = read_line(
            process, r"listening on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+); mode on_demand, off"
        )
        control = f"127.0.0.1:{match.group(2)}"
        result = run_program("status", "--control", control)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == "gpu: off"
        result = run_program("event", "--control", control, "manual_wake")
        assert (result.returncode, result.stdout.strip()) == (0, "manual_wake: accepted; gpu starting"), result.stderr
        read_line(process, r"wake: trigger manual")
        result = run_program(
            "event",
            "--control",
            control,
            "healthy",
            "--upstreams",
            '{"gpu-8000": "http://10.0.0.5:8000"}',
            "--zone",
            "fr-par-2",
            "--hourly-price-eur",
            "0.79",
        )
        assert result.returncode == 0, result.stderr
        result = run_program("status", "--control", control, "--json")
        report = json.loads(result.stdout)
        assert (report["phase"], report["zone"], report["upstreams"]) == (
            "ready",
            "fr-par-2",
            {"gpu-8000": "http://10.0.0.5:8000"},
        )
        result = run_program("event", "--control", control, "healthy", "--upstreams", "[]")
        assert result.returncode == 1 and "upstreams must be an object" in result.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdout.close()
        process.stderr.close()
    assert commands.read_text() == "up\n"
    data = json.loads((state / gw.STATE_FILE).read_text())
    assert (data["phase"], data["trigger"], data["waker"]["zone"]) == ("ready", "manual", "fr-par-2")
    result = run_program("status", "--control", control)  # nobody answers any more
    assert result.returncode == 3 and "does not answer" in result.stderr
    result = run_program("event", "--control", control, "destroyed")
    assert result.returncode == 3
