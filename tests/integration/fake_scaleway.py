"""The fake Scaleway API's known credentials, its SCW_* environment, and seeding it with the official SDK."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Known credentials: the fake accepts only this secret key.
ACCESS_KEY = "SCWPARROTPARK0TEST01"
SECRET_KEY = "5d0c2f3e-8b1a-4c6d-9e7f-a1b2c3d4e5f6"
PROJECT_ID = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
ORGANIZATION_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
DEFAULT_ZONE = "fr-par-2"


def scw_environ(fake: Any, **overrides: str | None) -> dict[str, str]:
    """SCW_* variables for the fake; an override of None removes that variable."""
    env = {
        "SCW_ACCESS_KEY": ACCESS_KEY,
        "SCW_SECRET_KEY": SECRET_KEY,
        "SCW_DEFAULT_PROJECT_ID": PROJECT_ID,
        "SCW_DEFAULT_ORGANIZATION_ID": ORGANIZATION_ID,
        "SCW_DEFAULT_ZONE": DEFAULT_ZONE,
        "SCW_API_URL": fake.url,
    }
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Seeded:
    id: str
    name: str
    zone: str
    public_ip: str | None = None
    private_ip: str | None = None
    tags: list[str] = field(default_factory=list)


class Seeder:
    """Creates servers in the fake through the official SDK, as a user's other tools would."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def _client(self, zone: str) -> Any:
        import scaleway

        return scaleway.Client(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            api_url=self.fake.url,
            default_project_id=PROJECT_ID,
            default_organization_id=ORGANIZATION_ID,
            default_zone=zone,
            default_region=zone.rsplit("-", 1)[0],
        )

    def server(
        self,
        name: str,
        *,
        zone: str = DEFAULT_ZONE,
        commercial_type: str = "DEV1-S",
        image: str = "ubuntu_noble",
        tags: list[str] | None = None,
        public_ip: bool = False,
        private_network: str | None = None,
        running: bool = False,
    ) -> Seeded:
        from scaleway.instance.v1 import IpType, ServerAction
        from scaleway.instance.v1.custom_api import InstanceUtilsV1API
        from scaleway.ipam.v1 import IpamV1API

        client = self._client(zone)
        api = InstanceUtilsV1API(client)
        server = api.create_server(
            zone=zone,
            commercial_type=commercial_type,
            name=name,
            image=image,
            tags=list(tags or []),
            dynamic_ip_required=False,
        ).server
        seeded = Seeded(id=server.id, name=name, zone=zone, tags=list(tags or []))
        if public_ip:
            seeded.public_ip = api.create_ip(zone=zone, server=server.id, type_=IpType.ROUTED_IPV4).ip.address
        if private_network:
            nic = api.create_private_nic(zone=zone, server_id=server.id, private_network_id=private_network)
            addresses = IpamV1API(client).list_i_ps_all(
                region=zone.rsplit("-", 1)[0], resource_id=nic.private_nic.id, is_ipv6=False
            )
            seeded.private_ip = addresses[0].address.split("/", 1)[0]
        if running:
            api.server_action(zone=zone, server_id=server.id, action=ServerAction.POWERON)
            # "starting" for the fake's transition time, as the real API says for a while: a test that lists
            # running servers must find it running, however loaded the machine is.
            deadline = time.monotonic() + 60
            while api.get_server(zone=zone, server_id=server.id).server.state != "running":
                if time.monotonic() > deadline:
                    raise AssertionError(f"the fake's server {name} did not reach running within 60 s")
                time.sleep(0.2)
        return seeded
