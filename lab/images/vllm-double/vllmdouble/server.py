"""HTTP/1.1 plumbing: the threaded server and the request handler's base.

BaseHandler reads request bodies (Content-Length or chunked), checks the API
key on /v1 and the other guarded prefixes, routes by path and method to the
handler's methods named in `routes`, and writes responses with the double's
headers and one access-log line each. The endpoints themselves live in
endpoints.py (ApiHandler).
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from . import DOUBLE_HEADER, LOG
from .errors import ApiError
from .metrics import Metrics

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
    """The prefix of the logging format (main.py), cached for a second."""
    now = int(time.time())
    if _log_prefix_cache[0] != now:
        _log_prefix_cache[0] = now
        _log_prefix_cache[1] = time.strftime("INFO %m-%d %H:%M:%S [vllm-double] ", time.localtime(now))
    return _log_prefix_cache[1]


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class Server(ThreadingHTTPServer):
    """One thread per connection; holds the config, the embedder and the metrics the handlers share."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, config, embedder, handler):
        self.config = config
        self.embedder = embedder
        self.metrics = Metrics(config)
        self.ready_at = time.monotonic() + config.startup_seconds
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        super().__init__((config.host, config.port), handler)


class BaseHandler(BaseHTTPRequestHandler):
    """Requests in, responses out; a subclass sets `routes`: {path: {method: method name}}."""

    protocol_version = "HTTP/1.1"
    server_version = "vllm-double"
    disable_nagle_algorithm = True
    server: Server
    routes: ClassVar[dict[str, dict[str, str]]] = {}

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
        route = self.routes.get(path)
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
