"""Run functions of scripts/lib.sh with stand-in executables first on PATH (shared by the unit tests of lib.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fake_bin(tmp_path: Path, scripts: dict[str, str]) -> Path:
    """A directory of executables, each a shell script with the given body; returns the directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return bin_dir


def run_lib_sh(commands: str, bin_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Source scripts/lib.sh in bash and run COMMANDS, with BIN_DIR first on PATH and ENV over this environment."""
    environ = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "-c", f". {ROOT}/scripts/lib.sh && {commands}"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
