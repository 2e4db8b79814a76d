"""Verify the litellm role on a molecule platform.

LiteLLM runs as the variables say (image, command, environment, ports,
config.yaml readable by root only and free of secrets), is ready, and routes:
a chat completion (plain and streamed) and an embedding sent to LiteLLM with
the master key reach the vllm-double serving that model (the double names
the served model in its answers and counts requests per model on /metrics).
A request without a key or with a wrong key is refused and reaches no
upstream. LiteLLM's Prometheus metrics count the requests (behind the master
key when the scenario says so, with the end user's header as a label only
when asked). With an upstream stopped, the answer is LiteLLM's error naming
the model, within seconds, or the fallback's answer where one is configured,
and the model is used again once its upstream is back. The role run again
refuses a config.yaml LiteLLM's own check rejects, and a salt key that
differs from the running one, without changing anything. Where the GPU runs
on demand with a fallback (molecule/litellm-on-demand), the last test puts the
scheduler's real waker in place of the chat model's upstream: while the GPU
is cold the fallback answers and says so, the requests wake the GPU exactly
once, and a request without fallbacks gets the waker's sentence.

HTTP requests run on the molecule host with its own python3 and
http_probe.py (standard library only), through the published port on the
host's loopback, as LibreChat's requests would through the docker network.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import converge, inspect_container, recap_changed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles/litellm/defaults/main.yml").read_text())
PROBE = HERE / "http_probe.py"
REMOTE_PROBE = "/tmp/http_probe.py"
CONTAINER_PORT = 4000
# The bound for "fails fast": an upstream that refuses connections must not hold a request longer.
FAST_SECONDS = 10


@pytest.fixture(scope="module")
def lab(host) -> dict[str, Any]:
    """The scenario's settings: role defaults overlaid with its inventory, plus what the tests derive."""
    variables = host.ansible.get_variables()
    settings = {key: variables.get(key, value) for key, value in DEFAULTS.items()}
    settings["doubles"] = variables["molecule_vllm_doubles"]
    secrets = Path(variables["parrotpark_secrets_dir"])
    master = (secrets / "litellm-master-key").read_text().split()[0]
    settings["master_key"] = master if master.startswith("sk-") else "sk-" + master
    settings["upstream_key"] = (secrets / "vllm-api-key").read_text().split()[0]
    settings["salt_key"] = (secrets / host.backend.get_hostname() / "litellm-salt-key").read_text().split()[0]
    address = settings["litellm_listen_addresses"][0]
    address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    settings["base"] = f"http://{f'[{address}]' if ':' in address else address}:{settings['litellm_port']}"
    return settings


