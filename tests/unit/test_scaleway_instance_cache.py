"""The cache volume's pure decisions: input checks, zone preference, holders, and what teardown must never delete."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.parrotpark.llm.plugins.module_utils import _scaleway_instance_cache as cache  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import ScalewayInputError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance import validate  # noqa: E402


def spec(**overrides: Any) -> dict[str, Any]:
    return {"name": "parrotpark-gpu-cache", "size": 100, "perf_iops": 5000, "prefer_zone": True} | overrides


@pytest.mark.parametrize("value", [None, spec(), spec(name="a"), spec(name="x" * 63), spec(size=10, perf_iops=15000)])
def test_good_specs_pass(value: dict[str, Any] | None) -> None:
    cache.check_spec(value)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (spec(name=""), "cache_volume.name"),
        (spec(name="two words"), "cache_volume.name"),
        (spec(name="-dash"), "cache_volume.name"),
        (spec(name="x" * 64), "cache_volume.name"),
        (spec(name="a=b"), "cache_volume.name"),
        (spec(name=None), "cache_volume.name"),
        (spec(size=9), "cache_volume.size"),
        (spec(size=10001), "cache_volume.size"),
        (spec(size=True), "cache_volume.size"),
        (spec(perf_iops=7000), "cache_volume.perf_iops"),
    ],
)
def test_bad_specs_name_the_suboption(value: dict[str, Any], named: str) -> None:
    with pytest.raises(ScalewayInputError, match=named.replace(".", r"\.")):
        cache.check_spec(value)


def test_validate_checks_the_option_for_every_state() -> None:
    base = {
        "name": "gpu",
        "zone": ["fr-par-2"],
        "wait_timeout": 10,
        "wait_interval": 1,
        "cache_volume": spec(size=1),
    }
    for state in ("absent", "running"):
        with pytest.raises(ScalewayInputError, match=r"cache_volume\.size"):
            validate(base | {"state": state})


@pytest.mark.parametrize(
    ("zones", "preferred", "expected"),
    [
        (["fr-par-2", "pl-waw-2"], set(), ["fr-par-2", "pl-waw-2"]),
        (["fr-par-2", "pl-waw-2"], {"pl-waw-2"}, ["pl-waw-2", "fr-par-2"]),
        (["a-b-1", "a-b-2", "a-b-3"], {"a-b-3", "a-b-2"}, ["a-b-2", "a-b-3", "a-b-1"]),
        (["fr-par-2"], {"nl-ams-1"}, ["fr-par-2"]),
    ],
)
def test_zones_first_keeps_the_given_order_within_each_group(
    zones: list[str], preferred: set[str], expected: list[str]
) -> None:
    assert cache.zones_first(zones, preferred) == expected


def test_attached_to_reads_only_instance_references() -> None:
    volume = {
        "references": [
            {"product_resource_type": "instance_server", "product_resource_id": "s1"},
            {"product_resource_type": "snapshot", "product_resource_id": "snap"},
            {"product_resource_type": "instance_server", "product_resource_id": None},
        ]
    }
    assert cache.attached_to(volume) == ["s1"]
    assert cache.attached_to({"references": None}) == []


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["parrotpark.llm/cache=gpu-cache"], True),
        (["parrotpark.llm/instance=gpu", "parrotpark.llm/cache=x"], True),
        (["parrotpark.llm/instance=gpu"], False),
        (["cache"], False),
        (None, False),
    ],
)
def test_is_cache_protects_any_volume_with_a_cache_tag(tags: list[str] | None, expected: bool) -> None:
    assert cache.is_cache({"tags": tags}) is expected


def test_the_cache_tag_is_not_an_owner_tag() -> None:
    from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import OWNER_TAG_PREFIX

    assert not cache.cache_tag("parrotpark-gpu").startswith(OWNER_TAG_PREFIX)
    assert cache.cache_tag("parrotpark-gpu") == "parrotpark.llm/cache=parrotpark-gpu"


def test_the_argument_spec_matches_the_checks() -> None:
    options = cache.CACHE_VOLUME_SPEC["options"]
    assert options["name"]["required"] is True
    assert options["perf_iops"]["choices"] == list(cache.CACHE_IOPS)
    assert cache.CACHE_MIN_GB <= options["size"]["default"] <= cache.CACHE_MAX_GB
