"""A real browser logs in to the chat as people do (issue 16, item 9).

Debian's Chromium, driven headless by Playwright, on the machine that runs
the lab, opens the chat site on the lab's published HTTPS port
(``https://chat.lab.parrotpark.test:8443``: the names are mapped to
127.0.0.1, as the /etc/hosts line of docs/quickstart.md does), follows the
login link to Keycloak, fills in the lab user's name and password, and must
come back to the chat site on the same port with an authorization code that
LibreChat's client can exchange for tokens. Before the stack's public URLs
carried the port, the browser was sent to port 443, where nothing listens.

The chat site runs LibreChat's double in the lab: its start page and its
login redirect are the double's, what follows is Keycloak's real pages. The
certificate is the lab CA's, which the browser is told to accept (a user
imports it, docs/caddy.md). Screenshots of each step are kept in
``.cache/browser/`` (the end-to-end stage's artefacts).
"""

from __future__ import annotations

import urllib.parse

import requests
from lab_support import SECRETS, SHOTS, exchange_code, lab_ca, only_in_layout, site_url

pytestmark = only_in_layout("default")


def test_the_lab_user_logs_in_through_keycloak_and_comes_back_on_the_labs_port(page):
    password = (SECRETS / "lab-user-password").read_text().strip()
    chat, auth = site_url("chat"), site_url("auth")

    page.goto(chat + "/")
    page.screenshot(path=SHOTS / "1-chat-start.png")
    page.get_by_role("link", name="Log in with OpenID").click()

    # Keycloak's own login page, on the lab's port.
    page.wait_for_url(auth + "/realms/parrotpark/protocol/openid-connect/auth?**")
    page.locator("#username").fill("lab")
    page.locator("#password").fill(password)
    page.screenshot(path=SHOTS / "2-keycloak-login.png")
    page.locator("#kc-login").click()

    # Back on the chat site, same port, with a code for LibreChat's client.
    page.wait_for_url(chat + "/oauth/openid/callback?**")
    page.screenshot(path=SHOTS / "3-back-on-the-chat.png")
    landed = urllib.parse.urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}" == chat, page.url
    assert "code" in urllib.parse.parse_qs(landed.query), page.url
    tokens = exchange_code(requests.Session(), page.url, chat + "/oauth/openid/callback", lab_ca())
    assert tokens["id_token"]
