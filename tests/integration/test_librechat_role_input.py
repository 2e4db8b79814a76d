"""Bad input to the librechat role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host, so every case must stop with changed=0. Secrets are never
shown in the messages. (A librechat.yaml that LibreChat's schema rejects is
tested by the molecule scenarios, where the LibreChat image is at hand.)

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).
"""

from __future__ import annotations

import re
import socket

import pytest
from ansible_run import assert_refused, assert_stopped_unchanged, overlay, run_role_check, run_role_checks

BASE = {"librechat_domain": "example.test", "librechat_listen_addresses": ["127.0.0.1"], "librechat_port": 53080}
S3 = {
    "librechat_file_strategy": "s3",
    "librechat_s3_bucket": "chat-files",
    "librechat_s3_region": "fr-par",
    "librechat_s3_access_key_id": "SCWACCESSKEY0000000",
    "librechat_s3_secret_access_key": "s3-secret-0123456789abcdef",
}
HEX64 = "0123456789abcdef" * 4

CASES = {
    "empty domain": (
        {"librechat_domain": ""},
        [r"librechat_public_url must be a scheme and a host name with a domain", r"librechat_domain is ''"],
    ),
    "domain not set at all": ({"librechat_domain": None}, [r"librechat_public_url must be", r"parrotpark_domain"]),
    "public URL with a path": (
        {"librechat_public_url": "https://chat.example.test/chat"},
        [r"librechat_public_url must be a scheme and a host name", r"no path, no trailing\s+slash"],
    ),
    "public URL with a trailing slash": (
        {"librechat_public_url": "https://chat.example.test/"},
        [r"librechat_public_url must be a scheme and a host name", r"got 'https://chat.example.test/'"],
    ),
    "issuer with a trailing slash": (
        {"librechat_openid_issuer": "https://auth.example.test/realms/parrotpark/"},
        [r"librechat_openid_issuer must be the realm's issuer URL without a trailing slash"],
    ),
    "scope without openid": (
        {"librechat_openid_scope": "profile email"},
        [r"librechat_openid_scope must be scopes that include openid"],
    ),
    "callback not a path": (
        {"librechat_openid_callback_path": "oauth/openid/callback"},
        [r"librechat_openid_callback_path must be a path starting with /"],
    ),
    "nobody can log in": (
        {"librechat_openid_enabled": False},
        [r"Nobody could log in: librechat_allow_email_login is false and OpenID login is off"],
    ),
    "creds key too short": (
        {"librechat_creds_key": "0123456789abcdef"},
        [r"librechat_creds_key must be exactly 64 hexadecimal digits \(32 bytes\); it has 16 characters"],
    ),
    "creds key not hexadecimal": (
        {"librechat_creds_key": "z" * 64},
        [r"librechat_creds_key must be exactly 64 hexadecimal digits"],
    ),
    "creds iv of the key's length": (
        {"librechat_creds_iv": HEX64},
        [r"librechat_creds_iv must be exactly 32 hexadecimal digits \(16 bytes\); it has 64 characters"],
    ),
    "short JWT secret": (
        {"librechat_jwt_secret": "short-jwt-secret"},
        [r"librechat_jwt_secret must have at least 32 characters without spaces \(it has 16\)"],
    ),
    "short session secret": (
        {"librechat_openid_session_secret": "short-session"},
        [r"librechat_openid_session_secret must have at least 32 characters without spaces \(it has 13\)"],
    ),
    "short client secret": (
        {"librechat_openid_client_secret": "tiny"},
        [r"librechat_openid_client_secret must have at least 16 characters without spaces \(it has 4\)"],
    ),
    "LiteLLM key without sk-": (
        {"librechat_litellm_api_key": "master-key-0123456789abcdef"},
        [r"librechat_litellm_api_key must start with sk-"],
    ),
    "LiteLLM URL not a URL": (
        {"librechat_litellm_base_url": "parrotpark-litellm:4000"},
        [r"librechat_litellm_base_url must be an http\(s\) URL \(got 'parrotpark-litellm:4000'\)"],
    ),
    "model name with a space": (
        {"librechat_litellm_models": ["mistral nemo"]},
        [r"librechat_litellm_models must list model names\s+without\s+spaces"],
    ),
    "header name with a space": (
        {"librechat_litellm_user_header": "x end user"},
        [r"librechat_litellm_user_header must be empty or an HTTP header name", r"'x end user'"],
    ),
    "unknown user field": (
        {"librechat_litellm_user_field": "phone"},
        [r"librechat_litellm_user_field", r"id, email, username, name"],
    ),
    "unknown file strategy": (
        {"librechat_file_strategy": "ftp"},
        [r"librechat_file_strategy", r"local, s3"],
    ),
    "s3 without a bucket": (
        {**S3, "librechat_s3_bucket": ""},
        [r"librechat_s3_bucket must be a bucket name; got ''"],
    ),
    "s3 endpoint without scheme": (
        {**S3, "librechat_s3_endpoint": "s3.fr-par.scw.cloud"},
        [r"librechat_s3_endpoint must be empty\s+\(AWS\) or the URL of the S3 API"],
    ),
    "no MongoDB at all": (
        {"librechat_mongodb_enabled": False},
        [r"librechat_mongo_uri must be empty .* and\s+set when librechat_mongodb_enabled is false"],
    ),
    "MongoDB URI of another scheme": (
        {"librechat_mongo_uri": "postgresql://db/chat"},
        [r"librechat_mongo_uri must be empty", r"mongodb:// or mongodb\+srv:// URI"],
    ),
    "RAG database name not an identifier": (
        {"librechat_rag_db_name": "rag-db"},
        [r"librechat_rag_db_name must be a lower-case SQL identifier .*\(got 'rag-db'\)"],
    ),
    "short RAG database password": (
        {"librechat_rag_db_password": "0123456789"},
        [r"librechat_rag_db_password must have at least 16 characters without spaces \(it has 10\)"],
    ),
    "short JWT refresh secret": (
        {"librechat_jwt_refresh_secret": "short-refresh"},
        [r"librechat_jwt_refresh_secret must have at least 32 characters without spaces \(it has 13\)"],
    ),
    "short LiteLLM key": (
        {"librechat_litellm_api_key": "sk-tiny-key"},
        [r"librechat_litellm_api_key must have at least 16 characters without spaces \(it has 11\)"],
    ),
    "empty endpoint name": (
        {"librechat_litellm_endpoint_name": ""},
        [r"librechat_litellm_endpoint_name must not be empty \(got ''\)"],
    ),
    "s3 without a region": (
        {**S3, "librechat_s3_region": ""},
        [r"librechat_s3_region must not be empty"],
    ),
    "s3 without an access key id": (
        {**S3, "librechat_s3_access_key_id": ""},
        [r"librechat_s3_access_key_id must not be empty"],
    ),
    "s3 without a secret access key": (
        {**S3, "librechat_s3_secret_access_key": ""},
        [r"librechat_s3_secret_access_key must not be empty"],
    ),
    "RAG database host with a scheme": (
        {"librechat_rag_db_host": "postgres://db"},
        [r"librechat_rag_db_host must be a host name or an IP address \(got 'postgres://db'\)"],
    ),
    "RAG database port out of range": (
        {"librechat_rag_db_port": 0},
        [r"librechat_rag_db_port must be between 1 and 65535 \(got 0\)"],
    ),
    "RAG API port out of range": (
        {"librechat_rag_api_port": 65536},
        [r"librechat_rag_api_port must be between 1 and 65535 \(got 65536\)"],
    ),
    "RAG database user not an identifier": (
        {"librechat_rag_db_username": "Rag"},
        [r"librechat_rag_db_username must be a lower-case SQL identifier .*\(got 'Rag'\)"],
    ),
    "RAG embeddings model with a space": (
        {"librechat_rag_embeddings_model": "text embed"},
        [r"librechat_rag_embeddings_model must be a model name; got 'text embed'"],
    ),
    "listen address not an IP": (
        {"librechat_listen_addresses": ["localhost"]},
        [r"librechat_listen_addresses must list at least one IP address \(got \['localhost'\]\)"],
    ),
    "nothing published": (
        {"librechat_listen_addresses": []},
        [r"librechat_listen_addresses must list at least one IP address \(got \[\]\)"],
    ),
    "extra host with an address that is not an IP": (
        {"librechat_extra_hosts": {"auth.example.test": "gateway"}},
        [r"librechat_extra_hosts must map host names to IP addresses", r"'auth.example.test': 'gateway'"],
    ),
    "extra host name with a space": (
        {"librechat_extra_hosts": {"auth example": "10.0.0.2"}},
        [r"librechat_extra_hosts must map host names to IP addresses", r"'auth example': '10.0.0.2'"],
    ),
    "port out of range": ({"librechat_port": 70000}, [r"librechat_port must be between 1 and 65535 \(got 70000\)"]),
    "wrong type": ({"librechat_port": "eighty"}, [r"librechat_port", r"int"]),
    "bad environment name": (
        {"librechat_env": {"DEBUG LOGGING": "true"}},
        [r"librechat_env must map environment variable names .* not names: \['DEBUG LOGGING'\]"],
    ),
    "environment value with a line break": (
        {"librechat_app_title": "Parrot\npark"},
        [r"would hold a line break, which an environment file\s+cannot: APP_TITLE"],
    ),
    "relative config dir": (
        {"librechat_config_dir": "etc/librechat"},
        [r"librechat_config_dir must be an absolute path"],
    ),
    "same container names": (
        {"librechat_rag_api_container_name": "parrotpark-librechat"},
        [r"the three\s+container names different"],
    ),
    "no health wait": (
        {"librechat_health_retries": 0},
        [r"librechat_health_retries\s+and librechat_health_delay at least 1"],
    ),
}

