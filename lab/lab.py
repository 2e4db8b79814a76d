"""The lab: the whole system on this machine, without a cloud account.

Usage (normally through scripts/lab.sh, which first sets up the virtualenv,
the container engine and, for ``up``, the lab images and registry)::

    lab.py up                 start the lab's containers and run site.yml against them
    lab.py site [ARGS ...]    run site.yml against the lab again (ARGS go to ansible-playbook)
    lab.py down [--images]    remove every container, volume and network the lab made, and its
                              secrets, but the registry's cache volume (--images: that too, and the
                              lab's image tags)
    lab.py status             what of the lab runs, and its addresses
    lab.py leftovers          what of the lab is left (after down); exit 1 when anything is

What runs, all on the docker network parrotpark-lab (lab/images/images.yml):
  parrotpark-lab-registry   the lab registry (images built by lab/images)
  parrotpark-lab-fakescw    the fake Scaleway API; each server it creates is
                            a systemd container parrotpark-lab-srv-<id>
  parrotpark-lab-entrance   the entrance server (systemd container) with
                            Caddy's HTTPS published on 127.0.0.1
  parrotpark-lab-mongo      (gpu-gateway layout only) LibreChat's external database
  parrotpark-lab-s3         the lab's object storage (Versity S3 Gateway) in place of
                            Scaleway's: the entrance's backups, and LibreChat's files
                            in the gpu-gateway layout, go to its bucket

Environment:
  PARROTPARK_LAB_LAYOUT        default: the gateway on the entrance (inventories/lab), or
                               gpu-gateway: the gateway on the GPU server (inventories/lab-gpu-gateway:
                               LiteLLM and LibreChat on the GPU server, and parrotpark-lab-mongo);
                               seeds, its earlier name, still means gpu-gateway
  PARROTPARK_LAB_HTTPS_PORT    the entrance's HTTPS on 127.0.0.1 (default 8443)
  PARROTPARK_LAB_FAKESCW_PORT  the fake Scaleway API on 127.0.0.1 (default 8383)
  PARROTPARK_LAB_TIMERS        off: the scheduler's timers stay off (read by the inventory)
  PARROTPARK_EXTRA_CA_BUNDLE   the CA bundle the lab's hosts trust (default: this machine's)

The end-to-end tests (tests/lab) and the benchmarks (bench/) take the lab's
names and ports from here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _folder in (HERE, HERE / "images"):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

import factory  # noqa: E402  (lab/images/factory.py: the registry and the network)
from fakescw.docker_backend import SERVER_LABEL, SYSTEMD_FLAGS  # noqa: E402  (the fake's servers)

# --- the lab's names, in one place ------------------------------------------
_REGISTRY = factory.load_manifest()[0]
NETWORK: str = _REGISTRY["network"]
REGISTRY_VOLUME: str = _REGISTRY["volume"]
REGISTRY: str = _REGISTRY["container"]
LAB_LABEL = factory.LABEL  # the lab's containers and network carry LAB_LABEL=true
LAYOUT_LABEL = LAB_LABEL + ".layout"  # the entrance's layout
# Molecule's platforms run lab images, whose LAB_LABEL they inherit; they carry this one too and are not the lab's.
MOLECULE_LABEL = "parrotpark.molecule"

ENTRANCE = "parrotpark-lab-entrance"
ENTRANCE_VOLUME = ENTRANCE + "-docker"
ENTRANCE_IMAGE = "parrotpark/lab-base-trixie:current"
FAKESCW = "parrotpark-lab-fakescw"
FAKESCW_IMAGE = "parrotpark/lab-fakescw:current"
FAKESCW_CONTAINER_PORT = 8383  # the fake's port on the lab network (the inventory's scheduler_scaleway_api_url)
# Seconds a read of the fake may wait: it answers once the backend hook in flight is done (hooks run under its
# lock, lab/fakescw/docker_backend.py), the longest a power on (docker start and boot). Removing a gateway-on-GPU
# server's container and its nested engine's volume took longer than 10 s under CI load.
FAKESCW_READ_TIMEOUT = 240
SERVER_IMAGE = "parrotpark/lab-engine-trixie:current"  # the fake cloud's servers
MONGO = "parrotpark-lab-mongo"
MONGO_VOLUME = MONGO + "-data"
MONGO_IMAGE = "parrotpark/lab-ferretdb:current"
S3 = "parrotpark-lab-s3"
S3_VOLUME = S3 + "-data"
S3_IMAGE = "parrotpark/lab-s3:current"
S3_CONTAINER_PORT = 7070  # on the lab network; the inventory's endpoints name it with the address site.yml gets
S3_TIMEOUT = 30  # seconds until it answers /health

# The layouts and their inventories; the lab's settings (domain, the fake's account) come from the inventory.
# default: the gateway on the entrance (LiteLLM and LibreChat there); gpu-gateway: the gateway on the GPU
# server (LiteLLM and LibreChat there, the entrance in neither group gateway nor chat).
INVENTORIES = {"default": Path("inventories/lab"), "gpu-gateway": Path("inventories/lab-gpu-gateway")}
# Old names of layouts, still accepted in PARROTPARK_LAB_LAYOUT and on a running entrance's layout label.
LAYOUT_ALIASES = {"seeds": "gpu-gateway"}
LAB_VARS_FILE = ROOT / "inventories" / "lab" / "group_vars" / "all" / "main.yml"
_LAB_VARS = yaml.safe_load(LAB_VARS_FILE.read_text())
DOMAIN: str = _LAB_VARS["parrotpark_domain"]
SCW_SECRET_KEY: str = _LAB_VARS["scheduler_scaleway_secret_key"]
SCW_PROJECT_ID: str = _LAB_VARS["scheduler_scaleway_project_id"]
SCW_ORGANIZATION_ID: str = _LAB_VARS["scheduler_scaleway_organization_id"]
# The lab's bucket and its keys: the backup role's settings in the inventory, which LibreChat's reuse.
S3_BUCKET: str = _LAB_VARS["backup_s3_bucket"]
S3_REGION: str = _LAB_VARS["backup_s3_region"]
S3_BACKUP_PREFIX: str = _LAB_VARS["backup_s3_prefix"]  # where the entrance's restic repository is
S3_ACCESS_KEY: str = _LAB_VARS["backup_s3_access_key"]
S3_SECRET_KEY: str = _LAB_VARS["backup_s3_secret_key"]

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
FAKESCW_TIMEOUT = 30  # seconds until the fake answers
BOOT_TIMEOUT = 60  # seconds until systemd in a lab container has booted


class LabError(Exception):
    """An error the user can act on; printed as ``error: ...`` without a traceback."""


def layout_name(name: str) -> str:
    """A layout's current name: an old one (``seeds``) becomes its new one (``gpu-gateway``), others stay."""
    return LAYOUT_ALIASES.get(name, name)


