"""Lab image factory: build the lab's images offline, cached by a hash of their inputs.

No image can be pulled on the machines this project is built on, so every
image starts from a Debian root file system made with debootstrap and
``docker import``; further images are ``docker build``s on top of it. Each image
is tagged ``parrotpark/lab-<name>:<hash>`` where the hash covers everything that
goes into it (recipe, build context, parent hash, extra CA bundle): a warm run
finds the tag and skips the build. A local registry container on the lab
network serves the images that test hosts pull.

Usage (normally through scripts/, see docs/development.md)::

    factory.py ensure            # build all images, start the registry, push
    factory.py build [NAME ...]  # build (or find cached) images
    factory.py registry          # start the lab registry and push images
    factory.py ref NAME          # print the hashed reference of an image
    factory.py clean [--images]  # remove the registry and the network (and its volume and images)

Environment:
    PARROTPARK_EXTRA_CA_BUNDLE     PEM bundle trusted inside the images (proxies)
    PARROTPARK_DEBIAN_MIRROR       Debian mirror for debootstrap (default: host's apt sources)
    PARROTPARK_LAB_REGISTRY_PORT   host port of the lab registry on 127.0.0.1
    PARROTPARK_IMAGE_JOBS          images built at once (1 to 8, default 2)

Independent images build side by side: an image starts once its parent is
ready (the only lab image a build uses), at most PARROTPARK_IMAGE_JOBS at a
time; the first failure starts nothing new, lets the running builds finish
and is reported with the image's name and output.

Images with a ``go_build`` entry need Go on the host: the factory fetches the
module from the Go module proxy (``go mod download``, the host's module cache
keeps it between runs), builds the binary with the host's ``go`` and copies it
into the build context; built binaries are kept in .cache/images/go by hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MANIFEST = HERE / "images.yml"
ROOTFS_SCRIPT = HERE / "rootfs" / "build-rootfs.sh"
REPO_PREFIX = "parrotpark/lab-"
LABEL = "parrotpark.lab"
# Bump when the factory changes how it builds, so every cache entry is renewed.
RECIPE_VERSION = "1"
IMAGE_JOBS_DEFAULT = 2
IMAGE_JOBS_MAX = 8
# Builds running side by side share these: one go build at a time (the binary
# cache in .cache/images/go, whose stale entries a build removes, and both
# cores), one mvn at a time (its local repository, ~/.m2).
GO_BUILD_LOCK = threading.Lock()
MAVEN_LOCK = threading.Lock()

T = TypeVar("T")


class FactoryError(Exception):
    """An error the user can act on; printed without a traceback."""


@dataclass
class ImageSpec:
    name: str
    kind: str
    parent: str | None = None
    context: str | None = None
    suite: str | None = None
    packages: list[str] = field(default_factory=list)
    extra_ca: bool = False
    push: bool = False
    aliases: list[str] = field(default_factory=list)
    # Maven Central artifacts (group:artifact:version:type) fetched with mvn
    # into the build context before the build, as <artifact>-<version>.<type>.
    maven: list[str] = field(default_factory=list)
    # A Go program built on the host into the build context before the build:
    # {module: path@version, package: ./cmd/x, output: file name, tags: [...],
    # ldflags: "..."}; see build_go().
    go_build: dict[str, Any] | None = None

    @property
    def repository(self) -> str:
        return REPO_PREFIX + self.name


def load_manifest(path: Path = MANIFEST) -> tuple[dict[str, Any], dict[str, ImageSpec]]:
    """Read and check the manifest; return (registry settings, images by name in build order)."""
    data = yaml.safe_load(path.read_text())
    images: dict[str, ImageSpec] = {}
    allowed = set(ImageSpec.__dataclass_fields__)
    for entry in data.get("images", []):
        unknown = set(entry) - allowed
        if unknown:
            raise FactoryError(f"{path}: image {entry.get('name')!r} has unknown keys {sorted(unknown)}")
        spec = ImageSpec(**entry)
        if spec.kind == "debootstrap":
            if not spec.suite or not spec.packages:
                raise FactoryError(f"{path}: debootstrap image {spec.name!r} needs 'suite' and 'packages'")
        elif spec.kind == "dockerfile":
            if not spec.parent or not spec.context:
                raise FactoryError(f"{path}: dockerfile image {spec.name!r} needs 'parent' and 'context'")
            if spec.parent not in images:
                raise FactoryError(
                    f"{path}: image {spec.name!r} names parent {spec.parent!r}, which must be listed before it"
                )
            if not (path.parent / spec.context / "Dockerfile").is_file():
                raise FactoryError(f"{path}: image {spec.name!r}: {spec.context}/Dockerfile does not exist")
            check_dockerfile(path, spec)
        else:
            raise FactoryError(
                f"{path}: image {spec.name!r} has kind {spec.kind!r}; expected debootstrap or dockerfile"
            )
        for artifact in spec.maven:
            if not re.fullmatch(r"[\w.-]+:[\w.-]+:[\w.-]+:[\w.]+", artifact):
                raise FactoryError(
                    f"{path}: image {spec.name!r}: maven {artifact!r} is not group:artifact:version:type"
                )
        if spec.go_build is not None:
            check_go_build(path, spec.name, spec.go_build)
        for alias in spec.aliases:
            if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9._-]*", alias):
                raise FactoryError(f"{path}: image {spec.name!r} has alias {alias!r}; expected repository:tag")
        if spec.name in images:
            raise FactoryError(f"{path}: image {spec.name!r} is listed twice")
        images[spec.name] = spec
    return data.get("registry", {}), images


def check_dockerfile(path: Path, spec: ImageSpec) -> None:
    """Refuse a Dockerfile that uses a lab image other than its parent.

    Only the parent is built before an image and part of its hash, so another
    lab image named in FROM or COPY --from could be missing or stale.
    """
    for number, line in enumerate((path.parent / str(spec.context) / "Dockerfile").read_text().splitlines(), 1):
        if REPO_PREFIX in line and not line.lstrip().startswith("#"):
            raise FactoryError(
                f"{path}: image {spec.name!r}: {spec.context}/Dockerfile line {number} names a lab image "
                f"({line.strip()}); an image may only use its parent (FROM ${{PARENT}}): make that image its parent"
            )


GO_BUILD_KEYS = {"module", "package", "output", "tags", "ldflags"}


def check_go_build(path: Path, name: str, go_build: Any) -> None:
    """Reject a go_build entry the factory cannot build, naming the key at fault."""
    where = f"{path}: image {name!r}: go_build"
    if not isinstance(go_build, dict):
        raise FactoryError(f"{where} must be a mapping with module, package and output")
    unknown = set(go_build) - GO_BUILD_KEYS
    if unknown:
        raise FactoryError(f"{where} has unknown keys {sorted(unknown)}")
    for key in ("module", "package", "output"):
        if not isinstance(go_build.get(key), str) or not go_build[key]:
            raise FactoryError(f"{where} needs {key!r}")
    if not re.fullmatch(r"[A-Za-z0-9][\w.~/-]*@v\d+\.\d+\.\d+[\w.+-]*", go_build["module"]):
        raise FactoryError(f"{where}: module {go_build['module']!r} is not module/path@vX.Y.Z (an exact version)")
    if not re.fullmatch(r"\.(/[\w.-]+)*", go_build["package"]) or ".." in go_build["package"].split("/"):
        raise FactoryError(f"{where}: package {go_build['package']!r} is not a path inside the module (./cmd/x)")
    if not re.fullmatch(r"[\w][\w.-]*", go_build["output"]):
        raise FactoryError(f"{where}: output {go_build['output']!r} is not a file name")
    tags = go_build.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and re.fullmatch(r"[\w.-]+", t) for t in tags):
        raise FactoryError(f"{where}: tags must be a list of build tags (letters, digits, '_', '.', '-')")
    if not isinstance(go_build.get("ldflags", ""), str):
        raise FactoryError(f"{where}: ldflags must be a string")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Python's bytecode caches (written when tests import a double's code) are
# neither hashed nor copied: they are not inputs of an image.
IGNORED_IN_CONTEXT = ("__pycache__", "*.pyc")


def context_digest(context_dir: Path) -> dict[str, str]:
    """Map every file of a build context (relative path) to the hash of its content and mode."""
    digest = {}
    files = (
        p
        for p in context_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.relative_to(context_dir).parts and p.suffix != ".pyc"
    )
    for path in sorted(files):
        mode = "x" if os.access(path, os.X_OK) else "-"
        digest[path.relative_to(context_dir).as_posix()] = mode + _sha256(path.read_bytes())
    return digest


def image_hash(
    spec: ImageSpec, base_dir: Path, parent_hash: str | None, extra_ca: bytes, go_version: str | None = None
) -> str:
    """Return the cache key of an image: a hash of every input that can change its content.

    go_version is the host's Go toolchain (``go env GOVERSION``), an input of images with go_build.
    """
    inputs: dict[str, Any] = {"recipe": RECIPE_VERSION, "kind": spec.kind}
    if spec.kind == "debootstrap":
        inputs["suite"] = spec.suite
        inputs["packages"] = sorted(spec.packages)
        inputs["script"] = _sha256(ROOTFS_SCRIPT.read_bytes())
    else:
        inputs["parent"] = parent_hash
        inputs["context"] = context_digest(base_dir / str(spec.context))
        inputs["extra_ca"] = _sha256(extra_ca) if spec.extra_ca and extra_ca else None
        if spec.maven:
            inputs["maven"] = sorted(spec.maven)
        if spec.go_build:
            inputs["go_build"] = go_build_key(spec.go_build, go_version)
    return _sha256(json.dumps(inputs, sort_keys=True).encode())[:16]


def debian_mirror(environ: dict[str, str] | None = None, apt_dir: Path = Path("/etc/apt")) -> str:
    """Return the Debian mirror to debootstrap from: PARROTPARK_DEBIAN_MIRROR, else the host's apt sources."""
    environ = os.environ if environ is None else environ
    if environ.get("PARROTPARK_DEBIAN_MIRROR"):
        return environ["PARROTPARK_DEBIAN_MIRROR"].rstrip("/")
    candidates: list[str] = []
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                candidates += fields.get("URIs", "").split()
    lists = [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]
    for path in lists:
        if path.is_file():
            for line in path.read_text().splitlines():
                match = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
                if match:
                    candidates.append(match.group(1))
    for uri in candidates:
        if re.search(r"/debian/?$", uri):
            return uri.rstrip("/")
    raise FactoryError(
        "no Debian mirror found in the host's apt sources; set PARROTPARK_DEBIAN_MIRROR "
        "to the URL of a Debian archive (the directory holding dists/ and pool/)"
    )


