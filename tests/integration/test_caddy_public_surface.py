"""The public surface of the caddy role's auth and api sites, without a lab.

The role's own template renders the Caddyfile (``ansible.builtin.template``
with the role's defaults and vars, as ``configure.yml`` does), then a real
Caddy runs it in a throw-away container, its upstreams replaced by listeners
of the same Caddy that answer ``upstream <site> saw <path>``: every probe
tells whether the request reached the upstream or was refused by Caddy
(404 "Not found"). The live part needs a Docker engine and a Caddy image
(the lab's ``parrotpark/lab-caddy:current``, or the role's pinned image if
it is present); without them it is skipped, and the rendered text is still
checked.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from ansible_run import BIN, ROOT, ansible_env

DOMAIN = "surface.example.test"
ROLE = ROOT / "roles" / "caddy"
UPSTREAMS = {"chat": 9101, "api": 9102, "auth": 9103}
CADDY_IMAGES = ["parrotpark/lab-caddy:current", "caddy:2.11.4"]

# What everyone reaches with the defaults (the same lists as docs/security.md and tests/lab/test_public_surface.py).
API_PUBLIC = ["/v1/models", "/v1/chat/completions", "/v1/embeddings", "/health/liveliness", "/health/liveness"]
AUTH_PUBLIC = [
    "/realms/parrotpark/.well-known/openid-configuration",
    "/realms/parrotpark/protocol/openid-connect/token",
    "/realms/parrotpark/protocol/openid-connect/auth",
    "/realms/parrotpark/account",
    "/resources/abc12/login/keycloak.v2/css/styles.css",
    "/realms/parrotpark/protocol/openid-connect/auth?client_id=librechat&redirect_uri=https%3A%2F%2Fchat.x%2F..%2F",
    "/.well-known/oauth-authorization-server/realms/parrotpark",
    "/robots.txt",
]
API_REFUSED = [
    "/",
    "/ui/",
    "/ui/login",
    "/sso/key/generate",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/routes",
    "/metrics",
    "/metrics/",
    "/key/generate",
    "/key/list",
    "/user/new",
    "/model/new",
    "/model/info",
    "/health",
    "/health/readiness",
    "/chat/completions",
    "/v1",
    "/V1/../ui/",
    "/v1/../ui/",
    "/v1/%2e%2e/ui/",
    "//ui/",
    "/v1/..;/ui/",
    "/v1/models/..%2f..%2fui/",
]
AUTH_REFUSED = [
    "/",
    "/admin",
    "/admin/",
    "/admin/master/console/",
    "/admin/realms/parrotpark/users",
    "/realms/master",
    "/realms/master/protocol/openid-connect/token",
    "/realms/master/.well-known/openid-configuration",
    "/realms/MASTER/protocol/openid-connect/token",
    "/realms/parrotpark/../master/protocol/openid-connect/token",
    "/realms/%6Daster/protocol/openid-connect/token",
    "//realms/master/protocol/openid-connect/token",
    "/realms/parrotpark/../../admin/",
    "/realms/parrotpark/..;/master/protocol/openid-connect/token",
    "/realms/parrotpark/%2e%2e;/master/protocol/openid-connect/token",
    "/realms/parrotpark;/../master/account",
    "/metrics",
    "/health",
    "/health/ready",
    "/js/keycloak.js",
]


def render(tmp_path: Path, variables: dict[str, Any]) -> str:
    """The Caddyfile the role writes for these variables."""
    playbook = tmp_path / "render.yml"
    out = tmp_path / "Caddyfile"
    playbook.write_text(
        "- name: Render the Caddyfile\n"
        "  hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        f"  vars_files: [{ROLE / 'defaults' / 'main.yml'}, {ROLE / 'vars' / 'main.yml'}]\n"
        "  tasks:\n"
        "    - name: Render\n"
        "      ansible.builtin.template:\n"
        f"        src: {ROLE / 'templates' / 'Caddyfile.j2'}\n"
        f"        dest: {out}\n"
        "        mode: '0644'\n"
    )
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"caddy_domain": DOMAIN, **variables}))
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), str(playbook), "-e", f"@{extra}"],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out.read_text()


def site_block(caddyfile: str, host: str) -> str:
    start = caddyfile.index(f"\n{host} {{\n")
    return caddyfile[start : caddyfile.index("\n}\n", start)]


# --- the rendered text ----------------------------------------------------


def test_defaults_render_the_allowlists(tmp_path):
    caddyfile = render(tmp_path, {})
    api = site_block(caddyfile, f"api.{DOMAIN}")
    assert "not path /v1/* /health/liveliness /health/liveness\n" in api, api
    assert 'respond @api_refused "Not found" 404' in api
    assert "remote_ip" not in api
    auth = site_block(caddyfile, f"auth.{DOMAIN}")
    assert "not path /realms/* /resources/* /.well-known/* /robots.txt\n" in auth, auth
    assert "path /realms/master /realms/master/*\n" in auth, auth
    assert 'respond @auth_master "Not found" 404' in auth
    assert "remote_ip" not in auth
    # LibreChat needs its whole path space: the chat site is not filtered.
    chat = site_block(caddyfile, f"chat.{DOMAIN}")
    assert "respond" not in chat and "not path" not in chat, chat


def test_admin_networks_render_remote_ip(tmp_path):
    caddyfile = render(
        tmp_path, {"caddy_auth_admin_networks": ["192.0.2.0/24"], "caddy_api_admin_networks": ["198.51.100.7"]}
    )
    auth = site_block(caddyfile, f"auth.{DOMAIN}")
    assert auth.count("not remote_ip 192.0.2.0/24\n") == 2, auth
    api = site_block(caddyfile, f"api.{DOMAIN}")
    assert api.count("not remote_ip 198.51.100.7\n") == 1, api


# --- a real Caddy ---------------------------------------------------------


def docker(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False)


def caddy_image() -> str | None:
    try:
        for image in CADDY_IMAGES:
            if docker("image", "inspect", image, timeout=20).returncode == 0:
                return image
    except (OSError, subprocess.TimeoutExpired):
        return None
    return None


IMAGE = caddy_image()
live = pytest.mark.skipif(IMAGE is None, reason=f"needs a Docker engine and one of the images {CADDY_IMAGES}")


def live_variables(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "caddy_tls_mode": "internal",
        "caddy_http3": False,
        "caddy_chat_upstream": f"127.0.0.1:{UPSTREAMS['chat']}",
        "caddy_api_upstream": f"127.0.0.1:{UPSTREAMS['api']}",
        "caddy_auth_upstream": f"127.0.0.1:{UPSTREAMS['auth']}",
        **extra,
    }


def upstream_sites() -> str:
    """Listeners standing in for LibreChat, LiteLLM and Keycloak: each names itself and the path it saw."""
    return "".join(
        f'\nhttp://:{port} {{\n\trespond "upstream {name} saw {{http.request.orig_uri.path}}" 200\n}}\n'
        for name, port in UPSTREAMS.items()
    )


class Caddy:
    """A Caddy container running a rendered Caddyfile, its HTTPS port published on 127.0.0.1."""

    def __init__(self, tmp_path: Path, variables: dict[str, Any], data_volume: str):
        caddyfile = render(tmp_path, live_variables(variables)) + upstream_sites()
        # The access log goes to a directory of the container, like the role's mount.
        self.file = tmp_path / "Caddyfile.live"
        self.file.write_text(caddyfile)
        self.file.chmod(0o644)
        self.name = f"pp-surface-{uuid.uuid4().hex[:10]}"
        started = docker(
            "run", "-d", "--rm", "--name", self.name, "-p", "127.0.0.1::443",
            "-v", f"{self.file}:/etc/caddy/Caddyfile:ro", "-v", f"{data_volume}:/data",
            "--entrypoint", "caddy", str(IMAGE),
            "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile",
        )  # fmt: skip
        if started.returncode != 0:
            self.stop()
            raise AssertionError(started.stderr)
        port = docker("port", self.name, "443/tcp").stdout.split("\n")[0].rsplit(":", 1)[-1]
        self.port = int(port)
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        # The first container issues the three certificates (Caddy 2.6 may retry one a minute later);
        # the next ones find them in the shared /data volume.
        deadline = time.monotonic() + 150
        waiting = set(UPSTREAMS)
        while True:
            for site in sorted(waiting):
                try:
                    if self.get(site, "/v1/models")[0] in (200, 404):
                        waiting.discard(site)
                except (OSError, IndexError, ValueError):
                    pass
            if not waiting:
                break
            if time.monotonic() > deadline:
                logs = docker("logs", self.name)
                self.stop()
                raise AssertionError(f"Caddy did not answer: {logs.stdout[-3000:]}{logs.stderr[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        docker("rm", "-f", self.name)

    def get(self, site: str, raw_path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """GET ``raw_path`` exactly as written (no client-side cleaning) on ``site``; (status, body)."""
        host = f"{site}.{DOMAIN}"
        lines = [f"GET {raw_path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
            self.context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(request)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
        head, _sep, body = b"".join(chunks).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, body.decode(errors="replace")


@pytest.fixture(scope="module")
def data_volume():
    """Caddy's /data (the internal CA and the certificates), shared by the containers of this module."""
    name = f"pp-surface-data-{uuid.uuid4().hex[:10]}"
    created = docker("volume", "create", name)
    assert created.returncode == 0, created.stderr
    yield name
    docker("volume", "rm", "-f", name)


