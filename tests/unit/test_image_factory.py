from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import factory

HERE = Path(factory.__file__).resolve().parent


@pytest.fixture
def images(tmp_path):
    """A copy of the real manifest and build contexts to modify."""
    target = tmp_path / "images"
    shutil.copytree(HERE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def hashes(manifest: Path, extra_ca: bytes = b"") -> dict[str, str]:
    specs = factory.load_manifest(manifest)[1]
    result: dict[str, str] = {}
    for name, spec in specs.items():
        parent = result.get(spec.parent) if spec.parent else None
        result[name] = factory.image_hash(spec, manifest.parent, parent, extra_ca)
    return result


def test_hash_is_stable(images):
    assert hashes(images / "images.yml") == hashes(images / "images.yml")


def test_context_change_renews_image_and_its_children_only(images):
    before = hashes(images / "images.yml")
    (images / "base" / "ssh-hostkeys.conf").write_text("# changed\n")
    after = hashes(images / "images.yml")
    changed = {name for name in before if before[name] != after[name]}
    # base-* use the context; registry, hello and engine-trixie are built on
    # base-trixie; the service images sit on rootfs-trixie and keep their hash.
    assert changed == {"base-trixie", "base-bookworm", "registry", "hello", "engine-trixie"}


def test_maven_artifacts_are_an_input_and_checked(images):
    manifest = images / "images.yml"
    before = hashes(manifest)
    manifest.write_text(
        manifest.read_text().replace("keycloak-quarkus-dist:26.4.5:tar.gz", "keycloak-quarkus-dist:26.4.6:tar.gz")
    )
    after = hashes(manifest)
    assert {name for name in before if before[name] != after[name]} == {"keycloak"}
    manifest.write_text(manifest.read_text().replace("keycloak-quarkus-dist:26.4.6:tar.gz", "keycloak-dist"))
    with pytest.raises(factory.FactoryError, match="is not group:artifact:version:type"):
        factory.load_manifest(manifest)


def test_go_build_is_an_input_and_checked(images):
    manifest = images / "images.yml"
    before = hashes(manifest)
    manifest.write_text(manifest.read_text().replace("        - inputs.cpu\n", "", 1))
    after = hashes(manifest)
    assert {name for name in before if before[name] != after[name]} == {"telegraf"}
    # The order of the tags does not matter; the Go toolchain does.
    spec = factory.load_manifest(manifest)[1]["telegraf"]
    parent = after["rootfs-trixie"]
    reordered = factory.ImageSpec(
        **{**spec.__dict__, "go_build": {**spec.go_build, "tags": spec.go_build["tags"][::-1]}}
    )
    assert factory.image_hash(reordered, images, parent, b"") == after["telegraf"]
    assert factory.image_hash(spec, images, parent, b"", "go1.26.0") != factory.image_hash(
        spec, images, parent, b"", "go1.26.1"
    )


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (("telegraf@v1.37.2", "telegraf"), "is not module/path@vX.Y.Z"),
        (("telegraf@v1.37.2", "telegraf@latest"), "is not module/path@vX.Y.Z"),
        (("package: ./cmd/telegraf", "package: ../cmd/telegraf"), "is not a path inside the module"),
        (("output: telegraf", "output: bin/telegraf"), "is not a file name"),
        (("      output: telegraf\n", "      output: telegraf\n      cgo: true\n"), "unknown keys ['cgo']"),
        (("        - custom\n", "        - custom tag\n"), "tags must be a list of build tags"),
        (("      package: ./cmd/telegraf\n", ""), "needs 'package'"),
    ],
)
def test_bad_go_build_is_rejected(images, mutation, message):
    manifest = images / "images.yml"
    text = manifest.read_text()
    assert mutation[0] in text
    manifest.write_text(text.replace(*mutation, 1))
    with pytest.raises(factory.FactoryError, match=re.escape(message)):
        factory.load_manifest(manifest)


def test_go_binary_comes_from_the_cache_without_go(tmp_path, monkeypatch):
    """A binary built before (same entry, same toolchain) is copied, executable, without running go."""
    go_build = {"module": "example.org/tool@v1.2.3", "package": "./cmd/tool", "output": "tool", "tags": ["a"]}
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"tool-{factory.go_build_key(go_build, 'go1.26.0')}").write_bytes(b"binary")
    context = tmp_path / "context"
    context.mkdir()

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(factory.subprocess, "run", no_subprocess)
    target, cached = factory.build_go(go_build, context, "go1.26.0", cache)
    assert cached and target.read_bytes() == b"binary" and target.stat().st_mode & 0o777 == 0o755
    # Another toolchain is another binary: it would be built.
    with pytest.raises(AssertionError, match="ran"):
        factory.build_go(go_build, context, "go1.26.1", cache)


