"""The litellm_model_list filter: the model_list of LiteLLM's config.yaml.

The expected entries are those the Jinja program of roles/litellm/vars/main.yml
(`_litellm_model_list`, before it became this filter) rendered for the same
input; LiteLLM's own reading of the config is checked by the role's
`validate:` (files/check_config.py) in the molecule scenarios.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.litellm_model_list import (  # noqa: E402
    FilterModule,
    ipwrap,
    litellm_model_list,
)
from filter_support import filter_doc, render  # noqa: E402

# The role's default litellm_models (roles/litellm/defaults/main.yml).
DEFAULT_MODELS = [
    {"name": "mistral-nemo-12b", "served_name": "mistral-nemo-12b", "port": 8000, "mode": "chat"},
    {"name": "bge-m3", "served_name": "bge-m3", "port": 8001, "mode": "embedding"},
]
FALLBACK = {"api_base": "https://api.example.net/v1", "model": "openai/gpt-4o-mini", "api_key": "k"}
UPSTREAM = "os.environ/LITELLM_UPSTREAM_API_KEY"


def upstream_entries(host):
    return [
        {
            "model_name": "mistral-nemo-12b",
            "litellm_params": {
                "model": "hosted_vllm/mistral-nemo-12b",
                "api_base": f"http://{host}:8000/v1",
                "api_key": UPSTREAM,
            },
            "model_info": {"mode": "chat"},
        },
        {
            "model_name": "bge-m3",
            "litellm_params": {
                "model": "hosted_vllm/bge-m3",
                "api_base": f"http://{host}:8001/v1",
                "api_key": UPSTREAM,
            },
            "model_info": {"mode": "embedding"},
        },
    ]


def test_role_defaults_without_fallback():
    assert litellm_model_list(DEFAULT_MODELS, upstream_host="10.0.0.5") == upstream_entries("10.0.0.5")
    assert litellm_model_list(DEFAULT_MODELS, upstream_host="10.0.0.5", fallback={}) == upstream_entries("10.0.0.5")


def test_fallback_comes_last_with_its_own_key():
    entries = litellm_model_list(DEFAULT_MODELS, upstream_host="10.0.0.5", fallback=FALLBACK)
    assert entries == [
        *upstream_entries("10.0.0.5"),
        {
            "model_name": "parrotpark-fallback",
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": "https://api.example.net/v1",
                "api_key": "os.environ/LITELLM_FALLBACK_API_KEY",
            },
            "model_info": {"mode": "chat"},
        },
    ]
    # The keys themselves are never in the config.
    assert all(entry["litellm_params"]["api_key"].startswith("os.environ/") for entry in entries)


def test_fallback_with_its_own_name_and_no_model():
    entries = litellm_model_list([], upstream_host="gpu.internal", fallback={**FALLBACK, "name": "cloud"})
    assert [entry["model_name"] for entry in entries] == ["cloud"]


HOSTS = {
    "host name": ("gpu.internal", "gpu.internal"),
    "IPv4": ("10.0.0.5", "10.0.0.5"),
    "IPv6 compressed in brackets": ("fd00:0:0::A", "[fd00::a]"),
    "IPv6 long form": ("2001:DB8:0:0:0:0:0:0001", "[2001:db8::1]"),
    "IPv4-mapped IPv6": ("::ffff:10.0.0.1", "[::ffff:10.0.0.1]"),
    "loopback IPv6": ("::1", "[::1]"),
    "already in brackets": ("[fd00::1]", "[fd00::1]"),
    "empty (every model has api_base)": ("", ""),
}


@pytest.mark.parametrize("case", HOSTS, ids=list(HOSTS))
def test_upstream_host_ipv6_in_brackets(case):
    host, written = HOSTS[case]
    assert litellm_model_list(DEFAULT_MODELS, upstream_host=host) == upstream_entries(written)


@pytest.mark.parametrize("case", HOSTS, ids=list(HOSTS))
def test_ipwrap_writes_what_ansible_utils_ipwrap_writes(case):
    """The role used ansible.utils.ipwrap (netaddr) before; the filter uses the socket module."""
    netaddr_ipwrap = pytest.importorskip("ansible_collections.ansible.utils.plugins.filter.ipwrap").ipwrap
    host = HOSTS[case][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ipwrap(host) == netaddr_ipwrap(host)


def test_api_base_replaces_the_upstream_and_needs_no_port():
    models = [
        {"name": "a", "served_name": "a-s", "port": 1, "api_base": "https://a.example/v1"},
        {"name": "b", "served_name": "b-s", "port": "8002", "mode": "embedding", "api_base": "http://[::1]:9/v1"},
        {"name": "c", "served_name": "c-s", "api_base": "https://c.example/v1"},
    ]
    entries = litellm_model_list(models, upstream_host="")
    assert [entry["litellm_params"]["api_base"] for entry in entries] == [
        "https://a.example/v1",
        "http://[::1]:9/v1",
        "https://c.example/v1",
    ]
    assert entries[1] == {
        "model_name": "b",
        "litellm_params": {"model": "hosted_vllm/b-s", "api_base": "http://[::1]:9/v1", "api_key": UPSTREAM},
        "model_info": {"mode": "embedding"},
    }


def test_port_given_as_a_string():
    entry = litellm_model_list([{"name": "a", "served_name": "a", "port": "8002"}], upstream_host="h")[0]
    assert entry["litellm_params"]["api_base"] == "http://h:8002/v1"


def test_litellm_params_and_model_info_are_merged_recursively():
    models = [
        {
            "name": "m",
            "served_name": "s",
            "port": 8000,
            "litellm_params": {
                "api_base": "http://x/v1",
                "extra_body": {"a": {"b": 1}},
                "max_tokens": 512,
                "model": "openai/override",
            },
            "model_info": {"base_model": "y", "mode": "completion", "nested": {"x": [1, 2]}},
        },
        {"name": "e", "served_name": "e", "port": 8001, "mode": "embedding", "model_info": {"mode": "chat"}},
        {"name": "r", "served_name": "r", "port": 8005, "mode": "rerank", "litellm_params": {}, "model_info": {}},
        {"name": "n", "served_name": "n", "port": 8004, "mode": None},
    ]
    entries = litellm_model_list(models, upstream_host="10.0.0.5")
    assert entries[0] == {
        "model_name": "m",
        "litellm_params": {
            "model": "openai/override",
            "api_base": "http://x/v1",
            "api_key": UPSTREAM,
            "extra_body": {"a": {"b": 1}},
            "max_tokens": 512,
        },
        "model_info": {"mode": "completion", "base_model": "y", "nested": {"x": [1, 2]}},
    }
    # The generated keys keep their place, the model's own come after them.
    assert list(entries[0]["litellm_params"]) == ["model", "api_base", "api_key", "extra_body", "max_tokens"]
    assert entries[1]["model_info"] == {"mode": "chat"}
    assert entries[2] == {
        "model_name": "r",
        "litellm_params": {"model": "hosted_vllm/r", "api_base": "http://10.0.0.5:8005/v1", "api_key": UPSTREAM},
        "model_info": {"mode": "rerank"},
    }
    # A mode given as null stays null (the role's preflight refuses it).
    assert entries[3]["model_info"] == {"mode": None}


def test_nested_values_merge_key_by_key_and_lists_are_replaced():
    model = {
        "name": "m",
        "served_name": "s",
        "port": 1,
        "litellm_params": {"extra_body": {"b": 2, "list": [3]}},
    }
    entry = litellm_model_list([model], upstream_host="h")[0]
    assert entry["litellm_params"]["extra_body"] == {"b": 2, "list": [3]}
    model["litellm_params"] = {"api_key": "os.environ/OTHER"}
    assert litellm_model_list([model], upstream_host="h")[0]["litellm_params"]["api_key"] == "os.environ/OTHER"


def test_the_input_is_not_modified():
    model = {"name": "m", "served_name": "s", "port": 1, "litellm_params": {"extra_body": {"a": 1}}}
    before = json.dumps(model)
    litellm_model_list([model], upstream_host="h")
    assert json.dumps(model) == before


BAD = {
    "input not a list": ({"name": "x"}, {}, r"litellm_model_list: the input must be a list of models"),
    "model not a dict": (["chat"], {}, r"model 0 of the input must be a dictionary"),
    "model without name": (
        [{"served_name": "s", "port": 1}],
        {},
        r"model 0 of the input must be a dictionary with name",
    ),
    "model without served_name": ([{"name": "n", "port": 1}], {}, r"must be a dictionary with served_name"),
    "no port and no api_base": (
        [{"name": "n", "served_name": "s"}],
        {},
        r"model 'n': port must be a port number \(or give api_base\); got None",
    ),
    "litellm_params not a dict": (
        [{"name": "n", "served_name": "s", "port": 1, "litellm_params": ["x"]}],
        {},
        r"model 'n': litellm_params must be a dictionary",
    ),
    "model_info null": (
        [{"name": "n", "served_name": "s", "port": 1, "model_info": None}],
        {},
        r"model 'n': model_info must be a dictionary; got None",
    ),
    "upstream host not text": (DEFAULT_MODELS, {"upstream_host": ["h"]}, r"upstream_host must be an address"),
    "fallback not a dict": (DEFAULT_MODELS, {"fallback": "openai/x"}, r"fallback must be a dictionary"),
    "fallback without model": (DEFAULT_MODELS, {"fallback": {"api_base": "https://f/v1"}}, r"fallback.model must be"),
    "fallback without api_base": (DEFAULT_MODELS, {"fallback": {"model": "openai/x"}}, r"fallback.api_base must be"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_argument(case):
    models, arguments, pattern = BAD[case]
    with pytest.raises(AnsibleFilterError, match=pattern):
        litellm_model_list(models, **{"upstream_host": "h", **arguments})


def test_registered_as_a_filter():
    assert FilterModule().filters()["litellm_model_list"] is litellm_model_list


def test_through_ansible():
    """The filter runs under its collection name in a playbook, and ansible-doc renders its documentation."""
    answer = render(
        "models | parrotpark.llm.litellm_model_list(upstream_host='fd00::5', fallback=fallback)",
        {"models": DEFAULT_MODELS, "fallback": FALLBACK},
    )
    assert answer[:2] == upstream_entries("[fd00::5]")
    assert answer[2]["model_name"] == "parrotpark-fallback"
    documented = filter_doc("litellm_model_list")
    assert set(documented["doc"]["options"]) == {"_input", "upstream_host", "fallback", "health_checks"}
    assert set(documented["return"]["_value"]["contains"]) == {"model_name", "litellm_params", "model_info"}


def test_without_health_checks_the_gpu_models_are_left_alone_and_the_fallback_is_not():
    fallback = {"model": "openai/mistral-small", "api_base": "https://api.example.eu/v1"}
    models = [
        {"name": "chat", "served_name": "chat", "port": 8000},
        {"name": "own", "served_name": "own", "port": 8001, "model_info": {"disable_background_health_check": False}},
    ]
    entries = litellm_model_list(models, "10.0.0.5", fallback, health_checks=False)
    assert entries[0]["model_info"] == {"mode": "chat", "disable_background_health_check": True}
    # the model's own model_info wins
    assert entries[1]["model_info"] == {"mode": "chat", "disable_background_health_check": False}
    assert entries[2]["model_info"] == {"mode": "chat"}
    assert "disable_background_health_check" not in litellm_model_list(models[:1], "h")[0]["model_info"]


def test_health_checks_must_be_a_boolean():
    with pytest.raises(AnsibleFilterError, match=r"health_checks"):
        litellm_model_list([{"name": "a", "served_name": "a", "port": 1}], "h", None, health_checks="no")