@dataclass(frozen=True)
class LabConfig:
    """What the environment chooses: the layout and the ports published on 127.0.0.1."""

    layout: str = "default"
    https_port: int = 8443
    fakescw_port: int = 8383
    timers: bool = True

    def __post_init__(self) -> None:
        # LabConfig(layout="seeds") is the gpu-gateway layout, as PARROTPARK_LAB_LAYOUT=seeds is.
        object.__setattr__(self, "layout", layout_name(self.layout))

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> LabConfig:
        environ = dict(os.environ if environ is None else environ)
        given = environ.get("PARROTPARK_LAB_LAYOUT") or cls.layout
        layout = layout_name(given)
        if layout not in INVENTORIES:
            choices = [*INVENTORIES, *(f"{old} (the old name of {new})" for old, new in LAYOUT_ALIASES.items())]
            raise LabError(f"PARROTPARK_LAB_LAYOUT must be {', '.join(choices[:-1])} or {choices[-1]} (got '{given}')")
        return cls(
            layout=layout,
            https_port=_port(environ, "PARROTPARK_LAB_HTTPS_PORT", cls.https_port),
            fakescw_port=_port(environ, "PARROTPARK_LAB_FAKESCW_PORT", cls.fakescw_port),
            timers=environ.get("PARROTPARK_LAB_TIMERS", "on") != "off",
        )

    @property
    def inventory(self) -> Path:
        """The layout's inventory, relative to the repository (ROOT / inventory to open it)."""
        return INVENTORIES[self.layout]

    @property
    def secrets(self) -> Path:
        """The secrets the roles generate on the controller (the inventory's parrotpark_secrets_dir)."""
        return ROOT / self.inventory / "secrets"

    @property
    def fake_url(self) -> str:
        return f"http://127.0.0.1:{self.fakescw_port}"


