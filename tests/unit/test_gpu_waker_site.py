"""The waker and the chat site (the gateway on the GPU server), run for real on 127.0.0.1.

With LiteLLM and LibreChat on the GPU server, Caddy's routes gpu-4000 and
gpu-3080 bring both the API and the chat site to the waker while the GPU is
off. A browser's page load gets the offline page (never a wake), its button
(a same-origin POST) wakes the GPU once, LibreChat's calls under /api/ get a
JSON 503 with the same sentence, and once the GPU is ready the same requests
are forwarded. Same harness as tests/unit/test_gpu_waker.py.
"""

from __future__ import annotations

import html
import re
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import test_gpu_waker as base  # noqa: E402

gp, gw, PARIS = base.gp, base.gw, base.PARIS
harness, vllm = base.harness, base.vllm  # the fixtures

BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Host": "chat.example.org",
    "X-Parrotpark-Route": "gpu-3080",
}
BUTTON = {
    "Host": "chat.example.org",
    "Origin": "https://chat.example.org",
    "Sec-Fetch-Site": "same-origin",
    "Content-Type": "application/x-www-form-urlencoded",
    "X-Parrotpark-Route": "gpu-3080",
}


def page(h, path: str = "/", method: str = "GET"):
    status, headers, body, seconds = h.call(method, path, None, BROWSER)
    return status, headers, body.decode() if isinstance(body, bytes) else body, seconds


def press(h, **headers):
    return h.call("POST", gw.WAKE_PATH, None, {**BUTTON, **headers})


def test_a_page_load_gets_the_offline_page_with_the_button_and_never_wakes(harness):
    h = harness()
    for path in ("/", "/c/new", "/login", gw.WAKE_PATH):
        status, headers, text, seconds = page(h, path)
        assert status == 503 and seconds < 2, path
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Cache-Control"] == "no-store"
        assert headers["Retry-After"] == "15"
        assert "<h1>The model is off</h1>" in text
        assert "The model is off; starting it takes about 8 minutes." in text
        assert f'<form method="post" action="{gw.WAKE_PATH}">' in text
        assert '<button type="submit" id="wake">Start the model</button>' in text
        assert '<meta http-equiv="refresh" content="15">' in text
    status, headers, body, _seconds = h.call("HEAD", "/", None, BROWSER)
    assert (status, body) == (503, b"")
    assert h.ran() == []
    assert h.waker.state.phase == "off"
    assert not (h.dir / gw.LEDGER_FILE).exists()
    assert "answered the offline page (off) to GET /c/new" in h.logs


def test_the_page_is_self_contained_and_carries_no_secret(harness):
    h = harness()
    _status, _headers, text, _seconds = page(h)
    assert not re.search(r"\b(src|href)\s*=", text, re.IGNORECASE)
    assert "http://" not in text and "https://" not in text and "<script" not in text.lower()
    assert "127.0.0.1" not in text and str(h.dir) not in text
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_the_button_wakes_once_and_goes_back_to_the_page_which_says_starting(harness):
    h = harness()
    status, headers, body, seconds = press(h)
    assert (status, headers["Location"], body) == (303, "/", b"")
    assert seconds < 2
    assert h.ran() == ["up"]
    assert [record["event"] for record in h.ledger()] == ["created"]
    assert h.ledger()[0]["trigger"] == "wake"
    h.clock.advance(minutes=3)
    status, headers, text, _seconds = page(h)
    assert status == 503
    assert "<h1>The model is starting</h1>" in text
    assert "The model is starting, ready in about 5 minutes." in text
    assert "<form" not in text  # nothing to press while it starts
    assert headers["Retry-After"] == "15"
    assert h.waker.state.in_flight == 0
    assert "wake: trigger wake, 1 request (POST /.parrotpark/wake)" in h.logs


def test_twenty_presses_at_once_wake_once(harness):
    h = harness()
    barrier = threading.Barrier(20, timeout=10)
    results: list[int] = []

    def one() -> None:
        barrier.wait()
        results.append(press(h)[0])

    threads = [threading.Thread(target=one) for _attempt in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [303] * 20
    assert h.ran() == ["up"]
    assert h.waker.state.wakes_today == 1 and h.waker.state.in_flight == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example.net", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example.net", "Sec-Fetch-Site": ""},
        {"Origin": "null", "Sec-Fetch-Site": ""},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=["cross-site", "other origin", "opaque origin", "sibling site"],
)
def test_a_press_from_another_site_does_not_wake(harness, headers):
    h = harness()
    status, _headers, body, _seconds = press(h, **headers)
    assert status == 403
    assert body["error"]["message"] == "The wake button works from the chat site's own page."
    assert h.ran() == []
    assert h.waker.state.phase == "off"


