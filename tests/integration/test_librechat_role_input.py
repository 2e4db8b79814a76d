"""Bad input to the librechat role fails before anything changes, naming the variable.

The role runs in check mode against this machine (connection local): argument
spec validation and the preflight checks come before any task that could
change the host, so every case must stop with changed=0. Secrets are never
shown in the messages. (A librechat.yaml that LibreChat's schema rejects is
tested by the molecule scenarios, where the LibreChat image is at hand.)

The cases run in one ansible-playbook, a host each (ansible_run.run_role_checks).

What the role makes of good input (the models LibreChat offers, the default
model spec, the RAG API's environment) is read from the role's variables as
the role computes them (``rendered``), without a host or a container; the
molecule scenarios check the same on the installed file and the containers.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
from ansible_run import (
    ansible_env,
    assert_refused,
    assert_stopped_unchanged,
    overlay,
    run_playbook,
    run_role_check,
    run_role_checks,
)

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
        [r"librechat_litellm_models must list model names\s+without\s+spaces", r"wrong: \['mistral nemo'\]"],
    ),
    "model entry of an unknown mode": (
        {"librechat_litellm_models": ["mistral-nemo-12b", {"name": "rerank-1", "mode": "rerank"}]},
        [r"librechat_litellm_models must list model names without spaces or LiteLLM model entries", r"'rerank-1'"],
    ),
    "only an embedding model": (
        {"librechat_litellm_models": [{"name": "bge-m3", "mode": "embedding"}]},
        [r"librechat_litellm_models must hold at least one chat model", r"LibreChat offers only those"],
    ),
    "embedding model listed as a chat model": (
        {"librechat_litellm_models": ["mistral-nemo-12b", "bge-m3"]},
        [r"librechat_litellm_models offers bge-m3, the RAG API's embedding model \(librechat_rag_embeddings_model\)"],
    ),
    "file search without the RAG API": (
        {"librechat_rag_api_enabled": False, "librechat_file_search": True},
        [
            r"librechat_file_search is true, but librechat_rag_api_enabled is false: File Search reads the documents"
            r" through the RAG API"
        ],
    ),
    "file search not a boolean": (
        {"librechat_file_search": "sometimes"},
        [r"librechat_file_search"],
    ),
    "default model not offered": (
        {"librechat_default_model": "llama-3-8b"},
        [
            r"librechat_default_model must be one of the chat models LibreChat offers, the chat entries of"
            r" librechat_litellm_models \(mistral-nemo-12b\); got 'llama-3-8b'"
        ],
    ),
    "default model is the embedding model": (
        {
            "litellm_models": [
                {"name": "mistral-nemo-12b", "mode": "chat"},
                {"name": "bge-m3", "mode": "embedding"},
                {"name": "qwen-14b"},
            ],
            "librechat_default_model": "bge-m3",
        },
        [r"librechat_default_model must be one of the chat models .* \(mistral-nemo-12b, qwen-14b\); got 'bge-m3'"],
    ),
    "bad RAG API environment name": (
        {"librechat_rag_api_env": {"CHUNK SIZE": "1000"}},
        [r"librechat_rag_api_env must map environment variable names .* not names: \['CHUNK SIZE'\]"],
    ),
    "RAG API environment turns the context check on": (
        {"librechat_rag_api_env": {"RAG_CHECK_EMBEDDING_CTX_LENGTH": True}},
        [
            r"librechat_rag_api_env sets RAG_CHECK_EMBEDDING_CTX_LENGTH to 'True' while the RAG API's\s+embeddings"
            r" are OpenAI-compatible",
            r"token ids to\s+bge-m3",
        ],
    ),
    "RAG API environment value with a line break": (
        {"librechat_rag_api_env": {"CHUNK_SIZE": "10\n00"}},
        [r"would hold a line break, which an environment file\s+cannot: CHUNK_SIZE"],
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
    "login limit below one OpenID login": (
        {"librechat_login_max": 1},
        [r"librechat_login_max must be between 2 and 1000000 \(got 1\)", r"An OpenID login counts twice"],
    ),
    "login window of zero minutes": (
        {"librechat_login_window": 0},
        [r"librechat_login_window must be between 1 and 1440 \(got 0\)"],
    ),
    "no registration allowed by the limit": (
        {"librechat_register_max": 0},
        [r"librechat_register_max must be between 1 and 1000000 \(got 0\)"],
    ),
    "registration window longer than a day": (
        {"librechat_register_window": 1441},
        [r"librechat_register_window must be between 1 and 1440 \(got 1441\)"],
    ),
    "login limit not a number": ({"librechat_login_max": "many"}, [r"librechat_login_max", r"int"]),
    "MongoDB volume removed while the role runs MongoDB": (
        {"librechat_mongodb_remove_volume": True},
        [
            r"librechat_mongodb_remove_volume is true while librechat_mongodb_enabled is true",
            r"only when it stops running MongoDB itself",
        ],
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
        "librechat_rag_api_env": {"CHUNK_SIZE": 1000, "RAG_CHECK_EMBEDDING_CTX_LENGTH": "false"},
        "librechat_litellm_models": ["mistral-nemo-12b", {"name": "bge-m3", "mode": "embedding"}, "qwen-14b"],
        "librechat_default_model": "qwen-14b",
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


# --- what the role makes of good input ---------------------------------------------------

LITELLM_MODELS = [
    {"name": "mistral-nemo-12b", "served_name": "mistral-nemo-12b", "port": 8000, "mode": "chat"},
    {"name": "bge-m3", "served_name": "bge-m3", "port": 8001, "mode": "embedding"},
    {"name": "qwen-14b", "served_name": "qwen-14b", "port": 8002},
]


def rendered(tmp_path, variables: dict) -> dict:
    """librechat.yaml, the RAG API's environment (without secrets) and the default model, as the role computes
    them from the variables (its secrets entry point loads the role's defaults and vars; nothing is deployed)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "rendered.json"
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        "- name: Compute the role's configuration\n"
        "  hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Load the role's variables\n"
        "      ansible.builtin.include_role:\n"
        "        name: parrotpark.llm.librechat\n"
        "        tasks_from: secrets\n"
        "        public: true\n"
        "    - name: Write what the role would install\n"
        "      ansible.builtin.copy:\n"
        "        content: >-\n"
        "          {{ {'config': _librechat_config, 'default_model': librechat_default_model,\n"
        "              'rag_env': _librechat_rag_api_env | dict2items\n"
        "                         | rejectattr('key', 'search', 'PASSWORD|KEY|SECRET') | items2dict,\n"
        "              'env': _librechat_env | dict2items\n"
        "                     | rejectattr('key', 'search', 'PASSWORD|KEY|SECRET|CREDS|URI')\n"
        "                     | items2dict} | to_json }}\n"
        f"        dest: {json.dumps(str(out))}\n"
        "        mode: '0600'\n"
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**BASE, "parrotpark_secrets_dir": str(tmp_path / "secrets"), **variables}))
    result = run_playbook("-i", "localhost,", str(playbook), "-e", f"@{extra}", env=ansible_env())
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def offered(config: dict) -> tuple[dict, list[dict], dict]:
    """The custom endpoint's models, the model specs and the modelSpecs settings of a librechat.yaml."""
    (endpoint,) = config["endpoints"]["custom"]
    return endpoint["models"], config["modelSpecs"]["list"], config["modelSpecs"]


