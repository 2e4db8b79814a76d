# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_command
short_description: The vllm serve arguments of each vLLM model
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - For each model of the input, the argument list of C(vllm serve) (the official image's entrypoint), by model
    name, in the order of the input. The vllm role's C(_vllm_commands) is this filter applied to the enabled
    models with the settings of P(parrotpark.llm.vllm_settings#filter).
  - "Always: C(--model), C(--served-model-name) (the model's C(served_model_name), otherwise C(model)),
    C(--host 0.0.0.0) (the container's side; the role publishes the port on its listen address), C(--port),
    C(--runner) (the model's C(runner), otherwise V(generate))."
  - "Only when set: C(--quantization) (non-empty C(quantization)), C(--max-model-len) and
    C(--gpu-memory-utilization) (from O(settings), when greater than 0), C(--max-num-seqs) (C(max_num_seqs)
    greater than 0), C(--tensor-parallel-size) (C(tensor_parallel_size) greater than 1), C(--kv-cache-dtype)
    (non-empty C(kv_cache_dtype)); then the model's C(extra_args), each made a string."
  - Every model of the input gets a command, whatever its C(enabled); give the enabled ones.
positional: settings
options:
  _input:
    description:
      - The models, a list of dictionaries (the entries of the vllm role's C(vllm_models); other keys are ignored).
      - C(name), C(model) and C(port) are required; C(served_model_name), C(runner), C(quantization),
        C(max_num_seqs), C(tensor_parallel_size), C(kv_cache_dtype) and C(extra_args) (a list) are optional
        (missing, empty or 0 for none).
    type: list
    elements: dict
    required: true
  settings:
    description:
      - The context length and memory share of each model, by name, each a dictionary with C(max_model_len) and
        C(gpu_memory_utilization), as P(parrotpark.llm.vllm_settings#filter) returns them (the fitted values).
      - A model missing from it uses its own C(max_model_len) and C(gpu_memory_utilization).
    type: dict
    default: {}
seealso:
  - name: vllm serve
    description: The command line arguments of vLLM's OpenAI-compatible server.
    link: https://docs.vllm.ai/en/latest/cli/serve.html
"""

EXAMPLES = r"""
- name: The commands of the enabled models, with the fitted settings
  ansible.builtin.set_fact:
    vllm_commands: "{{ vllm_models | parrotpark.llm.vllm_command(vllm_models | parrotpark.llm.vllm_settings) }}"

- name: One model with its own settings
  ansible.builtin.debug:
    msg: >-
      {{ [{'name': 'chat', 'model': 'casperhansen/mistral-nemo-instruct-2407-awq',
           'served_model_name': 'mistral-nemo-12b', 'port': 8000, 'quantization': 'awq',
           'max_model_len': 32768, 'gpu_memory_utilization': 0.75, 'max_num_seqs': 16}]
         | parrotpark.llm.vllm_command }}
  # {'chat': ['--model', 'casperhansen/mistral-nemo-instruct-2407-awq', '--served-model-name',
  #           'mistral-nemo-12b', '--host', '0.0.0.0', '--port', '8000', '--runner', 'generate',
  #           '--quantization', 'awq', '--max-model-len', '32768', '--gpu-memory-utilization', '0.75',
  #           '--max-num-seqs', '16']}
"""

RETURN = r"""
_value:
  description:
    - Model name -> the arguments of C(vllm serve), a list of strings (C(model), C(served_model_name), C(runner),
      C(quantization) and C(kv_cache_dtype) as given).
  type: dict
"""

from collections.abc import Mapping  # noqa: E402 (the documentation comes first)
from typing import Any  # noqa: E402

from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import (  # noqa: E402
    check_models,
    fail,
    is_list,
    jinja_float,
    jinja_integer,
    model_name,
)

FILTER = "vllm_command"
# The container listens on every address; the role publishes the port on
# vllm_listen_address.
CONTAINER_HOST = "0.0.0.0"


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(FILTER, where, "a non-empty string", value)
    return value


def _optional_text(where: str, value: Any) -> str:
    """A string option: missing, None or empty is ''."""
    if not value:
        return ""
    if not isinstance(value, str):
        raise fail(FILTER, where, "a string", value)
    return value


def _settings(name: Any, model: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[int, float]:
    given = settings.get(name)
    if given is None:
        given = model
    elif not isinstance(given, Mapping):
        raise fail(FILTER, f"settings[{name!r}]", "a dictionary with max_model_len and gpu_memory_utilization", given)
    return (
        jinja_integer(FILTER, f"max_model_len of model {name!r}", given.get("max_model_len") or 0),
        jinja_float(FILTER, f"gpu_memory_utilization of model {name!r}", given.get("gpu_memory_utilization") or 0),
    )


def command(model: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """The vllm serve arguments of one model (a validated name is expected)."""
    name = model["name"]
    where = f"model {name!r}"
    checkpoint = _text(f"{where}: model", model.get("model"))
    if model.get("port") in (None, "") or isinstance(model["port"], bool):
        raise fail(FILTER, f"{where}: port", "a port number", model.get("port"))
    max_model_len, utilization = _settings(name, model, settings)

    argv = [
        "--model",
        checkpoint,
        "--served-model-name",
        model.get("served_model_name") or checkpoint,
        "--host",
        CONTAINER_HOST,
        "--port",
        str(model["port"]),
        "--runner",
        model.get("runner") or "generate",
    ]
    quantization = _optional_text(f"{where}: quantization", model.get("quantization"))
    if quantization:
        argv += ["--quantization", quantization]
    if max_model_len > 0:
        argv += ["--max-model-len", str(max_model_len)]
    if utilization > 0:
        argv += ["--gpu-memory-utilization", str(utilization)]
    # The value as given (Jinja's "string" of it), compared as an integer.
    if jinja_integer(FILTER, f"{where}: max_num_seqs", model.get("max_num_seqs") or 0) > 0:
        argv += ["--max-num-seqs", str(model["max_num_seqs"])]
    if jinja_integer(FILTER, f"{where}: tensor_parallel_size", model.get("tensor_parallel_size") or 1) > 1:
        argv += ["--tensor-parallel-size", str(model["tensor_parallel_size"])]
    kv_cache_dtype = _optional_text(f"{where}: kv_cache_dtype", model.get("kv_cache_dtype"))
    if kv_cache_dtype:
        argv += ["--kv-cache-dtype", kv_cache_dtype]
    extra_args = model.get("extra_args") or []
    if not is_list(extra_args):
        raise fail(FILTER, f"{where}: extra_args", "a list of arguments", extra_args)
    return argv + [str(argument) for argument in extra_args]


def vllm_command(models: list[dict[str, Any]], settings: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Model name -> vllm serve arguments; see DOCUMENTATION."""
    check_models(FILTER, models)
    settings = {} if settings is None else settings
    if not isinstance(settings, Mapping):
        raise fail(FILTER, "settings", "a dictionary of settings by model name", settings)
    commands: dict[str, list[str]] = {}
    for index, model in enumerate(models):
        name = model_name(FILTER, index, model)
        commands[name] = command(model, settings)
    return commands


class FilterModule:
    """The vllm_command filter."""

    def filters(self) -> dict[str, Any]:
        return {"vllm_command": vllm_command}
