"""Verify the librechat role on a molecule platform.

LibreChat's api server, its RAG API and MongoDB cannot be obtained here: the
scenarios run the lab's librechat-double and librechat-rag-api-double (test
doubles that say so in every answer) and FerretDB in place of MongoDB. What
is checked is what the role is responsible for, against what those answer:

- the containers run the configured images on the configured network, only
  LibreChat is published, on the configured addresses;
- librechat.yaml holds what the variables ask for and was accepted by
  LibreChat's own schema (librechat-data-provider, the double's report);
  LibreChat offers the chat models of librechat_litellm_models only (LiteLLM's
  list not fetched, no embedding model), one model spec each, and the spec of
  librechat_default_model is the default a new conversation starts with;
- the environment (secrets, URLs, login switches, S3) is what the variables
  and the controller's secret files say; the files are 0600 and the secrets
  on the controller 0600, in the form LibreChat needs;
- MongoDB answers the double's ping over the wire protocol; the RAG API double
  reached the rag database and its vector extension, and runs with
  RAG_CHECK_EMBEDDING_CTX_LENGTH=false (it refuses to start otherwise);
- OIDC discovery against the real Keycloak succeeded (issuer, endpoints) and
  Keycloak accepted the client and callback URL (default scenario);
- a librechat.yaml that LibreChat's schema rejects stops the role with the
  schema's path, and the running LibreChat keeps its file and container; so
  does a new librechat_image whose schema rejects the installed file (the
  lab's librechat-double-stricter-schema, built here on the double);
- the login and registration rate limits are the role's (per client
  address: an office behind one NAT address shares them), and LibreChat gets
  no RAG_PORT, which it does not read;
- with librechat_mongodb_enabled false the role's MongoDB container is gone
  and its volume kept, until librechat_mongodb_remove_volume (changed once,
  then nothing).
"""

from __future__ import annotations

import ast
import base64
import json
import re
import shlex
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import converge, recap_changed, resolve
from molecule_support import inspect_container as inspect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles/librechat/defaults/main.yml").read_text())
SCHEMA_PACKAGE = "librechat-data-provider@0.8.524"
STRICTER_SCHEMA = ROOT / "lab/images/librechat-double-stricter-schema"


@pytest.fixture(scope="module")
def role_vars(host) -> dict[str, Any]:
    """Role defaults overlaid with the scenario's inventory variables, templates rendered."""
    variables = {**DEFAULTS, **host.ansible.get_variables()}
    variables.setdefault("playbook_dir", str(ROOT / "molecule" / "_shared"))
    return resolve(variables, "librechat_")


def environment(container: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container["Config"]["Env"])


@pytest.fixture(scope="module")
def librechat(host, role_vars) -> dict[str, Any]:
    return inspect(host, role_vars["librechat_container_name"])