def test_failed_module_download_names_the_module(tmp_path, monkeypatch):
    answer = subprocess.CompletedProcess([], 1, stdout='{"Error": "unknown revision v9.9.9"}', stderr="")
    monkeypatch.setattr(factory.subprocess, "run", lambda *args, **kwargs: answer)
    go_build = {"module": "example.org/tool@v9.9.9", "package": ".", "output": "tool"}
    with pytest.raises(factory.FactoryError, match=r"go mod download example.org/tool@v9.9.9 failed: unknown revision"):
        factory.build_go(go_build, tmp_path, "go1.26.0", tmp_path / "cache")


def test_file_mode_is_an_input(images):
    before = hashes(images / "images.yml")
    (images / "hello" / "Dockerfile").chmod(0o755)
    assert hashes(images / "images.yml")["hello"] != before["hello"]


def test_extra_ca_renews_images_that_take_it(images):
    plain = hashes(images / "images.yml")
    with_ca = hashes(images / "images.yml", b"-----BEGIN CERTIFICATE-----\nx\n")
    assert with_ca["rootfs-trixie"] == plain["rootfs-trixie"]
    assert with_ca["base-trixie"] != plain["base-trixie"]
    assert with_ca["hello"] != plain["hello"]  # through its parent


def test_manifest_package_list_is_an_input(images):
    manifest = images / "images.yml"
    before = hashes(manifest)
    manifest.write_text(manifest.read_text().replace("      - sudo\n", "      - sudo\n      - curl\n", 1))
    after = hashes(manifest)
    assert after["rootfs-trixie"] != before["rootfs-trixie"]


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (("parent: rootfs-trixie", "parent: nosuch"), "names parent 'nosuch'"),
        (("kind: debootstrap", "kind: podman"), "has kind 'podman'"),
        (("context: hello", "context: nowhere"), "nowhere/Dockerfile does not exist"),
        (("    push: true", "    push: true\n    colour: blue"), "unknown keys ['colour']"),
        (("library/parrotpark-hello:latest", "library/parrotpark-hello"), "expected repository:tag"),
    ],
)
def test_bad_manifest_is_rejected_with_a_clear_message(images, mutation, message):
    manifest = images / "images.yml"
    manifest.write_text(manifest.read_text().replace(*mutation, 1))
    with pytest.raises(factory.FactoryError, match=r".*" + message.replace("[", r"\[").replace("]", r"\]")):
        factory.load_manifest(manifest)


def test_mirror_from_environment_wins(tmp_path):
    env = {"PARROTPARK_DEBIAN_MIRROR": "http://mirror.example/debian/"}
    assert factory.debian_mirror(env, tmp_path) == "http://mirror.example/debian"


def test_mirror_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    assert factory.debian_mirror({}, tmp_path) == "http://mirror.example/debian"


def test_mirror_from_legacy_sources_list(tmp_path):
    (tmp_path / "sources.list").write_text("# comment\ndeb [arch=amd64] http://legacy.example/debian bookworm main\n")
    assert factory.debian_mirror({}, tmp_path) == "http://legacy.example/debian"


def test_no_mirror_names_the_variable(tmp_path):
    with pytest.raises(factory.FactoryError, match="PARROTPARK_DEBIAN_MIRROR"):
        factory.debian_mirror({}, tmp_path)


def test_extra_ca_must_be_pem(tmp_path):
    bad = tmp_path / "ca.txt"
    bad.write_text("not a certificate")
    with pytest.raises(factory.FactoryError, match=r"PARROTPARK_EXTRA_CA_BUNDLE=.*expected a PEM file"):
        factory.read_extra_ca({"PARROTPARK_EXTRA_CA_BUNDLE": str(bad)})
    with pytest.raises(factory.FactoryError, match="cannot read it"):
        factory.read_extra_ca({"PARROTPARK_EXTRA_CA_BUNDLE": str(tmp_path / "missing.pem")})
    assert factory.read_extra_ca({}) == b""


