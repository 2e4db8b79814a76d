#!/usr/bin/python
# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scaleway_instance
short_description: Create, start, stop and remove a Scaleway instance, with stock-aware placement
version_added: 0.2.0
description:
  - Manages one Scaleway Instance identified by its exact O(name) within a project and the zones in O(zone).
    Names are compared exactly; the API's own name filter, which matches substrings, is never trusted.
  - Creation tries each combination of O(commercial_type) and O(zone) in order. Combinations that the zone
    does not offer, that the availability endpoint reports as C(shortage), that lack a compatible image, an extra
    volume or the flexible IP given in O(public_ip) are skipped before anything is created; when creation answers
    C(out_of_stock) the next combination is tried. When creation answers C(quotas_exceeded), the other zones of
    that type are skipped (Scaleway's quotas are the organization's, per commercial type, in every zone) and the
    next type is tried; the module fails when every type is out of quota, naming the quotas. Every combination
    considered is returned in RV(placements) with its outcome.
  - Every option that can be checked without the API is checked before the first API call, and every option that
    depends on a zone is checked in that zone before a server is created there, so bad input never leaves a billable
    server or volume behind.
  - The root volume is a block storage (SBS) volume of O(root_volume_size) GB made from an image given by label
    (resolved to the zone's C(instance_sbs) local image compatible with the type) or by ID.
  - Cloud-init user data is set before the first power-on.
  - Everything the module creates for an instance, the root volume and a reserved public IP, is tagged
    C(parrotpark.llm/instance=NAME). The root volume's tag is checked on every run that finds the instance and
    added when missing (a creation interrupted before tagging it is repaired by the next run).
    O(state=absent) removes the instance (every instance with that name, when the name is duplicated) and every
    volume and IP carrying that tag in the listed zones, also when an earlier teardown was interrupted; volumes in
    O(extra_volumes) and IPs given in O(public_ip) are detached, never deleted.
  - Teardown checks, on the client side, that every volume and IP it lists belongs to the configured project,
    and leaves a tagged volume or IP that is attached to another server alone; both are reported as warnings,
    never waited on.
author: Parrotpark contributors (@parrotpark)
extends_documentation_fragment:
  - parrotpark.llm.scaleway
  - parrotpark.llm.scaleway.action_group
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Predicts creation (including which placement would be used), updates, power changes and removals.
  diff_mode:
    support: full
    details: Shows the managed properties before and after; user data only as a SHA-256 digest.
  platform:
    platforms: posix
options:
  name:
    description:
      - Exact name of the instance; its identity within the project and the listed zones.
    type: str
    required: true
  state:
    description:
      - V(present) creates the instance if needed (powered off when new) and leaves the power state alone.
      - V(running) creates it if needed and powers it on; V(stopped) powers it off (a stopped instance still pays
        for its volumes and IP).
      - V(absent) removes it with the volumes and IPs the module created for it; when several instances have the
        name (which the other states refuse), it removes all of them.
    type: str
    choices: [present, running, stopped, absent]
    default: present
  zone:
    description:
      - Zone, or ordered list of zones, where the instance is looked for and may be created.
      - Defaults to E(SCW_DEFAULT_ZONE) or the profile file's default zone.
    type: list
    elements: str
  commercial_type:
    description:
      - Instance type, or ordered list of types to try, such as V(L4-1-24G). Required unless O(state=absent).
      - An existing instance whose type is not in the list is an error; the module never changes the type.
    type: list
    elements: str
  placement_order:
    description:
      - V(type_first) tries every zone for the first type before the next type;
        V(zone_first) tries every type in the first zone before the next zone.
    type: str
    choices: [type_first, zone_first]
    default: type_first
  image:
    description:
      - Image label, such as V(ubuntu_noble_gpu_os_13_nvidia), or the ID of a local image.
        Required unless O(state=absent). Only used at creation.
    type: str
  root_volume_size:
    description:
      - Size in GB of the root block volume, between 10 and 10000. Only used at creation.
      - Defaults to the API's default (20 GB); GPU images want about 125 GB.
    type: int
  extra_volumes:
    description:
      - IDs of existing block volumes to attach, for example a persistent model cache.
        They must be in the zone of the instance (zones without them are skipped at creation).
      - They are attached when missing and never deleted, not even with O(state=absent).
    type: list
    elements: str
  cache_volume:
    description:
      - A persistent block storage (SBS) volume that survives the instance, for caches that make a start fast
        (container images, model weights, compile caches). It is identified by its exact O(cache_volume.name) and
        the tag C(parrotpark.llm/cache=NAME) in the listed zones.
      - When no listed zone holds it, it is created once, empty, in the zone where the instance is (or is created),
        and attached. When it exists in the instance's zone it is attached (at creation before the first power-on;
        to an existing instance when missing). When it exists only in another zone, or is attached to another server,
        the instance goes on without it and the module warns; a second cache is never created.
      - It is never deleted by this module, not by O(state=absent) (the instance's deletion detaches it) and not by
        the teardown of any other instance, even if it carries an owner tag. It bills while the instance is off.
      - Formatting and mounting it is the job of the server's configuration; the module only attaches it.
    type: dict
    suboptions:
      name:
        description: Exact name of the volume (1 to 63 letters, digits, C(.), C(-) or C(_)).
        type: str
        required: true
      size:
        description: Size in GB when it is created, between 10 and 10000. An existing volume is never resized.
        type: int
        default: 100
      perf_iops:
        description: Block storage class when it is created (5000 or 15000 IOPS). An existing volume keeps its class.
        type: int
        choices: [5000, 15000]
        default: 5000
      prefer_zone:
        description:
          - At creation of the instance, try the zone that holds the cache volume before the other zones of O(zone)
            (for each type, or first with O(placement_order=zone_first)), so a start is warm when stock allows.
        type: bool
        default: true
  user_data:
    description:
      - Cloud-init user data, set under the key C(cloud-init) before the first power-on and updated when it changes
        (cloud-init only reads it at first boot).
      - Treated as a secret; results and diffs show only its SHA-256 digest.
    type: str
  tags:
    description:
      - Tags of the instance; the list replaces the existing tags.
    type: list
    elements: str
    default: []
  security_group:
    description:
      - Security group ID or exact name. When omitted, a new instance gets the project's default group and an
        existing one keeps its group.
    type: str
  private_networks:
    description:
      - IDs of the private networks the instance is attached to. When given, the attachments are made to match
        (missing ones added, others removed). The private IPv4 is returned in RV(instance.private_ip).
    type: list
    elements: str
  public_ip:
    description:
      - V(dynamic) reserves a routed public IPv4 for the instance, tagged as owned by it, and releases it with the
        instance.
      - V(none) gives the instance no public IP (an IP the module reserved earlier is released).
      - Any other value is the ID or the address of an existing flexible IP of the project, attached but never
        released. At creation, zones where that IP is not reserved are skipped (outcome V(ip_elsewhere)); a value
        that is neither an ID nor an IP address is refused before any API call.
      - Moving away from a given flexible IP (to V(none) or V(dynamic)) detaches it from the instance.
    type: str
    default: dynamic
  wait:
    description:
      - Wait for power changes and teardown to finish.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for each state change before failing with the last state seen. Must be positive.
    type: int
    default: 600
  wait_interval:
    description:
      - Seconds between two polls while waiting. Must be positive.
    type: float
    default: 5
notes:
  - Image, root volume size, type and zone are used at creation only; remove and recreate to change them.
  - Only the instance is looked for in the listed zones. Removal sweeps tagged volumes and IPs in those zones too,
    so list every zone the instance may have been created in.
seealso:
  - module: parrotpark.llm.scaleway_instance_info
  - module: parrotpark.llm.scaleway_server_type_info
"""

EXAMPLES = r"""
- name: Bring up the GPU server, falling back to other zones and types when out of stock
  parrotpark.llm.scaleway_instance:
    name: parrotpark-gpu
    state: running
    zone: [fr-par-2, pl-waw-2]
    commercial_type: [L4-1-24G, L40S-1-48G]
    image: ubuntu_noble_gpu_os_13_nvidia
    root_volume_size: 125
    cache_volume: {name: parrotpark-gpu-cache, size: 100}
    private_networks: ["{{ private_network_id }}"]
    security_group: parrotpark-gpu
    tags: [parrotpark, gpu]
    user_data: "{{ lookup('ansible.builtin.template', 'cloud-init.yml.j2') }}"
  register: gpu

- name: Show where it landed
  ansible.builtin.debug:
    msg: "{{ gpu.instance.commercial_type }} in {{ gpu.instance.zone }}, private {{ gpu.instance.private_ip }}"

- name: Remove it and everything created for it
  parrotpark.llm.scaleway_instance:
    name: parrotpark-gpu
    state: absent
    zone: [fr-par-2, pl-waw-2]
  register: gone

- name: Say what was removed
  ansible.builtin.debug:
    msg: "removed {{ gone.removed.servers | length }} server(s), {{ gone.removed.volumes | length }} volume(s), {{ gone.removed.ips | length }} IP(s)"
"""

RETURN = r"""
instance:
  description:
    - The instance after the change. In check mode, the existing instance, or null when it would be created.
  returned: when O(state) is not V(absent)
  type: dict
  contains:
    id: {description: Instance ID., type: str, returned: always}
    name: {description: Name., type: str, returned: always}
    zone: {description: Zone., type: str, returned: always}
    project: {description: Project ID., type: str, returned: always}
    organization: {description: Organization ID., type: str, returned: always}
    commercial_type: {description: Instance type., type: str, returned: always, sample: L4-1-24G}
    arch: {description: CPU architecture., type: str, returned: always}
    state: {description: Power state., type: str, returned: always, sample: running}
    tags: {description: Tags., type: list, elements: str, returned: always}
    image_id: {description: ID of the image it was created from., type: str, returned: always}
    image_name: {description: Name of that image., type: str, returned: always}
    public_ip:
      description: First public IPv4 address as a single string, or null.
      type: str
      returned: always
    public_ipv6:
      description: First public IPv6 address, or null.
      type: str
      returned: always
    public_ips:
      description: Public IPs (id, address, dynamic).
      type: list
      elements: dict
      returned: always
    private_ip:
      description: IPv4 address on the first private network as a single string, or null.
      type: str
      returned: always
    private_nics:
      description: Private NICs (id, private_network_id, mac_address, state, private_ip).
      type: list
      elements: dict
      returned: always
    volumes:
      description: Attached volumes (index, id, volume_type, size); index 0 is the root volume.
      type: list
      elements: dict
      returned: always
    security_group_id: {description: Security group ID., type: str, returned: always}
    security_group_name: {description: Security group name., type: str, returned: always}
    creation_date: {description: Creation time (ISO 8601)., type: str, returned: always}
    allowed_actions:
      description: Actions the API allows in the current state.
      type: list
      elements: str
      returned: always
placements:
  description:
    - Every type and zone combination considered for creation, in order, with its outcome, one of
      V(created), V(would_create) (check mode), V(not_offered), V(shortage), V(no_image), V(volumes_elsewhere),
      V(ip_elsewhere), V(out_of_stock) or V(failed). Empty when the instance already existed.
    - A V(failed) creation over quota says so in its message, with the quotas; the type's other zones are then
      not listed (they were not tried).
  returned: when O(state) is not V(absent)
  type: list
  elements: dict
  sample:
    - {commercial_type: L4-1-24G, zone: fr-par-2, outcome: out_of_stock, message: "..."}
    - {commercial_type: L4-1-24G, zone: pl-waw-2, outcome: created, message: ""}
cache_volume:
  description:
    - What happened to the cache volume (O(cache_volume)); null when the option is not given.
    - With O(state=absent), the volume as it is after the teardown (kept, detached).
  returned: always
  type: dict
  contains:
    name: {description: Its name., type: str, returned: always}
    id: {description: Its ID (null in check mode when it would be created)., type: str, returned: always}
    zone: {description: Its zone., type: str, returned: always}
    size_gb: {description: Its size in GB., type: int, returned: always}
    attached:
      description: Whether it is attached to the instance (in check mode, would be).
      type: bool
      returned: always
    created:
      description: Whether this run created it (in check mode, whether it would).
      type: bool
      returned: always
    message:
      description: Why it is not attached (the warning), or a note; empty otherwise.
      type: str
      returned: always
  sample: {name: parrotpark-gpu-cache, id: 7f0c..., zone: fr-par-2, size_gb: 100, attached: true, created: false,
           message: ""}
removed:
  description: IDs of what this run removed (or would remove in check mode).
  returned: always
  type: dict
  contains:
    servers: {description: Instance IDs., type: list, elements: str, returned: always}
    volumes: {description: Block volume IDs., type: list, elements: str, returned: always}
    ips: {description: Flexible IP IDs., type: list, elements: str, returned: always}
error_kind:
  description:
    - On failure, the kind of error. V(invalid_input) (an option's value, named in the message, was refused; also
      the argument spec's own checks), V(config) (credentials or settings), V(duplicate_name), V(conflict) (the
      existing instance's type is not listed), V(no_placement) (every placement was skipped or out of stock; the
      message names each option and value that can never work), V(quotas_exceeded) (every type is over quota),
      V(timeout), V(transport) (no answer, or the connection refused), V(missing_sdk); or the API's own error type,
      such as V(permissions_denied), V(denied_authentication), V(not_found), V(transient_state),
      V(invalid_arguments), and V(api_error) for an API error without a type.
  returned: on failure
  type: str
"""

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import ScalewayError, ScalewayModule
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance import InstanceManager, validate
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance_cache import CACHE_VOLUME_SPEC


def main() -> None:
    argument_spec = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "running", "stopped", "absent"], "default": "present"},
        "zone": {"type": "list", "elements": "str"},
        "commercial_type": {"type": "list", "elements": "str"},
        "placement_order": {"type": "str", "choices": ["type_first", "zone_first"], "default": "type_first"},
        "image": {"type": "str"},
        "root_volume_size": {"type": "int"},
        "extra_volumes": {"type": "list", "elements": "str"},
        "cache_volume": CACHE_VOLUME_SPEC,
        "user_data": {"type": "str", "no_log": True},
        "tags": {"type": "list", "elements": "str", "default": []},
        "security_group": {"type": "str"},
        "private_networks": {"type": "list", "elements": "str"},
        "public_ip": {"type": "str", "default": "dynamic"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 600},
        "wait_interval": {"type": "float", "default": 5},
    }
    scw = ScalewayModule(
        argument_spec,
        required_if=[("state", state, ("commercial_type", "image")) for state in ("present", "running", "stopped")],
        supports_check_mode=True,
    )
    params = scw.params
    if not params["zone"]:
        client = scw.client()
        params["zone"] = [client.default_zone] if client.default_zone else []
    manager = None
    try:
        validate(params)
        client = scw.client(params["zone"][0])
        manager = InstanceManager(client, params, scw.module.check_mode)
        result = manager.run()
    except ScalewayError as error:
        extra = {}
        if manager is not None:
            for warning in manager.warnings:
                scw.module.warn(warning)
            extra = {"changed": manager.changed, "placements": manager.placements, "removed": manager.removed}
        scw.fail(error, **extra)
        return
    for warning in manager.warnings:
        scw.module.warn(warning)
    scw.module.exit_json(**result)


if __name__ == "__main__":
    main()
