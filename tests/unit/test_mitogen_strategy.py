"""scripts/lib.sh pp_mitogen_strategy: Ansible under Mitogen's strategy, or its own, or a clear error.

scripts/test.sh uses it for molecule and for the lab's repeated site.yml runs.
`python` is the one on PATH, as in scripts/test.sh after the virtualenv is
activated: this test's interpreter (which has Mitogen from requirements-dev.txt),
or a stand-in without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from shell_support import fake_bin, run_lib_sh

REPORT = 'echo "rc=$? strategy=${ANSIBLE_STRATEGY:-unset} plugins=${ANSIBLE_STRATEGY_PLUGINS:-unset}"'


def strategy(tmp_path: Path, python: str, setting: str = "") -> tuple[dict[str, str], str]:
    """Run pp_mitogen_strategy with `python` on PATH (PP_MITOGEN and PP_MOLECULE_MITOGEN unset, then SETTING, a
    shell assignment, exported); return what it exported (and its status) and its output."""
    # A wrapper, not a link: a virtualenv's interpreter finds its packages from the path it is started by.
    bin_dir = fake_bin(tmp_path, {"python": f'exec {python} "$@"'})
    export = f"export {setting};" if setting else ""
    script = f"export ANSIBLE_STRATEGY=free; unset PP_MITOGEN PP_MOLECULE_MITOGEN; {export} "
    result = run_lib_sh(script + f"pp_mitogen_strategy 'the runs'; {REPORT}", bin_dir, {})
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    return dict(part.split("=", 1) for part in last.split()), result.stdout + result.stderr


def test_mitogen_is_used_by_default(tmp_path):
    exported, output = strategy(tmp_path, sys.executable)
    assert exported["rc"] == "0", output
    assert exported["strategy"] == "mitogen_linear", output
    assert (Path(exported["plugins"]) / "mitogen_linear.py").is_file(), output
    assert "the runs: Mitogen's strategy" in output, output


@pytest.mark.parametrize("setting", ["PP_MITOGEN=0", "PP_MOLECULE_MITOGEN=0"])
def test_zero_runs_ansibles_own_strategy(tmp_path, setting):
    exported, output = strategy(tmp_path, sys.executable, setting)
    assert exported == {"rc": "0", "strategy": "unset", "plugins": "unset"}, output
    assert "the runs: Ansible's linear strategy (PP_MITOGEN=0)" in output, output


def test_without_mitogen_it_fails_and_says_what_to_do(tmp_path):
    # An interpreter with the standard library only (-S: no site-packages, so no Mitogen).
    exported, output = strategy(tmp_path, f"{sys.executable} -S")
    assert exported == {"rc": "1", "strategy": "unset", "plugins": "unset"}, output
    assert "Mitogen is not in the virtualenv" in output and "PP_MITOGEN=0" in output, output
    assert "Traceback" not in output, output
