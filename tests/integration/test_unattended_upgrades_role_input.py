"""Bad input to the unattended_upgrades role fails before anything changes, naming the variable.

Check mode against this machine (connection local); the cases run in one
ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import pytest
from ansible_run import assert_refused, run_role_check, run_role_checks

CASES = {
    "reboot time without minutes": (
        {"unattended_upgrades_reboot_time": "4"},
        [r"unattended_upgrades_reboot_time must be a time HH:MM \(24 h\) or now", r"'4'"],
    ),
    "reboot time past midnight": (
        {"unattended_upgrades_reboot_time": "24:30"},
        [r"unattended_upgrades_reboot_time must be a time HH:MM", r"'24:30'"],
    ),
    "unknown scope": ({"unattended_upgrades_scope": "everything"}, [r"unattended_upgrades_scope", r"security, all"]),
    "package with a quote": (
        {"unattended_upgrades_blocklist": ['docker-ce";']},
        [r"unattended_upgrades_blocklist must be package names or apt's name patterns"],
    ),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    return run_role_checks(tmp_path_factory, "unattended_upgrades", {case: spec[0] for case, spec in CASES.items()})


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    assert_refused(refusals[case], CASES[case][1])


def test_valid_input_reaches_the_package(tmp_path):
    variables = {"unattended_upgrades_reboot": True, "unattended_upgrades_reboot_time": "now"}
    result = run_role_check(tmp_path, "unattended_upgrades", variables)
    output = result.stdout + result.stderr
    assert "Install unattended-upgrades" in output, output
