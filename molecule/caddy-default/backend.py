"""Test backend for the caddy scenarios: answers every GET with JSON naming itself.

Usage: python3 backend.py NAME PORT. ``?sleep=S`` (at most 30) delays the
answer, so a test can keep a request in flight while Caddy reloads.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME, PORT = sys.argv[1], int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        delay = float(parse_qs(url.query).get("sleep", ["0"])[0])
        time.sleep(min(max(delay, 0.0), 30.0))
        body = json.dumps(
            {
                "backend": NAME,
                "path": url.path,
                "host": self.headers.get("Host"),
                "x_forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "x_forwarded_host": self.headers.get("X-Forwarded-Host"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # The proxy must replace these with its own values.
        self.send_header("Server", "parrotpark-test-backend")
        self.send_header("X-Frame-Options", "ALLOWALL")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write(f"{NAME}: {fmt % args}\n")


ThreadingHTTPServer(("", PORT), Handler).serve_forever()
