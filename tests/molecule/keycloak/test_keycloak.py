"""Verify the keycloak role on a molecule platform.

Keycloak runs as the variables say (image, production start, environment,
ports), answers on its management port only where it should, serves the
realm's OIDC discovery document under its public hostname, and a user of the
realm logs in to LibreChat's client with the authorization code flow (the
flow LibreChat uses; the client refuses the password grant). The client
secret Keycloak has is the one in the controller file the librechat role
reads. At the end the role runs again against the instance: with another
redirect URI (Keycloak takes it over), back to the scenario's (and the old
one works again), and with a wrong admin password (a clear error, nothing
changed).

HTTP requests run on the molecule host with its own python3 and
oidc_probe.py (standard library only), since Keycloak is published on the
host's loopback and its management port only on the docker network.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import converge, recap_changed, resolve, wait_healthy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles/keycloak/defaults/main.yml").read_text())
PROBE = HERE / "oidc_probe.py"
REMOTE_PROBE = "/tmp/oidc_probe.py"
WRONG_REDIRECT = "https://elsewhere.invalid/oauth/openid/callback"


@pytest.fixture(scope="module")
def role_vars(host) -> dict[str, Any]:
    """Role defaults overlaid with the scenario's inventory variables, templates rendered."""
    return resolve({**DEFAULTS, **host.ansible.get_variables()}, "keycloak_")


@pytest.fixture(scope="module")
def container(host, role_vars) -> dict[str, Any]:
    return wait_healthy(host, role_vars["keycloak_container_name"])


@pytest.fixture(scope="module")
def probe(host):
    """Run oidc_probe.py on the molecule host; returns its JSON answer."""
    copied = host.ansible("copy", f"src={PROBE} dest={REMOTE_PROBE} mode=0644", check=False)
    assert not copied.get("failed"), copied

    def run(command: str, env: dict[str, str] | None = None, **arguments: str) -> dict[str, Any]:
        prefix = " ".join(f"{key}={shlex.quote(value)}" for key, value in (env or {}).items())
        result = host.run(f"{prefix} python3 {REMOTE_PROBE} {command} {shlex.quote(json.dumps(arguments))}")
        assert result.rc == 0, result.stderr
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="module")
def base(role_vars) -> str:
    address = role_vars["keycloak_listen_addresses"][0]
    address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    return f"http://{f'[{address}]' if ':' in address else address}:{role_vars['keycloak_port']}"


@pytest.fixture(scope="module")
def management(container, role_vars) -> str:
    address = container["NetworkSettings"]["Networks"][role_vars["keycloak_docker_network"]]["IPAddress"]
    return f"http://{address}:9000"


@pytest.fixture(scope="module")
def issuer(role_vars) -> str:
    return f"{role_vars['keycloak_hostname']}/realms/{role_vars['keycloak_realm']}"


@pytest.fixture(scope="module")
def admin(probe, base, role_vars):
    credentials = {
        "KC_PROBE_ADMIN": role_vars["keycloak_admin_username"],
        "KC_PROBE_PASSWORD": role_vars["keycloak_admin_password"],
    }

    def get(path: str) -> Any:
        answer = probe("admin", env=credentials, base=base, path=path)
        assert answer["status"] == 200, answer
        return answer["body"]

    return get


@pytest.fixture(scope="module")
def librechat_client(admin, role_vars) -> dict[str, Any]:
    found = admin(f"{role_vars['keycloak_realm']}/clients?clientId={role_vars['keycloak_librechat_client_id']}")
    assert len(found) == 1, found
    return found[0]


def present_users(role_vars) -> list[dict[str, Any]]:
    return [user for user in role_vars["keycloak_users"] if user.get("state", "present") == "present"]


def log_on_failure(host, role_vars) -> str:
    result = host.run(f"docker logs --tail 80 {role_vars['keycloak_container_name']}")
    return result.stdout + result.stderr


# --- the container -----------------------------------------------------------