@pytest.fixture
def caddy_with(tmp_path, data_volume):
    started: list[Caddy] = []

    def start(variables: dict[str, Any]) -> Caddy:
        caddy = Caddy(tmp_path, variables, data_volume)
        started.append(caddy)
        return caddy

    yield start
    for caddy in started:
        caddy.stop()


def assert_reaches(caddy: Caddy, site: str, path: str) -> None:
    status, body = caddy.get(site, path)
    assert status == 200 and body.startswith(f"upstream {site} saw "), (site, path, status, body)


def assert_refused(caddy: Caddy, site: str, path: str, headers: dict[str, str] | None = None) -> None:
    status, body = caddy.get(site, path, headers)
    # Refused by Caddy itself (404 "Not found"), or rejected as a bad request; never the upstream.
    assert status in (400, 404) and "upstream" not in body, (site, path, status, body)


@live
def test_defaults_refuse_everything_but_the_allowlists(caddy_with):
    caddy = caddy_with({})
    for path in API_PUBLIC:
        assert_reaches(caddy, "api", path)
    for path in AUTH_PUBLIC:
        assert_reaches(caddy, "auth", path)
    for path in API_REFUSED:
        assert_refused(caddy, "api", path)
    for path in AUTH_REFUSED:
        assert_refused(caddy, "auth", path)
    # A forwarded header does not make a client an admin.
    assert_refused(caddy, "auth", "/admin/", {"X-Forwarded-For": "127.0.0.1"})
    # The chat site is LibreChat's whole path space.
    for path in ("/", "/api/config", "/oauth/openid", "/c/new", "/assets/index.js"):
        assert_reaches(caddy, "chat", path)
    status, body = caddy.get("api", "/ui/")
    assert (status, body) == (404, "Not found")
    print(
        f"api: {len(API_PUBLIC)} public paths reach LiteLLM, {len(API_REFUSED)} refused; "
        f"auth: {len(AUTH_PUBLIC)} reach Keycloak, {len(AUTH_REFUSED)} refused"
    )


