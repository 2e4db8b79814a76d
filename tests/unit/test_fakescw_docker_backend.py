"""The fake Scaleway API's Docker backend (lab/fakescw/docker_backend.py), driven through the real SDK.

A recording fake of the docker command line stands in for the engine: these
tests prove which docker commands the API calls lead to. The real thing (a
systemd container reached over SSH) is checked by hand, see the README.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import scaleway
from scaleway.instance.v1 import VolumeServerTemplate
from scaleway.instance.v1.custom_api import InstanceUtilsV1API
from scaleway.ipam.v1 import IpamV1API
from scaleway_core.api import ScalewayException

from fakescw import FakeScaleway
from fakescw.__main__ import main
from fakescw.docker_backend import DockerBackend, authorized_keys, hostname_of

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.parrotpark.llm.plugins.module_utils import _scaleway as scw  # noqa: E402

ZONE = "fr-par-2"
NETWORK = "lab-net"
PREFIX = "test-srv"
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf0u2b3h8Lq3Yb6b1tXr9aQw0o5b2Qx1q3jv0bKq7Zs root@entrance"
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 ops@laptop"
ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEm0="
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOSTKEYHOSTKEYHOSTKEY host"

CLOUD_INIT = f"""#cloud-config
# keys for root
ssh_authorized_keys:
  - {ED25519}
  - "{RSA}"

  # a comment between items
  - '{ED25519}'
ssh_keys:
  ed25519_public: {HOST_KEY}
users:
  - default
  - name: ops
    ssh_authorized_keys: ["{ECDSA}"]
    shell: /bin/bash
runcmd:
  - [echo, "{HOST_KEY}"]
"""


class FakeDocker:
    """A recording stand-in for the docker command line, with just enough engine state."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.inputs: dict[int, str] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.failures: dict[tuple[str, ...], str] = {}  # argv prefix (after "docker") -> stderr
        self.boot_answer = "running"
        self.next_ip = 2

    # helpers for the tests
    def commands(self, *prefix: str) -> list[list[str]]:
        """The recorded calls (without "docker") that start with ``prefix``."""
        return [call[1:] for call in self.calls if tuple(call[1 : 1 + len(prefix)]) == prefix]

    def add_container(self, name: str, server_id: str, prefix: str = PREFIX, state: str = "exited") -> None:
        labels = {"parrotpark.fakescw.server": server_id, "parrotpark.fakescw.prefix": prefix}
        self.containers[name] = {"state": state, "labels": labels, "ip": "10.0.0.9"}
        self.volumes[f"{name}-docker"] = labels

    @staticmethod
    def _ok(stdout: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 0, stdout, "")

    @staticmethod
    def _error(stderr: str) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 1, "", stderr)

    @staticmethod
    def _labels(args: list[str]) -> dict[str, str]:
        pairs = [args[i + 1] for i, arg in enumerate(args) if arg == "--label"]
        return dict(pair.split("=", 1) for pair in pairs)

    @staticmethod
    def _matches(labels: dict[str, str], args: list[str]) -> bool:
        for condition in (args[i + 1] for i, arg in enumerate(args) if arg == "--filter"):
            name, _equals, value = condition.removeprefix("label=").partition("=")
            if name not in labels or (value and labels[name] != value):
                return False
        return True

    def __call__(self, argv: list[str], *, input: str | None = None, timeout: float = 0) -> Any:  # noqa: PLR0911
        assert argv[0] == "docker" and timeout > 0
        self.calls.append(list(argv))
        if input is not None:
            self.inputs[len(self.calls) - 1] = input
        args = argv[1:]
        for prefix, stderr in self.failures.items():
            if tuple(args[: len(prefix)]) == prefix:
                return self._error(stderr)
        name = args[-1]
        missing = self._error(f"Error response from daemon: No such container: {name}")
        match args[0]:
            case "container":  # inspect
                container = self.containers.get(name)
                if container is None:
                    return missing
                if "{{.State.Status}}" in args:
                    return self._ok(container["state"] + "\n")
                return self._ok(json.dumps({NETWORK: {"IPAddress": container["ip"], "IPPrefixLen": 16}}) + "\n")
            case "volume" if args[1] == "create":
                self.volumes.setdefault(name, self._labels(args))
                return self._ok(name + "\n")
            case "volume" if args[1] == "rm":
                if self.volumes.pop(name, None) is None and "--force" not in args:
                    return self._error(f"Error response from daemon: get {name}: no such volume")
                return self._ok(name + "\n")
            case "volume":  # ls
                lines = [
                    f"{volume}\t{labels.get('parrotpark.fakescw.server', '')}\n"
                    for volume, labels in self.volumes.items()
                    if self._matches(labels, args)
                ]
                return self._ok("".join(lines))
            case "run":
                name = args[args.index("--name") + 1]
                self.containers[name] = {
                    "state": "running",
                    "labels": self._labels(args),
                    "ip": f"10.0.0.{self.next_ip}",
                }
                self.next_ip += 1
                return self._ok("0123abcd\n")
            case "start" | "stop":
                if name not in self.containers:
                    return missing
                self.containers[name]["state"] = "running" if args[0] == "start" else "exited"
                return self._ok(name + "\n")
            case "rm":
                self.containers.pop(name, None)  # rm --force: a missing container is fine
                return self._ok()
            case "exec":
                if "is-system-running" in args:
                    return subprocess.CompletedProcess(
                        [], 0 if self.boot_answer == "running" else 1, self.boot_answer + "\n", ""
                    )
                return self._ok()
            case "ps":
                lines = [
                    f"{n}\t{c['labels'].get('parrotpark.fakescw.server', '')}\t{c['state']}\n"
                    for n, c in self.containers.items()
                    if self._matches(c["labels"], args)
                ]
                return self._ok("".join(lines))
        raise AssertionError(f"unexpected docker command {argv}")


