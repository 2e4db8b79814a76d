"""scripts/lib.sh pp_molecule_strategy: molecule under Mitogen's strategy, or Ansible's own, or a clear error.

`python` is the one on PATH, as in scripts/test.sh after the virtualenv is
activated: this test's interpreter (which has Mitogen from requirements-dev.txt),
or a stand-in without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shell_support import fake_bin, run_lib_sh

REPORT = 'echo "rc=$? strategy=${ANSIBLE_STRATEGY:-unset} plugins=${ANSIBLE_STRATEGY_PLUGINS:-unset}"'


def strategy(tmp_path: Path, python: str, mitogen: str | None = None) -> tuple[dict[str, str], str]:
    """Run pp_molecule_strategy with `python` on PATH (and PP_MOLECULE_MITOGEN=MITOGEN, else unset); return what it
    exported (and its status) and its output."""
    # A wrapper, not a link: a virtualenv's interpreter finds its packages from the path it is started by.
    bin_dir = fake_bin(tmp_path, {"python": f'exec {python} "$@"'})
    setting = "unset PP_MOLECULE_MITOGEN" if mitogen is None else f"export PP_MOLECULE_MITOGEN={mitogen}"
    result = run_lib_sh(f"export ANSIBLE_STRATEGY=free; {setting}; pp_molecule_strategy; {REPORT}", bin_dir, {})
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    return dict(part.split("=", 1) for part in last.split()), result.stdout + result.stderr


def test_mitogen_is_used_by_default(tmp_path):
    exported, output = strategy(tmp_path, sys.executable)
    assert exported["rc"] == "0", output
    assert exported["strategy"] == "mitogen_linear", output
    assert (Path(exported["plugins"]) / "mitogen_linear.py").is_file(), output


def test_zero_runs_ansibles_own_strategy(tmp_path):
    exported, output = strategy(tmp_path, sys.executable, mitogen="0")
    assert exported == {"rc": "0", "strategy": "unset", "plugins": "unset"}, output
    assert "PP_MOLECULE_MITOGEN=0" in output


def test_without_mitogen_it_fails_and_says_what_to_do(tmp_path):
    # An interpreter with the standard library only (-S: no site-packages, so no Mitogen).
    exported, output = strategy(tmp_path, f"{sys.executable} -S")
    assert exported == {"rc": "1", "strategy": "unset", "plugins": "unset"}, output
    assert "Mitogen is not in the virtualenv" in output and "PP_MOLECULE_MITOGEN=0" in output, output
    assert "Traceback" not in output, output
