"""End to end: the lab as a user meets it (run by `make test`, stage lab).

The lab is up (``scripts/lab.sh up`` ran ``site.yml``). The tests run in file
order and share the lab: the GPU server does not exist, the up service brings
it up in the fake cloud, users reach the model through Caddy and LiteLLM and
log in through Keycloak, metrics arrive, faults are repaired, the down service
leaves nothing billable, and a second ``site.yml`` changes nothing.

Everything talks to 127.0.0.1 (the published ports of the lab) or runs inside
the lab's containers.
"""

from __future__ import annotations

import html
import json
import re
import socket
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

import openai
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ENTRANCE = "parrotpark-lab-entrance"
DOMAIN = "lab.parrotpark.test"
HTTPS_PORT = 8443
FAKE = "http://127.0.0.1:8383"
SECRETS = ROOT / "inventories" / "lab" / "secrets"
CHAT_MODEL = "mistral-nemo-12b"
LAB_CA = ROOT / ".cache" / "lab-ca.crt"

# Bounds of every wait in this file.
UP_TIMEOUT = 900
DOWN_TIMEOUT = 600


# Names of the lab resolve to the published HTTPS port on 127.0.0.1 (the lab
# has no DNS; a browser user adds them to /etc/hosts).
_real_getaddrinfo = socket.getaddrinfo


def _lab_getaddrinfo(host, port, *args, **kwargs):
    if isinstance(host, str) and host.endswith("." + DOMAIN):
        return _real_getaddrinfo("127.0.0.1", HTTPS_PORT if int(port or 443) == 443 else port, *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture(autouse=True, scope="module")
def lab_names():
    socket.getaddrinfo = _lab_getaddrinfo
    yield
    socket.getaddrinfo = _real_getaddrinfo


def sh(*argv: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def entrance(*argv: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("docker", "exec", ENTRANCE, *argv, timeout=timeout, check=check)


def fake_state() -> dict:
    return requests.get(f"{FAKE}/_fake/state", timeout=10).json()


def billable(state: dict) -> dict[str, int]:
    """What the fake cloud would bill: servers, volumes, flexible IPs."""
    return {
        "servers": len(state["servers"]),
        "volumes": len(state["volumes"]) + len(state["instance_volumes"]),
        "ips": len(state["ips"]),
    }


def gpu_servers() -> list[dict]:
    return [s for s in fake_state()["servers"] if s["name"] == "parrotpark-gpu"]


def api_key() -> str:
    key = (SECRETS / "litellm-master-key").read_text().strip()
    return key if key.startswith("sk-") else "sk-" + key


def lab_ca() -> str:
    """Caddy's internal root certificate, from the entrance."""
    out = entrance("docker", "exec", "parrotpark-caddy", "cat", "/data/caddy/pki/authorities/local/root.crt").stdout
    LAB_CA.parent.mkdir(parents=True, exist_ok=True)
    LAB_CA.write_text(out)
    return str(LAB_CA)


def openai_client():
    return openai.OpenAI(
        base_url=f"https://api.{DOMAIN}/v1",
        api_key=api_key(),
        http_client=openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=lab_ca()), timeout=60),
        max_retries=0,
    )


def psql(sql: str) -> str:
    return entrance(
        "docker", "exec", "parrotpark-postgres", "psql", "-U", "postgres", "-d", "metrics", "-tAc", sql
    ).stdout.strip()


def journal(unit: str) -> str:
    return entrance("journalctl", "-u", unit, "--no-pager", "-n", "200", check=False).stdout


def run_unit(unit: str, timeout: float) -> None:
    """Start a oneshot service and wait for it; fail with its journal."""
    started = entrance("systemctl", "start", unit, timeout=timeout, check=False)
    if started.returncode != 0:
        raise AssertionError(f"{unit} failed:\n{started.stderr}\n{journal(unit)[-6000:]}")


def wait_for_window() -> None:
    """The lab's schedule is all day up to 23:59; do not start at the edge."""
    for _second in range(90):
        if entrance("parrotpark-gpu", "should-be-up", check=False).returncode == 0:
            return
        time.sleep(1)
    raise AssertionError("the lab's schedule never said the GPU should be up")


def chat(client, text: str) -> str:
    reply = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": text}], max_tokens=16
    )
    return reply.choices[0].message.content


def assert_double_echoes(answer: str, text: str) -> None:
    """The answer is the GPU server's vllm-double echoing ``text`` (lab/images/vllm-double)."""
    assert answer.startswith(f"[vllm-double {CHAT_MODEL}] echo:"), answer
    assert answer.endswith(f"echo: {text}"), answer