@pytest.fixture
def docker() -> FakeDocker:
    return FakeDocker()


@pytest.fixture
def backend(docker: FakeDocker) -> DockerBackend:
    return DockerBackend(NETWORK, "lab/engine:1", name_prefix=PREFIX, boot_timeout=0.3, runner=docker)


@pytest.fixture
def fake(backend: DockerBackend) -> Iterator[FakeScaleway]:
    with FakeScaleway(secret_key=str(uuid.uuid4()), backend=backend) as fake:
        yield fake


@pytest.fixture
def client(fake: FakeScaleway) -> scaleway.Client:
    return scaleway.Client(**fake.client_kwargs(ZONE))


@pytest.fixture
def api(client: scaleway.Client) -> InstanceUtilsV1API:
    return InstanceUtilsV1API(client)


def gpu_server(api: InstanceUtilsV1API, name: str = "parrotpark-gpu", cloud_init: str | None = CLOUD_INIT) -> Any:
    server = api.create_server(
        commercial_type="L4-1-24G",
        name=name,
        image="ubuntu_noble_gpu_os_13_nvidia",
        volumes={"0": VolumeServerTemplate(volume_type="sbs_volume", size=125 * 1000**3)},
    ).server
    if cloud_init is not None:
        api.set_server_user_data(server_id=server.id, key="cloud-init", content=cloud_init.encode())
    return server


def error_of(exc: pytest.ExceptionInfo[ScalewayException]) -> tuple[int | None, dict[str, Any]]:
    return exc.value.status_code, exc.value.response.json()


# ------------------------------------------------------------------ helpers


def test_authorized_keys_come_from_every_ssh_authorized_keys_list_only() -> None:
    assert authorized_keys(CLOUD_INIT) == [ED25519, RSA, ECDSA]
    assert authorized_keys("#cloud-config\nssh_authorized_keys: [" + ED25519 + ", " + RSA + "]\n") == [ED25519, RSA]
    assert authorized_keys("#cloud-config\nruncmd: [true]\n") == []
    assert authorized_keys("") == []


def test_hostnames_are_valid_labels() -> None:
    assert hostname_of("parrotpark-gpu", "x") == "parrotpark-gpu"
    assert hostname_of("GPU_1 (test).", "x") == "gpu-1-test"
    assert hostname_of("___", "fallback") == "fallback"
    assert len(hostname_of("a" * 100, "x")) == 63


# ------------------------------------------------------------------- hooks