def test_container_runs_the_image_in_production_mode(host, container, role_vars):
    state = container["State"]
    assert state["Running"], log_on_failure(host, role_vars)
    assert state["Health"]["Status"] == "healthy", log_on_failure(host, role_vars)
    assert container["Config"]["Image"] == role_vars["keycloak_image"]
    assert container["Config"]["Cmd"] == ["start", "--import-realm"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": role_vars["keycloak_log_max_size"], "max-file": str(role_vars["keycloak_log_max_file"])},
    }
    assert container["Config"]["Labels"]["parrotpark.role"] == "keycloak"
    assert role_vars["keycloak_docker_network"] in container["NetworkSettings"]["Networks"]
    # Production mode: started with `start`, and the log says so.
    started = host.run(f"docker logs {role_vars['keycloak_container_name']} 2>&1 | grep -c 'Profile prod activated'")
    assert started.stdout.strip() not in ("", "0"), log_on_failure(host, role_vars)


def test_container_environment(container, role_vars):
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    expected = {
        "KC_DB": "postgres",
        "KC_DB_URL": (
            f"jdbc:postgresql://{role_vars['keycloak_db_host']}:{role_vars['keycloak_db_port']}/{role_vars['keycloak_db_name']}"
        ),
        "KC_DB_USERNAME": role_vars["keycloak_db_username"],
        "KC_HOSTNAME": role_vars["keycloak_hostname"],
        "KC_PROXY_HEADERS": role_vars["keycloak_proxy_headers"],
        "KC_HTTP_ENABLED": "true",
        "KC_HEALTH_ENABLED": "true",
        "KC_METRICS_ENABLED": str(role_vars["keycloak_metrics_enabled"]).lower(),
        "KC_CACHE": role_vars["keycloak_cache"],
        "KC_BOOTSTRAP_ADMIN_USERNAME": role_vars["keycloak_admin_username"],
        **{key: str(value) for key, value in role_vars["keycloak_env"].items()},
    }
    assert {key: env.get(key) for key in expected} == expected


def test_secrets_kept_on_the_controller(host, role_vars):
    """The generated secrets are files of mode 0600 in the secrets directory, and Keycloak got them."""
    secrets = Path(role_vars["keycloak_secrets_dir"])
    for name in (
        "keycloak-admin-password",
        "keycloak-librechat-client-secret",
        f"postgres-{role_vars['keycloak_db_username']}",
    ):
        path = secrets / name
        assert path.is_file(), path
        assert path.stat().st_mode & 0o777 == 0o600, oct(path.stat().st_mode)
        assert len(path.read_text().split()[0]) == 32


def test_realm_file_readable_by_the_container_group_only(host, role_vars):
    directory = host.file(f"{role_vars['keycloak_config_dir']}/import")
    realm_file = host.file(f"{role_vars['keycloak_config_dir']}/import/realm.json")
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o750)
    assert (realm_file.user, realm_file.group, realm_file.mode) == ("root", "root", 0o640)
    assert json.loads(realm_file.content_string)["realm"] == role_vars["keycloak_realm"]


def test_ports_published_only_where_asked(container, role_vars):
    bindings = container["HostConfig"]["PortBindings"] or {}
    published = {
        (port, binding["HostIp"], binding["HostPort"])
        for port, entries in bindings.items()
        for binding in entries or []
    }
    expected = {
        ("8080/tcp", address, str(role_vars["keycloak_port"])) for address in role_vars["keycloak_listen_addresses"]
    }
    expected |= {
        ("9000/tcp", address, str(role_vars["keycloak_management_port"]))
        for address in role_vars["keycloak_management_listen_addresses"]
    }
    assert published == expected
    if not role_vars["keycloak_management_listen_addresses"]:
        assert "9000/tcp" not in bindings


# --- health and metrics -------------------------------------------------------


