"""The command line of `vllm serve` and the double's environment knobs.

parse_args reads vLLM's flags (the ones the double uses; every other flag is
accepted and reported as ignored), Config turns them and the environment into
what the server needs. A command line vLLM would refuse raises UsageError.
"""

from __future__ import annotations

import re

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
    "--tool-call-parser",
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
    "--enable-auto-tool-choice",
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
        # Tool calling: vLLM answers tool_choice "auto" only with both flags,
        # and refuses to start with the first flag alone.
        self.auto_tool_choice = "--enable-auto-tool-choice" in opts["bools"]
        self.tool_call_parser = opts.get("tool-call-parser")
        if self.auto_tool_choice and not self.tool_call_parser:
            raise UsageError("--enable-auto-tool-choice requires --tool-call-parser")
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
