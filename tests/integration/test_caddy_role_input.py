"""Bad input to the caddy role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and preflight asserts come before any task that could change
the host, so every case must stop with changed=0.

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from ansible_run import assert_stopped_unchanged, run_role_check, run_role_checks

VALID = {"caddy_domain": "llm.example.com"}


def run_role(tmp_path: Path, variables: dict) -> subprocess.CompletedProcess[str]:
    return run_role_check(tmp_path, "caddy", variables)


CASES = {
    "missing domain": ({}, [r"missing required arguments: caddy_domain"]),
    "empty domain": ({"caddy_domain": ""}, [r"caddy_domain must be a DNS name such as example.com .* got ''"]),
    "domain with scheme": (
        {"caddy_domain": "https://example.com"},
        [r"caddy_domain must be a DNS name .* got 'https://example.com'"],
    ),
    "domain with space": ({"caddy_domain": "my domain.com"}, [r"caddy_domain must be a DNS name"]),
    "domain label too long": ({"caddy_domain": "a" * 64 + ".com"}, [r"caddy_domain must be a DNS name"]),
    "bad site host": (
        {**VALID, "caddy_api_host": "api_server.example.com"},
        [r"caddy_api_host must be a DNS name .* got 'api_server.example.com'"],
    ),
    "two sites on one host": (
        {**VALID, "caddy_api_host": "chat.llm.example.com"},
        [r"Two sites share a host name \(chat.llm.example.com\)"],
    ),
    "extra site on a built-in host": (
        {**VALID, "caddy_extra_sites": [{"host": "auth.llm.example.com", "upstream": "wiki:80"}]},
        [r"Two sites share a host name \(auth.llm.example.com\)"],
    ),
    "unknown site": ({**VALID, "caddy_sites": ["chat", "docs"]}, [r"caddy_sites", r"chat, api, auth"]),
    "site twice": ({**VALID, "caddy_sites": ["api", "api"]}, [r"caddy_sites lists a site more than once"]),
    "upstream without port": (
        {**VALID, "caddy_api_upstream": "parrotpark-litellm"},
        [r"caddy_api_upstream must be host:port .* got 'parrotpark-litellm'"],
    ),
    "upstream port out of range": (
        {**VALID, "caddy_chat_upstream": "librechat:70000"},
        [r"caddy_chat_upstream must be host:port .* got 'librechat:70000'"],
    ),
    "keycloak management port": (
        {**VALID, "caddy_auth_upstream": "parrotpark-keycloak:9000"},
        [r"caddy_auth_upstream points at port 9000, Keycloak's management port"],
    ),
    "extra site with upstream and directives": (
        {**VALID, "caddy_extra_sites": [{"host": "wiki.llm.example.com", "upstream": "wiki:80", "directives": "x"}]},
        [r"caddy_extra_sites: entry .*wiki.llm.example.com.* is not valid"],
    ),
    "extra site with neither": (
        {**VALID, "caddy_extra_sites": [{"host": "wiki.llm.example.com"}]},
        [r"caddy_extra_sites: entry .*wiki.llm.example.com.* is not valid"],
    ),
    "extra site without host": (
        {**VALID, "caddy_extra_sites": [{"upstream": "wiki:80"}]},
        [r"missing required arguments: host", r"caddy_extra_sites"],
    ),
    "port collision": (
        {**VALID, "caddy_http_port": 8443, "caddy_https_port": 8443},
        [r"caddy_http_port and caddy_https_port must differ; both are 8443"],
    ),
    "port out of range": (
        {**VALID, "caddy_https_port": 65536},
        [r"caddy_https_port must be between 1 and 65535 \(got 65536\)"],
    ),
    "http port zero": ({**VALID, "caddy_http_port": 0}, [r"caddy_http_port must be between 1 and 65535 \(got 0\)"]),
    "port not a number": ({**VALID, "caddy_http_port": "eighty"}, [r"caddy_http_port", r"int"]),
    "bind address is a name": (
        {**VALID, "caddy_bind_addresses": ["localhost"]},
        [r"caddy_bind_addresses must list at least one IP address \(got \['localhost'\]\)"],
    ),
    "bind address with port": (
        {**VALID, "caddy_bind_addresses": ["127.0.0.1:80"]},
        [r"caddy_bind_addresses must list at least one IP address \(got \['127.0.0.1:80'\]\)"],
    ),
    "unknown tls mode": ({**VALID, "caddy_tls_mode": "letsencrypt"}, [r"caddy_tls_mode", r"auto, internal"]),
    "route on caddy's admin port": (
        {**VALID, "caddy_routes": [{"name": "gpu-2019", "port": 2019}]},
        [r"caddy_routes: entry .* is not valid", r"other than 80, 443 and 2019"],
    ),
    "route name with a slash": (
        {**VALID, "caddy_routes": [{"name": "../gpu", "port": 8000}]},
        [r"caddy_routes: entry .* is not valid"],
    ),
    "two routes on one port": (
        {**VALID, "caddy_routes": [{"name": "a", "port": 8000}, {"name": "b", "port": 8000}]},
        [r"caddy_routes: every route needs its own name and its own port"],
    ),
    "offline time as words": (
        {**VALID, "caddy_offline_until": "8am"},
        [r"caddy_offline_until must be a time HH:MM .* got '8am'"],
    ),
    "offline time out of range": (
        {**VALID, "caddy_offline_until": "24:00"},
        [r"caddy_offline_until must be a time HH:MM .* got '24:00'"],
    ),
    "offline message with braces": (
        {**VALID, "caddy_offline_message": "Offline {$HOME}"},
        [r"caddy_offline_message must be one line of text without backticks or braces"],
    ),
    "header value with a quote": (
        {**VALID, "caddy_security_headers": {"X-Test": 'a"b'}},
        [r"caddy_security_headers: 'X-Test: a\"b' is not valid"],
    ),
    "header name with a space": (
        {**VALID, "caddy_security_headers": {"X Test": "1"}},
        [r"caddy_security_headers: 'X Test: 1' is not valid"],
    ),
    "log rotation zero": (
        {**VALID, "caddy_log_roll_keep": 0},
        [r"caddy_log_roll_keep must be at least 1 \(got 0\)"],
    ),
    "log roll size zero": (
        {**VALID, "caddy_log_roll_size_mb": 0},
        [r"caddy_log_roll_size_mb must be at least 1 \(got 0\)"],
    ),
    "log roll days zero": (
        {**VALID, "caddy_log_roll_keep_days": 0},
        [r"caddy_log_roll_keep_days must be at least 1 \(got 0\)"],
    ),
    "acme email": ({**VALID, "caddy_acme_email": "ops"}, [r"caddy_acme_email must be an e-mail address"]),
    "acme ca over http": (
        {**VALID, "caddy_acme_ca": "http://acme.example.com/directory"},
        [r"caddy_acme_ca must be the https:// URL of an ACME directory"],
    ),
    "relative config dir": (
        {**VALID, "caddy_config_dir": "etc/caddy"},
        [r"caddy_config_dir must be an absolute path \(got 'etc/caddy'\)"],
    ),
    "relative log dir": (
        {**VALID, "caddy_log_dir": "var/log/caddy"},
        [r"caddy_log_dir must be an absolute path \(got 'var/log/caddy'\)"],
    ),
    "config dir with a colon": (
        {**VALID, "caddy_config_dir": "/etc/caddy:ro"},
        [r"caddy_config_dir and caddy_log_dir must be two different paths without spaces or colons"],
    ),
    "config dir and log dir the same": (
        {**VALID, "caddy_config_dir": "/srv/caddy", "caddy_log_dir": "/srv/caddy/"},
        [r"caddy_config_dir and caddy_log_dir must be two different paths .* got '/srv/caddy' and '/srv/caddy/'"],
    ),
    "same volume twice": (
        {**VALID, "caddy_config_volume": "parrotpark-caddy-data"},
        [r"caddy_data_volume and caddy_config_volume must each be a Docker volume name .* and differ"],
    ),
    "admin network not a network": (
        {**VALID, "caddy_auth_admin_networks": ["10.0.0.0/8", "office"]},
        [r"caddy_auth_admin_networks must list client networks in CIDR notation .* got \[\"10.0.0.0/8\", \"office\"\]"],
    ),
    "api admin network with a bad prefix": (
        {**VALID, "caddy_api_admin_networks": ["192.0.2.0/33"]},
        [r"caddy_api_admin_networks must list client networks in CIDR notation"],
    ),
    "public path without a slash": (
        {**VALID, "caddy_api_public_paths": ["v1/*"]},
        [r"caddy_api_public_paths must list at least one path pattern, each starting with /"],
    ),
    "no public path": (
        {**VALID, "caddy_auth_public_paths": []},
        [r"caddy_auth_public_paths must list at least one path pattern"],
    ),
    "keycloak admin console made public": (
        {**VALID, "caddy_auth_public_paths": ["/realms/*", "/Admin/*"]},
        [r"caddy_auth_public_paths must not list Keycloak's admin console or master realm \(/Admin/\*\)"],
    ),
    "master realm made public": (
        {**VALID, "caddy_auth_public_paths": ["/realms/master/*"]},
        [r"caddy_auth_public_paths must not list Keycloak's admin console or master realm \(/realms/master/\*\)"],
    ),
    "every auth path made public": (
        {**VALID, "caddy_auth_public_paths": ["/*"]},
        [r"caddy_auth_public_paths must not list Keycloak's admin console or master realm"],
    ),
    "container name with a slash": (
        {**VALID, "caddy_container_name": "parrotpark/caddy"},
        [r"caddy_container_name and caddy_docker_network must be Docker names"],
    ),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    return run_role_checks(tmp_path_factory, "caddy", {case: spec[0] for case, spec in CASES.items()})


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_stopped_unchanged(refusals[case], patterns)


def test_valid_input_passes_every_check(tmp_path):
    """Non-default but valid values pass every check; the run stops at the last one, given a bad value on purpose."""
    variables = {
        "caddy_domain": "lab.example.internal",
        "caddy_chat_host": "talk.example.org",
        "caddy_api_upstream": "http://api-double:8082",
        "caddy_extra_sites": [
            {"host": "docs.example.org", "upstream": "docs:8000"},
            {"host": "status.example.org", "directives": 'respond "ok" 200'},
        ],
        "caddy_bind_addresses": ["127.0.0.1", "::1"],
        "caddy_http_port": 8080,
        "caddy_https_port": 8443,
        "caddy_offline_until": "08:00",
        "caddy_acme_email": "ops@example.org",
        "caddy_data_volume": "/srv/caddy/data",
        "caddy_auth_admin_networks": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"],
        "caddy_api_admin_networks": ["10.0.0.0/8"],
        "caddy_api_public_paths": ["/v1/*", "/health/liveliness", "/chat/completions"],
        "caddy_health_retries": 0,
    }
    result = run_role(tmp_path, variables)
    assert_stopped_unchanged(result, [r"caddy_health_retries and caddy_health_delay at least 1 \(got 0 and"])
    # One failure only (a failed loop item reads "failed:", a failed task "fatal:").
    assert len(re.findall(r"^(?:fatal|failed): ", result.stdout + result.stderr, re.MULTILINE)) == 1


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_object_exists(kind: str, name: str) -> bool:
    return subprocess.run(["docker", kind, "inspect", name], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not engine_answers(), reason="needs a Docker engine (the test setup starts one)")
def test_check_mode_on_a_fresh_host_predicts_and_changes_nothing(tmp_path):
    """Without the image, the network or the volumes, check mode runs through, reports the changes, makes none."""
    tag = tmp_path.name[-12:].lower().replace("_", "-")
    names = {"network": f"pp-check-{tag}", "data": f"pp-check-data-{tag}", "config": f"pp-check-config-{tag}"}
    variables = {
        "caddy_domain": "check.example.com",
        "caddy_image": f"parrotpark-check/caddy:not-pulled-{tag}",
        "caddy_container_name": f"pp-check-caddy-{tag}",
        "caddy_docker_network": names["network"],
        "caddy_data_volume": names["data"],
        "caddy_config_volume": names["config"],
        "caddy_config_dir": str(tmp_path / "etc"),
        "caddy_log_dir": str(tmp_path / "log"),
    }
    result = run_role(tmp_path, variables)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"pp-check-caddy-{tag} would be created once its image and network exist" in output
    recap = re.search(r"localhost\s*:.*changed=(\d+).*failed=(\d+)", output)
    assert recap and int(recap.group(1)) > 0 and recap.group(2) == "0", output
    assert not docker_object_exists("network", names["network"])
    for volume in (names["data"], names["config"]):
        assert not docker_object_exists("volume", volume)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "log").exists()
