"""Pack Ansible collections of the controller into reproducible tarballs for the scheduler.

The parrotpark.llm.scheduler role runs this on the controller (with the
Python of ansible-playbook) and copies the tarballs to the entrance server,
where ``ansible-galaxy collection install`` installs them without reaching
any Galaxy server. The same input gives the same bytes (entries sorted,
mtime 0, owner 0:0 without names, normalised modes, gzip header without
name or time), so the copy to the entrance changes only when a collection
changed.

- ``--self ROOT``: the collection this role belongs to. A source checkout
  (``galaxy.yml``) is built with ``ansible-galaxy collection build`` and the
  result repacked; an installed collection (``MANIFEST.json``) is packed as
  it is.
- ``--collection NS.NAME`` (repeatable): found in the ``--search-path``
  directories (the controller's collection paths, in order), then in the
  ``ansible_collections`` directories on ``sys.path`` (collections that came
  with the ``ansible`` package), and packed the same way.

An installed collection is packed from its MANIFEST.json and FILES.json:
the files FILES.json lists, each checked against its checksum, so
``__pycache__`` and other files that appeared since the installation are
left out and a modified file is an error.

Prints ``{"collections": [{"name", "version", "file", "path", "sha256"}]}``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

NAME_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")


class PackError(Exception):
    """A collection cannot be found, built or packed."""


@dataclass
class Entry:
    """One member of the tarball."""

    name: str
    kind: str  # file, dir or symlink
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reproducible_tarball(entries: list[Entry]) -> bytes:
    """A tar.gz of the entries, sorted by name, with nothing in it that depends on when or by whom it was made."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(entries, key=lambda e: e.name):
                info = tarfile.TarInfo(entry.name)
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                elif entry.kind == "symlink":
                    info.type = tarfile.SYMTYPE
                    info.linkname = entry.target
                    info.mode = 0o777
                    tar.addfile(info)
                else:
                    info.size = len(entry.data)
                    info.mode = entry.mode
                    tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def _file_mode(path: Path) -> int:
    return 0o755 if os.stat(path).st_mode & 0o100 else 0o644


def entries_of_installed(root: Path) -> tuple[dict, list[Entry]]:
    """MANIFEST.json, FILES.json and every file and directory FILES.json lists, checked against it.

    Distributions of collections (the ``ansible`` package) leave out files their FILES.json lists
    (tests, CI settings); ``ansible-galaxy collection install`` extracts every file FILES.json lists,
    so the entries that are not there are dropped from FILES.json, and MANIFEST.json gets the new
    FILES.json's checksum.
    """
    try:
        manifest_bytes = (root / "MANIFEST.json").read_bytes()
        files_bytes = (root / "FILES.json").read_bytes()
        manifest = json.loads(manifest_bytes)
        files = json.loads(files_bytes)
    except (OSError, ValueError) as exc:
        raise PackError(f"{root} is not an installed collection (MANIFEST.json, FILES.json): {exc}") from exc
    entries = []
    kept = []
    for item in files.get("files", []):
        name = item["name"]
        if name in (".", ""):
            kept.append(item)
            continue
        if name.startswith("/") or ".." in name.split("/"):
            raise PackError(f"{root}/FILES.json lists {name!r}, a path outside the collection")
        path = root / name
        if not path.exists():
            continue
        kept.append(item)
        if item.get("ftype") == "dir":
            entries.append(Entry(name, "dir"))
            continue
        data = path.read_bytes()
        expected = item.get("chksum_sha256")
        if expected and _sha256(data) != expected:
            raise PackError(f"{path} differs from its checksum in {root}/FILES.json: reinstall the collection")
        if path.is_symlink():
            entries.append(Entry(name, "symlink", target=os.readlink(path)))
        else:
            entries.append(Entry(name, "file", data, _file_mode(path)))
    if len(kept) != len(files.get("files", [])):
        files_bytes = json.dumps({**files, "files": kept}, indent=True).encode()
        manifest.setdefault("file_manifest_file", {})["chksum_sha256"] = _sha256(files_bytes)
        manifest_bytes = json.dumps(manifest, indent=True).encode()
    entries += [Entry("MANIFEST.json", "file", manifest_bytes), Entry("FILES.json", "file", files_bytes)]
    return manifest, entries


