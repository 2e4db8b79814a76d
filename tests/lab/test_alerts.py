"""Alerts arrive once, say what to do and hold no secret (issue 18), in either layout.

A webhook receiver (Python's http.server, a transient unit on the entrance,
on the loopback address the inventory gives as alerts_webhook_url) writes
every POST it gets to a file. The test then:

- sends a test alert (``parrotpark-alert test``);
- makes the nightly backup unit fail (a runtime drop-in adds a failing
  ExecStartPre): systemd's OnFailure= starts parrotpark-alert@, which sends
  one alert; a check afterwards sends nothing more for it;
- removes the drop-in and runs the backup again: the next check sends one
  "resolved".

Other conditions (the disk, a failed teardown, a cap reached during the
on-demand tests) may have messages waiting; only this test's are counted.
"""

from __future__ import annotations

import json
import time

import pytest
from lab_support import entrance
from test_secrets_not_logged import secret_values

RECEIVED = "/var/tmp/parrotpark-lab-alerts.jsonl"
RECEIVER_UNIT = "parrotpark-lab-alert-receiver"
RECEIVER = f"""
import http.server, json
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open({RECEIVED!r}, "ab") as out:
            out.write(json.dumps({{"path": self.path, "body": body.decode()}}).encode() + b"\\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", 18085), Hook).serve_forever()
"""
BACKUP = "parrotpark-backup.service"
FAILING_DROPIN = f"/run/systemd/system/{BACKUP}.d/zz-lab-fail.conf"


def received() -> list[dict]:
    out = entrance("sh", "-c", f"cat {RECEIVED} 2>/dev/null || true").stdout
    return [json.loads(json.loads(line)["body"]) for line in out.splitlines() if line.strip()]


def wait_for(predicate, seconds: float = 60) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        messages = received()
        if predicate(messages) or time.monotonic() > deadline:
            return messages
        time.sleep(1)


@pytest.fixture(scope="module", autouse=True)
def receiver():
    entrance("rm", "-f", RECEIVED)
    entrance("systemd-run", "--unit", RECEIVER_UNIT, "--collect", "python3", "-c", RECEIVER)
    deadline = time.monotonic() + 30
    probe = "import socket; socket.create_connection(('127.0.0.1', 18085), timeout=2).close()"
    while entrance("python3", "-c", probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.5)
    yield
    entrance("systemctl", "stop", RECEIVER_UNIT, check=False)
    entrance("rm", "-f", FAILING_DROPIN, check=False)
    entrance("systemctl", "daemon-reload", check=False)
    entrance("systemctl", "reset-failed", BACKUP, check=False)


def test_a_test_alert_arrives():
    sent = entrance("parrotpark-alert", "test", check=False)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    messages = wait_for(lambda found: any(m.get("kind") == "test" for m in found), 30)
    assert [m["kind"] for m in messages if m.get("kind") == "test"] == ["test"], messages


def test_a_failed_backup_alerts_once_and_resolves_once():
    entrance("mkdir", "-p", FAILING_DROPIN.rsplit("/", 1)[0])
    entrance("sh", "-c", f"printf '[Service]\\nExecStartPre=/bin/false\\n' > {FAILING_DROPIN}")
    entrance("systemctl", "daemon-reload")
    failed = entrance("systemctl", "start", BACKUP, check=False, timeout=300)
    assert failed.returncode != 0, "the backup was meant to fail"
    alerts = wait_for(lambda found: any(m.get("condition") == f"unit:{BACKUP}" for m in found))
    alerts = [m for m in alerts if m.get("condition") == f"unit:{BACKUP}"]
    assert [m["kind"] for m in alerts] == ["alert"], alerts
    (alert,) = alerts
    # What happened, where, and what to do.
    assert BACKUP in alert["text"] and alert["host"], alert
    assert f"journalctl -u {BACKUP}" in alert["text"], alert["text"]
    # The next check knows it is open: nothing new.
    entrance("parrotpark-alert", "check", timeout=300)
    assert [m["kind"] for m in received() if m.get("condition") == f"unit:{BACKUP}"] == ["alert"]

    entrance("rm", "-f", FAILING_DROPIN)
    entrance("systemctl", "daemon-reload")
    entrance("systemctl", "reset-failed", BACKUP, check=False)
    ok = entrance("systemctl", "start", BACKUP, check=False, timeout=900)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    entrance("parrotpark-alert", "check", timeout=300)
    messages = wait_for(
        lambda found: any(m.get("kind") == "resolved" for m in found if m.get("condition") == f"unit:{BACKUP}")
    )
    kinds = [m["kind"] for m in messages if m.get("condition") == f"unit:{BACKUP}"]
    assert kinds == ["alert", "resolved"], kinds
    entrance("parrotpark-alert", "check", timeout=300)
    assert [m["kind"] for m in received() if m.get("condition") == f"unit:{BACKUP}"] == ["alert", "resolved"]


def test_no_secret_in_any_alert():
    text = json.dumps(received())
    found = [origin for value, origin in secret_values().items() if value in text]
    assert found == [], found
