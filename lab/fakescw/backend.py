"""The seam between the fake API and what (if anything) backs its servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import FakeScaleway

# What ``server_power_on`` may return: addresses the fake publishes for the server.
#   {"public_ipv4": "172.18.0.5"}                      -> first IPv4 of public_ips
#   {"private_ipv4": "10.9.0.7"}                       -> the IPAM address of every private NIC
#   {"private_ipv4": {"<private network id>": "10.9.0.7/24"}}  -> per private network
Published = Mapping[str, Any]


class Backend:
    """Hooks the fake calls when servers change; the default does nothing.

    Every hook runs synchronously, inside the request that caused the change and
    under the fake's (re-entrant) state lock, so a hook may call the fake's
    Python API (``self.fake``). A hook that raises :class:`fakescw.ApiError`
    makes that request fail with that error and the change is not applied;
    any other exception becomes a 500 ``internal_error``.

    ``server`` is the server as the API renders it (a copy): ``id``, ``name``,
    ``zone``, ``commercial_type``, ``image``, ``volumes``, ``tags``,
    ``public_ips``, ``private_nics``...
    """

    fake: FakeScaleway | None = None

    def bind(self, fake: FakeScaleway) -> None:
        """Called once by :class:`FakeScaleway` when it is built."""
        self.fake = fake

    def server_created(self, server: dict[str, Any]) -> None:
        """A server was created (state ``stopped``)."""

    def server_power_on(self, server: dict[str, Any]) -> Published | None:
        """A ``poweron`` was accepted: the server is ``starting``.

        Return addresses to publish while the server is up (see ``Published``).
        """
        return None

    def server_power_off(self, server: dict[str, Any]) -> None:
        """A ``poweroff``, ``stop_in_place`` or ``terminate`` was accepted."""

    def server_reboot(self, server: dict[str, Any]) -> Published | None:
        """A ``reboot`` was accepted; by default a power off then a power on."""
        self.server_power_off(server)
        return self.server_power_on(server)

    def server_deleted(self, server: dict[str, Any]) -> None:
        """The server is gone (``DELETE``, or the end of a ``terminate``)."""


class NullBackend(Backend):
    """No backing at all: servers only exist in the fake's state."""
