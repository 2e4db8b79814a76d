"""Fixtures for the Scaleway plugin tests: a fake Scaleway API (lab/fakescw) and a way to seed it; with
pytest-xdist, one worker for all the tests that read a role's batch run."""

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


# The tests that read the batch run of their module's role (ansible_run.run_role_checks, the ``refusals``
# fixture). The run is shared by the workers in any case (under a lock); sent to one worker together, they
# do not keep the other waiting for it.
BATCH_TESTS = {
    "test_bad_input_fails_before_any_change",
    "test_required_nvidia_runtime_without_gpu_fails_before_any_change",
    "test_secret_values_stay_out_of_the_output",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` (the default of ``-n``), except that a module's batch tests are one work unit."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BatchScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module, _separator, test = nodeid.partition("::")
            return module if test.split("[")[0] in BATCH_TESTS else nodeid

    return BatchScheduling(config, log)
