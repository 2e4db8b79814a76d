"""Benchmark: the latency Caddy + LiteLLM add in front of the model server.

Starts, on a private docker network, the lab images of the model server
(vllm-double, answering at once), LiteLLM and Caddy (HTTPS with its internal
CA), each published on 127.0.0.1 only, and drives them with wrk:

* direct   wrk -> vllm-double
* litellm  wrk -> LiteLLM -> vllm-double
* gateway  wrk -> Caddy (HTTPS) -> LiteLLM -> vllm-double

for one chat completion per request, at concurrency 1 and 32, and reports
p50/p95 latency, the overhead of LiteLLM and of the whole gateway over the
direct call, and the requests per second sustained at concurrency 32 with no
error. Each LiteLLM profile (see PROFILES) is measured in turn, so tuning is
reported before/after on the same machine and the same run.

    .venv/bin/python bench/gateway.py [--duration 10] [--profiles baseline,tuned]

Needs: a running Docker engine with the lab images built
(`python lab/images/factory.py build vllm-double litellm caddy`) and wrk
(Debian package `wrk`). Writes bench/results/gateway.json. Every container
and the network are removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gateway.json"
NETWORK = "parrotpark-bench"
PREFIX = "parrotpark-bench-"
LABEL = "parrotpark.bench=gateway"
MODEL = "mistral-nemo-12b"
UPSTREAM_KEY = "bench-upstream-key-0123456789"
MASTER_KEY = "sk-bench-master-key-0123456789"
CONCURRENCY = (1, 32)

# LiteLLM settings measured against each other, each a setting of
# roles/litellm (keep them in sync with its defaults):
# - baseline: LiteLLM as its documentation starts it (one worker, default
#   log level, Prometheus callback), no router settings;
# - role: the role's defaults (one worker, LITELLM_LOG=WARNING, fail-fast
#   router settings, Prometheus callback, --telemetry False);
# - tuned: the role with litellm_num_workers: 2 and litellm_log_level: ERROR;
# - tuned-no-metrics: tuned with litellm_metrics_enabled: false, to show
#   what the Prometheus callback costs per request.
_ROLE_ROUTER = {"num_retries": 1, "allowed_fails": 1, "cooldown_time": 30, "timeout": 600, "stream_timeout": 120}
_ROLE_ARGS = ["--keepalive_timeout", "75", "--telemetry", "False"]
_TWO_WORKERS = ["--num_workers", "2", "--timeout_worker_healthcheck", "60"]
PROFILES: dict[str, dict] = {
    "baseline": {
        "args": [],
        "env": {},
        "litellm_settings": {"callbacks": ["prometheus"]},
        "general_settings": {},
        "router_settings": {},
    },
    "role": {
        "args": ["--num_workers", "1", *_ROLE_ARGS],
        "env": {"LITELLM_LOG": "WARNING"},
        "litellm_settings": {"callbacks": ["prometheus"], "request_timeout": 600},
        "general_settings": {"disable_spend_logs": False},
        "router_settings": _ROLE_ROUTER,
    },
    "tuned": {
        "args": [*_TWO_WORKERS, *_ROLE_ARGS],
        "env": {"LITELLM_LOG": "ERROR"},
        "litellm_settings": {"callbacks": ["prometheus"], "request_timeout": 600},
        "general_settings": {"disable_spend_logs": False},
        "router_settings": _ROLE_ROUTER,
    },
    "tuned-no-metrics": {
        "args": [*_TWO_WORKERS, *_ROLE_ARGS],
        "env": {"LITELLM_LOG": "ERROR"},
        "litellm_settings": {"request_timeout": 600},
        "general_settings": {"disable_spend_logs": False},
        "router_settings": _ROLE_ROUTER,
    },
}

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{"model": "%(model)s", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"

done = function(summary, latency, requests)
  io.write(string.format(
    "WRK_JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"status_errors\\": %%d, "
    .. "\\"socket_errors\\": %%d, \\"p50_us\\": %%d, \\"p95_us\\": %%d, \\"p99_us\\": %%d, \\"mean_us\\": %%f}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


def sh(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, text=True, capture_output=capture)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image(name: str) -> str:
    ref = f"parrotpark/lab-{name}:current"
    if sh("docker", "image", "inspect", ref, check=False).returncode != 0:
        raise SystemExit(f"image {ref} is missing: run `python lab/images/factory.py build {name}` first")
    return ref


def cleanup() -> None:
    names = sh("docker", "ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
    if names:
        sh("docker", "rm", "-f", *names, check=False)
    sh("docker", "network", "rm", NETWORK, check=False)


def run_container(name: str, ref: str, port: int, inner_port: int, *extra: str, command: list[str] = ()) -> None:
    sh(
        "docker", "run", "-d", "--name", PREFIX + name, "--network", NETWORK, "--label", LABEL,
        "-p", f"127.0.0.1:{port}:{inner_port}", *extra, ref, *command,
    )  # fmt: skip


def wait_http(url: str, timeout: float, name: str, insecure: bool = False) -> None:
    import ssl

    context = ssl._create_unverified_context() if insecure else None
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.5)
    logs = sh("docker", "logs", "--tail", "30", PREFIX + name, check=False)
    raise SystemExit(f"{name} did not answer {url} within {timeout:.0f}s ({last}):\n{logs.stdout}{logs.stderr}")


def litellm_config(profile: dict) -> str:
    import yaml

    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"hosted_vllm/{MODEL}",
                    "api_base": f"http://{PREFIX}double:8000/v1",
                    "api_key": "os.environ/UPSTREAM_API_KEY",
                },
            }
        ],
        "litellm_settings": profile["litellm_settings"],
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY", **profile["general_settings"]},
        "router_settings": profile["router_settings"],
    }
    return yaml.safe_dump(config, sort_keys=False)


def wrk(url: str, key: str, connections: int, duration: int, script: Path) -> dict:
    script.write_text(WRK_SCRIPT % {"model": MODEL, "key": key})
    threads = 1 if connections == 1 else 2
    run = sh(
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        check=False,
    )
    line = next((x for x in run.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result for {url}:\n{run.stdout}{run.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "errors": raw["status_errors"] + raw["socket_errors"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
    }


def smoke(url: str, key: str) -> str:
    import ssl

    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 4}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=30, context=ssl._create_unverified_context()) as answer:
        data = json.load(answer)
    content = data["choices"][0]["message"]["content"]
    if "vllm-double" not in content:
        raise SystemExit(f"{url} did not reach the double: {content!r}")
    return content


def measure_profile(name: str, profile: dict, work: Path, ports: dict[str, int], duration: int) -> dict:
    config = work / f"litellm-{name}.yaml"
    config.write_text(litellm_config(profile))
    config.chmod(0o644)
    env = {"LITELLM_MASTER_KEY": MASTER_KEY, "UPSTREAM_API_KEY": UPSTREAM_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.update(profile["env"])
    env_args = [x for key, value in env.items() for x in ("-e", f"{key}={value}")]
    sh("docker", "rm", "-f", PREFIX + "litellm", check=False)
    started = time.monotonic()
    run_container(
        "litellm", image("litellm"), ports["litellm"], 4000, *env_args,
        "-v", f"{config}:/app/config.yaml:ro",
        command=["--config", "/app/config.yaml", "--port", "4000", *profile["args"]],
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{ports['litellm']}/health/readiness", 180, "litellm")
    ready_s = round(time.monotonic() - started, 1)
    litellm_url = f"http://127.0.0.1:{ports['litellm']}/v1/chat/completions"
    gateway_url = f"https://localhost:{ports['caddy']}/v1/chat/completions"
    smoke(litellm_url, MASTER_KEY)
    smoke(gateway_url, MASTER_KEY)
    results: dict = {"ready_seconds": ready_s, "settings": profile}
    script = work / "wrk.lua"
    for connections in CONCURRENCY:
        row = {}
        for target, url, key in (
            ("direct", f"http://127.0.0.1:{ports['double']}/v1/chat/completions", UPSTREAM_KEY),
            ("litellm", litellm_url, MASTER_KEY),
            ("gateway", gateway_url, MASTER_KEY),
        ):
            wrk(url, key, connections, 2, script)  # warm-up: connections, JIT caches, pools
            row[target] = wrk(url, key, connections, duration, script)
        row["overhead_litellm_ms"] = {
            p: round(row["litellm"][f"{p}_ms"] - row["direct"][f"{p}_ms"], 2) for p in ("p50", "p95")
        }
        row["overhead_gateway_ms"] = {
            p: round(row["gateway"][f"{p}_ms"] - row["direct"][f"{p}_ms"], 2) for p in ("p50", "p95")
        }
        results[f"c{connections}"] = row
    return results


def table(report: dict) -> str:
    lines = [
        f"{'profile':16} {'conc':>4} {'target':8} {'p50 ms':>8} {'p95 ms':>8} {'rps':>8} {'errors':>6}"
        "   overhead p50/p95 ms",
    ]
    for name, result in report["profiles"].items():
        for connections in CONCURRENCY:
            row = result[f"c{connections}"]
            for target in ("direct", "litellm", "gateway"):
                cell = row[target]
                extra = ""
                if target != "direct":
                    over = row[f"overhead_{target}_ms"]
                    extra = f"   +{over['p50']:.2f} / +{over['p95']:.2f}"
                lines.append(
                    f"{name:16} {connections:>4} {target:8} {cell['p50_ms']:>8.2f} {cell['p95_ms']:>8.2f} "
                    f"{cell['rps']:>8.1f} {cell['errors']:>6}{extra}"
                )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="LiteLLM profiles to measure, in order")
    parser.add_argument("--output", type=Path, default=RESULTS)
    options = parser.parse_args()
    names = [x for x in options.profiles.split(",") if x]
    unknown = [x for x in names if x not in PROFILES]
    if unknown:
        parser.error(f"--profiles: unknown {', '.join(unknown)}; known: {', '.join(PROFILES)}")
    if not 1 <= options.duration <= 120:
        parser.error("--duration must be between 1 and 120 seconds")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    refs = {name: image(name) for name in ("vllm-double", "litellm", "caddy")}
    ports = {name: free_port() for name in ("double", "litellm", "caddy")}
    cleanup()
    report: dict = {"machine": {"cpus": os.cpu_count(), "model": MODEL}, "duration_s": options.duration, "profiles": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="pp-bench-") as tmp:
            work = Path(tmp)
            work.chmod(0o755)
            sh("docker", "network", "create", "--label", LABEL, NETWORK)
            run_container(
                "double", refs["vllm-double"], ports["double"], 8000,
                command=["--model", "casperhansen/mistral-nemo-instruct-2407-awq", "--served-model-name", MODEL,
                         "--host", "0.0.0.0", "--port", "8000", "--api-key", UPSTREAM_KEY],
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{ports['double']}/health", 60, "double")
            caddyfile = work / "Caddyfile"
            caddyfile.write_text(
                "{\n\tadmin off\n\tauto_https disable_redirects\n}\n\n"
                f"localhost {{\n\ttls internal\n\treverse_proxy {PREFIX}litellm:4000\n}}\n"
            )
            caddyfile.chmod(0o644)
            run_container("caddy", refs["caddy"], ports["caddy"], 443, "-v", f"{caddyfile}:/etc/caddy/Caddyfile:ro")
            for name in names:
                print(f"measuring profile {name} ...", file=sys.stderr, flush=True)
                report["profiles"][name] = measure_profile(name, PROFILES[name], work, ports, options.duration)
    finally:
        cleanup()
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
