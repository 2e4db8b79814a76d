"""The fake Scaleway API (lab/fakescw), driven through the real Scaleway SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import scaleway
from scaleway.block.v1 import BlockV1API, CreateVolumeRequestFromEmpty
from scaleway.instance.v1 import VolumeServerTemplate
from scaleway.instance.v1.custom_api import InstanceUtilsV1API
from scaleway.ipam.v1 import IpamV1API
from scaleway.marketplace.v2 import MarketplaceV2API
from scaleway_core.api import ScalewayException

from fakescw import ApiError, Backend, FakeScaleway, local_image_id

GB = 1000**3
GIB = 1024**3
ZONE = "fr-par-2"
GPU_IMAGE = "ubuntu_noble_gpu_os_13_nvidia"

# The keys of a server and of a public IP, in the order of the SDK's recordings.
SERVER_KEYS = [
    "id",
    "name",
    "arch",
    "commercial_type",
    "boot_type",
    "organization",
    "project",
    "hostname",
    "image",
    "volumes",
    "tags",
    "state",
    "protected",
    "state_detail",
    "public_ip",
    "public_ips",
    "mac_address",
    "routed_ip_enabled",
    "ipv6",
    "extra_networks",
    "dynamic_ip_required",
    "enable_ipv6",
    "private_ip",
    "creation_date",
    "modification_date",
    "bootscript",
    "security_group",
    "location",
    "maintenances",
    "allowed_actions",
    "placement_group",
    "private_nics",
    "zone",
    "filesystems",
    "end_of_service",
]
SERVER_IP_KEYS = ["id", "address", "dynamic", "gateway", "netmask", "family", "provisioning_mode", "tags", "state"]
IP_KEYS = ["id", "address", "prefix", "reverse", "server", "organization", "project", "zone", "type", "state"]


@pytest.fixture
def client(fake_scaleway: FakeScaleway) -> scaleway.Client:
    return scaleway.Client(**fake_scaleway.client_kwargs(ZONE))


@pytest.fixture
def instance(client: scaleway.Client) -> InstanceUtilsV1API:
    return InstanceUtilsV1API(client)


@pytest.fixture
def block(client: scaleway.Client) -> BlockV1API:
    return BlockV1API(client)


def raw(fake: FakeScaleway, method: str, path: str, body: Any = None) -> requests.Response:
    """A request as the SDK sends it (token header, JSON body ``{}`` by default)."""
    return requests.request(
        method,
        fake.url + path,
        json=body if body is not None else {},
        headers={"x-auth-token": fake.secret_key},
        timeout=10,
    )


def error_of(exc: pytest.ExceptionInfo[ScalewayException]) -> tuple[int | None, dict[str, Any]]:
    return exc.value.status_code, exc.value.response.json()


def gpu_server(instance: InstanceUtilsV1API, name: str = "gpu-1", size: int = 150 * GB, **kwargs: Any) -> Any:
    return instance.create_server(
        commercial_type="L4-1-24G",
        name=name,
        image=local_image_id(GPU_IMAGE, ZONE),
        volumes={"0": VolumeServerTemplate(volume_type="sbs_volume", size=size)},
        **kwargs,
    ).server


def small_server(fake: FakeScaleway, name: str, **body: Any) -> dict[str, Any]:
    return fake.create_server(ZONE, commercial_type="DEV1-S", name=name, image="ubuntu_noble", **body)


# ------------------------------------------------------------------ servers


def test_create_server_with_an_sbs_root_from_a_label_image(fake_scaleway, client, instance, block):
    images = MarketplaceV2API(client).list_local_images_all(image_label=GPU_IMAGE, type_="instance_sbs", zone=ZONE)
    assert [image.id for image in images] == [local_image_id(GPU_IMAGE, ZONE, "instance_sbs")]
    assert "L4-1-24G" in images[0].compatible_commercial_types
    assert "DEV1-S" not in images[0].compatible_commercial_types

    server = instance.create_server(
        commercial_type="L4-1-24G",
        name="gpu-1",
        image=images[0].id,
        volumes={"0": VolumeServerTemplate(volume_type="sbs_volume", size=150 * GB)},
        tags=["llm", "pool=a"],
    ).server

    assert server.state == "stopped"
    assert server.allowed_actions == ["poweron", "backup"]
    assert server.image.id == images[0].id
    root = server.volumes["0"]
    assert (root.volume_type, root.zone, root.boot) == ("sbs_volume", ZONE, False)
    volume = block.get_volume(volume_id=root.id)
    assert volume.size == 150 * GB
    assert volume.status == "in_use"
    assert [(ref.product_resource_type, ref.product_resource_id) for ref in volume.references] == [
        ("instance_server", server.id)
    ]
    assert server.security_group.name == "Default security group"
    assert fake_scaleway.requests(method="POST")[-1]["body"]["volumes"]["0"]["size"] == 150 * GB


def test_server_json_has_the_fields_of_the_recordings(fake_scaleway, instance):
    server = gpu_server(instance)
    ip = instance.create_ip(type_="routed_ipv4").ip
    instance.update_ip(ip=ip.id, server=server.id)

    created = raw(fake_scaleway, "GET", f"/instance/v1/zones/{ZONE}/servers/{server.id}")
    assert created.status_code == 200
    body = created.json()["server"]
    assert list(body) == SERVER_KEYS
    assert list(body["volumes"]["0"]) == ["boot", "volume_type", "id", "zone"]
    assert list(body["public_ips"][0]) == [*SERVER_IP_KEYS, "ipam_id"]
    assert body["public_ip"] == body["public_ips"][0]
    assert body["security_group"] == {"id": body["security_group"]["id"], "name": "Default security group"}
    assert body["creation_date"].endswith("+00:00")
    listed = raw(fake_scaleway, "GET", f"/instance/v1/zones/{ZONE}/ips/{ip.id}").json()["ip"]
    assert list(listed) == [*IP_KEYS, "tags", "ipam_id"]


def test_create_location_header_and_local_root(fake_scaleway):
    image = local_image_id("debian_trixie", "fr-par-1", "instance_local")
    body = {"project": fake_scaleway.project_id, "commercial_type": "DEV1-S", "name": "local", "image": image}
    response = raw(fake_scaleway, "POST", "/instance/v1/zones/fr-par-1/servers", body)
    assert response.status_code == 201
    server = response.json()["server"]
    assert response.headers["location"] == f"{fake_scaleway.url}/instance/v1/zones/fr-par-1/servers/{server['id']}"
    root = server["volumes"]["0"]
    assert (root["volume_type"], root["size"], root["server"]["id"]) == ("l_ssd", 20 * GB, server["id"])


def test_list_servers_all_pages_until_an_empty_page(fake_scaleway, instance):
    for index in range(7):
        small_server(fake_scaleway, f"web-{index}")
    fake_scaleway.clear_requests()

    servers = instance.list_servers_all(per_page=3)

    assert sorted(server.name for server in servers) == [f"web-{index}" for index in range(7)]
    pages = [entry["query"]["page"] for entry in fake_scaleway.requests(path=r"/servers$")]
    assert pages == [["1"], ["2"], ["3"], ["4"]]
    first = instance.list_servers(per_page=3)
    assert int(first.total_count) == 7
    assert [server.name for server in first.servers] == ["web-6", "web-5", "web-4"]  # newest first
    assert instance.list_servers(page=9).servers == []


def test_concurrent_creations(instance):
    with ThreadPoolExecutor(max_workers=8) as pool:
        servers = list(pool.map(lambda index: gpu_server(instance, f"gpu-{index}"), range(16)))
    assert len({server.id for server in servers}) == 16
    assert len({server.mac_address for server in servers}) == 16
    assert len(instance.list_servers_all()) == 16


def test_name_filter_matches_substrings(fake_scaleway, instance):
    for name in ("gpu-1", "gpu-10", "cpu-1"):
        small_server(fake_scaleway, name)
    assert sorted(server.name for server in instance.list_servers_all(name="gpu-1")) == ["gpu-1", "gpu-10"]


def test_lists_filter_by_tags_and_project(fake_scaleway, instance):
    other = str(uuid.uuid4())
    small_server(fake_scaleway, "a", tags=["llm", "pool=a"])
    small_server(fake_scaleway, "b", tags=["llm"])
    small_server(fake_scaleway, "c", tags=["llm", "pool=a"], project=other)
    assert [s.name for s in instance.list_servers_all(tags=["llm", "pool=a"])] == ["a"]
    assert [s.name for s in instance.list_servers_all(project=other)] == ["c"]


def test_power_transitions_take_time(fake_scaleway, instance):
    fake_scaleway.configure(transition_seconds=0.15)
    server = gpu_server(instance)

    instance.server_action(server_id=server.id, action="poweron")
    starting = instance.get_server(server_id=server.id).server
    assert (starting.state, starting.allowed_actions) == ("starting", [])
    with pytest.raises(ScalewayException) as exc:
        instance.server_action(server_id=server.id, action="poweroff")
    status, body = error_of(exc)
    assert (status, body["type"], body["current_state"]) == (409, "transient_state", "starting")

    time.sleep(0.2)
    running = instance.get_server(server_id=server.id).server
    assert (running.state, running.state_detail) == ("running", "booted")
    assert "poweroff" in running.allowed_actions
    assert [(ip.dynamic, ip.family) for ip in running.public_ips] == [(True, "inet")]
    assert running.location is not None

    instance.server_action(server_id=server.id, action="poweroff")
    assert instance.get_server(server_id=server.id).server.state == "stopping"
    fake_scaleway.advance(1)
    stopped = instance.get_server(server_id=server.id).server
    assert (stopped.state, stopped.public_ips, stopped.location) == ("stopped", [], None)


def test_actions_not_allowed_in_the_current_state(instance):
    server = gpu_server(instance)
    with pytest.raises(ScalewayException) as exc:
        instance.server_action(server_id=server.id, action="terminate")
    assert error_of(exc) == (400, {"type": "invalid_request_error", "message": "server should be running"})
    instance.server_action(server_id=server.id, action="poweron")
    with pytest.raises(ScalewayException) as exc:
        instance.server_action(server_id=server.id, action="poweron")
    assert error_of(exc)[1]["message"] == "server should be stopped"


def test_user_data(instance):
    server = gpu_server(instance)
    instance.set_server_user_data(server_id=server.id, key="cloud-init", content=b"#cloud-config\n")
    instance.set_server_user_data(server_id=server.id, key="ssh key", content=b"ssh-ed25519 AAAA")
    assert instance.list_server_user_data(server_id=server.id).user_data == ["cloud-init", "ssh key"]
    assert instance.get_server_user_data(server_id=server.id, key="cloud-init").content == b"#cloud-config\n"
    instance.delete_server_user_data(server_id=server.id, key="ssh key")
    assert instance.get_all_server_user_data(server_id=server.id).user_data == {"cloud-init": b"#cloud-config\n"}


def test_flexible_ip_attach_detach_delete(fake_scaleway, instance):
    server = gpu_server(instance)
    ip = instance.create_ip(type_="routed_ipv4", tags=["llm"]).ip
    assert (ip.state, ip.server, ip.prefix) == ("detached", None, None)

    attached = instance.update_ip(ip=ip.id, server=server.id).ip
    assert (attached.state, attached.server.id) == ("attached", server.id)
    public = instance.get_server(server_id=server.id).server.public_ips
    assert [(p.id, p.address, p.dynamic, p.netmask) for p in public] == [(ip.id, ip.address, False, "32")]

    v6 = instance.create_ip(type_="routed_ipv6", server=server.id).ip
    assert v6.address is None and v6.prefix.endswith("::/64")
    families = [p.family for p in instance.get_server(server_id=server.id).server.public_ips]
    assert families == ["inet", "inet6"]

    # the SDK cannot send "server": null, the Ansible modules do
    detached = raw(fake_scaleway, "PATCH", f"/instance/v1/zones/{ZONE}/ips/{ip.id}", {"server": None})
    assert detached.json()["ip"]["state"] == "detached"
    assert [p.family for p in instance.get_server(server_id=server.id).server.public_ips] == ["inet6"]
    assert [i.id for i in instance.list_ips_all(tags=["llm"])] == [ip.id]

    instance.delete_ip(ip=ip.id)
    with pytest.raises(ScalewayException) as exc:
        instance.get_ip(ip=ip.id)
    assert error_of(exc)[0] == 404


def test_private_nic_gets_an_ipam_address(fake_scaleway, client, instance):
    fake_scaleway.configure(transition_seconds=5)
    network = str(uuid.uuid4())
    first, second = gpu_server(instance, "gpu-1"), gpu_server(instance, "gpu-2")

    nic = instance.create_private_nic(server_id=first.id, private_network_id=network).private_nic
    other = instance.create_private_nic(server_id=second.id, private_network_id=network).private_nic
    assert nic.state == "syncing"
    fake_scaleway.advance(5)
    assert instance.get_private_nic(server_id=first.id, private_nic_id=nic.id).private_nic.state == "available"
    assert [n.id for n in instance.get_server(server_id=first.id).server.private_nics] == [nic.id]

    ipam = IpamV1API(client)
    (ip,) = ipam.list_i_ps_all(resource_id=nic.id)
    assert ip.address.startswith("172.16.") and ip.address.endswith("/22")
    assert (ip.source.private_network_id, ip.resource.type_, ip.resource.name) == (
        network,
        "instance_private_nic",
        "gpu-1",
    )
    assert nic.ipam_ip_ids == [ip.id]
    addresses = {entry.address for entry in ipam.list_i_ps_all(private_network_id=network)}
    assert len(addresses) == 2
    assert sorted(s.name for s in instance.list_servers_all(private_network=network)) == ["gpu-1", "gpu-2"]

    instance.delete_private_nic(server_id=second.id, private_nic_id=other.id)
    assert len(ipam.list_i_ps_all(private_network_id=network)) == 1


def test_terminate_deletes_the_server_and_keeps_sbs_volumes_and_ips(instance, block):
    extra = block.create_volume(name="data", from_empty=CreateVolumeRequestFromEmpty(size=50 * GB))
    ip = instance.create_ip(type_="routed_ipv4").ip
    server = instance.create_server(
        commercial_type="L4-1-24G",
        name="gpu-1",
        image=GPU_IMAGE,
        volumes={"1": VolumeServerTemplate(id=extra.id, volume_type="sbs_volume")},
        public_ips=[ip.id],
    ).server
    assert server.volumes["0"].volume_type == "sbs_volume"
    assert block.get_volume(volume_id=server.volumes["0"].id).size == 20 * GB  # default root
    assert block.get_volume(volume_id=extra.id).status == "in_use"

    instance.server_action(server_id=server.id, action="poweron")
    instance.server_action(server_id=server.id, action="terminate")

    with pytest.raises(ScalewayException) as exc:
        instance.get_server(server_id=server.id)
    assert error_of(exc)[1]["type"] == "not_found"
    for volume_id in (server.volumes["0"].id, extra.id):
        volume = block.get_volume(volume_id=volume_id)
        assert (volume.status, volume.references) == ("available", [])
        assert volume.last_detached_at is not None
    assert (instance.get_ip(ip=ip.id).ip.state) == "detached"


def test_delete_refuses_a_running_server_and_keeps_volumes(instance, block):
    server = gpu_server(instance)
    instance.server_action(server_id=server.id, action="poweron")
    with pytest.raises(ScalewayException) as exc:
        instance.delete_server(server_id=server.id)
    assert error_of(exc) == (400, {"type": "invalid_request_error", "message": "server should be stopped"})

    instance.server_action(server_id=server.id, action="poweroff")
    instance.delete_server(server_id=server.id)
    assert block.get_volume(volume_id=server.volumes["0"].id).status == "available"


def test_delete_of_an_in_use_volume_is_refused(instance, block):
    server = gpu_server(instance)
    with pytest.raises(ScalewayException) as exc:
        block.delete_volume(volume_id=server.volumes["0"].id)
    status, body = error_of(exc)
    assert (status, body["type"], body["precondition"]) == (412, "precondition_failed", "resource_still_in_use")
    assert block.list_volumes_all(product_resource_id=server.id, include_deleted=False)[0].id == server.volumes["0"].id


def test_invalid_creations_create_nothing(fake_scaleway, instance):
    cases = [
        ({"commercial_type": "L4-1-24G", "zone": "nl-ams-1"}, "commercial_type"),
        ({"commercial_type": "DEV1-S", "image": local_image_id(GPU_IMAGE, ZONE)}, "image"),
        (
            {
                "commercial_type": "L4-1-24G",
                "image": GPU_IMAGE,
                "volumes": {"0": VolumeServerTemplate(volume_type="sbs_volume", size=5 * GB)},
            },
            "volumes.0.size",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(ScalewayException) as exc:
            instance.create_server(name="bad", **kwargs)
        status, body = error_of(exc)
        assert (status, body["type"], list(body["fields"])) == (400, "invalid_arguments", [field])
    counts = fake_scaleway.state()["counts"]
    assert (counts["servers"], counts["volumes"]) == (0, 0)


# ------------------------------------------------------------------ catalog


def test_catalog_and_availability(fake_scaleway, instance):
    types = instance.list_servers_types(zone=ZONE).servers
    l4 = types["L4-1-24G"]
    assert (l4.hourly_price, l4.ncpus, l4.ram, l4.gpu) == (0.79, 8, 48 * GIB, 1)
    assert (l4.gpu_info.gpu_manufacturer, l4.gpu_info.gpu_name, l4.gpu_info.gpu_memory) == ("NVIDIA", "L4", 24 * GIB)
    assert (types["L40S-1-48G"].hourly_price, types["H100-1-80G"].hourly_price) == (1.47, 2.87)
    assert "RENDER-S" not in types
    render = instance.list_servers_types(zone="fr-par-1").servers["RENDER-S"]
    assert (render.hourly_price, render.gpu_info.gpu_name, render.gpu_info.gpu_memory) == (1.22, "Tesla P100", 16 * GIB)
    assert not [name for name, t in instance.list_servers_types(zone="nl-ams-1").servers.items() if t.gpu]
    assert "DEV1-S" in instance.list_servers_types(zone="pl-waw-2").servers

    availability = instance.get_server_types_availability(zone=ZONE).servers
    assert set(availability) == set(types)
    assert availability["L4-1-24G"].availability == "available"
    fake_scaleway.set_availability(ZONE, "L4-1-24G", "shortage")
    assert instance.get_server_types_availability(zone=ZONE).servers["L4-1-24G"].availability == "shortage"
    assert instance.get_server_types_availability(zone="pl-waw-2").servers["L4-1-24G"].availability == "available"


# ------------------------------------------------------------------- faults


def test_out_of_stock_is_scoped_and_counted(fake_scaleway, instance):
    fake_scaleway.out_of_stock("L4-1-24G", ZONE, count=1)
    small_server(fake_scaleway, "cpu")
    instance.create_server(commercial_type="L4-1-24G", image=GPU_IMAGE, zone="pl-waw-2")
    with pytest.raises(ScalewayException) as exc:
        gpu_server(instance, "gpu-1")
    status, body = error_of(exc)
    assert (status, body["type"], body["resource"]) == (412, "out_of_stock", "L4-1-24G")
    counts = fake_scaleway.state()["counts"]
    assert (counts["servers"], counts["volumes"]) == (2, 2)  # cpu and pl-waw-2, with their roots
    gpu_server(instance, "gpu-1")  # the fault fired its one time

    server = gpu_server(instance, "gpu-2")
    fake_scaleway.out_of_stock("L4-1-24G", on=["poweron"])
    with pytest.raises(ScalewayException) as exc:
        instance.server_action(server_id=server.id, action="poweron")
    assert error_of(exc)[0] == 412
    assert instance.get_server(server_id=server.id).server.state == "stopped"


def test_quotas_exceeded(fake_scaleway, instance):
    fault = fake_scaleway.quotas_exceeded("L4-1-24G")
    with pytest.raises(ScalewayException) as exc:
        gpu_server(instance)
    status, body = error_of(exc)
    assert (status, body["type"], body["details"][0]["resource"]) == (403, "quotas_exceeded", "instances_l4_1_24g")
    fake_scaleway.remove_fault(fault)
    gpu_server(instance)


def test_instance_quotas_are_counted_per_commercial_type(fake_scaleway, instance, client):
    """Like the organization's quotas: per commercial type, every zone, stopped servers included."""
    fake_scaleway.set_quota("L4-1-24G", 1)
    gpu_server(instance, "first")
    waw = InstanceUtilsV1API(scaleway.Client(**fake_scaleway.client_kwargs("pl-waw-2")))
    with pytest.raises(ScalewayException) as exc:
        waw.create_server(commercial_type="L4-1-24G", name="second", image=GPU_IMAGE)
    status, body = error_of(exc)
    assert (status, body["type"]) == (403, "quotas_exceeded")
    assert body["details"] == [{"resource": "instances_l4_1_24g", "quota": 1, "current": 1}]
    # another type has its own quota; a failed create leaves nothing
    waw.create_server(commercial_type="L40S-1-48G", name="second", image=GPU_IMAGE)
    assert fake_scaleway.state()["counts"]["servers"] == 2
    assert fake_scaleway.state()["quotas"] == {"L4-1-24G": 1}
    fake_scaleway.set_quota("L4-1-24G", None)
    waw.create_server(commercial_type="L4-1-24G", name="third", image=GPU_IMAGE)
    with pytest.raises(ApiError):
        fake_scaleway.set_quota("NOPE-1", 1)
    fake_scaleway.reset()
    assert fake_scaleway.state()["quotas"] == {}