@pytest.mark.parametrize(
    ("variables", "chat_models", "default_model"),
    [
        pytest.param({}, ["mistral-nemo-12b"], "mistral-nemo-12b", id="defaults, no litellm_models"),
        pytest.param(
            {"litellm_models": LITELLM_MODELS}, ["mistral-nemo-12b", "qwen-14b"], "mistral-nemo-12b", id="litellm"
        ),
        pytest.param(
            {"litellm_models": LITELLM_MODELS, "librechat_default_model": "qwen-14b"},
            ["mistral-nemo-12b", "qwen-14b"],
            "qwen-14b",
            id="another default",
        ),
        pytest.param(
            {"librechat_litellm_models": [{"name": "bge-m3", "mode": "embedding"}, "lab-chat-large", "lab-chat-small"]},
            ["lab-chat-large", "lab-chat-small"],
            "lab-chat-large",
            id="names and entries",
        ),
    ],
)
def test_only_chat_models_offered_and_the_default_spec(tmp_path, variables, chat_models, default_model):
    """LiteLLM's list is not fetched; the endpoint and the model specs offer the chat models, never bge-m3; the
    default spec is librechat_default_model on the custom endpoint, and LibreChat keeps the menu and Agents."""
    result = rendered(tmp_path, variables)
    config = result["config"]
    models, specs, settings = offered(config)
    assert models == {"default": chat_models, "fetch": False}
    assert "bge-m3" not in models["default"]
    assert [spec["name"] for spec in specs] == chat_models
    assert all(spec["preset"] == {"endpoint": "Parrotpark", "model": spec["name"]} for spec in specs)
    assert [spec["name"] for spec in specs if spec.get("default")] == [default_model]
    assert result["default_model"] == default_model
    assert (settings["prioritize"], settings["enforce"], settings["addedEndpoints"]) == (True, False, ["agents"])
    assert config["interface"] == {"modelSelect": True, "parameters": True, "presets": True, "fileSearch": True}
    assert [spec["fileSearch"] for spec in specs] == [True] * len(chat_models)


