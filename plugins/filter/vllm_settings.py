# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_settings
short_description: The context length and GPU memory share each vLLM model gets, its own or the fitted ones
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - For each model of the input, the C(max_model_len) and C(gpu_memory_utilization) vLLM is started with, by model
    name, in the order of the input.
  - A value decided by the fit check (the P(parrotpark.llm.vllm_fit#filter) results in O(fits)) wins over the
    model's own; a value that is missing, empty or 0 in both is 0, which means "vLLM's own default" (the
    P(parrotpark.llm.vllm_command#filter) filter then leaves its flag out).
  - The vllm role computes its C(_vllm_settings) with this filter from the enabled models and the fit decisions
    of its preflight; P(parrotpark.llm.vllm_command#filter) turns them into the containers' commands.
positional: fits
options:
  _input:
    description:
      - The models, a list of dictionaries (the entries of the vllm role's C(vllm_models); other keys are ignored).
      - C(name) (required) names the model in the result; C(max_model_len) and C(gpu_memory_utilization) are its
        own values (missing, empty or 0 for none).
    type: list
    elements: dict
    required: true
  fits:
    description:
      - The fit decisions by model name, each a dictionary with C(max_model_len) and C(gpu_memory_utilization),
        such as the results of P(parrotpark.llm.vllm_fit#filter). A decision that is missing, empty or 0 leaves
        the model's own value. Names that are not in the input are ignored.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The models' own values
  ansible.builtin.debug:
    msg: "{{ vllm_models | parrotpark.llm.vllm_settings }}"
  # {'embed': {'max_model_len': 8192, 'gpu_memory_utilization': 0.15},
  #  'chat': {'max_model_len': 32768, 'gpu_memory_utilization': 0.75}}

- name: The fit check gave the chat model a shorter context
  ansible.builtin.debug:
    msg: >-
      {{ vllm_models | parrotpark.llm.vllm_settings({'chat': {'max_model_len': 24576,
                                                             'gpu_memory_utilization': 0.74}}) }}
  # {'embed': {'max_model_len': 8192, 'gpu_memory_utilization': 0.15},
  #  'chat': {'max_model_len': 24576, 'gpu_memory_utilization': 0.74}}
"""

RETURN = r"""
_value:
  description:
    - Model name -> its settings, in the order of the input (a later model with the same name replaces the earlier
      one's settings).
  type: dict
  contains:
    max_model_len:
      description: Context length in tokens (C(--max-model-len)); 0 for vLLM's default (the model's own).
      type: int
    gpu_memory_utilization:
      description: Fraction of each GPU's memory (C(--gpu-memory-utilization)); 0.0 for vLLM's default.
      type: float
"""

from collections.abc import Mapping  # noqa: E402 (the documentation comes first)
from typing import Any  # noqa: E402

from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import (  # noqa: E402
    check_models,
    fail,
    jinja_float,
    jinja_integer,
    model_name,
)

FILTER = "vllm_settings"


def vllm_settings(models: list[dict[str, Any]], fits: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Model name -> max_model_len and gpu_memory_utilization; see DOCUMENTATION."""
    check_models(FILTER, models)
    fits = {} if fits is None else fits
    if not isinstance(fits, Mapping):
        raise fail(FILTER, "fits", "a dictionary of fit decisions by model name", fits)
    settings: dict[str, dict[str, Any]] = {}
    for index, model in enumerate(models):
        name = model_name(FILTER, index, model)
        fit = fits.get(name) or {}
        if not isinstance(fit, Mapping):
            raise fail(FILTER, f"fits[{name!r}]", "a dictionary with max_model_len and gpu_memory_utilization", fit)
        # A missing, empty or 0 value falls through to the next source
        # (Jinja's default(..., true)).
        max_model_len = fit.get("max_model_len") or model.get("max_model_len") or 0
        utilization = fit.get("gpu_memory_utilization") or model.get("gpu_memory_utilization") or 0
        settings[name] = {
            "max_model_len": jinja_integer(FILTER, f"max_model_len of model {name!r}", max_model_len),
            "gpu_memory_utilization": jinja_float(FILTER, f"gpu_memory_utilization of model {name!r}", utilization),
        }
    return settings


class FilterModule:
    """The vllm_settings filter."""

    def filters(self) -> dict[str, Any]:
        return {"vllm_settings": vllm_settings}
