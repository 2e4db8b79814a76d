"""Run the collection's filters the way users do: in ansible, and their documentation through ansible-doc.

``render`` evaluates a Jinja expression with ``ansible localhost -m ansible.builtin.debug`` (the filters
under their collection name, loaded by ansible's collection loader from ``collections/``);
``filter_doc`` is ``ansible-doc -t filter --json`` of one filter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent


def _run(command: list[str]) -> str:
    """The standard output of ``command`` (ansible or ansible-doc from this interpreter's bin), which must succeed."""
    environment = {
        "PATH": f"{BIN_DIR}:/usr/bin:/bin",
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "HOME": str(Path.home()),
    }
    run = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def render(expression: str, variables: dict[str, Any] | None = None) -> Any:
    """The value of ``{{ expression | to_json }}`` in ansible, with ``variables`` as extra variables.

    ``expression`` is the inside of the braces, without ``to_json``.
    """
    command = [str(BIN_DIR / "ansible"), "localhost", "-m", "ansible.builtin.debug"]
    command += ["-a", json.dumps({"msg": f"{{{{ {expression} | to_json }}}}"})]
    if variables is not None:
        command += ["-e", json.dumps(variables)]
    output = _run([*command, "-o"])
    return json.loads(json.loads(output.split("=>", 1)[1])["msg"])


def filter_doc(name: str) -> dict[str, Any]:
    """The documentation of the filter ``parrotpark.llm.<name>`` as ansible-doc renders it (keys doc, return, ...)."""
    output = _run([str(BIN_DIR / "ansible-doc"), "-t", "filter", "--json", f"parrotpark.llm.{name}"])
    return json.loads(output)[f"parrotpark.llm.{name}"]
