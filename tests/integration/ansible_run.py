"""Run this checkout's modules and inventory plugins the way a user does, and read what they return.

``run_tasks`` runs module calls in one ``ansible-playbook`` on localhost (each
task's registered result, success or failure, is written to a JSON file);
``run_inventory`` runs ``ansible-inventory --list`` on an inventory file.
Both return the whole output too, so a test can search it (for a secret, say).
``run_role_check`` applies a role in check mode to this machine;
``run_role_checks`` does it for many cases in one ``ansible-playbook``, a host
each, and gives each case its host's share of the output.
"""

from __future__ import annotations

import fcntl
import hashlib
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
BATCH_FORKS = int(os.environ.get("PP_BATCH_FORKS", "10"))  # hosts at a time in run_role_checks


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


@dataclass
class HostRun:
    """One case of ``run_role_checks``: the lines of the batch's output about its host, and its exit status."""

    host: str
    returncode: int  # what ansible-playbook returns for this host alone: 2 failed, 4 unreachable, 0 neither
    stdout: str
    shared: str  # the batch's lines about no host (play and task banners, notices of no host)
    stderr: str = ""


_NOTICE = re.compile(r"^\[[A-Z][A-Z ]*\]: ")  # [ERROR]: / [WARNING]: / [DEPRECATION WARNING]:
_BANNER = re.compile(r"^(?:PLAY |TASK |RUNNING HANDLER |included: )")


def split_by_host(output: str, hosts: list[str]) -> tuple[dict[str, str], str]:
    """The default callback's output, split into each host's lines and the lines about no host.

    A host's result line (``fatal: [case_007]: FAILED! => ...``) is followed by its indented details; the
    ``[ERROR]``/``[WARNING]`` notices of a result come just before its line, and go with it.
    """
    names = "|".join(re.escape(host) for host in sorted(hosts, key=len, reverse=True))
    host_line = re.compile(
        rf"^(?:ok|changed|skipping|fatal|failed|ignoring|rescued): \[(?P<host>{names})(?: -> [^\]]*)?\]"
        rf"|^(?P<recap>{names})\s+: ok="
    )
    own: dict[str, list[str]] = {host: [] for host in hosts}
    shared: list[str] = []
    pending: list[str] = []
    current = shared
    for line in output.splitlines():
        match = host_line.match(line)
        if match:
            current = own[match["host"] or match["recap"]]
            current.extend(pending)
            pending.clear()
        elif _NOTICE.match(line):
            current = pending
        elif _BANNER.match(line):
            shared.extend(pending)
            pending.clear()
            current = shared
        current.append(line)
    shared.extend(pending)
    return {host: "\n".join(lines) for host, lines in own.items()}, "\n".join(shared)