def _port(environ: dict[str, str], name: str, default: int) -> int:
    value = environ.get(name) or str(default)
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise LabError(f"{name} must be a port number, 1 to 65535 (got '{value}')")
    return int(value)


# --- docker ------------------------------------------------------------------
def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI and capture its output; raise LabError on failure when check is set."""
    try:
        proc = subprocess.run(["docker", *args], check=False, text=True, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        if check:
            raise LabError(f"docker {' '.join(args[:3])} … did not finish within {timeout:.0f}s") from exc
        return subprocess.CompletedProcess(["docker", *args], 124, "", f"timed out after {timeout:.0f}s")
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip()[-4000:]
        raise LabError(f"docker {' '.join(args[:3])} … failed (exit {proc.returncode}): {detail}")
    return proc


def container_exists(name: str) -> bool:
    return docker("container", "inspect", name, check=False).returncode == 0


def print_logs(container: str) -> None:
    """The last lines of a container's log, on stderr: what a failed wait shows."""
    logs = docker("logs", "--tail", "30", container, check=False)
    sys.stderr.write(logs.stdout + logs.stderr)


def engine_answers() -> bool:
    return shutil.which("docker") is not None and docker("info", check=False, timeout=20).returncode == 0


def lab_address(container: str) -> str:
    """A lab container's address on the lab network (the "private network"); empty when it has none."""
    fmt = f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}'
    return docker("inspect", "-f", fmt, container).stdout.strip()


# --- the containers ----------------------------------------------------------
def fakescw_argv(config: LabConfig) -> list[str]:
    """``docker run`` of the fake Scaleway API, backed by docker on the lab network, with the lab's account."""
    port = str(FAKESCW_CONTAINER_PORT)
    return [
        "run", "-d", "--name", FAKESCW, "--network", NETWORK, "--label", f"{LAB_LABEL}=true",
        "--restart", "unless-stopped", "-p", f"127.0.0.1:{config.fakescw_port}:{port}",
        "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{HERE}:/opt/lab:ro", "-e", "PYTHONPATH=/opt/lab",
        FAKESCW_IMAGE, "python3", "-m", "fakescw", "--host", "0.0.0.0", "--port", port,
        "--backend", "docker", "--docker-network", NETWORK, "--docker-image", SERVER_IMAGE,
        "--secret-key", SCW_SECRET_KEY, "--project-id", SCW_PROJECT_ID, "--organization-id", SCW_ORGANIZATION_ID,
    ]  # fmt: skip


def mongo_argv() -> list[str]:
    """``docker run`` of the gpu-gateway layout's external MongoDB: FerretDB, the lab's MongoDB stand-in."""
    return [
        "run", "-d", "--name", MONGO, "--network", NETWORK, "--label", f"{LAB_LABEL}=true",
        "--restart", "unless-stopped", "-v", f"{MONGO_VOLUME}:/data", MONGO_IMAGE,
    ]  # fmt: skip


