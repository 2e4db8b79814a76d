"""End to end, on demand: the GPU follows the requests (run after test_e2e.py in the stage lab).

The lab is up in the default layout and test_e2e.py has left the GPU server
gone. ``site.yml`` switches the scheduler to ``on_demand`` with lab times
(boot estimate 2 min, idle 1 min, no quiet hours), then, as users and the
operator meet it:

cold requests through Caddy and LiteLLM are answered at once with the time
the model will be ready, twenty of them at once create exactly one server,
the model answers once the server is up, the GPU's own counters keep it up
while a request runs, and after the idle time the server and everything it
owned are gone; ``parrotpark-gpu status`` and the ledger tell the story.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import openai
import requests
from lab_support import (
    CHAT_MODEL,
    DOWN_TIMEOUT,
    FAKE,
    UP_TIMEOUT,
    assert_double_echoes,
    billable,
    chat,
    entrance,
    fake_state,
    journal,
    only_in_layout,
    openai_client,
    sh,
)
from lab_support import ROOT as LAB_ROOT
from lab_support import lab as lab_settings

SCW_SECRET_KEY = lab_settings.SCW_SECRET_KEY
SCW_PROJECT_ID = lab_settings.SCW_PROJECT_ID

pytestmark = only_in_layout("default")

ON_DEMAND = {
    "scheduler_mode": "on_demand",
    "scheduler_quiet_start": "",
    "scheduler_quiet_end": "",
    "scheduler_quiet_days": [],
    "scheduler_boot_minutes": 2,
    "scheduler_idle_minutes": 1,
    "scheduler_min_off_minutes": 0,
    "scheduler_hold_seconds": 0,
    "scheduler_drain_seconds": 30,
    "scheduler_waker_poll_seconds": 5,
}
STATE_DIR = "/var/lib/parrotpark/scheduler"
# When the first cold request was sent (time.monotonic()), for the wake time printed once the model answers,
# and the server created then (the one the up run adopts after a restart).
WOKEN: dict[str, Any] = {}


# A GET on the entrance: "STATUS BODY" (the entrance's Python, no other tool needed).
HTTP_GET = """
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code, exc.read().decode())
"""


def entrance_get(url: str) -> tuple[int, str]:
    out = entrance("python3", "-c", HTTP_GET, url, check=False)
    assert out.returncode == 0, out.stderr
    code, _space, body = out.stdout.partition(" ")
    return int(code), body


def gpu_status() -> dict:
    """The waker's status, from its control listener on the entrance."""
    code, body = entrance_get("http://127.0.0.1:8090/status")
    assert code == 200, body
    return json.loads(body)


def cold_chat(text: str, client=None) -> tuple[float, Exception | None]:
    """One chat request; how long the answer took and the error it raised (None: answered)."""
    client = client or openai_client()
    started = time.monotonic()
    try:
        chat(client, text)
    except openai.APIError as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_site_switches_the_scheduler_to_on_demand():
    out = sh(str(LAB_ROOT / "scripts" / "lab.sh"), "site", "-e", json.dumps(ON_DEMAND), timeout=1800)
    assert "failed=0" in out.stdout, out.stdout[-4000:]
    assert entrance("systemctl", "is-active", "parrotpark-gpu-waker.service").stdout.strip() == "active"
    for timer in ("parrotpark-gpu-up.timer", "parrotpark-gpu-down.timer"):
        assert entrance("systemctl", "is-enabled", timer, check=False).stdout.strip() != "enabled", timer
    assert gpu_status()["phase"] == "off"
    assert billable(fake_state()) == {"servers": 0, "volumes": 0, "ips": 0}


def test_listing_models_does_not_wake_the_gpu():
    models = openai_client().models.list()
    assert CHAT_MODEL in [model.id for model in models.data]
    time.sleep(2)
    assert gpu_status()["phase"] == "off"
    assert billable(fake_state())["servers"] == 0


def test_twenty_cold_requests_are_answered_at_once_and_create_one_server():
    client = openai_client()  # one client (it writes the lab's CA file), shared by the threads
    WOKEN["at"] = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda n: cold_chat(f"cold request {n}", client), range(20)))
    slowest = max(seconds for seconds, _error in results)
    errors = [error for _seconds, error in results]
    assert all(isinstance(error, openai.APIStatusError) for error in errors), errors
    assert {error.status_code for error in errors} == {503}, [str(error) for error in errors]
    # The waker's sentence as it is (LiteLLM's wrapping undone by the role's callback), with Retry-After.
    sentence = "The model is starting, ready in about"
    assert all(error.body["message"].startswith(sentence) for error in errors), errors[0].body
    assert all(int(error.response.headers["retry-after"]) > 0 for error in errors), errors[0].response.headers
    # Answered at once, not after the boot (a minute at least here): the time is printed, not asserted (speed is
    # measured, not tested: 0.6 s on an idle machine, 3 s with the whole test suite running beside it).
    print(f"20 cold requests: the slowest answer took {slowest:.2f} s; {errors[0]}")
    assert slowest < 30, f"a cold request waited {slowest:.2f} s for its answer: it was held, not answered"
    assert gpu_status()["phase"] == "starting"
    # The up service creates one server, however many requests arrived.
    deadline = time.monotonic() + UP_TIMEOUT
    while billable(fake_state())["servers"] == 0:
        assert time.monotonic() < deadline, "no server was created"
        time.sleep(2)
    time.sleep(5)
    assert billable(fake_state())["servers"] == 1, fake_state()


