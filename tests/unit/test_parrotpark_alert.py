"""The alerts program (roles/alerts/files/parrotpark_alert.py): which condition opens, stays silent, reminds and
resolves, on fixed probe answers with a virtual clock; what each message says (host, since when, what to do) and
never says (a credential); delivery retried per channel; and, through a real local webhook receiver and a real
local SMTP sink, each alert arriving exactly once per channel and its resolution once."""

from __future__ import annotations

import base64
import json
import socketserver
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "alerts" / "files"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
import parrotpark_alert as pa  # noqa: E402

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)  # noqa: UP017 - as the program
HOST = "entrance-test"
SMTP_PASSWORD = "smtp-Pa55word-never-shown-7c1f"
WEBHOOK_TOKEN = "T0KEN-in-the-webhook-url-9d2a"
HEADER_SECRET = "Bearer header-secret-0b3e"
UNITS = ["parrotpark-gpu-up.service", "parrotpark-gpu-down.service", "parrotpark-backup.service"]


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


OK_UNIT = {"LoadState": "loaded", "ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}


class FakeProbes:
    """The host as the tests say it is; ``broken`` names the probes that cannot tell."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.units: dict[str, dict[str, str]] = {}
        self.container_list: list[dict] = []
        self.usage: dict[str, tuple[int, int, int]] = {"/": (100, 40, 60)}
        self.records: dict[str, dict] = {}
        self.status: dict | None = None
        # CLOCK_MONOTONIC: 1000 s after the boot at T0, then with the clock.
        self.boot = T0 - timedelta(seconds=1000)
        self.broken: set[str] = set()

    def _maybe_broken(self, name: str) -> None:
        if name in self.broken:
            raise pa.ProbeError(f"{name} does not answer")

    def monotonic(self) -> float:
        return (self.clock.now - self.boot).total_seconds()

    def unit(self, unit: str) -> dict[str, str]:
        self._maybe_broken("unit")
        return dict(self.units.get(unit, OK_UNIT))

    def containers(self) -> list[dict]:
        self._maybe_broken("docker")
        return list(self.container_list)

    def disk(self, path: str):
        return self.usage.get(path)

    def record(self, action: str):
        return self.records.get(action)

    def gpu_status(self):
        self._maybe_broken("waker")
        return self.status


class Recorder:
    """A channel that keeps what it receives, and can be told to refuse."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.refuse = False

    def __call__(self, message: dict) -> None:
        if self.refuse:
            raise pa.DeliveryError("HTTP 503")
        self.received.append(dict(message))

    def kinds(self) -> list[str]:
        return [f"{message['kind']} {message['condition']}" for message in self.received]


def make_config(tmp_path: Path, **extra) -> dict:
    config = {
        **pa.DEFAULTS,
        "host": HOST,
        "state_dir": str(tmp_path / "state"),
        "units": UNITS,
        "disk_paths": ["/"],
        "scheduler_command": "",
    }
    config.update(extra)
    return config


@pytest.fixture
def setup(tmp_path):
    config = make_config(tmp_path)
    clock = Clock()
    probes = FakeProbes(clock)
    channels = {"webhook": Recorder(), "smtp": Recorder()}
    # The backup ran fine a minute ago (monotonic 940 s of 1000).
    probes.units["parrotpark-backup.service"] = {**OK_UNIT, "ExecMainExitTimestampMonotonic": str(940 * 10**6)}

    def check():
        return pa.run_check(config, probes, channels, clock)

    return config, probes, clock, channels, check


FAILED_UP = {
    "LoadState": "loaded",
    "ActiveState": "failed",
    "Result": "exit-code",
    "ExecMainStatus": "2",
    "ExecMainExitTimestampMonotonic": str(700 * 10**6),
}


def test_a_failed_unit_alerts_once_then_resolves_once(setup):
    _config, probes, clock, channels, check = setup
    assert check()["queued"] == []
    probes.units["parrotpark-gpu-up.service"] = dict(FAILED_UP)
    outcome = check()
    assert outcome["queued"] == ["alert unit:parrotpark-gpu-up.service"]
    for channel in channels.values():
        assert channel.kinds() == ["alert unit:parrotpark-gpu-up.service"]
    text = channels["webhook"].received[0]["text"]
    assert HOST in text
    assert "failed (result exit-code, exit status 2)" in text
    # Since: when the unit ended (300 s before the check), not when the check saw it.
    assert f"Since: {(T0 - timedelta(seconds=300)):%Y-%m-%d %H:%M} UTC" in text
    assert "journalctl -u parrotpark-gpu-up.service" in text
    assert "systemctl start parrotpark-gpu-up.service" in text
    for _tick in range(12):  # an hour of checks: nothing more
        clock.advance(minutes=5)
        assert check()["queued"] == []
    probes.units["parrotpark-gpu-up.service"] = dict(OK_UNIT)
    clock.advance(minutes=5)
    assert check()["queued"] == ["resolved unit:parrotpark-gpu-up.service"]
    resolved = channels["smtp"].received[-1]
    assert resolved["title"] == f"[RESOLVED] {HOST}: parrotpark-gpu-up.service failed"
    assert "after 1 h 10 min (since 2026-12-07 07:55 UTC)" in resolved["text"]
    clock.advance(minutes=5)
    assert check()["queued"] == []
    assert channels["webhook"].kinds() == [
        "alert unit:parrotpark-gpu-up.service",
        "resolved unit:parrotpark-gpu-up.service",
    ]


def test_a_unit_that_runs_again_keeps_its_alert_until_it_ends(setup):
    _config, probes, clock, channels, check = setup
    probes.units["parrotpark-gpu-down.service"] = dict(FAILED_UP)
    check()
    probes.units["parrotpark-gpu-down.service"] = {
        "LoadState": "loaded",
        "ActiveState": "activating",
        "Result": "success",
    }
    clock.advance(minutes=5)
    assert check()["queued"] == []
    probes.units["parrotpark-gpu-down.service"] = dict(FAILED_UP)
    clock.advance(minutes=5)
    assert check()["queued"] == []
    assert channels["webhook"].kinds() == ["alert unit:parrotpark-gpu-down.service"]
    assert "may still exist and bill" in channels["webhook"].received[0]["text"]


def test_notify_failure_then_check_sends_one_alert(setup):
    config, probes, clock, channels, check = setup
    probes.units["parrotpark-backup.service"] = dict(FAILED_UP)
    outcome = pa.run_notify_failure(config, "parrotpark-backup.service", probes, channels, clock)
    assert outcome["queued"] == ["alert unit:parrotpark-backup.service"]
    again = pa.run_notify_failure(config, "parrotpark-backup.service", probes, channels, clock)
    assert again["queued"] == []
    clock.advance(minutes=1)
    assert check()["queued"] == []
    assert "parrotpark-backup restic snapshots" in channels["smtp"].received[0]["text"]
    assert channels["smtp"].kinds() == ["alert unit:parrotpark-backup.service"]


def test_notify_failure_of_an_unlisted_unit_is_watched_until_it_recovers(setup):
    config, probes, clock, channels, check = setup
    unit = "parrotpark-gpu-report.service"
    probes.units[unit] = dict(FAILED_UP)
    pa.run_notify_failure(config, unit, probes, channels, clock)
    clock.advance(minutes=5)
    assert check()["queued"] == []
    probes.units[unit] = dict(OK_UNIT)
    clock.advance(minutes=5)
    assert check()["queued"] == [f"resolved unit:{unit}"]


def test_backup_missing_for_more_than_a_day(setup):
    _config, probes, clock, channels, check = setup
    check()  # the success a minute ago is remembered
    # systemd forgets the run (a reboot): the state remembers it.
    probes.units["parrotpark-backup.service"] = {**OK_UNIT, "ExecMainExitTimestampMonotonic": "0"}
    clock.advance(hours=25, minutes=58)
    assert check()["queued"] == []
    clock.advance(minutes=5)
    assert check()["queued"] == ["alert backup:age"]
    text = channels["webhook"].received[0]["text"]
    assert f"ended {(T0 - timedelta(seconds=60)):%Y-%m-%d %H:%M} UTC, more than 26 hours ago" in text
    assert "systemctl list-timers parrotpark-backup.timer" in text
    # A backup by hand succeeds 30 s before the next check (the machine was rebooted 10 minutes before).
    clock.advance(hours=1)
    probes.boot = clock.now - timedelta(minutes=10)
    probes.units["parrotpark-backup.service"] = {
        **OK_UNIT,
        "ExecMainExitTimestampMonotonic": str(int(probes.monotonic() - 30) * 10**6),
    }
    assert check()["queued"] == ["resolved backup:age"]


def test_no_backup_ever_counts_from_when_the_alerts_began_watching(tmp_path):
    config = make_config(tmp_path)
    clock, channel = Clock(), Recorder()
    probes = FakeProbes(clock)
    pa.run_check(config, probes, {"webhook": channel}, clock)
    clock.advance(hours=27)
    pa.run_check(config, probes, {"webhook": channel}, clock)
    assert channel.kinds() == ["alert backup:age"]
    assert (
        "No run of parrotpark-backup.service has succeeded since the alerts began watching"
        in channel.received[0]["text"]
    )


def test_unhealthy_container_alerts_after_the_delay(setup):
    _config, probes, clock, channels, check = setup
    probes.container_list = [
        {"name": "parrotpark-litellm", "role": "litellm", "health": "unhealthy", "failing_streak": 4},
        {"name": "parrotpark-caddy", "role": "caddy", "health": "healthy"},
    ]
    assert check()["queued"] == []
    clock.advance(minutes=5)
    assert check()["queued"] == []
    clock.advance(minutes=5)
    assert check()["queued"] == ["alert health:parrotpark-litellm"]
    text = channels["webhook"].received[0]["text"]
    assert "(role litellm) has been unhealthy for more than 10 minutes (4 failed health checks in a row)" in text
    assert f"Since: {T0:%Y-%m-%d %H:%M} UTC (10 min ago)" in text
    assert "docker logs --tail 200 parrotpark-litellm" in text
    # Docker does not answer: the alert stays open, nothing is said.
    probes.broken.add("docker")
    clock.advance(minutes=5)
    assert check()["queued"] == []
    probes.broken.clear()
    probes.container_list[0]["health"] = "healthy"
    clock.advance(minutes=5)
    assert check()["queued"] == ["resolved health:parrotpark-litellm"]


def test_a_container_healthy_again_within_the_delay_is_never_reported(setup):
    _config, probes, clock, channels, check = setup
    probes.container_list = [{"name": "parrotpark-keycloak", "role": "keycloak", "health": "unhealthy"}]
    check()
    probes.container_list[0]["health"] = "healthy"
    clock.advance(minutes=5)
    check()
    probes.container_list[0]["health"] = "unhealthy"
    clock.advance(minutes=8)
    assert check()["queued"] == []  # the delay starts again
    assert channels["webhook"].received == []


def test_disk_above_the_threshold(setup):
    config, probes, clock, channels, check = setup
    config["disk_paths"] = ["/", "/var/lib/docker", "/not/mounted"]
    probes.usage = {"/": (100 * 10**9, 90 * 10**9, 10 * 10**9), "/var/lib/docker": (100, 50, 50)}
    assert check()["queued"] == ["alert disk:/"]
    text = channels["smtp"].received[0]["text"]
    assert "The file system of / is 90% full (threshold 85%), 10.0 GB left." in text
    assert "du -xh --max-depth=2 /" in text
    probes.usage["/"] = (100, 80, 20)
    clock.advance(minutes=5)
    assert check()["queued"] == ["resolved disk:/"]


def test_a_failed_teardown_means_billable_resources_may_be_left(setup):
    _config, probes, clock, channels, check = setup
    probes.records["down"] = {
        "action": "down",
        "outcome": "failed",
        "exit_code": 2,
        "started": "2026-12-06T19:00:00+01:00",
        "finished": "2026-12-06T19:04:00+01:00",
    }
    assert check()["queued"] == ["alert teardown:down"]
    text = channels["webhook"].received[0]["text"]
    assert "billable GPU resources may be left (gpu_down failed)" in text
    assert "Since: 2026-12-06 18:04 UTC" in text
    assert "systemctl start parrotpark-gpu-down.service" in text
    probes.records["down"] = {**probes.records["down"], "outcome": "ok", "exit_code": 0}
    clock.advance(minutes=5)
    assert check()["queued"] == ["resolved teardown:down"]


def test_a_cost_cap_reached(setup):
    _config, probes, clock, channels, check = setup
    probes.status = {"phase": "off", "why": None, "eur_month": 12.0}
    assert check()["queued"] == []
    probes.status = {
        "phase": "blocked",
        "why": "cap_eur",
        "message": "This month's GPU budget (EUR 250) is spent; the model is available again from Mon 08:00.",
        "available_from": "2027-01-04T08:00+01:00",
        "eur_month": 250.1,
        "gpu_hours_month": 120.4,
        "gpu_hours_today": 3.0,
        "wakes_today": 2,
    }
    clock.advance(minutes=5)
    assert check()["queued"] == ["alert cap:cap_eur"]
    text = channels["webhook"].received[0]["text"]
    assert "the monthly euro cap (scheduler_max_eur_per_month)" in text
    assert "stays off until 2027-01-04T08:00+01:00" in text
    assert "250.10 EUR" in text
    # The waker does not answer: the cap's alert stays.
    probes.broken.add("waker")
    clock.advance(minutes=5)
    assert check()["queued"] == []
    probes.broken.clear()
    probes.status = {"phase": "off", "why": None}
    clock.advance(minutes=5)
    assert check()["queued"] == ["resolved cap:cap_eur"]


def test_reminders_every_repeat_hours_and_never_with_zero(setup):
    config, probes, clock, channels, check = setup
    config["backup_unit"] = ""  # no backup age in this test
    probes.units["parrotpark-gpu-up.service"] = dict(FAILED_UP)
    check()
    clock.advance(hours=23, minutes=55)
    assert check()["queued"] == []
    clock.advance(minutes=5)
    assert check()["queued"] == ["reminder unit:parrotpark-gpu-up.service"]
    assert channels["webhook"].received[-1]["title"].startswith(f"[STILL OPEN] {HOST}:")
    clock.advance(hours=1)
    assert check()["queued"] == []
    config["repeat_hours"] = 0
    clock.advance(hours=48)
    assert check()["queued"] == []


def test_a_channel_that_fails_gets_the_message_at_the_next_check_and_the_other_only_once(setup):
    _config, probes, clock, channels, check = setup
    channels["webhook"].refuse = True
    probes.units["parrotpark-gpu-up.service"] = dict(FAILED_UP)
    outcome = check()
    assert outcome["delivered"] == {"webhook": 0, "smtp": 1}
    assert outcome["waiting"] == 1
    clock.advance(minutes=5)
    check()
    assert channels["webhook"].received == []
    channels["webhook"].refuse = False
    clock.advance(minutes=5)
    outcome = check()
    assert outcome["delivered"] == {"webhook": 1, "smtp": 0}
    assert outcome["waiting"] == 0
    assert channels["webhook"].kinds() == channels["smtp"].kinds() == ["alert unit:parrotpark-gpu-up.service"]


def test_a_condition_that_clears_before_a_channel_heard_of_it_is_not_resolved_there(setup):
    _config, probes, clock, channels, check = setup
    channels["webhook"].refuse = True
    probes.units["parrotpark-gpu-up.service"] = dict(FAILED_UP)
    check()
    probes.units["parrotpark-gpu-up.service"] = dict(OK_UNIT)
    channels["webhook"].refuse = False
    clock.advance(minutes=5)
    outcome = check()
    assert outcome["waiting"] == 0
    assert channels["webhook"].received == []
    assert channels["smtp"].kinds() == [
        "alert unit:parrotpark-gpu-up.service",
        "resolved unit:parrotpark-gpu-up.service",
    ]


def test_the_state_survives_between_runs(setup):
    config, probes, _clock, _channels, check = setup
    probes.units["parrotpark-gpu-up.service"] = dict(FAILED_UP)
    check()
    state = json.loads((Path(config["state_dir"]) / pa.STATE_FILE).read_text())
    assert list(state["conditions"]) == ["unit:parrotpark-gpu-up.service"]
    assert (Path(config["state_dir"]) / pa.STATE_FILE).stat().st_mode & 0o777 == 0o600


def test_status_output_of_the_scheduler():
    text = "schedule: Mon-Fri 08:00-19:00\nnow: should be down\nnext up: never\n" + json.dumps(
        {"phase": "blocked", "why": "cap_hours"}, indent=2
    )
    assert pa.status_from_output(text) == {"phase": "blocked", "why": "cap_hours"}
    assert pa.status_from_output("schedule: ...\nlast up: never\n") is None
    with pytest.raises(pa.ProbeError):
        pa.status_from_output("{ broken")


def test_containers_from_docker_inspect():
    items = [
        {"Name": "/parrotpark-litellm", "Config": {"Labels": {"parrotpark.role": "litellm"}},
         "State": {"Health": {"Status": "unhealthy", "FailingStreak": 3}}},
        {"Name": "/parrotpark-telegraf", "Config": {"Labels": {"parrotpark.role": "telegraf"}}, "State": {}},
    ]  # fmt: skip
    assert pa.containers_from_inspect(items, "parrotpark.role") == [
        {"name": "parrotpark-litellm", "role": "litellm", "health": "unhealthy", "failing_streak": 3},
        {"name": "parrotpark-telegraf", "role": "telegraf", "health": None, "failing_streak": None},
    ]


def test_secrets_are_masked_everywhere():
    config = {
        "webhook": {"url": f"https://hooks.example.test/{WEBHOOK_TOKEN}", "headers": {"Authorization": HEADER_SECRET}},
        "smtp": {"password": SMTP_PASSWORD},
    }
    secrets = pa.secrets_of(config)
    text = f"x {SMTP_PASSWORD} y https://hooks.example.test/{WEBHOOK_TOKEN} z {HEADER_SECRET}"
    masked = pa.mask(text, secrets)
    for secret in (SMTP_PASSWORD, WEBHOOK_TOKEN, HEADER_SECRET):
        assert secret not in masked


# --------------------------------------------------------------------------
# Real channels: a local webhook receiver and a local SMTP sink
# --------------------------------------------------------------------------


class Receiver:
    """A JSON webhook receiver on 127.0.0.1 (ephemeral port) that keeps every request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [json.loads(request["body"]) for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 (ephemeral port): EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.mails: list[dict] = []
        self.logins: list[tuple[str, str]] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 sink.test ESMTP")
                envelope: dict = {"rcpt": []}
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode().rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-sink.test")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "HELO":
                        self.reply("250 sink.test")
                    elif verb == "AUTH":
                        user, password = base64.b64decode(line.split()[2]).decode().split("\0")[1:]
                        sink.logins.append((user, password))
                        self.reply("235 2.7.0 accepted")
                    elif verb == "MAIL":
                        envelope = {"from": line[10:], "rcpt": []}
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(line[8:])
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        lines = []
                        while (data := self.rfile.readline().decode()) not in (".\r\n", ""):
                            lines.append(data[1:] if data.startswith("..") else data)
                        envelope["data"] = "".join(lines)
                        sink.mails.append(envelope)
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    receiver, sink = Receiver(), SmtpSink()
    yield receiver, sink
    receiver.close()
    sink.close()


def channel_config(tmp_path: Path, receiver: Receiver, sink: SmtpSink) -> dict:
    return make_config(
        tmp_path,
        webhook={
            "url": f"http://127.0.0.1:{receiver.port}/hook/{WEBHOOK_TOKEN}",
            "headers": {"Authorization": HEADER_SECRET},
        },
        smtp={
            "host": "127.0.0.1",
            "port": sink.port,
            "starttls": False,
            "user": "alerts@example.test",
            "password": SMTP_PASSWORD,
            "from": "parrotpark@example.test",
            "to": ["ops@example.test", "oncall@example.test"],
        },
        timeout_seconds=5,
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SMTP_PASSWORD, WEBHOOK_TOKEN, HEADER_SECRET):
            assert secret not in text, f"{secret!r} in {text[:200]!r}"


def test_an_alert_arrives_once_per_real_channel_and_resolves_once(tmp_path, receivers, capsys):
    receiver, sink = receivers
    config = channel_config(tmp_path, receiver, sink)
    clock = Clock()
    probes = FakeProbes(clock)
    senders = pa.senders_for(config)
    assert sorted(senders) == ["smtp", "webhook"]
    probes.units["parrotpark-gpu-down.service"] = dict(FAILED_UP)
    for _tick in range(3):
        pa.run_check(config, probes, senders, clock)
        clock.advance(minutes=5)
    probes.units["parrotpark-gpu-down.service"] = dict(OK_UNIT)
    for _tick in range(3):
        pa.run_check(config, probes, senders, clock)
        clock.advance(minutes=5)

    bodies = receiver.bodies()
    assert [(body["kind"], body["condition"]) for body in bodies] == [
        ("alert", "unit:parrotpark-gpu-down.service"),
        ("resolved", "unit:parrotpark-gpu-down.service"),
    ]
    alert = bodies[0]
    assert set(alert) >= {"text", "title", "severity", "host", "condition"}
    assert alert["host"] == HOST
    assert alert["severity"] == "critical"
    assert bodies[1]["severity"] == "resolved"
    assert "What to do:" in alert["text"]
    assert "systemctl start parrotpark-gpu-down.service" in alert["text"]
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"
    # The header reaches the receiver (it is the channel's credential), and nothing else carries it.
    assert receiver.requests[0]["headers"]["Authorization"] == HEADER_SECRET

    assert len(sink.mails) == 2
    assert sink.logins == [("alerts@example.test", SMTP_PASSWORD)] * 2
    first = sink.mails[0]
    assert first["rcpt"] == ["<ops@example.test>", "<oncall@example.test>"]
    assert f"Subject: [ALERT] {HOST}: parrotpark-gpu-down.service failed" in first["data"]
    assert "X-Parrotpark-Condition: unit:parrotpark-gpu-down.service" in first["data"]
    assert "What to do:" in first["data"]
    assert "Subject: [RESOLVED]" in sink.mails[1]["data"]

    captured = capsys.readouterr()
    assert_no_secret(
        *(request["body"] for request in receiver.requests),
        *(mail["data"] for mail in sink.mails),
        (Path(config["state_dir"]) / pa.STATE_FILE).read_text(),
        captured.out,
        captured.err,
    )


def test_a_receiver_that_fails_gets_the_alert_later_exactly_once(tmp_path, receivers, capsys):
    receiver, sink = receivers
    config = channel_config(tmp_path, receiver, sink)
    clock = Clock()
    probes = FakeProbes(clock)
    senders = pa.senders_for(config)
    receiver.status = 500
    probes.usage = {"/": (100, 95, 5)}
    outcome = pa.run_check(config, probes, senders, clock)
    assert outcome["delivered"] == {"smtp": 1, "webhook": 0}
    assert "webhook: alert disk:/ not delivered (the webhook answered HTTP 500)" in capsys.readouterr().err
    receiver.status = 200
    clock.advance(minutes=5)
    pa.run_check(config, probes, senders, clock)
    clock.advance(minutes=5)
    pa.run_check(config, probes, senders, clock)
    accepted = receiver.bodies()[1:]  # the first request was answered 500
    assert [(body["kind"], body["condition"]) for body in accepted] == [("alert", "disk:/")]
    assert len(sink.mails) == 1


def test_the_test_command_sends_through_every_channel(tmp_path, receivers, capsys):
    receiver, sink = receivers
    config = channel_config(tmp_path, receiver, sink)
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(config))
    assert pa.main(["--config", str(path), "test"], clock=Clock()) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"sent": {"smtp": "sent", "webhook": "sent"}}
    assert receiver.bodies()[0]["title"] == f"[TEST] {HOST}: parrotpark-alert test"
    assert "parrotpark-alert test" in sink.mails[0]["data"]
    assert pa.main(["--config", str(path), "send", "--subject", "Hello", "--body", "World"]) == 0
    assert receiver.bodies()[1]["text"] == "World"
    receiver.status = 503
    assert pa.main(["--config", str(path), "test"]) == 1
    out = capsys.readouterr().out
    assert "the webhook answered HTTP 503" in out
    assert_no_secret(out, *(request["body"] for request in receiver.requests), *(mail["data"] for mail in sink.mails))


def test_an_unreachable_webhook_never_shows_its_url(tmp_path, capsys):
    config = make_config(tmp_path, webhook={"url": f"http://127.0.0.1:9/{WEBHOOK_TOKEN}"}, timeout_seconds=2)
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(config))
    assert pa.main(["--config", str(path), "test"]) == 1
    captured = capsys.readouterr()
    assert "the webhook is unreachable" in captured.out
    assert_no_secret(captured.out, captured.err)
