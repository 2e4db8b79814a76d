#!/usr/bin/python
# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scaleway_instance_info
short_description: List Scaleway Instances by exact name, tags and state
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - Lists the Instances (servers) of a Scaleway project in one or more zones and describes each one with
    its addresses, volumes and private NICs.
  - O(name) is compared exactly. The Scaleway API's own name filter matches substrings (asking it for
    C(gpu-1) also returns C(gpu-10)); this module drops every server whose name is not exactly O(name).
  - Private IPv4 addresses are read from IPAM for each private NIC.
  - The module only reads and never reports a change.
extends_documentation_fragment:
  - parrotpark.llm.scaleway
  - parrotpark.llm.scaleway.action_group
  - parrotpark.llm.scaleway.info_module
  - ansible.builtin.action_common_attributes
options:
  name:
    description:
      - Only the Instances whose name is exactly this (case-sensitive).
      - All Instances when not set.
    type: str
  tags:
    description:
      - Only the Instances that carry every one of these tags (they may carry more).
    type: list
    elements: str
  zone:
    description:
      - Zones to look in, for example V(fr-par-2). Results are returned zone by zone in this order.
      - Defaults to the default zone, from E(SCW_DEFAULT_ZONE) or C(default_zone) of the profile file.
        The module fails when neither is set.
    type: list
    elements: str
  state:
    description:
      - Only the Instances in one of these states. All states when not set.
    type: list
    elements: str
    choices: [running, stopped, stopped in place, starting, stopping, locked]
notes:
  - Only the Instances of O(project_id) are listed when it is set (or found in E(SCW_DEFAULT_PROJECT_ID) or the
    profile file); otherwise those of O(organization_id), otherwise all that the API key may see.
seealso:
  - module: parrotpark.llm.scaleway_server_type_info
  - plugin: parrotpark.llm.scaleway
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Find the GPU server by its exact name (gpu-10 is not returned)
  parrotpark.llm.scaleway_instance_info:
    name: gpu-1
    zone: [fr-par-2, pl-waw-2]
  register: __gpu

- name: Show its private address
  ansible.builtin.debug:
    msg: "{{ __gpu.instances[0].private_ip }}"
  when: __gpu.instances | length > 0

- name: List the running servers of the project tagged parrotpark and llm, in the default zone
  parrotpark.llm.scaleway_instance_info:
    tags: [parrotpark, llm]
    state: [running]
  register: __running

- name: Use explicit credentials kept in the vault
  parrotpark.llm.scaleway_instance_info:
    access_key: "{{ vault_scaleway_access_key }}"
    secret_key: "{{ vault_scaleway_secret_key }}"
    project_id: "{{ scaleway_project_id }}"
    zone: [fr-par-2]
  register: __all
"""

RETURN = r"""
instances:
  description:
    - The matching Instances, zone by zone in the order of O(zone), in the order the API lists them within a zone.
    - Empty when nothing matches.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: ID of the Instance.
      type: str
      sample: 0f5c1b0e-6f1a-4e43-9d3c-2b6f7b4f8a11
    name:
      description: Name of the Instance.
      type: str
      sample: gpu-1
    zone:
      description: Zone of the Instance.
      type: str
      sample: fr-par-2
    project:
      description: ID of the project the Instance belongs to.
      type: str
    organization:
      description: ID of the organization the Instance belongs to.
      type: str
    commercial_type:
      description: Server type of the Instance.
      type: str
      sample: L4-1-24G
    arch:
      description: CPU architecture.
      type: str
      sample: x86_64
    state:
      description: State of the Instance (V(running), V(stopped), V(stopped in place), V(starting), V(stopping), V(locked)).
      type: str
      sample: running
    tags:
      description: Tags of the Instance.
      type: list
      elements: str
      sample: [parrotpark, llm]
    image_id:
      description: ID of the image the Instance was created from, if any.
      type: str
    image_name:
      description: Name of that image.
      type: str
    public_ip:
      description: The first public IPv4 address, as a single string; V(null) when the Instance has none.
      type: str
      sample: 51.15.10.20
    public_ipv6:
      description: The first public IPv6 address, as a single string; V(null) when the Instance has none.
      type: str
    public_ips:
      description: Every public (routed or legacy) IP of the Instance.
      type: list
      elements: dict
      contains:
        id:
          description: ID of the IP.
          type: str
        address:
          description: The address.
          type: str
        dynamic:
          description: V(true) for an IP that lives and dies with the Instance, V(false) for a flexible IP.
          type: bool
    private_ip:
      description:
        - The first private IPv4 address (without prefix length) found on the private NICs, as a single string.
        - V(null) when the Instance has no private NIC or IPAM has no address for it yet.
      type: str
      sample: 172.16.4.2
    private_nics:
      description: The private NICs of the Instance.
      type: list
      elements: dict
      contains:
        id:
          description: ID of the private NIC.
          type: str
        private_network_id:
          description: ID of the Private Network the NIC is attached to.
          type: str
        mac_address:
          description: MAC address of the NIC.
          type: str
        state:
          description: State of the NIC (for example V(available)).
          type: str
        private_ip:
          description: First IPv4 address of the NIC from IPAM, or V(null).
          type: str
    volumes:
      description: Volumes attached to the Instance, ordered by their index (V(0) is the root volume).
      type: list
      elements: dict
      contains:
        index:
          description: Position of the volume on the Instance.
          type: int
        id:
          description: ID of the volume.
          type: str
        volume_type:
          description: Type of the volume (for example V(sbs_volume), V(l_ssd)).
          type: str
        size:
          description: Size in bytes when the API reports it (SBS volumes may not).
          type: int
    security_group_id:
      description: ID of the security group.
      type: str
    security_group_name:
      description: Name of the security group.
      type: str
    creation_date:
      description: When the Instance was created (ISO 8601).
      type: str
      sample: "2026-03-02T09:14:05.123456+00:00"
    allowed_actions:
      description: Actions the API allows in the current state (for example V(poweroff), V(terminate)).
      type: list
      elements: str
"""

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    ScalewayError,
    ScalewayModule,
    list_servers,
    resolve_zones,
    summarize_server,
)

STATES = ["running", "stopped", "stopped in place", "starting", "stopping", "locked"]


def main() -> None:
    module = ScalewayModule(
        argument_spec={
            "name": {"type": "str"},
            "tags": {"type": "list", "elements": "str"},
            "zone": {"type": "list", "elements": "str"},
            "state": {"type": "list", "elements": "str", "choices": STATES},
        },
        supports_check_mode=True,
    )
    params = module.params
    api = module.client()
    try:
        zones = resolve_zones(params["zone"], api.default_zone, "zone")
        instances = []
        for zone in zones:
            for server in list_servers(
                api,
                zone,
                name=params["name"],
                tags=params["tags"],
                project=api.project_id,
                states=params["state"],
            ):
                instances.append(summarize_server(server, api.private_addresses(server)))
    except ScalewayError as exc:
        module.fail(exc)
    module.module.exit_json(changed=False, instances=instances)


if __name__ == "__main__":
    main()
