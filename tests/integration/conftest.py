"""Fixtures for the Scaleway plugin tests: a fake Scaleway API (lab/fakescw) and a way to seed it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parents[1] / "lab", HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from ansible_run import ansible_env  # noqa: E402
from fake_scaleway import ACCESS_KEY, ORGANIZATION_ID, PROJECT_ID, SECRET_KEY, Seeder, scw_environ  # noqa: E402


@pytest.fixture(scope="session")
def fake_api() -> Iterator[Any]:
    """One fake Scaleway API for the session; it accepts only SECRET_KEY."""
    import fakescw

    with fakescw.FakeScaleway(
        secret_key=SECRET_KEY,
        access_key=ACCESS_KEY,
        project_id=PROJECT_ID,
        organization_id=ORGANIZATION_ID,
    ) as fake:
        yield fake


@pytest.fixture
def fake(fake_api: Any) -> Any:
    """The fake, emptied: no servers, IPs, faults or availability overrides."""
    fake_api.reset()
    return fake_api


@pytest.fixture
def run_env(fake: Any, tmp_path: Path) -> dict[str, str]:
    """The environment to run ansible with: the fake's SCW_* variables and no profile file to fall back on."""
    (tmp_path / "xdg").mkdir()
    return ansible_env({**scw_environ(fake), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})


@pytest.fixture
def seed(fake: Any) -> Seeder:
    """Creates servers in the fake with the official SDK."""
    return Seeder(fake)
