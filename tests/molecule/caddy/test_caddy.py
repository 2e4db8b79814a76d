"""Verify the caddy role on a molecule platform, against the scenario's variables.

Requests go through the published ports on the platform's loopback with curl
(--resolve maps each site's host name to 127.0.0.1) and are checked against
the lab CA that Caddy keeps in /data. The backends are the scenario's test
doubles (molecule/caddy-default/backend.py): each answers JSON naming itself.
The last tests apply the role again (through the scenario's inventory) to
prove that a bad Caddyfile never reaches the server and that a good change is
reloaded without dropping a request in flight; they restore the scenario's
configuration afterwards.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import wait_healthy

ROOT = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROOT / "roles/caddy/defaults/main.yml").read_text())
BUILTIN_SITES = ("chat", "api", "auth")
CA_FILE = "/tmp/caddy-lab-root.crt"
CA_IN_CONTAINER = "/data/caddy/pki/authorities/local/root.crt"
ADMIN_URL = "http://127.0.0.1:2019/config/"


@dataclass
class Response:
    rc: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    stderr: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def role_vars(host) -> dict[str, Any]:
    """Role defaults overlaid with the scenario's inventory; host names derived from the domain."""
    inventory = host.ansible.get_variables()
    merged = {key: inventory.get(key, value) for key, value in DEFAULTS.items()}
    # The default port is the stack's (a template in the defaults): the value the role computes.
    merged["caddy_https_port"] = int(inventory.get("caddy_https_port", inventory.get("parrotpark_https_port", 443)))
    merged["caddy_domain"] = inventory["caddy_domain"]
    for name in BUILTIN_SITES:
        key = f"caddy_{name}_host"
        merged[key] = merged[key] or f"{name}.{merged['caddy_domain']}"
    return merged


@pytest.fixture(scope="module")
def container(host, role_vars) -> dict[str, Any]:
    name = role_vars["caddy_container_name"]
    return json.loads(host.check_output(f"docker container inspect {name}"))[0]


@pytest.fixture(scope="module")
def lab_ca(host, role_vars) -> str:
    """Caddy's internal root certificate, copied out of the container's /data."""
    host.check_output(f"docker cp {role_vars['caddy_container_name']}:{CA_IN_CONTAINER} {CA_FILE}")
    return CA_FILE


def sites(role_vars) -> list[dict[str, Any]]:
    """Every site: name, host, upstream (or None) and the kind of offline page."""
    result = [
        {
            "name": name,
            "host": role_vars[f"caddy_{name}_host"],
            "upstream": role_vars[f"caddy_{name}_upstream"],
            "offline": "json" if name == "api" else "html",
        }
        for name in role_vars["caddy_sites"]
    ]
    for extra in role_vars["caddy_extra_sites"]:
        upstream = extra.get("upstream")
        result.append({"name": extra["host"], "host": extra["host"], "upstream": upstream, "offline": "html"})
    return result


def served(role_vars, site: dict[str, Any], path: str) -> str:
    """``path`` moved into the part of the site that reaches its backend: the api site serves
    /v1/* only, the auth site /realms/* (unless caddy_auth_admin_public); other sites everything."""
    if site["name"] == "api":
        return "/v1" + path
    if site["name"] == "auth" and not role_vars["caddy_auth_admin_public"]:
        return "/realms/parrotpark" + path
    return path


def backend_name(upstream: str) -> str:
    """The container name in an upstream such as http://api-double:8082."""
    return re.sub(r"^https?://", "", upstream).rsplit(":", 1)[0]


def parse_curl(result) -> Response:
    """Split `curl -i` output into status, headers (lower-case names) and body."""
    response = Response(rc=result.rc, stderr=result.stderr)
    if result.rc != 0:
        return response
    head, _sep, body = result.stdout.partition("\r\n\r\n")
    lines = head.split("\r\n")
    response.status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _sep, value = line.partition(":")
        response.headers[name.strip().lower()] = value.strip()
    response.body = body
    return response