def s3_argv() -> list[str]:
    """``docker run`` of the lab's object storage with its bucket and keys (the keys in the environment, which
    ``docker inspect`` shows: they are the lab's, written in its inventory)."""
    return [
        "run", "-d", "--name", S3, "--network", NETWORK, "--label", f"{LAB_LABEL}=true",
        "--restart", "unless-stopped", "-v", f"{S3_VOLUME}:/data",
        "-e", f"ROOT_ACCESS_KEY_ID={S3_ACCESS_KEY}", "-e", f"ROOT_SECRET_ACCESS_KEY={S3_SECRET_KEY}",
        "-e", f"LAB_S3_BUCKETS={S3_BUCKET}", "-e", f"LAB_S3_REGION={S3_REGION}", S3_IMAGE,
    ]  # fmt: skip


def start_container(
    name: str,
    argv: list[str],
    starting: str,
    *,
    answers: Callable[[], bool] | None = None,
    timeout: float = 0,
    what: str = "",
) -> None:
    """Start a lab container, made with ``docker run`` argv the first time (logged as "starting <starting>"); with
    answers, wait at most timeout seconds until answers() is true, else show its log and fail naming what."""
    if container_exists(name):
        docker("container", "start", name)
    else:
        log(f"starting {starting}")
        docker(*argv)
    deadline = time.monotonic() + timeout
    while answers is not None and not answers():
        if time.monotonic() > deadline:
            print_logs(name)
            raise LabError(f"{what} did not answer within {timeout}s")
        time.sleep(1)


S3_HEALTH = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{S3_CONTAINER_PORT}/health', timeout=3)"


def s3_answers() -> bool:
    return docker("exec", S3, "python3", "-c", S3_HEALTH, check=False, timeout=30).returncode == 0


def start_s3() -> None:
    """The lab's object storage, on the lab network where the entrance and the GPU server reach it by address."""
    start_container(
        S3, s3_argv(), f"the lab's object storage {S3} (bucket {S3_BUCKET})",
        answers=s3_answers, timeout=S3_TIMEOUT, what=f"the lab's object storage {S3}",
    )  # fmt: skip


def entrance_argv(config: LabConfig) -> list[str]:
    """``docker run`` of the entrance: systemd as PID 1 without --privileged (the flags the fake's servers
    run with), a docker engine inside."""
    return [
        "run", "-d", "--name", ENTRANCE, "--hostname", "entrance", "--network", NETWORK,
        "--label", f"{LAB_LABEL}=true", "--label", f"{LAYOUT_LABEL}={config.layout}", "--restart", "unless-stopped",
        *SYSTEMD_FLAGS,
        "-v", f"{ENTRANCE_VOLUME}:/var/lib/docker", "-p", f"127.0.0.1:{config.https_port}:{config.https_port}",
        ENTRANCE_IMAGE,
    ]  # fmt: skip


def fake_answers(config: LabConfig) -> bool:
    try:
        with urllib.request.urlopen(f"{config.fake_url}/_fake/health", timeout=3) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_fakescw(config: LabConfig) -> None:
    start_container(
        FAKESCW, fakescw_argv(config), f"the fake Scaleway API {FAKESCW}",
        answers=lambda: fake_answers(config), timeout=FAKESCW_TIMEOUT, what="the fake Scaleway API",
    )  # fmt: skip


def start_mongo() -> None:
    """The gpu-gateway layout's external MongoDB, on the lab network where the GPU server reaches it by address."""
    start_container(MONGO, mongo_argv(), f"LibreChat's external database {MONGO} (FerretDB)")


def wait_systemd(container: str, seconds: float = BOOT_TIMEOUT) -> None:
    """Wait (a bounded minute) until systemd in the container has booted; show its log when it has not."""
    state, deadline = "", time.monotonic() + seconds
    while time.monotonic() < deadline:
        # --wait returns when the boot is over; the timeout only guards against a hung exec.
        state = docker("exec", container, "systemctl", "is-system-running", "--wait", check=False, timeout=300)
        state = state.stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    print_logs(container)
    raise LabError(f"{container} did not boot within {seconds:.0f}s (systemd says '{state or 'nothing'}')")