def test_quotas_through_the_control_api(fake_scaleway):
    put = requests.put(
        f"{fake_scaleway.url}/_fake/quotas", json={"commercial_type": "H100-1-80G", "limit": 0}, timeout=5
    )
    assert put.json() == {"quotas": {"H100-1-80G": 0}}
    assert requests.get(f"{fake_scaleway.url}/_fake/quotas", timeout=5).json() == {"quotas": {"H100-1-80G": 0}}
    bad = requests.put(
        f"{fake_scaleway.url}/_fake/quotas", json={"commercial_type": "H100-1-80G", "limit": -1}, timeout=5
    )
    assert bad.status_code == 400


def test_ignore_query_drops_a_filter_like_an_api_that_does_not_know_it(fake_scaleway, instance):
    """A list filter the API ignores (a renamed or unknown query parameter) returns everything."""
    other_project = str(uuid.UUID(int=77))
    instance.create_ip(type_="routed_ipv4", project=other_project)
    mine = instance.create_ip(type_="routed_ipv4").ip
    assert [ip.id for ip in instance.list_ips_all()] == [mine.id]
    fake_scaleway.ignore_query(r"/ips$", ["project"], method="GET", count=1)
    assert len(instance.list_ips_all()) == 2
    assert [ip.id for ip in instance.list_ips_all()] == [mine.id]  # count=1: fired once
    assert fake_scaleway.requests(method="GET", path=r"/ips$")[1]["query"]["project"] == [fake_scaleway.project_id]