def read_extra_ca(environ: dict[str, str] | None = None) -> bytes:
    """Return the extra CA bundle named by PARROTPARK_EXTRA_CA_BUNDLE (empty when unset)."""
    environ = os.environ if environ is None else environ
    path = environ.get("PARROTPARK_EXTRA_CA_BUNDLE", "")
    if not path:
        return b""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FactoryError(f"PARROTPARK_EXTRA_CA_BUNDLE={path}: cannot read it ({exc.strerror})") from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise FactoryError(f"PARROTPARK_EXTRA_CA_BUNDLE={path}: expected a PEM file with at least one certificate")
    return data


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI and capture its output; raise FactoryError on failure when check is set."""
    proc = subprocess.run(["docker", *args], check=False, text=True, capture_output=True)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip()[-4000:]
        raise FactoryError(f"docker {' '.join(args[:3])} … failed (exit {proc.returncode}): {detail}")
    return proc


def fetch_maven(artifact: str, directory: Path) -> Path:
    """Copy a Maven Central artifact (group:artifact:version:type) into directory with the machine's mvn.

    mvn keeps its own cache (~/.m2), so a rebuild does not download again.
    """
    group, name, version, kind = artifact.split(":")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FactoryError(f"fetching {artifact} needs Maven (mvn): install the maven package")
    with MAVEN_LOCK:  # two mvn writing one ~/.m2 at once may corrupt it
        proc = subprocess.run(
            [mvn, "-B", "-q", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={directory}"],
            capture_output=True,
            text=True,
            check=False,
        )
    target = directory / f"{name}-{version}.{kind}"
    if proc.returncode != 0 or not target.is_file():
        output = (proc.stdout + proc.stderr)[-3000:]
        raise FactoryError(f"mvn could not fetch {group}:{name}:{version}:{kind}:\n{output}")
    return target


def go_build_key(go_build: dict[str, Any], go_version: str | None) -> str:
    """Hash of everything that makes a go_build binary: the entry (tags in order-independent form) and the toolchain."""
    entry = {**go_build, "tags": sorted(go_build.get("tags", [])), "ldflags": go_build.get("ldflags", "")}
    return _sha256(json.dumps({"go_build": entry, "go": go_version}, sort_keys=True).encode())[:16]


def host_go_version() -> str:
    """The host's Go toolchain version (``go env GOVERSION``); FactoryError when Go is missing."""
    go = shutil.which("go")
    if go is None:
        raise FactoryError(
            "images with go_build need Go on the host (a release that builds the module; see its go.mod)"
        )
    proc = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise FactoryError(f"`go env GOVERSION` failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def _go_env() -> dict[str, str]:
    """The environment of the host's go for a reproducible static build with the local toolchain.

    GOPROXY, GOMODCACHE, GOCACHE and the like come from the caller's environment and go env.
    """
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}


