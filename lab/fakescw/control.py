"""The control API under ``/_fake/`` (not part of the Scaleway API)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .catalog import SERVER_TYPES, ZONES
from .errors import ApiError
from .routing import Request, Response, Router
from .store import Store

AVAILABILITIES = ("available", "scarce", "shortage")


def health(store: Store, req: Request) -> Response:
    return Response(200, {"ok": True})


def get_state(store: Store, req: Request) -> Response:
    return Response(200, store.dump())


def reset(store: Store, req: Request) -> Response:
    store.reset()
    return Response(204)


def get_config(store: Store, req: Request) -> Response:
    return Response(200, asdict(store.config))


def put_config(store: Store, req: Request) -> Response:
    store.config.update(req.json())
    return Response(200, asdict(store.config))


def advance(store: Store, req: Request) -> Response:
    seconds = req.json().get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ApiError.invalid_arguments({"seconds": "must be a non-negative number"})
    store.advance(float(seconds))
    return Response(200, {"clock_offset": store.clock_offset})


def list_faults(store: Store, req: Request) -> Response:
    return Response(200, {"faults": [fault.to_api() for fault in store.faults.all()]})


def add_fault(store: Store, req: Request) -> Response:
    body = dict(req.json())
    kind = body.pop("kind", None)
    count = body.pop("count", None)
    fault = store.faults.add(str(kind), body, count)
    return Response(201, {"fault": fault.to_api()})


def delete_fault(store: Store, req: Request, fault_id: str) -> Response:
    if not store.faults.remove(fault_id):
        raise ApiError.not_found("fault", fault_id)
    return Response(204)


def clear_faults(store: Store, req: Request) -> Response:
    store.faults.clear()
    return Response(204)


def set_availability(store: Store, zone: str, commercial_type: str, availability: str | None) -> None:
    if zone not in ZONES:
        raise ApiError.invalid_arguments({"zone": f"one of {', '.join(ZONES)}"})
    if commercial_type not in SERVER_TYPES or zone not in SERVER_TYPES[commercial_type].zones:
        raise ApiError.invalid_arguments({"commercial_type": f"{commercial_type!r} is not offered in {zone}"})
    if availability is None:
        store.availability.pop((zone, commercial_type), None)
    elif availability in AVAILABILITIES:
        store.availability[(zone, commercial_type)] = availability
    else:
        raise ApiError.invalid_arguments({"availability": f"one of {', '.join(AVAILABILITIES)}, or null"})


def _availability(store: Store) -> list[dict[str, Any]]:
    return [
        {"zone": zone, "commercial_type": ctype, "availability": value}
        for (zone, ctype), value in sorted(store.availability.items())
    ]


def get_availability(store: Store, req: Request) -> Response:
    return Response(200, {"availability": _availability(store)})


def put_availability(store: Store, req: Request) -> Response:
    body = req.json()
    items = body.get("items", [body])
    if not isinstance(items, list):
        raise ApiError.invalid_arguments({"items": "must be a list"})
    for item in items:
        if not isinstance(item, dict):
            raise ApiError.invalid_arguments({"items": "must be a list of objects"})
        set_availability(store, str(item.get("zone")), str(item.get("commercial_type")), item.get("availability"))
    return Response(200, {"availability": _availability(store)})


def set_quota(store: Store, commercial_type: str, limit: Any) -> None:
    if commercial_type not in SERVER_TYPES:
        raise ApiError.invalid_arguments({"commercial_type": f"{commercial_type!r} is not a server type of fakescw"})
    if limit is None:
        store.quotas.pop(commercial_type, None)
    elif isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        store.quotas[commercial_type] = limit
    else:
        raise ApiError.invalid_arguments({"limit": "a number of servers (0 or more), or null for no quota"})


def get_quotas(store: Store, req: Request) -> Response:
    return Response(200, {"quotas": dict(sorted(store.quotas.items()))})


def put_quotas(store: Store, req: Request) -> Response:
    body = req.json()
    set_quota(store, str(body.get("commercial_type")), body.get("limit"))
    return get_quotas(store, req)


def get_requests(store: Store, req: Request) -> Response:
    return Response(200, {"requests": list(store.requests)})


def clear_requests(store: Store, req: Request) -> Response:
    store.requests.clear()
    return Response(204)


def register(router: Router) -> None:
    router.add("GET", "/_fake/health", health)
    router.add("GET", "/_fake/state", get_state)
    router.add("POST", "/_fake/reset", reset)
    router.add("GET", "/_fake/config", get_config)
    router.add("PUT", "/_fake/config", put_config)
    router.add("POST", "/_fake/advance", advance)
    router.add("GET", "/_fake/faults", list_faults)
    router.add("POST", "/_fake/faults", add_fault)
    router.add("DELETE", "/_fake/faults", clear_faults)
    router.add("DELETE", "/_fake/faults/{fault_id}", delete_fault)
    router.add("GET", "/_fake/availability", get_availability)
    router.add("PUT", "/_fake/availability", put_availability)
    router.add("GET", "/_fake/quotas", get_quotas)
    router.add("PUT", "/_fake/quotas", put_quotas)
    router.add("GET", "/_fake/requests", get_requests)
    router.add("DELETE", "/_fake/requests", clear_requests)
