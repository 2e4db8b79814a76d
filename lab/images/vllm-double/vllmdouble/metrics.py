"""vLLM's Prometheus metrics, with real counts, and the --max-num-seqs slots.

Metrics.start waits for a free sequence slot like vLLM's scheduler (counted
as waiting), first_token and finish record the latencies and token counts;
render writes the Prometheus text format with vLLM's metric names.
"""

from __future__ import annotations

import threading
import time

TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
E2E_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
    50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


class Histogram:
    def __init__(self, buckets):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value):
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


class Metrics:
    def __init__(self, config):
        self.lock = threading.Lock()
        self.config = config
        self.labels = f'engine="0",model_name="{config.served_names[0]}"'
        self.running = 0
        self.waiting = 0
        self.kv_tokens = 0
        self.kv_capacity = config.max_model_len * config.max_num_seqs
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success = {"stop": 0, "length": 0, "abort": 0}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.slots = threading.BoundedSemaphore(config.max_num_seqs)

    def start(self, tokens):
        """Wait for a free sequence slot (--max-num-seqs), like the scheduler."""
        with self.lock:
            self.waiting += 1
        self.slots.acquire()
        with self.lock:
            self.waiting -= 1
            self.running += 1
            self.kv_tokens += tokens

    def first_token(self, started):
        with self.lock:
            self.ttft.observe(time.monotonic() - started)

    def finish(self, started, tokens, prompt_tokens, generated, reason):
        with self.lock:
            self.running -= 1
            self.kv_tokens -= tokens
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += generated
            self.success[reason] = self.success.get(reason, 0) + 1
            self.e2e.observe(time.monotonic() - started)
        self.slots.release()

    def render(self):
        labels = self.labels
        out = []

        def metric(name, kind, help_text, samples):
            # Like prometheus_client (which vLLM uses): a counter's HELP and
            # TYPE lines carry its sample name, <name>_total.
            if kind == "counter":
                name += "_total"
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            out.extend(samples)

        def histogram(name, help_text, hist):
            samples = []
            # Histogram.observe counts a value in every bucket it fits: cumulative, as Prometheus wants.
            for bound, count in zip(hist.buckets, hist.counts, strict=True):
                samples.append(f'{name}_bucket{{{labels},le="{bound!r}"}} {float(count)!r}\n')
            samples.append(f'{name}_bucket{{{labels},le="+Inf"}} {float(hist.total)!r}\n')
            samples.append(f"{name}_count{{{labels}}} {float(hist.total)!r}\n")
            samples.append(f"{name}_sum{{{labels}}} {float(hist.sum)!r}\n")
            metric(name, "histogram", help_text, samples)

        with self.lock:
            metric(
                "vllm:num_requests_running",
                "gauge",
                "Number of requests in model execution batches.",
                [f"vllm:num_requests_running{{{labels}}} {float(self.running)!r}\n"],
            )
            metric(
                "vllm:num_requests_waiting",
                "gauge",
                "Number of requests waiting to be processed.",
                [f"vllm:num_requests_waiting{{{labels}}} {float(self.waiting)!r}\n"],
            )
            usage = min(1.0, self.kv_tokens / self.kv_capacity) if self.kv_capacity else 0.0
            metric(
                "vllm:kv_cache_usage_perc",
                "gauge",
                "KV-cache usage. 1 means 100 percent usage. (vllm-double: tokens of running requests / "
                "(max_model_len * max_num_seqs))",
                [f"vllm:kv_cache_usage_perc{{{labels}}} {float(usage)!r}\n"],
            )
            metric(
                "vllm:prompt_tokens",
                "counter",
                "Number of prefill tokens processed.",
                [f"vllm:prompt_tokens_total{{{labels}}} {float(self.prompt_tokens)!r}\n"],
            )
            metric(
                "vllm:generation_tokens",
                "counter",
                "Number of generation tokens processed.",
                [f"vllm:generation_tokens_total{{{labels}}} {float(self.generation_tokens)!r}\n"],
            )
            metric(
                "vllm:request_success",
                "counter",
                "Count of successfully processed requests.",
                [
                    f'vllm:request_success_total{{{labels},finished_reason="{reason}"}} {float(count)!r}\n'
                    for reason, count in sorted(self.success.items())
                ],
            )
            histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", self.ttft)
            histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", self.e2e)
        return "".join(out).encode()
