"""Bad input to the telegraf role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host, so every case must stop with changed=0. Secrets are never
shown in the messages.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_run import assert_refused, overlay, run_role_check, run_role_checks

# A valid database address, so that each case fails on the one variable it breaks (None: leave it unset).
BASE = {"telegraf_postgresql_host": "127.0.0.1"}
TARGET = {"name": "vllm-chat", "url": "http://127.0.0.1:8000/metrics"}
TOKEN = "target-token-0123456789"

CASES = {
    "database host not set at all": (
        {"telegraf_postgresql_host": None},
        [
            r"telegraf_postgresql_host must be the address or host name",
            r"got ''",
            r"parrotpark_entrance_private_address",
        ],
    ),
    "database host with a scheme": (
        {"telegraf_postgresql_host": "postgres://10.0.0.2"},
        [r"telegraf_postgresql_host must be the address or host name", r"'postgres://10\.0\.0\.2'"],
    ),
    "database port out of range": (
        {"telegraf_postgresql_port": 0},
        [r"telegraf_postgresql_port must be between 1 and 65535 \(got 0\)"],
    ),
    "database name not an identifier": (
        {"telegraf_postgresql_database": "my-metrics"},
        [r"telegraf_postgresql_database must be a lower-case SQL identifier .*\(got 'my-metrics'\)"],
    ),
    "database user not an identifier": (
        {"telegraf_postgresql_user": "1metrics"},
        [r"telegraf_postgresql_user must be a lower-case SQL identifier .*\(got '1metrics'\)"],
    ),
    "database schema not an identifier": (
        {"telegraf_postgresql_schema": "Public"},
        [r"telegraf_postgresql_schema must be a lower-case SQL identifier .*\(got 'Public'\)"],
    ),
    "short database password": (
        {"telegraf_postgresql_password": "0123456789"},
        [r"telegraf_postgresql_password must have at least 16 characters; it has 10", r"file\s+\S*/postgres-metrics"],
    ),
    "unknown sslmode": (
        {"telegraf_postgresql_sslmode": "on"},
        [r"telegraf_postgresql_sslmode", r"disable, allow, prefer"],
    ),
    "chunk interval not an interval": (
        {"telegraf_postgresql_timescaledb_chunk_interval": "a week"},
        [r"telegraf_postgresql_timescaledb_chunk_interval must be a PostgreSQL interval", r"'a week'"],
    ),
    "zero interval": (
        {"telegraf_interval": 0},
        [r"telegraf_interval must be between 1 and 3600 \(got 0\)"],
    ),
    "flush interval too long": (
        {"telegraf_flush_interval": 3601},
        [r"telegraf_flush_interval must be between 1 and 3600 \(got 3601\)"],
    ),
    "interval not a number": ({"telegraf_interval": "ten"}, [r"telegraf_interval", r"int"]),
    "relative influx file": (
        {"telegraf_influx_files": ["var/lib/parrotpark/scheduler/scheduler.influx"]},
        [r"telegraf_influx_files: every entry must be an absolute host path"],
    ),
    "relative ledger file to tail": (
        {"telegraf_influx_tail_files": ["gpu-sessions.influx"]},
        [r"telegraf_influx_tail_files: every entry must be an absolute host path", r"'gpu-sessions.influx'"],
    ),
    "scrape timeout too long": (
        {"telegraf_prometheus_timeout": 600},
        [r"telegraf_prometheus_timeout must be between 1 and 300 \(got 600\)"],
    ),
    "empty hostname": ({"telegraf_hostname": ""}, [r"telegraf_hostname must not be empty \(got ''\)"]),
    "global tag name with a dash": (
        {"telegraf_global_tags": {"cost-centre": "x"}},
        [r"telegraf_global_tags names must be", r"wrong: \['cost-centre'\]"],
    ),
    "global tag that the role sets": (
        {"telegraf_global_tags": {"host": "x"}},
        [r"other than the tags the role sets itself", r"wrong: \['host'\]"],
    ),
    "target without url": (
        {"telegraf_prometheus_targets": [{"name": "vllm"}]},
        [r"missing required arguments: url", r"telegraf_prometheus_targets"],
    ),
    "target url with a password": (
        {"telegraf_prometheus_targets": [{"name": "litellm", "url": "http://admin:secret@127.0.0.1:4000/metrics"}]},
        [
            r"telegraf_prometheus_targets: every entry needs",
            r"no user or password in it",
            r"Entries that are not: \['litellm'\]",
        ],
    ),
    "target url not http": (
        {"telegraf_prometheus_targets": [{"name": "vllm", "url": "ftp://127.0.0.1/metrics"}]},
        [r"telegraf_prometheus_targets: every entry needs", r"\['vllm'\]"],
    ),
    "target name with a space": (
        {"telegraf_prometheus_targets": [{"name": "vllm chat", "url": TARGET["url"]}]},
        [r"telegraf_prometheus_targets: every entry needs", r"\['vllm chat'\]"],
    ),
    "duplicate target names": (
        {"telegraf_prometheus_targets": [TARGET, TARGET]},
        [r"names must be unique", r"names: \['vllm-chat', 'vllm-chat'\]"],
    ),
    "empty bearer token": (
        {"telegraf_prometheus_targets": [{**TARGET, "bearer_token": ""}]},
        [r"if\s+given, a non-empty bearer_token", r"\['vllm-chat'\]"],
    ),
    "nvidia_smi neither auto nor a boolean": (
        {"telegraf_nvidia_smi_enabled": "sometimes"},
        [r"telegraf_nvidia_smi_enabled must be auto", r"got 'sometimes'"],
    ),
    "nvidia_smi forced on a host without it": (
        {"telegraf_nvidia_smi_enabled": True, "_telegraf_nvidia_smi_path": "/nonexistent/nvidia-smi"},
        [r"telegraf_nvidia_smi_enabled is true, but localhost has no /nonexistent/nvidia-smi"],
    ),
    "docker socket not a socket": (
        {"telegraf_docker_socket": "/etc/hostname"},
        [r"telegraf_docker_socket: /etc/hostname is not a socket", r"telegraf_docker_enabled to false"],
    ),
    "relative config dir": (
        {"telegraf_config_dir": "etc/telegraf"},
        [r"telegraf_config_dir must be an absolute path \(got 'etc/telegraf'\)"],
    ),
    "relative docker socket": (
        {"telegraf_docker_socket": "run/docker.sock"},
        [r"telegraf_docker_socket must be an absolute path \(got 'run/docker.sock'\)"],
    ),
    "no health wait": (
        {"telegraf_health_retries": 0},
        [r"telegraf_health_retries and telegraf_health_delay at least 1"],
    ),
    "bad log size": ({"telegraf_log_max_size": "10 MB"}, [r"telegraf_log_max_size a number followed by k"]),
}

SECRETS = ("0123456789", TOKEN, "secret@")
# Its message names the host, localhost in a run of its own: in the batch, its host is localhost too.
HOST_NAMED = "nvidia_smi forced on a host without it"


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each (localhost for the case whose message names the host)."""
    cases = {case: overlay(BASE, spec[0]) for case, spec in CASES.items()}
    return run_role_checks(tmp_path_factory, "telegraf", cases, localhost=HOST_NAMED)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_refused(refusals[case], patterns, SECRETS)


