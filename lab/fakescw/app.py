"""The HTTP server and :class:`FakeScaleway`, the object tests and the lab drive."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from . import block, control, instance, ipam, marketplace, security_group_rules
from .backend import Backend, NullBackend
from .catalog import region_of
from .errors import ApiError
from .routing import Request, Response, Router
from .store import Config, Store, iso

log = logging.getLogger("fakescw")

DEFAULT_ACCESS_KEY = "SCWXXXXXXXXXXXXXXXXX"
LOGGED_BODY_LIMIT = 4096
SecretKeys = Iterable[str] | Mapping[str, Collection[str] | None]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel clients (Ansible forks) must not wait on a full backlog

    def __init__(self, address: tuple[str, int], fake: FakeScaleway) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakescw"
    timeout = 120
    server: _HTTPServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        base_url = f"http://{headers['host']}" if "host" in headers else self.server.fake.url
        response = self.server.fake.handle(self.command, self.path, headers, body, base_url=base_url)
        payload = response.encoded()
        self.send_response(response.status)
        if payload:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _error(exc: ApiError) -> Response:
    return Response(exc.status, exc.body)


def _logged_body(body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text[:LOGGED_BODY_LIMIT]


class FakeScaleway:
    """A fake Scaleway API (Instance, Block, IPAM, Marketplace) on a local port.

    >>> with FakeScaleway(secret_key="...") as fake:
    ...     client = scaleway.Client(**fake.client_kwargs())
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret_key: str | None = None,
        secret_keys: SecretKeys | None = None,
        access_key: str = DEFAULT_ACCESS_KEY,
        organization_id: str | None = None,
        project_id: str | None = None,
        transition_seconds: float = 0.0,
        latency: float = 0.0,
        max_sleep: float = 30.0,
        backend: Backend | None = None,
    ) -> None:
        keys: dict[str, Collection[str] | None] = {}
        if secret_key:
            keys[secret_key] = None
        if isinstance(secret_keys, Mapping):
            keys.update(secret_keys)
        elif secret_keys is not None:
            keys.update(dict.fromkeys(secret_keys))
        self.host = host
        self._port = port
        self.secret_key = secret_key or next(iter(keys), None) or str(uuid.uuid4())
        self.access_key = access_key
        self.organization_id = organization_id or str(uuid.uuid4())
        self.project_id = project_id or str(uuid.uuid4())
        self.backend = backend or NullBackend()
        self.store = Store(
            organization_id=self.organization_id,
            project_id=self.project_id,
            secret_keys=keys,
            backend=self.backend,
            config=Config(transition_seconds=transition_seconds, latency=latency, max_sleep=max_sleep),
        )
        self.api = Router()
        for module in (instance, security_group_rules, block, ipam, marketplace):
            module.register(self.api)
        self.control = Router()
        control.register(self.control)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.backend.bind(self)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeScaleway:
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self._port), self)
            self._port = self._httpd.server_address[1]
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fakescw", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = None
            self._thread = None

    def wait(self) -> None:
        """Block until ``stop()`` is called (from another thread or a signal handler)."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(timeout=0.5)

    def __enter__(self) -> FakeScaleway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    def client_kwargs(self, zone: str = "fr-par-2") -> dict[str, str]:
        """Arguments for ``scaleway.Client(**...)`` pointed at this fake."""
        return {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "default_organization_id": self.organization_id,
            "default_project_id": self.project_id,
            "default_zone": zone,
            "default_region": region_of(zone),
            "api_url": self.url,
        }

    def environ(self, zone: str = "fr-par-2") -> dict[str, str]:
        """``SCW_*`` environment variables pointing the SDK (and modules) at this fake."""
        kwargs = self.client_kwargs(zone)
        return {
            "SCW_ACCESS_KEY": kwargs["access_key"],
            "SCW_SECRET_KEY": kwargs["secret_key"],
            "SCW_DEFAULT_ORGANIZATION_ID": kwargs["default_organization_id"],
            "SCW_DEFAULT_PROJECT_ID": kwargs["default_project_id"],
            "SCW_DEFAULT_ZONE": kwargs["default_zone"],
            "SCW_DEFAULT_REGION": kwargs["default_region"],
            "SCW_API_URL": kwargs["api_url"],
        }

    # -------------------------------------------------------------- requests

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        base_url: str | None = None,
        external: bool = True,
    ) -> Response:
        """Answer one request. ``external=False`` (in-process calls) skips auth, latency,
        ``slow``/``http_error``/``ignore_query`` faults and the request log."""
        parts = urlsplit(target)
        req = Request(
            method=method.upper(),
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
            base_url=base_url or self.url,
        )
        sent_query = req.query
        store = self.store
        if req.path.startswith("/_fake/"):
            with store.lock:
                try:
                    handler, params = self.control.match(req.method, req.path)
                    return handler(store, req, **params)
                except ApiError as exc:
                    return _error(exc)
                except Exception as exc:
                    log.exception("fakescw failed on %s %s", req.method, req.path)
                    return Response(500, {"type": "internal_error", "message": f"fakescw bug: {exc!r}"})
        if external:
            self._delay(req)
        with store.lock:
            try:
                if external:
                    self._authenticate(req)
                    failure = store.faults.take("http_error", lambda f: f.matches_request(req.method, req.path))
                    if failure is not None:
                        params = failure.params
                        raise ApiError(
                            params["status"],
                            params.get("error_type") or ("internal_error" if params["status"] >= 500 else "error"),
                            params.get("message") or "injected failure",
                        )
                    ignored = store.faults.take("ignore_query", lambda f: f.matches_request(req.method, req.path))
                    if ignored is not None:
                        # The handler sees the request without those parameters; the log keeps what was sent.
                        names = ignored.params["names"]
                        req = replace(req, query={key: value for key, value in sent_query.items() if key not in names})
                store.settle()
                handler, params = self.api.match(req.method, req.path)
                response = handler(store, req, **params)
            except ApiError as exc:
                response = _error(exc)
            except Exception as exc:
                log.exception("fakescw failed on %s %s", req.method, req.path)
                response = Response(500, {"type": "internal_error", "message": f"fakescw bug: {exc!r}"})
            finally:
                store.set_scope(None)
            if external:
                store.requests.append(
                    {
                        "time": iso(store.now()),
                        "method": req.method,
                        "path": req.path,
                        "query": sent_query,
                        "status": response.status,
                        "body": _logged_body(req.body),
                    }
                )
        return response

    def _delay(self, req: Request) -> None:
        store = self.store
        with store.lock:
            delay = store.config.latency
            slow = store.faults.take("slow", lambda f: f.matches_request(req.method, req.path))
            if slow is not None:
                delay += float(slow.params["seconds"])
            delay = min(delay, store.config.max_sleep)
        if delay > 0:
            time.sleep(delay)

    def _authenticate(self, req: Request) -> None:
        keys = self.store.secret_keys
        if not keys:
            return
        token = req.headers.get("x-auth-token")
        if not token:
            raise ApiError.denied_authentication("invalid_argument")
        if token not in keys:
            raise ApiError.denied_authentication("not_found")
        self.store.set_scope(keys[token])

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """An in-process API call (no HTTP): ``(status, decoded body)``."""
        raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        response = self.handle(method, target, {}, raw, external=False)
        payload = response.body
        return response.status, payload

    def _call_ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.call(method, path, body)
        if status >= 400:
            error = ApiError(status, payload.get("type", "error"), payload.get("message", ""))
            error.body = payload
            raise error
        return payload

    # ---------------------------------------------------------------- seeding

    def create_server(self, zone: str = "fr-par-2", **body: Any) -> dict[str, Any]:
        """Create a server as ``POST /servers`` would (``project`` defaults to ``project_id``)."""
        body.setdefault("project", self.project_id)
        return self._call_ok("POST", f"/instance/v1/zones/{zone}/servers", body)["server"]

    def server_action(self, server_id: str, action: str, zone: str = "fr-par-2") -> dict[str, Any]:
        path = f"/instance/v1/zones/{zone}/servers/{server_id}/action"
        return self._call_ok("POST", path, {"action": action})["task"]

    def get_server(self, server_id: str, zone: str = "fr-par-2") -> dict[str, Any]:
        return self._call_ok("GET", f"/instance/v1/zones/{zone}/servers/{server_id}")["server"]

    # --------------------------------------------------------------- control

    def configure(self, **settings: float) -> dict[str, float]:
        """Change ``transition_seconds``, ``latency`` or ``max_sleep``."""
        with self.store.lock:
            self.store.config.update(settings)
            return asdict(self.store.config)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: pending transitions may complete without sleeping."""
        self.store.advance(seconds)

    def reset(self) -> None:
        self.store.reset()

    def state(self) -> dict[str, Any]:
        """Everything, as ``GET /_fake/state`` answers."""
        return self.store.dump()

    def requests(self, *, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The request log; ``path`` is a regular expression searched in the path."""
        with self.store.lock:
            entries = list(self.store.requests)
        return [
            entry
            for entry in entries
            if (method is None or entry["method"] == method.upper())
            and (path is None or re.search(path, entry["path"]))
        ]

    def clear_requests(self) -> None:
        with self.store.lock:
            self.store.requests.clear()

    def user_data(self, server_id: str) -> dict[str, bytes]:
        with self.store.lock:
            return dict(self.store.user_data.get(server_id, {}))

    def set_availability(self, zone: str, commercial_type: str, availability: str | None) -> None:
        """Override what ``/products/servers/availability`` says (None restores ``available``)."""
        with self.store.lock:
            control.set_availability(self.store, zone, commercial_type, availability)

    # ----------------------------------------------------------------- faults

    def add_fault(self, kind: str, *, count: int | None = None, **params: Any) -> str:
        """Add a fault (see README); returns its id. ``count``: how many times it fires."""
        with self.store.lock:
            return self.store.faults.add(kind, params, count).id

    def out_of_stock(
        self,
        commercial_type: str | None = None,
        zone: str | None = None,
        *,
        on: Iterable[str] = ("create",),
        count: int | None = None,
    ) -> str:
        return self.add_fault("out_of_stock", commercial_type=commercial_type, zone=zone, on=list(on), count=count)

    def quotas_exceeded(
        self,
        commercial_type: str | None = None,
        zone: str | None = None,
        *,
        resource: str | None = None,
        count: int | None = None,
    ) -> str:
        return self.add_fault(
            "quotas_exceeded", commercial_type=commercial_type, zone=zone, resource=resource, count=count
        )

    def http_error(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int = 500,
        error_type: str | None = None,
        message: str | None = None,
        count: int | None = None,
    ) -> str:
        return self.add_fault(
            "http_error",
            path=path,
            method=method,
            status=status,
            error_type=error_type,
            message=message,
            count=count,
        )

    def stuck(
        self,
        *,
        server_id: str | None = None,
        name: str | None = None,
        commercial_type: str | None = None,
        zone: str | None = None,
        action: str | None = None,
        count: int | None = None,
    ) -> str:
        """Transitions started while this fault is live never complete, until it is removed."""
        return self.add_fault(
            "stuck",
            server_id=server_id,
            name=name,
            commercial_type=commercial_type,
            zone=zone,
            action=action,
            count=count,
        )

    def slow(self, path: str, seconds: float, *, method: str | None = None, count: int | None = None) -> str:
        """Delay matching requests by ``seconds`` (bounded by ``max_sleep``)."""
        return self.add_fault("slow", path=path, seconds=seconds, method=method, count=count)

    def ignore_query(
        self, path: str, names: Iterable[str], *, method: str | None = None, count: int | None = None
    ) -> str:
        """Matching requests are answered as if the query parameters ``names`` had not been sent."""
        return self.add_fault("ignore_query", path=path, names=list(names), method=method, count=count)

    def set_quota(self, commercial_type: str, limit: int | None) -> None:
        """Let the organization have at most ``limit`` servers of ``commercial_type`` (None: no quota)."""
        with self.store.lock:
            control.set_quota(self.store, commercial_type, limit)

    def remove_fault(self, fault_id: str) -> None:
        with self.store.lock:
            if not self.store.faults.remove(fault_id):
                raise KeyError(fault_id)
            self.store.settle()

    def clear_faults(self) -> None:
        with self.store.lock:
            self.store.faults.clear()
            self.store.settle()

    def faults(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [fault.to_api() for fault in self.store.faults.all()]