def test_ip_patch_detaches_only_with_an_explicit_null(fake_scaleway, instance):
    """PATCH /ips/{id}: "server": null detaches, an empty body (what the SDK sends for server=None) changes nothing."""
    server = gpu_server(instance)
    ip = instance.create_ip(type_="routed_ipv4", server=server.id).ip
    instance.update_ip(ip=ip.id, server=None)
    assert fake_scaleway.requests(method="PATCH")[-1]["body"] == {}
    assert instance.get_ip(ip=ip.id).ip.server.id == server.id
    raw(fake_scaleway, "PATCH", f"/instance/v1/zones/{ZONE}/ips/{ip.id}", {"server": None})
    assert instance.get_ip(ip=ip.id).ip.server is None
    assert instance.get_server(server_id=server.id).server.public_ips == []


def test_http_errors_fire_count_times(fake_scaleway, instance):
    fake_scaleway.http_error(r"/servers$", method="GET", status=503, count=2)
    for _attempt in range(2):
        with pytest.raises(ScalewayException) as exc:
            instance.list_servers()
        assert error_of(exc)[0] == 503
    assert instance.list_servers().servers == []
    assert [entry["status"] for entry in fake_scaleway.requests(path="/servers$")] == [503, 503, 200]
    assert fake_scaleway.faults()[0]["remaining"] == 0