def start_entrance(config: LabConfig) -> None:
    if container_exists(ENTRANCE):
        running = docker("inspect", "-f", f'{{{{index .Config.Labels "{LAYOUT_LABEL}"}}}}', ENTRANCE).stdout.strip()
        running = layout_name(running or "default")  # an entrance started before the rename says seeds
        if running != config.layout:
            raise LabError(f"the lab runs the {running} layout, not {config.layout}: remove it first (make lab-down)")
        # The port is the stack's parrotpark_https_port, the same inside: an entrance started with another one
        # (or by a lab that published the inside's 443) would send every login to a port Caddy is not on.
        wanted = f"{config.https_port}/tcp -> 127.0.0.1:{config.https_port}"
        published = [line.strip() for line in docker("port", ENTRANCE).stdout.splitlines() if line.strip()]
        if wanted not in published:
            raise LabError(
                f"the entrance publishes {', '.join(published) or 'nothing'}, not {wanted} (PARROTPARK_LAB_HTTPS_PORT):"
                " remove it first (make lab-down)"
            )
        docker("container", "start", ENTRANCE)
    else:
        log(f"starting the entrance container {ENTRANCE} ({config.layout} layout)")
        docker(*entrance_argv(config))
    wait_systemd(ENTRANCE)
    # The lab images have no apt lists; a real server does.
    docker("exec", ENTRANCE, "sh", "-c", "ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q")


# --- site.yml ----------------------------------------------------------------
def site_environ(config: LabConfig, environ: dict[str, str] | None = None) -> dict[str, str]:
    """ansible-playbook's environment: the layout's settings that come from outside the inventory."""
    env = dict(os.environ if environ is None else environ)
    # The entrance's HTTPS port is the stack's (parrotpark_https_port in the inventory): the public URLs carry it.
    env["PARROTPARK_LAB_HTTPS_PORT"] = str(config.https_port)
    # The lab's hosts trust what this machine trusts (a TLS-inspecting proxy's CA included), as the images do.
    if not env.get("PARROTPARK_EXTRA_CA_BUNDLE") and HOST_CA_BUNDLE.is_file() and HOST_CA_BUNDLE.stat().st_size:
        env["PARROTPARK_EXTRA_CA_BUNDLE"] = str(HOST_CA_BUNDLE)
    needed = {"PARROTPARK_LAB_S3_ADDRESS": S3}
    if config.layout == "gpu-gateway":
        needed["PARROTPARK_LAB_MONGO_ADDRESS"] = MONGO
    for variable, container in needed.items():
        if not container_exists(container):
            raise LabError(f"{container} is not running (scripts/lab.sh up starts it)")
        address = lab_address(container)
        if not address:
            raise LabError(f"{container} has no address on {NETWORK}")
        env[variable] = address
    return env


