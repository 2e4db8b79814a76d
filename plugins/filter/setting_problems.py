# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: setting_problems
short_description: What is wrong with a role's settings, checked against a table of rules
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - Checks each setting of a table of rules and returns one message per broken rule, naming the variable, what is
    expected and what it got. An empty list means every setting is good. The roles' preflight (the internal role
    C(_common), entry point C(checks)) fails with these messages before anything changes.
  - "A rule is a dictionary with C(name), the variable, and one of: C(between) (a list of the lowest and highest
    allowed integer), C(at_least) (the lowest allowed integer), C(is) (a kind: V(absolute_path), V(size) (a number
    followed by k, m or g, as Docker's log options), V(docker_name), V(env_names) (a mapping whose keys are
    environment variable names), V(ip_addresses) (a non-empty list of IP addresses), V(host) (a host name or an
    IP address), V(http_url), V(sql_identifier), V(not_empty)), or C(min_length) (a secret: the message gives its
    length, never its value)."
  - A rule with C(skip) true is not checked (a setting that only matters when another is on).
  - A rule's C(hint), when given, follows its message (what to do, where a generated value is kept).
  - Values are looked at as given; a value of the wrong type breaks its rule with a message, never an exception.
positional: values
options:
  _input:
    description: The rules, a list of dictionaries as described above.
    type: list
    elements: dict
    required: true
  values:
    description: The values of the rules' variables, in the same order (the roles pass C(query('vars', ...))).
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the settings
  vars:
    rules:
      - {name: litellm_port, between: [1, 65535]}
      - {name: litellm_config_dir, is: absolute_path}
      - {name: litellm_db_port, between: [1, 65535], skip: "{{ not litellm_database_enabled }}"}
    problems: >-
      {{ rules | parrotpark.llm.setting_problems(query('ansible.builtin.vars', *(rules | map(attribute='name')))) }}
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
"""

RETURN = r"""
_value:
  description: One sentence per broken rule, in the order of the rules; empty when every setting is good.
  type: list
  elements: str
"""

import ipaddress  # noqa: E402 (the documentation comes first)
import re  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402

_DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")
_SIZE = re.compile(r"^[1-9][0-9]*[kmg]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _integer(value: Any) -> int | None:
    """The value as an integer, or None when it is not one (booleans are not integers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _env_names_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"{name} must map environment variable names to values (got {value})."
    bad = [str(key) for key in value if not _ENV_NAME.match(str(key))]
    if bad:
        return (
            f"{name} must map environment variable names (letters, digits and '_', not starting with a digit) "
            f"to values; not names: {bad}."
        )
    return None


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and bool(pattern.match(value))


# kind: (is the value good, what the message says is expected)
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "absolute_path": (lambda v: isinstance(v, str) and len(v) > 1 and v.startswith("/"), "must be an absolute path"),
    "size": (_matches(_SIZE), "must be a number followed by k, m or g, such as 10m"),
    "docker_name": (
        _matches(_DOCKER_NAME),
        "must be a Docker name (letters, digits, '_', '.' and '-', starting with a letter or digit)",
    ),
    "ip_addresses": (
        lambda v: isinstance(v, list) and len(v) > 0 and all(_is_ip(item) for item in v),
        "must list at least one IP address",
    ),
    "host": (
        lambda v: isinstance(v, str) and (_is_ip(v) or bool(_HOST.match(v))),
        "must be a host name or an IP address",
    ),
    "http_url": (_matches(_HTTP_URL), "must be an http(s) URL"),
    "sql_identifier": (
        _matches(_SQL_IDENTIFIER),
        "must be a lower-case SQL identifier (letters, digits and '_', at most 63)",
    ),
    "not_empty": (lambda v: v not in (None, "", [], {}), "must not be empty"),
}


def _kind_problem(name: str, kind: str, value: Any) -> str | None:
    if kind == "env_names":
        return _env_names_problem(name, value)
    if kind not in _KINDS:
        raise AnsibleFilterError(f"setting_problems: the rule for {name} has the unknown kind '{kind}'")
    good, expected = _KINDS[kind]
    if good(value):
        return None
    shown = f"'{value}'" if isinstance(value, str) or value is None else str(value)
    return f"{name} {expected} (got {'' if value is None else shown})."


def _number_problem(name: str, value: Any, low: int, high: int | None) -> str | None:
    number = _integer(value)
    if number is not None and number >= low and (high is None or number <= high):
        return None
    if high is None:
        return f"{name} must be at least {low} (got {value})."
    return f"{name} must be between {low} and {high} (got {value})."


def _rule_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    name = rule["name"]
    if "between" in rule:
        low, high = rule["between"]
        return _number_problem(name, value, low, high)
    if "at_least" in rule:
        return _number_problem(name, value, rule["at_least"], None)
    if "min_length" in rule:
        length = len(value) if isinstance(value, str) else 0
        if length < rule["min_length"] or any(character.isspace() for character in str(value or "")):
            return f"{name} must have at least {rule['min_length']} characters without spaces (it has {length})."
        return None
    if "is" in rule:
        return _kind_problem(name, str(rule["is"]), value)
    raise AnsibleFilterError(
        f"setting_problems: the rule for {name} needs one of between, at_least, min_length or is; got {sorted(rule)}"
    )


def setting_problems(rules: list[Mapping[str, Any]], values: list[Any]) -> list[str]:
    """One message per broken rule (the variable, what is expected, what it got); empty when all are good."""
    if not isinstance(rules, list) or not all(isinstance(rule, Mapping) and "name" in rule for rule in rules):
        raise AnsibleFilterError("setting_problems: the input must be a list of rules, each a dictionary with a name")
    if not isinstance(values, list) or len(values) != len(rules):
        raise AnsibleFilterError(
            f"setting_problems: expected one value per rule ({len(rules)}), got "
            f"{len(values) if isinstance(values, list) else type(values).__name__}"
        )
    problems = []
    for rule, value in zip(rules, values, strict=True):
        if _truthy(rule.get("skip", False)):
            continue
        problem = _rule_problem(rule, value)
        if problem:
            problems.append(f"{problem} {rule['hint']}" if rule.get("hint") else problem)
    return problems


class FilterModule:
    """The setting_problems filter."""

    def filters(self) -> dict[str, Any]:
        return {"setting_problems": setting_problems}