def test_stuck_transition_until_the_fault_is_removed(fake_scaleway, instance):
    server = gpu_server(instance)
    fault = fake_scaleway.stuck(action="poweron", commercial_type="L4-1-24G")
    instance.server_action(server_id=server.id, action="poweron")
    fake_scaleway.advance(3600)
    assert instance.get_server(server_id=server.id).server.state == "starting"
    fake_scaleway.remove_fault(fault)
    assert instance.get_server(server_id=server.id).server.state == "running"


def test_slow_responses_are_bounded(fake_scaleway, instance):
    fake_scaleway.configure(max_sleep=0.3)
    fake_scaleway.slow("/products/servers$", 60, count=1)
    started = time.monotonic()
    instance.list_servers_types()
    assert 0.3 <= time.monotonic() - started < 2
    started = time.monotonic()
    instance.list_servers_types()
    assert time.monotonic() - started < 0.3


def test_wrong_token_is_denied(fake_scaleway):
    kwargs = {**fake_scaleway.client_kwargs(ZONE), "secret_key": str(uuid.uuid4())}
    with pytest.raises(ScalewayException) as exc:
        InstanceUtilsV1API(scaleway.Client(**kwargs)).list_servers()
    status, body = error_of(exc)
    assert (status, body["type"]) == (401, "denied_authentication")


