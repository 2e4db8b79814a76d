"""The lab's public surface, as the internet sees it (issue 15), in either layout.

Run after the layout's other end-to-end tests (``test_e2e.py`` or
``test_e2e_gpu_gateway.py``): the lab is up, the GPU server may be up or not
(nothing here needs it; with the gateway on the GPU server and no GPU, the
chat and api sites answer "offline" for the paths they serve). Every request
carries the header ``X-Parrotpark-Probe``, so that on demand the waker never
starts the GPU because of a probe.

From outside the entrance:
- the sites chat, api and auth through the published HTTPS port
  (127.0.0.1:PARROTPARK_LAB_HTTPS_PORT, with the sites' names as Host and
  SNI): every probed path that answers (2xx, 3xx or 401) is in the site's
  allowlist below, and every known-sensitive path is refused (on the api and
  auth sites by Caddy itself: 404 "Not found", nothing from the upstream);
- the ports: the entrance publishes its HTTPS port only (the stack's
  parrotpark_https_port, the same inside); inside it no container
  publishes anything but Caddy's 80 and that port on a wildcard address (the rest
  on loopback or the private address); and from another machine of the lab
  network the entrance refuses Keycloak's management port, vLLM's and Caddy's
  internal route ports, LiteLLM's, LibreChat's, Keycloak's HTTP port, Caddy's
  admin API, the waker and the fake cloud's port.

The allowlists are those of docs/security.md ("The public surface").
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import secrets
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from functools import cache

import pytest
from lab_support import (
    DOMAIN,
    ENTRANCE,
    HTTPS_PORT,
    LAYOUT,
    ROOT,
    caddy_image,
    entrance,
    lab,
    lab_address,
    lab_ca,
    sh,
    site_url,
)

PROBE_HEADERS = {"X-Parrotpark-Probe": "public-surface", "Accept": "*/*"}
ANSWERING = "2xx, 3xx or 401"
CADDY_REFUSAL = (404, "Not found")

# What each site may answer, as Caddy path patterns (a trailing * matches any rest).
ALLOWED = {
    # LibreChat owns its whole path space (its web app, its API, its login).
    "chat": [
        "/", "/health", "/api/*", "/oauth/*", "/login", "/login/*", "/register", "/forgot-password",
        "/reset-password", "/c/*", "/d/*", "/share/*", "/search", "/agents", "/assets/*", "/images/*",
        "/fonts/*", "/manifest.webmanifest", "/favicon.ico", "/robots.txt",
        # On demand with the gateway on the GPU server, the waker's offline page posts its button here.
        "/.parrotpark/wake",
        # The cost report pages (the reports role): every path sends to Keycloak's login first.
        "/reports", "/reports/*",
    ],
    # LiteLLM: the OpenAI-compatible API and the liveness (caddy_api_public_paths).
    "api": ["/v1/*", "/health/liveliness", "/health/liveness"],
    # Keycloak: its reverse-proxy guide's exposed paths (caddy_auth_public_paths), the master realm excluded.
    "auth": ["/realms/*", "/resources/*", "/.well-known/*", "/robots.txt"],
}  # fmt: skip
NEVER_ALLOWED = {"auth": ["/realms/master", "/realms/master/*"]}


@dataclass(frozen=True)
class Probe:
    site: str
    path: str  # sent exactly as written: no client-side cleaning of dot segments or escapes
    method: str = "GET"
    form: tuple[tuple[str, str], ...] = ()
    # Sensitive: must be refused. strict: refused by Caddy itself (404 "Not found"), else not answering.
    sensitive: bool = False
    strict: bool = False


def wrong_password() -> str:
    return "wrong-" + secrets.token_hex(8)


# LiteLLM's admin UI, single sign-on, docs, metrics, key/user/model management, health with details,
# the un-prefixed OpenAI paths (no client of the collection uses them), and everything else: Caddy's 404.
API_REFUSED = (
    "/", "/ui", "/ui/", "/ui/login/", "/sso/key/generate", "/sso/callback", "/openapi.json", "/docs", "/redoc",
    "/routes", "/metrics", "/metrics/", "/key/generate", "/key/list", "/key/info", "/user/new", "/user/info",
    "/user/list", "/team/list", "/model/new", "/model/info", "/model_group/info", "/global/spend", "/spend/logs",
    "/config/yaml", "/get/config/callbacks", "/health", "/health/readiness", "/models", "/chat/completions",
    "/completions", "/embeddings", "/_fake/state", "/v1",
)  # fmt: skip

# Keycloak's root (a redirect to the console), admin console and REST API, the master realm, what the
# management port would serve: Caddy's 404.
AUTH_REFUSED = (
    "/", "/admin", "/admin/", "/admin/master/console/", "/admin/realms/parrotpark/users", "/admin/serverinfo",
    "/realms/master", "/realms/master/", "/realms/master/account", "/realms/master/.well-known/openid-configuration",
    "/realms/master/protocol/openid-connect/auth?client_id=security-admin-console&response_type=code",
    "/realms/master/protocol/openid-connect/token", "/realms/MASTER/protocol/openid-connect/token", "/metrics",
    "/health", "/health/ready", "/health/live", "/_fake/state",
)  # fmt: skip


# Paths every client uses, and paths the apps have that must not be public.
PROBES = [
    # chat: LibreChat
    Probe("chat", "/"),
    Probe("chat", "/health"),
    Probe("chat", "/api/config"),
    Probe("chat", "/api/models"),
    Probe("chat", "/oauth/openid"),
    Probe("chat", "/login"),
    Probe("chat", "/c/new"),
    Probe("chat", "/reports/"),
    Probe("chat", "/admin/", sensitive=True),
    Probe("chat", "/ui/", sensitive=True),
    Probe("chat", "/metrics", sensitive=True),
    Probe("chat", "/openapi.json", sensitive=True),
    Probe("chat", "/realms/master/protocol/openid-connect/token", sensitive=True),
    Probe("chat", "/_fake/state", sensitive=True),
    Probe("chat", "/.env", sensitive=True),
    Probe("chat", "/.git/config", sensitive=True),
    # api: LiteLLM (or, with the gateway on the GPU server, Caddy's route gpu-4000)
    Probe("api", "/v1/models"),
    Probe("api", "/v1/chat/completions"),
    Probe("api", "/v1/embeddings"),
    Probe("api", "/health/liveliness"),
    Probe("api", "/health/liveness"),
    *(Probe("api", path, sensitive=True, strict=True) for path in API_REFUSED),
    Probe("api", "/sso/key/generate", method="POST", sensitive=True, strict=True),
    # Paths that a careless proxy would clean into something else, or not at all.
    *(
        Probe("api", path, sensitive=True)
        for path in ("/v1/../ui/", "/v1/%2e%2e/openapi.json", "/V1/../routes", "//ui/", "/v1/..%2fkey/list")
    ),
    # auth: Keycloak
    Probe("auth", "/realms/parrotpark/.well-known/openid-configuration"),
    Probe("auth", "/realms/parrotpark/protocol/openid-connect/certs"),
    Probe("auth", "/realms/parrotpark/protocol/openid-connect/auth?client_id=librechat&response_type=code"),
    Probe("auth", "/realms/parrotpark/account"),
    Probe("auth", "/.well-known/oauth-authorization-server/realms/parrotpark"),
    Probe("auth", "/robots.txt"),
    Probe(
        "auth",
        "/realms/parrotpark/protocol/openid-connect/token",
        method="POST",
        form=(("grant_type", "password"), ("client_id", "admin-cli"), ("username", "surface-probe-nobody")),
    ),
    *(Probe("auth", path, sensitive=True, strict=True) for path in AUTH_REFUSED),
    # The admin API's password grant, the finding: it must not answer invalid_grant any more.
    Probe(
        "auth",
        "/realms/master/protocol/openid-connect/token",
        method="POST",
        form=(("grant_type", "password"), ("client_id", "admin-cli"), ("username", "admin")),
        sensitive=True,
        strict=True,
    ),
    *(
        Probe(
            "auth", path, method="POST", form=(("grant_type", "password"), ("client_id", "admin-cli")), sensitive=True
        )
        for path in (
            "/realms/parrotpark/../master/protocol/openid-connect/token",
            "/realms/%6Daster/protocol/openid-connect/token",
            "//realms/master/protocol/openid-connect/token",
            "/realms/parrotpark/..;/master/protocol/openid-connect/token",
            "/resources/../admin/master/console/",
        )
    ),
]


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]

    @property
    def answers(self) -> bool:
        return 200 <= self.status < 400 or self.status == 401

    @property
    def caddy_refusal(self) -> bool:
        return (self.status, self.body) == CADDY_REFUSAL


def send(probe: Probe) -> Answer:
    """One request to a site through the published HTTPS port (conftest sends the site names there)."""
    host = f"{probe.site}.{DOMAIN}"
    context = ssl.create_default_context(cafile=lab_ca_file())
    connection = http.client.HTTPSConnection(host, 443, context=context, timeout=30)
    headers = dict(PROBE_HEADERS)
    body = None
    if probe.method == "POST":
        fields = list(probe.form)
        if any(name == "username" for name, _value in fields):
            fields.append(("password", wrong_password()))
        body = urllib.parse.urlencode(fields)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(probe.method, probe.path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(200_000).decode(errors="replace")
        return Answer(response.status, text, {k.lower(): v for k, v in response.getheaders()})
    finally:
        connection.close()


@cache
def lab_ca_file() -> str:
    return lab_ca()


def allowed(site: str, path: str) -> bool:
    """Whether ``path`` (its query left out) matches the site's allowlist, as Caddy's path matcher would."""
    path = urllib.parse.urlsplit(path).path

    def matches(pattern: str) -> bool:
        if pattern.endswith("*"):
            return path.lower().startswith(pattern[:-1].lower())
        return path.lower() == pattern.lower()

    if any(matches(pattern) for pattern in NEVER_ALLOWED.get(site, [])):
        return False
    return any(matches(pattern) for pattern in ALLOWED[site])


@pytest.fixture(scope="module")
def answers() -> dict[Probe, Answer]:
    return {probe: send(probe) for probe in PROBES}


FIGURES: dict[str, int] = {}


def test_every_answering_path_is_in_the_allowlist(answers):
    outside = [
        f"{p.method} https://{p.site}.{DOMAIN}{p.path}: {a.status} {a.body[:120]!r}"
        for p, a in answers.items()
        if a.answers and not allowed(p.site, p.path)
    ]
    FIGURES["paths probed"] = len(answers)
    FIGURES["paths answering"] = sum(1 for a in answers.values() if a.answers)
    FIGURES["paths answering outside the allowlists"] = len(outside)
    assert outside == [], f"these answer ({ANSWERING}) but are in no allowlist:\n" + "\n".join(outside)


def test_sensitive_paths_are_refused(answers):
    sensitive = {p: a for p, a in answers.items() if p.sensitive}
    wrong = [
        f"{p.method} https://{p.site}.{DOMAIN}{p.path}: {a.status} {a.body[:160]!r}"
        for p, a in sensitive.items()
        if a.answers or (p.strict and not a.caddy_refusal)
    ]
    FIGURES["sensitive paths probed"] = len(sensitive)
    FIGURES["sensitive paths refused"] = len(sensitive) - len(wrong)
    assert wrong == [], "these sensitive paths are not refused (strict ones must get Caddy's 404):\n" + "\n".join(wrong)
    # A refusal says nothing about what is behind it.
    leaks = [p.path for p, a in sensitive.items() if p.strict and any(h.startswith("x-litellm") for h in a.headers)]
    assert leaks == [], leaks


def test_the_sites_still_serve_their_clients(answers):
    """The allowlists are used: Keycloak's OpenID endpoints answer, and so does what the layout runs."""
    by_path = {(p.site, p.method, p.path): a for p, a in answers.items()}
    discovery = by_path[("auth", "GET", "/realms/parrotpark/.well-known/openid-configuration")]
    assert discovery.status == 200, discovery
    assert json.loads(discovery.body)["issuer"] == site_url("auth") + "/realms/parrotpark"  # with the lab's port
    token = by_path[("auth", "POST", "/realms/parrotpark/protocol/openid-connect/token")]
    assert token.status in (400, 401), token  # Keycloak's own answer (invalid_grant or invalid_client), not Caddy's
    assert not token.caddy_refusal
    models = by_path[("api", "GET", "/v1/models")]
    # LiteLLM asks for a key; offline (gateway on the GPU server, no GPU) Caddy's route answers 503;
    # on demand the waker lists the models.
    assert models.status in (200, 401, 503) and not models.caddy_refusal, models
    if LAYOUT == "default":
        assert by_path[("chat", "GET", "/")].status == 200
        assert by_path[("api", "GET", "/health/liveliness")].status == 200