def https(
    host,
    role_vars,
    site_host: str,
    path: str = "/",
    *,
    ca: bool = True,
    verbose: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    port = role_vars["caddy_https_port"]
    command = ["curl", "-sS", "-i", "--path-as-is", "--max-time", "40", "--resolve", f"{site_host}:{port}:127.0.0.1"]
    if ca:
        command += ["--cacert", CA_FILE]
    if verbose:
        command.append("-v")
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"https://{site_host}:{port}{path}")
    return parse_curl(host.run(shlex.join(command)))


def admin_config(host, role_vars, path: str = "") -> Any:
    """The configuration Caddy is running, from its admin API inside the container."""
    out = host.check_output(f"docker exec {role_vars['caddy_container_name']} wget -q -O - {ADMIN_URL}{path}")
    return json.loads(out)


def offline_sentence(role_vars) -> str:
    until = role_vars["caddy_offline_until"]
    return role_vars["caddy_offline_message"] + (f" until {until}" if until else "") + "."


def wait_for_backend(host, role_vars, site: dict[str, Any]) -> None:
    for _attempt in range(40):
        response = https(host, role_vars, site["host"], served(role_vars, site, "/ready"))
        if response.status == 200:
            return
        time.sleep(0.5)
    pytest.fail(f"{site['host']} did not answer 200 again after its backend was started")


# --- the container -------------------------------------------------------


