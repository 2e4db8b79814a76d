# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every Scaleway module of parrotpark.llm.
    DOCUMENTATION = r"""
options:
  access_key:
    description:
      - Scaleway access key (C(SCW) followed by 17 upper-case letters or digits).
      - Resolved in this order, first found wins; the option, the E(SCW_ACCESS_KEY) environment variable,
        the profile file (see O(profile)).
    type: str
  secret_key:
    description:
      - Scaleway secret key (a UUID). Never logged or shown in errors.
      - Falls back to E(SCW_SECRET_KEY), then to the profile file.
    type: str
  project_id:
    description:
      - ID of the Scaleway project the resources belong to.
      - Falls back to E(SCW_DEFAULT_PROJECT_ID), then to C(default_project_id) of the profile file.
    type: str
  organization_id:
    description:
      - ID of the Scaleway organization. Only needed to list across projects.
      - Falls back to E(SCW_DEFAULT_ORGANIZATION_ID), then to the profile file.
    type: str
  api_url:
    description:
      - Base URL of the Scaleway API, without a trailing slash. Point it at a fake of the API for tests.
      - Falls back to E(SCW_API_URL), then to the profile file, then to C(https://api.scaleway.com).
    type: str
  profile:
    description:
      - Name of the profile to read from the Scaleway configuration file for anything not given
        as an option or an environment variable.
      - Falls back to E(SCW_PROFILE), then C(default). The file is optional unless O(profile)
        or O(config_file) is set.
    type: str
  config_file:
    description:
      - Path of the Scaleway configuration file.
      - Falls back to E(SCW_CONFIG_PATH), then C($XDG_CONFIG_HOME/scw/config.yaml) or C(~/.config/scw/config.yaml).
    type: path
  api_timeout:
    description:
      - Seconds to wait for each answer of the API.
    type: int
    default: 30
  api_retries:
    description:
      - How often to retry a request that failed with a connection error or a 5xx answer.
      - Only idempotent requests (read, update, delete) are retried after a 5xx; creations never are.
        Rate-limited requests (HTTP 429) are always retried.
    type: int
    default: 3
requirements:
  - scaleway >= 2.12 (the official Scaleway Python SDK)
notes:
  - The default zone comes from E(SCW_DEFAULT_ZONE) or the profile file when a module's O(zone) is not given.
"""

    # attributes.action_group of every Scaleway module.
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/parrotpark.llm.scaleway) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - parrotpark.llm.scaleway
"""

    # The remaining attributes of a read-only (_info) module.
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it behaves the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""