# --- ports ----------------------------------------------------------------

# Ports nothing outside the entrance may reach on it: Keycloak's management port, vLLM's (and Caddy's
# internal routes gpu-8000/gpu-8001), Caddy's admin API, LibreChat's and LiteLLM's host ports, Keycloak's
# HTTP port, the waker, the routes of the gateway on the GPU server, the fake cloud's port.
CLOSED_PORTS = [9000, 8000, 8001, 2019, 3080, 4000, 8080, 8089, 8383]
# PostgreSQL listens on the private address (the GPU server's Telegraf, the gateway on the GPU server):
# never on a wildcard address, never published by the entrance.
PRIVATE_ONLY_PORTS = [5432]
PUBLIC_PORTS = [80, HTTPS_PORT]


def publications(ports_column: str) -> list[tuple[str, int]]:
    """(host address, host port) of each publication in ``docker ps``'s Ports column."""
    found = []
    for item in filter(None, (part.strip() for part in ports_column.split(","))):
        if "->" not in item:
            continue  # exposed, not published
        left = item.split("->", 1)[0]
        address, _colon, ports = left.rpartition(":")
        low, _dash, high = ports.partition("-")
        for port in range(int(low), int(high or low) + 1):
            found.append((address.strip("[]"), port))
    return found


def is_wildcard(address: str) -> bool:
    return address in ("", "0.0.0.0", "::", ":")


