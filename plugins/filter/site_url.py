# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: site_url
short_description: The public HTTPS URL of one of the entrance's sites, with the port when it is not 443
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - C(https://SITE.DOMAIN), followed by C(:PORT) when O(port) is not 443. The entrance's sites are C(chat), C(api)
    and C(auth) under the stack's domain (C(parrotpark_domain)); their port is C(parrotpark_https_port), 443 in
    production and the lab's published port in the lab (8443 by default).
  - The keycloak and librechat roles build their public URLs with it (C(keycloak_hostname),
    C(keycloak_librechat_redirect_uris), C(librechat_public_url), C(librechat_openid_issuer)), so that a browser
    that reached the entrance on another port is sent back to that port.
positional: site, port
options:
  _input:
    description:
      - The domain, such as V(example.org). Any string is accepted (an empty one gives C(https://SITE.)); the role
        whose URL it is checks the result and names its variable.
    type: str
    required: true
  site:
    description: The site's first label, such as V(chat), V(api) or V(auth) (empty - the domain itself).
    type: str
    required: true
  port:
    description: The HTTPS port clients use, from 1 to 65535 (an integer or a string of one).
    type: int
    default: 443
"""

EXAMPLES = r"""
- name: LibreChat's public URL in production
  ansible.builtin.debug:
    msg: "{{ 'example.org' | parrotpark.llm.site_url('chat') }}"
  # https://chat.example.org

- name: Keycloak's public URL in the lab, whose entrance is published on 8443
  ansible.builtin.debug:
    msg: "{{ 'lab.parrotpark.test' | parrotpark.llm.site_url('auth', 8443) }}"
  # https://auth.lab.parrotpark.test:8443
"""

RETURN = r"""
_value:
  description: The URL, without a trailing slash.
  type: str
"""

import re  # noqa: E402 (the documentation comes first)
from typing import Any  # noqa: E402

from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import fail, jinja_integer  # noqa: E402

FILTER = "site_url"
LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def site_url(domain: str, site: str, port: Any = 443) -> str:
    """https://<site>.<domain>[:<port>]; see DOCUMENTATION."""
    # The domain is a string; whether it is a valid name is for the role that owns the URL to say (its
    # preflight names the variable), so an empty domain still gives a URL here.
    if not isinstance(domain, str):
        raise fail(FILTER, "the input (the domain)", "a domain name such as example.org", domain)
    if not isinstance(site, str) or (site and not LABEL.match(site)):
        raise fail(FILTER, "site", "one label of a host name, such as chat (or empty)", site)
    if isinstance(port, bool):
        raise fail(FILTER, "port", "a port from 1 to 65535", port)
    number = jinja_integer(FILTER, "port", port)
    if not 1 <= number <= 65535:
        raise fail(FILTER, "port", "a port from 1 to 65535", port)
    host = f"{site}.{domain}" if site else domain
    return f"https://{host}" if number == 443 else f"https://{host}:{number}"


class FilterModule:
    """The site_url filter."""

    def filters(self) -> dict[str, Any]:
        return {"site_url": site_url}
