#!/usr/bin/python
# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scaleway_server_type_info
short_description: List Scaleway server types with their price, GPUs and current availability
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - Reads the catalog of Instance server types of one or more zones and joins it with the zone's current
    availability (stock) of each type.
  - Use it to choose where a GPU server can be created right now, and what it costs.
  - The module only reads and never reports a change.
extends_documentation_fragment:
  - parrotpark.llm.scaleway
  - parrotpark.llm.scaleway.action_group
  - parrotpark.llm.scaleway.info_module
  - ansible.builtin.action_common_attributes
options:
  zone:
    description:
      - Zones to read, for example V(fr-par-2). Results are returned zone by zone in this order.
      - Defaults to the default zone, from E(SCW_DEFAULT_ZONE) or C(default_zone) of the profile file.
        The module fails when neither is set.
    type: list
    elements: str
  gpu_only:
    description:
      - Only the types with at least one GPU.
    type: bool
    default: false
  commercial_types:
    description:
      - Only the types with exactly one of these names (for example V(L4-1-24G)). All types when not set or empty.
      - A name that the zone's catalog does not list is silently absent from the result.
    type: list
    elements: str
  available_only:
    description:
      - Drop the types whose availability is V(shortage) (none can be created right now).
      - Types reported V(scarce) or V(unknown) are kept.
    type: bool
    default: false
seealso:
  - module: parrotpark.llm.scaleway_instance_info
"""

EXAMPLES = r"""
- name: Which GPU types can be created in Paris or Warsaw right now, cheapest first per zone
  parrotpark.llm.scaleway_server_type_info:
    zone: [fr-par-2, pl-waw-2]
    gpu_only: true
    available_only: true
  register: __gpu_types

- name: Pick the first zone that has an L4 in stock
  ansible.builtin.set_fact:
    __l4_zone: >-
      {{ (__gpu_types.server_types | selectattr('name', 'equalto', 'L4-1-24G') | first).zone }}
  when: __gpu_types.server_types | selectattr('name', 'equalto', 'L4-1-24G') | list | length > 0

- name: Price of one type in the default zone
  parrotpark.llm.scaleway_server_type_info:
    commercial_types: [L4-1-24G]
  register: __l4
"""

RETURN = r"""
server_types:
  description:
    - The matching server types, zone by zone in the order of O(zone); within a zone by hourly price, cheapest first
      (types without a price last), then by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Commercial type name, the value to create an Instance with.
      type: str
      sample: L4-1-24G
    zone:
      description: Zone this entry describes (catalog and stock differ by zone).
      type: str
      sample: fr-par-2
    availability:
      description:
        - Current stock of the type in the zone. V(available), V(scarce) (few left), V(shortage) (none; creation
          fails with C(out_of_stock)), or V(unknown) when the availability list does not mention the type.
      type: str
      sample: available
    hourly_price:
      description: Price per hour in EUR, excluding VAT (billed per minute).
      type: float
      sample: 0.75
    monthly_price:
      description: Price per month in EUR, excluding VAT, as the catalog states it.
      type: float
      sample: 547.5
    ncpus:
      description: Number of vCPUs.
      type: int
      sample: 8
    ram:
      description: Memory in bytes.
      type: int
      sample: 51539607552
    arch:
      description: CPU architecture.
      type: str
      sample: x86_64
    gpu:
      description: Number of GPUs (V(0) for types without a GPU).
      type: int
      sample: 1
    gpu_manufacturer:
      description: GPU maker, V(null) for types without a GPU.
      type: str
      sample: NVIDIA
    gpu_name:
      description: GPU model, V(null) for types without a GPU.
      type: str
      sample: L4
    gpu_memory:
      description: Memory of each GPU in bytes, V(null) for types without a GPU.
      type: int
      sample: 25769803776
    volumes_min_size:
      description: Smallest total size of the local volumes in bytes (V(0) for types that boot from block storage).
      type: int
      sample: 0
    volumes_max_size:
      description: Largest total size of the local volumes in bytes (V(0) for types without local storage).
      type: int
      sample: 0
    end_of_service:
      description: V(true) when Scaleway no longer sells the type to new customers.
      type: bool
      sample: false
"""

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    ScalewayError,
    ScalewayModule,
    resolve_zones,
    server_types,
)


def keep(entry: dict, gpu_only: bool, names: list[str] | None, available_only: bool) -> bool:
    if gpu_only and not entry["gpu"]:
        return False
    if names is not None and entry["name"] not in names:
        return False
    return not (available_only and entry["availability"] == "shortage")


def main() -> None:
    module = ScalewayModule(
        argument_spec={
            "zone": {"type": "list", "elements": "str"},
            "gpu_only": {"type": "bool", "default": False},
            "commercial_types": {"type": "list", "elements": "str"},
            "available_only": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    api = module.client()
    names = params["commercial_types"] or None
    try:
        zones = resolve_zones(params["zone"], api.default_zone, "zone")
        result = [
            entry
            for zone in zones
            for entry in server_types(api, zone)
            if keep(entry, params["gpu_only"], names, params["available_only"])
        ]
    except ScalewayError as exc:
        module.fail(exc)
    module.module.exit_json(changed=False, server_types=result)


if __name__ == "__main__":
    main()
