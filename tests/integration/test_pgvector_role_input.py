"""Bad input to the pgvector role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local); its
preflight comes before any task that could change the host.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import socket

import pytest
from ansible_run import assert_stopped_unchanged, run_role_check, run_role_checks

STRONG = "a-strong-password-0123456789"
BASE = {"pgvector_superuser_password": STRONG}

CASES = {
    "short superuser password": (
        {"pgvector_superuser_password": "short"},
        [r"pgvector_superuser_password must have at least 16 characters without spaces \(it has 5\)"],
    ),
    "short owner password": (
        {"pgvector_passwords": {"rag": "tiny"}},
        [r"pgvector_passwords values must have at least 16 characters"],
    ),
    "password for an unknown owner": (
        {"pgvector_passwords": {"nobody": STRONG}},
        [r"unknown: \['nobody'\]"],
    ),
    "no database": ({"pgvector_databases": []}, [r"pgvector_databases must not be empty \(got \[\]\)"]),
    "database name not an identifier": (
        {"pgvector_databases": [{"name": "my-db", "owner": "app"}]},
        [r"pgvector_databases names and owners must be lower-case SQL identifiers"],
    ),
    "database listed twice": (
        {"pgvector_databases": [{"name": "app", "owner": "a"}, {"name": "app", "owner": "b"}]},
        [r"other\s+than 'postgres', the names unique"],
    ),
    "owner missing": (
        {"pgvector_databases": [{"name": "app"}]},
        [r"pgvector_databases"],
    ),
    "bad extension name": (
        {"pgvector_databases": [{"name": "app", "owner": "app", "extensions": ["vector; DROP"]}]},
        [r"pgvector_databases: database app lists an invalid extension name"],
    ),
    "listen address not an IP": (
        {"pgvector_listen_addresses": ["entrance.local"]},
        [r"pgvector_listen_addresses must list at least one IP address \(got \['entrance.local'\]\)"],
    ),
    "allowed network not a CIDR": (
        {"pgvector_allowed_networks": ["10.0.0.0/33"]},
        [r"pgvector_allowed_networks must be networks in CIDR notation", r"\(got \['10.0.0.0/33'\]\)"],
    ),
    "port out of range": ({"pgvector_port": 70000}, [r"pgvector_port must be between 1 and 65535 \(got 70000\)"]),
    "shared buffers too small": ({"pgvector_shared_buffers_mb": 4}, [r"pgvector_shared_buffers_mb \(4\) must be"]),
    "relative data path": ({"pgvector_data": "data/pg"}, [r"pgvector_data must be an absolute host path"]),
    "variable of the removed dump timer": (
        {"pgvector_backup_s3_bucket": "parrotpark-backups"},
        [
            r"pgvector_backup_s3_bucket: the pgvector role no longer backs up PostgreSQL",
            r"role parrotpark\.llm\.backup's \(docs/backup\.md\)",
            r"pgvector_backup_s3_bucket -> backup_s3_bucket\.",
        ],
    ),
    "variables of the removed dump timer, the switch too": (
        {"pgvector_backup_enabled": False, "pgvector_backup_keep": 3},
        [
            r"pgvector_backup_enabled, pgvector_backup_keep: the pgvector role no longer backs up",
            r"pgvector_backup_enabled -> backup_enabled;",
            r"pgvector_backup_keep -> backup_keep_daily / backup_keep_weekly / backup_keep_monthly\.",
        ],
    ),
    "no work memory": ({"pgvector_work_mem_mb": 0}, [r"pgvector_work_mem_mb must be at least 1 \(got 0\)"]),
    "too few connections": (
        {"pgvector_max_connections": 5},
        [r"pgvector_max_connections must be at least 10 \(got 5\)"],
    ),
    "listen address a network": (
        {"pgvector_listen_addresses": ["10.0.0.1/24"]},
        [r"pgvector_listen_addresses must list at least one IP address"],
    ),
    "wrong type": ({"pgvector_work_mem_mb": "many"}, [r"pgvector_work_mem_mb", r"int"]),
    "relative config dir": ({"pgvector_config_dir": "etc/pg"}, [r"pgvector_config_dir must be an absolute path"]),
    "no health wait": (
        {"pgvector_health_retries": 0},
        [r"pgvector_health_retries and pgvector_health_delay at least 1 \(got 0 and"],
    ),
    "log size format": ({"pgvector_log_max_size": "10 MB"}, [r"pgvector_log_max_size a number followed by k, m or g"]),
    "container name not a docker name": (
        {"pgvector_container_name": "parrotpark/postgres"},
        [r"pgvector_container_name and pgvector_docker_network must be Docker names"],
    ),
}


SHORT_SECRET = "short-secret"
OLD_S3_SECRET = "old-dump-timer-s3-secret-0123456789"


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each with its own secrets directory; the short secret's case too."""
    cases = {case: {**BASE, **variables} for case, (variables, _unused) in CASES.items()}
    cases["short secret"] = {"pgvector_superuser_password": SHORT_SECRET}
    cases["old S3 secret"] = {**BASE, "pgvector_backup_s3_secret_key": OLD_S3_SECRET}
    return run_role_checks(tmp_path_factory, "pgvector", cases)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_stopped_unchanged(refusals[case], patterns)


SECRET_CASES = {
    "short secret": (SHORT_SECRET, [r"pgvector_superuser_password must have at least 16 characters"]),
    # a secret key of the removed dump timer is refused by its name only
    "old S3 secret": (OLD_S3_SECRET, [r"pgvector_backup_s3_secret_key -> backup_s3_secret_key\."]),
}


@pytest.mark.parametrize("case", SECRET_CASES, ids=list(SECRET_CASES))
def test_secret_values_stay_out_of_the_output(refusals, case):
    secret, patterns = SECRET_CASES[case]
    result = refusals[case]
    assert_stopped_unchanged(result, patterns)
    assert secret not in result.stdout + result.stderr + result.shared


def test_port_in_use_fails_before_any_change(tmp_path):
    """A published port another program listens on is reported with the variable, before anything changes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_role_check(
            tmp_path, "pgvector", {**BASE, "pgvector_listen_addresses": ["127.0.0.1"], "pgvector_port": port}
        )
    assert_stopped_unchanged(result, [rf"pgvector_port: another program already listens on 127\.0\.0\.1:{port}"])
