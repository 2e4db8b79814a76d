"""The HTTP API: which path answers what, in vLLM's shapes.

ApiHandler.routes is the table of contents; each ep_* method reads a request
body and answers it. Chat and text completions are served by _run (one JSON
answer) or _stream (server-sent events), both of which hold a --max-num-seqs
slot and count the request in the metrics.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import ClassVar

from . import OWNED_BY, VERSION, generation
from .embedders import embedding_inputs, encode_embedding
from .errors import ApiError
from .server import BaseHandler, dumps


class ApiHandler(BaseHandler):
    routes: ClassVar[dict[str, dict[str, str]]] = {
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
        last_user, prompt_tokens = generation.chat_prompt(request.get("messages"))
        call = generation.tool_call(request, last_user, self.server.config.auto_tool_choice)
        if call is None:
            limit = generation.max_tokens(request, prompt_tokens, None, self.server.config.max_model_len)
            tokens, reason = generation.generate(generation.echo(model, last_user), limit, generation.stops(request))
        else:
            # One tool call: its arguments are the whole output.
            tokens, reason = [call["function"]["arguments"]], "tool_calls"
        ids = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        def chunk(delta, finish):
            return {
                "id": ids,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        def piece(tok, last):
            if call is not None:
                return chunk({"tool_calls": [{"index": 0, **call}]}, reason)
            return chunk({"content": tok}, reason if last else None)

        if request.get("stream"):
            options = request.get("stream_options") or {}
            include_usage = self.server.config.force_include_usage or bool(options.get("include_usage"))
            self._stream(
                prompt_tokens,
                tokens,
                reason,
                first=chunk({"role": "assistant", "content": None if call else ""}, None),
                piece=piece,
                empty_final=chunk({"content": ""}, reason),
                usage_chunk=(
                    lambda usage: {
                        "id": ids,
                        "object": "chat.completion.chunk",
                        "created": created,
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
        message = (
            {"role": "assistant", "content": None, "tool_calls": [call]}
            if call
            else {"role": "assistant", "content": text, "tool_calls": []}
        )
        self._send_json(
            200,
            {
                "id": ids,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": reason, "stop_reason": None}
                ],
                "usage": generation.usage(prompt_tokens, len(tokens)),
            },
        )

    def ep_completions(self, body):
        self._require_generate("Completions")
        request = self._json_request(body)
        model = self._model(request)
        prompts = generation.completion_prompts(request.get("prompt"))
        stops = generation.stops(request)
        max_model_len = self.server.config.max_model_len
        if request.get("stream"):
            if len(prompts) != 1:
                raise ApiError(400, "vllm-double: streaming supports one prompt per request", param="prompt")
            prompt_tokens = generation.count_tokens(prompts[0])
            limit = generation.max_tokens(request, prompt_tokens, 16, max_model_len)
            tokens, reason = generation.generate(generation.echo(model, prompts[0]), limit, stops)
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
            prompt_tokens = generation.count_tokens(text)
            limit = generation.max_tokens(request, prompt_tokens, 16, max_model_len)
            tokens, reason = generation.generate(generation.echo(model, text), limit, stops)
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
                "usage": generation.usage(total_prompt, total_completion),
            },
        )

    def ep_embeddings(self, body):
        config = self.server.config
        if config.runner != "pooling":
            raise ApiError(400, "The model does not support Embeddings API")
        request = self._json_request(body)
        model = self._model(request)
        items = embedding_inputs(request.get("input"))
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
        out = [
            {"index": index, "object": "embedding", "embedding": encode_embedding(native, dim, encoding)}
            for index, native in enumerate(vectors)
        ]
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
                event(usage_chunk(generation.usage(prompt_tokens, len(tokens))))
            # Counted before the last chunk: a client that has read the whole
            # stream finds the request in /metrics (as one that read a plain answer).
            metrics.finish(started, held, prompt_tokens, len(tokens), reason)
            sent = None
            done = b"data: [DONE]\n\n"
            write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        except OSError:
            self.close_connection = True
            if sent is not None:
                metrics.finish(started, held, prompt_tokens, sent, "abort")
        self._log(200)
