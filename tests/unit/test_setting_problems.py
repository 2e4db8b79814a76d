"""The setting_problems filter: one message per broken rule, naming the variable, what is expected and what it got."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.setting_problems import (  # noqa: E402
    FilterModule,
    setting_problems,
)

DOMAIN = {"name": "x_domain", "matches": r"^[a-z0-9]+(\.[a-z0-9]+)*$", "expect": "a DNS name"}
HOUR = {"name": "x_hour", "matches": "^(1?[0-9]|2[0-3])$", "expect": "an hour 0 to 23"}
ZONES = {"name": "x_zones", "each": True, "matches": "^[a-z]{2}-[a-z]{3}-[1-9]$", "expect": "Scaleway zones"}
DAYS = {"name": "x_days", "each": True, "one_of": ["Mon", "Tue"], "unique": True, "expect": "distinct days, Mon or Tue"}

# rule, a good value, a bad value, the message for the bad value
CASES = {
    "between": ({"name": "x_port", "between": [1, 65535]}, 443, 0, "x_port must be between 1 and 65535 (got 0)."),
    "between, top": ({"name": "x_n", "between": [0, 10]}, 10, 11, "x_n must be between 0 and 10 (got 11)."),
    "between, not a number": ({"name": "x_n", "between": [0, 10]}, "3", "a few", "x_n must be between 0 and 10"),
    "at least": ({"name": "x_retries", "at_least": 1}, 1, 0, "x_retries must be at least 1 (got 0)."),
    "at least, a boolean": ({"name": "x_retries", "at_least": 0}, 0, True, "x_retries must be at least 0 (got True)."),
    "absolute path": ({"name": "x_dir", "is": "absolute_path"}, "/etc/x", "etc/x", "x_dir must be an absolute path"),
    "root is not a directory to use": ({"name": "x_dir", "is": "absolute_path"}, "/a", "/", "(got '/')"),
    "size": ({"name": "x_log", "is": "size"}, "10m", "10 MB", "x_log must be a number followed by k, m or g"),
    "docker name": ({"name": "x_name", "is": "docker_name"}, "pp-x.1", "pp/x", "x_name must be a Docker name"),
    "env names": ({"name": "x_env", "is": "env_names"}, {"A_1": "v"}, {"A B": "v", "OK": 1}, "not names: ['A B']"),
    "env not a mapping": ({"name": "x_env", "is": "env_names"}, {}, ["A"], "x_env must map environment variable"),
    "ip addresses": ({"name": "x_ips", "is": "ip_addresses"}, ["127.0.0.1", "::1"], ["localhost"], "x_ips must list"),
    "networks": (
        {"name": "x_nets", "is": "networks"},
        ["172.16.4.0/22", "fd00::/64"],
        ["10.0.0.1"],
        "x_nets must list networks",
    ),
    "network with host bits": ({"name": "x_nets", "is": "networks"}, [], ["10.0.0.1/8"], "without host bits"),
    "no ip address": ({"name": "x_ips", "is": "ip_addresses"}, ["10.0.0.1"], [], "at least one IP address (got [])"),
    "host": ({"name": "x_host", "is": "host"}, "db.internal", "http://db", "x_host must be a host name or an IP"),
    "host as an ip": ({"name": "x_host", "is": "host"}, "fd00::1", "db_1", "(got 'db_1')"),
    "url": ({"name": "x_url", "is": "http_url"}, "https://a.example/v1", "a.example/v1", "x_url must be an http(s)"),
    "sql identifier": ({"name": "x_db", "is": "sql_identifier"}, "lite_llm", "lite-llm", "lower-case SQL identifier"),
    "not empty": ({"name": "x_key", "is": "not_empty"}, "k", "", "x_key must not be empty"),
    "secret length": ({"name": "x_pw", "min_length": 16}, "p" * 16, "short", "at least 16 characters"),
    "secret with a space": ({"name": "x_pw", "min_length": 4}, "abcd", "ab cd", "(it has 5)"),
    "host, a label too long": ({"name": "x_host", "is": "host"}, "a" * 63 + ".example", "a" * 64 + ".example", "got"),
    "host, two dots": ({"name": "x_host", "is": "host"}, "db.example", "db..example", "(got 'db..example')"),
    "kind in the rule's words": (
        {"name": "x_db", "is": "host", "expect": "the database server", "hint": "It defaults to x_entrance."},
        "10.0.0.2",
        "",
        "x_db must be the database server; got ''. It defaults to x_entrance.",
    ),
    "matches": (
        DOMAIN,
        "example.com",
        "https://example.com",
        "x_domain must be a DNS name; got 'https://example.com'.",
    ),
    "matches from the start, like Ansible's match test": (DOMAIN, "a.example", "-a.example", "; got '-a.example'."),
    "matches, a number as its text": (HOUR, 7, 24, "x_hour must be an hour 0 to 23; got 24."),
    "matches, not a text": (DOMAIN, "a.example", ["a.example"], "x_domain must be a DNS name; got ['a.example']."),
    "matches, a boolean is no text": (HOUR, "23", True, "x_hour must be an hour 0 to 23; got True."),
    "matches, a secret": (
        {"name": "x_key", "matches": "^[0-9a-f]{8}$", "expect": "8 hexadecimal digits", "secret": True},
        "0123abcd",
        "0123abcz-secret",
        "x_key must be 8 hexadecimal digits; it has 15 characters.",
    ),
    "each matches": (
        ZONES,
        ["fr-par-1", "nl-ams-2"],
        ["fr-par", "nl-ams-2", 3],
        "; got ['fr-par', 'nl-ams-2', 3] (wrong: ['fr-par', 3]).",
    ),
    "each matches, not a list": (ZONES, [], "fr-par-1", "x_zones must be Scaleway zones; got 'fr-par-1'."),
    "each matches, numbers as text": (
        {"name": "x_ports", "each": True, "matches": "^[0-9]+$", "expect": "ports"},
        [80, "443"],
        [80, 4.5],
        "wrong: [4.5]",
    ),
    "one of": (
        {"name": "x_gpu", "one_of": [True, False, "auto"]},
        "auto",
        "sometimes",
        "x_gpu must be one of true, false, auto (got 'sometimes').",
    ),
    "one of, 1 is not true": ({"name": "x_gpu", "one_of": [True, False, "auto"]}, False, 1, "(got 1)"),
    "one of, unhashable": ({"name": "x_gpu", "one_of": ["auto"]}, "auto", {"auto": 1}, "(got {'auto': 1})"),
    "each one of": (
        DAYS,
        ["Mon", "Tue"],
        ["Mon", "Monday"],
        "x_days must be distinct days, Mon or Tue; got ['Mon', 'Monday'] (wrong: ['Monday']).",
    ),
    "each one of, own words": (
        {"name": "x_days", "each": True, "one_of": ["Mon", "Tue"]},
        ["Tue"],
        ["Sun"],
        "x_days may only list one of Mon, Tue (got ['Sun']; wrong: ['Sun']).",
    ),
    "unique in the rule's words": (
        DAYS,
        ["Tue", "Mon"],
        ["Mon", "Tue", "Mon", "Mon"],
        "; got ['Mon', 'Tue', 'Mon', 'Mon'] (more than once: ['Mon']).",
    ),
    "unique, an entry named": (
        {"name": "x_sites", "unique": "a site"},
        ["a", "b"],
        ["a", "b", "a"],
        "x_sites lists a site more than once: ['a'].",
    ),
    "unique, entries": (
        {"name": "x_sites", "unique": True},
        [{"a": 1}, {"a": 2}],
        [{"a": 1}, {"a": 1}],
        "lists an entry more than once: [{'a': 1}].",
    ),
    "unique, not a list": ({"name": "x_sites", "unique": True}, [], "a,a", "x_sites must be a list (got 'a,a')."),
    "starts with": (
        {"name": "x_key", "starts_with": "sk-"},
        "sk-123",
        "pk-123",
        "x_key must start with sk- (it does not).",
    ),
    "starts with, not a text": (
        {"name": "x_key", "starts_with": "sk-"},
        "sk-",
        None,
        "x_key must start with sk- (it does not).",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_good_value_passes_and_bad_value_is_named(case):
    rule, good, bad, message = CASES[case]
    assert setting_problems([rule], [good]) == []
    problems = setting_problems([rule], [bad])
    assert len(problems) == 1
    assert message in problems[0]
    assert problems[0].startswith(rule["name"])


def test_secret_values_are_never_in_the_message():
    problems = setting_problems([{"name": "x_pw", "min_length": 32}], ["not-long-enough-secret"])
    assert problems == ["x_pw must have at least 32 characters without spaces (it has 22)."]


def test_every_broken_rule_is_reported_in_order_and_skipped_ones_are_not():
    rules = [
        {"name": "a", "at_least": 1},
        {"name": "b", "between": [1, 2]},
        {"name": "c", "is": "absolute_path", "skip": True},
        {"name": "d", "is": "absolute_path", "skip": "False"},
    ]
    problems = setting_problems(rules, [0, 5, "relative", "relative"])
    assert [problem.split()[0] for problem in problems] == ["a", "b", "d"]


@pytest.mark.parametrize(
    ("rules", "values", "message"),
    [
        ([{"name": "a", "is": "colour"}], ["red"], "unknown kind 'colour'"),
        (
            [{"name": "a"}],
            [1],
            "needs one of is, between, at_least, min_length, starts_with, one_of, matches or unique",
        ),
        ([{"name": "a", "unique": False}], [[1]], "needs one of"),
        ([{"name": "a", "matches": "^a$"}], ["a"], "needs expect with matches"),
        (
            [{"name": "a", "matches": "^(a$", "expect": "a"}],
            ["a"],
            "matches of the rule for a is not a regular expression",
        ),
        ([{"name": "a", "one_of": "ab"}], ["a"], "one_of of the rule for a must be a list"),
        ([{"name": "a", "at_least": 1}], [], r"expected one value per rule \(1\), got 0"),
        (["a"], ["x"], "each a dictionary with a name"),
    ],
)
def test_a_broken_table_is_an_error_that_says_why(rules, values, message):
    with pytest.raises(AnsibleFilterError, match=message):
        setting_problems(rules, values)


def test_registered_as_a_filter():
    assert FilterModule().filters()["setting_problems"] is setting_problems


def test_a_hint_follows_the_message():
    rules = [{"name": "x_key", "min_length": 8, "hint": "Leave it unset to use the generated one."}]
    assert setting_problems(rules, ["short"]) == [
        "x_key must have at least 8 characters without spaces (it has 5). Leave it unset to use the generated one."
    ]
    assert setting_problems(rules, ["long-enough"]) == []


def test_a_rule_reports_its_first_broken_check_only():
    rule = {"name": "x_uris", "is": "not_empty", "each": True, "matches": "^https://", "expect": "https:// URLs"}
    assert setting_problems([rule], [[]]) == ["x_uris must be https:// URLs; got []."]
    assert setting_problems([rule], [["http://a"]]) == [
        "x_uris must be https:// URLs; got ['http://a'] (wrong: ['http://a'])."
    ]
    assert setting_problems([rule], [["https://a"]]) == []


def test_secrets_in_rules_with_expect_are_never_shown():
    rules = [
        {"name": "x_pw", "min_length": 16, "expect": "a long password"},
        {"name": "x_key", "starts_with": "sk-", "expect": "an sk- key"},
        {"name": "x_iv", "matches": "^[0-9a-f]{32}$", "expect": "32 hexadecimal digits", "secret": "true"},
    ]
    problems = setting_problems(rules, ["short secret", "pk-secret", "iv-secret"])
    assert problems == [
        "x_pw must be a long password; it has 12 characters.",
        "x_key must be an sk- key; it has 9 characters.",
        "x_iv must be 32 hexadecimal digits; it has 9 characters.",
    ]
    assert not any("secret" in problem for problem in problems)


def test_the_same_variable_may_have_several_rules():
    rules = [
        {"name": "x_uri", "matches": "^$|^mongodb://", "expect": "empty or a mongodb:// URI"},
        {"name": "x_uri", "is": "not_empty", "expect": "empty or a mongodb:// URI", "skip": False},
    ]
    assert setting_problems(rules, ["mongodb://db", "mongodb://db"]) == []
    assert setting_problems(rules, ["", ""]) == ["x_uri must be empty or a mongodb:// URI; got ''."]


@pytest.mark.parametrize(
    "rule",
    [
        {"name": "x_secret", "is": "http_url", "secret": True},
        {"name": "x_secret", "one_of": ["a"], "secret": True},
        {"name": "x_secret", "matches": "^a$", "expect": "a", "secret": True},
        {"name": "x_secret", "each": True, "matches": "^a$", "expect": "a", "secret": True},
    ],
)
def test_a_secret_is_never_shown_even_in_the_checks_own_words(rule):
    value = ["Very-secret-value"] if rule.get("each") else "Very-secret-value"
    (message,) = setting_problems([rule], [value])
    assert "Very-secret-value" not in message, message
    assert message.startswith("x_secret "), message
