"""Bad input to the keycloak role fails before anything changes, naming the variable.

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

# A valid domain, so that each case fails on the one variable it breaks (None: leave the variable unset).
BASE = {"keycloak_domain": "example.test"}
USER = {"username": "tester", "password": "tester-password-0123456789"}

CASES = {
    "empty domain": (
        {"keycloak_domain": ""},
        [r"keycloak_domain must be the DNS domain of the installation", r"got ''"],
    ),
    "domain not set at all": (
        {"keycloak_domain": None},
        [r"keycloak_domain must be the DNS domain", r"defaults to parrotpark_domain"],
    ),
    "invalid domain": ({"keycloak_domain": "example..test"}, [r"keycloak_domain must be the DNS domain"]),
    "domain with a scheme": ({"keycloak_domain": "https://example.test"}, [r"keycloak_domain must be the DNS domain"]),
    "hostname without scheme": (
        {"keycloak_hostname": "auth.example.test"},
        [r"keycloak_hostname must be the full public URL of Keycloak", r"'auth.example.test'"],
    ),
    "hostname with trailing slash": (
        {"keycloak_hostname": "https://auth.example.test/"},
        [r"keycloak_hostname must be the full public URL", r"no trailing slash"],
    ),
    "redirect URI not https": (
        {"keycloak_librechat_redirect_uris": ["http://chat.example.test/oauth/openid/callback"]},
        [r"keycloak_librechat_redirect_uris must list at least one https:// URL"],
    ),
    "no redirect URI": (
        {"keycloak_librechat_redirect_uris": []},
        [r"keycloak_librechat_redirect_uris must list at least one https:// URL"],
    ),
    "master realm": ({"keycloak_realm": "master"}, [r"keycloak_realm must be a realm name other than master"]),
    "reports redirect URI not https": (
        {"keycloak_reports_redirect_uris": ["http://chat.example.test/reports/oauth2/callback"]},
        [r"keycloak_reports_redirect_uris must list at least one https:// URL", r"/reports/oauth2/callback"],
    ),
    "reports role with a space": (
        {"keycloak_reports_role": "cost admin"},
        [r"keycloak_reports_role must be a role name"],
    ),
    "reports client id with a space": (
        {"keycloak_reports_client_id": "parrotpark reports"},
        [r"keycloak_reports_client_id must be empty or a client id"],
    ),
    "client id with a space": (
        {"keycloak_librechat_client_id": "libre chat"},
        [r"keycloak_librechat_client_id must be a client id"],
    ),
    "required role with a space": (
        {"keycloak_librechat_required_role": "chat user"},
        [r"keycloak_librechat_required_role must be empty or a role name"],
    ),
    "short admin password": (
        {"keycloak_admin_password": "Short-pw-1"},
        [r"keycloak_admin_password must have at least 16 characters without spaces \(it has 10\)"],
    ),
    "short database password": (
        {"keycloak_db_password": "0123456789"},
        [r"keycloak_db_password must have at least 16 characters without spaces \(it has 10\)"],
    ),
    "empty client secret": (
        {"keycloak_librechat_client_secret": ""},
        [r"keycloak_librechat_client_secret must have at least 16 characters without spaces \(it has 0\)"],
    ),
    "user with a short password": (
        {"keycloak_users": [{"username": "tester", "password": "tooshort"}]},
        [r"keycloak_users: every entry needs", r"Entries that are not: \['tester'\]"],
    ),
    "user without a username": (
        {"keycloak_users": [{"password": "tester-password-0123456789"}]},
        [r"missing required arguments: username", r"keycloak_users"],
    ),
    "present user without a password": (
        {"keycloak_users": [{"username": "tester"}]},
        [r"keycloak_users: every entry needs", r"\['tester'\]"],
    ),
    "duplicate users": (
        {"keycloak_users": [USER, USER]},
        [r"keycloak_users: every entry needs", r"duplicate usernames"],
    ),
    "user with a bad email": (
        {"keycloak_users": [{**USER, "email": "tester-at-example"}]},
        [r"keycloak_users: every entry needs", r"\['tester'\]"],
    ),
    "user state unknown": (
        {"keycloak_users": [{**USER, "state": "gone"}]},
        [r"keycloak_users", r"state", r"present, absent"],
    ),
    "same port for HTTP and management": (
        {"keycloak_management_listen_addresses": ["127.0.0.1"], "keycloak_management_port": 8080},
        [
            r"keycloak_port and keycloak_management_port must differ when both are published on the same address",
            r"both are 8080",
        ],
    ),
    "same port on a wildcard address": (
        {
            "keycloak_listen_addresses": ["0.0.0.0"],
            "keycloak_management_listen_addresses": ["127.0.0.1"],
            "keycloak_port": 9100,
            "keycloak_management_port": 9100,
        },
        [r"must differ when both are published on the same address", r"keycloak_listen_addresses \['0.0.0.0'\]"],
    ),
    "port out of range": ({"keycloak_port": 70000}, [r"keycloak_port must be between 1 and 65535 \(got 70000\)"]),
    "management port out of range": (
        {"keycloak_management_port": 0},
        [r"keycloak_management_port must be between 1 and 65535 \(got 0\)"],
    ),
    "management address not an IP": (
        {"keycloak_management_listen_addresses": ["localhost"]},
        [r"keycloak_management_listen_addresses must list only IP addresses", r"'localhost'"],
    ),
    "listen address not an IP": (
        {"keycloak_listen_addresses": ["localhost"]},
        [r"keycloak_listen_addresses must list at least one IP address", r"'localhost'"],
    ),
    "nothing published": (
        {"keycloak_listen_addresses": []},
        [r"keycloak_listen_addresses must list at least one IP address"],
    ),
    "wrong type": ({"keycloak_port": "eighty"}, [r"keycloak_port", r"int"]),
    "unknown proxy headers": (
        {"keycloak_proxy_headers": "all"},
        [r"keycloak_proxy_headers", r"xforwarded, forwarded"],
    ),
    "unknown cache": ({"keycloak_cache": "redis"}, [r"keycloak_cache", r"local, ispn"]),
    "database name not an identifier": (
        {"keycloak_db_name": "key-cloak"},
        [r"keycloak_db_name must be a lower-case SQL identifier", r"\(got 'key-cloak'\)"],
    ),
    "database user not an identifier": (
        {"keycloak_db_username": "KeyCloak"},
        [r"keycloak_db_username must be a lower-case SQL identifier", r"\(got 'KeyCloak'\)"],
    ),
    "database host with a scheme, port out of range, both reported": (
        {"keycloak_db_host": "postgres://db", "keycloak_db_port": 0},
        [
            r"keycloak_db_host must be a host name or an IP address \(got 'postgres://db'\)",
            r"keycloak_db_port must be between 1 and 65535 \(got 0\)",
        ],
    ),
    "bad environment name": (
        {"keycloak_env": {"KC LOG LEVEL": "debug"}},
        [r"keycloak_env must map environment variable names", r"not names: \['KC LOG LEVEL'\]"],
    ),
    "relative config dir": (
        {"keycloak_config_dir": "etc/keycloak"},
        [r"keycloak_config_dir must be an absolute path"],
    ),
    "no health wait": (
        {"keycloak_health_retries": 0},
        [r"keycloak_health_retries\s+and keycloak_health_delay at least 1"],
    ),
    "brute force without a failure count": (
        {"keycloak_brute_force_failure_factor": 0},
        [r"keycloak_brute_force_failure_factor must be at least 1 \(got 0\)"],
    ),
    "brute force negative quick login check": (
        {"keycloak_brute_force_quick_login_check_milliseconds": -5},
        [r"keycloak_brute_force_quick_login_check_milliseconds must be at least 0 \(got -5\)"],
    ),
    "brute force longest lockout below the first": (
        {"keycloak_brute_force_wait_increment_seconds": 600, "keycloak_brute_force_max_failure_wait_seconds": 300},
        [
            r"keycloak_brute_force_max_failure_wait_seconds \(300\) must be\s+at\s+least\s+"
            r"keycloak_brute_force_wait_increment_seconds \(600\)"
        ],
    ),
    "brute force flag not a boolean": (
        {"keycloak_brute_force_protected": "sometimes"},
        [r"keycloak_brute_force_protected"],
    ),
}

SECRETS = ("Short-pw-1", "0123456789", "tooshort", "tester-password-0123456789")


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    return run_role_checks(tmp_path_factory, "keycloak", {case: overlay(BASE, spec[0]) for case, spec in CASES.items()})


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_refused(refusals[case], patterns, SECRETS)


def test_valid_input_passes_the_variable_checks(tmp_path):
    """The same run with good values gets past every variable check (it stops later or not at all)."""
    variables = {
        **BASE,
        "keycloak_users": [
            {**USER, "email": "tester@example.test", "roles": ["chat"]},
            {"username": "old", "state": "absent"},
        ],
        "keycloak_librechat_required_role": "chat",
        "keycloak_management_listen_addresses": ["127.0.0.1"],
        "keycloak_port": 58080,
        "keycloak_management_port": 59000,
    }
    result = run_role_check(tmp_path, "keycloak", variables)
    output = result.stdout + result.stderr
    assert "Check keycloak_config_dir, the health wait and the log settings" in output, output
    assert not any(f"{name} must" in output for name in ("keycloak_domain", "keycloak_hostname", "keycloak_users:"))
    # The generated secrets were written on the controller, 0600, for the next run to reuse.
    for name in ("keycloak-admin-password", "keycloak-librechat-client-secret", "postgres-keycloak"):
        path = tmp_path / "secrets" / "localhost" / name
        assert path.is_file(), name
        assert path.stat().st_mode & 0o777 == 0o600


def test_port_in_use_fails_before_any_change(tmp_path):
    """A port another program listens on is reported with the variable, before anything changes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_role_check(tmp_path, "keycloak", {**BASE, "keycloak_port": port})
    assert_stopped_unchanged(
        result, [rf"keycloak_port / keycloak_management_port: another program already listens on 127\.0\.0\.1:{port}"]
    )
