"""Bad input to the alerts role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument spec validation and the
preflight checks come before any task that could change the host, so every case must stop with changed=0.
The webhook's URL (it holds a token), its headers and the SMTP password are never shown.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import pytest
from ansible_run import assert_refused, overlay, run_role_check, run_role_checks

WEBHOOK_URL = "https://hooks.example.test/services/T000/B000/webhook-token-7f3a9c"
SMTP_PASSWORD = "smtp-password-0f9e8d7c6b"
HEADER_VALUE = "Bearer header-token-1a2b3c4d"
# A valid base: a webhook only.
BASE: dict = {"alerts_webhook_url": WEBHOOK_URL}
SMTP = {
    "alerts_smtp_host": "smtp.example.test",
    "alerts_smtp_from": "parrotpark@example.test",
    "alerts_smtp_to": ["ops@example.test"],
}

CASES = {
    "webhook that is not http(s)": (
        {"alerts_webhook_url": "hooks.example.test/services/T000/B000/webhook-token-7f3a9c"},
        [r"alerts_webhook_url must be an http\(s\) URL; it has 58 characters", r"starting with https://"],
    ),
    "webhook with ftp": (
        {"alerts_webhook_url": "ftp://hooks.example.test/x"},
        [r"alerts_webhook_url must be an http\(s\) URL"],
    ),
    "headers without a webhook": (
        {"alerts_webhook_url": "", **SMTP, "alerts_webhook_headers": {"Authorization": HEADER_VALUE}},
        [r"alerts_webhook_headers must map header names", r"needs\s+alerts_webhook_url", r"alerts_webhook_url\s+empty"],
    ),
    "header name with a space": (
        {"alerts_webhook_headers": {"X Token": HEADER_VALUE}},
        [r"alerts_webhook_headers must map header names", r"\['X Token'\]"],
    ),
    "smtp host without sender and recipients": (
        {"alerts_smtp_host": "smtp.example.test"},
        [
            r"alerts_smtp_from must be an e-mail address such as alerts@example.org; got ''",
            r"alerts_smtp_to must be a list of e-mail addresses such as \[ops@example.org\]; got \[\]",
            r"need alerts_smtp_host, alerts_smtp_from and alerts_smtp_to together",
        ],
    ),
    "recipients without a host": (
        {"alerts_smtp_to": ["ops@example.test"], "alerts_smtp_from": "parrotpark@example.test"},
        [r"alerts_smtp_host must be a host name or an IP address"],
    ),
    "smtp password without a user": (
        {**SMTP, "alerts_smtp_password": SMTP_PASSWORD},
        [r"alerts_smtp_user must not be empty", r"alerts_smtp_password is set"],
    ),
    "smtp user without a password": (
        {**SMTP, "alerts_smtp_user": "alerts"},
        [r"alerts_smtp_password must not be empty", r"alerts_smtp_user is set"],
    ),
    "recipient that is not an e-mail address": (
        {**SMTP, "alerts_smtp_to": ["ops@example.test", "oncall"]},
        [r"alerts_smtp_to must be a list of e-mail addresses", r"wrong: \['oncall'\]"],
    ),
    "sender that is not an e-mail address": (
        {**SMTP, "alerts_smtp_from": "Parrotpark"},
        [r"alerts_smtp_from must be an e-mail address", r"'Parrotpark'"],
    ),
    "smtp port out of range": (
        {**SMTP, "alerts_smtp_port": 70000},
        [r"alerts_smtp_port must be between 1 and 65535 \(got 70000\)"],
    ),
    "smtp port not a number": ({**SMTP, "alerts_smtp_port": "submission"}, [r"alerts_smtp_port", r"int"]),
    "disk threshold above 100": ({"alerts_disk_percent": 120}, [r"alerts_disk_percent must be between 1 and 100"]),
    "disk threshold 0": ({"alerts_disk_percent": 0}, [r"alerts_disk_percent must be between 1 and 100 \(got 0\)"]),
    "relative disk path": (
        {"alerts_disk_paths": ["/", "var/lib/docker"]},
        [r"alerts_disk_paths must be absolute paths", r"wrong: \['var/lib/docker'\]"],
    ),
    "check interval 0": ({"alerts_check_minutes": 0}, [r"alerts_check_minutes must be between 1 and 1440"]),
    "negative repeat": ({"alerts_repeat_hours": -1}, [r"alerts_repeat_hours must be at least 0 \(got -1\)"]),
    "unhealthy delay 0": ({"alerts_unhealthy_minutes": 0}, [r"alerts_unhealthy_minutes must be at least 1"]),
    "backup age 0": ({"alerts_backup_max_age_hours": 0}, [r"alerts_backup_max_age_hours must be at least 1"]),
    "unit that is not a service": (
        {"alerts_units": ["parrotpark-backup.timer"]},
        [r"alerts_units must be systemd service names", r"wrong: \['parrotpark-backup.timer'\]"],
    ),
    "template instance as a unit": (
        {"alerts_units": ["parrotpark-alert@x.service"]},
        [r"alerts_units must be systemd service names \(name.service, not a template instance\)"],
    ),
    "relative state directory": (
        {"alerts_state_dir": "var/lib/alerts"},
        [r"alerts_state_dir must be an absolute path \(got 'var/lib/alerts'\)"],
    ),
}

SECRETS = (WEBHOOK_URL, "webhook-token-7f3a9c", SMTP_PASSWORD, HEADER_VALUE)


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    cases = {case: overlay(BASE, spec[0]) for case, spec in CASES.items()}
    return run_role_checks(tmp_path_factory, "alerts", cases)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    assert_refused(refusals[case], CASES[case][1], SECRETS)


def test_valid_input_passes_the_checks_and_hides_the_secrets(tmp_path):
    """Both channels, complete: past every check into the installation; no credential is shown."""
    variables = {
        **BASE,
        **SMTP,
        "alerts_webhook_headers": {"Authorization": HEADER_VALUE},
        "alerts_smtp_user": "alerts",
        "alerts_smtp_password": SMTP_PASSWORD,
    }
    result = run_role_check(tmp_path, "alerts", variables)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Install the parrotpark-alert command" in output, output
    assert "Action failed" not in output.split("Install the parrotpark-alert command", 1)[0], output
    assert "Write the program's configuration" in output, output
    for secret in SECRETS:
        assert secret not in output, f"{secret!r} shown"


def test_no_channel_means_alerts_off_and_nothing_installed(tmp_path):
    result = run_role_check(tmp_path, "alerts", {})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    flat = " ".join(output.split())
    assert "Alerts are off on localhost: no channel is configured" in flat, output
    # The included files are skipped: none of their tasks runs.
    for task in ("Install the parrotpark-alert command", "Write the program's configuration", "Enable and start"):
        assert task not in output, output
