"""Bad input to the docker role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and preflight asserts come before any task that could change
the host, so every case must stop with changed=0.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_run import assert_stopped_unchanged, run_role_check, run_role_checks

ROOT = Path(__file__).resolve().parents[2]


def run_role(tmp_path: Path, variables: dict) -> subprocess.CompletedProcess[str]:
    return run_role_check(tmp_path, "docker", variables)


CASES = {
    "wrong type": ({"docker_daemon_log_max_file": "many"}, [r"docker_daemon_log_max_file", r"int"]),
    "unknown source": ({"docker_install_source": "snap"}, [r"docker_install_source", r"distribution, upstream"]),
    "unknown nvidia mode": (
        {"docker_nvidia_runtime": "maybe"},
        [r"docker_nvidia_runtime", r"auto, required, disabled"],
    ),
    "wrong bool": ({"docker_daemon_live_restore": "sometimes"}, [r"docker_daemon_live_restore", r"bool"]),
    "log size format": (
        {"docker_daemon_log_max_size": "10 MB"},
        [r"docker_daemon_log_max_size must be a number followed by k, m or g", r"\(got '10 MB'\)"],
    ),
    "no log file": ({"docker_daemon_log_max_file": 0}, [r"docker_daemon_log_max_file must be at least 1 \(got 0\)"]),
    "registry with scheme": (
        {"docker_daemon_insecure_registries": ["http://registry:5000"]},
        [r"docker_daemon_insecure_registries must be host, host:port or CIDR entries .*'http://registry:5000'"],
    ),
    "mirror not a URL": (
        {"docker_daemon_registry_mirrors": ["mirror.local"]},
        [r"docker_daemon_registry_mirrors must be http\(s\)://host\[:port\] URLs; got \['mirror.local'\]"],
    ),
    "relative data root": (
        {"docker_daemon_data_root": "srv/docker"},
        [r"docker_daemon_data_root must be an absolute path \(got 'srv/docker'\)"],
    ),
    "missing CA bundle": (
        {"docker_extra_ca_bundle": "/nonexistent/ca.pem"},
        [r"docker_extra_ca_bundle must name a PEM file"],
    ),
    "unknown user": (
        {"docker_users": ["no-such-user-4711"]},
        [r"docker_users: user 'no-such-user-4711' does not exist"],
    ),
    "bad environment name": (
        {"docker_service_environment": {"HTTP PROXY": "x"}},
        [r"docker_service_environment must map environment variable names", r"not names: \['HTTP PROXY'\]"],
    ),
    "plain http upstream": (
        {"docker_install_source": "upstream", "docker_upstream_repository_url": "http://mirror/linux"},
        [r"docker_upstream_repository_url must be an https:// URL"],
    ),
    "no health wait": ({"docker_health_timeout": 0}, [r"docker_health_timeout must be at least 1 \(got 0\)"]),
    "two broken rules, both reported": (
        {"docker_daemon_log_max_file": 0, "docker_health_timeout": 0},
        [r"docker_daemon_log_max_file must be at least 1", r"docker_health_timeout must be at least 1"],
    ),
}


NO_GPU = not Path("/dev/nvidiactl").exists()
NVIDIA_REQUIRED = {"docker_nvidia_runtime": "required"}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each; on a machine without a GPU, the required NVIDIA runtime too."""
    cases = {case: spec[0] for case, spec in CASES.items()}
    if NO_GPU:
        cases["required nvidia runtime"] = NVIDIA_REQUIRED
    return run_role_checks(tmp_path_factory, "docker", cases)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_stopped_unchanged(refusals[case], patterns)


def test_a_certificate_file_passes_the_ca_check(tmp_path):
    """The CA check accepts a real PEM file (and the run then stops at the next bad variable, checked after it)."""
    ca = ROOT / "molecule" / "docker-alternative" / "test-ca.pem"
    result = run_role(tmp_path, {"docker_extra_ca_bundle": str(ca), "docker_users": ["no-such-user-4711"]})
    output = result.stdout + result.stderr
    assert "docker_extra_ca_bundle must name" not in output
    assert "docker_users: user 'no-such-user-4711' does not exist" in output


@pytest.mark.skipif(not NO_GPU, reason="this machine has an NVIDIA GPU")
def test_required_nvidia_runtime_without_gpu_fails_before_any_change(refusals):
    result = refusals["required nvidia runtime"]
    assert_stopped_unchanged(result, [r"docker_nvidia_runtime is 'required' but this host has no NVIDIA GPU"])
