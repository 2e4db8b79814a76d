"""A fakescw backend that backs every fake server with a real systemd container.

The lab's "GPU server": when the fake API powers a server on, :class:`DockerBackend`
starts (or first creates) a container with systemd as PID 1 on a Docker network,
installs the SSH keys of the server's cloud-init user data in root's
``authorized_keys`` as cloud-init would, and publishes the container's address
as the server's private (and public) IPv4, so Ansible reaches the "server" at
the address our inventory plugin reads. Power off stops the container (it keeps
its file system and its Docker volume, like a stopped server keeps its disk);
deleting the server removes both.

It drives the ``docker`` command line (no Docker SDK: fakescw is stdlib only),
with a bounded timeout on every command. Every command goes through
``runner(argv, input=..., timeout=...)``, which unit tests replace.

See README.md, section "Docker backend".
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .backend import Backend, Published
from .errors import ApiError

log = logging.getLogger("fakescw.docker")

# runner(argv, input=<text for stdin or None>, timeout=<seconds>) -> CompletedProcess (text mode)
Runner = Callable[..., "subprocess.CompletedProcess[str]"]

LAB_LABEL = "parrotpark.lab"
SERVER_LABEL = "parrotpark.fakescw.server"
# Which backend (name prefix) owns a container or volume: reap() only touches its own,
# so two fakes with different prefixes can share one engine.
PREFIX_LABEL = "parrotpark.fakescw.prefix"

DEFAULT_IMAGE = "parrotpark/lab-engine-trixie:current"
DEFAULT_NAME_PREFIX = "parrotpark-lab-srv"

# What a container with systemd as PID 1 needs here (see /work/shared/ENVIRONMENT.md:
# no --privileged on these machines); seccomp=unconfined also lets Docker run inside.
SYSTEMD_FLAGS = (
    "--cap-add", "SYS_ADMIN",
    "--cap-add", "NET_ADMIN",
    "--cap-add", "SYS_PTRACE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/tmp",
)  # fmt: skip

COMMAND_TIMEOUT = 60.0  # any single docker command but the ones below
STOP_GRACE = 10  # seconds `docker stop` gives systemd before it kills the container
RUN_TIMEOUT = 120.0  # `docker run` / `docker start`

# An OpenSSH public key: type, base64 blob, optional comment (up to the end of the
# line, a quote, a comma or a closing bracket, so YAML flow lists and quotes work).
_KEY_TYPES = (
    r"ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com"
)
PUBLIC_KEY = re.compile(rf"(?<![\w@.-])(?:{_KEY_TYPES})[ \t]+[A-Za-z0-9+/]+={{0,3}}(?:[ \t]+[^\s\"',\]][^\n\"',\]]*)?")
_AUTHORIZED_KEYS_KEY = re.compile(r"^(?P<lead>[ \t]*(?:-[ \t]+)?)ssh_authorized_keys[ \t]*:(?P<rest>.*)$")


def authorized_keys(cloud_init: str) -> list[str]:
    """The public keys listed under every ``ssh_authorized_keys`` of a cloud-init document.

    Not a YAML parser: a line scan finds each ``ssh_authorized_keys:`` (top level,
    or of an entry of ``users``) and takes the rest of that line (a flow list
    ``[...]`` or a single key) and the lines after it that are indented deeper,
    or are ``- `` items at its own indentation; a regular expression then picks
    every OpenSSH public key (``ssh-ed25519``, ``ssh-rsa``, ``ecdsa-sha2-*``,
    ``sk-*``, with its comment) out of that text. Keys elsewhere in the document
    (e.g. host keys under ``ssh_keys``) are ignored. Duplicates are dropped, the
    order is kept.
    """
    lines = cloud_init.splitlines()
    found: list[str] = []
    index = 0
    while index < len(lines):
        match = _AUTHORIZED_KEYS_KEY.match(lines[index])
        index += 1
        if match is None:
            continue
        indent = len(match["lead"])  # the column of the key (after a list item's "- ")
        scope = [match["rest"]]
        while index < len(lines):
            line = lines[index]
            stripped = line.strip()
            depth = len(line) - len(line.lstrip())
            if stripped and not stripped.startswith("#"):
                if depth < indent or (depth == indent and not stripped.startswith("- ")):
                    break
            scope.append(line)
            index += 1
        for match_text in PUBLIC_KEY.findall("\n".join(scope)):
            key = match_text.strip()
            if key not in found:
                found.append(key)
    return found


def hostname_of(name: str, fallback: str) -> str:
    """A valid host name (RFC 1123 label, 63 characters at most) made from a server name."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or fallback


