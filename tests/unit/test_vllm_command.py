"""The vllm_command filter: the `vllm serve` arguments of each model.

The expected lists are those the Jinja program of roles/vllm/vars/main.yml
(`_vllm_commands`, before it became this filter) rendered for the same
models and settings. tests/integration/test_vllm_command.py checks the
role's commands against the flags of the pinned vLLM release.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.vllm_command import FilterModule, vllm_command  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.vllm_settings import vllm_settings  # noqa: E402
from filter_support import filter_doc, render  # noqa: E402

# The role's default vllm_models (roles/vllm/defaults/main.yml).
EMBED = {
    "name": "embed",
    "model": "BAAI/bge-m3",
    "served_model_name": "bge-m3",
    "port": 8001,
    "runner": "pooling",
    "max_model_len": 8192,
    "gpu_memory_utilization": 0.15,
    "params_b": 0.568,
    "layers": 24,
    "kv_heads": 16,
    "head_dim": 64,
}
CHAT = {
    "name": "chat",
    "model": "casperhansen/mistral-nemo-instruct-2407-awq",
    "served_model_name": "mistral-nemo-12b",
    "port": 8000,
    "runner": "generate",
    "quantization": "awq",
    "max_model_len": 32768,
    "gpu_memory_utilization": 0.75,
    "max_num_seqs": 16,
    "params_b": 12.2,
    "layers": 40,
    "kv_heads": 8,
    "head_dim": 128,
}
EVERY_OPTION = {
    "name": "full",
    "model": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "served_model_name": "llama-70b",
    "port": 58100,
    "runner": "generate",
    "quantization": "awq",
    "max_model_len": 16384,
    "gpu_memory_utilization": 0.8,
    "max_num_seqs": 32,
    "tensor_parallel_size": 2,
    "kv_cache_dtype": "fp8",
    "extra_args": ["--enable-prefix-caching", "--max-num-batched-tokens", "8192"],
    "enabled": True,
}
BARE = {"name": "bare", "model": "org/m", "port": 8000}
BARE_COMMAND = ["--model", "org/m", "--served-model-name", "org/m", "--host", "0.0.0.0", "--port", "8000"]
BARE_COMMAND += ["--runner", "generate"]

EMBED_COMMAND = [
    *("--model", "BAAI/bge-m3", "--served-model-name", "bge-m3", "--host", "0.0.0.0", "--port", "8001"),
    *("--runner", "pooling", "--max-model-len", "8192", "--gpu-memory-utilization", "0.15"),
]


def test_default_models():
    commands = vllm_command([EMBED, CHAT], vllm_settings([EMBED, CHAT]))
    assert commands == {
        "embed": EMBED_COMMAND,
        "chat": [
            "--model",
            "casperhansen/mistral-nemo-instruct-2407-awq",
            "--served-model-name",
            "mistral-nemo-12b",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--runner",
            "generate",
            "--quantization",
            "awq",
            "--max-model-len",
            "32768",
            "--gpu-memory-utilization",
            "0.75",
            "--max-num-seqs",
            "16",
        ],
    }
    assert list(commands) == ["embed", "chat"]
    # Without settings each model's own values are used: the same commands.
    assert vllm_command([EMBED, CHAT]) == commands


def test_fitted_settings_replace_the_models_values():
    settings = vllm_settings([EMBED, CHAT], {"chat": {"max_model_len": 24576, "gpu_memory_utilization": 0.74}})
    chat = vllm_command([EMBED, CHAT], settings)["chat"]
    assert chat[chat.index("--max-model-len") + 1] == "24576"
    assert chat[chat.index("--gpu-memory-utilization") + 1] == "0.74"


def test_every_option():
    assert vllm_command([EVERY_OPTION], vllm_settings([EVERY_OPTION])) == {
        "full": [
            "--model",
            "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
            "--served-model-name",
            "llama-70b",
            "--host",
            "0.0.0.0",
            "--port",
            "58100",
            "--runner",
            "generate",
            "--quantization",
            "awq",
            "--max-model-len",
            "16384",
            "--gpu-memory-utilization",
            "0.8",
            "--max-num-seqs",
            "32",
            "--tensor-parallel-size",
            "2",
            "--kv-cache-dtype",
            "fp8",
            "--enable-prefix-caching",
            "--max-num-batched-tokens",
            "8192",
        ]
    }


UNSET = {
    "absent": {},
    "empty or 0": {
        "served_model_name": "",
        "runner": "",
        "quantization": "",
        "max_model_len": 0,
        "gpu_memory_utilization": 0,
        "max_num_seqs": 0,
        "tensor_parallel_size": 1,
        "kv_cache_dtype": "",
        "extra_args": [],
    },
    "none": {
        "served_model_name": None,
        "runner": None,
        "quantization": None,
        "max_model_len": None,
        "gpu_memory_utilization": None,
        "max_num_seqs": None,
        "tensor_parallel_size": None,
        "kv_cache_dtype": None,
        "extra_args": None,
    },
    "strings 1 and 0": {"tensor_parallel_size": "1", "max_num_seqs": "0"},
}


@pytest.mark.parametrize("case", UNSET, ids=list(UNSET))
def test_unset_options_leave_their_flags_out(case):
    model = {**BARE, **UNSET[case]}
    assert vllm_command([model], vllm_settings([model])) == {"bare": BARE_COMMAND}


def test_values_given_as_strings_or_floats_are_passed_as_given():
    model = {
        **BARE,
        "port": "8002",
        "max_model_len": "4096",
        "gpu_memory_utilization": "0.5",
        "max_num_seqs": "8",
        "tensor_parallel_size": "4",
        "extra_args": ["--seed", 7, 1.5, True],
    }
    assert vllm_command([model], vllm_settings([model]))["bare"] == [
        *("--model", "org/m", "--served-model-name", "org/m", "--host", "0.0.0.0", "--port", "8002"),
        *("--runner", "generate", "--max-model-len", "4096", "--gpu-memory-utilization", "0.5"),
        *("--max-num-seqs", "8", "--tensor-parallel-size", "4", "--seed", "7", "1.5", "True"),
    ]
    model = {
        **BARE,
        "max_model_len": 4096.7,
        "gpu_memory_utilization": 1,
        "max_num_seqs": 8.0,
        "tensor_parallel_size": 2.0,
    }
    assert vllm_command([model], vllm_settings([model]))["bare"][10:] == [
        *("--max-model-len", "4096", "--gpu-memory-utilization", "1.0"),
        *("--max-num-seqs", "8.0", "--tensor-parallel-size", "2.0"),
    ]


def test_max_model_len_0_and_no_fraction_leave_vllm_its_defaults():
    settings = {"bare": {"max_model_len": 0, "gpu_memory_utilization": 0.0}}
    model = {**BARE, "max_model_len": 4096, "gpu_memory_utilization": 0.5}
    # The settings, not the model's own values, decide.
    assert vllm_command([model], settings) == {"bare": BARE_COMMAND}
    settings = {"bare": {"max_model_len": -5, "gpu_memory_utilization": 0.30000000000000004}}
    assert vllm_command([BARE], settings)["bare"][10:] == ["--gpu-memory-utilization", "0.30000000000000004"]


def test_tensor_parallel_only_above_one():
    for size, flags in ((1, []), (2, ["--tensor-parallel-size", "2"]), (8, ["--tensor-parallel-size", "8"])):
        assert vllm_command([{**BARE, "tensor_parallel_size": size}])["bare"] == BARE_COMMAND + flags


def test_every_model_given_gets_a_command_in_order():
    models = [{**BARE, "name": name} for name in ("on", "off", "absent")]
    models[1]["enabled"] = False
    assert list(vllm_command(models)) == ["on", "off", "absent"]


BAD = {
    "input not a list": ({"name": "x"}, None, r"vllm_command: the input must be a list of models"),
    "model not a dict": (["chat"], None, r"vllm_command: model 0 of the input must be a dictionary"),
    "model without name": (
        [{"model": "org/m", "port": 1}],
        None,
        r"model 0 of the input must be a dictionary with a name",
    ),
    "no checkpoint": ([{"name": "x", "port": 1}], None, r"model 'x': model must be a non-empty string; got None"),
    "no port": ([{"name": "x", "model": "org/m"}], None, r"model 'x': port must be a port number; got None"),
    "settings not a dict": ([BARE], ["bare"], r"vllm_command: settings must be a dictionary"),
    "setting not a dict": ([BARE], {"bare": 1}, r"settings\['bare'\] must be a dictionary"),
    "quantization not text": ([{**BARE, "quantization": 4}], None, r"model 'bare': quantization must be a string"),
    "kv dtype not text": (
        [{**BARE, "kv_cache_dtype": ["fp8"]}],
        None,
        r"model 'bare': kv_cache_dtype must be a string",
    ),
    "sequences text": ([{**BARE, "max_num_seqs": "many"}], None, r"model 'bare': max_num_seqs must be an integer"),
    "extra args a string": (
        [{**BARE, "extra_args": "--enforce-eager"}],
        None,
        r"model 'bare': extra_args must be a list of arguments; got '--enforce-eager'",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_argument(case):
    models, settings, pattern = BAD[case]
    with pytest.raises(AnsibleFilterError, match=pattern):
        vllm_command(models, settings)


def test_registered_as_a_filter():
    assert FilterModule().filters()["vllm_command"] is vllm_command


def test_through_ansible():
    """The filter runs under its collection name in a playbook, and ansible-doc renders its documentation."""
    answer = render("models | parrotpark.llm.vllm_command(models | parrotpark.llm.vllm_settings)", {"models": [EMBED]})
    assert answer == {"embed": EMBED_COMMAND}
    documented = filter_doc("vllm_command")
    assert set(documented["doc"]["options"]) == {"_input", "settings"}