def test_management_port_health_and_metrics(probe, management, role_vars):
    ready = probe("get", url=f"{management}/health/ready")
    assert ready["status"] == 200, ready
    assert json.loads(ready["body"])["status"] == "UP"
    metrics = probe("get", url=f"{management}/metrics")
    if not role_vars["keycloak_metrics_enabled"]:
        assert metrics["status"] == 404
        return
    assert metrics["status"] == 200
    # The database pool and the HTTP server report: Keycloak's own metrics.
    assert re.search(r"^agroal_active_count", metrics["body"], re.M), metrics["body"][:500]
    assert re.search(r"^http_server_requests_seconds_count", metrics["body"], re.M)


def test_published_management_port_answers(probe, role_vars):
    for address in role_vars["keycloak_management_listen_addresses"]:
        ready = probe("get", url=f"http://{address}:{role_vars['keycloak_management_port']}/health/ready")
        assert ready["status"] == 200, ready


def test_health_and_metrics_not_on_the_proxied_port(probe, base):
    """What the reverse proxy forwards (port 8080) does not serve health or metrics."""
    for path in ("/health/ready", "/metrics"):
        assert probe("get", url=f"{base}{path}")["status"] == 404


# --- the realm ----------------------------------------------------------------


def test_discovery_document_served(probe, base, role_vars, issuer):
    answer = probe("discovery", base=base, realm=role_vars["keycloak_realm"])
    assert answer["status"] == 200, answer
    document = answer["document"]
    assert document["issuer"] == issuer
    assert document["authorization_endpoint"] == f"{issuer}/protocol/openid-connect/auth"
    assert document["token_endpoint"] == f"{issuer}/protocol/openid-connect/token"
    assert "authorization_code" in document["grant_types_supported"]


def test_realm_settings(admin, role_vars):
    realm = admin(role_vars["keycloak_realm"])
    assert realm["enabled"] is True
    assert realm["displayName"] == role_vars["keycloak_realm_display_name"]
    # Brute-force detection on the users' realm (issue 15): locked out after the failure factor, never for ever.
    assert realm["bruteForceProtected"] is bool(role_vars["keycloak_brute_force_protected"])
    if role_vars["keycloak_brute_force_protected"]:
        assert realm["failureFactor"] == int(role_vars["keycloak_brute_force_failure_factor"])
        assert realm["maxFailureWaitSeconds"] == int(role_vars["keycloak_brute_force_max_failure_wait_seconds"])
        assert realm["permanentLockout"] is bool(role_vars["keycloak_brute_force_permanent_lockout"])
    roles = {role["name"] for role in admin(f"{role_vars['keycloak_realm']}/roles")}
    if role_vars["keycloak_librechat_required_role"]:
        assert role_vars["keycloak_librechat_required_role"] in roles


def test_librechat_client_is_confidential_code_flow_only(librechat_client, role_vars):
    client = librechat_client
    assert client["enabled"] is True
    assert client["publicClient"] is False
    assert client["clientAuthenticatorType"] == "client-secret"
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client["serviceAccountsEnabled"] is False
    assert sorted(client["redirectUris"]) == sorted(role_vars["keycloak_librechat_redirect_uris"])


def test_reports_client_and_role_as_declared(admin, librechat_client, role_vars):
    """The cost report page's client (issue 17): the same kind of client as LibreChat's, its own redirect URIs and
    secret (the reports role's file), and the role that lets a user read the reports."""
    if not role_vars["keycloak_reports_client_id"]:
        return
    realm = role_vars["keycloak_realm"]
    found = admin(f"{realm}/clients?clientId={role_vars['keycloak_reports_client_id']}")
    assert len(found) == 1, found
    client = found[0]
    for key in (
        "enabled",
        "publicClient",
        "clientAuthenticatorType",
        "standardFlowEnabled",
        "implicitFlowEnabled",
        "directAccessGrantsEnabled",
        "serviceAccountsEnabled",
    ):
        assert client[key] == librechat_client[key], key
    assert sorted(client["redirectUris"]) == sorted(role_vars["keycloak_reports_redirect_uris"])
    assert all(uri.endswith("/reports/oauth2/callback") for uri in client["redirectUris"]), client["redirectUris"]
    path = Path(role_vars["keycloak_secrets_dir"]) / "keycloak-reports-client-secret"
    assert client["secret"] == path.read_text().split()[0] != librechat_client["secret"]
    roles = {role["name"] for role in admin(f"{realm}/roles")}
    assert role_vars["keycloak_reports_role"] in roles, roles


