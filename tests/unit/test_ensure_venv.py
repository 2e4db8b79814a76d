"""scripts/lib.sh pp_ensure_venv: the virtualenv is built once, also when two commands need it at once.

`make lab` and `make test` started together after requirements-dev.txt changed
both found the virtualenv out of date; the second failed on the first's
half-made directory. A stand-in Python (PP_PYTHON) builds a "virtualenv" with
`mkdir`, which fails when the directory exists, as `python -m venv` did, and
notes each build.
"""

from __future__ import annotations

from pathlib import Path

from shell_support import fake_bin, run_lib_sh

STAND_IN_PYTHON = """
case "$1" in
  -c) exit 0 ;;
  --version) echo "Python 3.12.0"; exit 0 ;;
  -m)
    [ "$2" = venv ] || exit 2
    echo "$3" >>"$BUILDS"
    sleep 1
    mkdir "$3" || exit 1
    mkdir "$3/bin" && printf '#!/bin/sh\\nexit 0\\n' >"$3/bin/pip" && chmod +x "$3/bin/pip"
    exit $? ;;
esac
exit 2
"""


def ensure_twice_at_once(tmp_path: Path) -> tuple[str, list[str], Path]:
    """Two pp_ensure_venv side by side; returns their statuses line, the builds noted and the virtualenv."""
    bin_dir = fake_bin(tmp_path, {"stand-in-python": STAND_IN_PYTHON})
    venv = tmp_path / "venv"
    builds = tmp_path / "builds"
    commands = (
        # In braces: run_lib_sh puts `. scripts/lib.sh &&` before it, which `&` would send to the background too.
        "{ (pp_ensure_venv) & first=$!; (pp_ensure_venv) & second=$!; "
        'wait $first; a=$?; wait $second; b=$?; echo "statuses $a $b"; }'
    )
    env = {"PP_PYTHON": str(bin_dir / "stand-in-python"), "PP_VENV": str(venv), "BUILDS": str(builds)}
    result = run_lib_sh(commands, bin_dir, env)
    assert result.returncode == 0, result.stdout + result.stderr
    noted = builds.read_text().split() if builds.exists() else []
    return result.stdout.strip().splitlines()[-1], noted, venv


def test_two_at_once_build_it_once_and_both_succeed(tmp_path):
    statuses, builds, venv = ensure_twice_at_once(tmp_path)
    assert statuses == "statuses 0 0", statuses
    assert builds == [str(venv)], builds
    assert (venv / ".parrotpark-stamp").is_file()


def test_an_up_to_date_virtualenv_is_not_built_again(tmp_path):
    ensure_twice_at_once(tmp_path)
    bin_dir = tmp_path / "bin"
    env = {
        "PP_PYTHON": str(bin_dir / "stand-in-python"),
        "PP_VENV": str(tmp_path / "venv"),
        "BUILDS": str(tmp_path / "builds"),
    }
    result = run_lib_sh("pp_ensure_venv && echo done", bin_dir, env)
    assert result.stdout.strip().endswith("done"), result.stdout + result.stderr
    assert (tmp_path / "builds").read_text().split() == [str(tmp_path / "venv")]