# -- the tests, in order -------------------------------------------------------


def test_lab_starts_with_nothing_billable():
    counts = billable(fake_state())
    assert counts == {"servers": 0, "volumes": 0, "ips": 0}, counts


def assert_offline(words: str) -> None:
    """The gateway answers the offline error of Caddy's route, through LiteLLM."""
    with pytest.raises(openai.APIStatusError) as caught:
        chat(openai_client(), "anyone there?")
    assert words in str(caught.value).lower(), caught.value


def test_gateway_says_offline_while_no_gpu():
    assert_offline("parrotpark is offline")


def test_up_service_creates_the_gpu_after_out_of_stock_in_first_zone():
    # Fault: the first zone has no L4 left; the instance must land in the next.
    requests.post(
        f"{FAKE}/_fake/faults",
        json={"kind": "out_of_stock", "zone": "fr-par-2", "commercial_type": "L4-1-24G", "on": ["create", "poweron"]},
        timeout=10,
    ).raise_for_status()
    wait_for_window()
    try:
        run_unit("parrotpark-gpu-up.service", UP_TIMEOUT)
    finally:
        requests.delete(f"{FAKE}/_fake/faults", timeout=10).raise_for_status()
    listed = gpu_servers()
    assert len(listed) == 1, listed
    assert listed[0]["zone"] == "pl-waw-2", listed[0]
    assert listed[0]["state"] == "running"
    timings = json.loads(entrance("cat", "/var/lib/parrotpark/scheduler/gpu_up-timings.json").stdout)
    assert timings["zone"] == "pl-waw-2"
    assert timings["created_now"] is True, timings
    phases = timings["phases_seconds"]
    assert set(phases) == {"create", "boot", "deploy", "healthy", "first_token"}, timings
    assert all(float(seconds) >= 0 for seconds in phases.values()), timings
    assert abs(sum(float(seconds) for seconds in phases.values()) - float(timings["total_seconds"])) < 1, timings
    print("gpu_up phases:", json.dumps(timings["phases_seconds"]), "total", timings["total_seconds"])


def test_chat_completion_through_caddy_and_litellm():
    client = openai_client()
    assert_double_echoes(chat(client, "parrotpark end to end"), "parrotpark end to end")
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "stream please"}], max_tokens=16, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    # One chunk per word of the double's answer, which arrives whole.
    assert len([p for p in pieces if p]) >= 2, pieces
    assert_double_echoes("".join(pieces), "stream please")
    embedding = client.embeddings.create(model="bge-m3", input=["a parrot in a park"])
    assert len(embedding.data[0].embedding) >= 384


def test_the_answer_comes_from_the_gpu_double():
    session = requests.Session()
    # Per request: a session's verify loses against REQUESTS_CA_BUNDLE.
    ca = lab_ca()
    r = session.post(
        f"https://api.{DOMAIN}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api_key()}"},
        json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "who answers?"}], "max_tokens": 8},
        timeout=60,
        verify=ca,
    )
    assert r.status_code == 200, r.text
    # LiteLLM passes the model server's name for the model through, and the
    # text is the double's: the request reached the GPU server's vLLM port.
    assert r.json()["model"].endswith(CHAT_MODEL), r.json()
    assert_double_echoes(r.json()["choices"][0]["message"]["content"], "who answers?")


def test_lab_user_gets_a_token_through_the_librechat_client():
    password = (SECRETS / "lab-user-password").read_text().strip()
    client_secret = (SECRETS / ENTRANCE / "keycloak-librechat-client-secret").read_text().strip()
    session = requests.Session()
    # Per request: a session's verify loses against REQUESTS_CA_BUNDLE.
    ca = lab_ca()
    redirect_uri = f"https://chat.{DOMAIN}/oauth/openid/callback"
    auth = f"https://auth.{DOMAIN}/realms/parrotpark/protocol/openid-connect"
    page = session.get(
        f"{auth}/auth",
        params={"client_id": "librechat", "response_type": "code", "scope": "openid", "redirect_uri": redirect_uri},
        timeout=30,
        verify=ca,
    )
    assert page.status_code == 200, page.text[:500]
    action = html.unescape(re.search(r'action="([^"]+)"', page.text).group(1))
    login = session.post(
        action, data={"username": "lab", "password": password}, allow_redirects=False, timeout=30, verify=ca
    )
    assert login.status_code == 302, login.text[:500]
    location = login.headers["Location"]
    assert location.startswith(redirect_uri), location
    code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
    token = session.post(
        f"{auth}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=("librechat", client_secret),
        timeout=30,
        verify=ca,
    )
    assert token.status_code == 200, token.text
    assert token.json()["id_token"], token.json()