def test_power_on_runs_a_systemd_container_with_the_keys_and_publishes_its_address(fake, client, api, docker):
    server = gpu_server(api)
    network = str(uuid.uuid4())
    nic = api.create_private_nic(server_id=server.id, private_network_id=network).private_nic
    name = f"{PREFIX}-{server.id[:8]}"

    api.server_action(server_id=server.id, action="poweron")

    (volume,) = docker.commands("volume", "create")
    assert volume[-1] == f"{name}-docker"
    (run,) = docker.commands("run")
    assert run[run.index("--name") + 1] == name
    assert run[run.index("--hostname") + 1] == "parrotpark-gpu"
    assert run[run.index("--network") + 1] == NETWORK
    assert run[run.index("--pull") + 1] == "never"
    labels = FakeDocker._labels(run)
    assert labels == {
        "parrotpark.lab": "true",
        "parrotpark.fakescw.server": server.id,
        "parrotpark.fakescw.prefix": PREFIX,
    }
    assert FakeDocker._labels(volume) == labels
    assert f"{name}-docker:/var/lib/docker" in run
    for flag in (
        "SYS_ADMIN",
        "NET_ADMIN",
        "SYS_PTRACE",
        "seccomp=unconfined",
        "apparmor=unconfined",
        "--cgroupns=host",
    ):
        assert flag in run
    assert "/sys/fs/cgroup:/sys/fs/cgroup:rw" in run
    assert run[-2:] == ["lab/engine:1", "/sbin/init"]

    assert docker.commands("exec", name, "systemctl", "is-system-running", "--wait")
    (index,) = [i for i, call in enumerate(docker.calls) if call[1:3] == ["exec", "-i"]]
    assert docker.inputs[index] == f"{ED25519}\n{RSA}\n{ECDSA}\n"
    assert "/root/.ssh/authorized_keys" in docker.calls[index][-1]
    assert "install -d -m 0700 /root/.ssh" in docker.calls[index][-1]
    assert "chmod 0600" in docker.calls[index][-1]
    assert docker.commands("exec", name, "systemctl", "enable", "--now", "ssh.service")

    # The SDK sees the container's address as the NIC's IPAM address and as the public IPv4...
    running = api.get_server(server_id=server.id).server
    assert [ip.address for ip in running.public_ips] == ["10.0.0.2"]
    (ip,) = IpamV1API(client).list_i_ps_all(resource_id=nic.id)
    assert ip.address == "10.0.0.2/16"
    # ... and so do our modules and inventory plugin (private_ip, public_ip).
    settings = scw.resolve_settings(
        {
            "access_key": fake.access_key,
            "secret_key": fake.secret_key,
            "project_id": fake.project_id,
            "organization_id": fake.organization_id,
            "api_url": fake.url,
            "profile": None,
            "config_file": None,
            "api_timeout": 10,
            "api_retries": 0,
        },
        ZONE,
    )
    scw_api = scw.ScalewayClient(settings, timeout=10, retries=0)
    (plain,) = scw.list_servers(scw_api, ZONE, name="parrotpark-gpu")
    summary = scw.summarize_server(plain, scw_api.private_addresses(plain))
    assert (summary["private_ip"], summary["public_ip"]) == ("10.0.0.2", "10.0.0.2")


def test_power_off_stops_and_power_on_restarts_the_same_container(fake, api, docker):
    server = gpu_server(api)
    name = f"{PREFIX}-{server.id[:8]}"
    api.server_action(server_id=server.id, action="poweron")
    api.server_action(server_id=server.id, action="poweroff")
    assert docker.commands("stop") == [["stop", "-t", "10", name]]
    assert docker.containers[name]["state"] == "exited"
    fake.advance(1)
    assert api.get_server(server_id=server.id).server.public_ips == []

    docker.calls.clear()
    api.server_action(server_id=server.id, action="poweron")
    assert docker.commands("start") == [["start", name]]
    assert docker.commands("run") == []
    assert docker.commands("exec", "-i")  # keys written again, as the user data may have changed
    assert docker.containers[name]["state"] == "running"


