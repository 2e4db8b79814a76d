# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The default output, with each host's errors and warnings shown as a run of that host alone shows them.

ansible-core shows an error or warning text only the first time in a run: when
several hosts fail with the same message, the ``[ERROR]:`` line (the message
unquoted, unfolded) comes only before the first host's ``fatal:`` line. The
tests that run many cases in one run, a host each (tests/integration/ansible_run.py,
``run_role_checks``), read each host's lines as the output of a run of its own,
so this callback keeps the record of texts already shown per host.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule

DOCUMENTATION = """
name: per_host_default
type: stdout
short_description: default output, errors and warnings shown once per host instead of once per run
description:
  - The default callback, except that an error or warning text is shown again for each host it is about.
extends_documentation_fragment:
  - default_callback
  - result_format_callback
"""


class CallbackModule(DefaultCallbackModule):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "per_host_default"

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, tuple[set[str], set[str], set[str]]] = {}

    def _handle_warnings_and_exception(self, result: Any) -> None:
        # The display's records of the texts it has shown (ansible-core 2.19), swapped for the host's own.
        shown = self._shown.setdefault(result.host.get_name(), (set(), set(), set()))
        display = self._display
        saved = display._deprecations, display._warns, display._errors
        display._deprecations, display._warns, display._errors = shown
        try:
            super()._handle_warnings_and_exception(result)
        finally:
            display._deprecations, display._warns, display._errors = saved
