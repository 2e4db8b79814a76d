"""Bad input to the reports role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host. Secrets are never shown in the messages. The cases run in one
ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import pytest
from ansible_run import assert_refused, run_role_checks

BASE = {"parrotpark_domain": "example.test"}
COOKIE = "0123456789abcdef0123456789abcde"  # 31 characters: refused

CASES = {
    "no domain": ({"parrotpark_domain": ""}, [r"reports_domain must be", r"parrotpark_domain"]),
    "path with a trailing slash": (
        {"reports_path": "/reports/"},
        [r"reports_path must be a path on the chat site such as /reports, without a trailing slash"],
    ),
    "relative reports directory": ({"reports_dir": "reports"}, [r"reports_dir must be an absolute path"]),
    "role with a space": (
        {"reports_allowed_role": "cost admin"},
        [r"reports_allowed_role must be the name of a realm role"],
    ),
    "cookie secret of 31 characters": (
        {"reports_cookie_secret": COOKIE},
        [r"reports_cookie_secret must be 16, 24 or 32 characters long \(got 31\)"],
    ),
    "short client secret": (
        {"reports_client_secret": "short-secret"},
        [r"reports_client_secret must have at least 16 characters"],
    ),
    "session of zero hours": ({"reports_session_hours": 0}, [r"reports_session_hours must be between 1 and 720"]),
    "listen address that is a name": (
        {"reports_listen_addresses": ["localhost"]},
        [r"reports_listen_addresses must list at least one IP address \(got \['localhost'\]\)"],
    ),
    "no listen address": ({"reports_listen_addresses": []}, [r"reports_listen_addresses must list at least one IP"]),
    "issuer with a trailing slash": (
        {"reports_openid_issuer": "https://auth.example.test/realms/parrotpark/"},
        [r"reports_openid_issuer must be the realm's issuer URL without a trailing slash"],
    ),
    "environment name with a dash": ({"reports_env": {"OAUTH2-PROXY": "x"}}, [r"reports_env"]),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    return run_role_checks(tmp_path_factory, "reports", {case: BASE | spec[0] for case, spec in CASES.items()})


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    variables = BASE | CASES[case][0]
    secrets = tuple(variables[name] for name in ("reports_cookie_secret", "reports_client_secret") if name in variables)
    assert_refused(refusals[case], CASES[case][1], secrets=secrets)
