from __future__ import annotations

import shutil
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
