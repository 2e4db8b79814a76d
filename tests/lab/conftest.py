"""The lab's names resolve to its published port for every test of the lab."""

import socket

import pytest
from lab_support import DOMAIN, HTTPS_PORT

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
