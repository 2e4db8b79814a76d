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
  - "A rule is a dictionary with C(name), the variable, and at least one check: C(between) (a list of the lowest and
    highest allowed integer), C(at_least) (the lowest allowed integer), C(is) (a kind: V(absolute_path), V(size) (a
    number followed by k, m or g, as Docker's log options), V(docker_name), V(env_names) (a mapping whose keys are
    environment variable names), V(ip_addresses) (a non-empty list of IP addresses), V(networks) (a list, possibly
    empty, of IPv4 or IPv6 networks in CIDR notation without host bits, such as V(172.16.4.0/22)), V(host) (a DNS name,
    labels of at most 63 letters, digits and '-', or an IP address), V(http_url), V(sql_identifier), V(not_empty)),
    C(min_length) (a secret: the message gives its length, never its value), C(starts_with) (a text the value must begin
    with; the message never shows the value), C(one_of) (a list of allowed values; V(true) is not V(1)), C(matches) (a
    regular expression matched from the start of the value, as Ansible's C(match) test; anchor its end with V($)) or
    C(unique) (a list without repeats)."
  - A rule with several checks makes them in the order C(is), C(between), C(at_least), C(min_length),
    C(starts_with), C(one_of), C(matches), C(unique) and reports the first that breaks.
  - C(expect) says in words what the rule wants, a noun phrase such as V(a DNS name such as example.com); the message
    is then "<name> must be <expect>; got <value>." C(matches) needs it; with other checks it replaces their own
    words.
  - "C(each) true applies C(one_of) and C(matches) to every item of a list (the value must be a list); the message
    adds the items that are wrong (C(wrong: [...])). Numbers are matched as their text, as the C(string) filter would."
  - "C(unique) reports the repeated items, in the words of C(expect) (C(more than once: [...])) or as
    C(<name> lists <entry> more than once), the entry being the value of C(unique) when it is a text (V(a site)) and
    V(an entry) otherwise."
  - "C(secret) true never shows the value, only its length (C(<name> must be <expect>; it has N characters.)); rules
    with C(min_length) or C(starts_with) never show it either."
  - A rule with C(skip) true is not checked (a setting that only matters when another is on).
  - A rule's C(hint), when given, follows its message (what to do, where a generated value is kept).
  - Values are looked at as given; a value of the wrong type breaks its rule with a message, never an exception.
    A broken table (no check, an unknown kind, C(matches) without C(expect) or with a bad expression) is an error.
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
      - {name: caddy_acme_email, matches: '^$|^[^@\s]+@[^@\s]+\.[^@\s]+$', expect: an e-mail address or empty}
      - {name: scheduler_days, each: true, one_of: [Mon, Tue], unique: true, expect: 'distinct days, Mon or Tue'}
      - {name: litellm_master_key, starts_with: sk-}
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
from functools import lru_cache  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402

_DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")
_SIZE = re.compile(r"^[1-9][0-9]*[kmg]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# The checks a rule may make, in the order they are made.
_CHECKS = ("is", "between", "at_least", "min_length", "starts_with", "one_of", "matches", "unique")


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


def _is_network(value: Any) -> bool:
    """A network in CIDR notation (prefix given, no host bits set), IPv4 or IPv6."""
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def _shown(value: Any) -> str:
    """A value as the messages show it: a text in quotes, nothing for None, anything else as Python prints it."""
    if value is None:
        return ""
    return f"'{value}'" if isinstance(value, str) else str(value)


def _text(value: Any) -> str | None:
    """The text a pattern is matched against: a string, or a number as its text; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _hides_value(rule: Mapping[str, Any]) -> bool:
    return _truthy(rule.get("secret", False)) or "min_length" in rule or "starts_with" in rule


def _broken(rule: Mapping[str, Any], value: Any, own_words: str, detail: str = "") -> str:
    """The message of a broken check: in the rule's words (expect) when it has them, else in the check's own."""
    if "expect" not in rule:
        if not _truthy(rule.get("secret", False)):
            return own_words
        # A secret in the check's own words: everything from "(got" on goes, the length stays.
        length = len(value) if isinstance(value, str) else 0
        return re.sub(r" \(got .*$", "", own_words, flags=re.S).rstrip(".") + f"; it has {length} characters."
    name, expect = rule["name"], rule["expect"]
    if _hides_value(rule):
        return f"{name} must be {expect}; it has {len(value) if isinstance(value, str) else 0} characters."
    return f"{name} must be {expect}; got {_shown(value)}{f' ({detail})' if detail else ''}."


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
    "networks": (
        lambda v: isinstance(v, list) and all(_is_network(item) for item in v),
        "must list networks in CIDR notation without host bits, such as 172.16.4.0/22",
    ),
    "host": (
        lambda v: isinstance(v, str) and (_is_ip(v) or bool(_DNS_NAME.match(v))),
        "must be a host name or an IP address",
    ),
    "http_url": (_matches(_HTTP_URL), "must be an http(s) URL"),
    "sql_identifier": (
        _matches(_SQL_IDENTIFIER),
        "must be a lower-case SQL identifier (letters, digits and '_', at most 63)",
    ),
    "not_empty": (lambda v: v not in (None, "", [], {}), "must not be empty"),
}


def _kind_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    name, kind = rule["name"], str(rule["is"])
    if kind == "env_names":
        problem = _env_names_problem(name, value)
        return problem and _broken(rule, value, problem)
    if kind not in _KINDS:
        raise AnsibleFilterError(f"setting_problems: the rule for {name} has the unknown kind '{kind}'")
    good, expected = _KINDS[kind]
    if good(value):
        return None
    return _broken(rule, value, f"{name} {expected} (got {_shown(value)}).")


def _number_problem(rule: Mapping[str, Any], value: Any, low: int, high: int | None) -> str | None:
    number = _integer(value)
    if number is not None and number >= low and (high is None or number <= high):
        return None
    name = rule["name"]
    if high is None:
        return _broken(rule, value, f"{name} must be at least {low} (got {value}).")
    return _broken(rule, value, f"{name} must be between {low} and {high} (got {value}).")


def _between_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    low, high = rule["between"]
    return _number_problem(rule, value, low, high)


def _at_least_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    return _number_problem(rule, value, rule["at_least"], None)


def _min_length_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    length = len(value) if isinstance(value, str) else 0
    if length >= rule["min_length"] and not any(character.isspace() for character in str(value or "")):
        return None
    own = f"{rule['name']} must have at least {rule['min_length']} characters without spaces (it has {length})."
    return _broken(rule, value, own)


def _starts_with_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    prefix = str(rule["starts_with"])
    if isinstance(value, str) and value.startswith(prefix):
        return None
    return _broken(rule, value, f"{rule['name']} must start with {prefix} (it does not).")


def _shown_choice(choice: Any) -> str:
    return str(choice).lower() if isinstance(choice, bool) else str(choice)


def _among(value: Any, choices: list[Any]) -> bool:
    """Is the value one of the choices (true is not 1, nor 1 true)?"""
    return any(isinstance(value, bool) == isinstance(choice, bool) and value == choice for choice in choices)


def _each_problem(rule: Mapping[str, Any], value: Any, good: Callable[[Any], bool], own_words: str) -> str | None:
    """A check made on every item of a list (each) or on the value itself."""
    name = rule["name"]
    if not _truthy(rule.get("each", False)):
        return None if good(value) else _broken(rule, value, f"{name} must be {own_words} (got {_shown(value)}).")
    if not _is_list(value):
        return _broken(rule, value, f"{name} must be a list of {own_words} (got {_shown(value)}).")
    wrong = [item for item in value if not good(item)]
    if not wrong:
        return None
    return _broken(rule, value, f"{name} may only list {own_words} (got {value}; wrong: {wrong}).", f"wrong: {wrong}")


def _one_of_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    choices = rule["one_of"]
    if not _is_list(choices):
        raise AnsibleFilterError(f"setting_problems: one_of of the rule for {rule['name']} must be a list")
    words = "one of " + ", ".join(_shown_choice(choice) for choice in choices)
    return _each_problem(rule, value, lambda item: _among(item, list(choices)), words)


@lru_cache(maxsize=256)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _matches_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    try:
        pattern = _pattern(str(rule["matches"]))
    except re.error as error:
        raise AnsibleFilterError(
            f"setting_problems: matches of the rule for {rule['name']} is not a regular expression: {error}"
        ) from error

    def good(item: Any) -> bool:
        text = _text(item)
        return text is not None and bool(pattern.match(text))

    return _each_problem(rule, value, good, str(rule["expect"]))


def _unique_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    name = rule["name"]
    if not _is_list(value):
        return _broken(rule, value, f"{name} must be a list (got {_shown(value)}).")
    repeated: list[Any] = []
    for index, item in enumerate(value):
        if item in value[:index] and item not in repeated:
            repeated.append(item)
    if not repeated:
        return None
    entry = rule["unique"] if isinstance(rule["unique"], str) else "an entry"
    return _broken(rule, value, f"{name} lists {entry} more than once: {repeated}.", f"more than once: {repeated}")


_CHECKERS: dict[str, Callable[[Mapping[str, Any], Any], str | None]] = {
    "is": _kind_problem,
    "between": _between_problem,
    "at_least": _at_least_problem,
    "min_length": _min_length_problem,
    "starts_with": _starts_with_problem,
    "one_of": _one_of_problem,
    "matches": _matches_problem,
    "unique": _unique_problem,
}


def _rule_problem(rule: Mapping[str, Any], value: Any) -> str | None:
    name = rule["name"]
    checks = [check for check in _CHECKS if check in rule and not (check == "unique" and rule[check] is False)]
    if not checks:
        raise AnsibleFilterError(
            f"setting_problems: the rule for {name} needs one of {', '.join(_CHECKS[:-1])} or {_CHECKS[-1]}; "
            f"got {sorted(rule)}"
        )
    if "matches" in rule and not rule.get("expect"):
        raise AnsibleFilterError(
            f"setting_problems: the rule for {name} needs expect with matches (what the pattern stands for, in words)"
        )
    for check in checks:
        problem = _CHECKERS[check](rule, value)
        if problem:
            return problem
    return None


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
