"""Verify the vllm role on a molecule platform (with the lab's vllm-double image).

Every enabled model of the scenario runs in its own container with the
command the role renders (the context length and memory share the fit filter
decides), the API key in the environment and not on the command line, the
caches mounted, and its port published on the private address only. Through
that address, from the controller as LiteLLM on the entrance would, each
model answers /health, refuses /v1 without the key, lists its served name,
and answers a chat completion or an embedding. The models started in order
(the embedding model first), and the containers of models that are gone or
disabled were removed.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles/vllm/defaults/main.yml").read_text())
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.parrotpark.llm.plugins.filter.vllm_fit import vllm_fit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import wait_healthy  # noqa: E402

ENV = jinja2.Environment(undefined=jinja2.ChainableUndefined)


def _password_lookup(name: str, path: str, **_: Any) -> str:
    """What ansible.builtin.password returns for a file it created: the file's first word."""
    assert name in ("password", "ansible.builtin.password"), name
    return Path(path).read_text().split()[0]


ENV.globals["lookup"] = _password_lookup


def _render(value: Any, context: dict[str, Any]) -> Any:
    # Two passes: a default may refer to another variable that is a template.
    for _ignored in range(3):
        if not (isinstance(value, str) and "{{" in value):
            break
        value = ENV.from_string(value).render(**context).strip()
    return value


@pytest.fixture(scope="module")
def role_vars(host) -> dict[str, Any]:
    """Role defaults overlaid with the scenario's inventory, the few templates rendered."""
    variables = {**DEFAULTS, **host.ansible.get_variables()}
    facts = host.ansible("setup", "gather_subset=network")["ansible_facts"]
    context = {**variables, "ansible_facts": {"default_ipv4": facts["ansible_default_ipv4"]}}
    for key in ("parrotpark_private_address", "vllm_listen_address", "vllm_secrets_dir", "vllm_api_key"):
        if key in variables:
            context[key] = variables[key] = _render(variables[key], context)
    return variables


@pytest.fixture(scope="module")
def models(role_vars) -> list[dict[str, Any]]:
    """The enabled models, in order, with what the role gives each: the fit filter's decision or their own values."""
    enabled, used = [], 0.0
    for entry in role_vars["vllm_models"]:
        if not entry.get("enabled", True):
            continue
        model = dict(entry)
        if role_vars["vllm_fit_check"] and model.get("params_b"):
            fit = vllm_fit(
                model,
                role_vars["vllm_gpu_type"],
                tensor_parallel_size=model.get("tensor_parallel_size") or 1,
                used_fraction=used,
                min_model_len=role_vars["vllm_fit_min_model_len"],
                max_total_fraction=role_vars["vllm_fit_max_total_fraction"],
                overhead_gb=role_vars["vllm_fit_overhead_gb"],
            )
            assert fit["fits"], fit["reason"]
            model["max_model_len"], model["gpu_memory_utilization"] = (
                fit["max_model_len"],
                fit["gpu_memory_utilization"],
            )
        used += model.get("gpu_memory_utilization") or 0.9
        model["container"] = f"{role_vars['vllm_container_prefix']}-{model['name']}"
        model["served"] = model.get("served_model_name") or model["model"]
        enabled.append(model)
    assert enabled
    return enabled


def logs(host, name: str) -> str:
    result = host.run(f"docker logs --tail 60 {name}")
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def containers(host, models) -> dict[str, dict[str, Any]]:
    # Docker's first health check runs one interval (30 s) after the start,
    # which can be later than the role's own wait on /health.
    return {model["name"]: wait_healthy(host, model["container"]) for model in models}


