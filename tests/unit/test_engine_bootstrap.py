"""scripts/lib.sh pp_ensure_engine: use an engine that answers, else start one, else fail clearly.

The engine is replaced by small executables on PATH so that both outcomes can be
forced; the real engine is exercised by every later stage of the test command.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from shell_support import fake_bin, run_lib_sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="pp_ensure_engine starts dockerd as root (sudo)")


def ensure_engine(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PP_ENGINE_TIMEOUT": "4", "PP_DOCKERD_LOG": str(tmp_path / "dockerd.log")}
    return run_lib_sh("pp_ensure_engine && echo ENGINE-OK", bin_dir, env)


def test_an_engine_that_answers_is_used_as_it_is(tmp_path):
    marker = tmp_path / "dockerd-started"
    bin_dir = fake_bin(tmp_path, {"docker": "exit 0", "dockerd": f"touch {marker}", "systemctl": f"touch {marker}"})
    result = ensure_engine(tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    assert "ENGINE-OK" in result.stdout
    assert not marker.exists(), "an engine was started although one answered"


def test_an_engine_that_cannot_start_fails_with_its_own_error(tmp_path):
    bin_dir = fake_bin(
        tmp_path,
        {
            "docker": "echo 'Cannot connect to the Docker daemon' >&2; exit 1",
            "dockerd": "echo 'failed to start daemon: unable to apply caps' >&2; exit 1",
            "systemctl": "echo 'Job for docker.service failed' >&2; exit 1",
        },
    )
    result = ensure_engine(tmp_path, bin_dir)
    assert result.returncode == 1
    assert "ENGINE-OK" not in result.stdout
    assert "error: the container engine" in result.stderr
    assert "Cannot connect to the Docker daemon" in result.stderr
    assert "do not fall back to mocks" in result.stderr
    if not Path("/run/systemd/system").is_dir():
        # Started in the background: the daemon's own words are shown.
        assert "unable to apply caps" in result.stderr
        assert "container engine exited" in result.stderr
