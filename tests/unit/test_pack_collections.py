"""roles/scheduler/files/pack_collections.py: packing twice gives the same bytes, and the tarball installs
offline (``ansible-galaxy collection install --offline``, as the scheduler role does on the entrance server)
and packs back to the same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "roles" / "scheduler" / "files" / "pack_collections.py"
BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    """The caller's environment without ANSIBLE_* and SCW_* variables, with this checkout as the collection."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SCW_", "ANSIBLE_"))}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / "collections")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def pack(output: Path, *args: str) -> dict[str, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, str(PACK), "--output-dir", str(output), *args],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {entry["name"]: entry for entry in json.loads(result.stdout)["collections"]}


def test_pack_collections_is_reproducible_and_installs_offline(tmp_path):
    args = ["--self", str(ROOT), "--collection", "community.docker", "--search-path", str(ROOT / "collections")]
    first = pack(tmp_path / "one", *args)
    second = pack(tmp_path / "two", *args)
    assert set(first) == {"parrotpark.llm", "community.docker"}
    for name, entry in first.items():
        data = Path(entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] == second[name]["sha256"], name
        assert Path(second[name]["path"]).read_bytes() == data
        assert data[4:8] == b"\0\0\0\0", "gzip header without a time"
        with tarfile.open(entry["path"]) as tar:
            members = tar.getmembers()
        names = [member.name for member in members]
        assert names == sorted(names) and {"MANIFEST.json", "FILES.json"} <= set(names)
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and not m.uname and not m.gname for m in members)
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    again = pack(tmp_path / "one", *args)
    assert again["parrotpark.llm"]["sha256"] == first["parrotpark.llm"]["sha256"]

    # Offline install, as the role does on the entrance server, then packed back from the installation.
    installed = tmp_path / "installed"
    for entry in first.values():
        result = subprocess.run(
            [
                str(BIN / "ansible-galaxy"),
                "collection",
                "install",
                "--offline",
                "--force",
                "--no-deps",
                "--collections-path",
                str(installed),
                entry["path"],
            ],
            capture_output=True,
            text=True,
            env={**ansible_env(), "ANSIBLE_COLLECTIONS_PATH": str(installed)},
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    root = installed / "ansible_collections" / "parrotpark" / "llm"
    assert (root / "roles" / "scheduler" / "files" / "parrotpark_gpu.py").is_file()
    back = pack(tmp_path / "back", "--self", str(root))
    assert back["parrotpark.llm"]["sha256"] == first["parrotpark.llm"]["sha256"]


def test_pack_collections_names_a_missing_collection(tmp_path):
    result = subprocess.run(
        [sys.executable, str(PACK), "--output-dir", str(tmp_path), "--collection", "no_such.collection"],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "collection no_such.collection is not installed on the controller" in result.stderr
