"""Bad input to the vllm role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation, the preflight checks and the fit check come before any task
that could change the host, so every case must stop with changed=0. The API
key is never shown in the messages.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import socket

import pytest
from ansible_run import assert_stopped_unchanged, overlay, run_role_check, run_role_checks

# A valid private address, so that each case fails on the one variable it breaks (None: leave it unset).
BASE = {"vllm_listen_address": "127.0.0.1", "vllm_gpus": "none"}
CHAT = {
    "name": "chat",
    "model": "casperhansen/mistral-nemo-instruct-2407-awq",
    "served_model_name": "mistral-nemo-12b",
    "port": 58000,
    "quantization": "awq",
    "max_model_len": 32768,
    "params_b": 12.2,
    "layers": 40,
    "kv_heads": 8,
    "head_dim": 128,
}
EMBED = {
    "name": "embed",
    "model": "BAAI/bge-m3",
    "served_model_name": "bge-m3",
    "port": 58001,
    "runner": "pooling",
    "max_model_len": 8192,
    "gpu_memory_utilization": 0.15,
    "params_b": 0.568,
    "layers": 24,
    "kv_heads": 16,
    "head_dim": 64,
}
LLAMA2_7B_FP16 = {
    "name": "llama",
    "model": "meta-llama/Llama-2-7b-chat-hf",
    "port": 58002,
    "max_model_len": 32768,
    "params_b": 6.74,
    "layers": 32,
    "kv_heads": 32,
    "head_dim": 128,
}
LLAMA3_70B_AWQ = {
    "name": "big",
    "model": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "port": 58003,
    "quantization": "awq",
    "max_model_len": 32768,
    "params_b": 70.6,
    "layers": 80,
    "kv_heads": 8,
    "head_dim": 128,
}
SECRET = "short-key"

CASES = {
    "no listen address": (
        {"vllm_listen_address": None},
        [r"vllm_listen_address must be the GPU host's private IP address", r"got ''", r"parrotpark_private_address"],
    ),
    "wildcard listen address": (
        {"vllm_listen_address": "0.0.0.0"},
        [r"vllm_listen_address must be the GPU host's private IP address", r"vllm_allow_public_bind: true"],
    ),
    "public listen address": (
        {"vllm_listen_address": "8.8.8.8"},
        [r"vllm_listen_address must be the GPU host's private IP address", r"got '8\.8\.8\.8'"],
    ),
    "listen address not an IP": (
        {"vllm_listen_address": "gpu.internal"},
        [r"vllm_listen_address must be the GPU host's private IP address"],
    ),
    "no model enabled": (
        {"vllm_models": [{**CHAT, "enabled": False}]},
        [r"vllm_models must list at least one enabled model"],
    ),
    "bad model name": (
        {"vllm_models": [{**CHAT, "name": "Chat_1"}]},
        [r"vllm_models must list", r"unique name of lower-case letters", r"\['Chat_1'\]"],
    ),
    "duplicate names": (
        {"vllm_models": [CHAT, {**EMBED, "name": "chat"}]},
        [r"vllm_models must list", r"\['chat', 'chat'\]"],
    ),
    "duplicate ports": (
        {"vllm_models": [EMBED, {**CHAT, "port": 58001}]},
        [r"distinct ports\s+between 1 and 65535 \(got \[58001, 58001\]\)"],
    ),
    "port out of range": ({"vllm_models": [{**CHAT, "port": 70000}]}, [r"distinct ports", r"\[70000\]"]),
    "duplicate served names": (
        {"vllm_models": [EMBED, {**CHAT, "served_model_name": "bge-m3"}]},
        [r"distinct served_model_name \(got \['bge-m3', 'bge-m3'\]\)"],
    ),
    "model without a port": (
        {"vllm_models": [{key: value for key, value in CHAT.items() if key != "port"}]},
        [r"missing required arguments: port", r"vllm_models"],
    ),
    "unknown runner": (
        {"vllm_models": [{**CHAT, "runner": "embed"}]},
        [r"vllm_models", r"runner", r"generate, pooling"],
    ),
    "memory share above 1": (
        {"vllm_models": [{**CHAT, "gpu_memory_utilization": 1.5}]},
        [r"vllm_models entry 'chat': gpu_memory_utilization must be a fraction between 0 and 1 \(got\s+1\.5\)"],
    ),
    "extra_args repeats --port": (
        {"vllm_models": [{**CHAT, "extra_args": ["--enable-prefix-caching", "--port", "9000"]}]},
        [r"vllm_models entry 'chat'", r"extra_args must not repeat the flags the role sets", r"found\s+\['--port'\]"],
    ),
    "extra_args sets the API key": (
        {"vllm_models": [{**CHAT, "extra_args": ["--api_key=abc"]}]},
        [r"extra_args must not repeat the flags the role sets", r"found\s+\['--api-key'\]"],
    ),
    "bad vllm_gpus": ({"vllm_gpus": "the first two"}, [r"vllm_gpus must be all, none, or a comma-separated list"]),
    "short API key": (
        {"vllm_api_key": SECRET},
        [r"vllm_api_key must have at least 16 characters without spaces \(it has 9\)"],
    ),
    "7B FP16 on an L4 next to the embedding model": (
        {"vllm_models": [EMBED, LLAMA2_7B_FP16]},
        [
            r"vllm_models entry 'llama' \(meta-llama/Llama-2-7b-chat-hf\) does not fit vllm_gpu_type L4-1-24G",
            r"next to the 0\.15 of the GPU",
            r"holds 5978 tokens, fewer than the minimum useful context of 8192",
            r"weights 13\.48 GB",
        ],
    ),
    "70B AWQ on an L40S": (
        {"vllm_models": [EMBED, LLAMA3_70B_AWQ], "vllm_gpu_type": "L40S-1-48G"},
        [
            r"vllm_models entry 'big' .* does not fit vllm_gpu_type L40S-1-48G",
            r"the weights and overhead need 40\.33 GB per GPU, more than the 36\.229 GB available",
        ],
    ),
    "unknown GPU type": (
        {"vllm_gpu_type": "A100-1-80G"},
        [r"vllm_models entry 'embed': .*vllm_fit: gpu must be one of", r"vllm_gpu_type is 'A100-1-80G'"],
    ),
    "fit facts incomplete": (
        {"vllm_models": [{**CHAT, "head_dim": None}]},
        [r"vllm_models entry 'chat': .*vllm_fit: head_dim must be given"],
    ),
    "unknown quantization for the fit": (
        {"vllm_models": [{**CHAT, "quantization": "q4_k_m"}]},
        [r"vllm_models entry 'chat': .*vllm_fit: quantization must be empty"],
    ),
    "shares above the GPU without the fit check": (
        {
            "vllm_fit_check": False,
            "vllm_models": [EMBED, {**CHAT, "gpu_memory_utilization": 0.9}],
        },
        [r"The gpu_memory_utilization of the enabled vllm_models add up to 1\.05", r"embed: 0\.15, chat: 0\.9"],
    ),
    "unset share counts as 0.9": (
        {"vllm_fit_check": False, "vllm_models": [EMBED, {**CHAT, "params_b": None}]},
        [r"add up to 1\.05", r"unset counts as vLLM's default 0\.9"],
    ),
    "relative cache dir": (
        {"vllm_cache_dir": "var/cache/vllm"},
        [r"vllm_cache_dir must be an absolute path \(got 'var/cache/vllm'\)"],
    ),
    "no health delay": ({"vllm_health_delay": 0}, [r"vllm_health_delay must be at least 1 \(got 0\)"]),
    "shared memory size in words, relative cache dir, both reported": (
        {"vllm_shm_size": "16 GB", "vllm_cache_dir": "cache"},
        [
            r"vllm_shm_size must be a number followed by k, m or g, such as 10m \(got '16 GB'\)",
            r"vllm_cache_dir must be an absolute path \(got 'cache'\)",
        ],
    ),
    "health timeout below the delay": (
        {"vllm_health_timeout": 5, "vllm_health_delay": 10},
        [r"vllm_health_timeout must be at least vllm_health_delay \(got 5 and 10\)"],
    ),
    "bad environment name": (
        {"vllm_env": {"VLLM LOGGING": "1"}},
        [r"vllm_env must map environment variable names", r"not names: \['VLLM LOGGING'\]"],
    ),
    "wrong type": ({"vllm_health_timeout": "long"}, [r"vllm_health_timeout", r"int"]),
}


def case_variables(variables: dict) -> dict:
    """The case over BASE; a None value, in vllm_models' entries too, leaves the key out."""
    merged = overlay(BASE, variables)
    if "vllm_models" in merged:
        merged["vllm_models"] = [
            {key: value for key, value in model.items() if value is not None} for model in merged["vllm_models"]
        ]
    return merged


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    return run_role_checks(
        tmp_path_factory, "vllm", {case: case_variables(variables) for case, (variables, _unused) in CASES.items()}
    )


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    result = refusals[case]
    assert_stopped_unchanged(result, patterns)
    output = result.stdout + result.stderr + result.shared
    assert f"'{SECRET}'" not in output and f'"{SECRET}"' not in output, "the API key is shown in the output"


