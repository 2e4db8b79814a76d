# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private helpers shared by the Scaleway modules and the inventory plugin.

Nothing here is a public API of the collection: module and plugin code calls
it, users do not.  It builds a client of the official ``scaleway`` SDK from
options, ``SCW_*`` environment variables and the profile file; maps API errors
to messages that say what to do; waits with a deadline; and turns SDK objects
into the plain dictionaries the modules return.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import re
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    import requests
    import scaleway_core.api as _scw_core_api
    from scaleway import Client
    from scaleway.block.v1 import BlockV1API
    from scaleway.instance.v1.custom_api import InstanceUtilsV1API
    from scaleway.ipam.v1 import IpamV1API
    from scaleway.marketplace.v2 import MarketplaceV2API
    from scaleway_core.api import ScalewayException
    from scaleway_core.profile import Profile
except ImportError:
    HAS_SCALEWAY = False
    SCALEWAY_IMPORT_ERROR: str | None = traceback.format_exc()

    class ScalewayException(Exception):  # type: ignore[no-redef]
        """Stands in for the SDK's exception when the SDK is missing."""

else:
    HAS_SCALEWAY = True
    SCALEWAY_IMPORT_ERROR = None

T = TypeVar("T")

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCESS_KEY_RE = re.compile(r"^SCW[A-Z0-9]{17}$")
ZONE_RE = re.compile(r"^[a-z]{2}-[a-z]{3}-[1-9]$")
DEFAULT_API_URL = "https://api.scaleway.com"

# Tag put on every IP and volume a module creates for an instance, so teardown
# finds them (and only them) even after the instance itself is gone.
OWNER_TAG_PREFIX = "parrotpark.llm/instance="

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

# Hints appended to API errors, keyed by the API's error type.
_ERROR_HINTS = {
    "out_of_stock": (
        "Scaleway has no stock of this server type in this zone right now. List more zones or commercial types "
        "(they are tried in order) or retry later."
    ),
    "quotas_exceeded": (
        "The organization's quota for this resource is used up. Ask Scaleway to raise it (console: Organization, "
        "Quotas). Quotas count over every zone, so another zone will not help; each Instance commercial type has "
        "its own quota, so another type may."
    ),
    "permissions_denied": (
        "The API key is not allowed to do this. Give the key's IAM application a policy with InstancesFullAccess, "
        "BlockStorageFullAccess, IPAMReadOnly and PrivateNetworksReadOnly in this project."
    ),
    "denied_authentication": (
        "The secret key was refused. Check secret_key (or SCW_SECRET_KEY, or the profile file) and that the key "
        "has not expired."
    ),
    "not_found": "The resource does not exist (any more) in this zone and project.",
    "transient_state": "The resource is changing state; run again once the change has finished.",
    "invalid_arguments": "The API rejected a value; see the fields above.",
}


