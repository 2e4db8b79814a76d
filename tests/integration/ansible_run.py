"""Run this checkout's modules and inventory plugins the way a user does, and read what they return.

``run_tasks`` runs module calls in one ``ansible-playbook`` on localhost (each
task's registered result, success or failure, is written to a JSON file);
``run_inventory`` runs ``ansible-inventory --list`` on an inventory file.
Both return the whole output too, so a test can search it (for a secret, say).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without SCW_* variables, set up to load this checkout as the collection."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SCW_", "ANSIBLE_"))}
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
            "ANSIBLE_INJECT_FACT_VARS": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_PIPELINING": "true",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


def run_tasks(
    tmp_path: Path,
    env: dict[str, str],
    tasks: list[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]],
    *,
    verbosity: int = 0,
) -> Run:
    """Run each (module, arguments[, task keywords]) on localhost; ``results[i]`` is task i's result.

    A failing task does not stop the play: its result (with ``failed`` and
    ``msg``) is recorded like any other. Task keywords are, for example,
    ``{"check_mode": True}``.
    """
    lines = ["- name: Run modules", "  hosts: localhost", "  connection: local", "  gather_facts: false", "  tasks:"]
    for index, (module, args, *keywords) in enumerate(tasks):
        lines += [
            f"    - name: Task {index}",
            "      block:",
            f"        - name: Call {module}",
            f"          {module}: {json.dumps(args)}",
            f"          register: __result_{index}",
        ]
        lines += [f"          {key}: {json.dumps(value)}" for key, value in (keywords[0] if keywords else {}).items()]
        lines += [
            "      rescue:",
            "        - name: Keep the failure",
            "          ansible.builtin.set_fact:",
            f"            __result_{index}: '{{{{ ansible_failed_result }}}}'",
        ]
    out = tmp_path / "results.json"
    results = ", ".join(f"__result_{index}" for index in range(len(tasks)))
    lines += [
        "    - name: Write the results",
        "      ansible.builtin.copy:",
        f"        content: '{{{{ [{results}] | to_json }}}}'",
        f"        dest: {json.dumps(str(out))}",
        "        mode: '0600'",
    ]
    playbook = tmp_path / "playbook.yml"
    playbook.write_text("\n".join(lines) + "\n")
    command = [
        str(BIN / "ansible-playbook"),
        "-i",
        "localhost,",
        str(playbook),
        "-e",
        json.dumps({"ansible_python_interpreter": sys.executable}),
    ]
    if verbosity:
        command.append("-" + "v" * verbosity)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert out.exists(), f"no results written to {out}:\n{run.output}"
    run.results = json.loads(out.read_text())
    run.stdout += "\n" + out.read_text()  # so a search of the output covers the results too
    return run


def run_playbook(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook *args`` with this checkout as the collection and the test's Python on the target."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), *args, "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True,
        text=True,
        env=env or ansible_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def run_inventory(
    path: Path,
    env: dict[str, str],
    *args: str,
) -> tuple[Run, dict[str, Any]]:
    """``ansible-inventory -i path --list`` (plus ``args``); a source that fails to parse fails the command.

    Returns the run and the parsed listing, with the unsafe markers of strings removed.
    """
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list", *args],
        capture_output=True,
        text=True,
        env={**env, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"},
        cwd=path.parent,
        timeout=120,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    data = json.loads(proc.stdout, object_hook=_plain) if proc.returncode == 0 else {}
    return run, data


def _plain(obj: dict[str, Any]) -> Any:
    """ansible-core 2.19 writes strings that came from a plugin as {"__ansible_unsafe": "..."}: unwrap them."""
    if set(obj) == {"__ansible_unsafe"}:
        return obj["__ansible_unsafe"]
    return obj


def inventory_hosts(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """host name -> host variables, from ``ansible-inventory --list`` output."""
    return dict(data.get("_meta", {}).get("hostvars", {}))


def group_members(data: dict[str, Any], group: str) -> set[str]:
    return set(data.get(group, {}).get("hosts", []))


def run_role_check(tmp_path: Path, role: str, variables: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Apply a role of this collection in check mode to this machine (connection local) with the given variables."""
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(
        "- name: Apply the role with the given variables\n"
        "  hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  roles:\n"
        f"    - role: parrotpark.llm.{role}\n"
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "--check",
            "-i",
            "localhost,",
            str(playbook),
            "-e",
            f"@{extra}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=300,
        check=False,
    )


def assert_stopped_unchanged(result: subprocess.CompletedProcess[str], patterns: list[str]) -> None:
    """The run failed, its output matches every pattern (regular expressions), and it changed nothing."""
    output = result.stdout + result.stderr
    flat = " ".join(output.split())  # messages may be folded over lines
    assert result.returncode != 0, output
    for pattern in patterns:
        assert re.search(pattern, output) or re.search(pattern, flat), f"{pattern!r} not in output:\n{output}"
    recap = re.search(r"localhost\s*:.*changed=(\d+)", output)
    assert recap and recap.group(1) == "0", output


def overlay(base: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """A case's variables over the valid base of a role-input test; a None value removes the variable."""
    return {key: value for key, value in {**base, **variables}.items() if value is not None}


def assert_bad_input_refused(
    tmp_path: Path, role: str, variables: dict[str, Any], patterns: list[str], secrets: tuple[str, ...] = ()
) -> None:
    """The role, run with these variables, stops before any change with every pattern in its output, and
    none of the secrets is shown."""
    result = run_role_check(tmp_path, role, variables)
    assert_stopped_unchanged(result, patterns)
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output, f"{secret!r} shown in the output"