def test_container_runs_as_configured(container, role_vars):
    assert container["State"]["Running"], container["State"]
    assert container["Config"]["Image"] == role_vars["caddy_image"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container["Config"]["Labels"]["parrotpark.role"] == "caddy"
    assert container["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert container["HostConfig"]["LogConfig"]["Config"]["max-size"]
    assert "wget" in container["Config"]["Healthcheck"]["Test"]
    assert role_vars["caddy_docker_network"] in container["NetworkSettings"]["Networks"]


def test_ports_published_on_the_given_addresses(container, role_vars):
    bindings = container["HostConfig"]["PortBindings"]
    addresses = sorted(role_vars["caddy_bind_addresses"])
    https_port = role_vars["caddy_https_port"]  # the same port inside the container
    expected = {"80/tcp": role_vars["caddy_http_port"], f"{https_port}/tcp": https_port}
    if role_vars["caddy_http3"]:
        expected[f"{https_port}/udp"] = https_port
    assert set(bindings) == set(expected)
    for port, host_port in expected.items():
        if addresses:
            assert sorted(b["HostIp"] for b in bindings[port]) == addresses
        else:  # every address: Docker records it as 0.0.0.0 (and :: where IPv6 is on)
            assert {b["HostIp"] for b in bindings[port]} <= {"", "0.0.0.0", "::"}
        assert {b["HostPort"] for b in bindings[port]} == {str(host_port)}


def test_mounts(container, role_vars):
    mounts = {m["Destination"]: m for m in container["Mounts"]}
    assert mounts["/etc/caddy"]["Source"] == role_vars["caddy_config_dir"]
    assert mounts["/etc/caddy"]["RW"] is False
    assert mounts["/var/log/caddy"]["Source"] == role_vars["caddy_log_dir"]
    for destination, variable in (("/data", "caddy_data_volume"), ("/config", "caddy_config_volume")):
        value = role_vars[variable]
        if value.startswith("/"):
            assert mounts[destination]["Type"] == "bind" and mounts[destination]["Source"] == value
        else:
            assert mounts[destination]["Type"] == "volume" and mounts[destination]["Name"] == value


def test_container_healthy(host, role_vars):
    """Docker's health check (the admin API, through wget in the image) reports healthy."""
    name = role_vars["caddy_container_name"]
    status = wait_healthy(host, name)["State"].get("Health", {}).get("Status")
    assert status == "healthy", f"container {name} is {status}:\n{host.run(f'docker logs --tail 50 {name}').stderr}"


def test_internal_ca_kept_on_persistent_storage(host, role_vars):
    volume = role_vars["caddy_data_volume"]
    if not volume.startswith("/"):
        volume = host.check_output(f"docker volume inspect --format '{{{{.Mountpoint}}}}' {volume}")
    assert host.file(f"{volume}/caddy/pki/authorities/local/root.crt").exists


# --- the Caddyfile -------------------------------------------------------


def test_caddyfile_written_and_valid(host, role_vars):
    caddyfile = host.file(f"{role_vars['caddy_config_dir']}/Caddyfile")
    assert caddyfile.user == "root"
    assert caddyfile.mode == 0o644
    assert "Ansible managed" in caddyfile.content_string
    # The same offline check the role runs before it replaces the file.
    result = host.run(
        f"docker run --rm --network none -v {caddyfile.path}:/etc/caddy/Caddyfile:ro {role_vars['caddy_image']} "
        "caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile"
    )
    assert result.rc == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_running_configuration_is_the_caddyfile(host, role_vars):
    """What the server runs is what the file on the host says (sites, in order)."""
    servers = admin_config(host, role_vars, "apps/http/servers")
    served = {
        name
        for server in servers.values()
        for route in server.get("routes", [])
        for match in route.get("match", [])
        for name in match.get("host", [])
    }
    assert served == {site["host"] for site in sites(role_vars)}


# --- HTTPS, routing, headers --------------------------------------------


def test_https_answered_with_the_lab_ca(host, role_vars, lab_ca):
    for site in sites(role_vars):
        trusted = https(host, role_vars, site["host"], served(role_vars, site, "/"), verbose=True)
        assert trusted.rc == 0, trusted.stderr
        assert trusted.status == 200
        assert "Caddy Local Authority" in trusted.stderr  # the issuer curl prints with -v
        untrusted = https(host, role_vars, site["host"], ca=False)
        assert untrusted.rc == 60, f"expected a certificate error without the lab CA: {untrusted.stderr}"


def test_unknown_host_name_not_served(host, role_vars, lab_ca):
    response = https(host, role_vars, f"unknown-{uuid.uuid4().hex[:8]}.{role_vars['caddy_domain']}")
    assert response.rc != 0 and response.status is None


def test_http_redirects_to_https(host, role_vars):
    site = sites(role_vars)[0]["host"]
    port = role_vars["caddy_http_port"]
    result = host.run(f"curl -sS -i --max-time 10 --resolve {site}:{port}:127.0.0.1 http://{site}:{port}/some/path")
    response = parse_curl(result)
    assert response.status == 308, result.stdout + result.stderr
    # Caddy redirects to its HTTPS port, written in the URL when it is not 443.
    https_port = role_vars["caddy_https_port"]
    assert response.headers["location"] == f"https://{site}{'' if https_port == 443 else f':{https_port}'}/some/path"


def test_routing_by_host_name(host, role_vars, lab_ca):
    for site in sites(role_vars):
        path = served(role_vars, site, "/probe")
        response = https(host, role_vars, site["host"], path)
        assert response.status == 200, (site, response)
        if site["upstream"] is None:
            continue
        answer = response.json()
        assert answer["backend"] == backend_name(site["upstream"]), site
        assert answer["path"] == path
        # The Host header the client sent (with its port when not 443) reaches the backend unchanged.
        port = role_vars["caddy_https_port"]
        assert answer["host"] == (site["host"] if port == 443 else f"{site['host']}:{port}")
        assert answer["x_forwarded_proto"] == "https"


def test_extra_sites_with_directives(host, role_vars, lab_ca):
    """The alternative scenario's status site: its own directives, headers and log like every site."""
    for extra in role_vars["caddy_extra_sites"]:
        if extra.get("directives") and "status ok" in extra["directives"]:
            assert https(host, role_vars, extra["host"], "/health").body == "status ok"
            assert https(host, role_vars, extra["host"], "/").body == "status page"


def test_security_headers(host, role_vars, lab_ca):
    for site in sites(role_vars):
        response = https(host, role_vars, site["host"])
        for name, value in role_vars["caddy_security_headers"].items():
            assert response.headers.get(name.lower()) == value, (site["host"], name, response.headers)
        # The backend sends its own Server header; the proxy removes it.
        assert "server" not in response.headers


def test_litellm_metrics_private(host, role_vars, lab_ca):
    if "api" not in role_vars["caddy_sites"]:
        pytest.skip("no api site in this scenario")
    api = role_vars["caddy_api_host"]
    metrics = https(host, role_vars, api, "/metrics/")
    if role_vars["caddy_api_metrics_public"]:
        assert metrics.status == 200 and metrics.json()["path"] == "/metrics/"
    else:
        assert metrics.status == 404 and metrics.body == "Not found"
        assert https(host, role_vars, api, "/metrics").status == 404
    models = https(host, role_vars, api, "/v1/models")
    assert models.status == 200 and models.json()["path"] == "/v1/models"


def test_keycloak_admin_console(host, role_vars, lab_ca):
    if "auth" not in role_vars["caddy_sites"]:
        pytest.skip("no auth site in this scenario")
    auth = role_vars["caddy_auth_host"]
    admin = https(host, role_vars, auth, "/admin/master/console/")
    if role_vars["caddy_auth_admin_public"]:
        assert admin.status == 200 and admin.json()["path"] == "/admin/master/console/"
    else:
        assert admin.status == 404 and admin.body == "Not found"
        assert https(host, role_vars, auth, "/admin").status == 404
    realm = https(host, role_vars, auth, "/realms/parrotpark/account")
    assert realm.status == 200 and realm.json()["path"] == "/realms/parrotpark/account"


def test_public_surface(host, role_vars, lab_ca):
    """The auth and api sites serve their allowlists; anything else is Caddy's 404, the backend never asked."""
    refused = []
    if "api" in role_vars["caddy_sites"]:
        api = role_vars["caddy_api_host"]
        for path in ("/v1/models", "/health/liveliness"):
            response = https(host, role_vars, api, path)
            assert response.status == 200 and response.json()["path"] == path, (path, response)
        refused += [(api, path) for path in ("/", "/ui/", "/sso/key/generate", "/openapi.json", "/routes", "/key/list")]
        refused += [(api, "/v1/../ui/"), (api, "/v1/..;/ui/")]
    if "auth" in role_vars["caddy_sites"] and not role_vars["caddy_auth_admin_public"]:
        auth = role_vars["caddy_auth_host"]
        for path in ("/realms/parrotpark/protocol/openid-connect/certs", "/resources/x/login/a.css", "/robots.txt"):
            response = https(host, role_vars, auth, path)
            assert response.status == 200 and response.json()["path"] == path, (path, response)
        refused += [
            (auth, path)
            for path in (
                "/",
                "/admin/",
                "/realms/master/protocol/openid-connect/token",
                "/realms/MASTER/account",
                "/realms/parrotpark/..;/master/account",
                "/metrics",
            )
        ]
    for site_host, path in refused:
        response = https(host, role_vars, site_host, path)
        assert (response.status, response.body) == (404, "Not found"), (site_host, path, response)
    assert refused


# --- access log ----------------------------------------------------------


def access_log(host, role_vars) -> tuple[str, list[dict[str, Any]]]:
    """The access log on the host: its text and its JSON lines."""
    text = host.file(f"{role_vars['caddy_log_dir']}/access.log").content_string
    return text, [json.loads(line) for line in text.splitlines() if line.strip()]


def test_access_log_json_lines(host, role_vars, lab_ca):
    site = sites(role_vars)[0]
    path = f"/log-probe-{uuid.uuid4().hex}"
    assert https(host, role_vars, site["host"], path).status == 200
    _text, entries = access_log(host, role_vars)
    mine = [e for e in entries if e["request"]["uri"] == path]
    assert len(mine) == 1, f"{path} not logged once in {role_vars['caddy_log_dir']}/access.log"
    assert mine[0]["request"]["host"].split(":")[0] == site["host"]
    assert mine[0]["status"] == 200
    assert mine[0]["logger"].startswith("http.log.access")


def test_access_log_rotation_configured(host, role_vars):
    logs = admin_config(host, role_vars, "logging/logs")
    writers = [log["writer"] for log in logs.values() if log.get("writer", {}).get("filename")]
    assert writers, logs
    for writer in writers:
        assert writer["output"] == "file"
        assert writer["filename"] == "/var/log/caddy/access.log"
        assert writer["roll_size_mb"] == role_vars["caddy_log_roll_size_mb"]
        assert writer["roll_keep"] == role_vars["caddy_log_roll_keep"]
        assert writer["roll_keep_days"] == role_vars["caddy_log_roll_keep_days"]
    # JSON lines, through the filter that redacts the logins' one-time credentials.
    encoders = [log["encoder"] for log in logs.values() if "encoder" in log]
    assert encoders and all(e["format"] == "filter" and e["wrap"]["format"] == "json" for e in encoders), encoders


def test_access_log_keeps_no_login_code(host, role_vars):
    """A login's one-time credentials (an OpenID Connect callback's code and state, Keycloak's session_code)
    are REDACTED in the access log, in the URI and in the Referer; the other parameters stay."""
    site = sites(role_vars)[0]
    path = f"/log-probe-{uuid.uuid4().hex}"
    query = "state=one-time-state-0123&code=one-time-code-0123&keep=1"
    referer = f"https://auth.example.test/login-actions/authenticate?session_code=one-time-session-0123&tab_id={path}"
    assert https(host, role_vars, site["host"], f"{path}?{query}", headers={"Referer": referer}).status == 200
    log, entries = access_log(host, role_vars)
    mine = [e for e in entries if e["request"]["uri"].startswith(path + "?")]
    assert len(mine) == 1, f"{path} not logged once"
    assert mine[0]["request"]["uri"] == f"{path}?code=REDACTED&keep=1&state=REDACTED", mine[0]["request"]["uri"]
    assert mine[0]["request"]["headers"]["Referer"] == [
        f"https://auth.example.test/login-actions/authenticate?session_code=REDACTED&tab_id={path}"
    ]
    assert "one-time-" not in log


# --- offline page --------------------------------------------------------


def test_offline_page_when_the_backend_is_stopped(host, role_vars, lab_ca):
    sentence = offline_sentence(role_vars)
    checked = 0
    for site in sites(role_vars):
        if site["upstream"] is None:
            continue
        backend = backend_name(site["upstream"])
        host.check_output(f"docker stop --time 1 {backend}")
        try:
            response = https(host, role_vars, site["host"], served(role_vars, site, "/chat/completions"))
        finally:
            host.check_output(f"docker start {backend}")
        assert response.status == 503, (site, response)
        assert response.headers["cache-control"] == "no-store"
        for name, value in role_vars["caddy_security_headers"].items():
            assert response.headers.get(name.lower()) == value
        if role_vars["caddy_offline_until"]:
            assert f"until {role_vars['caddy_offline_until']}" in response.body
        if site["offline"] == "json":
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {
                "error": {
                    "message": f"{sentence} Please try again later.",
                    "type": "service_unavailable",
                    "param": None,
                    "code": None,
                }
            }
        else:
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert f"<h1>{html.escape(sentence)}</h1>" in response.body
        wait_for_backend(host, role_vars, site)
        checked += 1
    assert checked >= 1


# --- applying the role again ---------------------------------------------


def apply_role(
    extra_vars: dict[str, Any] | None = None, on_line: Callable[[str], None] | None = None
) -> tuple[int, str]:
    """Run the scenario's converge playbook (with extra variables); return (rc, output).

    `on_line` sees every line of output as it comes, so a test can act at a given task.
    """
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    playbook = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "molecule" / "_shared" / "converge.yml"
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        rc = proc.wait(timeout=600)
    return rc, "".join(lines)


def container_started_at(host, role_vars) -> str:
    return host.check_output(f"docker inspect --format '{{{{.State.StartedAt}}}}' {role_vars['caddy_container_name']}")


def test_invalid_configuration_never_reaches_the_server(host, role_vars, lab_ca):
    caddyfile = f"{role_vars['caddy_config_dir']}/Caddyfile"
    file_before = host.file(caddyfile).content_string
    config_before = admin_config(host, role_vars)
    started_before = container_started_at(host, role_vars)
    broken = {"host": f"broken.{role_vars['caddy_domain']}", "directives": "reverse_proxyy parrotpark-nowhere:80"}
    rc, output = apply_role({"caddy_extra_sites": [*role_vars["caddy_extra_sites"], broken]})
    assert rc != 0, output
    # The failure names the problem: caddy validate's own message, with the line.
    assert "failed to validate" in output, output
    # (The result printer may fold long messages over several lines.)
    assert re.search(
        r"The new Caddyfile was not installed and Caddy keeps running the previous one: "
        r"Error: adapting config using caddyfile: \S*Caddyfile:\d+: unrecognized directive: reverse_proxyy",
        " ".join(output.split()),
    ), output
    assert "RUNNING HANDLER" not in output
    assert host.file(caddyfile).content_string == file_before
    assert admin_config(host, role_vars) == config_before
    assert container_started_at(host, role_vars) == started_before
    assert https(host, role_vars, sites(role_vars)[0]["host"]).status == 200


def test_change_reloaded_without_dropping_a_request(host, role_vars, lab_ca):
    """A new offline time is validated and reloaded while a slow request is in flight; it completes."""
    site = next(s for s in sites(role_vars) if s["upstream"])
    started_before = container_started_at(host, role_vars)
    new_time = "23:47" if role_vars["caddy_offline_until"] != "23:47" else "06:15"
    slow: dict[str, Any] = {}

    def slow_request() -> None:
        slow["start"] = time.monotonic()
        slow["response"] = https(host, role_vars, site["host"], "/slow?sleep=20")
        slow["end"] = time.monotonic()

    worker = threading.Thread(target=slow_request)

    # The role's last task on the host before it applies the new Caddyfile (flush_handlers; only a set_fact
    # comes between): the container, unchanged.
    trigger = f"TASK [parrotpark.llm._common : Run the container {role_vars['caddy_container_name']}]"

    def on_line(line: str) -> None:
        # Send the slow request once the new Caddyfile is written and validated: the reload comes a task later.
        # Sent as the file was written, a 15 s request once ended before the reload on a loaded machine.
        if trigger in line and worker.ident is None:
            worker.start()
            time.sleep(1)
        if "RUNNING HANDLER [parrotpark.llm.caddy : Reload Caddy]" in line:
            slow["reload"] = time.monotonic()

    try:
        rc, output = apply_role({"caddy_offline_until": new_time}, on_line)
        assert rc == 0, output
        assert "start" in slow, "the slow request was never sent (task names changed?)"
        worker.join(timeout=60)
        assert re.search(r"RUNNING HANDLER \[parrotpark\.llm\.caddy : Reload Caddy\][^\n]*\nchanged:", output), output
        assert slow["start"] < slow["reload"] < slow["end"], f"the reload did not happen during the request: {slow}"
        response = slow["response"]
        assert response.status == 200, response
        assert response.json()["backend"] == backend_name(site["upstream"])
        assert container_started_at(host, role_vars) == started_before, "the container was restarted"
        assert f"until {new_time}" in json.dumps(admin_config(host, role_vars, "apps/http/servers"))
    finally:
        if worker.ident is not None:
            worker.join(timeout=60)
        rc, output = apply_role()  # back to the scenario's configuration
        assert rc == 0, output
    assert f"until {new_time}" not in json.dumps(admin_config(host, role_vars, "apps/http/servers"))