def test_librechat_calls_under_api_get_the_sentence_in_json_and_never_wake(harness):
    h = harness()
    for method, path in (("GET", "/api/config"), ("POST", "/api/ask/openAI"), ("GET", "/api/user"), ("GET", "/api")):
        body = {"text": "hello"} if method == "POST" else None
        status, headers, answer, _seconds = h.call(method, path, body, {"Accept": "application/json", **BUTTON})
        assert status == 503, path
        assert headers["Content-Type"] == "application/json"
        assert answer["message"] == "The model is off; starting it takes about 8 minutes."
        assert answer["error"] == {"message": answer["message"], "type": "service_unavailable", "code": "off"}
    assert h.ran() == []
    press(h)
    h.clock.advance(minutes=2)
    status, headers, answer, _seconds = h.call("GET", "/api/config", None, BUTTON)
    assert (status, answer["error"]["code"]) == (503, "starting")
    assert answer["message"] == "The model is starting, ready in about 6 minutes."
    assert h.ran() == ["up"]


def test_api_requests_on_the_same_listener_still_wake_as_before(harness):
    h = harness()
    status, headers, body, _seconds = h.chat(**{"X-Parrotpark-Route": "gpu-4000", "Host": "api.example.org"})
    assert (status, body["error"]["code"], headers["Retry-After"]) == (503, "starting", "480")
    assert h.ran() == ["up"]
    _status, _headers, text, _seconds = page(h)
    assert "The model is starting, ready in about 8 minutes." in text


def test_quiet_hours_page_says_when_without_a_button(harness):
    h = harness({"quiet_start": "20:00", "quiet_end": "07:00"})
    h.clock.now = datetime(2025, 3, 17, 23, 0, tzinfo=PARIS)
    status, headers, text, _seconds = page(h)
    assert status == 503
    assert "The model is available from Tue 07:00 Europe/Paris (quiet hours)." in text
    assert "<form" not in text
    assert headers["Retry-After"] == str(8 * 3600)
    assert '<meta http-equiv="refresh" content="60">' in text
    assert press(h)[0] == 303  # the press is answered, and refused by the policy
    assert h.ran() == []
    assert "wake button: quiet, back to the page" in h.logs


def test_once_ready_the_chat_site_is_forwarded(harness, vllm):
    h = harness()
    librechat = vllm("librechat")
    press(h)
    h.clock.advance(minutes=8)
    status, answer = h.event(event="healthy", upstreams={"gpu-4000": "http://127.0.0.1:9", "gpu-3080": librechat.url})
    assert status == 200 and answer["status"]["phase"] == "ready"
    status, _headers, body, _seconds = h.call("GET", "/health", None, BROWSER)  # FakeVllm: 404 "not found"
    assert (status, body) == (404, b"not found")
    status, _headers, body, _seconds = h.call("POST", "/api/ask", {"stream": False}, BUTTON)
    assert status == 200 and body["served_by"] == "librechat"
    assert librechat.received[-1][1] == "/api/ask"
    assert press(h)[0] == 303
    assert h.ran() == ["up"]


def test_offline_page_escapes_every_text():
    view = gp.Offline("off", "quiet", 'Available from <script>alert("x")</script> & later', True, 15, 15)
    text = gw.offline_page(view, wake_path='/w"><script>')
    assert "<script>" not in text
    assert html.escape('Available from <script>alert("x")</script> & later') in text
    assert 'action="/w&quot;&gt;&lt;script&gt;"' in text


@pytest.mark.parametrize(
    ("method", "path", "headers", "kind"),
    [
        ("GET", "/", {"Accept": "text/html"}, "page"),
        ("HEAD", "/c/new", {"Accept": "application/xhtml+xml;q=0.9"}, "page"),
        ("GET", "/", {"Accept": "*/*"}, "health"),
        ("GET", "/", {}, "health"),
        ("POST", "/", {"Accept": "text/html"}, "health"),
        ("GET", "/v1/models", {"Accept": "text/html"}, "models"),
        ("POST", "/v1/chat/completions", {"Accept": "text/html"}, "chat"),
        ("GET", "/api/config", {"Accept": "text/html"}, "site_api"),
        ("POST", "/api/ask", {}, "site_api"),
        ("GET", "/apis", {"Accept": "text/html"}, "page"),
        ("POST", "/.parrotpark/wake", {}, "button"),
        ("POST", "/.parrotpark/wake/", {}, "button"),
        ("GET", "/.parrotpark/wake", {}, "page"),
        ("POST", "/.parrotpark/wake", {"X-Parrotpark-Probe": "1"}, "health"),
    ],
)
def test_classify_the_chat_site(method, path, headers, kind):
    assert gw.classify(method, path, headers) == kind


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"Host": "chat.example.org", "Origin": "https://chat.example.org", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Host": "chat.example.org", "Origin": "https://CHAT.example.org"}, True),
        ({"Host": "chat.example.org"}, True),
        ({"Host": "chat.example.org", "Sec-Fetch-Site": "none"}, True),
        ({"Host": "chat.example.org", "Origin": "https://api.example.org"}, False),
        ({"Host": "chat.example.org", "Origin": "https://chat.example.org", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Host": "chat.example.org", "Origin": "null"}, False),
    ],
)
def test_same_origin(headers, same):
    assert gw.same_origin(headers) is same
