# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_fit
short_description: Decide whether a model fits a GPU under vLLM, with which context length and memory fraction
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - Estimates the GPU memory a vLLM instance needs for a model, from the model's size and quantization (the
    weights), its attention shape (the KV cache per token) and a fixed runtime overhead (CUDA context,
    activations, CUDA graphs), and compares it with the part of the GPU the instance may use.
  - "Memory per GPU: O(gpu_memory_utilization) x the GPU's memory must hold the weights divided by the tensor
    parallel size, O(overhead_gb), and the KV cache of at least O(min_model_len) tokens. The KV cache of one
    token is C(2 x layers x kv_heads x head_dim x bytes per element) (keys and values of every layer), split
    over the GPUs by tensor parallelism."
  - The context length returned is the desired one when it fits, otherwise the largest multiple of 1024
    tokens that fits; below O(min_model_len) the model does not fit.
  - "Weights use these bytes per parameter: 2 for unquantized 16-bit models (C(quantization) empty, V(fp16),
    V(bf16)), 4 for V(fp32), 1 for 8-bit methods (V(fp8), V(int8), V(experts_int8), V(fbgemm_fp8), ...), 0.55
    for 4-bit methods (V(awq), V(awq_marlin), V(gptq), V(gptq_marlin), V(int4), V(mxfp4), ...: 4-bit weights
    plus scales and the layers kept in 16 bits). Give C(bytes_per_param) for anything else."
  - All sizes are in GB of 10^9 bytes, so that 7 billion parameters in FP16 weigh 14 GB. A GPU name uses the
    memory its driver reports (an L4 reports 23034 MiB, 24.15 GB).
  - It is an estimate for planning, not a guarantee; vLLM's own profiling at start is the final word, and
    its log prints the KV cache it could allocate.
  - "Known GPUs (O(gpu)): V(L4) (24 GB), V(L40S) (48 GB), V(H100) and V(H100-SXM) (80 GB), V(P100) (16 GB),
    V(RTX-3070) (8 GB), and the Scaleway server types built from them: V(L4-1-24G), V(L4-2-24G),
    V(L4-4-24G), V(L4-8-24G), V(L40S-1-48G) to V(L40S-8-48G), V(H100-1-80G), V(H100-2-80G),
    V(H100-SXM-2-80G) to V(H100-SXM-8-80G), V(RENDER-S) (one P100), V(GPU-3070-S) (one RTX 3070). The digit
    after the GPU is the number of GPUs."
positional: gpu
options:
  _input:
    description:
      - "The model's facts, a dictionary (the entries of the vllm role's C(vllm_models) can be given as they are,
        other keys are ignored):"
      - C(params_b) (required), the number of parameters in billions.
      - C(quantization), the vLLM quantization method of the checkpoint (empty for an unquantized 16-bit model),
        or C(bytes_per_param) to give the weight size per parameter directly.
      - C(layers), C(kv_heads) (key/value heads, fewer than the attention heads with grouped-query attention)
        and C(head_dim), from the model's C(config.json) (C(num_hidden_layers), C(num_key_value_heads),
        C(head_dim) or C(hidden_size / num_attention_heads)); or C(kv_bytes_per_token) for the whole model.
      - C(kv_cache_dtype), vLLM's C(--kv-cache-dtype) (V(auto) is 2 bytes per element, V(fp8) and its variants
        1), or C(kv_dtype_bytes).
      - C(max_model_len), the desired context length in tokens, when O(max_model_len) is not given.
      - C(gpu_memory_utilization), the fraction of the GPU the instance gets, when O(gpu_memory_utilization) is
        not given.
      - C(tensor_parallel_size), when O(tensor_parallel_size) is not given.
    type: dict
    required: true
  gpu:
    description:
      - A GPU name or Scaleway server type from the table in the description, case-insensitive. It sets the
        memory per GPU and the number of GPUs.
      - Give either O(gpu) or O(gpu_memory_gb).
    type: str
  gpu_memory_gb:
    description: Memory of one GPU in GB (10^9 bytes), instead of O(gpu).
    type: float
  gpu_count:
    description:
      - Number of GPUs of the host. Defaults to the count in a Scaleway server type name, otherwise 1.
    type: int
  tensor_parallel_size:
    description:
      - Number of GPUs the model is split over (vLLM's C(--tensor-parallel-size)); at most O(gpu_count).
      - Defaults to the model's C(tensor_parallel_size), otherwise to O(gpu_count).
    type: int
  max_model_len:
    description:
      - Desired context length in tokens. Defaults to the model's C(max_model_len); one of the two is required.
    type: int
  min_model_len:
    description:
      - Shortest context length worth serving, in tokens. A model that cannot hold this many tokens does not
        fit. A chat with a few turns of history and retrieved passages needs several thousand tokens. Capped
        at the desired length (an embedding model with a 512-token window needs no more).
    type: int
    default: 8192
  used_fraction:
    description:
      - Fraction of each GPU's memory already taken by other vLLM instances on the same GPUs (the sum of their
        C(gpu_memory_utilization)), for example the embedding model's started before the chat model.
    type: float
    default: 0.0
  gpu_memory_utilization:
    description:
      - Fraction of each GPU's memory this instance may use (vLLM's C(--gpu-memory-utilization)). Defaults to
        the model's C(gpu_memory_utilization), otherwise to O(max_total_fraction) minus O(used_fraction).
      - A given value must leave room for the other instances, O(used_fraction) + this <= 0.98 (vLLM refuses to
        start when the free memory is below its share).
    type: float
  max_total_fraction:
    description:
      - Fraction of each GPU that all the instances together may use, when the fraction is derived (vLLM's own
        default for a single instance is 0.9).
    type: float
    default: 0.9
  overhead_gb:
    description:
      - Memory per GPU that is neither weights nor KV cache (CUDA context, activations of the profiling run,
        CUDA graphs), in GB.
    type: float
    default: 1.5
