# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: scaleway
short_description: Scaleway Instances as an inventory
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - Lists the Scaleway Instances of a project in the zones asked for and adds one host per Instance.
  - Every host variable the plugin sets, except C(ansible_host), starts with O(variable_prefix); they are the
    fields that M(parrotpark.llm.scaleway_instance_info) returns for an Instance, plus C(hostname).
  - The configuration file name must end in C(scaleway.yml), C(scaleway.yaml), C(scw.yml) or C(scw.yaml).
  - Every credential option is templated, so it may be a vaulted value (C(!vault)) or a Jinja template, for
    example one that calls the P(ansible.builtin.env#lookup) lookup. Extra variables (C(-e)) are available to
    those templates.
  - Options not set in the file fall back to the C(SCW_*) environment variables of the Scaleway SDK, then to
    the Scaleway profile file (see O(profile)).
requirements:
  - scaleway >= 2.12 (the official Scaleway Python SDK) on the controller
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    type: str
    required: true
    choices: [parrotpark.llm.scaleway]
  access_key:
    description:
      - Scaleway access key (C(SCW) followed by 17 upper-case letters or digits).
    type: str
    env:
      - name: SCW_ACCESS_KEY
  secret_key:
    description:
      - Scaleway secret key (a UUID). Keep it in a vault or in the environment; it is never shown in errors.
    type: str
    env:
      - name: SCW_SECRET_KEY
  project_id:
    description:
      - Only the Instances of this project.
      - Without it, those of O(organization_id), otherwise all that the API key may see.
    type: str
    env:
      - name: SCW_DEFAULT_PROJECT_ID
  organization_id:
    description:
      - ID of the Scaleway organization.
    type: str
    env:
      - name: SCW_DEFAULT_ORGANIZATION_ID
  api_url:
    description:
      - Base URL of the Scaleway API. Defaults to C(https://api.scaleway.com) when neither this, the environment
        nor the profile file sets it.
    type: str
    env:
      - name: SCW_API_URL
  profile:
    description:
      - Name of the profile to read from the Scaleway configuration file for anything not set otherwise;
        C(default) when not set. The file is optional unless O(profile) or O(config_file) is set.
    type: str
    env:
      - name: SCW_PROFILE
  config_file:
    description:
      - Path of the Scaleway configuration file; C($XDG_CONFIG_HOME/scw/config.yaml) or
        C(~/.config/scw/config.yaml) when not set.
    type: path
    env:
      - name: SCW_CONFIG_PATH
  api_timeout:
    description:
      - Seconds to wait for each answer of the API.
    type: int
    default: 30
  api_retries:
    description:
      - How often to retry a read that failed with a connection error, a 5xx or a 429 answer.
    type: int
    default: 3
  zones:
    description:
      - Zones to list Instances in. Set it to the zones you use; every zone costs one or more API calls.
      - An empty list means the default zone, from E(SCW_DEFAULT_ZONE) or C(default_zone) of the profile file.
    type: list
    elements: str
    default: [fr-par-1, fr-par-2, fr-par-3, nl-ams-1, nl-ams-2, nl-ams-3, pl-waw-1, pl-waw-2, pl-waw-3]
  tags:
    description:
      - Only the Instances that carry every one of these tags (they may carry more).
    type: list
    elements: str
    default: []
  states:
    description:
      - Only the Instances in one of these states. All states when empty.
    type: list
    elements: str
    default: []
    choices: [running, stopped, stopped in place, starting, stopping, locked]
  hostnames:
    description:
      - How to name the hosts, in order of preference. For each Instance the first value that is not empty
        (and not already taken, see below) becomes the inventory host name; it is always a single string.
      - V(name) is the Instance name, V(id) its ID, V(public_ip), V(public_ipv6) and V(private_ip) its first
        address of that kind, V(hostname) the host name Scaleway gives the Instance.
      - An Instance with none of these values is named by its ID.
      - "Two Instances never share a host name. Instances are named oldest first (creation date, then ID); when
        a value is already taken by an older Instance, the next preference is tried, and when none is left the
        host is named after its first preference followed by C(_) and its ID (for example C(gpu-1_0f5c...)).
        A warning names every Instance that did not get its first preference."
    type: list
    elements: str
    default: [name]
    choices: [name, id, public_ip, public_ipv6, private_ip, hostname]
  connect_with:
    description:
      - Which value becomes C(ansible_host). V(none) leaves C(ansible_host) unset.
      - When an Instance has no such value (for example no public IP), C(ansible_host) is not set for it;
        use O(compose) to fall back to another variable.
    type: str
    default: public_ip
    choices: [public_ip, public_ipv6, private_ip, hostname, name, none]
  variable_prefix:
    description:
      - Prefix of every host variable the plugin sets, except C(ansible_host).
    type: str
    default: scaleway_
notes:
  - "With O(cache) enabled the list of Instances (not the credentials) is stored with the cache plugin and reused
    until O(cache_timeout) runs out, C(--flush-cache) is given, or O(zones), O(tags), O(states), O(project_id),
    O(organization_id) or O(api_url) change."
  - "Host variables (with the default prefix): C(scaleway_id), C(scaleway_name), C(scaleway_zone),
    C(scaleway_project), C(scaleway_organization), C(scaleway_commercial_type), C(scaleway_arch),
    C(scaleway_state), C(scaleway_tags), C(scaleway_image_id), C(scaleway_image_name), C(scaleway_public_ip),
    C(scaleway_public_ipv6), C(scaleway_public_ips), C(scaleway_private_ip), C(scaleway_private_nics),
    C(scaleway_volumes), C(scaleway_security_group_id), C(scaleway_security_group_name),
    C(scaleway_creation_date), C(scaleway_allowed_actions), C(scaleway_hostname). Their meaning is that of
    RV(parrotpark.llm.scaleway_instance_info#module:instances); C(scaleway_hostname) is the host name Scaleway
    gives the Instance."
seealso:
  - module: parrotpark.llm.scaleway_instance_info
"""

EXAMPLES = r"""
# inventories/prod/gpu.scaleway.yml - credentials from SCW_ACCESS_KEY / SCW_SECRET_KEY / SCW_DEFAULT_PROJECT_ID
plugin: parrotpark.llm.scaleway
zones: [fr-par-2, pl-waw-2]
tags: [parrotpark]
states: [running]
connect_with: private_ip
keyed_groups:
  # scaleway_tag_llm, scaleway_tag_parrotpark, ...
  - key: scaleway_tags
    prefix: scaleway_tag
  # zone_fr_par_2, ...
  - key: scaleway_zone
    prefix: zone
groups:
  gpu: scaleway_commercial_type is match('(L4|L40S|H100)-')
compose:
  ansible_user: "'root'"
---
# A vaulted secret key (ansible-vault encrypt_string --name secret_key) and a cache
plugin: parrotpark.llm.scaleway
access_key: SCWXXXXXXXXXXXXXXXXX
secret_key: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  6332...
project_id: "{{ lookup('ansible.builtin.env', 'PARROTPARK_PROJECT_ID') }}"
zones: [fr-par-2]
hostnames: [name, id]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/parrotpark-inventory
cache_timeout: 300
"""

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (
    HAS_SCALEWAY,
    ScalewayClient,
    ScalewayError,
    list_servers,
    resolve_settings,
    resolve_zones,
    summarize_server,
)

CREDENTIAL_OPTIONS = ("access_key", "secret_key", "project_id", "organization_id", "api_url", "profile", "config_file")
FILE_SUFFIXES = ("scaleway.yml", "scaleway.yaml", "scw.yml", "scw.yaml")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "parrotpark.llm.scaleway"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(FILE_SUFFIXES)

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        if not HAS_SCALEWAY:
            raise AnsibleError("The scaleway inventory plugin needs the scaleway Python SDK on the controller.")
        # Extra variables (-e) may be used in the templated options.
        self.templar.available_variables = self._vars
        self._read_config_data(path)
        try:
            settings = resolve_settings(self._connection_params())
            zones = resolve_zones(self.get_option("zones"), settings["zone"], "zones")
        except ScalewayError as exc:
            raise AnsibleError(f"{path}: {exc.message}") from None
        query = {
            "zones": zones,
            "tags": list(self.get_option("tags") or []),
            "states": list(self.get_option("states") or []),
            "project_id": settings["project_id"],
            "organization_id": settings["organization_id"],
            "api_url": settings["api_url"],
        }
        records = self._cached_records(path, cache, query)
        if records is None:
            try:
                records = self._fetch(settings, query)
            except ScalewayError as exc:
                raise AnsibleError(f"{path}: {exc.message}") from None
            if self.get_option("cache"):
                self._cache[self.get_cache_key(path)] = {"query": query, "servers": records}
        self._populate(records)

    # -- options ------------------------------------------------------------

    def _connection_params(self) -> dict[str, Any]:
        """Connection options, each one templated (vaulted values and lookups work), empty ones as unset."""
        params: dict[str, Any] = {}
        for option in CREDENTIAL_OPTIONS:
            value = self.get_option(option)
            if value is not None:
                value = self.templar.template(value)
            params[option] = str(value) if value not in (None, "") else None
        params["api_timeout"] = self.get_option("api_timeout")
        params["api_retries"] = self.get_option("api_retries")
        return params

    # -- cache --------------------------------------------------------------

    def _cached_records(self, path: str, cache: bool, query: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The cached Instances when caching is on, not refreshed, not expired, and the query is the same."""
        if not cache or not self.get_option("cache"):
            return None
        try:
            entry = self._cache[self.get_cache_key(path)]
        except KeyError:
            return None
        if not isinstance(entry, dict) or entry.get("query") != query:
            return None
        return entry.get("servers")

    # -- API ----------------------------------------------------------------

    def _fetch(self, settings: dict[str, Any], query: dict[str, Any]) -> list[dict[str, Any]]:
        api = ScalewayClient(settings, self.get_option("api_timeout"), self.get_option("api_retries"))
        records = []
        for zone in query["zones"]:
            servers = list_servers(
                api, zone, tags=query["tags"], project=settings["project_id"], states=query["states"]
            )
            for server in servers:
                record = summarize_server(server, api.private_addresses(server))
                record["hostname"] = server.get("hostname")
                records.append(record)
        return records

    # -- inventory ----------------------------------------------------------

    def _host_names(self, records: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """Pair each Instance with a unique host name; oldest Instances choose first."""
        preferences = self.get_option("hostnames") or ["name"]
        taken: set[str] = set()
        named = []
        for record in sorted(records, key=lambda item: (item.get("creation_date") or "", item["id"])):
            candidates = [str(record[key]) for key in preferences if record.get(key)] or [record["id"]]
            chosen = next((value for value in candidates if value not in taken), None)
            if chosen is None:
                chosen = f"{candidates[0]}_{record['id']}"
            if chosen != candidates[0]:
                self.display.warning(
                    f"Scaleway inventory: host name {candidates[0]!r} is already taken by another Instance; "
                    f"Instance {record['id']} ({record['zone']}) is named {chosen!r}."
                )
            taken.add(chosen)
            named.append((chosen, record))
        return named

    def _populate(self, records: list[dict[str, Any]]) -> None:
        prefix = self.get_option("variable_prefix")
        connect_with = self.get_option("connect_with")
        strict = self.get_option("strict")
        for host, record in self._host_names(records):
            self.inventory.add_host(host)
            for key, value in record.items():
                self.inventory.set_variable(host, f"{prefix}{key}", value)
            if connect_with != "none":
                address = record.get(connect_with)
                if address:
                    self.inventory.set_variable(host, "ansible_host", str(address))
                else:
                    self.display.v(f"Scaleway inventory: {host} has no {connect_with}; ansible_host is not set.")
            host_vars = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), host_vars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), {}, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), {}, host, strict=strict)
