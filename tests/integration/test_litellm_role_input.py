"""Bad input to the litellm role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host, so every case must stop with changed=0. Secrets are never
shown in the messages.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import socket

import pytest
from ansible_run import assert_refused, assert_stopped_unchanged, overlay, run_role_check, run_role_checks

# Valid values for what has no usable default on a bare machine, so that each case fails on the one variable it
# breaks (None: leave the variable unset).
BASE = {"litellm_upstream_host": "10.42.0.7", "litellm_database_enabled": False}
CHAT = {"name": "chat", "served_name": "chat-model", "port": 8000, "mode": "chat"}
FALLBACK = {"api_base": "https://llm.example.test/v1", "model": "openai/small", "api_key": "fallback-secret-0123456789"}

CASES = {
    "no upstream host": (
        {"litellm_upstream_host": None},
        [r"litellm_upstream_host must be a host name or an IP address", r"\(got ''\)"],
    ),
    "upstream host with a scheme": (
        {"litellm_upstream_host": "http://10.42.0.7"},
        [r"litellm_upstream_host must be a host name or an IP address", r"'http://10.42.0.7'"],
    ),
    "no models": ({"litellm_models": []}, [r"litellm_models must not be empty \(got \[\]\)"]),
    "model without served_name": (
        {"litellm_models": [{"name": "chat", "port": 8000}]},
        [r"Each of litellm_models needs a name and a served_name", r"Entries that are not: \['chat'\]"],
    ),
    "model without a name": (
        {"litellm_models": [{"served_name": "x", "port": 8000}]},
        [r"Each of litellm_models needs", r"entry 1 without name"],
    ),
    "model with a bad mode": (
        {"litellm_models": [{**CHAT, "mode": "audio"}]},
        [r"mode chat or embedding", r"\['chat'\]"],
    ),
    "model port out of range": (
        {"litellm_models": [{**CHAT, "port": 80000}]},
        [r"a port between 1 and 65535", r"\['chat'\]"],
    ),
    "model api_base not a URL": (
        {"litellm_models": [{**CHAT, "api_base": "gpu:8000/v1"}]},
        [r"an api_base http\(s\) URL", r"\['chat'\]"],
    ),
    "duplicate model names": (
        {"litellm_models": [CHAT, {**CHAT, "port": 8001}]},
        [r"names must be unique", r"duplicate names"],
    ),
    "master key without sk-": (
        {"litellm_master_key": "master-key-0123456789abcdef"},
        [r"litellm_master_key must start with sk- \(it does not\)", r"litellm-master-key"],
    ),
    "short master key": (
        {"litellm_master_key": "sk-0123"},
        [r"litellm_master_key must have at least 16 characters", r"it has 7"],
    ),
    "short salt key": (
        {"litellm_salt_key": "salt-0123456789"},
        [r"litellm_salt_key must have at least 32 characters", r"it has 15", r"without spaces"],
    ),
    "empty upstream key": (
        {"litellm_upstream_api_key": ""},
        [r"litellm_upstream_api_key must not be empty"],
    ),
    "short database password": (
        {"litellm_database_enabled": True, "litellm_db_password": "0123456789"},
        [r"litellm_db_password must have at least 16 characters without spaces \(it has 10\)"],
    ),
    "database name not an identifier": (
        {"litellm_database_enabled": True, "litellm_db_name": "lite-llm"},
        [r"litellm_db_name must be a lower-case SQL identifier", r"\(got 'lite-llm'\)"],
    ),
    "database host with a scheme": (
        {"litellm_database_enabled": True, "litellm_db_host": "postgres://db"},
        [r"litellm_db_host must be a host name or an IP address \(got 'postgres://db'\)"],
    ),
    "database port out of range": (
        {"litellm_database_enabled": True, "litellm_db_port": 70000},
        [r"litellm_db_port must be between 1 and 65535 \(got 70000\)"],
    ),
    "database user not an identifier": (
        {"litellm_database_enabled": True, "litellm_db_username": "LiteLLM"},
        [r"litellm_db_username must be a lower-case SQL identifier", r"\(got 'LiteLLM'\)"],
    ),
    "fallback without model": (
        {"litellm_fallback": {k: v for k, v in FALLBACK.items() if k != "model"}},
        [r"litellm_fallback must be empty or have api_base"],
    ),
    "fallback model without provider": (
        {"litellm_fallback": {**FALLBACK, "model": "small"}},
        [r"litellm_fallback must be empty or have api_base", r"model\s+'small'"],
    ),
    "fallback named like a model": (
        {"litellm_fallback": {**FALLBACK, "name": "mistral-nemo-12b"}},
        [r"litellm_fallback must be empty", r"name 'mistral-nemo-12b'"],
    ),
    "fallback with an unknown key": (
        {"litellm_fallback": {**FALLBACK, "timeout": 5}},
        [r"litellm_fallback must be empty", r"'timeout'"],
    ),
    "listen address not an IP": (
        {"litellm_listen_addresses": ["localhost"]},
        [r"litellm_listen_addresses must list at least one IP address", r"'localhost'"],
    ),
    "nothing published": ({"litellm_listen_addresses": []}, [r"litellm_listen_addresses must list at least one"]),
    "port out of range": ({"litellm_port": 0}, [r"litellm_port must be between 1 and 65535 \(got 0\)"]),
    "too many retries": ({"litellm_num_retries": 11}, [r"litellm_num_retries must be between 0 and 10 \(got 11\)"]),
    "negative fails and cooldown, both reported": (
        {"litellm_allowed_fails": -1, "litellm_cooldown_time": -5},
        [
            r"litellm_allowed_fails must be at least 0 \(got -1\)",
            r"litellm_cooldown_time must be at least 0 \(got -5\)",
        ],
    ),
    "no request timeout": ({"litellm_request_timeout": 0}, [r"litellm_request_timeout must be at least 1 \(got 0\)"]),
    "no stream timeout": ({"litellm_stream_timeout": 0}, [r"litellm_stream_timeout must be at least 1 \(got 0\)"]),
    "stream timeout above request timeout": (
        {"litellm_request_timeout": 30, "litellm_stream_timeout": 60},
        [r"litellm_stream_timeout must be at most litellm_request_timeout \(got 60 and 30\)"],
    ),
    "no workers": (
        {"litellm_num_workers": 0},
        [r"litellm_num_workers must be at least 1 \(got 0\)"],
    ),
    "no worker health time": (
        {"litellm_worker_healthcheck_timeout": 0},
        [r"litellm_worker_healthcheck_timeout must be at least 1 \(got 0\)"],
    ),
    "no keep-alive": ({"litellm_keepalive_timeout": 0}, [r"litellm_keepalive_timeout must be at least 1 \(got 0\)"]),
    "negative requests before restart": (
        {"litellm_max_requests_before_restart": -1},
        [r"litellm_max_requests_before_restart must be at least 0 \(got -1\)"],
    ),
    "no spend batch interval": (
        {"litellm_spend_batch_write_seconds": 0},
        [r"litellm_spend_batch_write_seconds must be at least 1 \(got 0\)"],
    ),
    "unknown log level": ({"litellm_log_level": "VERBOSE"}, [r"litellm_log_level", r"DEBUG, INFO, WARNING"]),
    "wrong type": ({"litellm_num_retries": "a few"}, [r"litellm_num_retries", r"int"]),
    "bad environment name": (
        {"litellm_env": {"LITELLM LOG": "DEBUG"}},
        [r"litellm_env must map environment variable names", r"'LITELLM LOG'"],
    ),
    "extra config that is not a section": (
        {"litellm_extra_config": {"num_retries": 3}},
        [r"litellm_extra_config may only hold config.yaml sections", r"'num_retries'"],
    ),
    "relative config dir": ({"litellm_config_dir": "etc/litellm"}, [r"litellm_config_dir must be an absolute path"]),
    "no health wait": (
        {"litellm_health_retries": 0},
        [r"litellm_health_retries and\s+litellm_health_delay at least 1"],
    ),
}

SECRETS = ("master-key-0123456789abcdef", "salt-0123456789", "fallback-secret-0123456789", "0123456789")


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    return run_role_checks(tmp_path_factory, "litellm", {case: overlay(BASE, spec[0]) for case, spec in CASES.items()})


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_refused(refusals[case], patterns, SECRETS)


def test_valid_input_passes_the_variable_checks(tmp_path):
    """Good values get past every variable check, and the generated secrets are kept on the controller."""
    variables = {
        **BASE,
        "litellm_fallback": {**FALLBACK, "name": "backup"},
        "litellm_models": [
            CHAT,
            {"name": "embed", "served_name": "e", "api_base": "http://10.42.0.8:9000/v1", "mode": "embedding"},
        ],
        "litellm_port": 54000,
        "litellm_extra_config": {"litellm_settings": {"drop_params": True}},
    }
    result = run_role_check(tmp_path, "litellm", variables)
    output = result.stdout + result.stderr
    assert "Check litellm_config_dir, the health wait and the log settings" in output, output
    assert "Check that the ports to publish are free" in output, output
    assert " must " not in output.replace("must never change", ""), output
    assert "fallback-secret-0123456789" not in output
    # Shared secrets at the top of the secrets directory, per-host ones below the host's name, all 0600.
    secrets = tmp_path / "secrets"
    for path in (secrets / "litellm-master-key", secrets / "vllm-api-key", secrets / "localhost" / "litellm-salt-key"):
        assert path.is_file(), path
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_port_in_use_fails_before_any_change(tmp_path):
    """A port another program listens on is reported with the variable, before anything changes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_role_check(tmp_path, "litellm", {**BASE, "litellm_port": port})
    assert_stopped_unchanged(result, [rf"litellm_port: another program already listens on 127\.0\.0\.1:{port}"])