seealso:
  - name: vLLM memory and conserving memory
    description: vLLM's guide to the memory settings this filter estimates.
    link: https://docs.vllm.ai/en/latest/configuration/conserving_memory.html
"""

EXAMPLES = r"""
- name: Does Mistral Nemo 12B (AWQ) fit an L4 next to an embedding model that takes 15 %?
  ansible.builtin.debug:
    msg: >-
      {{ {'params_b': 12.2, 'quantization': 'awq', 'layers': 40, 'kv_heads': 8, 'head_dim': 128}
         | parrotpark.llm.vllm_fit('L4', max_model_len=32768, used_fraction=0.15) }}
  # fits: true, gpu_memory_utilization: 0.75, max_model_len: 32768,
  # weights_gb: 6.71, kv_gb_per_1k_tokens: 0.168, ...

- name: How much context does a 70B AWQ model get on two L40S?
  ansible.builtin.set_fact:
    big_model_fit: >-
      {{ {'params_b': 70.6, 'quantization': 'awq', 'layers': 80, 'kv_heads': 8, 'head_dim': 128,
          'max_model_len': 131072} | parrotpark.llm.vllm_fit('L40S-2-48G') }}

- name: Stop when it does not fit, with the numbers
  ansible.builtin.assert:
    that: big_model_fit.fits
    fail_msg: "{{ big_model_fit.reason }}"

- name: A GPU that is not in the table, and a KV cache size from the model card
  ansible.builtin.debug:
    msg: >-
      {{ {'params_b': 8, 'quantization': 'fp8', 'kv_bytes_per_token': 131072, 'max_model_len': 16384}
         | parrotpark.llm.vllm_fit(gpu_memory_gb=32, overhead_gb=2) }}
