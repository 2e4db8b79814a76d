"""End to end with the gateway on the GPU server: LiteLLM and LibreChat there.

The entrance is in neither group gateway nor chat. The lab is up in this
layout (``PARROTPARK_LAB_LAYOUT=gpu-gateway scripts/lab.sh up``, stage
gpu-gateway of ``make test``): the entrance runs Caddy, PostgreSQL,
Keycloak, Telegraf and the scheduler only; the up service makes the GPU
server and deploys vLLM, LiteLLM and LibreChat there, with the entrance's
PostgreSQL and Keycloak and an external MongoDB (parrotpark-lab-mongo). Users
still come through the entrance's Caddy. The tests run in file order and
share the lab.

The last tests switch the lab to on demand (``site.yml -e`` with lab times,
as test_e2e_on_demand.py does in the default layout): with the GPU off the
chat site is the waker's offline page, whose loads never start anything; its
button creates one server however often it is pressed, the page then says
the model is starting; after the boot LibreChat and the API answer from the
GPU server, and after the idle time everything is destroyed and the page
offers the button again.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
from typing import Any

import openai
import pytest
import requests
from lab_support import (
    DOWN_TIMEOUT,
    ENTRANCE,
    MONGO,
    ON_DEMAND,
    SECRETS,
    SHORT_IDLE_MINUTES,
    UP_TIMEOUT,
    WAKER_UNIT,
    assert_completions_stream_and_embed,
    assert_double_echoes,
    assert_gpu_up_timings,
    assert_nothing_billable_after_down,
    assert_offline,
    assert_second_site_run_changes_nothing,
    billable,
    chat,
    entrance,
    exchange_code,
    fake_state,
    gpu_servers,
    gpu_status,
    journal,
    keycloak_login,
    lab_address,
    lab_ca,
    on_gpu,
    only_in_layout,
    openai_client,
    restore_waker_settings,
    run_unit,
    set_waker_policy,
    sh,
    site_run,
    site_url,
    wait_for_metric_rows,
    wait_for_window,
    waker_settings,
)
from lab_support import lab as lab_settings

pytestmark = only_in_layout("gpu-gateway")
GPU_SIDE = ["parrotpark-litellm", "parrotpark-librechat", "parrotpark-librechat-rag-api"]


def digest(text: str) -> str:
    """Compare secrets by digest, so that an assertion message never shows one."""
    return hashlib.sha256(text.strip().encode()).hexdigest()


def gpu_env(container: str, name: str) -> str:
    return on_gpu("docker", "exec", container, "printenv", name).stdout.strip()


def chat_site(path: str) -> requests.Response:
    return requests.get(site_url("chat") + path, timeout=30, verify=lab_ca(), allow_redirects=False)


def test_lab_starts_with_nothing_billable():
    counts = billable(fake_state())
    assert counts == {"servers": 0, "volumes": 0, "ips": 0}, counts


def test_entrance_runs_neither_gateway_nor_chat():
    names = entrance("docker", "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "parrotpark-caddy" in names and "parrotpark-keycloak" in names, names
    assert not {*GPU_SIDE, "parrotpark-librechat-mongodb"} & set(names), names


def test_api_and_chat_say_offline_while_no_gpu():
    assert_offline("parrotpark is offline")
    page = chat_site("/")
    assert page.status_code == 503, page.text[:300]
    assert "offline" in page.text.lower(), page.text[:300]


def test_up_service_deploys_gateway_and_chat_on_the_gpu():
    wait_for_window()
    run_unit("parrotpark-gpu-up.service", UP_TIMEOUT)
    listed = gpu_servers()
    assert len(listed) == 1 and listed[0]["state"] == "running", listed
    assert_gpu_up_timings()
    running = on_gpu("docker", "ps", "--format", "{{.Names}}").stdout.split()
    assert set(GPU_SIDE) <= set(running), running
    # Nothing the users keep may live on the server destroyed every evening.
    assert "parrotpark-librechat-mongodb" not in running, running


def test_chat_completion_through_caddy_to_litellm_on_the_gpu():
    assert_completions_stream_and_embed()


def test_gpu_side_services_use_the_entrance_secrets():
    """The GPU's LiteLLM and LibreChat hold the entrance's secrets (Keycloak's client, PostgreSQL's passwords)."""
    entrance_secrets = SECRETS / ENTRANCE
    pairs = {
        "OPENID_CLIENT_SECRET": ("parrotpark-librechat", entrance_secrets / "keycloak-librechat-client-secret"),
        "CREDS_KEY": ("parrotpark-librechat", entrance_secrets / "librechat-creds-key"),
        "POSTGRES_PASSWORD": ("parrotpark-librechat-rag-api", entrance_secrets / "postgres-rag"),
        "LITELLM_MASTER_KEY": ("parrotpark-litellm", SECRETS / "litellm-master-key"),
    }
    differ = []
    for name, (container, path) in pairs.items():
        expected = path.read_text().strip()
        if name == "LITELLM_MASTER_KEY" and not expected.startswith("sk-"):
            expected = "sk-" + expected
        if digest(gpu_env(container, name)) != digest(expected):
            differ.append(name)
    assert differ == [], f"these differ from the controller's files: {differ}"


def test_rag_api_on_the_gpu_uses_the_entrance_postgresql():
    """The RAG API's double connected to the entrance's rag database over the private network at its start."""
    report = on_gpu(
        "docker",
        "exec",
        "parrotpark-librechat-rag-api",
        "node",
        "-e",
        "fetch('http://127.0.0.1:8000/double/report').then(r => r.text()).then(t => console.log(t))",
    ).stdout
    entrance_address = lab_address(ENTRANCE)
    assert f'"target": "{entrance_address}:5432/rag as rag"' in report, report[:2000]
    assert '"connected": true' in report and '"vectorExtension"' in report, report[:2000]


def test_librechat_on_the_gpu_keeps_conversations_in_the_external_mongodb():
    address = lab_address(MONGO)
    assert gpu_env("parrotpark-librechat", "MONGO_URI") == f"mongodb://{address}:27017/LibreChat"
    logs = on_gpu("docker", "logs", "parrotpark-librechat").stdout
    assert f"MongoDB answered ping at {address}:27017" in logs, logs[-2000:]


def test_librechat_on_the_gpu_stores_uploads_in_the_bucket():
    """LibreChat's files outlive the GPU server: its s3 file strategy, in the lab's bucket (parrotpark-lab-s3, the
    backups' bucket). The double wrote an upload there at start with the AWS SDK, as LibreChat does with the same
    environment, and read it back; the S3 server's storage holds it."""
    config = chat_site("/api/config").json()["double"]
    address = lab_address(lab_settings.S3)
    assert config["environment"]["fileStrategy"] == "s3", config["environment"]
    endpoint = f"http://{address}:{lab_settings.S3_CONTAINER_PORT}"
    assert config["environment"]["s3"]["endpoint"] == endpoint, config["environment"]["s3"]
    assert config["s3"]["ok"] is True, config["s3"]
    assert config["s3"]["bucket"] == lab_settings.S3_BUCKET, config["s3"]
    stored = f"/data/{lab_settings.S3_BUCKET}/{config['s3']['key']}"
    assert "written by librechat-double" in sh("docker", "exec", lab_settings.S3, "cat", stored).stdout
    # The keys are in LibreChat's environment on the GPU server, never in the answer of /api/config.
    assert lab_settings.S3_SECRET_KEY not in json.dumps(config)
    assert digest(gpu_env("parrotpark-librechat", "AWS_SECRET_ACCESS_KEY")) == digest(lab_settings.S3_SECRET_KEY)


def test_lab_user_logs_in_to_the_chat_on_the_gpu_through_keycloak():
    """chat.<domain> reaches LibreChat on the GPU server, whose OpenID login leads to the entrance's Keycloak."""
    config = chat_site("/api/config")
    assert config.status_code == 200, config.text[:300]
    assert config.headers.get("x-parrotpark-double") == "librechat", config.headers
    start = chat_site("/oauth/openid")
    assert start.status_code == 302, start.text[:300]
    location = start.headers["Location"]
    # The public URLs carry the lab's HTTPS port (parrotpark_https_port), so a browser comes back to it.
    assert location.startswith(site_url("auth") + "/realms/parrotpark/protocol/openid-connect/auth?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    assert query["client_id"] == ["librechat"], query
    redirect_uri = query["redirect_uri"][0]
    assert redirect_uri == site_url("chat") + "/oauth/openid/callback", redirect_uri
    session = requests.Session()
    ca = lab_ca()
    back = keycloak_login(session, location, ca)
    exchange_code(session, back, redirect_uri, ca)


def test_metrics_of_the_gpu_arrive_in_the_entrance_postgresql():
    """The GPU server's Telegraf scrapes vLLM and the LiteLLM beside it and writes to the entrance's PostgreSQL."""
    wait_for_metric_rows(["vllm:num_requests_running", "litellm_proxy_total_requests_metric_total"], cpu_hosts=2)


def test_down_leaves_nothing_billable_and_both_sites_offline():
    run_unit("parrotpark-gpu-down.service", DOWN_TIMEOUT)
    assert_nothing_billable_after_down()
    assert_offline("parrotpark is offline until")
    page = chat_site("/")
    assert page.status_code == 503 and "offline until" in page.text.lower(), page.text[:300]


def test_second_site_run_changes_nothing():
    """Under Mitogen's strategy (lab_support.site_run); the default layout's second run takes Ansible's own."""
    assert_second_site_run_changes_nothing(mitogen=True)


# --------------------------------------------------------------------------
# On demand with the gateway on the GPU server: while the GPU is off, LiteLLM
# and LibreChat are gone with it, and the entrance's waker answers for both
# sites (Caddy's routes gpu-4000 and gpu-3080 go to it). The chat site shows
# an offline page whose button wakes the GPU; a page load never does.
# --------------------------------------------------------------------------

WAKE_PATH = "/.parrotpark/wake"
ROUTES_DIR = "/etc/parrotpark/caddy/routes"
# What a browser sends when it loads a page, and with the button's form.
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "User-Agent": "Mozilla/5.0"}
EMPTY = {"servers": 0, "volumes": 0, "ips": 0}
# When the button was pressed (time.monotonic()), for the wake time printed once the model answers.
WOKEN: dict[str, Any] = {}


def wait_until(predicate, timeout: float, what: str, pause: float = 3):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s; waker: {gpu_status()}"
        time.sleep(pause)
    return value


def chat_url(path: str) -> str:
    """As a browser has it: with the lab's HTTPS port (the Host and Origin the waker compares carry it)."""
    return site_url("chat") + path


def load_page(path: str = "/") -> requests.Response:
    """The chat site as a browser loads it."""
    return requests.get(chat_url(path), headers=BROWSER, timeout=30, verify=lab_ca(), allow_redirects=False)


def press_wake_button() -> requests.Response:
    """The offline page's button: a form POST from the chat site's own page (same origin)."""
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(chat_url("/")))
    headers = {
        **BROWSER,
        "Origin": origin,
        "Referer": chat_url("/"),
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return requests.post(
        chat_url(WAKE_PATH), data="", headers=headers, timeout=30, verify=lab_ca(), allow_redirects=False
    )


def assert_offline_page(page: requests.Response) -> str:
    """The waker's offline page: 503, HTML, not cached, a Retry-After, reloading itself; its text."""
    assert page.status_code == 503, (page.status_code, page.text[:500])
    assert page.headers["Content-Type"].startswith("text/html"), page.headers
    assert page.headers.get("Cache-Control") == "no-store", page.headers
    assert int(page.headers["Retry-After"]) > 0, page.headers
    assert '<meta http-equiv="refresh" content="' in page.text, page.text
    # Self-contained: nothing to load from anywhere.
    assert "src=" not in page.text and "href=" not in page.text and "<script" not in page.text, page.text
    return page.text


def test_site_switches_the_gpu_gateway_lab_to_on_demand():
    """site.yml on demand in this layout: the waker runs, the timers are off, and both GPU routes (LiteLLM's
    4000 and LibreChat's 3080) go to the waker while the GPU is off."""
    assert billable(fake_state()) == EMPTY
    out = site_run("-e", json.dumps(ON_DEMAND), name="on-demand", mitogen=True)
    assert "failed=0" in out.stdout, out.stdout[-4000:]
    assert "needs the gateway on the entrance" not in out.stdout
    assert entrance("systemctl", "is-active", WAKER_UNIT).stdout.strip() == "active"
    # The idle time site.yml wrote (the idle stops below run with SHORT_IDLE_MINUTES, set in the same file).
    assert waker_settings()["policy"]["idle_minutes"] == ON_DEMAND["scheduler_idle_minutes"], waker_settings()
    for timer in ("parrotpark-gpu-up.timer", "parrotpark-gpu-down.timer"):
        assert entrance("systemctl", "is-enabled", timer, check=False).stdout.strip() != "enabled", timer
    waker = entrance("parrotpark-gpu", "waker-address").stdout.strip()
    assert waker.endswith(":8089"), waker
    for port in (4000, 3080):
        route = entrance("cat", f"{ROUTES_DIR}/gpu-{port}.caddy").stdout
        assert f"reverse_proxy {waker}" in route, (port, route)
    assert gpu_status()["phase"] == "off"


def test_the_chat_site_shows_the_offline_page_and_a_page_load_never_wakes_the_gpu():
    for path in ("/", "/c/new", WAKE_PATH):
        text = assert_offline_page(load_page(path))
        assert "The model is off" in text, text
        assert f'<form method="post" action="{WAKE_PATH}">' in text, text
        assert "Start the model</button>" in text, text
    # LibreChat's own calls (the page it had loaded before the GPU went): JSON with the same sentence.
    api = requests.get(chat_url("/api/config"), timeout=30, verify=lab_ca())
    assert api.status_code == 503, api.text[:300]
    assert api.json()["message"].startswith("The model is off"), api.text
    # Crawlers and link previews load pages: give the waker two polls to prove that nothing starts.
    time.sleep(2 * ON_DEMAND["scheduler_waker_poll_seconds"] + 2)
    assert gpu_status()["phase"] == "off"
    assert billable(fake_state()) == EMPTY
    assert "answered the offline page (off) to GET /c/new" in journal(WAKER_UNIT)


def test_a_press_from_another_site_does_not_wake_the_gpu():
    forged = requests.post(
        chat_url(WAKE_PATH),
        headers={**BROWSER, "Origin": "https://elsewhere.example.net", "Sec-Fetch-Site": "cross-site"},
        timeout=30,
        verify=lab_ca(),
        allow_redirects=False,
    )
    assert forged.status_code == 403, forged.text[:300]
    time.sleep(2)
    assert gpu_status()["phase"] == "off"
    assert billable(fake_state()) == EMPTY


def test_the_wake_button_creates_one_server_and_the_page_says_starting():
    # From here to the idle stop the idle time is SHORT_IDLE_MINUTES, not the minute site.yml wrote (as in the
    # default layout's test): set while the GPU is off.
    assert set_waker_policy(idle_minutes=SHORT_IDLE_MINUTES)["phase"] == "off"
    WOKEN["at"] = time.monotonic()
    pressed = press_wake_button()
    assert pressed.status_code == 303 and pressed.headers["Location"] == "/", (pressed.status_code, pressed.headers)
    # Pressed again, by impatient users: single flight.
    assert [press_wake_button().status_code for _press in range(3)] == [303, 303, 303]
    state = gpu_status()
    assert state["phase"] == "starting" and state["trigger"] == "wake" and state["wakes_today"] >= 1, state
    text = assert_offline_page(load_page("/"))
    assert "The model is starting" in text and ("ready in about" in text or "ready shortly" in text), text
    assert "<form" not in text, text
    # An API request meanwhile is answered at once by the waker, with the same estimate, and wakes nothing more.
    with pytest.raises(openai.APIStatusError) as caught:
        chat(openai_client(), "are you there?")
    assert caught.value.status_code == 503, caught.value
    assert "The model is starting" in str(caught.value), caught.value
    assert int(caught.value.response.headers["retry-after"]) > 0
    wait_until(lambda: billable(fake_state())["servers"] > 0, UP_TIMEOUT, "a server created")
    time.sleep(5)
    assert billable(fake_state())["servers"] == 1, fake_state()
    assert journal(WAKER_UNIT).count("wake: trigger wake") >= 1
    assert "wake: trigger wake, 1 request (POST /.parrotpark/wake)" in journal(WAKER_UNIT)


def test_after_the_boot_the_chat_site_and_the_api_are_answered_on_the_gpu():
    def librechat_answers() -> bool:
        answer = requests.get(chat_url("/api/config"), timeout=30, verify=lab_ca())
        return answer.status_code == 200 and answer.headers.get("x-parrotpark-double") == "librechat"

    wait_until(librechat_answers, UP_TIMEOUT, "LibreChat on the GPU answering the chat site", pause=5)
    page = load_page("/")
    assert page.headers.get("x-parrotpark-double") == "librechat", (page.status_code, page.text[:300])
    assert "Start the model" not in page.text
    assert_double_echoes(chat(openai_client(), "awake on demand"), "awake on demand")
    if "at" in WOKEN:
        print(f"wake button to the model's first answer: {time.monotonic() - WOKEN['at']:.0f} s")
    state = wait_until(lambda: (s := gpu_status())["phase"] == "ready" and s, 120, "the waker told ready")
    # Idle detection reads vLLM's own counters on the GPU server in this layout too.
    assert state["metrics_urls"] and all(url.endswith("/metrics") for url in state["metrics_urls"]), state
    assert set(state["upstreams"]) == {"gpu-4000", "gpu-3080"}, state
    assert billable(fake_state())["servers"] == 1


def test_idle_gpu_is_destroyed_and_the_chat_site_offers_the_button_again():
    """(The idle time is SHORT_IDLE_MINUTES since the wake button.)"""
    started = time.monotonic()
    wait_until(
        lambda: billable(fake_state()) == EMPTY,
        60 * SHORT_IDLE_MINUTES + DOWN_TIMEOUT,
        "the idle GPU server and what it owned destroyed",
        pause=2,
    )
    idle_to_gone = time.monotonic() - started
    print(f"idle to destroyed: {idle_to_gone:.0f} s (idle time {60 * SHORT_IDLE_MINUTES:.0f} s)")
    assert idle_to_gone >= 60 * SHORT_IDLE_MINUTES - 10, "destroyed before the idle time"
    wait_until(lambda: gpu_status()["phase"] == "off", 120, "the waker told destroyed")
    assert "destroy: idle for" in journal(WAKER_UNIT)
    text = assert_offline_page(load_page("/"))
    assert "The model is off" in text and "Start the model</button>" in text, text
    # waker.json back as site.yml wrote it, for the tests after this module.
    restore_waker_settings()
    assert gpu_status()["phase"] == "off"
