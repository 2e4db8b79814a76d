"""Check a LiteLLM proxy config.yaml with LiteLLM's own code, before the role installs it.

Runs inside the LiteLLM image (``python check_config.py FILE``), without
network and without the proxy's secrets. It reads the file the way the proxy
does at start and fails (exit 1, one line per problem) where the proxy would
fail or, worse, start and silently drop something:

- the YAML and its top-level sections, through the proxy's own model of
  config.yaml (``litellm.proxy._types.ConfigYAML``);
- every ``model_list`` entry through the router's ``LiteLLM_Params`` and
  ``Deployment`` models (the
  proxy itself starts with ``ignore_invalid_deployments=True``, so an entry
  without ``litellm_params.model`` would just vanish from the model list),
  then all of them together through ``litellm.Router``;
- ``router_settings`` keys against ``litellm.Router.get_valid_args()`` (the
  proxy ignores unknown keys with a warning), and fallbacks that name model
  groups that exist;
- ``general_settings`` keys against ``ConfigGeneralSettings`` and the keys
  the proxy's code reads from it;
- ``litellm_settings`` keys against the attributes of the ``litellm`` module
  (the proxy sets unknown keys as new, unused attributes);
- ``os.environ/NAME`` references are well formed (their values come from the
  container's environment at start and are not needed here).
"""

from __future__ import annotations

import copy
import os
import re
import sys
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import yaml

ENV_REFERENCE = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
# litellm_settings keys the proxy handles itself rather than setting them on the module.
PROXY_LITELLM_SETTINGS = {
    "cache",
    "cache_params",
    "callbacks",
    "success_callback",
    "failure_callback",
    "audit_log_callbacks",
    "guardrails",
    "post_call_rules",
    "max_budget",
    "max_internal_user_budget",
    "default_max_internal_user_budget",
    "default_internal_user_params",
    "custom_provider_map",
    "responses",
    "max_ui_session_budget",
    "default_team_settings",
    "upperbound_key_generate_params",
    "json_logs",
    "budget_reset_time",
    "drop_params",
    "model_group_settings",
    "priority_reservation_settings",
    "global_prompt_directory",
    "global_bitbucket_config",
    "global_gitlab_config",
}


def env_references(value: Any) -> list[str]:
    """Every string of the form os.environ/... anywhere in value."""
    if isinstance(value, str):
        return [value] if value.startswith("os.environ/") else []
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in env_references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in env_references(item)]
    return []


def first_error(exc: Exception) -> str:
    """A pydantic error in one line (location and message of each problem), other errors as they are."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                f"{'.'.join(str(part) for part in err.get('loc', ())) or '(top)'}: {err.get('msg')}" for err in errors()
            )
        except Exception:
            pass
    return " ".join(str(exc).split())


def general_settings_read_by_proxy() -> set[str]:
    """Keys the proxy's code reads from general_settings (its pydantic model does not list them all)."""
    import litellm.proxy

    pattern = re.compile(r"general_settings(?:\.get\(\s*|\[)[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']")
    keys: set[str] = set()
    for folder, _subfolders, files in os.walk(os.path.dirname(litellm.proxy.__file__)):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                    keys.update(pattern.findall(handle.read()))
    return keys