def build_go(go_build: dict[str, Any], directory: Path, go_version: str, cache_dir: Path) -> tuple[Path, bool]:
    """Build a go_build entry into directory/<output>; return (the binary, whether it came from the cache).

    The module source comes from the Go module proxy through ``go mod download``
    (the host's module cache keeps it); the build runs in a writable copy of it,
    so the module's own go.mod and go.sum pin every dependency. Binaries are
    kept in cache_dir under the hash of the entry and the toolchain.

    One build at a time (GO_BUILD_LOCK): a build replaces and removes files
    of cache_dir that another may be reading, and each uses every core.
    """
    with GO_BUILD_LOCK:
        return _build_go(go_build, directory, go_version, cache_dir)


def _build_go(go_build: dict[str, Any], directory: Path, go_version: str, cache_dir: Path) -> tuple[Path, bool]:
    target = directory / go_build["output"]
    cached = cache_dir / f"{go_build['output']}-{go_build_key(go_build, go_version)}"
    if cached.is_file():
        shutil.copyfile(cached, target)
        target.chmod(0o755)
        return target, True
    go = shutil.which("go") or "go"
    env = _go_env()
    proc = subprocess.run(
        [go, "mod", "download", "-json", go_build["module"]], capture_output=True, text=True, env=env, check=False
    )
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        detail = info.get("Error") or (proc.stderr or proc.stdout).strip()[-3000:]
        raise FactoryError(f"go mod download {go_build['module']} failed: {detail}")
    with tempfile.TemporaryDirectory(prefix="pp-go-") as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(info["Dir"], source, copy_function=shutil.copyfile)
        for folder in [source, *(p for p in source.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)  # the module cache's copies are read-only
        built = Path(tmp) / go_build["output"]
        command = [go, "build", "-trimpath", "-o", str(built)]
        if go_build.get("tags"):
            command += ["-tags", ",".join(go_build["tags"])]
        if go_build.get("ldflags"):
            command += ["-ldflags", go_build["ldflags"]]
        proc = subprocess.run(
            [*command, go_build["package"]], cwd=source, capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0 or not built.is_file():
            output = (proc.stdout + proc.stderr)[-4000:]
            raise FactoryError(f"go build of {go_build['package']} in {go_build['module']} failed:\n{output}")
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        shutil.copyfile(built, partial)
        partial.replace(cached)
        for stale in cache_dir.glob(f"{go_build['output']}-*"):
            if stale != cached:
                stale.unlink(missing_ok=True)
    shutil.copyfile(cached, target)
    target.chmod(0o755)
    return target, False


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def image_jobs(environ: dict[str, str] | None = None) -> int:
    """How many images build at once: PARROTPARK_IMAGE_JOBS (an integer from 1 to 8), by default 2."""
    environ = os.environ if environ is None else environ
    value = environ.get("PARROTPARK_IMAGE_JOBS", "")
    if not value.strip():
        return IMAGE_JOBS_DEFAULT
    if not re.fullmatch(r"[0-9]+", value.strip()) or not 1 <= int(value) <= IMAGE_JOBS_MAX:
        raise FactoryError(
            f"PARROTPARK_IMAGE_JOBS={value!r}: expected an integer from 1 to {IMAGE_JOBS_MAX}, "
            f"the number of images built at once (default {IMAGE_JOBS_DEFAULT})"
        )
    return int(value)


def startable(
    order: list[str], needs: dict[str, set[str]], done: set[str], running: set[str], failed: set[str]
) -> list[str]:
    """The names that may start now, in order: not started yet, and everything they need done.

    None once one has failed: the running ones finish, nothing new starts.
    """
    if failed:
        return []
    started = done | running | failed
    return [name for name in order if name not in started and needs.get(name, set()) <= done]


def run_graph(
    order: list[str], needs: dict[str, set[str]], work: Callable[[str], T], jobs: int
) -> tuple[dict[str, T], dict[str, Exception]]:
    """Run work(name) for every name of order, at most jobs at once, each once all it needs is done.

    Return (the result of each name done, the exception of each name that
    failed); a name not started because of a failure is in neither.
    """
    done: dict[str, T] = {}
    failed: dict[str, Exception] = {}
    running: dict[Future[T], str] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="image") as pool:
        while True:
            ready = startable(order, needs, set(done), set(running.values()), set(failed))
            for name in ready[: jobs - len(running)]:
                running[pool.submit(work, name)] = name
            if not running:
                break
            finished, _unfinished = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    done[name] = future.result()
                except Exception as exc:  # reported with the name by the caller
                    failed[name] = exc
    stuck = [name for name in order if name not in done and name not in failed]
    if stuck and not failed:
        missing = sorted(set().union(*(needs[name] for name in stuck)) - set(done) - set(stuck))
        raise FactoryError(f"cannot build {', '.join(stuck)}: they wait for {', '.join(missing) or 'each other'}")
    return done, failed


class Factory:
    def __init__(self, manifest: Path = MANIFEST, quiet: bool = False) -> None:
        self.registry, self.images = load_manifest(manifest)
        self.base_dir = manifest.parent
        self.extra_ca = read_extra_ca()
        self.hashes: dict[str, str] = {}
        self._go_version: str | None = None
        self.ready: set[str] = set()  # images built or found during this run
        self.quiet = quiet
        self.clock: Callable[[], float] = time.monotonic
        self._say_lock = threading.Lock()  # one whole line at a time from the builds running side by side
        self.port = int(os.environ.get("PARROTPARK_LAB_REGISTRY_PORT") or self.registry.get("port", 5000))

    def say(self, message: str) -> None:
        if not self.quiet:
            with self._say_lock:
                print(message, flush=True)

    def hash_of(self, name: str) -> str:
        if name not in self.images:
            raise FactoryError(f"unknown image {name!r}; known: {', '.join(self.images)}")
        if name not in self.hashes:
            spec = self.images[name]
            parent = self.hash_of(spec.parent) if spec.parent else None
            go_version = self.go_version() if spec.go_build else None
            self.hashes[name] = image_hash(spec, self.base_dir, parent, self.extra_ca, go_version)
        return self.hashes[name]

    def go_version(self) -> str:
        if self._go_version is None:
            self._go_version = host_go_version()
        return self._go_version

    def ref(self, name: str) -> str:
        return f"{self.images[name].repository}:{self.hash_of(name)}"

    def closure(self, names: list[str]) -> list[str]:
        """The named images and their ancestors, in build order."""
        wanted: set[str] = set()
        for name in names or list(self.images):
            current: str | None = name
            while current:
                self.hash_of(current)  # validates the name
                wanted.add(current)
                current = self.images[current].parent
        return [n for n in self.images if n in wanted]

    def needs(self, name: str) -> set[str]:
        """The images that must be ready before name builds: its parent, the only lab image a build uses.

        (COPY --from in the Dockerfiles names stages of the same file; check_dockerfile refuses any other.)
        """
        parent = self.images[name].parent
        return {parent} if parent else set()

    def build(self, names: list[str]) -> None:
        """Build (or find cached) the named images and their ancestors, PARROTPARK_IMAGE_JOBS at a time."""
        order = [name for name in self.closure(names) if name not in self.ready]
        if not order:
            return
        jobs = image_jobs()
        started = self.clock()
        done, failed = run_graph(order, {name: self.needs(name) - self.ready for name in order}, self._make, jobs)
        self.ready.update(done)
        built = sum(1 for how in done.values() if how == "built")
        summary = f"images: {built} built, {len(done) - built} cached" + (f", {len(failed)} failed" if failed else "")
        self.say(f"{summary} in {self.clock() - started:.0f}s (jobs {jobs})")
        if failed:
            report = [f"image {name} failed: {exc}" for name, exc in failed.items()]
            not_started = [name for name in order if name not in done and name not in failed]
            if not_started:
                report.append(f"not started after the failure: {', '.join(not_started)}")
            raise FactoryError("\n".join(report)) from next(iter(failed.values()))

    def _make(self, name: str) -> str:
        """Build one image or find it cached, then tag it :current; return "built" or "cached"."""
        spec, ref = self.images[name], self.ref(name)
        if image_exists(ref):
            how = "cached"
        else:
            started = self.clock()
            if spec.kind == "debootstrap":
                self._build_rootfs(spec, ref)
            else:
                self._build_dockerfile(spec, ref)
            how = f"built in {self.clock() - started:.0f}s"
        # Reached only with the image complete: a failed build tags nothing and keeps the older tags.
        docker("tag", ref, f"{spec.repository}:current")
        self._drop_stale_tags(spec)
        self.say(f"image {name:<16} {ref}  {how}")
        return "cached" if how == "cached" else "built"

    def _build_rootfs(self, spec: ImageSpec, ref: str) -> None:
        if os.geteuid() != 0:
            raise FactoryError(f"building {spec.name} runs debootstrap, which needs root (run as root or through sudo)")
        if not shutil.which("debootstrap"):
            raise FactoryError("debootstrap is not installed (apt-get install debootstrap; make test/lab do it)")
        workdir = ROOT / ".cache" / "images"
        workdir.mkdir(parents=True, exist_ok=True)
        tarball = workdir / f"{spec.name}-{self.hash_of(spec.name)}.tar"
        try:
            # Captured, not streamed: another build may be printing; a failure carries the output.
            proc = subprocess.run(
                [str(ROOTFS_SCRIPT), str(spec.suite), debian_mirror(), ",".join(spec.packages), str(tarball)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise FactoryError(
                    f"building the root file system of {spec.name} failed (exit {proc.returncode}):\n"
                    f"{(proc.stdout + proc.stderr)[-4000:]}"
                )
            docker(
                "import",
                "--change",
                'CMD ["/sbin/init"]',
                "--change",
                f"LABEL {LABEL}=true {LABEL}.hash={self.hash_of(spec.name)}",
                str(tarball),
                ref,
            )
        finally:
            tarball.unlink(missing_ok=True)

    def _build_dockerfile(self, spec: ImageSpec, ref: str) -> None:
        with tempfile.TemporaryDirectory(prefix=f"pp-{spec.name}-") as tmp:
            context = Path(tmp) / "context"
            shutil.copytree(
                self.base_dir / str(spec.context), context, ignore=shutil.ignore_patterns(*IGNORED_IN_CONTEXT)
            )
            if spec.extra_ca:
                (context / "extra-ca.crt").write_bytes(self.extra_ca)
            for artifact in spec.maven:
                fetch_maven(artifact, context)
            if spec.go_build:
                started = self.clock()
                _ignored, cached = build_go(
                    spec.go_build, context, self.go_version(), ROOT / ".cache" / "images" / "go"
                )
                how = "cached" if cached else f"built in {self.clock() - started:.0f}s"
                self.say(f"go    {spec.go_build['output']:<16} {spec.go_build['module']}  {how}")
            proc = docker(
                "build",
                "--pull=false",
                "--force-rm",  # a failed build leaves no container behind
                "--build-arg",
                f"PARENT={self.ref(str(spec.parent))}",
                "--label",
                f"{LABEL}=true",
                "--label",
                f"{LABEL}.hash={self.hash_of(spec.name)}",
                "-t",
                ref,
                str(context),
                check=False,
            )
            if proc.returncode != 0:
                raise FactoryError(f"docker build of {spec.name} failed:\n{(proc.stdout + proc.stderr)[-6000:]}")

    def _drop_stale_tags(self, spec: ImageSpec) -> None:
        """Remove hashed tags of earlier builds so the cache does not grow without bound."""
        listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", spec.repository).stdout.split()
        keep = {self.ref(spec.name), f"{spec.repository}:current"}
        for stale in sorted(set(listed) - keep):
            docker("image", "rm", stale, check=False)

    # --- registry --------------------------------------------------------
    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ensure_network(self) -> None:
        network = self.registry["network"]
        if docker("network", "inspect", network, check=False).returncode != 0:
            docker("network", "create", "--label", f"{LABEL}=true", network)
            self.say(f"network {network} created")

    def ensure_registry(self) -> None:
        self.build([self.registry["image"]])
        self.ensure_network()
        container, image = self.registry["container"], self.ref(self.registry["image"])
        state = docker(
            "container", "inspect", "--format", "{{.Config.Image}} {{.State.Running}}", container, check=False
        )
        current_image, running = state.stdout.split() if state.returncode == 0 else (None, None)
        if current_image == image:
            if running != "true":
                docker("container", "start", container)
        else:
            if current_image is not None:  # made from an older registry image
                docker("container", "rm", "-f", container)
            docker(
                "run",
                "-d",
                "--name",
                container,
                "--hostname",
                container,
                "--network",
                self.registry["network"],
                "--restart",
                "unless-stopped",
                "--label",
                f"{LABEL}=true",
                "-p",
                f"127.0.0.1:{self.port}:5000",
                "-v",
                f"{self.registry['volume']}:/var/lib/docker-registry",
                "--log-opt",
                "max-size=10m",
                "--log-opt",
                "max-file=2",
                image,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.registry_url + "/v2/", timeout=3) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "30", container, check=False)
                raise FactoryError(
                    f"lab registry {container} did not answer on {self.registry_url}/v2/ within 30s:\n"
                    f"{logs.stdout}{logs.stderr}"
                )
            time.sleep(0.5)
        self.say(f"registry {container} ready on {self.registry_url} (lab network: {container}:5000)")

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        """Digest of repository:tag in the lab registry, or None when it is not there."""
        request = urllib.request.Request(
            f"{self.registry_url}/v2/{repository}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def push(self, names: list[str] | None = None) -> None:
        """Push `push: true` images (all, or those named) as :<hash>, :current and aliases, unless already there."""
        for name, spec in self.images.items():
            if not spec.push or (names and name not in names):
                continue
            self.build([name])
            targets = [f"{spec.repository}:{self.hash_of(name)}", f"{spec.repository}:current", *spec.aliases]
            digests = {self.manifest_digest(*target.rsplit(":", 1)) for target in targets}
            if len(digests) == 1 and None not in digests:
                self.say(f"push  {name:<16} {targets[0]}  already in the registry")
                continue
            started = time.monotonic()
            for target in targets:
                remote = f"127.0.0.1:{self.port}/{target}"
                docker("tag", self.ref(name), remote)
                docker("push", remote)
                docker("image", "rm", remote, check=False)
            self.say(f"push  {name:<16} {', '.join(targets)}  pushed in {time.monotonic() - started:.0f}s")

    def clean(self, images: bool) -> None:
        """Remove the registry container and the lab network; with images, its cache volume and every lab image tag.

        The registry's volume is a cache of the pushed images, kept like the image tags, so that the next
        run pushes only what changed instead of every layer again.
        """
        docker("container", "rm", "-f", self.registry["container"], check=False)
        network = docker("network", "rm", self.registry["network"], check=False)
        if network.returncode != 0 and "not found" not in network.stderr:
            raise FactoryError(f"cannot remove the network {self.registry['network']}: {network.stderr.strip()}")
        removed = "the lab registry and the network"
        if images:
            docker("volume", "rm", self.registry["volume"], check=False)
            refs = docker(
                "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"label={LABEL}=true"
            ).stdout.split()
            for ref in refs:
                docker("image", "rm", ref, check=False)
            removed += f", the registry's cache volume and {len(refs)} image tag(s)"
        self.say(f"removed {removed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="build every image, start the registry, push")
    build = sub.add_parser("build", help="build images (and their parents)")
    build.add_argument("names", nargs="*")
    registry = sub.add_parser("registry", help="start the lab registry and push images to it (all, or those named)")
    registry.add_argument("names", nargs="*")
    ref = sub.add_parser("ref", help="print an image's hashed reference")
    ref.add_argument("name")
    clean = sub.add_parser(
        "clean", help="remove the registry and the network (with --images, its cache volume and the image tags)"
    )
    clean.add_argument("--images", action="store_true", help="remove the lab's image tags too")
    args = parser.parse_args(argv)
    try:
        factory = Factory(quiet=args.quiet)
        if args.command == "ref":
            print(factory.ref(args.name))
        elif args.command == "build":
            factory.build(args.names)
        elif args.command == "clean":
            factory.clean(images=args.images)
        else:
            if args.command == "ensure":
                factory.build([])
            factory.ensure_registry()
            factory.push(getattr(args, "names", None))
    except FactoryError as exc:
        print(f"lab image factory: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