@pytest.mark.parametrize(
    ("variables", "on"),
    [
        pytest.param({}, True, id="default with the RAG API"),
        pytest.param({"librechat_rag_api_enabled": False}, False, id="default without the RAG API"),
        pytest.param({"librechat_file_search": False}, False, id="turned off"),
    ],
)
def test_file_search_from_the_plain_chat(tmp_path, variables, on):
    """Every model spec starts its conversations with File Search on, and users may use it, when the RAG API
    runs (issue 16, item 2); off without the RAG API or when turned off."""
    config = rendered(tmp_path, {"litellm_models": LITELLM_MODELS, **variables})["config"]
    _models, specs, _settings = offered(config)
    assert [spec["fileSearch"] for spec in specs] == [on, on]
    assert config["interface"]["fileSearch"] is on
    # Uploads: with File Search, documents to the tool and their text to a turn without it; without, a PDF
    # as its text. Never a PDF as a file part, which vLLM refuses.
    if on:
        assert config["fileConfig"] == {
            "defaultLLMDeliveryPath": {
                "fallback": "none",
                "overrides": {"image/*": "provider", "audio/*": "provider", "video/*": "provider"},
            },
            "textFallbackWithoutTools": True,
        }
    else:
        assert config["fileConfig"] == {"defaultLLMDeliveryPath": {"overrides": {"application/pdf": "text"}}}


def test_rag_api_environment_keeps_the_context_check_off(tmp_path):
    """RAG_CHECK_EMBEDDING_CTX_LENGTH=false by default and with librechat_rag_api_env, whose values join the
    environment as text and win over the role's own."""
    assert rendered(tmp_path / "default", {})["rag_env"]["RAG_CHECK_EMBEDDING_CTX_LENGTH"] == "false"
    extra = {"CHUNK_SIZE": 1000, "EMBEDDINGS_CHUNK_SIZE": "50", "DB_PORT": 6432}
    env = rendered(tmp_path / "extra", {"librechat_rag_api_env": extra})["rag_env"]
    assert env["RAG_CHECK_EMBEDDING_CTX_LENGTH"] == "false"
    assert (env["CHUNK_SIZE"], env["EMBEDDINGS_CHUNK_SIZE"], env["DB_PORT"]) == ("1000", "50", "6432")
    assert env["EMBEDDINGS_PROVIDER"] == "openai"


def test_librechat_environment_limits_and_no_rag_port(tmp_path):
    """LibreChat's login and registration limits come from the role's variables (as text), with defaults an
    office behind one NAT address can live with; RAG_PORT, which LibreChat never reads, is not set."""
    env = rendered(tmp_path / "default", {})["env"]
    assert (env["LOGIN_MAX"], env["LOGIN_WINDOW"], env["REGISTER_MAX"], env["REGISTER_WINDOW"]) == (
        "300",
        "5",
        "50",
        "60",
    )
    assert env["RAG_API_URL"] == "http://parrotpark-librechat-rag-api:8000"
    assert "RAG_PORT" not in env
    limits = {"librechat_login_max": 40, "librechat_login_window": 15, "librechat_register_max": 3}
    env = rendered(tmp_path / "set", {**limits, "librechat_register_window": 120})["env"]
    assert (env["LOGIN_MAX"], env["LOGIN_WINDOW"], env["REGISTER_MAX"], env["REGISTER_WINDOW"]) == (
        "40",
        "15",
        "3",
        "120",
    )
