"""parrotpark-gpu on demand: the commands that talk to the waker's control listener.

A stand-in control listener (a local HTTP server) records what the command
posts; the waker itself is tested in test_gpu_waker.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "roles" / "scheduler" / "files" / "parrotpark_gpu.py"
# The command calls the waker through gpu_waker.py, installed beside it.
if str(PROGRAM.parent) not in sys.path:
    sys.path.insert(0, str(PROGRAM.parent))
SCHEDULE = {
    "time_zone": "Europe/Paris",
    "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
    "up_time": "08:00",
    "down_time": "19:00",
    "retry_minutes": 15,
    "holidays": [],
}


def _load():
    spec = importlib.util.spec_from_file_location("parrotpark_gpu_waker_cli", PROGRAM)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gpu = _load()


class Control:
    """A stand-in for the waker's control listener: records events, answers as told."""

    def __init__(self, answer_status: int = 200, answer: dict | None = None):
        self.events: list[dict] = []
        self.answer_status = answer_status
        self.answer = answer if answer is not None else {"ok": True}
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                control.events.append(json.loads(self.rfile.read(length)))
                self._send(control.answer_status, control.answer)

            def do_GET(self):
                self._send(200, {"phase": "starting", "eta_seconds": 240, "eur_today": 0.42})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def settings(tmp_path: Path, control: str | None, playbook_exit: int = 0) -> dict:
    (tmp_path / "schedule.json").write_text(json.dumps(SCHEDULE))
    playbook = tmp_path / "ansible-playbook"
    playbook.write_text(f"#!{sys.executable}\nimport sys\nprint('PLAY RECAP stand-in')\nsys.exit({playbook_exit})\n")
    playbook.chmod(0o755)
    (tmp_path / "environment").write_text("")
    return {
        "schedule": str(tmp_path / "schedule.json"),
        "state_dir": str(tmp_path / "state"),
        "environment_file": str(tmp_path / "environment"),
        "ansible_playbook": str(playbook),
        "inventory": str(tmp_path / "inventory"),
        "lock_file": str(tmp_path / "lock"),
        "waker": None if control is None else {"listen": "172.18.0.1:8089", "control": control},
    }


def test_waker_address_is_empty_in_scheduled_mode(tmp_path, capsys):
    assert gpu.main(["waker-address"], settings(tmp_path, None)) == 0
    assert capsys.readouterr().out == "\n"
    assert gpu.main(["waker-address"], settings(tmp_path, "127.0.0.1:1")) == 0
    assert capsys.readouterr().out == "172.18.0.1:8089\n"


def test_event_without_a_waker_is_a_no_op(tmp_path, capsys):
    assert gpu.main(["event", "destroyed"], settings(tmp_path, None)) == 0
    assert "no waker" in capsys.readouterr().out


def test_event_posts_its_name_and_fields(tmp_path):
    data = {"upstreams": {"gpu-8000": "http://10.0.0.5:8000"}, "commercial_type": "L4-1-24G"}
    with Control() as control:
        code = gpu.main(["event", "healthy", "--data", json.dumps(data)], settings(tmp_path, control.address))
    assert code == 0
    assert control.events == [{"event": "healthy", **data}]


def test_event_refused_or_unreachable(tmp_path, capsys):
    with Control(400, {"error": "upstreams must be a mapping"}) as control:
        assert gpu.main(["event", "healthy"], settings(tmp_path, control.address)) == 1
    assert "upstreams must be a mapping" in capsys.readouterr().out
    with Control() as control:
        address = control.address
    assert gpu.main(["event", "destroyed"], settings(tmp_path, address)) == 3
    assert "does not answer" in capsys.readouterr().out


@pytest.mark.parametrize("data", ["[1]", "{not json"])
def test_event_data_must_be_a_json_object(tmp_path, capsys, data):
    assert gpu.main(["event", "healthy", "--data", data], settings(tmp_path, "127.0.0.1:1")) == 2
    assert "--data must be a JSON object" in capsys.readouterr().err


def test_up_by_hand_on_demand_asks_the_waker_instead_of_running_the_playbook(tmp_path, monkeypatch):
    monkeypatch.delenv(gpu.LOCK_HELD_ENV, raising=False)
    with Control() as control:
        assert gpu.main(["up"], settings(tmp_path, control.address)) == 0
    assert control.events == [{"event": "manual_wake"}]
    assert not (tmp_path / "state" / "last-up.json").exists(), "the playbook must not run"


def test_up_from_the_service_reports_a_failed_boot(tmp_path, monkeypatch):
    monkeypatch.setenv(gpu.LOCK_HELD_ENV, "1")
    with Control() as control:
        assert gpu.main(["up"], settings(tmp_path, control.address, playbook_exit=0)) == 0
        assert control.events == [], "a good run: the playbook itself reports healthy"
        assert gpu.main(["up"], settings(tmp_path, control.address, playbook_exit=4)) == 4
    assert control.events == [{"event": "boot_failed"}]


def test_status_shows_the_gpu_state_on_demand(tmp_path, capsys):
    with Control() as control:
        assert gpu.main(["status"], settings(tmp_path, control.address)) == 0
        out = capsys.readouterr().out
        assert "gpu phase: starting" in out and "gpu eta_seconds: 240" in out
        assert gpu.main(["status", "--json"], settings(tmp_path, control.address)) == 0
        assert '"phase": "starting"' in capsys.readouterr().out
    assert gpu.main(["status"], settings(tmp_path, None)) == 0
    assert "gpu phase" not in capsys.readouterr().out