@live
def test_admin_networks_reach_the_admin_paths(caddy_with):
    """The probe comes from the Docker bridge (a private address): listed, it reaches everything."""
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7"]
    caddy = caddy_with({"caddy_auth_admin_networks": private, "caddy_api_admin_networks": private})
    for path in ("/admin/master/console/", "/realms/master/protocol/openid-connect/token", "/"):
        assert_reaches(caddy, "auth", path)
    for path in ("/ui/", "/sso/key/generate", "/openapi.json", "/key/generate", "/metrics"):
        assert_reaches(caddy, "api", path)
    assert_reaches(caddy, "api", "/v1/models")


@live
def test_other_admin_networks_stay_refused(caddy_with):
    caddy = caddy_with({"caddy_auth_admin_networks": ["192.0.2.0/24"], "caddy_api_admin_networks": ["198.51.100.7"]})
    for path in ("/admin/master/console/", "/realms/master/protocol/openid-connect/token"):
        assert_refused(caddy, "auth", path)
    for path in ("/ui/", "/openapi.json"):
        assert_refused(caddy, "api", path)
    assert_reaches(caddy, "auth", "/realms/parrotpark/account")


@live
def test_metrics_public_adds_only_metrics(caddy_with):
    caddy = caddy_with({"caddy_api_metrics_public": True})
    assert_reaches(caddy, "api", "/metrics")
    assert_reaches(caddy, "api", "/metrics/")
    assert_refused(caddy, "api", "/ui/")