def run_role_checks(
    tmp_path_factory: Any, role: str, cases: dict[str, dict[str, Any]], *, localhost: str | None = None
) -> dict[str, HostRun]:
    """``run_role_check`` for many cases in one ``ansible-playbook --check``: one host per case.

    Each case is a host of its own (``case_000``...; ``localhost`` for the case named by ``localhost``, whose
    messages name the host), connection local, with its own ``parrotpark_secrets_dir``. Its variables are
    loaded with ``include_vars`` before the role, which puts them above the role's defaults and vars as
    ``-e`` does for a run of its own. Returns each case's ``HostRun``.

    The run is done once per pytest session: the xdist workers share it (the first to need it runs it,
    under a lock, and writes the output next to its temporary directory).
    """
    hosts = {case: "localhost" if case == localhost else f"case_{index:03d}" for index, case in enumerate(cases)}
    key = hashlib.sha256(json.dumps([role, hosts, cases], sort_keys=True).encode()).hexdigest()[:12]
    base = Path(tmp_path_factory.getbasetemp())
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's directory, above each worker's
    folder = base / f"role-checks-{role}-{key}"
    with (base / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = folder / "run.json"
        if not record.exists():
            _run_role_checks(folder, role, {hosts[case]: variables for case, variables in cases.items()})
        result = json.loads(record.read_text())
    output, returncode = result["output"], result["returncode"]
    own, shared = split_by_host(output, list(hosts.values()))
    runs = {}
    for case, host in hosts.items():
        recap = re.search(rf"^{re.escape(host)}\s+:.*unreachable=(\d+)\s+failed=(\d+)", own[host], re.MULTILINE)
        if recap:
            code = 4 if int(recap.group(1)) else 2 if int(recap.group(2)) else 0
            runs[case] = HostRun(host, code, own[host], shared)
        else:  # the run stopped before its recap: show all of it
            runs[case] = HostRun(host, returncode, f"{own[host]}\n--- the whole run:\n{output}", shared)
    return runs


def _run_role_checks(folder: Path, role: str, variables: dict[str, dict[str, Any]]) -> None:
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    for host, values in variables.items():
        (folder / "cases" / f"{host}.json").write_text(json.dumps(values))
    inventory = {
        "all": {
            "vars": {"ansible_python_interpreter": sys.executable},
            "hosts": {host: {"parrotpark_secrets_dir": str(folder / host / "secrets")} for host in variables},
        }
    }
    (folder / "hosts.yml").write_text(json.dumps(inventory))
    (folder / "playbook.yml").write_text(
        "- name: Apply the role to every case, one host each\n"
        "  hosts: all\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  pre_tasks:\n"
        "    - name: Load the case's variables\n"
        "      ansible.builtin.include_vars:\n"
        '        file: "{{ playbook_dir }}/cases/{{ inventory_hostname }}.json"\n'
        "  roles:\n"
        f"    - role: parrotpark.llm.{role}\n"
    )
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "--check",
            "--forks",
            str(min(len(variables), BATCH_FORKS)),
            "-i",
            str(folder / "hosts.yml"),
            str(folder / "playbook.yml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, so that each notice stays next to its host's line
        text=True,
        env=ansible_env(
            {
                # The default output, but an error shown for every host it is about, not only for the first.
                "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).parent / "callback_plugins"),
                "ANSIBLE_STDOUT_CALLBACK": "per_host_default",
            }
        ),
        timeout=900,
        check=False,
    )
    (folder / "run.json").write_text(json.dumps({"returncode": proc.returncode, "output": proc.stdout}))


def assert_stopped_unchanged(result: subprocess.CompletedProcess[str] | HostRun, patterns: list[str]) -> None:
    """The run failed, its output matches every pattern (regular expressions), and it changed nothing.

    ``result`` is a run of its own (its host is localhost) or one host's share of a batch (``run_role_checks``).
    """
    host = result.host if isinstance(result, HostRun) else "localhost"
    output = result.stdout + result.stderr
    flat = " ".join(output.split())  # messages may be folded over lines
    assert result.returncode != 0, output
    for pattern in patterns:
        assert re.search(pattern, output) or re.search(pattern, flat), f"{pattern!r} not in output:\n{output}"
    recap = re.search(rf"^{re.escape(host)}\s*:.*changed=(\d+)", output, re.MULTILINE)
    assert recap and recap.group(1) == "0", output


def overlay(base: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """A case's variables over the valid base of a role-input test; a None value removes the variable."""
    return {key: value for key, value in {**base, **variables}.items() if value is not None}


def assert_refused(
    result: subprocess.CompletedProcess[str] | HostRun, patterns: list[str], secrets: tuple[str, ...] = ()
) -> None:
    """``assert_stopped_unchanged``, and none of the secrets is shown: for a case of a batch, neither in its
    own lines nor in the batch's lines that belong to no host."""
    assert_stopped_unchanged(result, patterns)
    shown = result.stdout + result.stderr + (result.shared if isinstance(result, HostRun) else "")
    for secret in secrets:
        assert secret not in shown, f"{secret!r} shown in the output"