def test_client_secret_matches_the_controller_file(librechat_client, role_vars):
    """The secret Keycloak checks is the one in the file the librechat role reads."""
    path = Path(role_vars["keycloak_secrets_dir"]) / "keycloak-librechat-client-secret"
    assert librechat_client["secret"] == path.read_text().split()[0]
    assert librechat_client["secret"] == role_vars["keycloak_librechat_client_secret"]


def test_users_as_declared(admin, role_vars):
    realm = role_vars["keycloak_realm"]
    for user in role_vars["keycloak_users"]:
        found = admin(f"{realm}/users?username={user['username']}&exact=true")
        if user.get("state", "present") == "absent":
            assert found == []
            continue
        assert len(found) == 1, found
        assert found[0]["enabled"] is True
        if "email" in user:
            assert found[0]["email"] == user["email"]
        roles = {role["name"] for role in admin(f"{realm}/users/{found[0]['id']}/role-mappings/realm")}
        assert set(user.get("roles", [])) <= roles


def login(probe, base: str, role_vars, redirect_uri: str, *, username: str, password: str, **overrides: str) -> dict:
    """LibreChat's authorization code flow with the scenario's client, as oidc_probe.py runs it."""
    arguments = {
        "base": base,
        "public": role_vars["keycloak_hostname"],
        "realm": role_vars["keycloak_realm"],
        "client_id": role_vars["keycloak_librechat_client_id"],
        "secret": role_vars["keycloak_librechat_client_secret"],
        "redirect_uri": redirect_uri,
        "username": username,
        "password": password,
    }
    return probe("login", **{**arguments, **overrides})


def authorize(probe, base: str, role_vars, redirect_uri: str) -> dict:
    """Open the authorization endpoint: a login form for an accepted redirect URI, an error page otherwise.

    The made-up user is then refused by the form, so an accepted URI ends at step "login".
    """
    return login(probe, base, role_vars, redirect_uri, username="nobody", password="nothing-at-all-0000")


def allowed_users(role_vars) -> list[dict[str, Any]]:
    """The present users LibreChat's client lets in: all of them, or those with the required role."""
    required = role_vars["keycloak_librechat_required_role"]
    return [user for user in present_users(role_vars) if not required or required in user.get("roles", [])]


def test_user_without_the_required_role_is_told_why(probe, base, role_vars):
    """Keycloak itself refuses a user without keycloak_librechat_required_role, with the role's message, before
    any code reaches LibreChat (which would only send them back to its login page)."""
    required = role_vars["keycloak_librechat_required_role"]
    outsiders = [user for user in present_users(role_vars) if required and required not in user.get("roles", [])]
    if not outsiders:
        pytest.skip("this scenario has no required role, or no user without it")
    redirect_uri = role_vars["keycloak_librechat_redirect_uris"][0]
    for user in outsiders:
        answer = login(probe, base, role_vars, redirect_uri, username=user["username"], password=user["password"])
        assert answer["step"] == "login" and not answer["location"].startswith(redirect_uri), answer
        assert "Ask your organisation's administrator to give you access" in answer["error"], answer
        assert f"role {required}" in answer["error"], answer


def test_user_obtains_token_through_the_librechat_client(probe, base, role_vars, issuer):
    """Authorization code flow, as LibreChat does it: login form, redirect with a code, code + secret for tokens."""
    users = allowed_users(role_vars)
    if not users:
        pytest.skip("this scenario declares no keycloak_users")
    client_id = role_vars["keycloak_librechat_client_id"]
    for user in users:
        for redirect_uri in role_vars["keycloak_librechat_redirect_uris"]:
            answer = login(probe, base, role_vars, redirect_uri, username=user["username"], password=user["password"])
            assert answer["step"] == "done", answer
            assert answer["redirect"] == redirect_uri
            for token in (answer["access"], answer["id"]):
                assert token["iss"] == issuer
                assert token["azp"] == client_id
                assert token["preferred_username"] == user["username"]
            assert answer["id"]["aud"] == client_id
            assert answer["id"]["nonce"] == "probe-nonce"
            if "email" in user:
                assert answer["id"]["email"] == user["email"]
            # LibreChat's OPENID_REQUIRED_ROLE check reads realm_access.roles of the access token.
            required = role_vars["keycloak_librechat_required_role"]
            if required and required in user.get("roles", []):
                assert required in answer["access"]["realm_access"]["roles"]


