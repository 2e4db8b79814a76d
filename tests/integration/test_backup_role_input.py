"""Bad input to the backup role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host, so every case must stop with changed=0. The repository
password and the S3 secret key are never shown.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import pytest
from ansible_run import assert_refused, overlay, run_role_check, run_role_checks

PASSWORD = "Short-pw-9"
SECRET_KEY = "S3-secret-key-0123456789-abcdef"
# A valid base: only a local repository, nothing on this machine is read before the checks.
BASE: dict = {}

CASES = {
    "relative local repository": (
        {"backup_local_repository": "var/backups/restic"},
        [r"backup_local_repository must be an absolute path \(got 'var/backups/restic'\)"],
    ),
    "no repository at all": (
        {"backup_local_repository": ""},
        [r"backup_local_repository and backup_s3_bucket are both empty", r"nowhere to go"],
    ),
    "bucket without keys": (
        {"backup_s3_bucket": "parrotpark-backups"},
        [r"backup_s3_access_key must not be empty", r"backup_s3_secret_key must not be empty", r"needs its keys"],
    ),
    "bucket name with capitals": (
        {"backup_s3_bucket": "My_Backups", "backup_s3_access_key": "AK", "backup_s3_secret_key": SECRET_KEY},
        [r"backup_s3_bucket must be empty or an S3 bucket name", r"'My_Backups'"],
    ),
    "endpoint with a path": (
        {
            "backup_s3_bucket": "parrotpark-backups",
            "backup_s3_endpoint": "https://s3.example.test/bucket",
            "backup_s3_access_key": "AK",
            "backup_s3_secret_key": SECRET_KEY,
        },
        [r"backup_s3_endpoint must be a host name with an optional port", r"'https://s3.example.test/bucket'"],
    ),
    "short repository password": (
        {"backup_password": PASSWORD},
        [r"backup_password must have at least 16 characters without spaces \(it has 10\)"],
    ),
    "negative retention": ({"backup_keep_daily": -1}, [r"backup_keep_daily must be at least 0 \(got -1\)"]),
    "retention that keeps nothing": (
        {"backup_keep_daily": 0, "backup_keep_weekly": 0, "backup_keep_monthly": 0},
        [r"backup_keep_daily, backup_keep_weekly and backup_keep_monthly are all 0"],
    ),
    "retention not a number": ({"backup_keep_weekly": "four"}, [r"backup_keep_weekly", r"int"]),
    "calendar that systemd refuses": (
        {"backup_on_calendar": "every night"},
        [r"backup_on_calendar must be a systemd calendar expression", r"got\s+'every night'"],
    ),
    "relative path to back up": (
        {"backup_paths": ["etc/parrotpark"]},
        [r"backup_paths must be absolute paths", r"wrong: \['etc/parrotpark'\]"],
    ),
    "volume name with a slash": (
        {"backup_volumes": ["parrotpark/uploads"]},
        [r"backup_volumes must be Docker volume names", r"wrong: \['parrotpark/uploads'\]"],
    ),
    "repository inside a backed-up path": (
        {"backup_local_repository": "/etc/parrotpark/restic"},
        [r"backup_paths .* must not hold backup_local_repository \(/etc/parrotpark/restic\)"],
    ),
    "relative staging directory": (
        {"backup_staging_dir": "tmp/backup"},
        [r"backup_staging_dir must be an absolute path \(got 'tmp/backup'\)"],
    ),
    "container name with a space": (
        {"backup_postgres_container": "parrotpark postgres"},
        [r"backup_postgres_container must be empty or a Docker container name", r"'parrotpark postgres'"],
    ),
}

SECRETS = (PASSWORD, SECRET_KEY)


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    cases = {case: overlay(BASE, spec[0]) for case, spec in CASES.items()}
    return run_role_checks(tmp_path_factory, "backup", cases)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    assert_refused(refusals[case], CASES[case][1], SECRETS)


def test_valid_input_passes_the_checks_and_hides_the_secrets(tmp_path):
    """Good values with both repositories get past every check; the password and the keys are not shown."""
    password = "Given-repository-password-0123456789"
    variables = {
        "backup_password": password,
        "backup_s3_bucket": "parrotpark-backups",
        "backup_s3_endpoint": "http://127.0.0.1:8333",
        "backup_s3_access_key": "AKIDEXAMPLE",
        "backup_s3_secret_key": SECRET_KEY,
        "backup_on_calendar": "daily",
    }
    result = run_role_check(tmp_path, "backup", variables)
    output = result.stdout + result.stderr
    assert "Check backup_on_calendar" in output, output
    assert "Action failed" not in output.split("Write the repositories' password", 1)[0], output
    assert "Write the repositories' password" in output, output
    for secret in (password, SECRET_KEY):
        assert secret not in output, f"{secret!r} shown"
    # A given password is not written to the controller.
    assert not (tmp_path / "secrets").exists()