class ScalewayError(Exception):
    """An error with a message fit for the user, its kind (the API's error type, or one of ours) and details."""

    default_kind: str | None = None

    def __init__(
        self,
        message: str,
        kind: str | None = None,
        status: int | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind or self.default_kind
        self.status = status
        self.details = details or []


class ScalewayConfigError(ScalewayError):
    """Credentials or settings are missing or malformed."""

    default_kind = "config"


class ScalewayInputError(ScalewayError):
    """An option's value is refused; the message names the option."""

    default_kind = "invalid_input"


class ScalewayTimeout(ScalewayError):
    """A wait reached its deadline."""

    default_kind = "timeout"


# --------------------------------------------------------------------------
# Options shared by every module (documented in doc_fragments/scaleway.py)
# --------------------------------------------------------------------------


def scaleway_argument_spec() -> dict[str, Any]:
    """Connection options of every Scaleway module, with the SDK's own environment variables."""
    return {
        "access_key": {"type": "str", "no_log": False, "fallback": (env_fallback, ["SCW_ACCESS_KEY"])},
        "secret_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["SCW_SECRET_KEY"])},
        "project_id": {"type": "str", "fallback": (env_fallback, ["SCW_DEFAULT_PROJECT_ID"])},
        "organization_id": {"type": "str", "fallback": (env_fallback, ["SCW_DEFAULT_ORGANIZATION_ID"])},
        "api_url": {"type": "str", "fallback": (env_fallback, ["SCW_API_URL"])},
        "profile": {"type": "str", "fallback": (env_fallback, ["SCW_PROFILE"])},
        "config_file": {"type": "path", "fallback": (env_fallback, ["SCW_CONFIG_PATH"])},
        "api_timeout": {"type": "int", "default": 30},
        "api_retries": {"type": "int", "default": 3},
    }


def default_config_file() -> str:
    """The SDK's profile file location: $XDG_CONFIG_HOME/scw/config.yaml or ~/.config/scw/config.yaml."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = os.path.join(xdg, "scw") if xdg else os.path.join(os.path.expanduser("~"), ".config", "scw")
    return os.path.join(base, "config.yaml")


def resolve_settings(params: dict[str, Any], zone: str | None = None) -> dict[str, Any]:
    """Merge options (environment already folded in by env_fallback) with the profile file.

    Precedence: option, then ``SCW_*`` environment variable, then the profile
    file. The file is optional unless ``profile`` or ``config_file`` is set.
    Returns the settings, validated; raises ScalewayConfigError naming the
    option otherwise. Never puts a secret into a message.
    """
    settings = {
        "access_key": params.get("access_key"),
        "secret_key": params.get("secret_key"),
        "project_id": params.get("project_id"),
        "organization_id": params.get("organization_id"),
        "api_url": params.get("api_url"),
        "zone": zone or os.environ.get("SCW_DEFAULT_ZONE"),
        "region": os.environ.get("SCW_DEFAULT_REGION"),
    }
    profile_name = params.get("profile")
    config_file = params.get("config_file")
    path = config_file or default_config_file()
    source = "options and environment"
    if any(value is None for value in settings.values()):
        if os.path.exists(path):
            profile = _read_profile(path, profile_name or "default")
            fallback = {
                "access_key": profile.access_key,
                "secret_key": profile.secret_key,
                "project_id": profile.default_project_id,
                "organization_id": profile.default_organization_id,
                "api_url": profile.api_url if profile.api_url != DEFAULT_API_URL else None,
                "zone": profile.default_zone,
                "region": profile.default_region,
            }
            for key, value in fallback.items():
                if settings[key] is None and value:
                    settings[key] = value
            source = f"options, environment and profile {profile_name or 'default'!r} of {path}"
        elif profile_name or config_file:
            raise ScalewayConfigError(
                f"config_file: the Scaleway profile file {path} does not exist "
                f"(needed because profile or config_file is set)."
            )
    settings["api_url"] = (settings["api_url"] or DEFAULT_API_URL).rstrip("/")
    _validate_settings(settings, source)
    return settings


def _read_profile(path: str, name: str) -> Any:
    try:
        return Profile.from_config_file(path, name)
    except (OSError, ValueError) as exc:
        raise ScalewayConfigError(f"profile: cannot use profile {name!r} of {path}: {exc}") from None


def _validate_settings(settings: dict[str, Any], source: str) -> None:
    if not settings["access_key"] or not settings["secret_key"]:
        raise ScalewayConfigError(
            "access_key and secret_key are required: set the options, the environment variables SCW_ACCESS_KEY "
            f"and SCW_SECRET_KEY, or a profile in {default_config_file()} (looked at: {source})."
        )
    if not ACCESS_KEY_RE.match(settings["access_key"]):
        raise ScalewayConfigError("access_key must be SCW followed by 17 upper-case letters or digits.")
    if not UUID_RE.match(settings["secret_key"]):
        raise ScalewayConfigError("secret_key must be a UUID (xxxxxxxx-xxxx-...); its value is not shown.")
    for key in ("project_id", "organization_id"):
        if settings[key] and not UUID_RE.match(settings[key]):
            raise ScalewayConfigError(f"{key} must be a UUID, got {settings[key]!r}.")
    if settings["zone"] and not ZONE_RE.match(settings["zone"]):
        raise ScalewayConfigError(f"zone must look like fr-par-2, got {settings['zone']!r}.")
    if not re.match(r"^https?://[^/\s]+", settings["api_url"]):
        raise ScalewayConfigError(f"api_url must be an http(s) URL, not {settings['api_url']!r}.")


def region_of(zone: str) -> str:
    """fr-par-2 -> fr-par."""
    return zone.rsplit("-", 1)[0]


# --------------------------------------------------------------------------
# The client and its transport
# --------------------------------------------------------------------------


class _BoundedRequests:
    """Stands in for the ``requests`` module inside the SDK: adds a timeout and retries.

    The SDK calls ``requests.request`` with no timeout, so a hung API would hang
    the module for ever. Idempotent requests are retried on connection errors
    and 5xx answers; every request is retried on 429. Creation (POST) is never
    repeated after a 5xx, because the first attempt may have succeeded.
    """

    def __init__(self) -> None:
        self.timeout = 30.0
        self.retries = 3
        self.backoff = 0.5

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        idempotent = method.upper() in _IDEMPOTENT_METHODS
        attempt = 0
        while True:
            failure = None
            try:
                response = requests.request(method, url, **kwargs)
            except requests.Timeout:  # before ConnectionError: a connect timeout is both
                failure = f"no answer from the Scaleway API at {_origin_of(url)} within {self.timeout:g}s"
            except requests.ConnectionError as exc:
                if _refused(exc):
                    failure = f"connection refused by {_origin_of(url)} (nothing listens there)"
                else:
                    failure = f"no answer from the Scaleway API at {_origin_of(url)} ({type(exc).__name__})"
            else:
                retry = response.status_code == 429 or (idempotent and response.status_code in _RETRY_STATUS)
                if not retry or attempt >= self.retries:
                    return response
            if failure and (not idempotent or attempt >= self.retries):
                raise ScalewayError(
                    f"{method} {_path_of(url)}: {failure} after {attempt + 1} attempt(s). "
                    "Check api_url and the network.",
                    kind="transport",
                )
            time.sleep(self.backoff * (2**attempt))
            attempt += 1


def _path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?", 1)[0]


def _origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, without any user name or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _refused(exc: BaseException) -> bool:
    """Whether a connection error was a refused connection (ECONNREFUSED somewhere in its chain)."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return False


_TRANSPORT = _BoundedRequests()


class ScalewayClient:
    """The SDK client plus the API objects the collection uses."""

    def __init__(self, settings: dict[str, Any], timeout: float = 30, retries: int = 3) -> None:
        if not HAS_SCALEWAY:
            raise ScalewayConfigError(
                "The scaleway Python SDK is not installed (pip install scaleway).", kind="missing_sdk"
            )
        _TRANSPORT.timeout = float(timeout)
        _TRANSPORT.retries = max(0, int(retries))
        _scw_core_api.requests = _TRANSPORT
        self.settings = settings
        self.project_id: str | None = settings["project_id"]
        self.organization_id: str | None = settings["organization_id"]
        self.default_zone: str | None = settings["zone"]
        self.client = Client(
            access_key=settings["access_key"],
            secret_key=settings["secret_key"],
            api_url=settings["api_url"],
            default_project_id=settings["project_id"],
            default_organization_id=settings["organization_id"],
            default_zone=settings["zone"],
            default_region=settings["region"] or (region_of(settings["zone"]) if settings["zone"] else None),
        )
        self.client.user_agent = f"parrotpark.llm {self.client.user_agent}"
        self.instance = InstanceUtilsV1API(self.client)
        self.block = BlockV1API(self.client)
        self.ipam = IpamV1API(self.client)
        self.marketplace = MarketplaceV2API(self.client)

    def call(self, what: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call an SDK function; turn its exceptions into ScalewayError with a useful message."""
        try:
            return func(*args, **kwargs)
        except ScalewayException as exc:
            raise api_error(exc, what) from None

    def call_unless_gone(self, what: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Like call(), but a resource that does not exist (any more) gives None instead of an error."""
        try:
            return self.call(what, func, *args, **kwargs)
        except ScalewayError as error:
            if error.status == 404 or error.kind == "not_found":
                return None
            raise

    def detach_ip(self, zone: str, ip_id: str) -> dict[str, Any]:
        """Detach a flexible IP from its server: PATCH with an explicit ``"server": null``.

        The SDK's ``update_ip(server=None)`` drops the None field and sends ``{}``, which changes nothing;
        this sends the raw request through the SDK's own client (same auth, transport and errors).
        """
        if not ZONE_RE.match(zone) or not UUID_RE.match(ip_id):
            raise ScalewayError(f"detaching IP {ip_id!r} in {zone!r}: not a zone and an IP ID.")
        api = self.instance
        response = api._request("PATCH", f"/instance/v1/zones/{zone}/ips/{ip_id}", body={"server": None})
        api._throw_on_error(response)
        return response.json()

    def private_addresses(self, server: dict[str, Any]) -> dict[str, list[str]]:
        """IPv4 addresses (no prefix length) of each private NIC of a server, from IPAM."""
        result: dict[str, list[str]] = {}
        nics = server.get("private_nics") or []
        if not nics:
            return result
        region = region_of(server["zone"])
        for nic in nics:
            ips = self.call(
                f"listing IPAM addresses of private NIC {nic['id']}",
                self.ipam.list_i_ps_all,
                region=region,
                resource_id=nic["id"],
                resource_type="instance_private_nic",
                is_ipv6=False,
            )
            result[nic["id"]] = [str(ip.address).split("/", 1)[0] for ip in ips]
        return result


def api_error(exc: Exception, what: str) -> ScalewayError:
    """Map an SDK exception to a ScalewayError that names the failure and what to do about it."""
    status = getattr(exc, "status_code", None)
    body: dict[str, Any] = {}
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            parsed = response.json()
        except ValueError:
            parsed = {"message": (response.text or "")[:300]}
        if isinstance(parsed, dict):
            body = parsed
    kind = body.get("type")
    if status == 401 and not kind:
        kind = "denied_authentication"
    message = body.get("message") or f"HTTP {status}"
    fields = body.get("fields") or getattr(exc, "errors", None)
    details = [entry for entry in body.get("details") or [] if isinstance(entry, dict)]
    extra = f" Fields: {fields}." if fields else ""
    if kind == "quotas_exceeded" and details:
        extra += f" Quotas: {quota_summary(details)}."
    hint = _ERROR_HINTS.get(kind or "", "")
    text = f"{what} failed: {message} ({kind or 'error'}, HTTP {status}).{extra}"
    if hint:
        text = f"{text} {hint}"
    return ScalewayError(text, kind=kind or "api_error", status=status, details=details)


def error_hint(kind: str) -> str:
    """What to do about an API error of this kind ("" when there is no advice)."""
    return _ERROR_HINTS.get(kind, "")


def quota_summary(details: list[dict[str, Any]]) -> str:
    """The quotas a quotas_exceeded error names, as ``resource (current/quota)``."""
    return ", ".join(
        f"{entry.get('resource') or 'unnamed quota'} ({entry.get('current', '?')}/{entry.get('quota', '?')})"
        for entry in details
    )


# --------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------


def wait_until(
    fetch: Callable[[], T],
    ready: Callable[[T], bool],
    *,
    what: str,
    timeout: float,
    interval: float = 2.0,
    describe: Callable[[T], str] = repr,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Poll ``fetch`` until ``ready`` holds or the deadline passes; raise ScalewayTimeout with the last state."""
    deadline = clock() + max(0.0, timeout)
    while True:
        value = fetch()
        if ready(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise ScalewayTimeout(
                f"Timed out after {timeout:g}s waiting for {what}; last seen: {describe(value)}.", kind="timeout"
            )
        sleep(min(interval, remaining))


# --------------------------------------------------------------------------
# Plain data
# --------------------------------------------------------------------------


def to_plain(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """SDK dataclasses, enums and datetimes to JSON-ready dicts, lists and strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def public_addresses(server: dict[str, Any]) -> tuple[str | None, str | None]:
    """First public IPv4 and IPv6 of a server (routed IPs in ``public_ips``; the old ``public_ip`` as fallback)."""
    ipv4 = ipv6 = None
    entries = list(server.get("public_ips") or [])
    if server.get("public_ip"):
        entries.append(server["public_ip"])
    for entry in entries:
        address = entry.get("address")
        if not address:
            continue
        if ":" in address:
            ipv6 = ipv6 or address
        else:
            ipv4 = ipv4 or address
    return ipv4, ipv6


def owned_by(tags: list[str] | None, name: str) -> bool:
    return f"{OWNER_TAG_PREFIX}{name}" in (tags or [])


def summarize_server(server: dict[str, Any], private: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The stable, flat description of a server that modules return and the inventory exposes."""
    private = private or {}
    ipv4, ipv6 = public_addresses(server)
    nics = []
    for nic in server.get("private_nics") or []:
        addresses = private.get(nic["id"], [])
        nics.append(
            {
                "id": nic["id"],
                "private_network_id": nic.get("private_network_id"),
                "mac_address": nic.get("mac_address"),
                "state": nic.get("state"),
                "private_ip": addresses[0] if addresses else None,
            }
        )
    volumes = []
    for index, volume in sorted((server.get("volumes") or {}).items(), key=lambda item: int(item[0])):
        volumes.append(
            {
                "index": int(index),
                "id": volume.get("id"),
                "volume_type": volume.get("volume_type"),
                "size": volume.get("size"),
            }
        )
    image = server.get("image") or {}
    security_group = server.get("security_group") or {}
    return {
        "id": server["id"],
        "name": server["name"],
        "zone": server.get("zone"),
        "project": server.get("project"),
        "organization": server.get("organization"),
        "commercial_type": server.get("commercial_type"),
        "arch": server.get("arch"),
        "state": server.get("state"),
        "tags": list(server.get("tags") or []),
        "image_id": image.get("id"),
        "image_name": image.get("name"),
        "public_ip": ipv4,
        "public_ipv6": ipv6,
        "public_ips": [
            {"id": entry.get("id"), "address": entry.get("address"), "dynamic": bool(entry.get("dynamic"))}
            for entry in server.get("public_ips") or []
        ],
        "private_ip": next((nic["private_ip"] for nic in nics if nic["private_ip"]), None),
        "private_nics": nics,
        "volumes": volumes,
        "security_group_id": security_group.get("id"),
        "security_group_name": security_group.get("name"),
        "creation_date": server.get("creation_date"),
        "allowed_actions": list(server.get("allowed_actions") or []),
    }


# --------------------------------------------------------------------------
# Module glue
# --------------------------------------------------------------------------


class _KindedModule(AnsibleModule):
    """AnsibleModule whose failures always carry ``error_kind``; its own argument checks are invalid_input."""

    def fail_json(self, msg: str, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("error_kind", "invalid_input")
        super().fail_json(msg, **kwargs)


def check_connection_options(params: dict[str, Any]) -> None:
    """Semantic checks of the shared connection options; raise ScalewayInputError naming the option."""
    if params["api_timeout"] <= 0:
        raise ScalewayInputError(f"api_timeout must be a positive number of seconds, got {params['api_timeout']}.")
    if params["api_retries"] < 0:
        raise ScalewayInputError(f"api_retries must be 0 or more, got {params['api_retries']}.")


class ScalewayModule:
    """AnsibleModule plus a lazily built ScalewayClient; failures become fail_json with the message and its kind."""

    def __init__(self, argument_spec: dict[str, Any], **kwargs: Any) -> None:
        spec = scaleway_argument_spec()
        spec.update(argument_spec)
        self.module = _KindedModule(argument_spec=spec, **kwargs)
        if not HAS_SCALEWAY:
            self.module.fail_json(
                msg=missing_required_lib("scaleway"), exception=SCALEWAY_IMPORT_ERROR, error_kind="missing_sdk"
            )
        self.params = self.module.params
        self._client: ScalewayClient | None = None
        try:
            check_connection_options(self.params)
        except ScalewayError as exc:
            self.fail(exc)

    def client(self, zone: str | None = None) -> ScalewayClient:
        if self._client is None:
            try:
                settings = resolve_settings(self.params, zone)
                self._client = ScalewayClient(settings, self.params["api_timeout"], self.params["api_retries"])
            except ScalewayError as exc:
                self.fail(exc)
        return self._client  # type: ignore[return-value]

    def fail(self, error: ScalewayError, **result: Any) -> None:
        self.module.fail_json(msg=error.message, error_kind=error.kind or "error", **result)


# --------------------------------------------------------------------------
# Queries shared by modules and the inventory plugin
# --------------------------------------------------------------------------


def list_servers(
    api: ScalewayClient,
    zone: str,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    project: str | None = None,
    states: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Servers of a zone as plain dicts; ``name`` is compared exactly (the API's filter matches substrings)."""
    servers = api.call(
        f"listing servers in {zone}",
        api.instance.list_servers_all,
        zone=zone,
        project=project,
        name=name or None,
        tags=list(tags) if tags else None,
    )
    result = []
    for server in servers:
        plain = to_plain(server)
        if name is not None and plain.get("name") != name:
            continue
        if tags and not set(tags).issubset(plain.get("tags") or []):
            continue
        if states and plain.get("state") not in states:
            continue
        result.append(plain)
    return result


def _paged_dict(fetch: Callable[[int], Any], attribute: str) -> dict[str, Any]:
    """Collect a dict-shaped paginated answer (server types, availability) until a page adds nothing."""
    collected: dict[str, Any] = {}
    page = 1
    while True:
        answer = fetch(page)
        items = getattr(answer, attribute) or {}
        new = {key: value for key, value in items.items() if key not in collected}
        collected.update(new)
        total = int(getattr(answer, "total_count", 0) or 0)
        if not new or (total and len(collected) >= total):
            return collected
        page += 1


def server_types(api: ScalewayClient, zone: str) -> list[dict[str, Any]]:
    """The zone's server type catalog joined with its availability, as flat dicts sorted by hourly price."""

    def read_all(what: str, func: Callable[..., Any]) -> dict[str, Any]:
        return _paged_dict(lambda page: api.call(what, func, zone=zone, per_page=100, page=page), "servers")

    catalog = read_all(f"reading the server type catalog of {zone}", api.instance.list_servers_types)
    stock = read_all(f"reading server type availability in {zone}", api.instance.get_server_types_availability)
    result = []
    for name, entry in catalog.items():
        plain = to_plain(entry)
        gpu_info = plain.get("gpu_info") or {}
        constraint = plain.get("volumes_constraint") or {}
        availability = stock.get(name)
        result.append(
            {
                "name": name,
                "zone": zone,
                "availability": to_plain(availability.availability) if availability is not None else "unknown",
                "hourly_price": plain.get("hourly_price"),
                "monthly_price": plain.get("monthly_price"),
                "ncpus": plain.get("ncpus"),
                "ram": plain.get("ram"),
                "arch": plain.get("arch"),
                "gpu": plain.get("gpu") or 0,
                "gpu_manufacturer": gpu_info.get("gpu_manufacturer"),
                "gpu_name": gpu_info.get("gpu_name"),
                "gpu_memory": gpu_info.get("gpu_memory"),
                "volumes_min_size": constraint.get("min_size"),
                "volumes_max_size": constraint.get("max_size"),
                "end_of_service": bool(plain.get("end_of_service")),
            }
        )
    result.sort(key=lambda item: (item["hourly_price"] is None, item["hourly_price"] or 0, item["name"]))
    return result


# --------------------------------------------------------------------------
# Zone lists (added for scaleway_instance_info, scaleway_server_type_info and
# the inventory plugin)
# --------------------------------------------------------------------------


def resolve_zones(zones: list[str] | None, default: str | None, option: str = "zone") -> list[str]:
    """The zones asked for, in order and without repeats, or else the default zone.

    Raises ScalewayConfigError naming ``option`` when a zone is malformed or
    when none is given and there is no default (SCW_DEFAULT_ZONE or profile).
    """
    result: list[str] = []
    for zone in zones or []:
        if not ZONE_RE.match(zone or ""):
            raise ScalewayConfigError(f"{option}: each zone must look like fr-par-2, got {zone!r}.")
        if zone not in result:
            result.append(zone)
    if result:
        return result
    if default:
        return [default]
    raise ScalewayConfigError(
        f"{option}: no zone given and no default zone found; set {option}, the environment variable "
        "SCW_DEFAULT_ZONE or default_zone in the Scaleway profile file."
    )
