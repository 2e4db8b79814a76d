from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import check_argument_specs as cas

ROOT = Path(__file__).resolve().parents[2]


def make_role(tmp_path: Path, defaults: dict, options: dict | None, name: str = "demo") -> Path:
    role = tmp_path / name
    (role / "defaults").mkdir(parents=True)
    (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    if options is not None:
        (role / "meta").mkdir()
        spec = {"argument_specs": {"main": {"short_description": "x", "options": options}}}
        (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(spec))
    return role


def opt(default=None, **extra):
    option = {"description": "d", "type": "str", **extra}
    if default is not None:
        option["default"] = default
    return option


def test_in_sync_role_has_no_problems(tmp_path):
    role = make_role(tmp_path, {"demo_port": "80"}, {"demo_port": opt("80"), "demo_secret": opt(required=True)})
    assert cas.check_role(role) == []


@pytest.mark.parametrize(
    ("defaults", "options", "expected"),
    [
        ({"demo_port": "80"}, {}, "demo_port is in defaults/main.yml but not documented"),
        (
            {"demo_port": "80"},
            {"demo_port": opt("8080")},
            "demo_port defaults to '80' in defaults/main.yml but to '8080'",
        ),
        ({"demo_port": "80"}, {"demo_port": opt()}, "demo_port has no default in meta/argument_specs.yml"),
        ({}, {"demo_port": opt("80")}, "demo_port is documented but neither in defaults/main.yml nor required"),
        (
            {"demo_key": "x"},
            {"demo_key": opt("x", required=True)},
            "demo_key is required in meta/argument_specs.yml but has a default",
        ),
        ({"port": "80"}, {"port": opt("80")}, "port does not start with the role prefix 'demo_'"),
        ({"demo_a": "1"}, {"demo_a": {"type": "str", "default": "1"}}, "demo_a has no description"),
    ],
)
def test_each_mismatch_is_reported(tmp_path, defaults, options, expected):
    problems = cas.check_role(make_role(tmp_path, defaults, options))
    assert any(expected in p for p in problems), problems


def test_missing_spec_file_is_reported(tmp_path):
    assert cas.check_role(make_role(tmp_path, {"demo_a": 1}, None)) == ["demo: meta/argument_specs.yml is missing"]


def test_main_exit_status(tmp_path, capsys):
    make_role(tmp_path, {"demo_port": "80"}, {"demo_port": opt("81")})
    assert cas.main(["x", str(tmp_path)]) == 1
    assert "1 problem(s)" in capsys.readouterr().out


def test_repository_roles_are_in_sync():
    """The collection's own roles pass the check (the lint stage runs it too)."""
    roles = sorted((ROOT / "roles").iterdir())
    assert roles, "no roles found"
    for role in roles:
        assert cas.check_role(role) == []