def test_the_entrance_publishes_only_https():
    lines = sh("docker", "port", ENTRANCE).stdout.split("\n")
    published = sorted({line.split(" ->")[0].strip() for line in lines if "->" in line})
    FIGURES["ports published by the entrance"] = len(published)
    assert published == [f"{HTTPS_PORT}/tcp"], published  # the same port inside: the public URLs carry it
    host_ports = {int(line.rsplit(":", 1)[1]) for line in lines if "->" in line}
    assert host_ports == {HTTPS_PORT}, host_ports


def test_containers_on_the_entrance_publish_only_caddy_on_every_address():
    private = lab_address(ENTRANCE)
    rows = entrance("docker", "ps", "--format", "{{.Names}}\t{{.Ports}}").stdout.splitlines()
    wrong = []
    for row in rows:
        name, _tab, column = row.partition("\t")
        for address, port in publications(column):
            if is_wildcard(address):
                if port in PRIVATE_ONLY_PORTS:
                    wrong.append(f"{name} publishes {port} on every address (private address only)")
                elif port not in PUBLIC_PORTS:
                    wrong.append(f"{name} publishes {port} on every address")
                continue
            if ipaddress.ip_address(address).is_loopback:
                continue
            if address == private and port not in CLOSED_PORTS:
                continue
            wrong.append(f"{name} publishes {port} on {address}")
    assert wrong == [], wrong


