"""The shared Scaleway helpers: settings precedence, error messages, waits, transport, plain data."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.parrotpark.llm.plugins.module_utils import _scaleway as scw  # noqa: E402

ACCESS = "SCWABCDEFGHIJ0123456"
SECRET = str(uuid.UUID(int=7))
PROJECT = str(uuid.UUID(int=8))

PROFILE = f"""
access_key: SCWFILEFILEFILEFILE1
secret_key: {uuid.UUID(int=9)}
default_project_id: {uuid.UUID(int=10)}
default_zone: nl-ams-1
profiles:
  lab:
    access_key: SCWLABLABLABLABLABL1
    api_url: http://127.0.0.1:8383/
"""


def params(**overrides: object) -> dict[str, object]:
    base = dict.fromkeys(("access_key", "secret_key", "project_id", "organization_id", "api_url", "profile"))
    base.update(config_file=None, api_timeout=30, api_retries=3)
    base.update(overrides)
    return base


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SCW_DEFAULT_ZONE", "SCW_DEFAULT_REGION", "SCW_CONFIG_PATH", "SCW_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_options_win_and_no_file_is_fine() -> None:
    settings = scw.resolve_settings(params(access_key=ACCESS, secret_key=SECRET, project_id=PROJECT), "fr-par-2")
    assert settings["access_key"] == ACCESS
    assert settings["zone"] == "fr-par-2"
    assert settings["api_url"] == "https://api.scaleway.com"


def test_profile_file_fills_only_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(PROFILE)
    settings = scw.resolve_settings(params(secret_key=SECRET, config_file=str(config), profile="lab"))
    assert settings["access_key"] == "SCWLABLABLABLABLABL1"  # the named profile overrides the file's top level
    assert settings["secret_key"] == SECRET  # the option wins over the file
    assert settings["project_id"] == str(uuid.UUID(int=10))
    assert settings["zone"] == "nl-ams-1"
    assert settings["api_url"] == "http://127.0.0.1:8383"  # trailing slash dropped


def test_missing_profile_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(PROFILE)
    with pytest.raises(scw.ScalewayConfigError, match="profile 'nope'"):
        scw.resolve_settings(params(config_file=str(config), profile="nope"))


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(scw.ScalewayConfigError, match=r"config_file: .* does not exist"):
        scw.resolve_settings(params(config_file=str(tmp_path / "absent.yaml")))


def test_missing_credentials_name_the_options() -> None:
    with pytest.raises(scw.ScalewayConfigError, match=r"access_key and secret_key are required.*SCW_SECRET_KEY"):
        scw.resolve_settings(params(access_key=ACCESS))


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"access_key": "scw-lower"}, "access_key must be SCW"),
        ({"project_id": "my-project"}, "project_id must be a UUID"),
        ({"api_url": "api.scaleway.com"}, "api_url must be an http"),
    ],
)
def test_malformed_settings_are_named(overrides: dict[str, str], pattern: str) -> None:
    with pytest.raises(scw.ScalewayConfigError, match=pattern):
        scw.resolve_settings(params(**{"access_key": ACCESS, "secret_key": SECRET, **overrides}))


def test_malformed_secret_is_not_echoed() -> None:
    secret = "not-a-uuid-but-very-secret"
    with pytest.raises(scw.ScalewayConfigError) as caught:
        scw.resolve_settings(params(access_key=ACCESS, secret_key=secret))
    assert "secret_key must be a UUID" in caught.value.message
    assert secret not in caught.value.message


def test_bad_zone_is_named() -> None:
    with pytest.raises(scw.ScalewayConfigError, match="zone must look like fr-par-2"):
        scw.resolve_settings(params(access_key=ACCESS, secret_key=SECRET), "paris")


class FakeResponse:
    def __init__(self, status: int, body: object) -> None:
        self.status_code = status
        self._body = body
        self.text = str(body)

    def json(self) -> object:
        if isinstance(self._body, dict):
            return self._body
        raise ValueError("not json")


class FakeSdkError(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__("sdk")
        self.response = FakeResponse(status, body)
        self.status_code = status


@pytest.mark.parametrize(
    ("status", "body", "kind", "fragment"),
    [
        (412, {"type": "out_of_stock", "message": "no stock"}, "out_of_stock", "List more zones or commercial types"),
        (403, {"type": "quotas_exceeded", "message": "quota"}, "quotas_exceeded", "will not help"),
        (403, {"type": "permissions_denied", "message": "denied"}, "permissions_denied", "InstancesFullAccess"),
        (401, {"message": "authentication is denied"}, "denied_authentication", "secret key was refused"),
        (404, {"type": "not_found", "message": "gone"}, "not_found", "does not exist"),
        (409, {"type": "transient_state", "message": "busy"}, "transient_state", "changing state"),
        (400, {"type": "invalid_arguments", "message": "Validation Error", "fields": {"name": ["bad"]}}, None, "name"),
        (502, "<html>bad gateway</html>", None, "HTTP 502"),
    ],
)
def test_api_errors_say_what_to_do(status: int, body: object, kind: str | None, fragment: str) -> None:
    error = scw.api_error(FakeSdkError(status, body), "creating L4-1-24G instance gpu in fr-par-2")
    assert error.message.startswith("creating L4-1-24G instance gpu in fr-par-2 failed:")
    assert fragment in error.message
    if kind:
        assert error.kind == kind
    assert error.status == status


def test_wait_until_returns_when_ready_and_times_out_with_last_state() -> None:
    now = [0.0]
    states = iter(["starting", "starting", "running"])
    result = scw.wait_until(
        lambda: next(states),
        lambda state: state == "running",
        what="x",
        timeout=60,
        interval=5,
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
    )
    assert result == "running"
    assert now[0] == 10

    now[0] = 0.0
    with pytest.raises(scw.ScalewayTimeout, match=r"Timed out after 12s waiting for gpu to run; last seen: 'starting'"):
        scw.wait_until(
            lambda: "starting",
            lambda state: state == "running",
            what="gpu to run",
            timeout=12,
            interval=5,
            sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
            clock=lambda: now[0],
        )
    assert now[0] == 12  # the last sleep is cut to the deadline


def test_transport_retries_idempotent_requests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    answers = {"GET": [503, 503, 200], "POST": [503, 200]}

    def fake_request(method: str, url: str, **kwargs: object) -> SimpleNamespace:
        calls.append(method)
        assert kwargs["timeout"] == 7.0
        return SimpleNamespace(status_code=answers[method].pop(0))

    monkeypatch.setattr(scw.requests, "request", fake_request)
    transport = scw._BoundedRequests()
    transport.timeout, transport.backoff = 7.0, 0
    assert transport.request("GET", "http://x/instance").status_code == 200
    assert transport.request("POST", "http://x/instance").status_code == 503  # a create is never repeated
    assert calls == ["GET", "GET", "GET", "POST"]


def test_transport_names_an_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(method: str, url: str, **kwargs: object) -> None:
        raise scw.requests.ConnectionError("refused")

    monkeypatch.setattr(scw.requests, "request", refuse)
    transport = scw._BoundedRequests()
    transport.retries, transport.backoff = 1, 0
    with pytest.raises(scw.ScalewayError, match=r"GET /instance/v1/servers: no answer .* after 2 attempt\(s\)"):
        transport.request("GET", "http://127.0.0.1:1/instance/v1/servers?page=1")


def test_summary_gives_single_string_addresses() -> None:
    server = {
        "id": "s1",
        "name": "gpu",
        "zone": "fr-par-2",
        "state": "running",
        "public_ip": None,
        "public_ips": [
            {"id": "i6", "address": "2001:bc8::1", "dynamic": False},
            {"id": "i4", "address": "51.15.0.7", "dynamic": False},
        ],
        "private_nics": [{"id": "n1", "private_network_id": "pn", "mac_address": "02:00", "state": "available"}],
        "volumes": {"1": {"id": "v1", "volume_type": "sbs_volume"}, "0": {"id": "v0", "volume_type": "sbs_volume"}},
        "security_group": {"id": "sg", "name": "default"},
    }
    summary = scw.summarize_server(server, {"n1": ["172.16.0.5"]})
    assert summary["public_ip"] == "51.15.0.7"
    assert summary["public_ipv6"] == "2001:bc8::1"
    assert summary["private_ip"] == "172.16.0.5"
    assert [volume["id"] for volume in summary["volumes"]] == ["v0", "v1"]


def test_to_plain_handles_sdk_types() -> None:
    import datetime
    import enum
    from dataclasses import dataclass

    class Color(str, enum.Enum):  # noqa: UP042 - the SDK's enums are built this way
        RED = "red"

    @dataclass
    class Thing:
        when: datetime.datetime
        color: Color
        items: list[bytes]

    plain = scw.to_plain(Thing(datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC), Color.RED, [b"x"]))
    assert plain == {"when": "2026-01-02T00:00:00+00:00", "color": "red", "items": ["x"]}


# ---------------------------------------------------------------------------------------------------------------
# Issue 15 (the instance module's faults): what the shared helpers say and send.
# ---------------------------------------------------------------------------------------------------------------


def test_transport_says_a_refused_connection_was_refused() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    transport = scw._BoundedRequests()
    transport.retries, transport.backoff = 0, 0
    with pytest.raises(scw.ScalewayError) as caught:
        transport.request("GET", f"http://user:pw@127.0.0.1:{port}/instance/v1/zones/fr-par-2/servers?page=1")
    message = caught.value.message
    assert caught.value.kind == "transport"
    assert f"GET /instance/v1/zones/fr-par-2/servers: connection refused by http://127.0.0.1:{port}" in message
    assert "within" not in message
    assert "pw" not in message  # no user information of the URL


def test_transport_timeout_says_how_long_it_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(method: str, url: str, **kwargs: object) -> None:
        raise scw.requests.ConnectTimeout("timed out")

    monkeypatch.setattr(scw.requests, "request", hang)
    transport = scw._BoundedRequests()
    transport.timeout, transport.retries, transport.backoff = 7.0, 0, 0
    with pytest.raises(scw.ScalewayError, match=r"no answer from the Scaleway API at https://api\.x within 7s"):
        transport.request("GET", "https://api.x/instance/v1/servers")


def test_quota_errors_name_the_quotas_and_keep_their_details() -> None:
    details = [{"resource": "instances_l4_1_24g", "quota": 1, "current": 1}]
    body = {"type": "quotas_exceeded", "message": "quota(s) exceeded for this resource", "details": details}
    error = scw.api_error(FakeSdkError(403, body), "creating L4-1-24G instance gpu in fr-par-2")
    assert error.kind == "quotas_exceeded"
    assert error.details == details
    assert "Quotas: instances_l4_1_24g (1/1)." in error.message
    assert "another type may" in error.message


def test_an_api_error_without_a_type_still_has_a_kind() -> None:
    error = scw.api_error(FakeSdkError(502, "<html>bad gateway</html>"), "listing servers")
    assert error.kind == "api_error"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_timeout": 0}, "api_timeout must be a positive number of seconds, got 0."),
        ({"api_timeout": -1}, "api_timeout must be a positive number of seconds, got -1."),
        ({"api_retries": -1}, "api_retries must be 0 or more, got -1."),
    ],
)
def test_connection_options_are_checked(overrides: dict[str, int], message: str) -> None:
    with pytest.raises(scw.ScalewayInputError) as caught:
        scw.check_connection_options(params(**overrides))
    assert caught.value.message == message
    assert caught.value.kind == "invalid_input"
    scw.check_connection_options(params())  # the defaults pass


def test_detach_ip_sends_an_explicit_null(fake_scaleway: object) -> None:
    """The SDK's update_ip(server=None) sends {} (nothing happens); detach_ip sends {"server": null}."""
    settings = scw.resolve_settings(
        params(
            access_key="SCWXXXXXXXXXXXXXXXXX",
            secret_key=fake_scaleway.secret_key,
            project_id=fake_scaleway.project_id,
            organization_id=fake_scaleway.organization_id,
            api_url=fake_scaleway.url,
        ),
        "fr-par-2",
    )
    client = scw.ScalewayClient(settings, timeout=5, retries=0)
    server = fake_scaleway.create_server("fr-par-2", commercial_type="DEV1-S", name="x", image="ubuntu_noble")
    ip = client.instance.create_ip(zone="fr-par-2", type_="routed_ipv4", server=server["id"]).ip
    client.instance.update_ip(ip=ip.id, zone="fr-par-2", server=None)
    assert client.instance.get_ip(ip=ip.id, zone="fr-par-2").ip.server is not None
    answer = client.detach_ip("fr-par-2", ip.id)
    assert answer["ip"]["server"] is None
    assert fake_scaleway.requests(method="PATCH")[-1]["body"] == {"server": None}
    assert client.instance.get_ip(ip=ip.id, zone="fr-par-2").ip.server is None
    with pytest.raises(scw.ScalewayError) as caught:
        client.call("detaching", client.detach_ip, "fr-par-2", str(uuid.UUID(int=1)))
    assert caught.value.kind == "not_found"