@pytest.fixture(scope="module")
def probe(host):
    """Run http_probe.py on the molecule host; returns its JSON answer."""
    copied = host.ansible("copy", f"src={PROBE} dest={REMOTE_PROBE} mode=0644", check=False)
    assert not copied.get("failed"), copied

    def run(url: str, **spec: Any) -> dict[str, Any]:
        result = host.run(f"python3 {REMOTE_PROBE} {shlex.quote(json.dumps({'url': url, **spec}))}")
        assert result.rc == 0, result.stderr
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="module")
def container(host, lab) -> dict[str, Any]:
    return inspect_container(host, lab["litellm_container_name"])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def served(lab: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [model for model in lab["litellm_models"] if model.get("mode", "chat") == mode]


def double_for(host, lab: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """The vllm-double serving a model (by its port), with the URL it is published on."""
    double = next(item for item in lab["doubles"] if item["port"] == model["port"])
    info = json.loads(host.check_output(f"docker inspect {double['name']}"))[0]
    binding = info["HostConfig"]["PortBindings"][f"{double['port']}/tcp"][0]
    return {**double, "url": f"http://{binding['HostIp']}:{binding['HostPort']}"}


def double_requests(probe, double: dict[str, Any], served_name: str) -> float:
    """Requests the double has answered for a model (vLLM's vllm:request_success_total on its /metrics)."""
    answer = probe(f"{double['url']}/metrics")
    assert answer["status"] == 200, answer
    pattern = rf'^vllm:request_success_total\{{[^}}]*model_name="{re.escape(served_name)}"[^}}]*\}} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, answer["body"], re.M))


def chat(probe, lab: dict[str, Any], model: str, text: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 32}
    headers = {**auth(key or lab["master_key"]), **extra.pop("headers", {})}
    return probe(f"{lab['base']}/v1/chat/completions", method="POST", headers=headers, json=body, **extra)


def content(answer: dict[str, Any]) -> str:
    assert answer["status"] == 200, answer
    return answer["body"]["choices"][0]["message"]["content"]


def error_message(answer: dict[str, Any]) -> str:
    body = answer["body"]
    return body.get("error", {}).get("message", "") if isinstance(body, dict) else str(body)


# --- how it runs ----------------------------------------------------------------


def test_container_runs_the_image_with_the_configured_command(container, lab):
    assert container["Config"]["Image"] == lab["litellm_image"]
    assert container["State"]["Running"], container["State"]
    command = container["Config"]["Cmd"]
    expected = [
        "--config", "/app/config.yaml", "--port", str(CONTAINER_PORT),
        "--num_workers", str(lab["litellm_num_workers"]),
        "--keepalive_timeout", str(lab["litellm_keepalive_timeout"]),
        "--telemetry", "False",
    ]  # fmt: skip
    if lab["litellm_num_workers"] > 1:
        # uvicorn's 5 s health ping kills workers still starting on a busy host.
        expected += ["--timeout_worker_healthcheck", str(lab["litellm_worker_healthcheck_timeout"])]
    if lab["litellm_max_requests_before_restart"]:
        expected += ["--max_requests_before_restart", str(lab["litellm_max_requests_before_restart"])]
    assert command == expected + lab["litellm_extra_args"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert lab["litellm_docker_network"] in container["NetworkSettings"]["Networks"]
    assert container["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert container["Config"]["Labels"]["parrotpark.role"] == "litellm"
    mounts = {mount["Destination"]: mount for mount in container["Mounts"]}
    assert mounts["/app/config.yaml"]["Source"] == f"{lab['litellm_config_dir']}/config.yaml"
    assert mounts["/app/config.yaml"]["RW"] is False


def test_container_environment(container, lab):
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert env["LITELLM_MASTER_KEY"] == lab["master_key"]
    assert env["LITELLM_SALT_KEY"] == lab["salt_key"]
    assert env["LITELLM_UPSTREAM_API_KEY"] == lab["upstream_key"]
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_LOG"] == lab["litellm_log_level"]
    assert ("DATABASE_URL" in env) == lab["litellm_database_enabled"]
    assert ("LITELLM_FALLBACK_API_KEY" in env) == bool(lab["litellm_fallback"])
    for name, value in lab["litellm_env"].items():
        assert env[name] == str(value)


def test_published_only_where_asked(container, lab):
    bindings = container["HostConfig"]["PortBindings"]
    assert set(bindings) == {f"{CONTAINER_PORT}/tcp"}
    published = {(item["HostIp"], item["HostPort"]) for item in bindings[f"{CONTAINER_PORT}/tcp"]}
    assert published == {(address, str(lab["litellm_port"])) for address in lab["litellm_listen_addresses"]}


def test_config_file_root_only_and_free_of_secrets(host, lab):
    config = host.file(f"{lab['litellm_config_dir']}/config.yaml")
    assert config.is_file
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)
    assert host.file(lab["litellm_config_dir"]).mode == 0o750
    text = config.content_string
    for secret in (lab["master_key"], lab["salt_key"], lab["upstream_key"], lab["litellm_fallback"].get("api_key")):
        if secret:
            assert secret not in text
    data = yaml.safe_load(text)
    entries = {entry["model_name"]: entry for entry in data["model_list"]}
    for model in lab["litellm_models"]:
        params = entries[model["name"]]["litellm_params"]
        assert params["model"] == f"hosted_vllm/{model['served_name']}"
        assert params["api_base"].endswith(f":{model['port']}/v1")
        assert params["api_key"] == "os.environ/LITELLM_UPSTREAM_API_KEY"
        assert entries[model["name"]]["model_info"]["mode"] == model.get("mode", "chat")
        own = model.get("model_info", {}).get("disable_background_health_check", lab["litellm_gpu_on_demand"])
        assert entries[model["name"]]["model_info"].get("disable_background_health_check", False) is own
    assert data["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    on_demand = lab["litellm_gpu_on_demand"]
    # On demand: no retry, no cooldown, no health check of the GPU's models, and the waker's 503 passed through.
    assert data["router_settings"]["num_retries"] == (0 if on_demand else lab["litellm_num_retries"])
    assert data["router_settings"].get("disable_cooldowns", False) is on_demand
    assert data["litellm_settings"]["callbacks"] == ["prometheus"] + (
        ["parrotpark_callbacks.waker_errors"] if on_demand else []
    )
    assert data["litellm_settings"]["require_auth_for_metrics_endpoint"] is lab["litellm_metrics_require_auth"]
    if lab["litellm_fallback"]:
        name = lab["litellm_fallback"].get("name", "parrotpark-fallback")
        chats = [model["name"] for model in served(lab, "chat")]
        assert data["router_settings"]["fallbacks"] == [{chat_name: [name]} for chat_name in chats]
        assert entries[name]["litellm_params"]["api_key"] == "os.environ/LITELLM_FALLBACK_API_KEY"
    else:
        assert "fallbacks" not in data["router_settings"]


def test_ready(probe, lab):
    answer = probe(f"{lab['base']}/health/readiness")
    assert answer["status"] == 200, answer
    assert answer["body"]["status"] == "healthy"
    assert answer["body"]["db"] == ("connected" if lab["litellm_database_enabled"] else "Not connected")


def test_models_listed_under_their_public_names(probe, lab):
    answer = probe(f"{lab['base']}/v1/models", headers=auth(lab["master_key"]))
    assert answer["status"] == 200, answer
    names = {model["id"] for model in answer["body"]["data"]}
    assert {model["name"] for model in lab["litellm_models"]} <= names


# --- routing ----------------------------------------------------------------------


def test_chat_completion_reaches_the_double_serving_the_model(host, probe, lab):
    for model in served(lab, "chat"):
        double = double_for(host, lab, model)
        before = double_requests(probe, double, model["served_name"])
        answer = chat(probe, lab, model["name"], "Hello from the litellm test")
        assert content(answer) == f"[vllm-double {model['served_name']}] echo: Hello from the litellm test"
        assert answer["body"]["model"] == model["name"]
        assert double_requests(probe, double, model["served_name"]) == before + 1


def test_streamed_chat_completion(probe, lab):
    model = served(lab, "chat")[0]
    answer = probe(
        f"{lab['base']}/v1/chat/completions",
        method="POST",
        headers=auth(lab["master_key"]),
        json={"model": model["name"], "stream": True, "messages": [{"role": "user", "content": "stream this please"}]},
    )
    assert answer["status"] == 200, answer
    events = [line[len("data: ") :] for line in answer["body"].splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    pieces = [
        json.loads(event)["choices"][0]["delta"].get("content") or "" for event in events[:-1] if '"choices"' in event
    ]
    assert "".join(pieces) == f"[vllm-double {model['served_name']}] echo: stream this please"


def test_embedding_reaches_the_double_serving_the_model(host, probe, lab):
    for model in served(lab, "embedding"):
        double = double_for(host, lab, model)
        before = double_requests(probe, double, model["served_name"])
        answer = probe(
            f"{lab['base']}/v1/embeddings",
            method="POST",
            headers=auth(lab["master_key"]),
            json={"model": model["name"], "input": ["a sovereign chat service", "un service de chat souverain"]},
        )
        assert answer["status"] == 200, answer
        vectors = [item["embedding"] for item in answer["body"]["data"]]
        expected_size = int(double.get("env", {}).get("DOUBLE_EMBEDDING_DIM", 384))
        assert [len(vector) for vector in vectors] == [expected_size, expected_size]
        assert vectors[0] != vectors[1]
        assert double_requests(probe, double, model["served_name"]) == before + 1


def test_requests_without_the_right_key_are_refused(host, probe, lab):
    model = served(lab, "chat")[0]
    double = double_for(host, lab, model)
    before = double_requests(probe, double, model["served_name"])
    missing = probe(
        f"{lab['base']}/v1/chat/completions",
        method="POST",
        json={"model": model["name"], "messages": [{"role": "user", "content": "no key"}]},
    )
    assert missing["status"] == 401, missing
    assert "No api key passed in" in error_message(missing)
    wrong = chat(probe, lab, model["name"], "wrong key", key="sk-not-the-master-key-0123456789")
    if lab["litellm_database_enabled"]:
        assert wrong["status"] == 401, wrong
    else:
        # Without a database LiteLLM cannot look a virtual key up, and says so instead of 401.
        assert (wrong["status"], error_message(wrong)) == (400, "No connected db."), wrong
    assert double_requests(probe, double, model["served_name"]) == before


def test_metrics_count_the_requests(probe, lab):
    model = served(lab, "chat")[0]
    end_user = "tester@example.test"
    assert content(chat(probe, lab, model["name"], "metrics", headers={"x-litellm-end-user-id": end_user}))
    url = f"{lab['base']}/metrics"
    if lab["litellm_metrics_require_auth"]:
        refused = probe(url)
        assert refused["status"] == 401, refused
        answer = probe(url, headers=auth(lab["master_key"]))
    else:
        answer = probe(url)
    assert answer["status"] == 200, answer
    lines = [
        line for line in answer["body"].splitlines() if line.startswith("litellm_proxy_total_requests_metric_total{")
    ]
    ours = [line for line in lines if f'requested_model="{model["name"]}"' in line and 'status_code="200"' in line]
    assert ours, answer["body"][:3000]
    labelled = [line for line in lines if f'end_user="{end_user}"' in line]
    assert bool(labelled) == lab["litellm_end_user_metrics"], lines


# --- the role again, against this instance ------------------------------------------


def container_id(host, lab: dict[str, Any]) -> str:
    return host.check_output(f"docker inspect --format '{{{{.Id}}}}' {lab['litellm_container_name']}")


def test_config_litellm_rejects_is_not_installed(host, lab, container):
    """A model entry without litellm_params.model (which the proxy would silently drop) stops the role."""
    config = f"{lab['litellm_config_dir']}/config.yaml"
    before = host.check_output(f"sha256sum {config}")
    broken = {"model_list": [{"model_name": "broken", "litellm_params": {"api_base": "http://127.0.0.1:9/v1"}}]}
    result = converge({"litellm_extra_config": broken})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-4000:]
    assert "The new config.yaml was not installed and LiteLLM keeps running the previous one" in output, output[-4000:]
    assert "model_list[0] (broken): litellm_params: model: Field required" in output, output[-4000:]
    assert recap_changed(result) == 0
    assert host.check_output(f"sha256sum {config}") == before
    assert (
        host.check_output(f"docker inspect --format '{{{{.Id}}}}' {lab['litellm_container_name']}") == container["Id"]
    )


def test_changed_config_restarts_the_container(host, probe, lab, container):
    """A changed config.yaml alone restarts the same container, which then runs it (the role waits for it)."""
    # On demand the role writes no retries whatever litellm_num_retries says: change the cooldown there.
    setting, key = ("litellm_num_retries", "num_retries")
    if lab["litellm_gpu_on_demand"]:
        setting, key = ("litellm_cooldown_time", "cooldown_time")
    value = lab[setting] + 1
    result = converge({setting: value})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    assert recap_changed(result) >= 1
    assert "RUNNING HANDLER [parrotpark.llm.litellm : Restart LiteLLM]" in result.stdout
    after = json.loads(host.check_output(f"docker inspect {lab['litellm_container_name']}"))[0]
    assert after["Id"] == container["Id"]
    assert after["State"]["StartedAt"] > container["State"]["StartedAt"]
    config = yaml.safe_load(host.file(f"{lab['litellm_config_dir']}/config.yaml").content_string)
    assert config["router_settings"][key] == value
    assert probe(f"{lab['base']}/health/readiness")["status"] == 200


def test_changed_salt_key_is_refused(host, lab, container):
    """With a database, a salt key other than the running one would make its stored credentials unreadable."""
    result = converge({"litellm_database_enabled": True, "litellm_salt_key": "another-salt-key-0123456789abcdefghij"})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-4000:]
    assert "litellm_salt_key differs from the one container" in output, output[-4000:]
    assert "another-salt-key-0123456789abcdefghij" not in output
    assert recap_changed(result) == 0
    assert (
        host.check_output(f"docker inspect --format '{{{{.Id}}}}' {lab['litellm_container_name']}") == container["Id"]
    )


# --- an upstream down (last: stops and starts the doubles) ----------------------------


def wait_for_double(probe, double: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    while probe(f"{double['url']}/health", timeout=3)["status"] != 200:
        assert time.monotonic() < deadline, f"{double['name']} did not answer again"
        time.sleep(1)


def test_upstream_down_fails_fast_or_falls_back(host, probe, lab):
    model = served(lab, "chat")[0]
    double = double_for(host, lab, model)
    host.check_output(f"docker stop -t 2 {double['name']}")
    try:
        for attempt in range(2):
            answer = chat(probe, lab, model["name"], f"while the GPU is away {attempt}", timeout=60)
            assert answer["seconds"] < FAST_SECONDS, answer
            if lab["litellm_fallback"]:
                fallback_served = lab["litellm_fallback"]["model"].split("/", 1)[1]
                assert content(answer) == f"[vllm-double {fallback_served}] echo: while the GPU is away {attempt}"
            else:
                message = error_message(answer)
                assert answer["status"] in (429, 500, 503), answer
                assert model["name"] in message, message
                assert re.search(r"Cannot connect to host|No deployments available for selected model", message), (
                    message
                )
    finally:
        host.check_output(f"docker start {double['name']}")
        wait_for_double(probe, double)


def test_embedding_upstream_down_fails_fast(host, probe, lab):
    """Embedding models have no fallback (other vectors would not match stored ones): a clear error, quickly."""
    model = served(lab, "embedding")[0]
    double = double_for(host, lab, model)
    host.check_output(f"docker stop -t 2 {double['name']}")
    try:
        answer = probe(
            f"{lab['base']}/v1/embeddings",
            method="POST",
            headers=auth(lab["master_key"]),
            json={"model": model["name"], "input": "while the GPU is away"},
            timeout=60,
        )
        assert answer["seconds"] < FAST_SECONDS, answer
        assert answer["status"] in (429, 500, 503), answer
        assert model["name"] in error_message(answer), answer
    finally:
        host.check_output(f"docker start {double['name']}")
        wait_for_double(probe, double)


def test_model_used_again_once_its_upstream_is_back(host, probe, lab):
    """After the cooldown, requests reach the restarted upstream again (not the fallback)."""
    model = served(lab, "chat")[0]
    deadline = time.monotonic() + lab["litellm_cooldown_time"] + 30
    while True:
        answer = chat(probe, lab, model["name"], "back again", timeout=60)
        if answer["status"] == 200 and content(answer) == f"[vllm-double {model['served_name']}] echo: back again":
            break
        assert time.monotonic() < deadline, answer
        time.sleep(2)


# --- the fallback while the GPU is cold (last: the waker in place of the chat model's double) --------


WAKER_FILES = ("gpu_waker.py", "gpu_policy.py", "parrotpark_gpu.py")
WAKER_DIR = "/tmp/parrotpark-test-waker"
WAKER_UNIT = "parrotpark-test-waker"
WAKER_CONTROL = "127.0.0.1:9009"


def waker_status(probe) -> dict[str, Any]:
    answer = probe(f"http://{WAKER_CONTROL}/status", timeout=5)
    assert answer["status"] == 200, answer
    return answer["body"]


@pytest.fixture
def waker(host, probe, lab):
    """The scheduler's real waker (gpu_waker.py and its modules) on the chat model's address, its double stopped.

    As on the entrance while the GPU is off: on demand, no quiet hours, a 2-minute boot; its up and down
    commands only record that they ran (one line per call in up.log / down.log).
    """
    if not (lab["litellm_fallback"] and lab["litellm_gpu_on_demand"]):
        pytest.skip("the scenario has no fallback or no GPU on demand")
    model = served(lab, "chat")[0]
    double = double_for(host, lab, model)
    listen = double["url"].removeprefix("http://")
    host.check_output(f"rm -rf {WAKER_DIR} && mkdir -p {WAKER_DIR}/state")
    for name in WAKER_FILES:
        copied = host.ansible(
            "copy", f"src={ROOT / 'roles/scheduler/files' / name} dest={WAKER_DIR}/{name} mode=0644", check=False
        )
        assert not copied.get("failed"), copied
    config = {
        "policy": {
            "mode": "on_demand",
            "quiet_start": None,
            "quiet_end": None,
            "quiet_days": [],
            "quiet_on_holidays": False,
            "boot_minutes": 2,
        },
        "models": [model["served_name"]],
    }
    host.check_output(f"printf %s {shlex.quote(json.dumps(config))} > {WAKER_DIR}/config.json")
    command = [
        "python3", f"{WAKER_DIR}/gpu_waker.py", "serve",
        "--config", f"{WAKER_DIR}/config.json", "--state-dir", f"{WAKER_DIR}/state",
        "--listen", listen, "--control", WAKER_CONTROL,
        "--up-command", f"sh -c 'echo up >> {WAKER_DIR}/up.log'",
        "--down-command", f"sh -c 'echo down >> {WAKER_DIR}/down.log'",
    ]  # fmt: skip
    host.check_output(f"docker stop -t 2 {double['name']}")
    try:
        host.check_output(f"systemd-run --unit={WAKER_UNIT} --collect {shlex.join(command)}")
        deadline = time.monotonic() + 30
        while probe(f"http://{WAKER_CONTROL}/status", timeout=3)["status"] != 200:
            journal = host.run(f"journalctl -u {WAKER_UNIT} --no-pager").stdout
            assert host.run(f"systemctl is-active {WAKER_UNIT}").rc == 0, journal
            assert time.monotonic() < deadline, journal
            time.sleep(1)
        yield {"model": model, "double": double}
    finally:
        host.run(f"systemctl stop {WAKER_UNIT}")
        host.check_output(f"docker start {double['name']}")
        wait_for_double(probe, double)


def test_fallback_answers_while_the_waker_wakes_the_gpu(host, probe, lab, waker):
    """Issue 14, item 3: while the GPU is off, the fallback answers and says so, and the request wakes the GPU once.

    LiteLLM sends the chat request to the waker, which starts the up path and answers its 503 at once; LiteLLM's
    router falls back to the operator's endpoint, whose answer names the fallback model. With LiteLLM's
    per-request disable_fallbacks the caller gets the waker's own sentence instead.
    """
    model = waker["model"]
    fallback_name = lab["litellm_fallback"].get("name", "parrotpark-fallback")
    fallback_served = lab["litellm_fallback"]["model"].split("/", 1)[1]
    fallback_double = next(item for item in lab["doubles"] if fallback_served in item["args"])
    fallback_double = double_for(host, lab, {"port": fallback_double["port"]})
    before = waker_status(probe)
    assert (before["phase"], before["wakes_today"]) == ("off", 0), before
    served_before = double_requests(probe, fallback_double, fallback_served)
    for attempt in range(3):
        text = f"while the GPU is cold {attempt}"
        answer = chat(probe, lab, model["name"], text, timeout=60)
        assert answer["seconds"] < FAST_SECONDS, answer
        assert content(answer) == f"[vllm-double {fallback_served}] echo: {text}"
        # The answer says who served it: the fallback's own model name (the GPU's answers carry the chat model's
        # public name), and LiteLLM's headers name the fallback's public name and that one fallback was taken.
        assert answer["body"]["model"] == fallback_served, answer
        assert answer["headers"]["x-litellm-model-group"] == fallback_name, answer["headers"]
        assert answer["headers"]["x-litellm-attempted-fallbacks"] == "1", answer["headers"]
    assert double_requests(probe, fallback_double, fallback_served) == served_before + 3
    status = waker_status(probe)
    assert (status["phase"], status["trigger"], status["wakes_today"]) == ("starting", "wake", 1), status
    assert 0 < status["eta_seconds"] <= 120, status
    assert host.file(f"{WAKER_DIR}/up.log").content_string == "up\n"
    assert not host.file(f"{WAKER_DIR}/down.log").exists

    # Without the fallback, the caller reads the waker's sentence (and its Retry-After) through LiteLLM.
    answer = probe(
        f"{lab['base']}/v1/chat/completions",
        method="POST",
        headers=auth(lab["master_key"]),
        json={
            "model": model["name"],
            "messages": [{"role": "user", "content": "no fallback please"}],
            "disable_fallbacks": True,
        },
        timeout=60,
    )
    assert answer["status"] == 503, answer
    assert re.fullmatch(r"The model is starting, ready in about \d+ minutes?\.", error_message(answer)), answer
    assert answer["headers"].get("retry-after", "").isdigit(), answer["headers"]
    assert double_requests(probe, fallback_double, fallback_served) == served_before + 3
    assert waker_status(probe)["wakes_today"] == 1