PORT_PROBE = """
import json, socket, sys
address, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
result = {}
for port in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        result[port] = "open" if s.connect_ex((address, port)) == 0 else "closed"
    except OSError:
        result[port] = "unreachable"
    finally:
        s.close()
print(json.dumps(result))
"""


def test_sensitive_ports_are_closed_from_the_network():
    """From another machine of the lab network (the fake cloud's container), as a neighbour would try."""
    address = lab_address(ENTRANCE)
    ports = [HTTPS_PORT, *CLOSED_PORTS]
    out = sh("docker", "exec", lab.FAKESCW, "python3", "-c", PORT_PROBE, address, *map(str, ports)).stdout
    states = {int(port): state for port, state in json.loads(out).items()}
    # The probe works: the public HTTPS port answers.
    assert states[HTTPS_PORT] == "open", states
    open_ports = [port for port in CLOSED_PORTS if states[port] == "open"]
    FIGURES["sensitive ports probed"] = len(CLOSED_PORTS)
    FIGURES["sensitive ports refused"] = len(CLOSED_PORTS) - len(open_ports)
    assert open_ports == [], f"open on the entrance ({address}): {open_ports}"


FIREWALL_NETWORK = "parrotpark-lab-public-probe"
HOST_LISTENER_PORT = 18999  # a process on the entrance listening on every address
PUBLISHED_PROBE_PORT = 18998  # a container on the entrance publishing on every address
PROBE_CONTAINER = "parrotpark-firewall-probe"
PROBE_SUBNETS = ("10.199.77.0/24", "10.211.33.0/24", "192.0.2.0/24")


