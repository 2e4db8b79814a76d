#!/usr/bin/python
# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scaleway_security_group
short_description: Create, converge and remove a Scaleway Instance security group and its rules
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - Manages one Scaleway Instance security group identified by its exact O(name) within a zone and the project.
    Names are compared exactly; the API's own name filter, which matches substrings, is never trusted. Two groups
    with the name in the zone are an error.
  - Sets the group's O(stateful) flag, its default policies and its description, and makes its rules exactly the
    list in O(rules), in that order, with one request that replaces every rule at once. Rules whose content is
    unchanged keep their ID.
  - Only the rules a user can edit are managed and compared. Scaleway adds to every group rules nobody can change
    (outbound SMTP blocked); they are left alone and not returned.
  - Every option is checked before the first API call (bad CIDR, port ranges, ports with ICMP or ANY, repeated
    rules, empty name), with a message that names the rule and the field.
  - O(state=absent) removes the group. A group still used by an instance is not removed; the module fails naming
    the instances.
extends_documentation_fragment:
  - parrotpark.llm.scaleway
  - parrotpark.llm.scaleway.action_group
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Predicts the creation, the settings and the rules the group will have, and the removal.
  diff_mode:
    support: full
    details: Shows the managed settings and the rule list before and after (rule contents, without IDs).
  platform:
    platforms: posix
options:
  name:
    description:
      - Exact name of the security group; its identity within the zone and the project.
    type: str
    required: true
  state:
    description:
      - V(present) creates the group if needed and converges its settings and, when O(rules) is given, its rules.
      - V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  zone:
    description:
      - Zone of the group, for example V(fr-par-2). Security groups are zonal; an instance can only use a group
        of its own zone.
      - Defaults to E(SCW_DEFAULT_ZONE) or the profile file's default zone.
    type: str
  description:
    description:
      - Description of the group. Converged when given; when not given, a new group gets a note that Ansible
        manages it and an existing group's description is left alone.
    type: str
  inbound_default_policy:
    description:
      - What happens to inbound traffic that no rule matches. V(drop) with accept rules is an allow list.
      - Converged when given; when not given, a new group gets V(accept) (the API's default) and an existing
        group's policy is left alone.
    type: str
    choices: [accept, drop]
  outbound_default_policy:
    description:
      - What happens to outbound traffic that no rule matches; as O(inbound_default_policy).
    type: str
    choices: [accept, drop]
  stateful:
    description:
      - Whether the group is stateful (answers to allowed traffic are let through). With V(false) the answers
        need their own rules.
    type: bool
    default: true
  rules:
    description:
      - The group's rules, exactly, in order. Rules not listed are removed; V([]) removes every editable rule.
      - Order matters within a direction, as the first matching rule decides; the module compares the inbound
        rules and the outbound rules each in order.
      - When not given, the rules are not managed (left as they are).
    type: list
    elements: dict
    suboptions:
      direction:
        description: Traffic the rule applies to.
        type: str
        required: true
        choices: [inbound, outbound]
      action:
        description: What to do with matching traffic.
        type: str
        required: true
        choices: [accept, drop]
      protocol:
        description:
          - Protocol of the traffic. V(ANY) matches every protocol.
          - V(ICMP) and V(ANY) rules apply to every port and take no port options.
        type: str
        required: true
        choices: [TCP, UDP, ICMP, ANY]
      ip_range:
        description:
          - The other side of the traffic (the source of inbound traffic, the destination of outbound traffic), as
            an IPv4 or IPv6 network in CIDR notation, such as V(172.16.0.0/22); a bare address means that one
            address. A network with host bits set (V(10.0.0.1/24)) is refused.
        type: str
        required: true
      dest_port_from:
        description:
          - The destination port, or the first port of a range, from 1 to 65535. TCP and UDP only.
          - When neither port is given, a TCP or UDP rule applies to every port.
        type: int
      dest_port_to:
        description:
          - The last port of a range (inclusive), not lower than O(rules[].dest_port_from), which it needs.
        type: int
notes:
  - A group with O(inbound_default_policy=drop) and an accept rule for the private network's range lets that
    traffic in whether or not Scaleway filters Private Network traffic with security groups; the services
    listening on the private network still need their own authentication.
seealso:
  - module: parrotpark.llm.scaleway_instance
"""

EXAMPLES = r"""
- name: The GPU server's group, inbound from the private network only and SSH from the entrance
  parrotpark.llm.scaleway_security_group:
    name: parrotpark-gpu
    zone: fr-par-2
    inbound_default_policy: drop
    outbound_default_policy: accept
    stateful: true
    rules:
      - {direction: inbound, action: accept, protocol: ANY, ip_range: 172.16.0.0/22}
      - {direction: inbound, action: accept, protocol: TCP, dest_port_from: 22, ip_range: 203.0.113.7/32}
  register: __gpu_group

- name: An instance in that group
  parrotpark.llm.scaleway_instance:
    name: parrotpark-gpu
    zone: [fr-par-2]
    commercial_type: [L4-1-24G]
    image: ubuntu_noble_gpu_os_13_nvidia
    security_group: "{{ __gpu_group.security_group.id }}"

- name: A port range, and ping from anywhere
  parrotpark.llm.scaleway_security_group:
    name: parrotpark-monitoring
    inbound_default_policy: drop
    rules:
      - {direction: inbound, action: accept, protocol: UDP, dest_port_from: 60000, dest_port_to: 61000,
         ip_range: 0.0.0.0/0}
      - {direction: inbound, action: accept, protocol: ICMP, ip_range: 0.0.0.0/0}

- name: Remove the group (no instance may still use it)
  parrotpark.llm.scaleway_security_group:
    name: parrotpark-monitoring
    state: absent
"""

RETURN = r"""
security_group:
  description:
    - The group after the run (in check mode, as it would be); V(null) when it is absent.
  returned: success
  type: dict
  contains:
    id:
      description: Security group ID; V(null) in check mode when the group would be created.
      type: str
      sample: 0c8f6f7e-8a3d-4a55-9d7a-2d3f3c1b9e10
    name:
      description: Its name.
      type: str
      sample: parrotpark-gpu
    zone:
      description: Its zone.
      type: str
      sample: fr-par-2
    project:
      description: Its project ID.
      type: str
    description:
      description: Its description.
      type: str
    stateful:
      description: Whether it is stateful.
      type: bool
      sample: true
    inbound_default_policy:
      description: V(accept) or V(drop).
      type: str
      sample: drop
    outbound_default_policy:
      description: V(accept) or V(drop).
      type: str
      sample: accept
    project_default:
      description: Whether new instances of the project get this group when they name none.
      type: bool
      sample: false
    servers:
      description: The instances that use the group.
      type: list
      elements: dict
      sample: [{id: 5a1e..., name: parrotpark-gpu}]
    rules:
      description:
        - Its editable rules in position order, in the module's normal form (the IP range always with its prefix
          length, O(rules[].dest_port_to) V(null) for a single port, no ports for ICMP and ANY).
      type: list
      elements: dict
      contains:
        id:
          description: Rule ID; V(null) in check mode for a rule that would be created.
          type: str
        position:
          description: Position in the group's list, from 1.
          type: int
        direction:
          description: V(inbound) or V(outbound).
          type: str
        action:
          description: V(accept) or V(drop).
          type: str
        protocol:
          description: V(TCP), V(UDP), V(ICMP) or V(ANY).
          type: str
        ip_range:
          description: The network.
          type: str
          sample: 172.16.0.0/22
        dest_port_from:
          description: First (or only) destination port; V(null) for every port.
          type: int
        dest_port_to:
          description: Last destination port of a range; V(null) for a single port.
          type: int