def test_keys_restricted_to_projects():
    key, allowed, other = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with FakeScaleway(secret_keys={key: [allowed]}, project_id=allowed) as fake:
        api = InstanceUtilsV1API(scaleway.Client(**fake.client_kwargs(ZONE)))
        api.create_ip()
        with pytest.raises(ScalewayException) as exc:
            api.create_ip(project=other)
        assert error_of(exc)[1]["type"] == "permissions_denied"


# --------------------------------------------------------- control, seams


def test_control_api(fake_scaleway):
    url = fake_scaleway.url + "/_fake"
    assert requests.put(f"{url}/config", json={"transition_seconds": 2}, timeout=5).json()["transition_seconds"] == 2
    fault = requests.post(f"{url}/faults", json={"kind": "out_of_stock", "zone": ZONE, "count": 3}, timeout=5)
    assert fault.status_code == 201
    assert fault.json()["fault"]["on"] == ["create"]
    bad = requests.post(f"{url}/faults", json={"kind": "nope"}, timeout=5)
    assert bad.status_code == 400
    assert requests.delete(f"{url}/faults/{fault.json()['fault']['id']}", timeout=5).status_code == 204
    put = {"zone": ZONE, "commercial_type": "H100-1-80G", "availability": "scarce"}
    assert requests.put(f"{url}/availability", json=put, timeout=5).json()["availability"] == [put]

    raw(fake_scaleway, "POST", f"/instance/v1/zones/{ZONE}/ips", {"project": fake_scaleway.project_id})
    state = requests.get(f"{url}/state", timeout=5).json()
    assert (state["counts"]["ips"], state["config"]["transition_seconds"]) == (1, 2)
    logged = requests.get(f"{url}/requests", timeout=5).json()["requests"]
    assert [(entry["method"], entry["status"]) for entry in logged] == [("POST", 201)]

    assert requests.post(f"{url}/reset", timeout=5).status_code == 204
    state = fake_scaleway.state()
    assert (state["counts"]["ips"], state["counts"]["requests"], state["availability"]) == (0, 0, [])


