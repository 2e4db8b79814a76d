"""The lab's names resolve to its published port for every test of the lab; a real browser for those that
ask for one."""

import shutil
import socket

import pytest
from lab_support import DOMAIN, HTTPS_PORT, SHOTS

# The lab has no DNS (a browser user adds the names to /etc/hosts): the
# tests send the lab's names to the HTTPS port published on 127.0.0.1.
_real_getaddrinfo = socket.getaddrinfo


def _lab_getaddrinfo(host, port, *args, **kwargs):
    if isinstance(host, str) and host.endswith("." + DOMAIN):
        return _real_getaddrinfo("127.0.0.1", HTTPS_PORT if int(port or 443) == 443 else port, *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture(autouse=True, scope="module")
def lab_names():
    socket.getaddrinfo = _lab_getaddrinfo
    yield
    socket.getaddrinfo = _real_getaddrinfo


# Headless in a container (no sandbox), none of Chromium's own traffic to the internet, the lab's names on loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven headless by Playwright."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed (scripts/lib.sh pp_setup installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A page of a fresh browser context (no cookies): one user each. The lab CA's certificates are accepted (a
    user imports the CA, docs/caddy.md)."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()