"""

RETURN = r"""
_value:
  description: The decision and the numbers behind it.
  type: dict
  contains:
    fits:
      description: Whether the model fits with at least O(min_model_len) tokens of context.
      type: bool
    reason:
      description: One sentence with the numbers, for a log or a failure message.
      type: str
    gpu_memory_utilization:
      description: Fraction of each GPU to give vLLM (C(--gpu-memory-utilization)), rounded down to 2 decimals.
      type: float
    max_model_len:
      description:
        - Context length to give vLLM (C(--max-model-len)), the desired one or the largest multiple of 1024 that
          fits. 0 when the model does not fit.
      type: int
    desired_model_len:
      description: The context length asked for.
      type: int
    min_model_len:
      description: The shortest context length accepted (O(min_model_len), capped at the desired length).
      type: int
    max_tokens:
      description: Tokens the KV cache left over could hold (0 when the weights alone do not fit).
      type: int
    tensor_parallel_size:
      description: Number of GPUs the model is split over.
      type: int
    gpu:
      description: The GPU name as given, or C(custom) for O(gpu_memory_gb).
      type: str
    gpu_count:
      description: Number of GPUs of the host.
      type: int
    gpu_memory_gb:
      description: Memory of one GPU, GB.
      type: float
    params_b:
      description: Parameters of the model, in billions.
      type: float
    bytes_per_param:
      description: Bytes per parameter used for the weights.
      type: float
    weights_gb:
      description: Size of the weights, GB (the whole model).
      type: float
    weights_gb_per_gpu:
      description: Weights each GPU holds, GB.
      type: float
    kv_gb_per_1k_tokens:
      description: KV cache of 1024 tokens, GB (the whole model, over all GPUs).
      type: float
    overhead_gb:
      description: Runtime overhead per GPU, GB.
      type: float
    available_gb:
      description: Memory of each GPU the instance may use (GPU memory x gpu_memory_utilization), GB.
      type: float
    kv_available_gb:
      description: What is left on each GPU for the KV cache after weights and overhead, GB (negative when the
        weights do not fit).
      type: float
    needed_gb:
      description:
        - Memory each GPU needs for the weights, the overhead and the KV cache of the returned context length
          (of O(min_model_len) tokens when the model does not fit), GB.
      type: float
