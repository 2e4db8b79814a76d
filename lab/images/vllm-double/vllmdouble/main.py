"""Start the double: read the command line, log what is served, listen, serve until SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from . import DOUBLE_HEADER, LOG, VERSION
from .config import USAGE, Config, UsageError
from .embedders import load_embedder
from .endpoints import ApiHandler
from .server import Server


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
        server = Server(config, embedder, ApiHandler)
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
