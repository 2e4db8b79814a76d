"""scaleway_instance's cache_volume option through ansible-playbook and the real SDK against the fake Scaleway API.

The cache volume is created once, reused by every later instance in its zone,
never deleted by any teardown (state=absent of the instance, of another name
as the reaper runs it, or of a volume that also carries an owner tag), and an
instance in another zone starts without it, with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_run import run_tasks
from test_scaleway_instance import GB, MODULE, absent, gpu

CACHE = {"name": "parrotpark-gpu-cache", "size": 50}
CACHE_TAG = "parrotpark.llm/cache=parrotpark-gpu-cache"


def caches(fake: Any) -> list[dict[str, Any]]:
    return [volume for volume in fake.state()["volumes"] if CACHE_TAG in (volume.get("tags") or [])]


def attached_ids(result: dict[str, Any]) -> list[str]:
    return [volume["id"] for volume in result["instance"]["volumes"]]


def test_created_once_reused_across_two_cycles_and_never_deleted(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(cache_volume=CACHE), {"check_mode": True}),
            (MODULE, gpu(cache_volume=CACHE)),
            (MODULE, gpu(cache_volume=CACHE), {"check_mode": True}),
            (MODULE, gpu(cache_volume=CACHE)),
            (MODULE, absent(cache_volume=CACHE)),
            (MODULE, absent(), {"check_mode": True}),
            (MODULE, gpu(cache_volume=CACHE)),
            (MODULE, absent(cache_volume=CACHE)),
        ],
    )
    check, up1, idem_check, idem, down1, left, up2, down2 = run.results
    for result in run.results:
        assert not result.get("failed"), result.get("msg")

    # check mode predicts the creation of the cache and creates nothing
    assert check["changed"] is True
    assert check["cache_volume"]["created"] is True
    assert check["cache_volume"]["id"] is None
    assert check["cache_volume"]["zone"] == "fr-par-2"

    # the first up creates it (50 GB, 5K IOPS, the cache tag and no owner tag) and attaches it before power-on
    cache = up1["cache_volume"]
    assert (cache["created"], cache["attached"], cache["zone"], cache["size_gb"]) == (True, True, "fr-par-2", 50)
    assert cache["id"] in attached_ids(up1)
    (stored,) = caches(fake)
    assert stored["id"] == cache["id"]
    assert stored["size"] == 50 * GB
    assert stored["type"] == "sbs_5k"
    assert not [tag for tag in stored["tags"] if tag.startswith("parrotpark.llm/instance=")]
    server_id = up1["instance"]["id"]
    log = [(r["method"], r["path"]) for r in fake.requests() if server_id in r["path"]]
    attach = log.index(("POST", f"/instance/v1/zones/fr-par-2/servers/{server_id}/attach-volume"))
    poweron = log.index(("POST", f"/instance/v1/zones/fr-par-2/servers/{server_id}/action"))
    assert attach < poweron

    # idempotent
    assert idem_check["changed"] is False
    assert idem["changed"] is False
    assert idem["cache_volume"] == cache | {"created": False}

    # teardown removes the instance, its root volume and IP, and keeps the cache, detached
    assert down1["changed"] is True
    assert cache["id"] not in down1["removed"]["volumes"]
    assert len(down1["removed"]["volumes"]) == 1
    assert down1["cache_volume"]["id"] == cache["id"]
    assert down1["cache_volume"]["attached"] is False
    # gpu_down's "nothing billable left" check sees nothing owned left
    assert left["changed"] is False

    # the second cycle reuses the same volume
    assert up2["cache_volume"]["id"] == cache["id"]
    assert up2["cache_volume"]["created"] is False
    assert up2["cache_volume"]["attached"] is True
    assert cache["id"] in attached_ids(up2)
    assert up2["instance"]["id"] != server_id
    assert down2["cache_volume"]["id"] == cache["id"]
    (stored,) = caches(fake)
    assert stored["id"] == cache["id"]
    assert stored["status"] == "available"
    state = fake.state()
    assert state["counts"]["servers"] == 0
    assert [volume["id"] for volume in state["volumes"]] == [cache["id"]]


def test_a_teardown_without_the_option_keeps_it_as_the_reaper_runs_it(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    """gpu_reap destroys a stray by name with state=absent and no cache option; gpu_down has none either."""
    stray = "parrotpark-gpu-stray"
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(name=stray, cache_volume=CACHE)),
            (MODULE, {"name": stray, "state": "absent", "zone": ["fr-par-2"], "wait_interval": 0.2}),
        ],
    )
    up, reaped = run.results
    assert not up.get("failed"), up.get("msg")
    assert not reaped.get("failed"), reaped.get("msg")
    assert reaped["removed"]["servers"] == [up["instance"]["id"]]
    assert up["cache_volume"]["id"] not in reaped["removed"]["volumes"]
    assert reaped["cache_volume"] is None
    (stored,) = caches(fake)
    assert stored["id"] == up["cache_volume"]["id"]
    assert stored["status"] == "available"


def test_a_cache_volume_that_also_carries_an_owner_tag_is_never_deleted(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(cache_volume=CACHE))]).results
    cache_id = up["cache_volume"]["id"]
    # Someone adds the owner tag by hand: teardown would otherwise delete it.
    fake._call_ok(
        "PATCH",
        f"/block/v1/zones/fr-par-2/volumes/{cache_id}",
        {"tags": [CACHE_TAG, "parrotpark.llm/instance=parrotpark-gpu"]},
    )
    (down,) = run_tasks(tmp_path, run_env, [(MODULE, absent())]).results
    assert not down.get("failed"), down.get("msg")
    assert cache_id not in down["removed"]["volumes"]
    assert any(cache_id in warning and "cache" in warning for warning in down.get("warnings") or [])
    assert [volume["id"] for volume in caches(fake)] == [cache_id]


def test_a_placement_in_another_zone_starts_without_it_with_a_warning(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    (first,) = run_tasks(
        tmp_path, run_env, [(MODULE, gpu(zone=["fr-par-2"], cache_volume=CACHE)), (MODULE, absent())]
    ).results[:1]
    cache_id = first["cache_volume"]["id"]
    fake.out_of_stock("L4-1-24G", "fr-par-2")
    fake.out_of_stock("L40S-1-48G", "fr-par-2")
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(cache_volume=CACHE))]).results
    assert not up.get("failed"), up.get("msg")
    assert up["instance"]["zone"] == "pl-waw-2"
    assert up["cache_volume"]["attached"] is False
    assert up["cache_volume"]["created"] is False
    assert (up["cache_volume"]["id"], up["cache_volume"]["zone"]) == (cache_id, "fr-par-2")
    assert cache_id not in attached_ids(up)
    assert len(up["instance"]["volumes"]) == 1  # only its root
    assert any("starts without the cache" in warning for warning in up.get("warnings") or [])
    # no second cache in the other zone
    assert [volume["id"] for volume in caches(fake)] == [cache_id]


def test_the_zone_holding_the_cache_is_tried_first(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    (first,) = run_tasks(
        tmp_path, run_env, [(MODULE, gpu(zone=["pl-waw-2"], cache_volume=CACHE)), (MODULE, absent())]
    ).results[:1]
    run = run_tasks(
        tmp_path,
        run_env,
        [
            (MODULE, gpu(cache_volume=CACHE), {"check_mode": True}),
            (MODULE, gpu(cache_volume=CACHE)),
            (MODULE, absent()),
            (MODULE, gpu(cache_volume=CACHE | {"prefer_zone": False}), {"check_mode": True}),
        ],
    )
    check, up, _down, unpreferred = run.results
    assert check["placements"][0]["zone"] == "pl-waw-2"
    assert check["cache_volume"]["attached"] is True
    assert up["instance"]["zone"] == "pl-waw-2"
    assert up["cache_volume"] | {"message": ""} == {
        "name": CACHE["name"],
        "id": first["cache_volume"]["id"],
        "zone": "pl-waw-2",
        "size_gb": 50,
        "attached": True,
        "created": False,
        "message": "",
    }
    assert unpreferred["placements"][0]["zone"] == "fr-par-2"


def test_a_cache_attached_to_another_server_is_left_with_a_warning(
    fake: Any, seed: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    (first,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(cache_volume=CACHE)), (MODULE, absent())]).results[:1]
    cache_id = first["cache_volume"]["id"]
    other = seed.server("someone-else", zone="fr-par-2")
    fake._call_ok(
        "POST",
        f"/instance/v1/zones/fr-par-2/servers/{other.id}/attach-volume",
        {"volume_id": cache_id, "volume_type": "sbs_volume"},
    )
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(cache_volume=CACHE))]).results
    assert not up.get("failed"), up.get("msg")
    assert up["cache_volume"]["attached"] is False
    assert cache_id not in attached_ids(up)
    assert any(other.id in warning and cache_id in warning for warning in up.get("warnings") or [])
    assert len(caches(fake)) == 1


def test_an_existing_instance_gets_the_cache_attached(fake: Any, run_env: dict[str, str], tmp_path: Path) -> None:
    run = run_tasks(
        tmp_path,
        run_env,
        [(MODULE, gpu()), (MODULE, gpu(cache_volume=CACHE), {"check_mode": True}), (MODULE, gpu(cache_volume=CACHE))],
    )
    plain, check, with_cache = run.results
    assert plain["cache_volume"] is None
    assert check["changed"] is True
    assert check["cache_volume"]["created"] is True
    assert with_cache["changed"] is True
    assert with_cache["cache_volume"]["created"] is True
    assert with_cache["cache_volume"]["id"] in attached_ids(with_cache)
    assert with_cache["instance"]["id"] == plain["instance"]["id"]


@pytest.mark.parametrize(
    ("cache_volume", "message"),
    [
        ({"name": "has spaces"}, "cache_volume.name"),
        ({"name": "-leading-dash"}, "cache_volume.name"),
        ({"name": "ok", "size": 5}, "cache_volume.size"),
        ({"name": "ok", "size": 20000}, "cache_volume.size"),
        ({"name": "ok", "perf_iops": 7000}, "perf_iops"),
        ({"size": 50}, "name"),
    ],
)
def test_bad_cache_volume_is_refused_before_any_request(
    fake: Any, run_env: dict[str, str], tmp_path: Path, cache_volume: dict[str, Any], message: str
) -> None:
    fake.clear_requests()
    run = run_tasks(
        tmp_path, run_env, [(MODULE, gpu(cache_volume=cache_volume)), (MODULE, absent(cache_volume=cache_volume))]
    )
    for result in run.results:
        assert result["failed"] is True
        assert message in result["msg"]
        assert "cache_volume" in result["msg"]
    assert fake.requests() == []


def test_a_placement_given_up_at_power_on_does_not_pin_the_cache_there(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    fake.out_of_stock("L4-1-24G", "fr-par-2", on=("poweron",))
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(cache_volume=CACHE))]).results
    assert not up.get("failed"), up.get("msg")
    assert [(p["zone"], p["outcome"]) for p in up["placements"]] == [
        ("fr-par-2", "out_of_stock"),
        ("pl-waw-2", "created"),
    ]
    cache = up["cache_volume"]
    assert (cache["zone"], cache["attached"], cache["created"]) == ("pl-waw-2", True, True)
    (stored,) = caches(fake)
    assert (stored["id"], stored["zone"]) == (cache["id"], "pl-waw-2")
    # nothing of the fr-par-2 attempt is left
    assert [volume["zone"] for volume in fake.state()["volumes"]] == ["pl-waw-2", "pl-waw-2"]


def test_a_new_cache_volume_is_attached_once_it_is_available(
    fake: Any, run_env: dict[str, str], tmp_path: Path
) -> None:
    fake.configure(transition_seconds=1.0)
    (up,) = run_tasks(tmp_path, run_env, [(MODULE, gpu(cache_volume=CACHE))]).results
    assert not up.get("failed"), up.get("msg")
    cache = up["cache_volume"]
    assert (cache["created"], cache["attached"]) == (True, True)
    assert cache["id"] in attached_ids(up)
    # the module read the volume until it was no longer creating, then attached it (once, successfully)
    attaches = [r for r in fake.requests(method="POST") if r["path"].endswith("/attach-volume")]
    assert [r["status"] for r in attaches] == [200]
    reads = [r for r in fake.requests(method="GET") if r["path"].endswith(f"/volumes/{cache['id']}")]
    assert reads and reads[0]["time"] < attaches[0]["time"]
