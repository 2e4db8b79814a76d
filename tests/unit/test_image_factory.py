from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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
