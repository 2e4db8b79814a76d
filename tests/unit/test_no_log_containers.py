"""Every task that returns a container's configuration hides it.

community.docker's docker_container (any state but absent) and
docker_container_info return the container's inspect data, environment
included: with -v the LiteLLM master key, its salt key and the vLLM API key
would be printed (a restart handler did exactly that). This walks every
task and handler file of the collection and of the repository's playbooks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REVEALING = {
    "community.docker.docker_container": lambda args: (args or {}).get("state", "started") != "absent",
    "community.docker.docker_container_info": lambda args: True,
}


def task_files() -> list[Path]:
    # The repository is the collection (collections/ansible_collections/parrotpark/llm links to it).
    patterns = ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/**/*.yml", "*.yml")
    files = [path for pattern in patterns for path in ROOT.glob(pattern)]
    return sorted(path for path in files if path.is_file())


def walk(tasks, where: str):
    """Yield (where, task) for every task, through blocks and plays."""
    for index, task in enumerate(tasks or []):
        if not isinstance(task, dict):
            continue
        label = f"{where}[{index}] {task.get('name', '')}".strip()
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if isinstance(task.get(key), list):
                yield from walk(task[key], label)
        yield label, task


def revealing_tasks_without_no_log() -> list[str]:
    problems = []
    for path in task_files():
        documents = yaml.safe_load(path.read_text())
        if not isinstance(documents, list):
            continue
        for label, task in walk(documents, str(path.relative_to(ROOT))):
            for module, reveals in REVEALING.items():
                if module in task and reveals(task[module]) and not task.get("no_log"):
                    problems.append(f"{label}: {module} without no_log")
    return problems


def test_the_walk_finds_the_container_tasks():
    """The check looks where the tasks are: it must see the shared container task."""
    seen = [
        label
        for path in task_files()
        if isinstance(documents := yaml.safe_load(path.read_text()), list)
        for label, task in walk(documents, str(path.relative_to(ROOT)))
        if "community.docker.docker_container" in task
    ]
    assert any("roles/_common/tasks/container.yml" in label for label in seen), seen
    assert len(seen) >= 5, seen


@pytest.mark.parametrize(
    ("task", "hidden"),
    [
        ({"community.docker.docker_container": {"name": "x", "restart": True}}, False),
        ({"community.docker.docker_container": {"name": "x", "restart": True}, "no_log": True}, True),
        ({"community.docker.docker_container": {"name": "x", "state": "absent"}}, True),
        ({"community.docker.docker_container_info": {"name": "x"}}, False),
    ],
)
def test_the_rule(task, hidden):
    found = [m for m, reveals in REVEALING.items() if m in task and reveals(task[m]) and not task.get("no_log")]
    assert (not found) == hidden


def test_no_container_configuration_is_shown():
    assert revealing_tasks_without_no_log() == []
