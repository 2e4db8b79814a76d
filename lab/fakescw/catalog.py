"""Seed data: zones, the Instance catalog and the marketplace images.

Everything here is deterministic so tests can predict ids: local image ids are
``uuid5(NAMESPACE, "local-image/<label>/<zone>/<type>")`` (see
:func:`local_image_id`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "fakescw")

GB = 1000**3
GIB = 1024**3
HOURS_PER_MONTH = 730

ZONES: tuple[str, ...] = (
    "fr-par-1",
    "fr-par-2",
    "fr-par-3",
    "nl-ams-1",
    "nl-ams-2",
    "nl-ams-3",
    "pl-waw-1",
    "pl-waw-2",
    "pl-waw-3",
)
REGIONS: tuple[str, ...] = ("fr-par", "nl-ams", "pl-waw")

# First two octets of the routed IPv4 pool of each region.
IPV4_POOLS = {"fr-par": (51, 158), "nl-ams": (51, 15), "pl-waw": (151, 115)}
IPV4_GATEWAY = "62.210.0.1"

# Organization owning the public (marketplace) images.
MARKETPLACE_ORGANIZATION = str(uuid.uuid5(NAMESPACE, "marketplace-organization"))
IMAGES_CREATION_DATE = "2026-01-15T09:00:00.000000+00:00"


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class ServerType:
    name: str
    ncpus: int
    ram: int
    hourly_price: float
    local_max: int = 0  # bytes of local (l_ssd) storage; 0 = block storage only
    gpu: int = 0
    gpu_name: str | None = None
    gpu_memory: int = 0
    scratch: int = 0
    internet_bandwidth: int = 200_000_000
    block_bandwidth: int = 104_857_600
    arch: str = "x86_64"
    zones: tuple[str, ...] = ZONES
    end_of_service: bool = False

    @property
    def is_gpu(self) -> bool:
        return self.gpu > 0

    def to_api(self) -> dict[str, Any]:
        """The ``/products/servers`` entry of this type."""
        return {
            "monthly_price": round(self.hourly_price * HOURS_PER_MONTH, 2),
            "hourly_price": self.hourly_price,
            "alt_names": [],
            "per_volume_constraint": {
                "l_ssd": {"min_size": 1 * GB if self.local_max else 0, "max_size": self.local_max},
            },
            "volumes_constraint": {"min_size": 0, "max_size": self.local_max},
            "ncpus": self.ncpus,
            "gpu": self.gpu,
            "ram": self.ram,
            "arch": self.arch,
            "baremetal": False,
            "network": {
                "interfaces": [
                    {"internal_bandwidth": self.internet_bandwidth, "internet_bandwidth": self.internet_bandwidth}
                ],
                "sum_internal_bandwidth": self.internet_bandwidth,
                "sum_internet_bandwidth": self.internet_bandwidth,
                "ipv6_support": True,
            },
            "capabilities": {"boot_types": ["local", "rescue"], "block_storage": True, "max_file_systems": 0},
            "scratch_storage_max_size": self.scratch,
            "scratch_storage_max_volumes_count": 1 if self.scratch else 0,
            "block_bandwidth": self.block_bandwidth,
            "end_of_service": self.end_of_service,
            "gpu_info": (
                {"gpu_manufacturer": "NVIDIA", "gpu_name": self.gpu_name, "gpu_memory": self.gpu_memory}
                if self.gpu
                else None
            ),
        }


_GPU_ZONES = ("fr-par-2", "pl-waw-2")

SERVER_TYPES: dict[str, ServerType] = {
    t.name: t
    for t in (
        ServerType("DEV1-S", 2, 2 * GIB, 0.0099, local_max=20 * GB),
        ServerType("DEV1-M", 3, 4 * GIB, 0.0198, local_max=40 * GB, internet_bandwidth=300_000_000),
        ServerType("PRO2-XXS", 2, 8 * GIB, 0.055, internet_bandwidth=350_000_000, block_bandwidth=131_072_000),
        ServerType("POP2-2C-8G", 2, 8 * GIB, 0.0735, internet_bandwidth=400_000_000, block_bandwidth=167_772_160),
        ServerType(
            "L4-1-24G",
            8,
            48 * GIB,
            0.79,
            gpu=1,
            gpu_name="L4",
            gpu_memory=24 * GIB,
            internet_bandwidth=2_500_000_000,
            block_bandwidth=1_048_576_000,
            zones=_GPU_ZONES,
        ),
        ServerType(
            "L4-2-24G",
            16,
            96 * GIB,
            1.58,
            gpu=2,
            gpu_name="L4",
            gpu_memory=24 * GIB,
            internet_bandwidth=5_000_000_000,
            block_bandwidth=1_572_864_000,
            zones=_GPU_ZONES,
        ),
        ServerType(
            "L40S-1-48G",
            8,
            96 * GIB,
            1.47,
            gpu=1,
            gpu_name="L40S",
            gpu_memory=48 * GIB,
            scratch=1600 * GB,
            internet_bandwidth=2_500_000_000,
            block_bandwidth=1_048_576_000,
            zones=_GPU_ZONES,
        ),
        ServerType(
            "H100-1-80G",
            24,
            240 * GIB,
            2.87,
            gpu=1,
            gpu_name="H100",
            gpu_memory=80 * GIB,
            scratch=3000 * GB,
            internet_bandwidth=10_000_000_000,
            block_bandwidth=2_097_152_000,
            zones=_GPU_ZONES,
        ),
        ServerType(
            "RENDER-S",
            10,
            42 * GIB,
            1.22,
            local_max=400 * GB,
            gpu=1,
            gpu_name="Tesla P100",
            gpu_memory=16 * GIB,
            internet_bandwidth=1_000_000_000,
            zones=("fr-par-1",),
        ),
    )
}


def types_in_zone(zone: str) -> list[ServerType]:
    return [t for t in SERVER_TYPES.values() if zone in t.zones]


@dataclass(frozen=True)
class ImageLabel:
    label: str
    name: str
    gpu: bool
    root_size: int
    description: str = ""


IMAGE_LABELS: dict[str, ImageLabel] = {
    i.label: i
    for i in (
        ImageLabel("ubuntu_noble", "Ubuntu 24.04 Noble Numbat", False, 10 * GB, "Ubuntu 24.04 LTS"),
        ImageLabel(
            "ubuntu_noble_gpu_os_13_nvidia",
            "Ubuntu Noble GPU OS 13 (Nvidia)",
            True,
            20 * GB,
            "Ubuntu 24.04 with the NVIDIA driver and container toolkit",
        ),
        ImageLabel("debian_trixie", "Debian 13 (Trixie)", False, 10 * GB, "Debian 13"),
    )
}

LOCAL_IMAGE_TYPES = ("instance_sbs", "instance_local")


def local_image_id(label: str, zone: str, image_type: str = "instance_sbs") -> str:
    """The deterministic id of a marketplace local image (also its Instance image id)."""
    return stable_id("local-image", label, zone, image_type)


@dataclass(frozen=True)
class LocalImage:
    id: str
    label: str
    zone: str
    type: str
    arch: str
    compatible_commercial_types: tuple[str, ...]
    name: str
    root_size: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "arch": self.arch,
            "zone": self.zone,
            "compatible_commercial_types": list(self.compatible_commercial_types),
            "label": self.label,
            "type": self.type,
        }

    def instance_image(self) -> dict[str, Any]:
        """The Instance API ``image`` object of this local image."""
        volume_type = "sbs_snapshot" if self.type == "instance_sbs" else "l_ssd"
        return {
            "id": self.id,
            "name": self.name,
            "organization": MARKETPLACE_ORGANIZATION,
            "project": MARKETPLACE_ORGANIZATION,
            "root_volume": {
                "id": stable_id("image-root", self.id),
                "name": self.name,
                "volume_type": volume_type,
                "size": self.root_size,
            },
            "extra_volumes": {},
            "public": True,
            "arch": self.arch,
            "creation_date": IMAGES_CREATION_DATE,
            "modification_date": IMAGES_CREATION_DATE,
            "default_bootscript": None,
            "from_server": "",
            "state": "available",
            "tags": [],
            "zone": self.zone,
        }


def _build_local_images() -> dict[str, LocalImage]:
    images: dict[str, LocalImage] = {}
    for zone in ZONES:
        offered = types_in_zone(zone)
        for label in IMAGE_LABELS.values():
            for image_type in LOCAL_IMAGE_TYPES:
                compatible = tuple(
                    t.name
                    for t in offered
                    if t.is_gpu == label.gpu and (image_type == "instance_sbs" or t.local_max > 0)
                )
                if not compatible:
                    continue
                image = LocalImage(
                    id=local_image_id(label.label, zone, image_type),
                    label=label.label,
                    zone=zone,
                    type=image_type,
                    arch="x86_64",
                    compatible_commercial_types=compatible,
                    name=label.name,
                    root_size=label.root_size,
                )
                images[image.id] = image
    return images


LOCAL_IMAGES: dict[str, LocalImage] = _build_local_images()


def marketplace_image(label: ImageLabel) -> dict[str, Any]:
    """The ``/marketplace/v2/images`` entry of a label."""
    return {
        "id": stable_id("image", label.label),
        "name": label.name,
        "description": label.description,
        "logo": "",
        "categories": ["distribution"] if not label.gpu else ["machine_learning"],
        "created_at": "2024-04-25T09:00:00Z",
        "updated_at": "2026-01-15T09:00:00Z",
        "valid_until": None,
        "label": label.label,
    }
