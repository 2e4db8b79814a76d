"""Minimal request/response types, a path router and list helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from .catalog import REGIONS, ZONES
from .errors import ApiError

if TYPE_CHECKING:
    from .store import Store

T = TypeVar("T")
TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    base_url: str = "http://127.0.0.1"
    _json: Any = field(default=None, repr=False)

    def json(self) -> dict[str, Any]:
        """The JSON object of the body; an empty body is ``{}``."""
        if self._json is None:
            text = self.body.decode("utf-8", errors="replace").strip()
            try:
                data = json.loads(text) if text else {}
            except ValueError as exc:
                raise ApiError(400, "invalid_request_error", f"the body is not valid JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise ApiError(400, "invalid_request_error", "the body must be a JSON object")
            self._json = data
        return self._json

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def q_all(self, name: str) -> list[str]:
        """Every value of a repeated parameter, comma-separated lists split too."""
        return [part for value in self.query.get(name, []) for part in value.split(",") if part]

    def q_bool(self, name: str) -> bool | None:
        value = self.q(name)
        if value is None or value == "":
            return None
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise ApiError.invalid_arguments({name: "must be a boolean"}, reason="format")

    def q_int(self, name: str, default: int) -> int:
        value = self.q(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise ApiError.invalid_arguments({name: "must be an integer"}, reason="format") from exc


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list: JSON; str/bytes: sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


Handler = Callable[..., Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{regex}/?$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if found and route_method == method.upper():
                return handler, {key: unquote(value) for key, value in found.groupdict().items()}
        raise ApiError.not_implemented(method, path)


def check_zone(zone: str) -> str:
    if zone not in ZONES:
        raise ApiError(404, "not_found", f"unknown zone {zone!r}", resource="zone", resource_id=zone)
    return zone


def check_region(region: str) -> str:
    if region not in REGIONS:
        raise ApiError(404, "not_found", f"unknown region {region!r}", resource="region", resource_id=region)
    return region


def paginate(
    req: Request,
    items: Sequence[T],
    *,
    size_param: str = "per_page",
    default_size: int = 50,
    max_size: int = 100,
) -> list[T]:
    """One page of ``items``; pages past the end are empty, as the real API answers."""
    page = req.q_int("page", 1)
    size = req.q_int(size_param, default_size)
    if page < 1:
        raise ApiError.invalid_arguments({"page": "must be greater than or equal to 1"})
    if not 1 <= size <= max_size:
        raise ApiError.invalid_arguments({size_param: f"must be between 1 and {max_size}"})
    start = (page - 1) * size
    return list(items[start : start + size])


def instance_list(req: Request, key: str, items: Sequence[dict[str, Any]]) -> Response:
    """An Instance API list: the page under ``key`` and the total in ``x-total-count``."""
    return Response(200, {key: paginate(req, items)}, headers={"x-total-count": str(len(items))})


def counted_list(req: Request, key: str, items: Sequence[dict[str, Any]], max_size: int = 100) -> Response:
    """A Block/IPAM/Marketplace list: ``page_size`` paging and ``total_count`` in the body."""
    page = paginate(req, items, size_param="page_size", max_size=max_size)
    return Response(200, {key: page, "total_count": len(items)})


def tags_match_all(wanted: Iterable[str], tags: Iterable[str]) -> bool:
    return set(wanted) <= set(tags)


def owned_by(req: Request, store: Store, project: str, organization: str, *, suffix: str = "") -> bool:
    """The project/organization filters every list call carries (``project``/``project_id``...)."""
    want_project = req.q("project" + suffix)
    want_organization = req.q("organization" + suffix)
    return (
        store.can_access(project)
        and (not want_project or want_project == project)
        and (not want_organization or want_organization == organization)
    )
