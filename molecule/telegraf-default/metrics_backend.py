"""Test exporter for the telegraf scenarios: Prometheus text behind a bearer token.

Usage: python3 metrics_backend.py PORT TOKEN. GET /metrics with
``Authorization: Bearer TOKEN`` answers a few metrics in Prometheus' text
format, as prometheus_client writes them (a gauge, a counter, names with and
without ':'); any other token, or none, gets 401, and the counter
``exporter:refused_scrapes_total`` of the next good scrape counts the refusals.
It is a fixture for the token handling of the role, not a double of a product.
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]
LOCK = threading.Lock()
COUNTS = {"served": 0, "refused": 0}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        with LOCK:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                COUNTS["refused"] += 1
                self.send_error(401)
                return
            COUNTS["served"] += 1
            served, refused = COUNTS["served"], COUNTS["refused"]
        body = (
            "# HELP exporter:scrapes_total Scrapes answered.\n"
            "# TYPE exporter:scrapes_total counter\n"
            f'exporter:scrapes_total{{exporter="molecule"}} {float(served)}\n'
            "# HELP exporter:refused_scrapes_total Scrapes refused for a wrong or missing token.\n"
            "# TYPE exporter:refused_scrapes_total counter\n"
            f'exporter:refused_scrapes_total{{exporter="molecule"}} {float(refused)}\n'
            "# HELP exporter_up Always 1.\n"
            "# TYPE exporter_up gauge\n"
            'exporter_up{exporter="molecule"} 1.0\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write(f"metrics_backend: {fmt % args}\n")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