SECRETS = (
    "0123456789abcdef",
    "short-jwt-secret",
    "short-refresh",
    "short-session",
    "master-key-0123456789abcdef",
    "sk-tiny-key",
    "s3-secret-0123",
)


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each."""
    return run_role_checks(
        tmp_path_factory, "librechat", {case: overlay(BASE, spec[0]) for case, spec in CASES.items()}
    )


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_refused(refusals[case], patterns, SECRETS)


def test_valid_input_passes_and_generates_the_secrets(tmp_path):
    """Good values get past every check; the generated secrets are on the controller, 0600, in LibreChat's form."""
    variables = {
        **BASE,
        **S3,
        "librechat_openid_required_role": "chat-user",
        "librechat_env": {"DEBUG_LOGGING": "true"},
        "librechat_extra_hosts": {"auth.example.test": "10.0.0.2"},
    }
    result = run_role_check(tmp_path, "librechat", variables)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Check that the port to publish is free" in output
    assert "AWS_SECRET_ACCESS_KEY" not in output and S3["librechat_s3_secret_access_key"] not in output
    secrets = tmp_path / "secrets"
    forms = {
        "localhost/librechat-creds-key": r"[0-9a-f]{64}",
        "localhost/librechat-creds-iv": r"[0-9a-f]{32}",
        "localhost/librechat-jwt-secret": r"[0-9a-f]{64}",
        "localhost/librechat-jwt-refresh-secret": r"[0-9a-f]{64}",
        "localhost/librechat-openid-session-secret": r"[0-9a-f]{64}",
        "localhost/keycloak-librechat-client-secret": r"[A-Za-z0-9]{32}",
        "localhost/postgres-rag": r"[A-Za-z0-9]{32}",
        "litellm-master-key": r"(sk-)?[A-Za-z0-9]{48}",
    }
    for name, form in forms.items():
        path = secrets / name
        assert path.is_file(), name
        assert path.stat().st_mode & 0o777 == 0o600, name
        assert re.fullmatch(form, path.read_text().split()[0]), name
    first = {name: (secrets / name).read_text() for name in forms}
    again = run_role_check(tmp_path, "librechat", variables)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {name: (secrets / name).read_text() for name in forms} == first, "a second run reuses the secrets"


def test_port_in_use_fails_before_any_change(tmp_path):
    """A port another program listens on is reported with the variable, before anything changes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run_role_check(tmp_path, "librechat", {**BASE, "librechat_port": port})
    assert_stopped_unchanged(result, [rf"librechat_port: another program already listens on 127\.0\.0\.1:{port}"])