def test_metrics_rows_arrive_in_postgresql():
    deadline = time.monotonic() + 90
    while True:
        vllm_rows = (
            psql('SELECT count(*) FROM "vllm:num_requests_running"') if _table("vllm:num_requests_running") else "0"
        )
        sched_rows = psql("SELECT count(*) FROM parrotpark_scheduler") if _table("parrotpark_scheduler") else "0"
        cpu_hosts = psql("SELECT count(DISTINCT host) FROM cpu") if _table("cpu") else "0"
        if int(vllm_rows) > 0 and int(sched_rows) > 0 and int(cpu_hosts) >= 2:
            break
        assert time.monotonic() < deadline, (vllm_rows, sched_rows, cpu_hosts)
        time.sleep(5)


def _table(name: str) -> bool:
    return psql(f"SELECT count(*) FROM pg_tables WHERE tablename = '{name}'") == "1"


def test_killed_model_container_is_repaired_by_the_next_up_tick():
    gpu = gpu_servers()[0]
    container = "parrotpark-lab-srv-" + gpu["id"][:8]
    sh("docker", "exec", container, "docker", "kill", "parrotpark-vllm-chat")
    client = openai_client()
    with pytest.raises(openai.APIError):
        chat(client, "is the model gone?")
    wait_for_window()
    run_unit("parrotpark-gpu-up.service", UP_TIMEOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = chat(client, "back again")
            break
        except openai.APIError:
            assert time.monotonic() < deadline
            time.sleep(3)
    assert_double_echoes(answer, "back again")


def test_interrupted_down_is_finished_by_the_next_down():
    # Fault: the API refuses to delete the server's volume; gpu_down fails
    # after the server is gone but before its disk is.
    fault = requests.post(
        f"{FAKE}/_fake/faults",
        json={
            "kind": "http_error",
            "method": "DELETE",
            "path": "^/block/v1[a-z0-9]*/zones/[^/]+/volumes/",
            "status": 503,
        },
        timeout=10,
    )
    fault.raise_for_status()
    result = entrance("systemctl", "start", "parrotpark-gpu-down.service", timeout=DOWN_TIMEOUT, check=False)
    assert result.returncode != 0, "gpu_down succeeded although the API refused to delete the volume"
    requests.delete(f"{FAKE}/_fake/faults", timeout=10).raise_for_status()
    run_unit("parrotpark-gpu-down.service", DOWN_TIMEOUT)
    counts = billable(fake_state())
    assert counts == {"servers": 0, "volumes": 0, "ips": 0}, counts
    left = sh("docker", "ps", "-aq", "--filter", "label=parrotpark.fakescw.server").stdout.split()
    assert left == [], left
    assert "Nothing billable is left" in journal("parrotpark-gpu-down.service")


def test_gateway_is_offline_again_after_down():
    # gpu_down names the next up time (the scheduler's next-up).
    assert_offline("parrotpark is offline until")


def test_entrance_restart_brings_every_service_back_with_its_data():
    before = psql("SELECT count(*) FROM cpu")
    sh("docker", "restart", ENTRANCE, timeout=120)
    deadline = time.monotonic() + 300
    names = [
        "parrotpark-caddy",
        "parrotpark-postgres",
        "parrotpark-keycloak",
        "parrotpark-litellm",
        "parrotpark-librechat",
        "parrotpark-telegraf",
    ]
    while True:
        states = {name: container_state(name) for name in names}
        if all(state in ("running", "running healthy") for state in states.values()):
            break
        assert time.monotonic() < deadline, states
        time.sleep(5)
    assert int(psql("SELECT count(*) FROM cpu")) >= int(before)
    test_lab_user_gets_a_token_through_the_librechat_client()
    test_gateway_is_offline_again_after_down()


def container_state(name: str) -> str:
    fmt = "{{.State.Status}}{{if .State.Health}} {{.State.Health.Status}}{{end}}"
    return entrance("docker", "inspect", "-f", fmt, name, check=False).stdout.strip() or "missing"


def test_second_site_run_changes_nothing():
    out = sh(str(ROOT / "scripts" / "lab.sh"), "site", timeout=1800)
    recap = re.search(r"^parrotpark-lab-entrance\s+: ok=\d+\s+changed=(\d+)", out.stdout, re.M)
    assert recap, out.stdout[-3000:]
    assert recap.group(1) == "0", out.stdout[-6000:]
