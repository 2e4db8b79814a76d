# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: litellm_fallbacks
short_description: LiteLLM's router fallbacks, every chat model to one fallback model
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - The C(router_settings.fallbacks) of LiteLLM's config.yaml that send every chat model of the input to the model
    named O(fallback_name) when its own route fails.
  - "Chat models are those without C(mode) (chat is the default), then those with C(mode) V(chat), each group in
    the order of the input. Embedding models never fall back: another model's vectors would not match the stored
    ones."
  - The litellm role's C(_litellm_fallbacks) is this filter applied to C(litellm_models) with the fallback's
    name; P(parrotpark.llm.litellm_model_list#filter) adds the fallback model itself to C(model_list).
positional: fallback_name
options:
  _input:
    description: The models, a list of dictionaries with C(name) and optionally C(mode) (the litellm role's
      C(litellm_models)).
    type: list
    elements: dict
    required: true
  fallback_name:
    description: The public name of the fallback model (the C(model_name) of its C(model_list) entry).
    type: str
    required: true
seealso:
  - name: LiteLLM fallbacks
    description: How LiteLLM's router falls back to another model.
    link: https://docs.litellm.ai/docs/proxy/reliability
"""

EXAMPLES = r"""
- name: The chat model falls back to the cloud model, the embedding model does not
  ansible.builtin.debug:
    msg: >-
      {{ [{'name': 'mistral-nemo-12b', 'mode': 'chat'}, {'name': 'bge-m3', 'mode': 'embedding'}]
         | parrotpark.llm.litellm_fallbacks('parrotpark-fallback') }}
  # [{'mistral-nemo-12b': ['parrotpark-fallback']}]
"""

RETURN = r"""
_value:
  description: One single-key dictionary per chat model, its name -> a list holding O(fallback_name).
  type: list
  elements: dict
"""

from collections.abc import Mapping  # noqa: E402 (the documentation comes first)
from typing import Any  # noqa: E402

from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import check_models, fail  # noqa: E402

FILTER = "litellm_fallbacks"


def litellm_fallbacks(models: list[dict[str, Any]], fallback_name: str) -> list[dict[str, list[str]]]:
    """Every chat model -> [fallback_name]; see DOCUMENTATION."""
    check_models(FILTER, models)
    if not isinstance(fallback_name, str) or not fallback_name:
        raise fail(FILTER, "fallback_name", "the non-empty name of the fallback model", fallback_name)
    for index, model in enumerate(models):
        if not isinstance(model, Mapping) or model.get("name") in (None, ""):
            raise fail(FILTER, f"model {index} of the input", "a dictionary with a name", model)
    # The default mode (no mode key) first, then the explicit chat models.
    chat = [model["name"] for model in models if "mode" not in model]
    chat += [model["name"] for model in models if "mode" in model and model["mode"] == "chat"]
    return [{name: [fallback_name]} for name in chat]


class FilterModule:
    """The litellm_fallbacks filter."""

    def filters(self) -> dict[str, Any]:
        return {"litellm_fallbacks": litellm_fallbacks}