def request(url: str, key: str | None = None, body: dict | None = None) -> tuple[int, dict[str, str], Any]:
    """An HTTP request from the controller: (status, headers, JSON body or text)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, answer, text = resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as error:
        status, answer, text = error.code, dict(error.headers), error.read().decode()
    try:
        return status, answer, json.loads(text)
    except ValueError:
        return status, answer, text


def base(role_vars, model) -> str:
    return f"http://{role_vars['vllm_listen_address']}:{model['port']}"


# --- the containers -------------------------------------------------------------


def expected_command(model: dict[str, Any]) -> list[str]:
    command = [
        "--model",
        model["model"],
        "--served-model-name",
        model["served"],
        "--host",
        "0.0.0.0",
        "--port",
        str(model["port"]),
        "--runner",
        model.get("runner") or "generate",
    ]
    if model.get("quantization"):
        command += ["--quantization", model["quantization"]]
    if model.get("max_model_len"):
        command += ["--max-model-len", str(model["max_model_len"])]
    if model.get("gpu_memory_utilization"):
        command += ["--gpu-memory-utilization", str(model["gpu_memory_utilization"])]
    if model.get("max_num_seqs"):
        command += ["--max-num-seqs", str(model["max_num_seqs"])]
    if (model.get("tensor_parallel_size") or 1) > 1:
        command += ["--tensor-parallel-size", str(model["tensor_parallel_size"])]
    if model.get("kv_cache_dtype"):
        command += ["--kv-cache-dtype", model["kv_cache_dtype"]]
    return command + [str(arg) for arg in model.get("extra_args") or []]


def test_each_model_runs_with_its_command(host, models, containers, role_vars):
    for model in models:
        container = containers[model["name"]]
        assert container["State"]["Running"], logs(host, model["container"])
        assert container["State"]["Health"]["Status"] == "healthy", logs(host, model["container"])
        assert container["Config"]["Image"] == role_vars["vllm_image"]
        assert container["Config"]["Cmd"] == expected_command(model)
        assert "--api-key" not in container["Config"]["Cmd"]
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert container["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-size": role_vars["vllm_log_max_size"], "max-file": str(role_vars["vllm_log_max_file"])},
        }
        labels = container["Config"]["Labels"]
        assert (labels["parrotpark.role"], labels["parrotpark.vllm.model"]) == ("vllm", model["name"])
        assert role_vars["vllm_docker_network"] in container["NetworkSettings"]["Networks"]


def test_the_fit_decides_context_and_share(models, containers, role_vars):
    """The flags carry the fit filter's decisions (the alternative scenario's context is lowered to what fits)."""
    for model in models:
        command = containers[model["name"]]["Config"]["Cmd"]
        if role_vars["vllm_fit_check"] and model.get("params_b"):
            assert command[command.index("--max-model-len") + 1] == str(model["max_model_len"])
            assert command[command.index("--gpu-memory-utilization") + 1] == str(model["gpu_memory_utilization"])


def test_environment_holds_the_key_and_token(containers, role_vars):
    for container in containers.values():
        env = dict(item.split("=", 1) for item in container["Config"]["Env"])
        assert env["VLLM_API_KEY"] == role_vars["vllm_api_key"]
        assert env.get("HF_TOKEN", "") == role_vars["vllm_hf_token"]
        if role_vars["vllm_usage_stats"]:
            assert "VLLM_NO_USAGE_STATS" not in env
        else:
            assert (env["VLLM_NO_USAGE_STATS"], env["DO_NOT_TRACK"]) == ("1", "1")
        for name, value in role_vars["vllm_env"].items():
            assert env[name] == str(value)


def test_generated_key_kept_on_the_controller(host, role_vars):
    """Generated once, at the top of the secrets directory (the litellm role reads the same file), 0600."""
    if "vllm_api_key" in host.ansible.get_variables():
        pytest.skip("this scenario gives the key")
    path = Path(role_vars["vllm_secrets_dir"]) / "vllm-api-key"
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text().split()[0]) == 48
    assert path.read_text().split()[0] == role_vars["vllm_api_key"]


def test_gpus_ipc_and_shared_memory(containers, role_vars):
    for container in containers.values():
        hostconfig = container["HostConfig"]
        if role_vars["vllm_gpus"].strip().lower() in ("", "none"):
            assert not hostconfig.get("DeviceRequests")
        if role_vars["vllm_ipc_host"]:
            assert hostconfig["IpcMode"] == "host"
        else:
            assert hostconfig["IpcMode"] != "host"
            units = {"k": 1024, "m": 1024**2, "g": 1024**3}
            size = role_vars["vllm_shm_size"]
            assert hostconfig["ShmSize"] == int(size[:-1]) * units[size[-1]]


def test_caches_mounted(host, containers, role_vars):
    cache = role_vars["vllm_cache_dir"]
    for path in (cache, f"{cache}/huggingface", f"{cache}/vllm"):
        directory = host.file(path)
        assert directory.is_directory, path
        assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o750)
    for container in containers.values():
        mounts = {mount["Destination"]: mount["Source"] for mount in container["Mounts"]}
        assert mounts["/root/.cache/huggingface"] == f"{cache}/huggingface"
        assert mounts["/root/.cache/vllm"] == f"{cache}/vllm"


def test_embedding_model_started_first(models, containers):
    """Each model started after the one before it (which the role waited for)."""
    started = [
        datetime.fromisoformat(containers[model["name"]]["State"]["StartedAt"][:26].rstrip("Z")) for model in models
    ]
    assert started == sorted(started), [(model["name"], time) for model, time in zip(models, started, strict=True)]
    runners = [model.get("runner") or "generate" for model in models]
    if "pooling" in runners and "generate" in runners:
        assert runners.index("pooling") < runners.index("generate")


def test_only_the_enabled_models_run(host, models, role_vars):
    """Containers of models that are gone or disabled were removed."""
    listed = host.run("docker ps --all --filter label=parrotpark.role=vllm --format '{{.Names}}'")
    assert listed.rc == 0, listed.stderr
    assert sorted(listed.stdout.split()) == sorted(model["container"] for model in models)
    for name in role_vars.get("molecule_vllm_removed", []):
        assert host.run(f"docker inspect {name}").rc != 0, f"{name} should have been removed"


# --- bound to the private address only -------------------------------------------


def test_ports_published_on_the_private_address_only(host, models, containers, role_vars):
    address = role_vars["vllm_listen_address"]
    assert address not in ("", "0.0.0.0", "::")
    for model in models:
        bindings = containers[model["name"]]["HostConfig"]["PortBindings"]
        assert bindings == {f"{model['port']}/tcp": [{"HostIp": address, "HostPort": str(model["port"])}]}
    listening = host.run("ss -H -l -t -n").stdout.split("\n")
    for model in models:
        local = [
            line.split()[3] for line in listening if line.split() and line.split()[3].endswith(f":{model['port']}")
        ]
        assert local == [f"{address}:{model['port']}"], local


def test_not_answering_on_loopback(host, models):
    for model in models:
        url = f"http://127.0.0.1:{model['port']}/health"
        result = host.run(f"python3 -c \"import urllib.request; urllib.request.urlopen('{url}', timeout=3)\"")
        assert result.rc != 0, f"{model['name']} answers on 127.0.0.1"
        assert "Connection refused" in result.stderr, result.stderr


# --- the API through the private address --------------------------------------------


@pytest.fixture(scope="module")
def key(role_vars) -> str:
    return role_vars["vllm_api_key"]


def test_health(models, role_vars):
    for model in models:
        status, _ignored, _ignored = request(f"{base(role_vars, model)}/health")
        assert status == 200, model["name"]


def test_key_required(models, role_vars, key):
    for model in models:
        for wrong in (None, f"{key}x"):
            status, _ignored, _ignored = request(f"{base(role_vars, model)}/v1/models", key=wrong)
            assert status == 401, (model["name"], wrong is None)


def test_models_listed_with_the_key(models, role_vars, key):
    served = set()
    for model in models:
        status, headers, answer = request(f"{base(role_vars, model)}/v1/models", key=key)
        assert status == 200, answer
        names = [entry["id"] for entry in answer["data"]]
        assert names == [model["served"]]
        served.update(names)
        # It is the lab's double, and says so.
        assert headers.get("x-parrotpark-double") == "vllm"
    assert served == {model["served"] for model in models}


def test_chat_completion(models, role_vars, key):
    chat = [model for model in models if (model.get("runner") or "generate") == "generate"]
    if not chat:
        pytest.skip("no chat model enabled")
    for model in chat:
        status, _ignored, answer = request(
            f"{base(role_vars, model)}/v1/chat/completions",
            key=key,
            body={
                "model": model["served"],
                "messages": [{"role": "user", "content": "Hello parrot"}],
                "max_tokens": 20,
            },
        )
        assert status == 200, answer
        assert answer["model"] == model["served"]
        assert "Hello parrot" in answer["choices"][0]["message"]["content"]
        assert answer["usage"]["completion_tokens"] > 0


def test_embedding(models, role_vars, key):
    pooling = [model for model in models if model.get("runner") == "pooling"]
    if not pooling:
        pytest.skip("no embedding model enabled")
    for model in pooling:
        status, _ignored, answer = request(
            f"{base(role_vars, model)}/v1/embeddings",
            key=key,
            body={"model": model["served"], "input": ["The weather is lovely today.", "It's so sunny outside!"]},
        )
        assert status == 200, answer
        vectors = [item["embedding"] for item in answer["data"]]
        assert len(vectors) == 2
        assert len(vectors[0]) == len(vectors[1]) > 100
        similarity = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
        assert similarity > 0.5  # close sentences, real embeddings


def test_wrong_model_name_refused(models, role_vars, key):
    model = models[-1]
    path = "/v1/embeddings" if model.get("runner") == "pooling" else "/v1/chat/completions"
    body = {"model": "not-served", "input": "x", "messages": [{"role": "user", "content": "x"}]}
    status, _ignored, _ignored = request(f"{base(role_vars, model)}{path}", key=key, body=body)
    assert status == 404