def http_get(host, url: str) -> tuple[int, dict[str, str], str]:
    """GET a URL from the molecule host (python3 there, standard library only), without following redirects."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "class Stay(urllib.request.HTTPRedirectHandler):\n"
        "    def redirect_request(self, *args, **kwargs):\n"
        "        return None\n"
        "try:\n"
        "    r = urllib.request.build_opener(Stay).open(sys.argv[1], timeout=10)\n"
        "except urllib.error.HTTPError as e:\n"
        "    r = e\n"
        "print(json.dumps([r.status, dict(r.headers), r.read().decode()]))\n"
    )
    result = host.run(f"python3 -c {shlex.quote(script)} {shlex.quote(url)}")
    assert result.rc == 0, result.stderr
    status, headers, body = json.loads(result.stdout)
    return status, {key.lower(): value for key, value in headers.items()}, body


@pytest.fixture(scope="module")
def base(role_vars) -> str:
    address = str(role_vars["librechat_listen_addresses"][0])
    address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    return f"http://{f'[{address}]' if ':' in address else address}:{role_vars['librechat_port']}"


@pytest.fixture(scope="module")
def startup(host, base) -> dict[str, Any]:
    status, headers, body = http_get(host, f"{base}/api/config")
    assert status == 200, body
    assert headers.get("x-parrotpark-double") == "librechat"
    return json.loads(body)


def secret_file(role_vars, name: str) -> Path:
    return Path(role_vars["librechat_secrets_dir"]) / name


# --- the containers --------------------------------------------------------------


def test_containers_run_the_configured_images(host, role_vars, librechat):
    assert librechat["State"]["Running"], librechat["State"]
    assert librechat["Config"]["Image"] == role_vars["librechat_image"]
    assert librechat["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert librechat["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {
            "max-size": role_vars["librechat_log_max_size"],
            "max-file": str(role_vars["librechat_log_max_file"]),
        },
    }
    assert librechat["Config"]["Labels"]["parrotpark.role"] == "librechat"
    assert librechat["Config"]["Healthcheck"]["Test"][:2] == ["CMD", "node"]
    assert list(librechat["NetworkSettings"]["Networks"]) == [role_vars["librechat_docker_network"]]
    others = [
        (
            role_vars["librechat_mongodb_enabled"],
            role_vars["librechat_mongodb_container_name"],
            "librechat_mongodb_image",
        ),
        (
            role_vars["librechat_rag_api_enabled"],
            role_vars["librechat_rag_api_container_name"],
            "librechat_rag_api_image",
        ),
    ]
    for enabled, name, image in others:
        # A container: the MongoDB volume has the container's name, and `docker inspect` finds volumes too.
        present = host.run(f"docker container inspect {name}").rc == 0
        assert present == enabled, f"{name}: present {present}, enabled {enabled}"
        if enabled:
            container = inspect(host, name)
            assert container["State"]["Running"], container["State"]
            assert container["Config"]["Image"] == role_vars[image]
            assert list(container["NetworkSettings"]["Networks"]) == [role_vars["librechat_docker_network"]]
            assert not any(container["HostConfig"]["PortBindings"] or {}), f"{name} must not be published"


def test_only_librechat_published_where_asked(librechat, role_vars):
    bindings = librechat["HostConfig"]["PortBindings"]
    assert set(bindings) == {"3080/tcp"}
    found = sorted((binding["HostIp"], binding["HostPort"]) for binding in bindings["3080/tcp"])
    wanted = sorted(
        (str(address), str(role_vars["librechat_port"])) for address in role_vars["librechat_listen_addresses"]
    )
    assert found == wanted


def test_mongodb_volume_kept_without_the_container(host, role_vars):
    """The role's MongoDB volume outlives its container (librechat_mongodb_enabled false: the prepare step of such
    a scenario leaves the container and volume of an earlier run with the built-in MongoDB)."""
    volume = host.run(f"docker volume inspect {shlex.quote(role_vars['librechat_mongodb_volume'])}")
    assert volume.rc == 0, f"{role_vars['librechat_mongodb_volume']} is gone: {volume.stderr}"
    assert json.loads(volume.stdout)[0]["Labels"]["parrotpark.role"] == "librechat"


def test_volumes_and_configuration_mounted(host, librechat, role_vars):
    mounts = {mount["Destination"]: mount for mount in librechat["Mounts"]}
    config = mounts["/app/librechat.yaml"]
    assert config["Source"] == f"{role_vars['librechat_config_dir']}/librechat.yaml"
    assert not config["RW"]
    assert mounts["/app/uploads"]["Name"] == role_vars["librechat_uploads_volume"]
    assert mounts["/app/client/public/images"]["Name"] == role_vars["librechat_images_volume"]
    if role_vars["librechat_mongodb_enabled"]:
        mongo = inspect(host, role_vars["librechat_mongodb_container_name"])
        data = {mount["Destination"]: mount for mount in mongo["Mounts"]}["/data/db"]
        assert data["Name"] == role_vars["librechat_mongodb_volume"]


def test_health_answers_through_the_published_port(host, base):
    status, headers, body = http_get(host, f"{base}/health")
    assert status == 200, body
    assert body.startswith("OK")
    assert headers.get("x-parrotpark-double") == "librechat", "the lab runs the librechat-double"


# --- configuration and environment ---------------------------------------------------


def model_entries(role_vars) -> list[Any]:
    """librechat_litellm_models as the scenario has it (a template renders to the list's text)."""
    value = role_vars["librechat_litellm_models"]
    return ast.literal_eval(value) if isinstance(value, str) else value


def chat_models(role_vars) -> list[str]:
    """The names of the chat entries: a name, or an entry whose mode is chat (the default)."""
    return [
        entry if isinstance(entry, str) else entry["name"]
        for entry in model_entries(role_vars)
        if isinstance(entry, str) or entry.get("mode", "chat") == "chat"
    ]


def other_models(role_vars) -> list[str]:
    """The names of the entries that cannot chat (embedding models), and the RAG API's embedding model."""
    others = [entry["name"] for entry in model_entries(role_vars) if isinstance(entry, dict)]
    return [name for name in others if name not in chat_models(role_vars)] + [
        role_vars["librechat_rag_embeddings_model"]
    ]


def default_model(role_vars) -> str:
    """librechat_default_model, or (its default) the first chat model."""
    return role_vars["librechat_default_model"] or chat_models(role_vars)[0]


def contains(whole: Any, part: Any) -> bool:
    """Is part in whole: every key of a mapping (recursively), anything else equal."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(key in whole and contains(whole[key], part[key]) for key in part)
    return whole == part


def expected_headers(role_vars) -> dict[str, str]:
    header = role_vars["librechat_litellm_user_header"]
    return {header: "{{LIBRECHAT_USER_" + role_vars["librechat_litellm_user_field"].upper() + "}}"} if header else {}


def test_librechat_yaml_as_asked(host, role_vars):
    path = f"{role_vars['librechat_config_dir']}/librechat.yaml"
    config_file = host.file(path)
    assert (config_file.user, config_file.group, config_file.mode) == ("root", "root", 0o644)
    config = yaml.safe_load(config_file.content_string)
    endpoint = config["endpoints"]["custom"][0]
    assert endpoint["name"] == role_vars["librechat_litellm_endpoint_name"]
    assert endpoint["baseURL"] == role_vars["librechat_litellm_base_url"]
    assert endpoint["apiKey"] == "${LITELLM_API_KEY}", "the key comes from the environment, not the file"
    # LiteLLM's list (which holds the embedding model) is not fetched: the chat models only.
    assert endpoint["models"] == {"default": chat_models(role_vars), "fetch": False}
    assert not set(endpoint["models"]["default"]) & set(other_models(role_vars))
    assert endpoint["titleConvo"] == role_vars["librechat_litellm_title_convo"]
    assert endpoint["titleModel"] == role_vars["librechat_litellm_title_model"]
    assert endpoint.get("headers", {}) == expected_headers(role_vars)
    assert config["fileStrategy"] == role_vars["librechat_file_strategy"]
    assert config["registration"]["socialLogins"] == (["openid"] if role_vars["librechat_openid_enabled"] else [])
    for key, value in role_vars["librechat_config_extra"].items():
        assert contains(config[key], value), key
    assert role_vars["librechat_litellm_api_key"] not in config_file.content_string


def test_model_specs_start_on_the_default_model(host, role_vars):
    """A model spec per chat model on the custom endpoint; librechat_default_model's is the default and a spec
    is always selected, so a new user lands on it, not on Agents; the menu keeps Agents."""
    config = yaml.safe_load(host.file(f"{role_vars['librechat_config_dir']}/librechat.yaml").content_string)
    specs = config["modelSpecs"]
    assert (specs["prioritize"], specs["enforce"], specs["addedEndpoints"]) == (True, False, ["agents"])
    assert [spec["name"] for spec in specs["list"]] == chat_models(role_vars)
    for spec in specs["list"]:
        assert spec["preset"] == {"endpoint": role_vars["librechat_litellm_endpoint_name"], "model": spec["name"]}
    assert [spec["name"] for spec in specs["list"] if spec.get("default")] == [default_model(role_vars)]
    assert config["interface"]["modelSelect"] is True


def test_librechat_offers_the_chat_models(host, base, startup, role_vars):
    """What LibreChat serves from the file (the double derives it as LibreChat does): the endpoint's models, the
    model specs none of which is skipped, and the model menu on."""
    status, headers, body = http_get(host, f"{base}/api/models")
    assert status == 200, body
    assert headers.get("x-parrotpark-double") == "librechat"
    assert json.loads(body) == {role_vars["librechat_litellm_endpoint_name"]: chat_models(role_vars)}
    specs = startup["modelSpecs"]
    assert [spec["name"] for spec in specs["list"]] == chat_models(role_vars)
    assert [spec["name"] for spec in specs["list"] if spec.get("default")] == [default_model(role_vars)]
    assert startup["double"]["skippedModelSpecs"] == []
    assert startup["interface"]["modelSelect"] is True


def file_search(role_vars) -> bool:
    """librechat_file_search as Ansible reads it (its default is a template, rendered here as text)."""
    return str(role_vars["librechat_file_search"]).lower() == "true"


def test_file_search_from_the_plain_chat(host, startup, role_vars):
    """With the RAG API, every model spec starts its conversations with File Search on and users may use it, so
    a question about an uploaded document is searched through the RAG API from the chat with the organisation's
    model; LibreChat's conditions for it hold in what it serves (the double reads them as LibreChat does)."""
    config = yaml.safe_load(host.file(f"{role_vars['librechat_config_dir']}/librechat.yaml").content_string)
    wanted = file_search(role_vars)
    assert wanted is role_vars["librechat_rag_api_enabled"], "default: on with the RAG API, off without"
    assert [spec["fileSearch"] for spec in config["modelSpecs"]["list"]] == [wanted] * len(chat_models(role_vars))
    assert config["interface"]["fileSearch"] is wanted
    report = startup["double"]["fileSearch"]
    assert (report["spec"], report["model"]) == (default_model(role_vars), default_model(role_vars))
    assert report["endpoint"] == role_vars["librechat_litellm_endpoint_name"]
    assert "file_search" in report["capabilities"]
    # Where an upload goes, as LibreChat's own functions decide it: never a PDF as a file part (vLLM refuses
    # those); with File Search, documents to the tool and their text to a turn without it.
    for endpoint in (role_vars["librechat_litellm_endpoint_name"], "agents"):
        routing = report["uploads"][endpoint]
        assert routing["paths"]["application/pdf"] == ("none" if wanted else "text"), routing
        assert routing["paths"]["text/plain"] == ("none" if wanted else "text"), routing
        assert routing["paths"]["image/png"] == "provider", routing
        assert routing["textFallbackWithoutTools"] is wanted, routing
    if wanted:
        assert report == {**report, "offered": True, "reasons": []}
    else:
        assert report["offered"] is False
        assert f"the default model spec {default_model(role_vars)} does not turn File Search on" in report["reasons"][0]
        assert any("RAG_API_URL is not set" in reason for reason in report["reasons"]), report


def test_config_validated_with_librechats_schema(startup, role_vars):
    report = startup["double"]
    assert report["schemaPackage"] == SCHEMA_PACKAGE
    assert report["config"]["validated"] is True
    assert report["config"]["path"] == "/app/librechat.yaml"
    assert report["config"]["envReferences"] == ["LITELLM_API_KEY"]
    endpoint = report["config"]["customEndpoints"][0]
    assert endpoint["baseURL"] == role_vars["librechat_litellm_base_url"]
    assert endpoint["apiKey"] == "${LITELLM_API_KEY} (set)"
    assert endpoint["headers"] == expected_headers(role_vars)


def test_login_switches(startup, role_vars):
    assert startup["appTitle"] == role_vars["librechat_app_title"]
    assert startup["registrationEnabled"] is role_vars["librechat_allow_registration"]
    assert startup["emailLoginEnabled"] is role_vars["librechat_allow_email_login"]
    assert startup["socialLoginEnabled"] is role_vars["librechat_allow_social_login"]
    assert startup["serverDomain"] == role_vars["librechat_public_url"]
    assert startup["openidLoginEnabled"] is (
        role_vars["librechat_openid_enabled"] and role_vars["librechat_allow_social_login"]
    )


def test_environment_from_variables_and_secret_files(librechat, role_vars):
    env = environment(librechat)
    assert env["DOMAIN_CLIENT"] == env["DOMAIN_SERVER"] == role_vars["librechat_public_url"]
    assert env["CREDS_KEY"] == secret_file(role_vars, "librechat-creds-key").read_text().split()[0]
    assert re.fullmatch(r"[0-9a-f]{64}", env["CREDS_KEY"])
    assert re.fullmatch(r"[0-9a-f]{32}", env["CREDS_IV"])
    assert env["CREDS_IV"] == secret_file(role_vars, "librechat-creds-iv").read_text().split()[0]
    assert env["JWT_SECRET"] == secret_file(role_vars, "librechat-jwt-secret").read_text().split()[0]
    assert env["JWT_REFRESH_SECRET"] == secret_file(role_vars, "librechat-jwt-refresh-secret").read_text().split()[0]
    assert env["JWT_SECRET"] != env["JWT_REFRESH_SECRET"]
    assert env["LITELLM_API_KEY"] == role_vars["librechat_litellm_api_key"]
    assert env["LITELLM_API_KEY"].startswith("sk-")
    for variable, name in [
        ("ALLOW_REGISTRATION", "librechat_allow_registration"),
        ("ALLOW_EMAIL_LOGIN", "librechat_allow_email_login"),
        ("ALLOW_SOCIAL_LOGIN", "librechat_allow_social_login"),
    ]:
        assert env[variable] == str(role_vars[name]).lower(), variable
    mongo = role_vars["librechat_mongo_uri"] or (
        f"mongodb://{role_vars['librechat_mongodb_container_name']}:27017/{role_vars['librechat_mongodb_database']}"
    )
    assert env["MONGO_URI"] == mongo
    for key, value in role_vars["librechat_env"].items():
        assert env[key] == str(value)
    if role_vars["librechat_file_strategy"] == "s3":
        assert env["AWS_BUCKET_NAME"] == role_vars["librechat_s3_bucket"]
        assert env["AWS_REGION"] == role_vars["librechat_s3_region"]
        assert env["AWS_ENDPOINT_URL"] == role_vars["librechat_s3_endpoint"]
        assert env["AWS_ACCESS_KEY_ID"] == role_vars["librechat_s3_access_key_id"]
        assert env["AWS_SECRET_ACCESS_KEY"] == role_vars["librechat_s3_secret_access_key"]
    else:
        assert not any(key.startswith("AWS_") for key in env)
    if role_vars["librechat_openid_enabled"]:
        assert env["OPENID_ISSUER"] == role_vars["librechat_openid_issuer"]
        assert env["OPENID_CLIENT_ID"] == role_vars["librechat_openid_client_id"]
        assert (
            env["OPENID_CLIENT_SECRET"]
            == secret_file(role_vars, "keycloak-librechat-client-secret").read_text().split()[0]
        )
        assert (
            env["OPENID_SESSION_SECRET"]
            == secret_file(role_vars, "librechat-openid-session-secret").read_text().split()[0]
        )
        assert env["OPENID_CALLBACK_URL"] == role_vars["librechat_openid_callback_path"]
    else:
        assert not any(key.startswith("OPENID_") for key in env)
    if role_vars["librechat_rag_api_enabled"]:
        assert env["RAG_API_URL"] == (
            f"http://{role_vars['librechat_rag_api_container_name']}:{role_vars['librechat_rag_api_port']}"
        )
    else:
        assert "RAG_API_URL" not in env
    assert "RAG_PORT" not in env, "LibreChat reads RAG_API_URL only"


def test_login_and_registration_limits(librechat, role_vars):
    """LibreChat counts logins (every request under /oauth) and registrations per client address: the role's
    limits, not LibreChat's own (7 logins per 5 minutes), which an office behind one NAT address would share."""
    env = environment(librechat)
    for variable, name in [
        ("LOGIN_MAX", "librechat_login_max"),
        ("LOGIN_WINDOW", "librechat_login_window"),
        ("REGISTER_MAX", "librechat_register_max"),
        ("REGISTER_WINDOW", "librechat_register_window"),
    ]:
        assert env[variable] == str(role_vars[name]), variable
    assert int(env["LOGIN_MAX"]) >= 2 * 10, "at least ten OpenID logins (two requests each) per window"


def test_environment_checked_by_the_double(startup, role_vars):
    checked = startup["double"]["environment"]
    assert checked["checked"] is True
    assert (checked["credsKeyHexDigits"], checked["credsIvHexDigits"]) == (64, 32)
    assert checked["fileStrategy"] == role_vars["librechat_file_strategy"]
    if role_vars["librechat_file_strategy"] == "s3":
        assert checked["s3"]["bucket"] == role_vars["librechat_s3_bucket"]
        assert checked["s3"]["endpoint"] == role_vars["librechat_s3_endpoint"]


def test_environment_files_root_only(host, role_vars):
    files = [f"{role_vars['librechat_config_dir']}/librechat.env"]
    if role_vars["librechat_rag_api_enabled"]:
        files.append(f"{role_vars['librechat_config_dir']}/rag-api.env")
    for path in files:
        env_file = host.file(path)
        assert (env_file.user, env_file.group, env_file.mode) == ("root", "root", 0o600), path


def test_secrets_kept_on_the_controller(role_vars):
    names = ["librechat-creds-key", "librechat-creds-iv", "librechat-jwt-secret", "librechat-jwt-refresh-secret"]
    if role_vars["librechat_openid_enabled"]:
        names += ["librechat-openid-session-secret", "keycloak-librechat-client-secret"]
    for name in names:
        path = secret_file(role_vars, name)
        assert path.is_file(), path
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_mongodb_answers_the_wire_protocol(startup, role_vars):
    mongo = startup["double"]["mongo"]
    assert mongo["ping"] == "ok"
    expected_host = (
        re.match(r"mongodb://([^:/]+)", role_vars["librechat_mongo_uri"]).group(1)
        if role_vars["librechat_mongo_uri"]
        else role_vars["librechat_mongodb_container_name"]
    )
    assert mongo["host"] == expected_host
    assert mongo["ferretdbVersion"], "the lab's MongoDB stand-in is FerretDB"


def test_rag_api_on_the_rag_database(host, role_vars, startup):
    if not role_vars["librechat_rag_api_enabled"]:
        assert startup["double"]["ragApi"] == {"configured": False}
        return
    assert startup["double"]["ragApi"]["reachable"] is True
    container = inspect(host, role_vars["librechat_rag_api_container_name"])
    address = container["NetworkSettings"]["Networks"][role_vars["librechat_docker_network"]]["IPAddress"]
    status, headers, body = http_get(host, f"http://{address}:{role_vars['librechat_rag_api_port']}/double/report")
    assert status == 200, body
    assert headers.get("x-parrotpark-double") == "librechat-rag-api"
    report = json.loads(body)
    database = report["database"]
    assert database["connected"] is True
    assert database["target"].startswith(f"{role_vars['librechat_rag_db_host']}:{role_vars['librechat_rag_db_port']}/")
    assert database["target"].endswith(
        f"/{role_vars['librechat_rag_db_name']} as {role_vars['librechat_rag_db_username']}"
    )
    assert database["vectorExtension"]
    assert database["l2Distance"] == pytest.approx(2.0)
    assert report["environment"]["embeddingsModel"] == role_vars["librechat_rag_embeddings_model"]
    assert report["environment"]["openaiBaseUrl"] == role_vars["librechat_litellm_base_url"]
    env = environment(container)
    assert env["RAG_OPENAI_API_KEY"] == role_vars["librechat_litellm_api_key"]
    # Text, not tiktoken token ids, to the embedding model; the double refuses to start otherwise.
    assert env["RAG_CHECK_EMBEDDING_CTX_LENGTH"] == "false"
    assert report["environment"]["checkEmbeddingCtxLength"] is False
    for key, value in role_vars["librechat_rag_api_env"].items():
        assert env[key] == str(value), key
    assert env["JWT_SECRET"] == environment(inspect(host, role_vars["librechat_container_name"]))["JWT_SECRET"]


def test_openid_discovery_against_keycloak(host, base, startup, role_vars):
    openid = startup["double"]["openid"]
    if not role_vars["librechat_openid_enabled"]:
        assert openid == {"enabled": False}
        return
    issuer = role_vars["librechat_openid_issuer"]
    assert openid["enabled"] is True
    assert openid["issuer"] == issuer
    assert openid["discoveryUrl"] == f"{issuer}/.well-known/openid-configuration"
    assert openid["authorizationEndpoint"] == f"{issuer}/protocol/openid-connect/auth"
    assert openid["tokenEndpoint"] == f"{issuer}/protocol/openid-connect/token"
    assert openid["clientId"] == role_vars["librechat_openid_client_id"]
    assert openid["callbackUrl"] == role_vars["librechat_public_url"] + role_vars["librechat_openid_callback_path"]
    # Keycloak showed its login page for this client and callback URL.
    assert openid["authorizationRequest"] == {"status": 200, "accepted": True, "error": None}
    # LibreChat's login button: a redirect to the provider with this client and callback.
    status, headers, _ignored = http_get(host, f"{base}/oauth/openid")
    assert status == 302
    assert headers["location"].startswith(openid["authorizationEndpoint"] + "?")
    assert f"client_id={role_vars['librechat_openid_client_id']}" in headers["location"]


# --- the role again, against this instance ----------------------------------------------


def test_config_rejected_by_the_schema_stops_the_role(host, role_vars):
    """A librechat.yaml LibreChat's schema rejects is not installed; the message names the path."""
    name = role_vars["librechat_container_name"]
    before = host.check_output(f"docker inspect --format '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {name}")
    path = f"{role_vars['librechat_config_dir']}/librechat.yaml"
    content = host.file(path).content_string
    bad = {"librechat_config_extra": {"interface": {"privacyPolicy": {"externalUrl": 5}}, "fileStrategy": "ftp"}}
    result = converge(bad)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-4000:]
    assert "The new librechat.yaml was not installed" in output, output[-4000:]
    assert "interface.privacyPolicy.externalUrl: Expected string, received number" in output, output[-4000:]
    assert "fileStrategy: Invalid enum value" in output, output[-4000:]
    assert SCHEMA_PACKAGE.replace("@", " ") in output, output[-4000:]
    assert recap_changed(result) == 0
    assert host.file(path).content_string == content
    after = host.check_output(f"docker inspect --format '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {name}")
    assert after == before, "LibreChat was neither recreated nor restarted"


