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
    "no ip address": ({"name": "x_ips", "is": "ip_addresses"}, ["10.0.0.1"], [], "at least one IP address (got [])"),
    "host": ({"name": "x_host", "is": "host"}, "db.internal", "http://db", "x_host must be a host name or an IP"),
    "host as an ip": ({"name": "x_host", "is": "host"}, "fd00::1", "db_1", "(got 'db_1')"),
    "url": ({"name": "x_url", "is": "http_url"}, "https://a.example/v1", "a.example/v1", "x_url must be an http(s)"),
    "sql identifier": ({"name": "x_db", "is": "sql_identifier"}, "lite_llm", "lite-llm", "lower-case SQL identifier"),
    "not empty": ({"name": "x_key", "is": "not_empty"}, "k", "", "x_key must not be empty"),
    "secret length": ({"name": "x_pw", "min_length": 16}, "p" * 16, "short", "at least 16 characters"),
    "secret with a space": ({"name": "x_pw", "min_length": 4}, "abcd", "ab cd", "(it has 5)"),
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
        ([{"name": "a"}], [1], "needs one of between, at_least, min_length or is"),
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
