"""Benchmark: how long the scheduler's gpu_up takes, phase by phase, and an idempotent site.yml run, in the lab.

Needs a running lab with its timers off (`PARROTPARK_LAB_TIMERS=off make lab`,
so that no timer starts a run during the benchmark). Sets the fake Scaleway API's transition time
and latency to zero, so what is measured is Parrotpark's own orchestration
(the fake's servers are systemd containers that really boot, pull images from
the lab registry and start the vLLM double). Then, ``--rounds`` times: the
down service, then the up service with ``--force``; each round reads
gpu_up's own timings file (phases create, boot, deploy, healthy, first token).
A first round creates the GPU server; ``--warm`` adds rounds where the server
already runs (the up timer's later ticks). Last, ``scripts/lab.sh site`` once,
which must report changed=0; its wall time is recorded. The GPU server is
left down, as the lab's schedule would at night.

    .venv/bin/python bench/lab_gpu_cycle.py [--rounds 3] [--warm 1]

Writes bench/results/lab_gpu_cycle.json. With the gateway on the GPU server
(LiteLLM and LibreChat there, the entrance in neither group gateway nor chat:
a lab brought up with PARROTPARK_LAB_LAYOUT=gpu-gateway, set for this script
too), where gpu_up also deploys LiteLLM and LibreChat, it writes
bench/results/lab_gpu_cycle_gpu_gateway.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The lab's names and ports: lab/lab.py, what scripts/lab.sh runs.
if str(ROOT / "lab") not in sys.path:
    sys.path.append(str(ROOT / "lab"))
import lab  # noqa: E402

CONFIG = lab.LabConfig.from_environ()
ENTRANCE = lab.ENTRANCE
FAKE = CONFIG.fake_url
TIMINGS = "/var/lib/parrotpark/scheduler/gpu_up-timings.json"
PHASES = ("create", "boot", "deploy", "healthy", "first_token")


def run(*argv: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def fake(method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        FAKE + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"{}")


def unit(name: str) -> float:
    """Start a oneshot service in the entrance and return its wall time."""
    started = time.monotonic()
    run("docker", "exec", ENTRANCE, "systemctl", "start", name)
    return round(time.monotonic() - started, 1)


def up_forced() -> dict:
    """``parrotpark-gpu up --force`` (the schedule ignored, as an admin would): wall time and gpu_up's phases."""
    started = time.monotonic()
    run("docker", "exec", ENTRANCE, "parrotpark-gpu", "up", "--force")
    wall = round(time.monotonic() - started, 1)
    timings = json.loads(run("docker", "exec", ENTRANCE, "cat", TIMINGS).stdout)
    return {
        "wall_seconds": wall,
        "created_now": timings["created_now"],
        **timings["phases_seconds"],
        "total": timings["total_seconds"],
    }


def summary(rounds: list[dict]) -> dict:
    keys = (*PHASES, "total", "wall_seconds")
    return {
        "median_seconds": {key: round(statistics.median(float(r[key]) for r in rounds), 1) for key in keys},
        "max_seconds": {key: round(max(float(r[key]) for r in rounds), 1) for key in keys},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold rounds: down, then up (default 3)")
    parser.add_argument("--warm", type=int, default=1, help="up rounds with the server already running (default 1)")
    layout = CONFIG.layout
    name = "lab_gpu_cycle.json" if layout == "default" else f"lab_gpu_cycle_{layout.replace('-', '_')}.json"
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / name)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10 or not 0 <= args.warm <= 10:
        parser.error("--rounds takes 1 to 10, --warm 0 to 10")
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", ENTRANCE], capture_output=True, text=True, check=False
    )
    if state.stdout.strip() != "true":
        sys.exit(f"the lab is not up ({ENTRANCE} is not running): run `PARROTPARK_LAB_TIMERS=off make lab` first")
    timer = subprocess.run(
        ["docker", "exec", ENTRANCE, "systemctl", "is-active", "parrotpark-gpu-up.timer"],
        capture_output=True,
        text=True,
        check=False,
    )
    if timer.stdout.strip() == "active":
        sys.exit("the lab's up timer is active: bring the lab up with `PARROTPARK_LAB_TIMERS=off make lab`")

    fake("PUT", "/_fake/config", {"transition_seconds": 0, "latency": 0})
    cold, warm = [], []
    for number in range(args.rounds):
        cold.append({"down_seconds": unit("parrotpark-gpu-down.service"), **up_forced()})
        print(f"cold round {number + 1}: {json.dumps(cold[-1])}", flush=True)
    for number in range(args.warm):
        warm.append(up_forced())
        print(f"warm round {number + 1}: {json.dumps(warm[-1])}", flush=True)
    unit("parrotpark-gpu-down.service")

    started = time.monotonic()
    site = run("env", "PARROTPARK_LAB_TIMERS=off", str(ROOT / "scripts" / "lab.sh"), "site")
    site_seconds = round(time.monotonic() - started, 1)
    recap = re.search(rf"^{re.escape(ENTRANCE)}\s+: ok=(\d+)\s+changed=(\d+)", site.stdout, re.M)
    if not recap:
        sys.exit("site.yml printed no recap for the entrance")
    print(f"idempotent site.yml: {site_seconds} s, ok={recap.group(1)} changed={recap.group(2)}", flush=True)

    results = {
        "benchmark": "scheduler gpu_up in the lab (fake Scaleway API, transition 0 s), and an idempotent site.yml",
        "machine": f"{os.cpu_count()} cores",
        "layout": layout,
        "cold_rounds": cold,
        "cold": summary(cold),
        "warm_rounds": warm,
        **({"warm": summary(warm)} if warm else {}),
        "site_idempotent": {"seconds": site_seconds, "ok": int(recap.group(1)), "changed": int(recap.group(2))},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if recap.group(2) == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