def test_delete_and_terminate_remove_the_container_and_its_volume(fake, api, docker):
    kept = gpu_server(api, "kept")
    api.server_action(server_id=kept.id, action="poweron")
    deleted = gpu_server(api, "deleted")
    name = f"{PREFIX}-{deleted.id[:8]}"
    api.server_action(server_id=deleted.id, action="poweron")
    api.server_action(server_id=deleted.id, action="poweroff")
    api.delete_server(server_id=deleted.id)
    assert docker.commands("rm") == [["rm", "--force", name]]
    assert docker.commands("volume", "rm") == [["volume", "rm", f"{name}-docker"]]
    assert name not in docker.containers and f"{name}-docker" not in docker.volumes

    never_started = gpu_server(api, "never-started")  # no container: deleting it is fine
    api.delete_server(server_id=never_started.id)

    terminated = gpu_server(api, "terminated")
    name = f"{PREFIX}-{terminated.id[:8]}"
    api.server_action(server_id=terminated.id, action="poweron")
    api.server_action(server_id=terminated.id, action="terminate")
    api.list_servers(zone=ZONE)  # settles the terminate
    assert name not in docker.containers and f"{name}-docker" not in docker.volumes
    assert [c["server_id"] for c in DockerBackend(NETWORK, name_prefix=PREFIX, runner=docker).backing_containers()] == [
        kept.id
    ]


def test_reap_removes_the_containers_and_volumes_of_unknown_servers_only(fake, api, backend, docker):
    known = gpu_server(api)
    api.server_action(server_id=known.id, action="poweron")
    docker.add_container(f"{PREFIX}-deadbeef", "deadbeef-0000-4000-8000-000000000000")
    docker.add_container("other-srv-deadbeef", "deadbeef-0000-4000-8000-000000000000", prefix="other-srv")
    docker.volumes[f"{PREFIX}-cafe0000-docker"] = {
        "parrotpark.fakescw.server": "cafe0000-0000-4000-8000-000000000000",
        "parrotpark.fakescw.prefix": PREFIX,
    }

    removed = backend.reap()

    assert sorted(removed) == [f"{PREFIX}-cafe0000-docker", f"{PREFIX}-deadbeef", f"{PREFIX}-deadbeef-docker"]
    assert sorted(docker.containers) == sorted([f"{PREFIX}-{known.id[:8]}", "other-srv-deadbeef"])
    assert sorted(docker.volumes) == sorted([f"{PREFIX}-{known.id[:8]}-docker", "other-srv-deadbeef-docker"])
    assert [(c["server_id"], c["state"]) for c in backend.backing_containers()] == [(known.id, "running")]
    assert backend.reap() == []


def test_docker_failures_fail_the_request_and_leave_the_server_stopped(fake, api, docker):
    server = gpu_server(api)
    docker.failures[("run",)] = "Unable to find image 'lab/engine:1' locally"
    with pytest.raises(ScalewayException) as exc:
        api.server_action(server_id=server.id, action="poweron")
    status, body = error_of(exc)
    assert (status, body["type"]) == (500, "internal_error")
    assert body["message"] == "docker run failed: Unable to find image 'lab/engine:1' locally"
    assert api.get_server(server_id=server.id).server.state == "stopped"
    name = f"{PREFIX}-{server.id[:8]}"
    assert docker.commands("volume", "rm") == [["volume", "rm", f"{name}-docker"]]  # nothing half-made is left
    assert not docker.volumes

    del docker.failures[("run",)]
    docker.boot_answer = "starting"
    with pytest.raises(ScalewayException) as exc:
        api.server_action(server_id=server.id, action="poweron")
    message = error_of(exc)[1]["message"]
    assert "did not boot within 0.3s" in message and "starting" in message
    assert docker.containers[name]["state"] == "exited"  # stopped again, like the server
    assert api.get_server(server_id=server.id).server.state == "stopped"

    docker.boot_answer = "degraded"  # a failed unit does not make the server unusable
    api.server_action(server_id=server.id, action="poweron")
    assert docker.commands("start")


def test_no_keys_in_the_user_data_writes_no_authorized_keys(fake, api, docker):
    server = gpu_server(api, cloud_init=None)
    api.server_action(server_id=server.id, action="poweron")
    assert docker.commands("exec", "-i") == []
    assert api.get_server(server_id=server.id).server.public_ips[0].address == "10.0.0.2"


def test_cli_needs_a_network_for_the_docker_backend(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--backend", "docker"])
    assert exc.value.code == 2
    assert "--docker-network" in capsys.readouterr().err