def check_models(model_list: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Problems of model_list entries, and the valid entries, as the router reads them one by one."""
    from litellm.types.router import Deployment, LiteLLM_Params

    if not isinstance(model_list, list):
        return ["model_list must be a list"], []
    problems: list[str] = []
    valid: list[dict[str, Any]] = []
    for index, entry in enumerate(model_list):
        label = f"model_list[{index}]" + (f" ({entry.get('model_name')})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
            problems.append(f"{label}: must be a mapping with model_name and litellm_params (with at least model)")
            continue
        try:
            params = LiteLLM_Params(**entry["litellm_params"])
        except Exception as exc:
            problems.append(f"{label}: litellm_params: {first_error(exc)}")
            continue
        try:
            Deployment(
                model_name=entry.get("model_name"), litellm_params=params, model_info=entry.get("model_info") or {}
            )
        except Exception as exc:
            problems.append(f"{label}: {first_error(exc)}")
            continue
        valid.append(entry)
    return problems, valid


def check_router(router_settings: Any, models: list[dict[str, Any]], names_ok: bool) -> list[str]:
    """Problems of router_settings; with no other problem, the router is built from everything."""
    import litellm

    if not isinstance(router_settings, dict):
        return ["router_settings must be a mapping"]
    problems: list[str] = []
    valid_args = set(litellm.Router.get_valid_args())
    problems += [
        f"router_settings.{key}: not an argument of litellm.Router (the proxy would ignore it)"
        for key in router_settings
        if key not in valid_args
    ]
    names = {str(entry["model_name"]) for entry in models}
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        for item in router_settings.get(key) or []:
            if not isinstance(item, dict):
                problems.append(f"router_settings.{key}: entries must be mappings {{model: [fallback models]}}")
                continue
            for source, targets in item.items():
                for name in [source, *(targets if isinstance(targets, list) else [targets])]:
                    if name not in names:
                        problems.append(f"router_settings.{key}: {name!r} is not a model_name of model_list")
    if models and names_ok and not problems:
        known = {key: value for key, value in router_settings.items() if key in valid_args}
        try:
            litellm.Router(model_list=models, ignore_invalid_deployments=False, **known)
        except Exception as exc:
            problems.append(f"litellm.Router refuses the model list and router_settings: {first_error(exc)}")
    return problems


def check_settings(general: Any, settings: Any) -> list[str]:
    """Problems of general_settings and litellm_settings: keys this LiteLLM does not know."""
    import litellm
    from litellm.proxy._types import ConfigGeneralSettings

    problems: list[str] = []
    if not isinstance(general, dict):
        problems.append("general_settings must be a mapping")
    else:
        known = set(ConfigGeneralSettings.model_fields) | general_settings_read_by_proxy()
        problems += [
            f"general_settings.{key}: not a general setting of this LiteLLM version"
            for key in general
            if key not in known
        ]
    if not isinstance(settings, dict):
        problems.append("litellm_settings must be a mapping")
        return problems
    problems += [
        f"litellm_settings.{key}: not a setting of this LiteLLM version"
        for key in settings
        if key not in PROXY_LITELLM_SETTINGS and not hasattr(litellm, key)
    ]
    if "prometheus" in (settings.get("callbacks") or []):
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            problems.append("litellm_settings.callbacks: prometheus needs prometheus_client, missing in this image")
    return problems


def check(config: Any) -> list[str]:
    """Every problem LiteLLM's own code finds in the parsed config.yaml."""
    if not isinstance(config, dict):
        kind = type(config).__name__
        return [f"the file must be a YAML mapping of sections (model_list, router_settings, ...), got {kind}"]
    problems: list[str] = []
    for ref in env_references(config):
        match = ENV_REFERENCE.match(ref)
        if match is None:
            problems.append(f"{ref!r} is not a valid os.environ/NAME reference")
        else:
            # The value is read from the container's environment at start; any value will do here.
            os.environ.setdefault(match.group(1), "sk-config-check-placeholder")

    from litellm.proxy._types import ConfigYAML

    try:
        ConfigYAML(**copy.deepcopy(config))  # the model changes what it is given
    except Exception as exc:
        problems.append(first_error(exc))
    model_problems, models = check_models(config.get("model_list") or [])
    problems += model_problems
    problems += check_router(config.get("router_settings") or {}, models, names_ok=not model_problems)
    problems += check_settings(config.get("general_settings") or {}, config.get("litellm_settings") or {})
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_config.py CONFIG_YAML", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        print(f"config.yaml: cannot be read as YAML: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    problems = check(config)
    for problem in problems:
        print(f"config.yaml: {problem}", file=sys.stderr)
    if not problems:
        print(f"config.yaml accepted by LiteLLM {version()}")
    return 1 if problems else 0


def version() -> str:
    from importlib.metadata import version as package_version

    return package_version("litellm")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
