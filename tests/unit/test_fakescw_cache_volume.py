"""The fake Scaleway API behaves like the real one for a volume kept across servers (the cache volume).

A Block volume is zonal, attached to one server at a time, attachable at
server creation by ID, detached (never deleted) when its server goes, and
cannot be deleted while attached.
"""

from __future__ import annotations

from typing import Any

import pytest

ZONE = "fr-par-2"


@pytest.fixture
def fake(fake_scaleway: Any) -> Any:
    fake_scaleway.reset()
    return fake_scaleway


def ok(fake: Any, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
    code, payload = fake.call(method, path, body)
    assert code < 300 if status is None else code == status, (code, payload)
    return payload


def volume(fake: Any, zone: str = ZONE) -> dict[str, Any]:
    return ok(
        fake,
        "POST",
        f"/block/v1/zones/{zone}/volumes",
        {
            "name": "cache",
            "project_id": fake.project_id,
            "from_empty": {"size": 50 * 1000**3},
            "tags": ["parrotpark.llm/cache=cache"],
        },
    )


def server(fake: Any, name: str, zone: str = ZONE, extra: str | None = None) -> tuple[int, Any]:
    volumes: dict[str, Any] = {"0": {"volume_type": "sbs_volume", "size": 20 * 1000**3}}
    if extra:
        volumes["1"] = {"id": extra, "volume_type": "sbs_volume"}
    body = {
        "name": name,
        "commercial_type": "DEV1-S",
        "image": "ubuntu_noble",
        "volumes": volumes,
        "project": fake.project_id,
    }
    return fake.call("POST", f"/instance/v1/zones/{zone}/servers", body)


def test_attached_at_creation_then_refused_to_a_second_server(fake: Any) -> None:
    cache = volume(fake)
    status, first = server(fake, "one", extra=cache["id"])
    assert status == 201, first
    current = ok(fake, "GET", f"/block/v1/zones/{ZONE}/volumes/{cache['id']}")
    assert current["status"] == "in_use"
    assert [ref["product_resource_id"] for ref in current["references"]] == [first["server"]["id"]]
    servers_before = fake.state()["counts"]["servers"]
    volumes_before = fake.state()["counts"]["volumes"]
    # at creation: refused, and nothing of the second server is left
    status, body = server(fake, "two", extra=cache["id"])
    assert status == 400, body
    assert fake.state()["counts"]["servers"] == servers_before
    assert fake.state()["counts"]["volumes"] == volumes_before
    # by attach-volume: refused too
    _server, other = server(fake, "three")
    status, body = fake.call(
        "POST",
        f"/instance/v1/zones/{ZONE}/servers/{other['server']['id']}/attach-volume",
        {"volume_id": cache["id"], "volume_type": "sbs_volume"},
    )
    assert status == 400, body
    # and it cannot be deleted while attached
    ok(fake, "DELETE", f"/block/v1/zones/{ZONE}/volumes/{cache['id']}", status=412)


def test_deleting_the_server_detaches_and_keeps_it_for_the_next(fake: Any) -> None:
    cache = volume(fake)
    _server, first = server(fake, "one", extra=cache["id"])
    ok(fake, "DELETE", f"/instance/v1/zones/{ZONE}/servers/{first['server']['id']}", status=204)
    current = ok(fake, "GET", f"/block/v1/zones/{ZONE}/volumes/{cache['id']}")
    assert (current["status"], current["references"]) == ("available", [])
    assert current["last_detached_at"]
    _server, second = server(fake, "two")
    attached = ok(
        fake,
        "POST",
        f"/instance/v1/zones/{ZONE}/servers/{second['server']['id']}/attach-volume",
        {"volume_id": cache["id"], "volume_type": "sbs_volume"},
    )
    assert cache["id"] in [entry["id"] for entry in attached["server"]["volumes"].values()]


def test_a_volume_is_zonal(fake: Any) -> None:
    cache = volume(fake, "pl-waw-2")
    status, body = server(fake, "one", extra=cache["id"])
    assert status == 404, body
    _server, other = server(fake, "two")
    status, body = fake.call(
        "POST",
        f"/instance/v1/zones/{ZONE}/servers/{other['server']['id']}/attach-volume",
        {"volume_id": cache["id"], "volume_type": "sbs_volume"},
    )
    assert status == 404, body
    listed = ok(fake, "GET", f"/block/v1/zones/{ZONE}/volumes")
    assert cache["id"] not in [entry["id"] for entry in listed["volumes"]]


def test_a_new_volume_is_creating_for_a_transition_then_attachable(fake: Any) -> None:
    fake.configure(transition_seconds=5)
    try:
        cache = volume(fake)
        assert cache["status"] == "creating"
        _server, other = server(fake, "one")
        status, body = fake.call(
            "POST",
            f"/instance/v1/zones/{ZONE}/servers/{other['server']['id']}/attach-volume",
            {"volume_id": cache["id"], "volume_type": "sbs_volume"},
        )
        assert status == 400, body
        assert "creating" in body["message"]
        status, body = server(fake, "two", extra=cache["id"])
        assert status == 400, body
        fake.advance(5)
        assert ok(fake, "GET", f"/block/v1/zones/{ZONE}/volumes/{cache['id']}")["status"] == "available"
        ok(
            fake,
            "POST",
            f"/instance/v1/zones/{ZONE}/servers/{other['server']['id']}/attach-volume",
            {"volume_id": cache["id"], "volume_type": "sbs_volume"},
        )
    finally:
        fake.configure(transition_seconds=0)


def test_without_a_transition_a_new_volume_is_available_at_once(fake: Any) -> None:
    assert volume(fake)["status"] == "available"
