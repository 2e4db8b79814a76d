"""The vllm_fit filter: which models fit which GPUs, with which context and memory fraction.

The model shapes are those of the models' config.json (num_hidden_layers,
num_key_value_heads, head_dim). Parrotpark runs the chat model next to the
embedding model on the same GPU: the embedding instance starts first with
gpu_memory_utilization 0.15 (the vllm role's default), and the chat model gets
the rest up to 0.9. The table below decides in that layout, and says where the
answer differs for a model alone on its GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.vllm_fit import FilterModule, vllm_fit  # noqa: E402
from filter_support import filter_doc, render  # noqa: E402

# Llama-2-7B: multi-head attention (32 key/value heads), unquantized FP16.
LLAMA2_7B_FP16 = {"params_b": 6.74, "quantization": "", "layers": 32, "kv_heads": 32, "head_dim": 128}
# Mistral-Nemo-Instruct-2407 12B, AWQ (the role's default chat model).
NEMO_12B_AWQ = {"params_b": 12.2, "quantization": "awq", "layers": 40, "kv_heads": 8, "head_dim": 128}
# Llama-3.1-70B-Instruct, AWQ.
LLAMA3_70B_AWQ = {"params_b": 70.6, "quantization": "awq", "layers": 80, "kv_heads": 8, "head_dim": 128}
# BAAI/bge-m3 (XLM-RoBERTa large; the role's default embedding model).
BGE_M3 = {"params_b": 0.568, "quantization": "", "layers": 24, "kv_heads": 16, "head_dim": 64}

EMBED_FRACTION = 0.15
CHAT_CONTEXT = 32768

# (model, GPU, fits, max_model_len chosen)
TABLE = {
    "7B FP16 on L4: no useful context left": (LLAMA2_7B_FP16, "L4", False, 0),
    "7B FP16 on L4-1-24G (the Scaleway type)": (LLAMA2_7B_FP16, "L4-1-24G", False, 0),
    "12B AWQ on L4: fits with the whole 32k context": (NEMO_12B_AWQ, "L4", True, CHAT_CONTEXT),
    "70B AWQ on L4: the weights alone do not fit": (LLAMA3_70B_AWQ, "L4", False, 0),
    "70B AWQ on L40S: the weights alone do not fit": (LLAMA3_70B_AWQ, "L40S-1-48G", False, 0),
    "70B AWQ on H100 80G: fits": (LLAMA3_70B_AWQ, "H100-1-80G", True, CHAT_CONTEXT),
    "70B AWQ on two L40S (tensor parallel 2): fits": (LLAMA3_70B_AWQ, "L40S-2-48G", True, CHAT_CONTEXT),
    "70B AWQ on two H100: fits": (LLAMA3_70B_AWQ, "H100-2-80G", True, CHAT_CONTEXT),
}


@pytest.mark.parametrize("case", TABLE, ids=list(TABLE))
def test_model_gpu_table(case):
    model, gpu, fits, max_model_len = TABLE[case]
    result = vllm_fit(model, gpu, max_model_len=CHAT_CONTEXT, used_fraction=EMBED_FRACTION)
    assert result["fits"] is fits, result["reason"]
    assert result["max_model_len"] == max_model_len, result["reason"]
    assert result["gpu_memory_utilization"] == 0.75
    assert result["reason"].startswith("Fits on" if fits else "Does not fit on"), result["reason"]


def test_embedding_model_fits_its_default_share():
    result = vllm_fit(BGE_M3, "L4", max_model_len=8192, gpu_memory_utilization=EMBED_FRACTION)
    assert result["fits"], result["reason"]
    assert (result["max_model_len"], result["gpu_memory_utilization"]) == (8192, EMBED_FRACTION)


def test_numbers_of_the_7b_on_l4():
    """The figures behind "does not fit", and that they are in the reason."""
    result = vllm_fit(LLAMA2_7B_FP16, "L4", max_model_len=CHAT_CONTEXT, used_fraction=EMBED_FRACTION)
    assert result["weights_gb"] == 13.48  # 6.74e9 parameters x 2 bytes
    # 2 (K and V) x 32 layers x 32 heads x 128 x 2 bytes = 512 KiB per token.
    assert result["kv_gb_per_1k_tokens"] == round(2 * 32 * 32 * 128 * 2 * 1024 / 1e9, 3) == 0.537
    assert result["gpu_memory_gb"] == 24.153  # 23034 MiB
    assert result["available_gb"] == 18.115  # x 0.75
    assert result["kv_available_gb"] == 3.135  # - 13.48 - 1.5
    assert result["max_tokens"] == 5978
    assert result["min_model_len"] == 8192
    assert result["needed_gb"] > result["available_gb"]
    for text in ("5978 tokens", "minimum useful context of 8192", "13.48 GB", "0.537 GB per 1k tokens", "18.115 GB"):
        assert text in result["reason"], result["reason"]


def test_7b_alone_on_l4_gets_a_shorter_context():
    """Alone on the L4 (0.9 of it), the 7B FP16 model fits, with 12k tokens instead of the 32k asked for."""
    result = vllm_fit(LLAMA2_7B_FP16, "L4", max_model_len=CHAT_CONTEXT)
    assert result["fits"], result["reason"]
    assert result["gpu_memory_utilization"] == 0.9
    assert result["max_model_len"] == 12288
    assert result["max_model_len"] % 1024 == 0
    assert "instead of 32768" in result["reason"]


def test_70b_alone_on_one_l40s_only_short_context():
    """Alone on one L40S the 70B AWQ model holds about 9k tokens: more than the minimum, far below 32k."""
    result = vllm_fit(LLAMA3_70B_AWQ, "L40S", max_model_len=CHAT_CONTEXT)
    assert result["fits"]
    assert result["max_model_len"] == 9216
    strict = vllm_fit(LLAMA3_70B_AWQ, "L40S", max_model_len=CHAT_CONTEXT, min_model_len=16384)
    assert not strict["fits"]
    assert "fewer than the minimum useful context of 16384" in strict["reason"]


def test_tensor_parallel_splits_weights_and_kv_cache():
    one = vllm_fit(LLAMA3_70B_AWQ, "H100-2-80G", max_model_len=CHAT_CONTEXT, tensor_parallel_size=1)
    two = vllm_fit(LLAMA3_70B_AWQ, "H100-2-80G", max_model_len=CHAT_CONTEXT)
    assert (one["tensor_parallel_size"], two["tensor_parallel_size"]) == (1, 2)
    assert two["gpu_count"] == 2
    assert two["weights_gb_per_gpu"] == pytest.approx(one["weights_gb_per_gpu"] / 2, abs=0.001)
    assert two["max_tokens"] > 2 * one["max_tokens"]
    assert "split over 2 GPUs" in two["reason"]


def test_fewer_kv_heads_than_gpus_are_replicated():
    """2 key/value heads over 4 GPUs: each GPU keeps one head, not half of one."""
    model = {**NEMO_12B_AWQ, "kv_heads": 2}
    four = vllm_fit(model, "L4-4-24G", max_model_len=4096)
    two = vllm_fit(model, "L4-2-24G", max_model_len=4096)
    per_gpu_four = (four["available_gb"] - four["weights_gb_per_gpu"] - 1.5) * 1e9 / four["max_tokens"]
    per_gpu_two = (two["available_gb"] - two["weights_gb_per_gpu"] - 1.5) * 1e9 / two["max_tokens"]
    assert per_gpu_four == pytest.approx(per_gpu_two, rel=0.01) == pytest.approx(2 * 40 * 1 * 128 * 2, rel=0.01)


def test_desired_context_returned_when_it_fits_exactly():
    result = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=5000, used_fraction=EMBED_FRACTION)
    assert result["max_model_len"] == 5000
    assert result["desired_model_len"] == 5000


def test_minimum_capped_at_the_desired_length():
    """An embedding model with a 512-token window is not held to the 8192-token minimum."""
    result = vllm_fit({**BGE_M3, "max_model_len": 512}, "L4", gpu_memory_utilization=0.12)
    assert result["fits"], result["reason"]
    assert (result["min_model_len"], result["max_model_len"]) == (512, 512)
    # The same share holds about 2.6k tokens: not the 8192 of a longer window.
    longer = vllm_fit({**BGE_M3, "max_model_len": 8192}, "L4", gpu_memory_utilization=0.12)
    assert not longer["fits"]
    assert longer["max_tokens"] == 2668


def test_model_entry_of_the_role_is_read_as_is():
    """A vllm_models entry: its own max_model_len, gpu_memory_utilization and quantization are used."""
    entry = {
        "name": "chat",
        "model": "casperhansen/mistral-nemo-instruct-2407-awq",
        "served_model_name": "mistral-nemo-12b",
        "port": 8000,
        "max_model_len": 16384,
        "gpu_memory_utilization": 0.7,
        "extra_args": [],
        **NEMO_12B_AWQ,
    }
    result = vllm_fit(entry, "L4", used_fraction=EMBED_FRACTION)
    assert (result["max_model_len"], result["gpu_memory_utilization"]) == (16384, 0.7)
    # Arguments of the filter win over the entry.
    assert vllm_fit(entry, "L4", max_model_len=4096)["max_model_len"] == 4096


def test_fp8_kv_cache_halves_it():
    auto = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=CHAT_CONTEXT)
    fp8 = vllm_fit({**NEMO_12B_AWQ, "kv_cache_dtype": "fp8"}, "L4", max_model_len=CHAT_CONTEXT)
    assert fp8["kv_gb_per_1k_tokens"] == pytest.approx(auto["kv_gb_per_1k_tokens"] / 2, abs=0.001)
    given = vllm_fit({**NEMO_12B_AWQ, "kv_dtype_bytes": 1}, "L4", max_model_len=CHAT_CONTEXT)
    assert given["max_tokens"] == fp8["max_tokens"]


def test_kv_bytes_per_token_instead_of_the_shape():
    shape = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=CHAT_CONTEXT)
    direct = vllm_fit(
        {"params_b": 12.2, "quantization": "awq", "kv_bytes_per_token": 2 * 40 * 8 * 128 * 2},
        "L4",
        max_model_len=CHAT_CONTEXT,
    )
    assert direct["max_tokens"] == shape["max_tokens"]


@pytest.mark.parametrize(
    ("quantization", "expected"),
    [("", 2.0), ("bf16", 2.0), ("fp8", 1.0), ("int8", 1.0), ("awq", 0.55), ("GPTQ", 0.55), ("int4", 0.55)],
)
def test_bytes_per_parameter(quantization, expected):
    result = vllm_fit({**NEMO_12B_AWQ, "quantization": quantization}, "H100", max_model_len=4096)
    assert result["bytes_per_param"] == expected
    assert result["weights_gb"] == round(12.2 * expected, 3)


def test_bytes_per_param_overrides_the_quantization():
    result = vllm_fit(
        {**NEMO_12B_AWQ, "quantization": "compressed-tensors", "bytes_per_param": 0.7}, "L4", max_model_len=4096
    )
    assert result["weights_gb"] == round(12.2 * 0.7, 3)


def test_custom_gpu_memory():
    result = vllm_fit(NEMO_12B_AWQ, gpu_memory_gb=16, max_model_len=8192)
    assert result["gpu"] == "custom"
    assert result["gpu_memory_gb"] == 16
    assert result["available_gb"] == 14.4
    assert "a GPU of 16 GB" in result["reason"]


def test_gpu_names_are_case_insensitive_and_aliases_resolve():
    assert vllm_fit(NEMO_12B_AWQ, "l40s-4-48g", max_model_len=4096)["gpu_count"] == 4
    render = vllm_fit(NEMO_12B_AWQ, "RENDER-S", max_model_len=4096)
    assert (render["gpu_count"], render["gpu_memory_gb"]) == (1, round(16384 * 1024 * 1024 / 1e9, 3))


def test_share_already_taken_leaves_no_room():
    result = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=8192, used_fraction=0.5, gpu_memory_utilization=0.5)
    assert not result["fits"]
    assert "plus the 0.5 already used by other instances leaves no room" in result["reason"]
    derived = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=8192, used_fraction=0.9)
    assert not derived["fits"]
    assert derived["gpu_memory_utilization"] == 0


def test_weights_too_big_reason():
    result = vllm_fit(LLAMA3_70B_AWQ, "L4", max_model_len=8192)
    assert "the weights and overhead need 40.33 GB per GPU, more than the 21.738 GB available" in result["reason"]
    assert result["kv_available_gb"] < 0
    assert result["max_tokens"] == 0


def test_more_overhead_means_less_context():
    small = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=131072, overhead_gb=1.5)
    large = vllm_fit(NEMO_12B_AWQ, "L4", max_model_len=131072, overhead_gb=4)
    assert large["max_tokens"] < small["max_tokens"]


# --- bad input: the error names the argument ----------------------------------

BAD = {
    "not a dict": ("a string", {}, r"the input must be a dictionary"),
    "no params_b": ({"quantization": "awq"}, {}, r"params_b must be given"),
    "negative params_b": ({**NEMO_12B_AWQ, "params_b": -1}, {}, r"params_b must be a number greater than 0"),
    "params_b text": ({**NEMO_12B_AWQ, "params_b": "twelve"}, {}, r"params_b must be a number; got 'twelve'"),
    "unknown quantization": ({**NEMO_12B_AWQ, "quantization": "q3_k_m"}, {}, r"quantization must be empty.*awq"),
    "no shape": ({"params_b": 7}, {}, r"layers and kv_heads and head_dim must be given"),
    "no head_dim": ({**NEMO_12B_AWQ, "head_dim": None}, {}, r"head_dim must be given"),
    "zero layers": ({**NEMO_12B_AWQ, "layers": "0"}, {}, r"layers must be an integer of at least 1"),
    "unknown kv dtype": ({**NEMO_12B_AWQ, "kv_cache_dtype": "int2"}, {}, r"kv_cache_dtype must be one of"),
    "unknown gpu": (NEMO_12B_AWQ, {"gpu": "A100"}, r"gpu must be one of .*L4.*got 'A100'"),
    "wrong size in a type": (NEMO_12B_AWQ, {"gpu": "L4-1-48G"}, r"gpu must be one of"),
    "no gpu": (NEMO_12B_AWQ, {"gpu": None}, r"gpu or gpu_memory_gb must be given"),
    "both gpu forms": (NEMO_12B_AWQ, {"gpu_memory_gb": 24}, r"gpu and gpu_memory_gb must be given one at a time"),
    "tensor parallel above the count": (
        NEMO_12B_AWQ,
        {"tensor_parallel_size": 2},
        r"tensor_parallel_size must be at most",
    ),
    "utilization above 1": (NEMO_12B_AWQ, {"gpu_memory_utilization": 1.5}, r"gpu_memory_utilization must be a number"),
    "used fraction negative": (NEMO_12B_AWQ, {"used_fraction": -0.1}, r"used_fraction must be a number at least 0"),
    "no context length": ({**NEMO_12B_AWQ}, {"max_model_len": None}, r"max_model_len must be given"),
    "context length text": (NEMO_12B_AWQ, {"max_model_len": "long"}, r"max_model_len must be an integer"),
    "bool count": (NEMO_12B_AWQ, {"gpu_count": True}, r"gpu_count must be an integer"),
    "overhead text": (NEMO_12B_AWQ, {"overhead_gb": "lots"}, r"overhead_gb must be a number"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_argument(case):
    model, overrides, pattern = BAD[case]
    arguments = {"gpu": "L4", "max_model_len": 8192, **overrides}
    gpu = arguments.pop("gpu")
    with pytest.raises(AnsibleFilterError, match=pattern):
        vllm_fit(model, gpu, **arguments)


def test_registered_as_a_filter():
    assert FilterModule().filters()["vllm_fit"] is vllm_fit


def test_through_ansible():
    """The filter runs under its collection name in a playbook, and ansible-doc renders its documentation."""
    answer = render(
        "{'params_b': 12.2, 'quantization': 'awq', 'layers': 40, 'kv_heads': 8, 'head_dim': 128}"
        " | parrotpark.llm.vllm_fit('L4', max_model_len=32768, used_fraction=0.15)"
    )
    assert (answer["fits"], answer["max_model_len"]) == (True, 32768)
    documented = filter_doc("vllm_fit")
    assert set(documented["doc"]["options"]) >= {"_input", "gpu", "max_model_len", "used_fraction", "overhead_gb"}
    assert "fits" in documented["return"]["_value"]["contains"]