"""

import math  # noqa: E402 (the documentation comes first)
import re  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import fail  # noqa: E402

FILTER = "vllm_fit"
GB = 1e9
MIB = 1024 * 1024
# Memory the driver reports (nvidia-smi "Total"), MiB; nominal sizes where no
# measurement is at hand.
GPU_MEMORY_MIB: dict[str, int] = {
    "L4": 23034,
    "L40S": 46068,
    "H100": 81559,
    "H100-SXM": 81559,
    "P100": 16384,
    "RTX-3070": 8192,
}
# The size in the name of a Scaleway server type (L40S-2-48G).
GPU_NOMINAL_GB: dict[str, int] = {"L4": 24, "L40S": 48, "H100": 80, "H100-SXM": 80, "P100": 16, "RTX-3070": 8}
# Scaleway server types that are not named <GPU>-<count>-<memory>G.
SCALEWAY_ALIASES: dict[str, tuple[str, int]] = {
    "RENDER-S": ("P100", 1),
    "GPU-3070-S": ("RTX-3070", 1),
}
SCALEWAY_TYPE = re.compile(r"^(?P<gpu>[A-Z0-9]+(?:-SXM)?)-(?P<count>[1-9][0-9]*)-(?P<memory>[0-9]+)G$")

# Bytes per parameter of the weights, by vLLM quantization method.
SIXTEEN_BIT = ("", "none", "auto", "fp16", "bf16", "float16", "bfloat16", "half")
EIGHT_BIT = (
    "fp8",
    "int8",
    "w8a8",
    "experts_int8",
    "fbgemm_fp8",
    "modelopt",
    "modelopt_mxfp8",
    "mxfp8",
    "fp8_per_tensor",
    "fp8_per_block",
    "fp8_per_channel",
    "int8_per_channel_weight_only",
    "deepseek_v4_fp8",
)
FOUR_BIT = (
    "awq",
    "awq_marlin",
    "auto_awq",
    "gptq",
    "gptq_marlin",
    "auto_gptq",
    "int4",
    "w4a16",
    "marlin",
    "mxfp4",
    "gpt_oss_mxfp4",
    "modelopt_fp4",
    "nvfp4_per_token",
    "moe_wna16",
)
BYTES_PER_PARAM: dict[str, float] = {
    **dict.fromkeys(SIXTEEN_BIT, 2.0),
    "fp32": 4.0,
    "float32": 4.0,
    **dict.fromkeys(EIGHT_BIT, 1.0),
    **dict.fromkeys(FOUR_BIT, 0.55),
}
KV_DTYPE_BYTES: dict[str, int] = {
    "auto": 2,
    "": 2,
    "float16": 2,
    "bfloat16": 2,
    "fp16": 2,
    "bf16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "fp8_inc": 1,
    "fp8_ds_mla": 1,
}
# vLLM refuses to start when the free memory is below its share; the
# CUDA context of the new process needs a little on top.
FREE_MARGIN = 0.02
STEP = 1024


def _number(argument: str, value: Any, *, minimum: float = 0.0, strict: bool = True, maximum: float | None = None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).strip())
        except ValueError:
            raise fail(FILTER, argument, "a number", value) from None
    if not math.isfinite(value):
        raise fail(FILTER, argument, "a finite number", value)
    low_ok = value > minimum if strict else value >= minimum
    high_ok = maximum is None or value <= maximum
    if not (low_ok and high_ok):
        bounds = f"{'greater than' if strict else 'at least'} {minimum:g}"
        if maximum is not None:
            bounds += f" and at most {maximum:g}"
        raise fail(FILTER, argument, f"a number {bounds}", value)
    return float(value)


def _integer(argument: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise fail(FILTER, argument, f"an integer of at least {minimum}", value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise fail(FILTER, argument, f"an integer of at least {minimum}", value) from None
    if value < minimum:
        raise fail(FILTER, argument, f"an integer of at least {minimum}", value)
    return value


def _given(value: Any) -> bool:
    """None, an empty string and 0 mean "not given" (the role's defaults use 0 for "derive")."""
    return value is not None and value != "" and not (isinstance(value, (int, float)) and value == 0)


def gpu_spec(gpu: str) -> tuple[str, float, int]:
    """(GPU model, memory of one GPU in bytes, number of GPUs) for a GPU name or a Scaleway server type."""
    if not isinstance(gpu, str) or not gpu.strip():
        raise fail(FILTER, "gpu", "a GPU name or a Scaleway GPU server type", gpu)
    name = gpu.strip().upper()
    if name in GPU_MEMORY_MIB:
        return name, GPU_MEMORY_MIB[name] * MIB, 1
    if name in SCALEWAY_ALIASES:
        model, count = SCALEWAY_ALIASES[name]
        return model, GPU_MEMORY_MIB[model] * MIB, count
    match = SCALEWAY_TYPE.match(name)
    if match and match["gpu"] in GPU_MEMORY_MIB:
        if GPU_NOMINAL_GB[match["gpu"]] == int(match["memory"]):
            return match["gpu"], GPU_MEMORY_MIB[match["gpu"]] * MIB, int(match["count"])
    known = sorted(GPU_MEMORY_MIB) + sorted(SCALEWAY_ALIASES) + ["L4-1-24G", "L40S-2-48G", "H100-2-80G", "..."]
    raise fail(FILTER, "gpu", f"one of {', '.join(known)} (or give gpu_memory_gb)", gpu)


def bytes_per_param(model: dict[str, Any]) -> float:
    if _given(model.get("bytes_per_param")):
        return _number("bytes_per_param", model["bytes_per_param"], maximum=8)
    quantization = model.get("quantization")
    quantization = "" if quantization is None else str(quantization).strip().lower()
    if quantization not in BYTES_PER_PARAM:
        raise fail(
            FILTER,
            "quantization",
            "empty (16-bit weights) or one of "
            + ", ".join(sorted(q for q in BYTES_PER_PARAM if q))
            + " (or give bytes_per_param)",
            model.get("quantization"),
        )
    return BYTES_PER_PARAM[quantization]


def kv_bytes_per_token(model: dict[str, Any], tensor_parallel_size: int) -> tuple[float, float]:
    """(KV cache bytes of one token for the whole model, the same on each GPU)."""
    if _given(model.get("kv_bytes_per_token")):
        whole = _number("kv_bytes_per_token", model["kv_bytes_per_token"])
        return whole, whole / tensor_parallel_size
    missing = [key for key in ("layers", "kv_heads", "head_dim") if not _given(model.get(key))]
    if missing:
        raise fail(
            FILTER,
            " and ".join(missing),
            "given (the model's num_hidden_layers, num_key_value_heads and head_dim), or kv_bytes_per_token",
            {key: model.get(key) for key in missing},
        )
    layers = _integer("layers", model["layers"])
    kv_heads = _integer("kv_heads", model["kv_heads"])
    head_dim = _integer("head_dim", model["head_dim"])
    if _given(model.get("kv_dtype_bytes")):
        element = _number("kv_dtype_bytes", model["kv_dtype_bytes"], maximum=4)
    else:
        kv_cache_dtype = str(model.get("kv_cache_dtype") or "auto").strip().lower()
        if kv_cache_dtype not in KV_DTYPE_BYTES:
            raise fail(
                FILTER, "kv_cache_dtype", f"one of {', '.join(sorted(k for k in KV_DTYPE_BYTES if k))}", kv_cache_dtype
            )
        element = KV_DTYPE_BYTES[kv_cache_dtype]
    whole = 2 * layers * kv_heads * head_dim * element
    # Tensor parallelism splits the key/value heads; with fewer heads than
    # GPUs each GPU keeps (a copy of) one.
    per_gpu = 2 * layers * math.ceil(kv_heads / tensor_parallel_size) * head_dim * element
    return whole, per_gpu


def _gb(value: float) -> float:
    return round(value / GB, 3)


def _gpus(
    model: dict[str, Any], gpu: Any, gpu_memory_gb: Any, gpu_count: Any, tensor_parallel_size: Any
) -> tuple[str, str, float, int, int]:
    """(name as given, description of one GPU, bytes of one GPU, GPUs of the host, tensor parallel size)."""
    if _given(gpu) and _given(gpu_memory_gb):
        raise fail(FILTER, "gpu and gpu_memory_gb", "given one at a time", {"gpu": gpu, "gpu_memory_gb": gpu_memory_gb})
    if _given(gpu):
        name = str(gpu)
        described, memory, count = gpu_spec(name)
    elif _given(gpu_memory_gb):
        name, memory, count = "custom", _number("gpu_memory_gb", gpu_memory_gb) * GB, 1
        described = f"GPU of {_gb(memory):g} GB"
    else:
        raise fail(
            FILTER, "gpu or gpu_memory_gb", "given (a GPU name such as L4, or the memory of one GPU in GB)", None
        )
    if _given(gpu_count):
        count = _integer("gpu_count", gpu_count)
    if _given(tensor_parallel_size):
        tp = _integer("tensor_parallel_size", tensor_parallel_size)
    elif _given(model.get("tensor_parallel_size")):
        tp = _integer("tensor_parallel_size", model["tensor_parallel_size"])
    else:
        tp = count
    if tp > count:
        raise fail(FILTER, "tensor_parallel_size", f"at most the number of GPUs ({count} on {name})", tp)
    return name, described, memory, count, tp


def _where(name: str, described: str, count: int) -> str:
    if name == "custom":
        return f"{count} x {described}" if count > 1 else f"a {described}"
    return f"{name} ({count} x {described})" if count > 1 else name


def _reason(facts: dict[str, Any], where: str, used: float, weights_per_gpu: float, kv_available: float) -> str:
    split = f" split over {facts['tensor_parallel_size']} GPUs" if facts["tensor_parallel_size"] > 1 else ""
    numbers = (
        f"weights {facts['weights_gb']:g} GB{split} ({facts['params_b']:g}B parameters x "
        f"{facts['bytes_per_param']:g} bytes), KV cache {facts['kv_gb_per_1k_tokens']:g} GB per 1k tokens, "
        f"overhead {facts['overhead_gb']:g} GB; {facts['available_gb']:g} GB of {facts['gpu_memory_gb']:g} GB per "
        f"GPU available at gpu_memory_utilization {facts['gpu_memory_utilization']:g}"
    )
    tokens, chosen, desired = facts["max_tokens"], facts["max_model_len"], facts["desired_model_len"]
    if facts["gpu_memory_utilization"] <= 0 or used + facts["gpu_memory_utilization"] > 1 - FREE_MARGIN + 1e-9:
        return (
            f"Does not fit on {where}: gpu_memory_utilization {facts['gpu_memory_utilization']:g} plus the {used:g} "
            f"already used by other instances leaves no room (at most {max(0.0, 1 - FREE_MARGIN - used):.2f}); "
            f"{numbers}."
        )
    if kv_available <= 0:
        return (
            f"Does not fit on {where}: the weights and overhead need {_gb(weights_per_gpu) + facts['overhead_gb']:g} "
            f"GB per GPU, more than the {facts['available_gb']:g} GB available; {numbers}."
        )
    if not facts["fits"]:
        return (
            f"Does not fit on {where}: {_gb(kv_available):g} GB left for the KV cache holds {tokens} tokens, fewer "
            f"than the minimum useful context of {facts['min_model_len']} (needs {facts['needed_gb']:g} GB per GPU); "
            f"{numbers}."
        )
    instead = f" instead of {desired}" if chosen < desired else ""
    return (
        f"Fits on {where} with max_model_len {chosen}{instead}: {_gb(kv_available):g} GB left for the KV cache "
        f"holds {tokens} tokens; {numbers}."
    )


def vllm_fit(
    model: dict[str, Any],
    gpu: str | None = None,
    *,
    gpu_memory_gb: float | None = None,
    gpu_count: int | None = None,
    tensor_parallel_size: int | None = None,
    max_model_len: int | None = None,
    min_model_len: int = 8192,
    used_fraction: float = 0.0,
    gpu_memory_utilization: float | None = None,
    max_total_fraction: float = 0.9,
    overhead_gb: float = 1.5,
) -> dict[str, Any]:
    """Decide whether ``model`` fits the GPU(s); see DOCUMENTATION."""
    if not isinstance(model, dict):
        raise fail(FILTER, "the input", "a dictionary of model facts (params_b, quantization, layers, ...)", model)
    if not _given(model.get("params_b")):
        raise fail(FILTER, "params_b", "given: the number of parameters in billions", model.get("params_b"))
    params_b = _number("params_b", model["params_b"])
    name, described, memory, count, tp = _gpus(model, gpu, gpu_memory_gb, gpu_count, tensor_parallel_size)

    used = _number("used_fraction", used_fraction, strict=False, maximum=1)
    max_total = _number("max_total_fraction", max_total_fraction, maximum=1)
    overhead = _number("overhead_gb", overhead_gb, strict=False) * GB
    if _given(gpu_memory_utilization):
        utilization = _number("gpu_memory_utilization", gpu_memory_utilization, maximum=1)
    elif _given(model.get("gpu_memory_utilization")):
        utilization = _number("gpu_memory_utilization", model["gpu_memory_utilization"], maximum=1)
    else:
        utilization = max(0.0, math.floor(round((max_total - used) * 100, 6)) / 100)
    if _given(max_model_len):
        desired = _integer("max_model_len", max_model_len)
    elif _given(model.get("max_model_len")):
        desired = _integer("max_model_len", model["max_model_len"])
    else:
        raise fail(FILTER, "max_model_len", "given (the desired context length in tokens), here or in the model", None)
    minimum = min(_integer("min_model_len", min_model_len), desired)

    per_param = bytes_per_param(model)
    weight_bytes = params_b * 1e9 * per_param
    kv_whole, kv_per_gpu = kv_bytes_per_token(model, tp)
    weights_per_gpu = weight_bytes / tp
    available = memory * utilization
    kv_available = available - weights_per_gpu - overhead
    max_tokens = max(0, math.floor(kv_available / kv_per_gpu))
    chosen = desired if max_tokens >= desired else max_tokens // STEP * STEP
    share_ok = utilization > 0 and used + utilization <= 1 - FREE_MARGIN + 1e-9
    fits = share_ok and chosen >= minimum

    facts = {
        "fits": fits,
        "gpu_memory_utilization": utilization,
        "max_model_len": chosen if fits else 0,
        "desired_model_len": desired,
        "min_model_len": minimum,
        "max_tokens": max_tokens,
        "tensor_parallel_size": tp,
        "gpu": name,
        "gpu_count": count,
        "gpu_memory_gb": _gb(memory),
        "params_b": params_b,
        "bytes_per_param": per_param,
        "weights_gb": _gb(weight_bytes),
        "weights_gb_per_gpu": _gb(weights_per_gpu),
        "kv_gb_per_1k_tokens": _gb(kv_whole * STEP),
        "overhead_gb": _gb(overhead),
        "available_gb": _gb(available),
        "kv_available_gb": _gb(kv_available),
        "needed_gb": _gb(weights_per_gpu + overhead + kv_per_gpu * (chosen if fits else minimum)),
    }
    facts["reason"] = _reason(facts, _where(name, described, count), used, weights_per_gpu, kv_available)
    return facts


class FilterModule:
    """The vllm_fit filter."""

    def filters(self) -> dict[str, Any]:
        return {"vllm_fit": vllm_fit}