class RecordingBackend(Backend):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse = False

    def server_created(self, server: dict[str, Any]) -> None:
        self.calls.append(("created", server["name"]))

    def server_power_on(self, server: dict[str, Any]) -> dict[str, Any]:
        if self.refuse:
            raise ApiError.out_of_stock(server["commercial_type"], server["zone"])
        self.calls.append(("power_on", server["name"]))
        return {"public_ipv4": "10.99.0.5", "private_ipv4": "10.98.0.5/24"}

    def server_power_off(self, server: dict[str, Any]) -> None:
        self.calls.append(("power_off", server["name"]))

    def server_deleted(self, server: dict[str, Any]) -> None:
        self.calls.append(("deleted", server["name"]))


def test_backend_hooks_and_published_addresses():
    backend = RecordingBackend()
    with FakeScaleway(backend=backend) as fake:
        assert backend.fake is fake
        client = scaleway.Client(**fake.client_kwargs(ZONE))
        api = InstanceUtilsV1API(client)
        server = gpu_server(api)
        network = str(uuid.uuid4())
        api.create_private_nic(server_id=server.id, private_network_id=network)
        api.server_action(server_id=server.id, action="poweron")
        running = api.get_server(server_id=server.id).server
        assert [ip.address for ip in running.public_ips] == ["10.99.0.5"]
        (ip,) = IpamV1API(client).list_i_ps_all(private_network_id=network)
        assert ip.address == "10.98.0.5/24"
        api.server_action(server_id=server.id, action="poweroff")
        api.delete_server(server_id=server.id)
        assert backend.calls == [
            ("created", "gpu-1"),
            ("power_on", "gpu-1"),
            ("power_off", "gpu-1"),
            ("deleted", "gpu-1"),
        ]

        backend.refuse = True
        other = gpu_server(api, "gpu-2")
        with pytest.raises(ScalewayException) as exc:
            api.server_action(server_id=other.id, action="poweron")
        assert error_of(exc)[0] == 412
        assert api.get_server(server_id=other.id).server.state == "stopped"


def test_cli_serves_until_terminated():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "lab")}
    with subprocess.Popen(
        [sys.executable, "-m", "fakescw", "--port", "0", "--secret-key", "k"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[-1]
            assert requests.get(f"{url}/_fake/health", timeout=5).json() == {"ok": True}
            denied = requests.get(f"{url}/instance/v1/zones/{ZONE}/servers", headers={"x-auth-token": "x"}, timeout=5)
            assert denied.status_code == 401
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
