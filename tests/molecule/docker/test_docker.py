"""Verify the docker role on a molecule platform: the engine runs, daemon.json says
what the variables say, the settings are in effect, and an image pulled from the
lab registry runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import converge, recap_changed

DEFAULTS = yaml.safe_load((Path(__file__).parents[3] / "roles/docker/defaults/main.yml").read_text())
HELLO = "parrotpark-lab-registry:5000/parrotpark/lab-hello:current"
HELLO_OUTPUT = "hello from the parrotpark lab registry"
# The lab registry also holds the hello image as library/parrotpark-hello, so an
# engine that uses it as its Docker Hub mirror pulls "parrotpark-hello" from it.
LAB_MIRROR = "http://parrotpark-lab-registry:5000"


@pytest.fixture(scope="module")
def role_vars(host):
    """Role defaults overlaid with the scenario's inventory variables."""
    inventory = host.ansible.get_variables()
    return {key: inventory.get(key, value) for key, value in DEFAULTS.items()}


@pytest.fixture(scope="module")
def daemon_json(host):
    config = host.file("/etc/docker/daemon.json")
    assert config.exists, "daemon.json is missing"
    return json.loads(config.content_string)


@pytest.fixture(scope="module")
def engine_info(host):
    out = host.check_output("docker info --format '{{json .}}'")
    return json.loads(out)


def test_engine_package_installed(host, role_vars):
    if role_vars["docker_install_source"] == "distribution":
        assert host.package("docker.io").is_installed
    assert host.exists("docker"), "the docker command-line client is missing"
    if role_vars["docker_python_sdk"]:
        assert host.package("python3-docker").is_installed


def test_engine_service_running(host):
    service = host.service("docker")
    if not service.is_running:
        print(host.run("journalctl -u docker --no-pager -n 50").stdout)
    assert service.is_running
    assert service.is_enabled
    assert host.socket("unix:///run/docker.sock").is_listening


def test_daemon_json_file(host):
    config = host.file("/etc/docker/daemon.json")
    assert config.user == "root"
    assert config.mode == 0o644


def test_daemon_json_matches_variables(daemon_json, role_vars):
    assert daemon_json["log-driver"] == role_vars["docker_daemon_log_driver"]
    assert daemon_json["live-restore"] is role_vars["docker_daemon_live_restore"]
    assert daemon_json["registry-mirrors"] == role_vars["docker_daemon_registry_mirrors"]
    assert daemon_json["insecure-registries"] == role_vars["docker_daemon_insecure_registries"]
    assert daemon_json["log-opts"] == {
        "max-size": role_vars["docker_daemon_log_max_size"],
        "max-file": str(role_vars["docker_daemon_log_max_file"]),
    }
    if role_vars["docker_daemon_data_root"]:
        assert daemon_json["data-root"] == role_vars["docker_daemon_data_root"]
    else:
        assert "data-root" not in daemon_json
    for key, value in role_vars["docker_daemon_options"].items():
        assert daemon_json[key] == value


def test_settings_in_effect(engine_info, role_vars):
    """The running engine uses daemon.json (it was restarted after writing it)."""
    assert engine_info["LoggingDriver"] == role_vars["docker_daemon_log_driver"]
    assert engine_info["LiveRestoreEnabled"] is role_vars["docker_daemon_live_restore"]
    expected_root = role_vars["docker_daemon_data_root"] or "/var/lib/docker"
    assert engine_info["DockerRootDir"] == expected_root
    registry = engine_info["RegistryConfig"]
    for entry in role_vars["docker_daemon_insecure_registries"]:
        if "/" in entry:
            assert entry in registry["InsecureRegistryCIDRs"]
        else:
            assert registry["IndexConfigs"][entry]["Secure"] is False
    mirrors = [m.rstrip("/") for m in registry.get("Mirrors") or []]
    assert mirrors == [m.rstrip("/") for m in role_vars["docker_daemon_registry_mirrors"]]


def test_no_nvidia_runtime_without_gpu(host, engine_info):
    assert not host.file("/dev/nvidiactl").exists
    assert "nvidia" not in engine_info["Runtimes"]


def test_runs_image_from_lab_registry(host):
    """The engine pulls from the lab registry (insecure-registries in effect) and runs it."""
    host.run(f"docker image rm {HELLO}")
    result = host.run(f"docker run --rm --pull always {HELLO}")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == HELLO_OUTPUT


def test_registry_mirror_in_effect(host, role_vars):
    """Docker Hub names resolve through the configured mirror, and only through it."""
    host.run("docker image rm parrotpark-hello")
    result = host.run("docker run --rm parrotpark-hello")
    mirrors = [m.rstrip("/") for m in role_vars["docker_daemon_registry_mirrors"]]
    if LAB_MIRROR in mirrors:
        assert result.rc == 0, result.stderr
        assert result.stdout.strip() == HELLO_OUTPUT
    else:
        assert result.rc != 0, "pulled a Docker Hub image without a mirror that holds it"


def test_container_logs_rotated_by_driver(host, role_vars):
    cid = host.check_output(f"docker create {HELLO}")
    try:
        config = json.loads(host.check_output(f"docker inspect --format '{{{{json .HostConfig.LogConfig}}}}' {cid}"))
    finally:
        host.run(f"docker rm {cid}")
    assert config["Type"] == role_vars["docker_daemon_log_driver"]


def test_service_environment(host, role_vars):
    dropin = host.file("/etc/systemd/system/docker.service.d/parrotpark.conf")
    environment = host.check_output("systemctl show docker.service --property Environment --value")
    if not role_vars["docker_service_environment"]:
        assert not dropin.exists
    for name, value in role_vars["docker_service_environment"].items():
        assert f"{name}={value}" in environment.split()


def test_docker_users_in_group(host, role_vars):
    for user in role_vars["docker_users"]:
        assert "docker" in host.user(user).groups


def test_extra_ca_bundle_trusted(host, role_vars):
    installed = host.file("/usr/local/share/ca-certificates/parrotpark-extra-ca.crt")
    if not role_vars["docker_extra_ca_bundle"]:
        assert not installed.exists
        return
    expected = Path(role_vars["docker_extra_ca_bundle"]).read_text().strip()
    assert installed.content_string.strip() == expected
    assert installed.mode == 0o644
    # update-ca-certificates put it into the bundle that the engine (Go) reads.
    assert expected in host.file("/etc/ssl/certs/ca-certificates.crt").content_string


def test_a_configuration_a_cut_run_left_unread_is_applied_by_the_next_run(host):
    """A run cut after writing daemon.json and before its restart handler (the GPU server's up run killed with
    the entrance, then run again) leaves the file up to date and the engine on its old settings: no task changes,
    so no handler runs. The next run sees the file newer than the engine's start and restarts it, once."""
    started = "systemctl show docker.service --property=ActiveEnterTimestampMonotonic --value"
    before = int(host.check_output(started))
    host.run_expect([0], "touch /etc/docker/daemon.json")  # written after the engine's start
    result = converge({})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Restart an engine a cut run left older than its configuration" in result.stdout
    assert recap_changed(result) >= 1
    assert int(host.check_output(started)) > before, "the engine was not restarted"
    assert host.check_output("docker version --format '{{.Server.Version}}'")