def test_wrong_password_and_wrong_secret_refused(probe, base, role_vars):
    users = present_users(role_vars)
    if not users:
        pytest.skip("this scenario declares no keycloak_users")
    user, redirect_uri = users[0], role_vars["keycloak_librechat_redirect_uris"][0]
    wrong_password = login(probe, base, role_vars, redirect_uri, username=user["username"], password="not-the-pw-0000")
    assert (wrong_password["step"], wrong_password["error"]) == ("login", "Invalid username or password.")
    wrong_secret = login(
        probe,
        base,
        role_vars,
        redirect_uri,
        username=user["username"],
        password=user["password"],
        secret="not-the-secret-0000",
    )
    assert (wrong_secret["step"], wrong_secret["status"]) == ("token", 401)


def test_password_grant_refused_by_the_client(probe, base, role_vars):
    """The client is for the code flow only: a direct password grant is refused before any user check."""
    answer = probe(
        "direct",
        base=base,
        realm=role_vars["keycloak_realm"],
        client_id=role_vars["keycloak_librechat_client_id"],
        secret=role_vars["keycloak_librechat_client_secret"],
        username="nobody",
        password="nothing-at-all-0000",
    )
    assert (answer["status"], answer["error"], answer["has_token"]) == (400, "unauthorized_client", False)


def test_unknown_redirect_uri_refused(probe, base, role_vars):
    answer = authorize(probe, base, role_vars, WRONG_REDIRECT)
    assert (answer["step"], answer["status"], answer["error"]) == ("authorize", 400, "Invalid parameter: redirect_uri")
    accepted = authorize(probe, base, role_vars, role_vars["keycloak_librechat_redirect_uris"][0])
    assert accepted["step"] == "login", accepted  # got the form; the made-up user is then refused


# --- the role again, against this instance --------------------------------------


def test_changed_redirect_uri_is_applied(probe, base, role_vars):
    """New redirect URIs in the variables replace the old ones in Keycloak; back again afterwards."""
    original = role_vars["keycloak_librechat_redirect_uris"]
    moved = ["https://chat-moved.example.test/oauth/openid/callback"]
    result = converge({"keycloak_librechat_redirect_uris": moved})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    assert recap_changed(result) >= 1
    assert authorize(probe, base, role_vars, moved[0])["step"] == "login"
    refused = authorize(probe, base, role_vars, original[0])
    assert (refused["step"], refused["error"]) == ("authorize", "Invalid parameter: redirect_uri")

    result = converge({})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    assert recap_changed(result) >= 1
    assert authorize(probe, base, role_vars, original[0])["step"] == "login"
    assert authorize(probe, base, role_vars, moved[0])["step"] == "authorize"


def test_wrong_admin_password_stops_with_a_clear_error(host, role_vars):
    """A password Keycloak does not accept stops the role before it changes anything (the container stays)."""
    before = host.check_output(f"docker inspect --format '{{{{.Id}}}}' {role_vars['keycloak_container_name']}")
    result = converge({"keycloak_admin_password": "Wrong-admin-password-0123"})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-4000:]
    assert "refused the administrator login (HTTP 401" in output, output[-4000:]
    assert f"keycloak_admin_username '{role_vars['keycloak_admin_username']}' with keycloak_admin_password" in output
    assert recap_changed(result) == 0
    after = host.check_output(f"docker inspect --format '{{{{.Id}}}}' {role_vars['keycloak_container_name']}")
    assert after == before
