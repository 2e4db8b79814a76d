"""The vllm_settings filter: the context length and memory share each model is started with.

The expected values are those the Jinja program of roles/vllm/vars/main.yml
(`_vllm_settings`, before it became this filter) rendered for the same input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.vllm_settings import FilterModule, vllm_settings  # noqa: E402
from filter_support import filter_doc, render  # noqa: E402

# The role's default vllm_models (roles/vllm/defaults/main.yml), the keys that matter here.
EMBED = {"name": "embed", "model": "BAAI/bge-m3", "port": 8001, "max_model_len": 8192, "gpu_memory_utilization": 0.15}
CHAT = {
    "name": "chat",
    "model": "casperhansen/mistral-nemo-instruct-2407-awq",
    "port": 8000,
    "max_model_len": 32768,
    "gpu_memory_utilization": 0.75,
}
BARE = {"name": "bare", "model": "org/m", "port": 8000}


def test_the_models_own_values_without_fits():
    assert vllm_settings([EMBED, CHAT]) == {
        "embed": {"max_model_len": 8192, "gpu_memory_utilization": 0.15},
        "chat": {"max_model_len": 32768, "gpu_memory_utilization": 0.75},
    }
    assert list(vllm_settings([CHAT, EMBED])) == ["chat", "embed"]


def test_the_fitted_values_win():
    fits = {
        "embed": {"fits": True, "max_model_len": 8192, "gpu_memory_utilization": 0.15},
        "chat": {"fits": True, "max_model_len": 24576, "gpu_memory_utilization": 0.74},
    }
    assert vllm_settings([EMBED, CHAT], fits) == {
        "embed": {"max_model_len": 8192, "gpu_memory_utilization": 0.15},
        "chat": {"max_model_len": 24576, "gpu_memory_utilization": 0.74},
    }


def test_a_missing_or_zero_decision_leaves_the_models_own_value():
    models = [
        {**BARE, "name": "a", "max_model_len": 4096, "gpu_memory_utilization": 0.3},
        {**BARE, "name": "b", "max_model_len": 8192},
        {**BARE, "name": "c", "gpu_memory_utilization": 0.2},
    ]
    fits = {
        "a": {"max_model_len": 0, "gpu_memory_utilization": 0.0},
        "b": {"gpu_memory_utilization": 0.55},
        "c": {"max_model_len": 2048},
        "not-a-model": {"max_model_len": 1},
    }
    assert vllm_settings(models, fits) == {
        "a": {"max_model_len": 4096, "gpu_memory_utilization": 0.3},
        "b": {"max_model_len": 8192, "gpu_memory_utilization": 0.55},
        "c": {"max_model_len": 2048, "gpu_memory_utilization": 0.2},
    }


@pytest.mark.parametrize(
    "extra",
    [{}, {"max_model_len": 0, "gpu_memory_utilization": 0}, {"max_model_len": None, "gpu_memory_utilization": None}],
    ids=["absent", "zero", "none"],
)
def test_nothing_anywhere_is_zero(extra):
    settings = vllm_settings([{**BARE, **extra}], {"bare": None})
    assert settings == {"bare": {"max_model_len": 0, "gpu_memory_utilization": 0.0}}
    assert isinstance(settings["bare"]["max_model_len"], int)
    assert isinstance(settings["bare"]["gpu_memory_utilization"], float)


def test_numbers_are_read_as_jinja_int_and_float_read_them():
    models = [{**BARE, "max_model_len": "4096", "gpu_memory_utilization": "0.5"}]
    assert vllm_settings(models) == {"bare": {"max_model_len": 4096, "gpu_memory_utilization": 0.5}}
    models = [{**BARE, "max_model_len": 4096.7, "gpu_memory_utilization": 1}]
    assert vllm_settings(models) == {"bare": {"max_model_len": 4096, "gpu_memory_utilization": 1.0}}
    fits = {"bare": {"max_model_len": "2048", "gpu_memory_utilization": "0.6"}}
    assert vllm_settings([BARE], fits) == {"bare": {"max_model_len": 2048, "gpu_memory_utilization": 0.6}}
    # No rounding: the fraction is passed on as it is.
    models = [{**BARE, "gpu_memory_utilization": 0.1 + 0.2, "max_model_len": -5}]
    assert vllm_settings(models) == {"bare": {"max_model_len": -5, "gpu_memory_utilization": 0.30000000000000004}}


BAD = {
    "input not a list": ({"name": "x"}, None, r"vllm_settings: the input must be a list of models"),
    "model not a dict": (["chat"], None, r"vllm_settings: model 0 of the input must be a dictionary"),
    "model without name": ([{"model": "org/m"}], None, r"model 0 of the input must be a dictionary with a name"),
    "fits not a dict": ([BARE], ["bare"], r"vllm_settings: fits must be a dictionary"),
    "fit not a dict": ([BARE], {"bare": 4096}, r"fits\['bare'\] must be a dictionary"),
    "context length text": (
        [{**BARE, "max_model_len": "long"}],
        None,
        r"max_model_len of model 'bare' must be an integer; got 'long'",
    ),
    "fraction text": (
        [BARE],
        {"bare": {"gpu_memory_utilization": "most"}},
        r"gpu_memory_utilization of model 'bare' must be a number; got 'most'",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_argument(case):
    models, fits, pattern = BAD[case]
    with pytest.raises(AnsibleFilterError, match=pattern):
        vllm_settings(models, fits)


def test_registered_as_a_filter():
    assert FilterModule().filters()["vllm_settings"] is vllm_settings


def test_through_ansible():
    """The filter runs under its collection name in a playbook, and ansible-doc renders its documentation."""
    answer = render(
        "[{'name': 'chat', 'max_model_len': 32768, 'gpu_memory_utilization': 0.75}]"
        " | parrotpark.llm.vllm_settings({'chat': {'max_model_len': 24576}})"
    )
    assert answer == {"chat": {"max_model_len": 24576, "gpu_memory_utilization": 0.75}}
    documented = filter_doc("vllm_settings")
    assert set(documented["doc"]["options"]) == {"_input", "fits"}
    assert set(documented["return"]["_value"]["contains"]) == {"max_model_len", "gpu_memory_utilization"}