def test_valid_input_passes_and_reports_the_fit(tmp_path):
    """The defaults (with a private address) pass every check; the fit decisions are shown; the key is generated."""
    result = run_role_check(tmp_path, "vllm", {**BASE, "vllm_allow_public_bind": False})
    output = result.stdout + result.stderr
    flat = " ".join(output.split())
    assert "Check that the ports to publish are free" in output, output
    assert "embed: Fits on L4-1-24G with max_model_len 8192" in flat, output
    assert "chat: Fits on L4-1-24G with max_model_len 32768" in flat, output
    assert "vllm_listen_address must" not in output
    # The key is generated at the top of the secrets directory (shared with the litellm role), 0600.
    key_file = tmp_path / "secrets" / "vllm-api-key"
    assert key_file.is_file()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().split()[0]) == 48
    assert key_file.read_text().split()[0] not in output


def test_fit_lowers_the_context_to_what_fits(tmp_path):
    """A 7B FP16 model alone on an L4 gets 12288 tokens instead of the 32768 asked for."""
    model = {**LLAMA2_7B_FP16, "gpu_memory_utilization": 0}
    result = run_role_check(tmp_path, "vllm", {**BASE, "vllm_models": [model]})
    flat = " ".join((result.stdout + result.stderr).split())
    assert "llama: Fits on L4-1-24G with max_model_len 12288 instead of 32768" in flat, flat


def test_public_address_accepted_when_allowed(tmp_path):
    result = run_role_check(
        tmp_path, "vllm", {**BASE, "vllm_listen_address": "0.0.0.0", "vllm_allow_public_bind": True}
    )
    output = result.stdout + result.stderr
    assert "vllm_listen_address must" not in output
    assert "Check that the ports to publish are free" in output, output


def test_port_in_use_fails_before_any_change(tmp_path):
    """A port another program listens on is reported with the model, before anything changes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_role_check(tmp_path, "vllm", {**BASE, "vllm_models": [{**CHAT, "port": port}]})
    assert_stopped_unchanged(
        result, [rf"vllm_models port: another program already listens on chat 127\.0\.0\.1:{port}"]
    )
