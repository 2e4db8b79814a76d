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

import json
import time

import openai
import pytest
import requests
from lab_support import (
    CHAT_MODEL,
    DOMAIN,
    DOWN_TIMEOUT,
    ENTRANCE,
    FAKE,
    FAKE_TIMEOUT,
    UP_TIMEOUT,
    api_key,
    assert_completions_stream_and_embed,
    assert_double_echoes,
    assert_gpu_up_timings,
    assert_nothing_billable_after_down,
    assert_offline,
    assert_second_site_run_changes_nothing,
    billable,
    chat,
    container_state,
    entrance,
    fake_state,
    gpu_container,
    gpu_servers,
    lab,
    lab_ca,
    librechat_client_login,
    only_in_layout,
    openai_client,
    psql,
    run_unit,
    sh,
    site_url,
    wait_for_metric_rows,
    wait_for_window,
)

pytestmark = only_in_layout("default")


# -- the tests, in order -------------------------------------------------------


def test_lab_starts_with_nothing_billable():
    counts = billable(fake_state())
    assert counts == {"servers": 0, "volumes": 0, "ips": 0}, counts


def test_gateway_says_offline_while_no_gpu():
    assert_offline("parrotpark is offline")


def test_up_service_creates_the_gpu_after_out_of_stock_in_first_zone():
    # Fault: the first zone has no L4 left; the instance must land in the next.
    requests.post(
        f"{FAKE}/_fake/faults",
        json={"kind": "out_of_stock", "zone": "fr-par-2", "commercial_type": "L4-1-24G", "on": ["create", "poweron"]},
        timeout=FAKE_TIMEOUT,
    ).raise_for_status()
    wait_for_window()
    try:
        run_unit("parrotpark-gpu-up.service", UP_TIMEOUT)
    finally:
        requests.delete(f"{FAKE}/_fake/faults", timeout=FAKE_TIMEOUT).raise_for_status()
    listed = gpu_servers()
    assert len(listed) == 1, listed
    assert listed[0]["zone"] == "pl-waw-2", listed[0]
    assert listed[0]["state"] == "running"
    assert_gpu_up_timings(zone="pl-waw-2")
    assert_gpu_security_group(listed[0])


def assert_gpu_security_group(server: dict) -> None:
    """gpu_up keeps the group parrotpark-gpu in both zones: inbound drop, the private range, SSH from the
    entrance's public address only (inventories/lab); the server wears it."""
    state = fake_state()
    groups = {sg["zone"]: sg for sg in state["security_groups"] if sg["name"] == "parrotpark-gpu"}
    assert sorted(groups) == ["fr-par-2", "pl-waw-2"], state["security_groups"]
    for zone, group in groups.items():
        assert group["inbound_default_policy"] == "drop" and group["outbound_default_policy"] == "accept", group
        rules = [
            (
                rule["direction"],
                rule["action"],
                rule["protocol"].upper(),
                rule["ip_range"].removesuffix("/32"),
                rule["dest_port_from"],
            )
            for rule in state["security_group_rules"].get(group["id"], [])
            if rule.get("editable", True)
        ]
        assert rules == [
            ("inbound", "accept", "ANY", "172.16.4.0/22", None),
            ("inbound", "accept", "TCP", "203.0.113.10", 22),
        ], (zone, rules)
    assert server["security_group"]["id"] == groups["pl-waw-2"]["id"], server["security_group"]


def test_chat_completion_through_caddy_and_litellm():
    assert_completions_stream_and_embed()


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


FILE_SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "file_search",
        "description": "Search the documents attached to the conversation",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def test_a_question_about_a_document_reaches_the_model_as_file_search():
    """Issue 16, item 2: from the plain chat, a question about an uploaded document is searched through the RAG
    API. LibreChat serves the organisation's model with File Search on (what its double reads from the file and
    the environment, as LibreChat does), and runs that model as an agent with a file_search tool: through Caddy
    and LiteLLM, the GPU's vLLM must take requests with the tool (it refuses them, 400, without the vllm role's
    tool-call flags) and, when the tool must be used, call it with the question."""
    config = requests.get(site_url("chat") + "/api/config", timeout=30, verify=lab_ca()).json()
    report = config["double"]["fileSearch"]
    assert report["offered"] is True, report
    assert (report["spec"], report["model"]) == (CHAT_MODEL, CHAT_MODEL), report
    assert config["interface"]["fileSearch"] is True
    # The upload reaches the tool, not the model as a file part (which vLLM refuses), with its text for a turn
    # without File Search (LibreChat's own routing functions, in the double).
    for routing in report["uploads"].values():
        assert routing["paths"]["application/pdf"] == "none", routing
        assert routing["textFallbackWithoutTools"] is True, routing
    assert config["double"]["ragApi"]["reachable"] is True, config["double"]["ragApi"]

    client = openai_client()
    question = "what does the annual report say about volunteers?"
    messages = [{"role": "user", "content": question}]
    answer = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=[FILE_SEARCH_TOOL])
    assert_double_echoes(answer.choices[0].message.content, question)
    call = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, tools=[FILE_SEARCH_TOOL], tool_choice="required"
    )
    assert call.choices[0].finish_reason == "tool_calls", call
    (tool_call,) = call.choices[0].message.tool_calls
    assert tool_call.function.name == "file_search"
    assert json.loads(tool_call.function.arguments) == {"query": question}


def test_lab_user_gets_a_token_through_the_librechat_client():
    assert librechat_client_login()["id_token"]


def test_metrics_rows_arrive_in_postgresql():
    wait_for_metric_rows(["vllm:num_requests_running", "parrotpark_scheduler"], cpu_hosts=2)


def test_killed_model_container_is_repaired_by_the_next_up_tick():
    sh("docker", "exec", gpu_container(), "docker", "kill", "parrotpark-vllm-chat")
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
        timeout=FAKE_TIMEOUT,
    )
    fault.raise_for_status()
    result = entrance("systemctl", "start", "parrotpark-gpu-down.service", timeout=DOWN_TIMEOUT, check=False)
    assert result.returncode != 0, "gpu_down succeeded although the API refused to delete the volume"
    requests.delete(f"{FAKE}/_fake/faults", timeout=FAKE_TIMEOUT).raise_for_status()
    run_unit("parrotpark-gpu-down.service", DOWN_TIMEOUT)
    assert_nothing_billable_after_down()


def test_gateway_is_offline_again_after_down():
    # gpu_down names the next up time (the scheduler's next-up).
    assert_offline("parrotpark is offline until")


def test_entrance_restart_brings_every_service_back_with_its_data():
    """A power cut and a start (systemd as PID 1 takes SIGTERM for a re-exec, so docker kills it anyway: one
    second, not ten, during which the lab network's address is free). PostgreSQL listens on the entrance's
    private address; a server keeps that address across a reboot, and so must the lab's entrance (a molecule
    container created in that second could take it)."""
    before = psql("SELECT count(*) FROM cpu")
    address = lab.lab_address(ENTRANCE)
    sh("docker", "restart", "--time", "1", ENTRANCE, timeout=120)
    assert lab.lab_address(ENTRANCE) == address, (
        f"the lab's entrance came back with another address ({lab.lab_address(ENTRANCE)}, was {address}): "
        "another container took it while it restarted; PostgreSQL cannot listen on the old one"
    )
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


def test_second_site_run_changes_nothing():
    """With Ansible's own strategy, as users run it: the one second run that does (the other repeated runs of the
    end-to-end tests take Mitogen's, lab_support.site_run)."""
    assert_second_site_run_changes_nothing()
