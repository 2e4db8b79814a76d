"""The litellm_fallbacks filter: LiteLLM's router fallbacks, every chat model to the fallback model.

The expected lists are those the Jinja program of roles/litellm/vars/main.yml
(`_litellm_fallbacks`, before it became this filter) rendered for the same
models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.litellm_fallbacks import (  # noqa: E402
    FilterModule,
    litellm_fallbacks,
)
from filter_support import filter_doc, render  # noqa: E402

# The role's default litellm_models (roles/litellm/defaults/main.yml).
DEFAULT_MODELS = [
    {"name": "mistral-nemo-12b", "served_name": "mistral-nemo-12b", "port": 8000, "mode": "chat"},
    {"name": "bge-m3", "served_name": "bge-m3", "port": 8001, "mode": "embedding"},
]


def test_role_defaults():
    assert litellm_fallbacks(DEFAULT_MODELS, "parrotpark-fallback") == [{"mistral-nemo-12b": ["parrotpark-fallback"]}]
    assert litellm_fallbacks(DEFAULT_MODELS, "cloud") == [{"mistral-nemo-12b": ["cloud"]}]


def test_models_without_mode_first_then_chat_models_never_embeddings():
    models = [
        {"name": "m", "served_name": "s", "port": 8000, "model_info": {"mode": "completion"}},
        {"name": "e", "served_name": "e", "port": 8001, "mode": "embedding", "model_info": {"mode": "chat"}},
        {"name": "c", "served_name": "c", "port": 8003, "mode": "chat"},
        {"name": "n", "served_name": "n", "port": 8004},
        {"name": "r", "served_name": "r", "port": 8005, "mode": "rerank"},
        {"name": "x", "served_name": "x", "port": 8006, "mode": None},
    ]
    assert litellm_fallbacks(models, "parrotpark-fallback") == [
        {"m": ["parrotpark-fallback"]},
        {"n": ["parrotpark-fallback"]},
        {"c": ["parrotpark-fallback"]},
    ]


def test_no_chat_model_no_fallback():
    assert litellm_fallbacks([], "parrotpark-fallback") == []
    assert litellm_fallbacks([DEFAULT_MODELS[1]], "parrotpark-fallback") == []


BAD = {
    "input not a list": ({"name": "x"}, "f", r"litellm_fallbacks: the input must be a list of models"),
    "model without name": ([{"mode": "chat"}], "f", r"model 0 of the input must be a dictionary with a name"),
    "model not a dict": (["chat"], "f", r"model 0 of the input must be a dictionary with a name"),
    "empty fallback name": (DEFAULT_MODELS, "", r"fallback_name must be the non-empty name of the fallback model"),
    "fallback name not text": (DEFAULT_MODELS, None, r"fallback_name must be the non-empty name"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_argument(case):
    models, name, pattern = BAD[case]
    with pytest.raises(AnsibleFilterError, match=pattern):
        litellm_fallbacks(models, name)


def test_registered_as_a_filter():
    assert FilterModule().filters()["litellm_fallbacks"] is litellm_fallbacks


def test_through_ansible():
    """The filter runs under its collection name in a playbook, and ansible-doc renders its documentation."""
    assert render("models | parrotpark.llm.litellm_fallbacks('cloud')", {"models": DEFAULT_MODELS}) == [
        {"mistral-nemo-12b": ["cloud"]}
    ]
    documented = filter_doc("litellm_fallbacks")
    assert set(documented["doc"]["options"]) == {"_input", "fallback_name"}
