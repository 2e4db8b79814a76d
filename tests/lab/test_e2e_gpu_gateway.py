"""End to end with the gateway on the GPU server: LiteLLM and LibreChat there.

The entrance is in neither group gateway nor chat. The lab is up in this
layout (``PARROTPARK_LAB_LAYOUT=gpu-gateway scripts/lab.sh up``, stage
gpu-gateway of ``make test``): the entrance runs Caddy, PostgreSQL,
Keycloak, Telegraf and the scheduler only; the up service makes the GPU
server and deploys vLLM, LiteLLM and LibreChat there, with the entrance's
PostgreSQL and Keycloak and an external MongoDB (parrotpark-lab-mongo). Users
still come through the entrance's Caddy. The tests run in file order and
share the lab.
"""

from __future__ import annotations

import hashlib
import urllib.parse

import requests
from lab_support import (
    DOMAIN,
    DOWN_TIMEOUT,
    ENTRANCE,
    MONGO,
    SECRETS,
    UP_TIMEOUT,
    assert_completions_stream_and_embed,
    assert_gpu_up_timings,
    assert_nothing_billable_after_down,
    assert_offline,
    assert_second_site_run_changes_nothing,
    billable,
    entrance,
    exchange_code,
    fake_state,
    gpu_servers,
    keycloak_login,
    lab_address,
    lab_ca,
    on_gpu,
    only_in_layout,
    run_unit,
    wait_for_metric_rows,
    wait_for_window,
)

pytestmark = only_in_layout("gpu-gateway")
GPU_SIDE = ["parrotpark-litellm", "parrotpark-librechat", "parrotpark-librechat-rag-api"]


def digest(text: str) -> str:
    """Compare secrets by digest, so that an assertion message never shows one."""
    return hashlib.sha256(text.strip().encode()).hexdigest()


def gpu_env(container: str, name: str) -> str:
    return on_gpu("docker", "exec", container, "printenv", name).stdout.strip()


def chat_site(path: str) -> requests.Response:
    return requests.get(f"https://chat.{DOMAIN}{path}", timeout=30, verify=lab_ca(), allow_redirects=False)


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


def test_lab_user_logs_in_to_the_chat_on_the_gpu_through_keycloak():
    """chat.<domain> reaches LibreChat on the GPU server, whose OpenID login leads to the entrance's Keycloak."""
    config = chat_site("/api/config")
    assert config.status_code == 200, config.text[:300]
    assert config.headers.get("x-parrotpark-double") == "librechat", config.headers
    start = chat_site("/oauth/openid")
    assert start.status_code == 302, start.text[:300]
    location = start.headers["Location"]
    assert location.startswith(f"https://auth.{DOMAIN}/realms/parrotpark/protocol/openid-connect/auth?"), location
    query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    assert query["client_id"] == ["librechat"], query
    redirect_uri = query["redirect_uri"][0]
    assert redirect_uri == f"https://chat.{DOMAIN}/oauth/openid/callback", redirect_uri
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
    assert_second_site_run_changes_nothing()