def test_an_entrance_restart_mid_boot_adopts_the_booting_server():
    """The up run dies with the entrance (here: killed, and the waker restarted): the waker runs it again, and
    gpu_up adopts the server it had created instead of creating a second one."""
    assert gpu_status()["phase"] == "starting"
    WOKEN["servers"] = [server["id"] for server in fake_state()["servers"]]
    assert len(WOKEN["servers"]) == 1
    entrance("systemctl", "kill", "--signal=SIGKILL", "parrotpark-gpu-up.service")
    entrance("systemctl", "restart", "parrotpark-gpu-waker.service")
    deadline = time.monotonic() + 60
    while "running it again" not in journal("parrotpark-gpu-waker.service"):
        assert time.monotonic() < deadline, journal("parrotpark-gpu-waker.service")[-3000:]
        time.sleep(2)
    assert gpu_status()["phase"] == "starting"


def test_the_model_answers_once_the_server_is_up():
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        _seconds, error = cold_chat("are you awake now?")
        if error is None:
            break
        assert isinstance(error, openai.APIStatusError) and error.status_code == 503, error
        assert time.monotonic() < deadline, f"the GPU never became ready: {error}\n{journal('parrotpark-gpu-up')}"
        time.sleep(5)
    assert_double_echoes(chat(openai_client(), "awake"), "awake")
    if "at" in WOKEN:
        print(f"wake: first request to first answer {time.monotonic() - WOKEN['at']:.0f} s (lab boot delay 0)")
    # gpu_up tells the waker once its smoke test has passed, a few seconds after the route is switched.
    deadline = time.monotonic() + 120
    while (state := gpu_status())["phase"] != "ready":
        assert time.monotonic() < deadline, state
        time.sleep(2)
    assert billable(fake_state())["servers"] == 1
    if "servers" in WOKEN:
        assert [server["id"] for server in fake_state()["servers"]] == WOKEN["servers"], "not the adopted server"
    # gpu_up writes its phase timings before it tells the waker.
    print("gpu_up phases:", entrance("cat", f"{STATE_DIR}/gpu_up-timings.json").stdout)


def test_idle_gpu_is_destroyed_with_everything_it_owned():
    started = time.monotonic()
    deadline = started + 60 * ON_DEMAND["scheduler_idle_minutes"] + DOWN_TIMEOUT
    while billable(fake_state()) != {"servers": 0, "volumes": 0, "ips": 0}:
        assert time.monotonic() < deadline, (fake_state(), gpu_status())
        time.sleep(5)
    idle_to_gone = time.monotonic() - started
    print(f"idle to destroyed: {idle_to_gone:.0f} s (idle time {ON_DEMAND['scheduler_idle_minutes']} min)")
    assert idle_to_gone >= 60 * ON_DEMAND["scheduler_idle_minutes"] - 10, "destroyed before the idle time"
    deadline = time.monotonic() + 120
    while gpu_status()["phase"] != "off":
        assert time.monotonic() < deadline, gpu_status()
        time.sleep(3)
    assert "Nothing billable is left" in journal("parrotpark-gpu-down.service")


def test_ledger_records_the_session():
    lines = entrance("cat", f"{STATE_DIR}/gpu-sessions.jsonl").stdout.splitlines()
    # The session of this test: the last one (a lab kept from an earlier run has older ones).
    last = json.loads(lines[-1])["session"]
    events = [event for event in map(json.loads, lines) if event["session"] == last]
    kinds = [event["event"] for event in events]
    assert kinds[:1] == ["created"] and "healthy" in kinds and kinds[-1] == "destroyed", kinds
    assert events[0]["trigger"] == "wake", events[0]
    assert events[-1]["reason"] == "idle", events[-1]
    healthy = next(event for event in events if event["event"] == "healthy")
    assert healthy["commercial_type"] == "L4-1-24G" and healthy["hourly_price_eur"] > 0, healthy


def test_after_the_idle_stop_the_routes_go_to_the_waker_again():
    address = entrance("parrotpark-gpu", "waker-address").stdout.strip()
    assert address.endswith(":8089"), address
    for port in (8000, 8001):
        route = entrance("cat", f"/etc/parrotpark/caddy/routes/gpu-{port}.caddy").stdout
        assert f"reverse_proxy {address} " in route, route
    # A health probe where Caddy sends the routes does not wake the GPU.
    code, body = entrance_get(f"http://{address}/health")
    assert code == 503, body
    time.sleep(2)
    assert gpu_status()["phase"] == "off"
    assert billable(fake_state())["servers"] == 0


def test_the_reaper_destroys_a_stray_tagged_server_and_what_it_owned():
    """A server with the GPU tags that no session owns (a failed run elsewhere, a copy made by hand) bills until
    someone notices; the reaper's timer runs in every mode and removes it with its volume."""
    assert entrance("systemctl", "is-active", "parrotpark-gpu-reap.timer", check=False).stdout.strip() == "active"
    stray = requests.post(
        f"{FAKE}/instance/v1/zones/pl-waw-2/servers",
        headers={"X-Auth-Token": SCW_SECRET_KEY},
        json={
            "name": "parrotpark-gpu-forgotten",
            "commercial_type": "L4-1-24G",
            "image": "ubuntu_noble_gpu_os_13_nvidia",
            "project": SCW_PROJECT_ID,
            "tags": ["parrotpark", "gpu"],
        },
        timeout=30,
    )
    assert stray.status_code in (200, 201), stray.text
    assert billable(fake_state())["servers"] == 1 and billable(fake_state())["volumes"] >= 1
    entrance("systemctl", "start", "parrotpark-gpu-reap.service", timeout=DOWN_TIMEOUT)
    assert billable(fake_state()) == {"servers": 0, "volumes": 0, "ips": 0}, fake_state()
    log = journal("parrotpark-gpu-reap.service")
    assert "parrotpark-gpu-forgotten carries the GPU tags but is not named parrotpark-gpu" in log, log[-3000:]
    assert gpu_status()["phase"] == "off", "the waker had no session: nothing to tell it"
