"""One HTTP request, answered as JSON on stdout: status, headers, body (parsed when JSON) and seconds taken.

Runs on the molecule host with its own python3 (standard library only):
``python3 http_probe.py '{"url": ..., "method": "POST", "headers": {...}, "json": {...}, "timeout": 30}'``.
Redirects are followed (LiteLLM answers /metrics with a redirect to /metrics/). An HTTP error status is an
answer like any other; a connection that fails is reported as status 0 with the error.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request


def main() -> None:
    spec = json.loads(sys.argv[1])
    data = json.dumps(spec["json"]).encode() if "json" in spec else None
    headers = dict(spec.get("headers", {}))
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(spec["url"], data=data, headers=headers, method=spec.get("method", "GET"))
    started = time.monotonic()
    answer: dict = {}
    try:
        with urllib.request.urlopen(request, timeout=spec.get("timeout", 30)) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    except OSError as exc:
        status, raw, got = 0, str(exc).encode(), {}
    answer["seconds"] = round(time.monotonic() - started, 3)
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    answer.update(status=status, headers={key.lower(): value for key, value in got.items()}, body=body)
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