def test_valid_input_passes_the_checks_and_reads_the_entrance_password(tmp_path):
    """Good values get past every check; the password comes from the entrance host's secrets directory."""
    entrance = tmp_path / "secrets" / "entrance-1"
    entrance.mkdir(parents=True)
    (entrance / "postgres-metrics").write_text("Entrance-password-0123456789\n")
    variables = {
        **BASE,
        "telegraf_postgresql_secrets_host": "entrance-1",
        "telegraf_prometheus_targets": [
            TARGET,
            {"name": "litellm", "url": "http://127.0.0.1:4000/metrics", "bearer_token": TOKEN},
        ],
        "telegraf_global_tags": {"environment": "test"},
        "telegraf_nvidia_smi_enabled": False,
        "telegraf_postgresql_timescaledb": True,
    }
    result = run_role_check(tmp_path, "telegraf", variables)
    output = result.stdout + result.stderr
    assert "Check that the host has nvidia-smi when GPU metrics are asked for" in output, output
    assert not any(f"{name} must" in output for name in ("telegraf_postgresql_host", "telegraf_prometheus_targets:"))
    assert "Entrance-password-0123456789" not in output
    assert TOKEN not in output
    # The entrance's file was read, no file was generated for this host.
    assert not Path(tmp_path / "secrets" / "localhost").exists()
