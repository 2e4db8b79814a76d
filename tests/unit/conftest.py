"""Make the repository's tools importable from the unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT / "tools", ROOT / "lab" / "images"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# The fake Scaleway API (lab/fakescw) for tests of the modules and the inventory plugin.
LAB = ROOT / "lab"
if str(LAB) not in sys.path:
    sys.path.append(str(LAB))

FAKE_SCALEWAY_SECRET_KEY = "0b8d2c1e-4f4a-4c55-9a55-6b0d3c1f7e21"
FAKE_SCALEWAY_PROJECT_ID = "5f0e4c3a-8d1b-4b8e-9f0a-2c6d7e8f9a01"
FAKE_SCALEWAY_ORGANIZATION_ID = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"


@pytest.fixture
def fake_scaleway():
    """A started fakescw.FakeScaleway on a free port, stopped on teardown.

    It accepts only ``fake.secret_key`` and owns ``fake.project_id`` /
    ``fake.organization_id`` (the constants above); ``fake.url`` is its API URL,
    ``fake.client_kwargs()`` the arguments of ``scaleway.Client`` and
    ``fake.environ()`` the ``SCW_*`` variables pointing at it.
    """
    from fakescw import FakeScaleway

    fake = FakeScaleway(
        secret_key=FAKE_SCALEWAY_SECRET_KEY,
        project_id=FAKE_SCALEWAY_PROJECT_ID,
        organization_id=FAKE_SCALEWAY_ORGANIZATION_ID,
    ).start()
    yield fake
    fake.stop()