def copy_to_host(host, source: Path, target: str) -> None:
    """Copy a directory of this checkout to the molecule host, file by file."""
    assert host.run(f"rm -rf {shlex.quote(target)}").rc == 0
    for path in sorted(item for item in source.rglob("*") if item.is_file()):
        destination = PurePosixPath(target) / path.relative_to(source).as_posix()
        data = base64.b64encode(path.read_bytes()).decode()
        folder, file = shlex.quote(str(destination.parent)), shlex.quote(str(destination))
        result = host.run(f"mkdir -p {folder} && echo {data} | base64 -d > {file}")
        assert result.rc == 0, result.stderr


def test_new_image_whose_schema_rejects_the_file_stops_the_role(host, role_vars):
    """An upgrade of librechat_image checks the installed librechat.yaml with the new image's schema, before the
    container is replaced: the lab's librechat-double-stricter-schema (the double whose schema package no longer
    knows the top-level key cache) rejects it, and LibreChat keeps its image, container and file."""
    name = role_vars["librechat_container_name"]
    image = "parrotpark-molecule/librechat-double-stricter-schema:test"
    context = "/tmp/librechat-double-stricter-schema"
    copy_to_host(host, STRICTER_SCHEMA, context)
    build = host.run(
        f"DOCKER_BUILDKIT=0 docker build --quiet --build-arg PARENT={shlex.quote(role_vars['librechat_image'])}"
        f" --tag {image} {context}"
    )
    assert build.rc == 0, build.stdout + build.stderr
    before = host.check_output(f"docker inspect --format '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {name}")
    path = f"{role_vars['librechat_config_dir']}/librechat.yaml"
    content = host.file(path).content_string
    try:
        result = converge({"librechat_image": image})
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode != 0, output[-4000:]
        assert "The new librechat.yaml was not installed" in output, output[-4000:]
        assert "(top level): Unrecognized key(s) in object: 'cache'" in output, output[-4000:]
        assert "librechat-data-provider 0.8.524-stricter-schema" in output, output[-4000:]
        assert recap_changed(result) == 0
        assert host.file(path).content_string == content
        after = host.check_output(f"docker inspect --format '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {name}")
        assert after == before, "LibreChat was neither recreated nor restarted"
        assert inspect(host, name)["Config"]["Image"] == role_vars["librechat_image"]
    finally:
        host.run(f"docker rmi {image}")


def test_mongodb_volume_removed_when_asked(host, role_vars):
    """librechat_mongodb_remove_volume (with librechat_mongodb_enabled false) removes the role's MongoDB volume:
    changed once, then nothing."""
    if role_vars["librechat_mongodb_enabled"]:
        pytest.skip("the role runs MongoDB in this scenario")
    volume = shlex.quote(role_vars["librechat_mongodb_volume"])
    assert host.run(f"docker volume inspect {volume}").rc == 0
    first = converge({"librechat_mongodb_remove_volume": True})
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert recap_changed(first) == 1, first.stdout[-4000:]
    assert host.run(f"docker volume inspect {volume}").rc != 0, "the volume is still there"
    second = converge({"librechat_mongodb_remove_volume": True})
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    assert recap_changed(second) == 0, second.stdout[-4000:]