def entries_of_source(root: Path) -> tuple[dict, list[Entry]]:
    """``ansible-galaxy collection build`` of a source checkout, its members read back."""
    with tempfile.TemporaryDirectory(prefix="parrotpark-pack-") as tmp:
        command = [sys.executable, "-m", "ansible.cli.galaxy", "collection", "build", "--force"]
        command += ["--output-path", tmp, str(root)]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        built = sorted(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or len(built) != 1:
            raise PackError(f"ansible-galaxy collection build {root} failed: {(proc.stderr or proc.stdout).strip()}")
        entries = []
        manifest: dict = {}
        with tarfile.open(built[0], mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isdir():
                    entries.append(Entry(member.name, "dir"))
                elif member.issym():
                    entries.append(Entry(member.name, "symlink", target=member.linkname))
                elif member.isfile():
                    extracted = tar.extractfile(member)
                    data = extracted.read() if extracted else b""
                    entries.append(Entry(member.name, "file", data, 0o755 if member.mode & 0o100 else 0o644))
                    if member.name == "MANIFEST.json":
                        manifest = json.loads(data)
        if not manifest:
            raise PackError(f"the collection built from {root} has no MANIFEST.json")
        return manifest, entries


def pack(root: Path, output_dir: Path) -> dict[str, str]:
    """Pack the collection at ``root`` into ``output_dir``; the file is rewritten only when its bytes change."""
    if (root / "MANIFEST.json").is_file():
        manifest, entries = entries_of_installed(root)
    elif (root / "galaxy.yml").is_file():
        manifest, entries = entries_of_source(root)
    else:
        raise PackError(f"{root} has neither MANIFEST.json (installed) nor galaxy.yml (source)")
    info = manifest.get("collection_info", {})
    namespace, name, version = info.get("namespace"), info.get("name"), info.get("version")
    if not (namespace and name and version):
        raise PackError(f"the MANIFEST.json of {root} names no namespace, name and version")
    data = reproducible_tarball(entries)
    output_dir.mkdir(parents=True, exist_ok=True)
    filename = f"{namespace}-{name}-{version}.tar.gz"
    dest = output_dir / filename
    if not dest.is_file() or dest.read_bytes() != data:
        tmp = dest.with_name(f".{filename}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        tmp.replace(dest)
    for old in output_dir.glob(f"{namespace}-{name}-*.tar.gz"):
        if old.name != filename:
            old.unlink()
    return {
        "name": f"{namespace}.{name}",
        "version": str(version),
        "file": filename,
        "path": str(dest.resolve()),
        "sha256": _sha256(data),
    }


def find(name: str, search_paths: list[str]) -> Path:
    """The directory of collection NS.NAME: the first search path that has it, then sys.path."""
    namespace, collection = name.split(".", 1)
    bases = [*search_paths, *sys.path]
    looked = []
    for base in bases:
        if not base:
            continue
        path = Path(base).expanduser()
        parent = path if path.name == "ansible_collections" else path / "ansible_collections"
        candidate = parent / namespace / collection
        looked.append(str(parent))
        if (candidate / "MANIFEST.json").is_file() or (candidate / "galaxy.yml").is_file():
            return candidate
    raise PackError(f"collection {name} is not installed on the controller (looked in {', '.join(looked)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="where the tarballs are written")
    parser.add_argument("--self", dest="self_root", help="root of the collection this role belongs to")
    parser.add_argument("--collection", action="append", default=[], help="NS.NAME of a collection to pack")
    parser.add_argument("--search-path", action="append", default=[], help="a collection path of the controller")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir).expanduser()
    results = []
    try:
        if args.self_root:
            results.append(pack(Path(args.self_root).resolve(), output_dir))
        done = {result["name"] for result in results}
        for name in args.collection:
            if not NAME_RE.match(name):
                raise PackError(f"{name!r} is not a collection name NAMESPACE.NAME")
            if name in done:
                continue
            results.append(pack(find(name, args.search_path), output_dir))
            done.add(name)
    except (PackError, OSError) as exc:
        print(f"pack_collections: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"collections": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
