"""OIDC client probe, run on the molecule host with its own python3 (standard library only).

It talks to Keycloak's HTTP port directly (the reverse proxy is not part of
this role). Usage: ``oidc_probe.py COMMAND JSON``, where JSON holds the
command's keyword arguments; it prints one JSON object.

get {url}
    status, content type and body (at most 200 kB) of a GET
admin {base, path}
    GET base/admin/realms/path as the administrator named by the environment
    variables KC_PROBE_ADMIN and KC_PROBE_PASSWORD (admin-cli login)
direct {base, realm, client_id, secret, username, password}
    a password grant (direct access) with the client
discovery {base, realm}
    the realm's OpenID configuration document
login {base, public, realm, client_id, secret, redirect_uri, username, password}
    LibreChat's flow, the authorization code flow of a confidential client:
    open the authorization endpoint, submit the login form, take the code
    from the redirect to redirect_uri and exchange it, with the client
    secret, at the token endpoint. Prints {"step": ..., "status": ...}
    where it stopped, or the decoded claims of the tokens.

base is where Keycloak answers (http://127.0.0.1:8080); public is its
KC_HOSTNAME, which prefixes every URL Keycloak hands out and is mapped back
to base here. Cookies are kept by hand: Keycloak marks them Secure for its
https hostname, and this probe speaks plain HTTP to it.
"""

from __future__ import annotations

import base64
import html
import http.client
import json
import os
import re
import sys
import urllib.parse


class Client:
    def __init__(self, base: str, public: str) -> None:
        self.base = base.rstrip("/")
        self.public = public.rstrip("/")
        self.cookies: dict[str, str] = {}

    def local(self, url: str) -> str:
        return self.base + url[len(self.public) :] if url.startswith(self.public) else url

    def request(
        self, method: str, url: str, form: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, str]:
        parts = urllib.parse.urlsplit(self.local(url))
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        headers = {"Accept": "*/*"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        for cookie in resp.headers.get_all("Set-Cookie") or []:
            name, _sep, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        return resp.status, resp.headers, text


def page_error(page: str) -> str:
    """The message a Keycloak page shows to the user (error page or login form feedback)."""
    found = re.search(r'class="[^"]*(?:instruction|kc-feedback-text)[^"]*"[^>]*>\s*([^<]+?)\s*<', page)
    return html.unescape(found.group(1)) if found else page[:300]


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def get(*, url: str) -> dict:
    status, headers, text = Client(url, url).request("GET", url)
    return {"status": status, "content_type": headers.get("Content-Type", ""), "body": text[:200_000]}


def token(client: Client, realm: str, form: dict[str, str]) -> tuple[int, dict]:
    status, _headers, text = client.request("POST", f"{client.base}/realms/{realm}/protocol/openid-connect/token", form)
    return status, json.loads(text)


def admin(*, base: str, path: str) -> dict:
    client = Client(base, base)
    form = {
        "grant_type": "password",
        "client_id": "admin-cli",
        "username": os.environ["KC_PROBE_ADMIN"],
        "password": os.environ["KC_PROBE_PASSWORD"],
    }
    status, answer = token(client, "master", form)
    if status != 200:
        return {"status": status, "error": answer}
    parts = urllib.parse.urlsplit(f"{base}/admin/realms/{path}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request("GET", target, headers={"Authorization": f"Bearer {answer['access_token']}"})
    resp = conn.getresponse()
    text = resp.read().decode()
    return {"status": resp.status, "body": json.loads(text) if resp.status == 200 else text[:500]}


def direct(*, base: str, realm: str, client_id: str, secret: str, username: str, password: str) -> dict:
    form = {
        "grant_type": "password",
        "client_id": client_id,
        "client_secret": secret,
        "username": username,
        "password": password,
        "scope": "openid",
    }
    status, answer = token(Client(base, base), realm, form)
    return {"status": status, "error": answer.get("error"), "has_token": "access_token" in answer}


def discovery(*, base: str, realm: str) -> dict:
    url = f"{base}/realms/{realm}/.well-known/openid-configuration"
    status, _headers, text = Client(base, base).request("GET", url)
    return {"status": status, "document": json.loads(text) if status == 200 else text[:500]}


def login(
    *, base: str, public: str, realm: str, client_id: str, secret: str, redirect_uri: str, username: str, password: str
) -> dict:
    client = Client(base, public)
    oidc = f"{public}/realms/{realm}/protocol/openid-connect"
    query = urllib.parse.urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "openid profile email",
            "state": "probe-state",
            "nonce": "probe-nonce",
        }
    )
    status, _headers, page = client.request("GET", f"{oidc}/auth?{query}")
    if status != 200 or 'id="kc-form-login"' not in page:
        return {"step": "authorize", "status": status, "error": page_error(page)}
    action = html.unescape(re.search(r'<form id="kc-form-login"[^>]*action="([^"]+)"', page).group(1))
    status, headers, page = client.request(
        "POST", action, {"username": username, "password": password, "credentialId": ""}
    )
    location = headers.get("Location", "")
    if status != 302 or not location.startswith(redirect_uri):
        return {"step": "login", "status": status, "location": location, "error": page_error(page) if page else ""}
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    status, _headers, text = client.request(
        "POST",
        f"{oidc}/token",
        {
            "grant_type": "authorization_code",
            "code": params.get("code", ""),
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    if status != 200:
        return {"step": "token", "status": status, "error": text[:300]}
    tokens = json.loads(text)
    return {
        "step": "done",
        "status": status,
        "redirect": location.split("?", 1)[0],
        "state": params.get("state"),
        "token_type": tokens.get("token_type"),
        "access": claims(tokens["access_token"]),
        "id": claims(tokens["id_token"]),
    }


def main(argv: list[str]) -> None:
    commands = {"get": get, "admin": admin, "direct": direct, "discovery": discovery, "login": login}
    print(json.dumps(commands[argv[0]](**json.loads(argv[1]))))


if __name__ == "__main__":
    main(sys.argv[1:])