def test_bytecode_caches_are_not_inputs(tmp_path):
    """A test that imports a double's code writes __pycache__ into its build context: that must not renew it."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    before = factory.context_digest(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "code.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (tmp_path / "stray.pyc").write_bytes(b"\x00")
    assert factory.context_digest(tmp_path) == before
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert factory.context_digest(tmp_path) != before


# --- building side by side ---------------------------------------------------


def test_dockerfile_using_another_lab_image_is_rejected(images):
    """Only the parent is built before an image: a Dockerfile naming another lab image could find it missing."""
    dockerfile = images / "telegraf" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY --from=parrotpark/lab-ferretdb:current /x /x\n")
    with pytest.raises(factory.FactoryError, match=r"telegraf/Dockerfile line \d+ names a lab image"):
        factory.load_manifest(images / "images.yml")


def test_image_jobs_default_and_override():
    assert factory.image_jobs({}) == 2
    assert factory.image_jobs({"PARROTPARK_IMAGE_JOBS": ""}) == 2
    assert factory.image_jobs({"PARROTPARK_IMAGE_JOBS": "1"}) == 1
    assert factory.image_jobs({"PARROTPARK_IMAGE_JOBS": "8"}) == 8


@pytest.mark.parametrize("value", ["0", "x", "9", "-1", "2.5"])
def test_image_jobs_out_of_range_is_refused_naming_the_variable(value):
    with pytest.raises(factory.FactoryError, match=rf"PARROTPARK_IMAGE_JOBS='{re.escape(value)}': expected an integer"):
        factory.image_jobs({"PARROTPARK_IMAGE_JOBS": value})


def test_startable_waits_for_needs_and_stops_after_a_failure():
    order = ["root", "a", "b", "child-of-a"]
    needs = {"a": {"root"}, "b": {"root"}, "child-of-a": {"a"}}
    assert factory.startable(order, needs, set(), set(), set()) == ["root"]
    assert factory.startable(order, needs, set(), {"root"}, set()) == []
    assert factory.startable(order, needs, {"root"}, set(), set()) == ["a", "b"]
    assert factory.startable(order, needs, {"root"}, {"a"}, set()) == ["b"]
    assert factory.startable(order, needs, {"root", "a"}, {"b"}, set()) == ["child-of-a"]
    # After a failure nothing new starts, though "b" and "child-of-a" could.
    assert factory.startable(order, needs, {"root", "a"}, set(), {"x"}) == []


class Recorder:
    """A fake build: records starts and ends (thread-safe) and the most builds seen at once."""

    def __init__(self, wait=None, fail=()):
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.running = 0
        self.most = 0
        self.wait = wait or {}
        self.fail = set(fail)

    def __call__(self, name):
        with self.lock:
            self.events.append(("start", name))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if name in self.wait:
                self.wait[name]()
            else:
                time.sleep(0.01)
            if name in self.fail:
                raise factory.FactoryError(f"docker build of {name} failed:\nstep 3: no space left")
            return f"made {name}"
        finally:
            with self.lock:
                self.running -= 1
                self.events.append(("end", name))

    def started(self):
        return [name for what, name in self.events if what == "start"]

    def index(self, what, name):
        return self.events.index((what, name))


def manifest_graph():
    specs = factory.load_manifest()[1]
    return list(specs), {name: {spec.parent} if spec.parent else set() for name, spec in specs.items()}


@pytest.mark.parametrize("jobs", [1, 2, 4])
def test_parents_are_always_built_before_their_children(jobs):
    order, needs = manifest_graph()
    work = Recorder()
    done, failed = factory.run_graph(order, needs, work, jobs)
    assert failed == {} and done == {name: f"made {name}" for name in order}
    for name, parents in needs.items():
        for parent in parents:
            assert work.index("end", parent) < work.index("start", name), f"{name} started before {parent} ended"
    assert work.most <= jobs


def test_two_jobs_build_two_independent_images_at_once():
    # Each waits for the other to have started: they pass only if both run at the same time.
    meet = threading.Barrier(2, timeout=5)
    order, needs = ["rootfs-trixie", "rootfs-bookworm"], {}
    work = Recorder(wait={"rootfs-trixie": meet.wait, "rootfs-bookworm": meet.wait})
    done, failed = factory.run_graph(order, needs, work, jobs=2)
    assert set(done) == set(order) and failed == {} and work.most == 2
    # With one job they run one after the other (the barrier breaks: both fail, the second is never started).
    meet = threading.Barrier(2, timeout=0.2)
    work = Recorder(wait={"rootfs-trixie": meet.wait, "rootfs-bookworm": meet.wait})
    done, failed = factory.run_graph(order, needs, work, jobs=1)
    assert list(failed) == ["rootfs-trixie"] and work.started() == ["rootfs-trixie"] and work.most == 1


def test_a_failure_starts_nothing_new_and_lets_the_running_build_finish():
    order = ["litellm", "ferretdb", "telegraf", "caddy"]
    litellm_failed = threading.Event()

    def litellm():
        litellm_failed.set()

    def ferretdb():  # still running when litellm fails
        assert litellm_failed.wait(5)
        time.sleep(0.3)

    work = Recorder(wait={"litellm": litellm, "ferretdb": ferretdb}, fail={"litellm"})
    done, failed = factory.run_graph(order, {}, work, jobs=2)
    assert list(failed) == ["litellm"] and "no space left" in str(failed["litellm"])
    assert done == {"ferretdb": "made ferretdb"}
    assert work.started() == ["litellm", "ferretdb"]  # telegraf and caddy were free to start, but did not


def test_images_that_can_never_start_are_reported():
    with pytest.raises(factory.FactoryError, match="cannot build child: they wait for missing"):
        factory.run_graph(["child"], {"child": {"missing"}}, Recorder(), jobs=2)


@pytest.fixture
def fake_engine(monkeypatch):
    """Factory.build without docker: which images exist, what got tagged, what got built (and a fake clock)."""
    monkeypatch.delenv("PARROTPARK_EXTRA_CA_BUNDLE", raising=False)
    monkeypatch.delenv("PARROTPARK_IMAGE_JOBS", raising=False)
    monkeypatch.setattr(factory, "host_go_version", lambda: "go1.26.0")
    engine = SimpleNamespace(existing=set(), tagged=[], fail=set(), now=[0.0], work=Recorder())

    def docker(*args, check=True):
        if args[0] == "tag":
            engine.tagged.append(args[2])
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="")

    def build(self, spec, ref):
        engine.work(spec.name)
        if spec.name in engine.fail:
            raise factory.FactoryError(f"docker build of {spec.name} failed:\nnpm ERR! network timeout")
        with engine.work.lock:
            engine.now[0] += 5
        engine.existing.add(ref)

    monkeypatch.setattr(factory, "docker", docker)
    monkeypatch.setattr(factory, "image_exists", lambda ref: ref in engine.existing)
    monkeypatch.setattr(factory.Factory, "_build_rootfs", build)
    monkeypatch.setattr(factory.Factory, "_build_dockerfile", build)
    made = factory.Factory()
    made.clock = lambda: engine.now[0]
    engine.factory = made
    return engine


def test_build_reports_each_image_on_one_line_and_the_total(fake_engine, monkeypatch, capsys):
    monkeypatch.setenv("PARROTPARK_IMAGE_JOBS", "1")
    made = fake_engine.factory
    names = list(made.images)
    made.build([])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("image ")] == names
    assert all(line.endswith("built in 5s") for line in lines if line.startswith("image "))
    assert lines[-1] == f"images: {len(names)} built, 0 cached in {5 * len(names)}s (jobs 1)"
    assert fake_engine.tagged == [f"parrotpark/lab-{name}:current" for name in names]

    # A warm run: every image cached, nothing built, and no "built in" for scripts/test.sh to take as cold.
    warm = factory.Factory()
    fake_engine.work.events.clear()
    monkeypatch.setenv("PARROTPARK_IMAGE_JOBS", "2")
    warm.build(["hello"])
    out = capsys.readouterr().out
    assert fake_engine.work.events == []
    assert out.splitlines()[-1].startswith("images: 0 built, 3 cached in ") and out.endswith("(jobs 2)\n")
    assert "built in" not in out


def test_build_failure_names_the_image_and_tags_nothing_of_it(fake_engine, monkeypatch, capsys):
    monkeypatch.setenv("PARROTPARK_IMAGE_JOBS", "1")
    fake_engine.fail = {"librechat-double"}
    made = fake_engine.factory
    names = list(made.images)
    failed_at = names.index("librechat-double")
    with pytest.raises(factory.FactoryError) as caught:
        made.build([])
    message = str(caught.value)
    assert message.startswith("image librechat-double failed: docker build of librechat-double failed")
    assert "npm ERR! network timeout" in message
    assert message.endswith("not started after the failure: " + ", ".join(names[failed_at + 1 :]))
    assert fake_engine.work.started() == names[: failed_at + 1]
    assert fake_engine.tagged == [f"parrotpark/lab-{name}:current" for name in names[:failed_at]]
    assert made.ready == set(names[:failed_at])
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith(f"images: {failed_at} built, 0 cached, 1 failed in ")


@pytest.mark.parametrize("value", ["0", "x", "9"])
def test_build_refuses_a_bad_job_count_before_building(fake_engine, monkeypatch, value):
    monkeypatch.setenv("PARROTPARK_IMAGE_JOBS", value)
    with pytest.raises(factory.FactoryError, match="PARROTPARK_IMAGE_JOBS"):
        fake_engine.factory.build([])
    assert fake_engine.work.events == []


def test_build_runs_two_images_at_once_by_default(fake_engine, capsys):
    made = fake_engine.factory
    meet = threading.Barrier(2, timeout=5)  # the two root file systems pass only together
    fake_engine.work.wait = {"rootfs-trixie": meet.wait, "rootfs-bookworm": meet.wait}
    made.build([])
    assert fake_engine.work.most == 2
    for name in made.images:
        parent = made.images[name].parent
        if parent:
            assert fake_engine.work.index("end", parent) < fake_engine.work.index("start", name)
    lines = capsys.readouterr().out.splitlines()
    # Whole lines only: one per image, then the summary.
    assert all(re.fullmatch(r"image \S+ +parrotpark/lab-\S+:\w+  built in \d+s", line) for line in lines[:-1])
    assert re.fullmatch(rf"images: {len(made.images)} built, 0 cached in \d+s \(jobs 2\)", lines[-1])