def test_the_firewall_admits_the_private_network_only():
    """The entrance's nftables table (role firewall): from a network that is not the private one (a second
    network the entrance joins for the test, as its public interface), only the public ports answer; the same
    listeners answer from the private network (the lab network, firewall_private_networks). A process on the
    host and a container port Docker publishes on every address are both kept out."""
    table = entrance("nft", "list", "table", "inet", "parrotpark_firewall").stdout
    assert "hook input" in table and "hook forward" in table, table
    # The last argument only names the process for pkill.
    listener = (
        "python3 -c 'import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
        f' s.bind(("0.0.0.0", {HOST_LISTENER_PORT})); s.listen(8); time.sleep(300)\' {PROBE_CONTAINER}'
    )
    # A subnet of its own, explicit: docker's default pools are those the entrance's engine uses inside.
    for subnet in PROBE_SUBNETS:
        made = sh(
            "docker",
            "network",
            "create",
            "--label",
            f"{lab.LAB_LABEL}=true",
            "--subnet",
            subnet,
            FIREWALL_NETWORK,
            check=False,
        )
        if made.returncode == 0:
            break
    else:
        pytest.fail(f"no subnet of {PROBE_SUBNETS} was free for {FIREWALL_NETWORK}: {made.stderr}")
    try:
        sh("docker", "network", "connect", FIREWALL_NETWORK, ENTRANCE)
        entrance("sh", "-c", f"nohup {listener} >/dev/null 2>&1 &")
        published = f"{PUBLISHED_PROBE_PORT}:{PUBLISHED_PROBE_PORT}"
        entrance(
            "docker", "run", "-d", "--rm", "--name", PROBE_CONTAINER, "-p", published, caddy_image(),
            "caddy", "file-server", "--listen", f":{PUBLISHED_PROBE_PORT}", "--root", "/srv",
        )  # fmt: skip
        public = json.loads(sh("docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", ENTRANCE).stdout)[
            FIREWALL_NETWORK
        ]["IPAddress"]
        ports = [str(HTTPS_PORT), str(HOST_LISTENER_PORT), str(PUBLISHED_PROBE_PORT)]
        private_probe = ("docker", "exec", lab.FAKESCW, "python3", "-c", PORT_PROBE, lab_address(ENTRANCE), *ports)
        public_probe = ("docker", "run", "--rm", "--network", FIREWALL_NETWORK, lab.FAKESCW_IMAGE, "python3", "-c")
        deadline = time.monotonic() + 30  # the listeners start in the background
        while (from_private := json.loads(sh(*private_probe).stdout)) != dict.fromkeys(ports, "open"):
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        from_public = json.loads(sh(*public_probe, PORT_PROBE, public, *ports).stdout)
        # The listeners are up: the private network reaches them.
        assert from_private == dict.fromkeys(ports, "open"), from_private
        # From elsewhere: HTTPS only.
        assert from_public == {ports[0]: "open", ports[1]: "closed", ports[2]: "closed"}, from_public
        FIGURES["firewall: listeners refused from a public network"] = 2
    finally:
        entrance("docker", "rm", "-f", PROBE_CONTAINER, check=False)
        entrance("pkill", "-f", PROBE_CONTAINER, check=False)
        sh("docker", "network", "disconnect", "--force", FIREWALL_NETWORK, ENTRANCE, check=False)
        sh("docker", "network", "rm", FIREWALL_NETWORK, check=False)


def test_figures():
    """The figures of the issue note (also in .cache/public-surface-<layout>.json)."""
    FIGURES["layout"] = LAYOUT  # type: ignore[assignment]
    print("public surface:", json.dumps(FIGURES))
    out = ROOT / ".cache" / f"public-surface-{LAYOUT}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(FIGURES, indent=2) + "\n")
