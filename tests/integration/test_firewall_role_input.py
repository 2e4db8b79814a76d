"""Bad input to the firewall role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host, so every case must stop with changed=0. The SSH lock-out
check is made for an SSH connection only, so its case is a run of its own
with ansible_connection=ssh (nothing connects: preflight stops first).

The other cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import pytest
from ansible_run import assert_refused, run_role_check, run_role_checks

CASES = {
    "private network without a prefix": (
        {"firewall_private_networks": ["172.16.4.0"]},
        [r"firewall_private_networks must list networks in CIDR notation without host bits"],
    ),
    "private network with host bits": (
        {"firewall_private_networks": ["172.16.4.2/22"]},
        [r"firewall_private_networks must list networks in CIDR notation", r"172.16.4.2/22"],
    ),
    "garbage as a network": (
        {"firewall_private_networks": ["banana"]},
        [r"firewall_private_networks must list networks", r"banana"],
    ),
    "port zero": (
        {"firewall_public_tcp_ports": [0, 22, 443]},
        [r"firewall_public_tcp_ports must be TCP ports between 1 and 65535", r"wrong: \[0\]"],
    ),
    "port too high": (
        {"firewall_public_udp_ports": [70000]},
        [r"firewall_public_udp_ports must be UDP ports between 1 and 65535", r"wrong: \[70000\]"],
    ),
    "port not a number": ({"firewall_public_tcp_ports": ["https"]}, [r"firewall_public_tcp_ports", r"int"]),
    "port twice": ({"firewall_public_tcp_ports": [22, 443, 443]}, [r"firewall_public_tcp_ports", r"443"]),
    "relative configuration directory": (
        {"firewall_config_dir": "etc/firewall"},
        [r"firewall_config_dir must be an absolute path \(got 'etc/firewall'\)"],
    ),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    return run_role_checks(tmp_path_factory, "firewall", {case: spec[0] for case, spec in CASES.items()})


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    assert_refused(refusals[case], CASES[case][1])


def test_a_list_without_the_ssh_port_would_lock_ansible_out(tmp_path):
    variables = {"ansible_connection": "ssh", "ansible_port": 2222, "firewall_public_tcp_ports": [22, 80, 443]}
    assert_refused(
        run_role_check(tmp_path, "firewall", variables),
        [r"firewall_public_tcp_ports \(\[22, 80, 443\]\) does not list 2222", r"lock Ansible and you out"],
    )


def test_valid_input_passes_the_checks(tmp_path):
    """Good values get past every check: the first task after preflight (the package) is reached."""
    variables = {"firewall_private_networks": ["172.16.4.0/22", "fd00:4::/64"], "firewall_public_udp_ports": []}
    result = run_role_check(tmp_path, "firewall", variables)
    output = result.stdout + result.stderr
    assert "Install nftables" in output, output
    assert "Check that Ansible's SSH port stays open" in output, output
