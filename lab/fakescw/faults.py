"""Fault injection: what can go wrong, where, and how many times."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

# kind -> accepted parameters (besides ``count``)
FAULT_KINDS: dict[str, frozenset[str]] = {
    "out_of_stock": frozenset({"commercial_type", "zone", "on"}),
    "quotas_exceeded": frozenset({"commercial_type", "zone", "resource"}),
    "http_error": frozenset({"path", "method", "status", "error_type", "message"}),
    "stuck": frozenset({"server_id", "name", "commercial_type", "zone", "action"}),
    "slow": frozenset({"path", "method", "seconds"}),
    "ignore_query": frozenset({"path", "method", "names"}),
}
STUCK_ACTIONS = frozenset({"poweron", "poweroff", "stop_in_place", "reboot", "terminate"})
OUT_OF_STOCK_MOMENTS = frozenset({"create", "poweron"})


@dataclass
class Fault:
    id: str
    kind: str
    params: dict[str, Any]
    count: int | None
    fired: int = 0

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def to_api(self) -> dict[str, Any]:
        remaining = None if self.count is None else max(self.count - self.fired, 0)
        return {
            "id": self.id,
            "kind": self.kind,
            **self.params,
            "count": self.count,
            "fired": self.fired,
            "remaining": remaining,
        }

    def _scope_ok(self, zone: str | None, commercial_type: str | None) -> bool:
        want_zone = self.params.get("zone")
        want_type = self.params.get("commercial_type")
        return (want_zone is None or want_zone == zone) and (want_type is None or want_type == commercial_type)

    def matches_request(self, method: str, path: str) -> bool:
        method_ok = self.params.get("method") is None or self.params["method"].upper() == method.upper()
        return method_ok and re.search(self.params["path"], path) is not None

    def matches_server(self, server: dict[str, Any], action: str) -> bool:
        params = self.params
        if params.get("action") is not None and params["action"] != action:
            return False
        if params.get("server_id") is not None and params["server_id"] != server["id"]:
            return False
        if params.get("name") is not None and re.search(params["name"], server["name"]) is None:
            return False
        return self._scope_ok(server["zone"], server["commercial_type"])

    def matches_stock(self, zone: str, commercial_type: str, moment: str) -> bool:
        return moment in self.params["on"] and self._scope_ok(zone, commercial_type)

    def matches_quota(self, zone: str, commercial_type: str) -> bool:
        return self._scope_ok(zone, commercial_type)


def _bad(name: str, message: str) -> ApiError:
    return ApiError.invalid_arguments({name: message})


def _validate(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if kind not in FAULT_KINDS:
        raise _bad("kind", f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
    unknown = set(params) - FAULT_KINDS[kind]
    if unknown:
        raise _bad(sorted(unknown)[0], f"not a parameter of a {kind} fault")
    clean = {key: value for key, value in params.items() if value is not None}
    for name in ("path", "name"):
        if name in clean:
            try:
                re.compile(clean[name])
            except (re.error, TypeError) as exc:
                raise _bad(name, f"not a regular expression: {exc}") from exc
    if kind in ("http_error", "slow", "ignore_query") and "path" not in clean:
        raise _bad("path", "required")
    if kind == "out_of_stock":
        moments = clean.get("on", ["create"])
        moments = [moments] if isinstance(moments, str) else list(moments)
        if not moments or not set(moments) <= OUT_OF_STOCK_MOMENTS:
            raise _bad("on", "a list of 'create' and/or 'poweron'")
        clean["on"] = sorted(set(moments))
    if kind == "http_error":
        status = clean.setdefault("status", 500)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise _bad("status", "an HTTP error status (400-599)")
    if kind == "slow":
        seconds = clean.get("seconds")
        if not isinstance(seconds, int | float) or seconds <= 0:
            raise _bad("seconds", "a positive number")
    if kind == "ignore_query":
        names = clean.get("names")
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names or not all(isinstance(name, str) and name for name in names):
            raise _bad("names", "a non-empty list of query parameter names")
        clean["names"] = names
    if kind == "stuck" and clean.get("action") is not None and clean["action"] not in STUCK_ACTIONS:
        raise _bad("action", f"one of {', '.join(sorted(STUCK_ACTIONS))}")
    return clean


class FaultBook:
    """The active faults. Not thread-safe by itself: the store's lock guards it."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}

    def add(self, kind: str, params: dict[str, Any], count: int | None = None) -> Fault:
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise _bad("count", "a positive integer, or null for every time")
        fault = Fault(id=str(uuid.uuid4()), kind=kind, params=_validate(kind, dict(params)), count=count)
        self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def exists(self, fault_id: str) -> bool:
        return fault_id in self._faults

    def all(self) -> list[Fault]:
        return list(self._faults.values())

    def take(self, kind: str, predicate: Callable[[Fault], bool]) -> Fault | None:
        """The first live fault of ``kind`` matching ``predicate``, counted as fired."""
        for fault in self._faults.values():
            if fault.kind == kind and not fault.exhausted and predicate(fault):
                fault.fired += 1
                return fault
        return None