def site(config: LabConfig, args: list[str] | tuple[str, ...] = ()) -> int:
    """Run site.yml against the layout's inventory (its output goes to ours); return ansible-playbook's status."""
    env = site_environ(config)
    log(f"running site.yml against {config.inventory}")
    venv_playbook = Path(sys.executable).parent / "ansible-playbook"
    playbook = str(venv_playbook) if venv_playbook.exists() else "ansible-playbook"
    argv = [playbook, "-i", str(config.inventory), "site.yml", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode


def summary(config: LabConfig, password: str) -> str:
    """What ``up`` prints at the end: where the lab answers."""
    port, domain = config.https_port, DOMAIN
    where = "the GPU server" if config.layout == "gpu-gateway" else "the entrance"
    again = f"PARROTPARK_LAB_LAYOUT={config.layout} " if config.layout != "default" else ""
    return f"""
The lab is up. Its sites answer on 127.0.0.1:{port} with certificates
from Caddy's internal CA; send them the names below, for example:
  curl -k --resolve api.{domain}:{port}:127.0.0.1 https://api.{domain}:{port}/health/liveliness

  chat (LibreChat):   https://chat.{domain}:{port}
  API (LiteLLM):      https://api.{domain}:{port}/v1   key: {config.inventory}/secrets/litellm-master-key
  login (Keycloak):   https://auth.{domain}:{port}     user: lab   password: {password}
  fake Scaleway API:  {config.fake_url}/_fake/state

Layout: {config.layout} (LiteLLM and LibreChat on {where}).
The GPU server follows the schedule (scheduler_* in inventories/lab). By hand:
  docker exec {ENTRANCE} parrotpark-gpu up --force
  docker exec {ENTRANCE} parrotpark-gpu down
Run site.yml again: {again}scripts/lab.sh site     Remove the lab: make lab-down
"""


def up(config: LabConfig) -> None:
    """Start the lab's containers and run site.yml; the images and the registry must exist (factory.py ensure)."""
    start_fakescw(config)
    start_s3()
    if config.layout == "gpu-gateway":
        start_mongo()
    start_entrance(config)
    status = site(config)
    if status != 0:
        raise LabError(f"site.yml failed against {config.inventory} (ansible-playbook exit {status})")
    password = (config.secrets / "lab-user-password").read_text().strip()
    print(summary(config, password), flush=True)


def down(images: bool = False, keep_registry: bool = False) -> None:
    """Remove every container, volume and network of the lab, and its secrets; the registry's cache unless images.

    keep_registry keeps the lab registry and its network, which other users of the lab images (the molecule
    scenarios of a test run) may be using at the same time; a test run removes them once at its end.
    """
    if images and keep_registry:
        raise LabError("down: --images removes the registry's images; it cannot go with --keep-registry")
    if not engine_answers():
        raise LabError("no container engine answers; nothing to remove")
    for server in docker("ps", "-aq", "--filter", f"label={SERVER_LABEL}").stdout.split():
        name = docker("inspect", "-f", "{{.Name}}", server, check=False).stdout.strip().lstrip("/")
        docker("container", "rm", "-f", server, check=False)
        if name:
            docker("volume", "rm", f"{name}-docker", check=False)
    docker("container", "rm", "-f", ENTRANCE, FAKESCW, MONGO, S3, check=False)
    docker("volume", "rm", ENTRANCE_VOLUME, MONGO_VOLUME, S3_VOLUME, check=False)
    if not keep_registry:
        try:
            factory.Factory().clean(images=images)
        except factory.FactoryError as exc:
            raise LabError(f"lab image factory: {exc}") from exc
    for inventory in INVENTORIES.values():
        shutil.rmtree(ROOT / inventory / "secrets", ignore_errors=True)
    if keep_registry:
        log(
            f"removed the lab's containers, volumes and secrets; kept the registry {REGISTRY} and the network {NETWORK}"
        )
    else:
        log("removed the lab's containers, volumes, network and secrets")


# --- what is there -----------------------------------------------------------
def parse_leftovers(
    containers: str, servers: str, volumes: str, networks: str, except_registry: bool = False
) -> list[str]:
    """What of the lab is left, from the listings ``leftovers`` takes; the registry's cache volume does not count,
    nor, with except_registry, the registry and its network (what ``down --keep-registry`` keeps)."""
    kept = {("volume", REGISTRY_VOLUME)}
    if except_registry:
        kept |= {("container", REGISTRY), ("network", NETWORK)}
    left: list[str] = []
    for kind, listing in (
        ("container", containers),
        ("container", servers),
        ("volume", volumes),
        ("network", networks),
    ):
        for name in listing.split():
            entry = f"{kind} {name}"
            if entry not in left and (kind, name) not in kept:
                left.append(entry)
    return left


def leftovers(except_registry: bool = False) -> list[str]:
    """What of the lab is left: its containers, the fake's servers, its volumes and networks (``down`` leaves none;
    ``down --keep-registry`` leaves the registry and its network, not counted with except_registry)."""

    def names(*args: str) -> str:
        return docker(*args).stdout

    labelled = names(
        "ps",
        "-a",
        "--format",
        f'{{{{.Names}}}} {{{{.Label "{MOLECULE_LABEL}"}}}}',
        "--filter",
        f"label={LAB_LABEL}=true",
    )
    return parse_leftovers(
        "\n".join(line.split()[0] for line in labelled.splitlines() if line.split()[1:] != ["true"]),
        names("ps", "-a", "--format", "{{.Names}}", "--filter", f"label={SERVER_LABEL}"),
        names("volume", "ls", "--format", "{{.Name}}", "--filter", f"name={NETWORK}"),
        names("network", "ls", "--format", "{{.Name}}", "--filter", f"name={NETWORK}"),
        except_registry,
    )


def status(config: LabConfig) -> bool:
    """Print the lab's containers and, when the entrance runs, where the lab answers; True when it runs."""
    fmt = f'{{{{.Names}}}}\t{{{{.State}}}}\t{{{{.Label "{LAYOUT_LABEL}"}}}}'
    rows = [
        line.split("\t")
        for line in docker("ps", "-a", "--format", fmt, "--filter", f"label={LAB_LABEL}=true").stdout.splitlines()
    ]
    if not rows:
        print("the lab is not up (scripts/lab.sh up starts it)")
        return False
    for name, state, layout in sorted(rows):
        print(f"{name:<36} {state}{f'  ({layout_name(layout)} layout)' if layout else ''}")
    entrance = {name: (state, layout_name(layout or "default")) for name, state, layout in rows}.get(ENTRANCE)
    if entrance is None or entrance[0] != "running":
        print(f"{ENTRANCE} is not running")
        return False
    if entrance[1] != config.layout:
        print(f"(the lab runs the {entrance[1]} layout; PARROTPARK_LAB_LAYOUT says {config.layout})")
        config = LabConfig(entrance[1], config.https_port, config.fakescw_port, config.timers)
    if fake_answers(config):
        with urllib.request.urlopen(f"{config.fake_url}/_fake/state", timeout=FAKESCW_READ_TIMEOUT) as answer:
            servers = json.loads(answer.read())["servers"]
        print(f"fake cloud: {len(servers)} server(s)", *(f"{s['name']} ({s['state']})" for s in servers))
    password = config.secrets / "lab-user-password"
    if password.is_file():
        print(summary(config, password.read_text().strip()))
    return True


def report_leftovers(except_registry: bool = False) -> bool:
    """Print what of the lab is left; True when nothing is."""
    left = leftovers(except_registry)
    if left:
        print("make lab-down left these behind:", *left, sep="\n")
    elif except_registry:
        print("nothing of the lab is left but its registry, network, registry cache and images")
    else:
        print("nothing of the lab is left but its registry cache and images")
    return not left


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the lab and run site.yml (images and registry first: scripts/lab.sh up)")
    sub.add_parser("site", help="run site.yml against the lab again; the arguments that follow go to ansible-playbook")
    down_parser = sub.add_parser("down", help="remove the lab's containers, volumes, network and secrets")
    down_parser.add_argument("--images", action="store_true", help="and the registry's cache volume and the images")
    down_parser.add_argument(
        "--keep-registry",
        action="store_true",
        help="keep the lab registry and its network (the test runner, while molecule scenarios use them)",
    )
    sub.add_parser("status", help="what of the lab runs")
    leftovers_parser = sub.add_parser("leftovers", help="what of the lab is left; exit 1 when anything is")
    leftovers_parser.add_argument(
        "--except-registry",
        action="store_true",
        help="do not count the registry and its network (down --keep-registry)",
    )
    # site passes everything after it to ansible-playbook, options included.
    args = parser.parse_args(argv[:1] if argv[:1] == ["site"] else argv)
    try:
        if args.command == "down":
            down(images=args.images, keep_registry=args.keep_registry)
        elif args.command == "leftovers":
            return 0 if report_leftovers(args.except_registry) else 1
        elif args.command == "site":
            return site(LabConfig.from_environ(), argv[1:])
        elif args.command == "status":
            return 0 if status(LabConfig.from_environ()) else 1
        else:
            up(LabConfig.from_environ())
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
