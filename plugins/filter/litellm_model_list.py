# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: litellm_model_list
short_description: The model_list of LiteLLM's config.yaml for models served by vLLM, and an optional fallback
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - "For each model of the input, in order, one C(model_list) entry: C(model_name) is the model's C(name);
    C(litellm_params) has C(model) V(hosted_vllm/<served_name>), C(api_base) (the model's C(api_base), otherwise
    C(http://<upstream_host>:<port>/v1), an IPv6 address in brackets) and C(api_key)
    V(os.environ/LITELLM_UPSTREAM_API_KEY), with the model's C(litellm_params) merged into it recursively;
    C(model_info) has C(mode) (the model's C(mode), otherwise V(chat)) with the model's C(model_info) merged
    into it recursively. The merge is P(ansible.builtin.combine#filter) with C(recursive=true): a key of the
    model's mappings wins, lists are replaced."
  - "With a non-empty O(fallback), one more entry at the end: C(model_name) the fallback's C(name) (default
    V(parrotpark-fallback)), C(litellm_params) its C(model) and C(api_base) with C(api_key)
    V(os.environ/LITELLM_FALLBACK_API_KEY), C(model_info) C(mode) V(chat)."
  - No secret is in the result; LiteLLM reads C(os.environ/NAME) values from its environment.
  - The litellm role's C(_litellm_model_list) is this filter applied to C(litellm_models) with
    C(litellm_upstream_host) and C(litellm_fallback); P(parrotpark.llm.litellm_fallbacks#filter) gives the
    matching C(router_settings.fallbacks).
options:
  _input:
    description:
      - The models, a list of dictionaries (the litellm role's C(litellm_models)).
      - C(name) and C(served_name) are required, and C(port) unless C(api_base) is given. C(mode),
        C(litellm_params) (a dictionary) and C(model_info) (a dictionary) are optional.
    type: list
    elements: dict
    required: true
  upstream_host:
    description:
      - Address or host name of the vLLM server, for the models without C(api_base). An IPv6 address is written in
        brackets (as P(ansible.utils.ipwrap#filter) does, in its compressed form).
    type: str
    default: ""
  fallback:
    description:
      - The fallback endpoint (the litellm role's C(litellm_fallback)), a dictionary with C(model) and C(api_base)
        (required) and C(name) (optional); C(api_key) is not used here. Empty for no fallback.
    type: dict
    default: {}
  health_checks:
    description:
      - V(false) - LiteLLM's health checks leave the GPU's models alone. Their C(model_info) gets
        C(disable_background_health_check) V(true) (the model's own C(model_info) still wins), which keeps them
        out of background checks and, with C(general_settings.health_check_skip_disabled_background_models),
        out of C(GET /health). A health check is a real completion, and on demand it would wake the GPU server.
        The fallback is checked either way.
    type: bool
    default: true
seealso:
  - name: LiteLLM proxy configuration
    description: The model_list of LiteLLM's config.yaml.
    link: https://docs.litellm.ai/docs/proxy/configs
"""

EXAMPLES = r"""
- name: LiteLLM's model_list for a chat and an embedding model on the GPU server
  ansible.builtin.debug:
    msg: >-
      {{ [{'name': 'mistral-nemo-12b', 'served_name': 'mistral-nemo-12b', 'port': 8000, 'mode': 'chat'},
          {'name': 'bge-m3', 'served_name': 'bge-m3', 'port': 8001, 'mode': 'embedding'}]
         | parrotpark.llm.litellm_model_list(upstream_host='fd00::5') }}
  # [{'model_name': 'mistral-nemo-12b',
  #   'litellm_params': {'model': 'hosted_vllm/mistral-nemo-12b', 'api_base': 'http://[fd00::5]:8000/v1',
  #                      'api_key': 'os.environ/LITELLM_UPSTREAM_API_KEY'},
  #   'model_info': {'mode': 'chat'}},
  #  {'model_name': 'bge-m3', ...}]

- name: With a cloud fallback and a per-model max_tokens
  ansible.builtin.set_fact:
    litellm_config_models: >-
      {{ [{'name': 'chat', 'served_name': 'mistral-nemo-12b', 'port': 8000,
           'litellm_params': {'max_tokens': 4096}}]
         | parrotpark.llm.litellm_model_list(upstream_host='10.0.0.5',
                                             fallback={'model': 'openai/gpt-4o-mini',
                                                       'api_base': 'https://llm.example.com/v1'}) }}
"""

RETURN = r"""
_value:
  description: The entries of C(model_list), the models' then the fallback's.
  type: list
  elements: dict
  contains:
    model_name:
      description: The public name clients ask for.
      type: str
    litellm_params:
      description: C(model), C(api_base), C(api_key) and the model's own C(litellm_params).
      type: dict
    model_info:
      description: C(mode) and the model's own C(model_info).
      type: dict
"""

import socket  # noqa: E402 (the documentation comes first)
from collections.abc import Mapping  # noqa: E402
from typing import Any  # noqa: E402

from ansible.utils.vars import merge_hash  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import check_models, fail  # noqa: E402

FILTER = "litellm_model_list"
DEFAULT_FALLBACK_NAME = "parrotpark-fallback"
UPSTREAM_KEY = "os.environ/LITELLM_UPSTREAM_API_KEY"
FALLBACK_KEY = "os.environ/LITELLM_FALLBACK_API_KEY"


def ipwrap(host: str) -> str:
    """An IPv6 address in brackets, compressed as ansible.utils.ipwrap writes it; anything else as it is."""
    try:
        packed = socket.inet_pton(socket.AF_INET6, host)
    except (OSError, TypeError, ValueError):
        return host
    return f"[{socket.inet_ntop(socket.AF_INET6, packed)}]"


def _combine(base: dict[str, Any], extra: Any, where: str) -> dict[str, Any]:
    """base | combine(extra, recursive=True)."""
    if not isinstance(extra, Mapping):
        raise fail(FILTER, where, "a dictionary", extra)
    return merge_hash(base, extra, recursive=True, list_merge="replace")


def _entry(index: int, model: Any, upstream_host: str, health_checks: bool = True) -> dict[str, Any]:
    if not isinstance(model, Mapping):
        raise fail(FILTER, f"model {index} of the input", "a dictionary with name, served_name, port, ...", model)
    for key in ("name", "served_name"):
        if model.get(key) in (None, ""):
            raise fail(FILTER, f"model {index} of the input", f"a dictionary with {key}", dict(model))
    where = f"model {model['name']!r}"
    if "api_base" in model:
        api_base = model["api_base"]
    elif model.get("port") in (None, "") or isinstance(model["port"], bool):
        raise fail(FILTER, f"{where}: port", "a port number (or give api_base)", model.get("port"))
    else:
        api_base = f"http://{ipwrap(upstream_host)}:{model['port']}/v1"
    params = {"model": f"hosted_vllm/{model['served_name']}", "api_base": api_base, "api_key": UPSTREAM_KEY}
    info: dict[str, Any] = {"mode": model["mode"] if "mode" in model else "chat"}
    if not health_checks:
        info["disable_background_health_check"] = True
    return {
        "model_name": model["name"],
        "litellm_params": _combine(params, model.get("litellm_params", {}), f"{where}: litellm_params"),
        "model_info": _combine(info, model.get("model_info", {}), f"{where}: model_info"),
    }


def _fallback_entry(fallback: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("model", "api_base"):
        if not isinstance(fallback.get(key), str) or not fallback[key]:
            raise fail(FILTER, f"fallback.{key}", "a non-empty string", fallback.get(key))
    return {
        "model_name": fallback["name"] if "name" in fallback else DEFAULT_FALLBACK_NAME,
        "litellm_params": {"model": fallback["model"], "api_base": fallback["api_base"], "api_key": FALLBACK_KEY},
        "model_info": {"mode": "chat"},
    }


def litellm_model_list(
    models: list[dict[str, Any]],
    upstream_host: str = "",
    fallback: dict[str, Any] | None = None,
    health_checks: bool = True,
) -> list[dict[str, Any]]:
    """LiteLLM's model_list; see DOCUMENTATION."""
    check_models(FILTER, models)
    upstream_host = "" if upstream_host is None else upstream_host
    if not isinstance(upstream_host, str):
        raise fail(FILTER, "upstream_host", "an address or host name", upstream_host)
    fallback = {} if fallback is None else fallback
    if not isinstance(fallback, Mapping):
        raise fail(FILTER, "fallback", "a dictionary with model and api_base, or empty", fallback)
    if not isinstance(health_checks, bool):
        raise fail(FILTER, "health_checks", "true or false", health_checks)
    entries = [_entry(index, model, upstream_host, health_checks) for index, model in enumerate(models)]
    if fallback:
        entries.append(_fallback_entry(fallback))
    return entries


class FilterModule:
    """The litellm_model_list filter."""

    def filters(self) -> dict[str, Any]:
        return {"litellm_model_list": litellm_model_list}