def run_docker(
    argv: list[str], *, input: str | None = None, timeout: float = COMMAND_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """The default runner: run a command, capture its output as text, never wait longer than ``timeout``."""
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)


class DockerBackend(Backend):
    """Back every fake server with a systemd container on a Docker network.

    - ``network``: the Docker network of the containers (by name); the container's
      address on it is published as the server's address.
    - ``image``: the image of every server container (the server's Scaleway image
      label is ignored). It must exist on the engine (``--pull never``: nothing can be
      pulled here). It needs systemd as ``/sbin/init`` and ``sshd`` (``ssh.service``);
      the default, the lab's engine-trixie, also ships Docker, like Scaleway's GPU OS.
    - ``name_prefix``: containers are named ``<prefix>-<first 8 characters of the server id>``,
      their Docker volume (mounted at ``/var/lib/docker``) ``<container>-docker``.
    - ``docker``: the Docker command line program.
    - ``boot_timeout``: seconds a power on waits for systemd to finish booting.
    - ``labels``: extra labels for the containers and volumes.
    - ``runner``: ``runner(argv, input=None, timeout=...)`` returning a
      ``subprocess.CompletedProcess`` in text mode (default: :func:`run_docker`).

    Hooks run under the fake's lock: a power on answers once the container has
    booted and its SSH keys are in place (a few seconds), and other API requests
    wait meanwhile. Any docker failure becomes a 500 ``internal_error`` naming it.
    """

    def __init__(
        self,
        network: str,
        image: str = DEFAULT_IMAGE,
        *,
        name_prefix: str = DEFAULT_NAME_PREFIX,
        docker: str = "docker",
        boot_timeout: float = 60.0,
        labels: Mapping[str, str] | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.network = network
        self.image = image
        self.name_prefix = name_prefix
        self.docker = docker
        self.boot_timeout = float(boot_timeout)
        self.labels = dict(labels or {})
        self.runner: Runner = runner or run_docker

    # ------------------------------------------------------------------ names

    def container_name(self, server_id: str) -> str:
        return f"{self.name_prefix}-{server_id[:8]}"

    def volume_name(self, server_id: str) -> str:
        return f"{self.container_name(server_id)}-docker"

    def _labels(self, server_id: str) -> list[str]:
        labels = {**self.labels, LAB_LABEL: "true", SERVER_LABEL: server_id, PREFIX_LABEL: self.name_prefix}
        return [arg for name, value in labels.items() for arg in ("--label", f"{name}={value}")]

    # ----------------------------------------------------------------- docker

    def _docker(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker <args>``; with ``check``, a failure (or timeout) is an ApiError naming it."""
        argv = [self.docker, *args]
        words = []  # the command's name ("run", "volume create"...) for messages
        for arg in args:
            if arg.startswith("-") or len(words) == 2:
                break
            words.append(arg)
        what = " ".join(words)
        try:
            result = self.runner(argv, input=input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ApiError(500, "internal_error", f"docker {what} did not finish within {timeout:g}s") from exc
        except OSError as exc:
            raise ApiError(500, "internal_error", f"cannot run {self.docker}: {exc}") from exc
        if check and result.returncode != 0:
            raise ApiError(500, "internal_error", f"docker {what} failed: {self._message(result)}")
        return result

    @staticmethod
    def _message(result: subprocess.CompletedProcess[str]) -> str:
        """docker's error output on one line, without its "Run 'docker ... --help'" hint."""
        lines = (result.stderr or result.stdout or "").splitlines()
        kept = [line.strip() for line in lines if line.strip() and not line.startswith("Run 'docker")]
        return " ".join(kept) or f"exit status {result.returncode}"

    @staticmethod
    def _missing(result: subprocess.CompletedProcess[str]) -> bool:
        return result.returncode != 0 and "no such" in (result.stderr or "").lower()

    def _state(self, name: str) -> str | None:
        """The container's state (``running``, ``exited``, ``created``...), None if it does not exist."""
        result = self._docker("container", "inspect", "--format", "{{.State.Status}}", name, check=False)
        if self._missing(result):
            return None
        if result.returncode != 0:
            raise ApiError(500, "internal_error", f"docker container inspect failed: {self._message(result)}")
        return result.stdout.strip()

    # ------------------------------------------------------------------ hooks

    def server_power_on(self, server: dict[str, Any]) -> Published | None:
        server_id = server["id"]
        name = self.container_name(server_id)
        state = self._state(name)
        if state is None:
            self._create(server, name)
        elif state != "running":
            self._docker("start", name, timeout=RUN_TIMEOUT)
        started = time.monotonic()
        try:
            self._wait_for_boot(name)
            self._install_keys(server_id, name)
            self._docker("exec", name, "systemctl", "enable", "--now", "ssh.service")
            address = self._address(name)
        except ApiError:
            # The server stays stopped in the fake: so should its container.
            self._docker("stop", "-t", str(STOP_GRACE), name, timeout=STOP_GRACE + 30, check=False)
            raise
        log.info("server %s: container %s up at %s in %.1fs", server_id, name, address, time.monotonic() - started)
        bare = address.split("/", 1)[0]
        return {"private_ipv4": address, "public_ipv4": bare}

    def server_power_off(self, server: dict[str, Any]) -> None:
        name = self.container_name(server["id"])
        result = self._docker("stop", "-t", str(STOP_GRACE), name, timeout=STOP_GRACE + 30, check=False)
        if result.returncode != 0 and not self._missing(result):
            raise ApiError(500, "internal_error", f"docker stop failed: {self._message(result)}")

    def server_deleted(self, server: dict[str, Any]) -> None:
        # Under the fake's lock like every hook: other requests wait for it (the
        # lab's tests allow for that, see FAKESCW_READ_TIMEOUT in lab/lab.py).
        started = time.monotonic()
        self._remove(server["id"])
        log.info("server %s: container and volume removed in %.1fs", server["id"], time.monotonic() - started)

    # ---------------------------------------------------------------- helpers

    def _create(self, server: dict[str, Any], name: str) -> None:
        server_id = server["id"]
        volume = self.volume_name(server_id)
        labels = self._labels(server_id)
        self._docker("volume", "create", *labels, volume)
        try:
            self._run(server, name, volume, labels)
        except ApiError:
            self._remove(server_id, check=False)  # no half-made container for the next power on to start
            raise

    def _run(self, server: dict[str, Any], name: str, volume: str, labels: list[str]) -> None:
        self._docker(
            "run",
            "--detach",
            "--pull", "never",
            "--name", name,
            "--hostname", hostname_of(server.get("hostname") or server["name"], name),
            "--network", self.network,
            *labels,
            *SYSTEMD_FLAGS,
            "-v", f"{volume}:/var/lib/docker",
            self.image,
            "/sbin/init",
            timeout=RUN_TIMEOUT,
        )  # fmt: skip

    def _wait_for_boot(self, name: str) -> None:
        """Wait (``boot_timeout``) for ``systemctl is-system-running --wait``: running or degraded."""
        deadline = time.monotonic() + self.boot_timeout
        said = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                result = self.runner(
                    [self.docker, "exec", name, "systemctl", "is-system-running", "--wait"],
                    input=None,
                    timeout=max(left, 1.0),
                )
            except subprocess.TimeoutExpired:
                said = "still starting"
                break
            said = (result.stdout or "").strip() or (result.stderr or "").strip()
            if said in ("running", "degraded"):
                if said == "degraded":
                    log.warning("container %s booted degraded (some unit failed)", name)
                return
            time.sleep(0.5)  # systemd not answering yet (no bus), or the container is not up
        raise ApiError(
            500,
            "internal_error",
            f"container {name} did not boot within {self.boot_timeout:g}s (systemctl is-system-running: {said})",
        )

    def _install_keys(self, server_id: str, name: str) -> None:
        """Put the keys of the ``cloud-init`` user data in /root/.ssh/authorized_keys (0700/0600)."""
        assert self.fake is not None, "DockerBackend used before FakeScaleway bound it"
        raw = self.fake.user_data(server_id).get("cloud-init", b"")
        keys = authorized_keys(raw.decode("utf-8", errors="replace"))
        if not keys:
            log.warning("server %s: no ssh_authorized_keys in its cloud-init user data", server_id)
            return
        script = (
            "set -e; umask 077; install -d -m 0700 /root/.ssh; "
            "cat > /root/.ssh/authorized_keys; chmod 0600 /root/.ssh/authorized_keys"
        )
        self._docker("exec", "-i", name, "sh", "-c", script, input="\n".join(keys) + "\n")

    def _address(self, name: str) -> str:
        """``a.b.c.d/len``: the container's IPv4 on ``network``."""
        result = self._docker("container", "inspect", "--format", "{{json .NetworkSettings.Networks}}", name)
        networks = json.loads(result.stdout or "{}") or {}
        endpoint = networks.get(self.network) or {}
        address, length = endpoint.get("IPAddress"), endpoint.get("IPPrefixLen")
        if not address:
            raise ApiError(500, "internal_error", f"container {name} has no IPv4 address on network {self.network}")
        return f"{address}/{length}" if length else address

    def _remove(self, server_id: str, *, check: bool = True) -> None:
        """Remove a server's container and its volume; either may be missing (``check=False``: best effort)."""
        container = self._docker("rm", "--force", self.container_name(server_id), timeout=STOP_GRACE + 30, check=False)
        if check and container.returncode != 0 and not self._missing(container):
            raise ApiError(500, "internal_error", f"docker rm failed: {self._message(container)}")
        volume = self._docker("volume", "rm", self.volume_name(server_id), check=False)
        if check and volume.returncode != 0 and not self._missing(volume):
            raise ApiError(500, "internal_error", f"docker volume rm failed: {self._message(volume)}")

    # ---------------------------------------------------------------- control

    def _listed(self, *command: str) -> list[tuple[str, ...]]:
        result = self._docker(
            *command, "--filter", f"label={SERVER_LABEL}", "--filter", f"label={PREFIX_LABEL}={self.name_prefix}"
        )
        return [tuple(line.split("\t")) for line in result.stdout.splitlines() if line.strip()]

    def backing_containers(self) -> list[dict[str, str]]:
        """This backend's containers (also those of servers the fake forgot): name, server_id, state."""
        rows = self._listed(
            "ps", "--all", "--format", f'{{{{.Names}}}}\t{{{{.Label "{SERVER_LABEL}"}}}}\t{{{{.State}}}}'
        )
        return [{"name": row[0], "server_id": row[1], "state": row[2]} for row in rows if len(row) == 3]

    def reap(self, keep: Iterable[str] | None = None) -> list[str]:
        """Remove this backend's containers and volumes of servers the fake does not know.

        ``keep``: server ids to keep (default: the servers in the fake's state).
        The fake's state lives in memory, so a restarted fake calls this first
        (``python -m fakescw --backend docker`` does) to leave no orphans. Returns
        the names of the removed containers and volumes.
        """
        if keep is None:
            assert self.fake is not None, "DockerBackend.reap() needs a bound fake or keep="
            with self.fake.store.lock:
                keep = set(self.fake.store.servers)
        known = set(keep)
        removed: list[str] = []
        for container in self.backing_containers():
            if container["server_id"] not in known:
                self._docker("rm", "--force", container["name"], timeout=STOP_GRACE + 30)
                removed.append(container["name"])
        volume_format = f'{{{{.Name}}}}\t{{{{.Label "{SERVER_LABEL}"}}}}'
        for row in self._listed("volume", "ls", "--format", volume_format):
            if len(row) == 2 and row[1] not in known:
                self._docker("volume", "rm", "--force", row[0])
                removed.append(row[0])
        if removed:
            log.info("reaped %d orphan container(s)/volume(s): %s", len(removed), ", ".join(removed))
        return removed
