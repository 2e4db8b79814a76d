"""The site_url filter: the public URLs of the entrance's sites, with the port when it is not 443 (issue 16, item 9)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.site_url import FilterModule, site_url  # noqa: E402
from filter_support import filter_doc, render  # noqa: E402


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("example.org", "chat"), "https://chat.example.org"),
        (("example.org", "auth", 443), "https://auth.example.org"),
        (("example.org", "auth", "443"), "https://auth.example.org"),
        (("lab.parrotpark.test", "auth", 8443), "https://auth.lab.parrotpark.test:8443"),
        (("lab.parrotpark.test", "chat", "8443"), "https://chat.lab.parrotpark.test:8443"),
        (("example.org", "", 9443), "https://example.org:9443"),
    ],
)
def test_the_port_is_in_the_url_only_when_it_is_not_443(arguments, expected):
    assert site_url(*arguments) == expected


BAD = {
    "domain not a string": ((None, "chat"), r"site_url: the input \(the domain\) must be a domain name"),
    "site with a dot": (("example.org", "a.b"), r"site_url: site must be one label"),
    "site not a string": (("example.org", 1), r"site_url: site must be"),
    "port zero": (("example.org", "chat", 0), r"site_url: port must be a port from 1 to 65535; got 0"),
    "port too high": (("example.org", "chat", 65536), r"port must be a port from 1 to 65535"),
    "port a word": (("example.org", "chat", "https"), r"site_url: port must be an integer; got 'https'"),
    "port a boolean": (("example.org", "chat", True), r"port must be a port from 1 to 65535; got True"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_the_argument(case):
    arguments, pattern = BAD[case]
    with pytest.raises(AnsibleFilterError, match=pattern):
        site_url(*arguments)


def test_registered_as_a_filter():
    assert FilterModule().filters()["site_url"] is site_url


def test_through_ansible():
    """The filter runs under its collection name, with a port from a variable, and ansible-doc renders it."""
    answer = render("'lab.parrotpark.test' | parrotpark.llm.site_url('auth', port)", {"port": 8443})
    assert answer == "https://auth.lab.parrotpark.test:8443"
    documented = filter_doc("site_url")
    assert set(documented["doc"]["options"]) == {"_input", "site", "port"}
