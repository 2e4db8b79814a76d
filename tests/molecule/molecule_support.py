"""Helpers the molecule verifiers (tests/molecule/<role>/test_*.py) share.

- `resolve`: the role's defaults overlaid with the scenario's variables,
  rendered the way Ansible would (the defaults use `default`, `~`, a few
  filters, the collection's `site_url`, and the password lookup, which reads
  the file the role created);
- `converge` / `recap_changed`: run the scenario's converge playbook again
  with extra variables, and read how many tasks it changed;
- `inspect_container` / `wait_healthy`: a container's `docker inspect` on the
  testinfra host, now or once Docker's own health check has passed (bounded:
  the first check runs one interval after start).

A verifier imports it after putting this directory on sys.path.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.parrotpark.llm.plugins.filter.site_url import site_url  # noqa: E402


def _password_lookup(name: str, path: str, **_ignored: Any) -> str:
    """What ansible.builtin.password returns for a file it created: the file's first word."""
    assert name in ("password", "ansible.builtin.password"), name
    return Path(path).read_text().split()[0]


ENV = jinja2.Environment(undefined=jinja2.ChainableUndefined)
ENV.globals["lookup"] = _password_lookup
ENV.filters["regex_replace"] = lambda value, pattern, replacement: re.sub(pattern, replacement, value)
# The collection's own filter that the keycloak and librechat defaults use for their public URLs.
ENV.filters["parrotpark.llm.site_url"] = site_url


def _templates(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "{{" in value else []
    if isinstance(value, list):
        return [text for item in value for text in _templates(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _templates(item)]
    return []


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{{" in value:
        return ENV.from_string(value).render(**context)
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: _render(item, context) for key, item in value.items()}
    return value


def _refers_to(value: Any) -> set[str]:
    return set().union(*(jinja2.meta.find_undeclared_variables(ENV.parse(text)) for text in _templates(value)))


def resolve(variables: dict[str, Any], prefix: str | tuple[str, ...]) -> dict[str, Any]:
    """Render the variables named prefix* (one prefix or a tuple) the way Ansible would, each after the
    variables it refers to."""
    wanted, todo = set(), [key for key in variables if key.startswith(prefix)]
    while todo:
        key = todo.pop()
        if key not in wanted and key in variables:
            wanted.add(key)
            todo.extend(_refers_to(variables[key]))
    pending = {key: value for key, value in variables.items() if _templates(value) and key in wanted}
    done = {key: value for key, value in variables.items() if key not in pending}
    while pending:
        ready = [key for key, value in pending.items() if not _refers_to(value) & set(pending)]
        assert ready, f"circular templates in {sorted(pending)}"
        for key in ready:
            done[key] = _render(pending.pop(key), done)
    return done


def converge(extra: dict[str, Any], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run the scenario's converge playbook again with extra variables (molecule's inventory and settings)."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(scenario.parent / "_shared" / "converge.yml"),
            "-e",
            json.dumps(extra),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=timeout,
        check=False,
    )


def recap_changed(result: subprocess.CompletedProcess[str]) -> int:
    """How many tasks the run changed (the last PLAY RECAP line)."""
    found = re.findall(r"changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return int(found[-1][0])


def inspect_container(host, name: str) -> dict[str, Any]:
    """``docker inspect`` of container ``name`` on the testinfra host; fails when there is no such container."""
    result = host.run(f"docker inspect {shlex.quote(name)}")
    assert result.rc == 0, f"container {name} is missing: {result.stderr}"
    return json.loads(result.stdout)[0]


def wait_healthy(host, name: str, timeout: float = 90) -> dict[str, Any]:
    """``docker inspect`` of container ``name`` on the testinfra host once its health status is healthy, or the
    last one seen when ``timeout`` seconds have passed; the caller asserts on it (with the container's log)."""
    deadline = time.monotonic() + timeout
    while True:
        container = inspect_container(host, name)
        if container["State"].get("Health", {}).get("Status") == "healthy" or time.monotonic() > deadline:
            return container
        time.sleep(2)