error_kind:
  description:
    - On failure, the kind of error. V(invalid_input) (an option's value, named in the message, was refused; also
      the argument spec's own checks), V(config) (credentials or settings), V(duplicate_name) (several groups
      have the name), V(in_use) (the group to remove is used by instances), V(transport) (no answer, or the
      connection refused), V(missing_sdk); or the API's own error type, such as V(permissions_denied),
      V(denied_authentication), V(not_found), V(invalid_arguments), V(invalid_request_error), and V(api_error)
      for an API error without a type.
  returned: on failure
  type: str
"""

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import ScalewayError, ScalewayModule
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_security_group import (
    ARGUMENT_SPEC,
    SecurityGroupManager,
    validate,
)


def main() -> None:
    scw = ScalewayModule(ARGUMENT_SPEC, supports_check_mode=True)
    params = scw.params
    manager = None
    try:
        wanted = validate(params)
        client = scw.client(params["zone"])
        zone = params["zone"] or client.default_zone
        if not zone:
            raise ScalewayError(
                "zone: no zone given and no default zone found; set zone, the environment variable "
                "SCW_DEFAULT_ZONE or default_zone in the Scaleway profile file.",
                kind="config",
            )
        manager = SecurityGroupManager(client, params, zone, wanted, scw.module.check_mode)
        result = manager.run()
    except ScalewayError as error:
        scw.fail(error, changed=manager.changed if manager is not None else False)
        return
    scw.module.exit_json(**result)


if __name__ == "__main__":
    main()
