"""Check that every role's meta/argument_specs.yml documents its defaults/main.yml.

For each role under roles/:
- meta/argument_specs.yml exists and has a `main` entry point;
- every key of defaults/main.yml is an option of an entry point, with the same default;
- every option of an entry point is either in defaults/main.yml or `required: true`
  (a required option has no default);
- every option has a description and a type.

Usage: python tools/check_argument_specs.py [ROLES_DIR]   (default: roles/ of this checkout)
Exit status 1 and one line per problem when anything is out of sync.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def check_role(role_dir: Path) -> list[str]:
    """Return the problems of one role, each naming the role and the variable."""
    name = role_dir.name
    defaults_file = role_dir / "defaults" / "main.yml"
    spec_file = role_dir / "meta" / "argument_specs.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.is_file() else {}
    if not spec_file.is_file():
        return [f"{name}: meta/argument_specs.yml is missing"]
    spec = yaml.safe_load(spec_file.read_text()) or {}
    main = (spec.get("argument_specs") or {}).get("main")
    if not isinstance(main, dict):
        return [f"{name}: meta/argument_specs.yml has no argument_specs.main entry point"]
    # A role with several entry points (the internal _common role) keeps the
    # defaults of all of them in defaults/main.yml: check against their union.
    # Options of the other entry points may instead be passed by the caller.
    main_options = main.get("options") or {}
    options = {}
    for entry in (spec.get("argument_specs") or {}).values():
        options.update((entry or {}).get("options") or {})
    problems = []
    for key, value in defaults.items():
        if key not in options:
            problems.append(f"{name}: {key} is in defaults/main.yml but not documented in meta/argument_specs.yml")
        elif options[key].get("required"):
            problems.append(
                f"{name}: {key} is required in meta/argument_specs.yml but has a default in defaults/main.yml"
            )
        elif "default" not in options[key]:
            problems.append(f"{name}: {key} has no default in meta/argument_specs.yml (defaults/main.yml: {value!r})")
        elif options[key]["default"] != value:
            problems.append(
                f"{name}: {key} defaults to {value!r} in defaults/main.yml "
                f"but to {options[key]['default']!r} in meta/argument_specs.yml"
            )
    for key, option in options.items():
        if key not in defaults and key in main_options and not option.get("required"):
            problems.append(f"{name}: {key} is documented but neither in defaults/main.yml nor required")
        if not option.get("description"):
            problems.append(f"{name}: {key} has no description in meta/argument_specs.yml")
        if not option.get("type"):
            problems.append(f"{name}: {key} has no type in meta/argument_specs.yml")
        if not key.startswith(f"{name}_"):
            problems.append(f"{name}: {key} does not start with the role prefix '{name}_'")
    return problems


def main(argv: list[str]) -> int:
    roles_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "roles"
    roles = sorted(p for p in roles_dir.iterdir() if p.is_dir()) if roles_dir.is_dir() else []
    problems = [problem for role in roles for problem in check_role(role)]
    for problem in problems:
        print(problem)
    print(f"argument specs: {len(roles)} role(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
