"""Benchmark: how long scaleway_instance takes to create, re-check and remove an instance.

Runs the module through ansible-playbook and the real SDK against lab/fakescw
with a configurable transition time (0 = the module's own overhead only), a
few rounds, and writes the numbers to bench/results/scaleway_instance.json.

    .venv/bin/python bench/scaleway_instance.py [--rounds 3] [--transition 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "collections"), str(ROOT / "lab"), str(ROOT / "tests" / "integration")]

from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway import (  # noqa: E402
    ScalewayClient,
    resolve_settings,
)
from ansible_collections.parrotpark.llm.plugins.module_utils._scaleway_instance import InstanceManager  # noqa: E402
from ansible_run import ansible_env, run_tasks  # noqa: E402
from fake_scaleway import ACCESS_KEY, ORGANIZATION_ID, PROJECT_ID, SECRET_KEY, scw_environ  # noqa: E402

from fakescw import FakeScaleway  # noqa: E402

MODULE = "parrotpark.llm.scaleway_instance"
ARGS = {
    "name": "bench-gpu",
    "zone": ["fr-par-2", "pl-waw-2"],
    "commercial_type": ["L4-1-24G"],
    "image": "ubuntu_noble_gpu_os_13_nvidia",
    "root_volume_size": 125,
    "private_networks": ["5ca1ab1e-0000-4000-8000-000000000001"],
    "user_data": "#cloud-config\n",
    "wait_interval": 0.2,
}


def timed(tmp: Path, env: dict[str, str], args: dict) -> tuple[float, dict]:
    started = time.monotonic()
    run = run_tasks(tmp, env, [(MODULE, args)])
    elapsed = time.monotonic() - started
    (result,) = run.results
    if result.get("failed"):
        raise SystemExit(f"module failed: {result.get('msg')}")
    return elapsed, result


def logic_only(fake: FakeScaleway, rounds: int) -> dict[str, float]:
    """The module's own work (SDK calls included), in-process, without ansible-playbook around it."""
    settings = resolve_settings(
        {
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "project_id": PROJECT_ID,
            "organization_id": ORGANIZATION_ID,
            "api_url": fake.url,
        },
        "fr-par-2",
    )
    api = ScalewayClient(settings)
    base = {
        "placement_order": "type_first",
        "extra_volumes": None,
        "tags": [],
        "security_group": None,
        "public_ip": "dynamic",
        "wait": True,
        "wait_timeout": 60,
    }
    samples: dict[str, list[float]] = {"create_running": [], "unchanged": [], "absent": []}
    for _round in range(rounds):
        for step, state in (("create_running", "running"), ("unchanged", "running"), ("absent", "absent")):
            started = time.monotonic()
            InstanceManager(api, {**base, **ARGS, "name": "bench-logic", "state": state}, False).run()
            samples[step].append(time.monotonic() - started)
    return {key: round(statistics.median(values) * 1000, 1) for key, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transition", type=float, default=0.0, help="fake power transition time, seconds")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "scaleway_instance.json")
    options = parser.parse_args()

    samples: dict[str, list[float]] = {"create_running": [], "unchanged": [], "absent": [], "playbook_noop": []}
    with (
        FakeScaleway(
            secret_key=SECRET_KEY,
            access_key=ACCESS_KEY,
            project_id=PROJECT_ID,
            organization_id=ORGANIZATION_ID,
            transition_seconds=options.transition,
        ) as fake,
        tempfile.TemporaryDirectory() as tmp_dir,
    ):
        tmp = Path(tmp_dir)
        env = ansible_env({**scw_environ(fake), "XDG_CONFIG_HOME": str(tmp)})
        for _round in range(options.rounds):
            started = time.monotonic()
            run_tasks(tmp, env, [("ansible.builtin.debug", {"msg": "baseline"})])
            samples["playbook_noop"].append(time.monotonic() - started)
            elapsed, result = timed(tmp, env, {**ARGS, "state": "running"})
            assert result["changed"] and result["instance"]["state"] == "running"
            samples["create_running"].append(elapsed)
            elapsed, result = timed(tmp, env, {**ARGS, "state": "running"})
            assert not result["changed"]
            samples["unchanged"].append(elapsed)
            elapsed, result = timed(tmp, env, {"name": ARGS["name"], "zone": ARGS["zone"], "state": "absent"})
            assert result["changed"] and fake.state()["counts"]["servers"] == 0
            samples["absent"].append(elapsed)
        requests = len(fake.requests())
        logic = logic_only(fake, max(options.rounds, 5))

    report = {
        "benchmark": "scaleway_instance against lab/fakescw through ansible-playbook",
        "rounds": options.rounds,
        "transition_seconds": options.transition,
        "median_seconds": {key: round(statistics.median(values), 2) for key, values in samples.items()},
        "max_seconds": {key: round(max(values), 2) for key, values in samples.items()},
        "api_requests_total": requests,
        "module_logic_median_ms": logic,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'step':<16} {'median s':>9} {'max s':>7}")
    for key in samples:
        print(f"{key:<16} {report['median_seconds'][key]:>9} {report['max_seconds'][key]:>7}")
    print("module logic alone (in-process, median ms): " + ", ".join(f"{k} {v}" for k, v in logic.items()))
    print(f"written to {options.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
