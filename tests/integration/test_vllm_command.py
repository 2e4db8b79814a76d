"""The container command the vllm role renders uses only flags the pinned vLLM release accepts.

The lab cannot run vLLM (no GPU, no official image), so this checks the
command against vLLM's own source of the release the role pins
(`vllm_image` in roles/vllm/defaults/main.yml): `vllm serve` builds its
parser from the `add_argument` calls of `EngineArgs.add_cli_args`
(vllm/engine/arg_utils.py), the fields of the frontend dataclasses
(`FrontendArgs`, `BaseFrontendArgs`: each field is `--kebab-case`) and the
`add_argument` calls of `make_arg_parser`. They are read with `ast`, with the
choices of `--runner`, `--quantization` and `--kv-cache-dtype` (their
`Literal` types), the tool parsers `--tool-call-parser` can name
(vllm/tool_parsers) and the environment variables vLLM reads (vllm/envs.py).

The source comes from PyPI through pip, cached under .cache/vllm-src/<version>
(only the few files needed are kept). The sdist cannot be fetched with
`pip download --no-binary :all:`, because pip builds its metadata, which
needs CUDA build tools; the release's wheel holds the same Python files.

The commands are the role's own: the role runs in check mode on this machine
(as in test_vllm_role_input.py) and the rendered `_vllm_commands` are written
out after it, for the default models and for models with every option set.
"""

from __future__ import annotations

import ast
import fcntl
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_run import ROOT, ansible_env

IMAGE = yaml.safe_load((ROOT / "roles/vllm/defaults/main.yml").read_text())["vllm_image"]
TAG = IMAGE.rsplit(":", 1)[1]
VERSION = re.fullmatch(r"v(\d+\.\d+\.\d+(?:\.post\d+)?)(?:-.+)?", TAG).group(1)
CACHE = ROOT / ".cache" / "vllm-src" / VERSION
WANTED = (
    "vllm/engine/arg_utils.py",
    "vllm/envs.py",
    "vllm/config/",
    "vllm/entrypoints/",
    "vllm/model_executor/layers/quantization/__init__.py",
    "vllm/tool_parsers/",
)

# A model with every option of a vllm_models entry set, and a pooling model.
EVERY_OPTION = {
    "name": "full",
    "model": "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4",
    "served_model_name": "llama-70b",
    "port": 58100,
    "runner": "generate",
    "quantization": "awq",
    "max_model_len": 16384,
    "gpu_memory_utilization": 0.8,
    "max_num_seqs": 32,
    "tensor_parallel_size": 2,
    "kv_cache_dtype": "fp8",
    "extra_args": [
        "--enable-prefix-caching",
        "--max-num-batched-tokens",
        "8192",
        "--enable-chunked-prefill",
        "--generation-config",
        "vllm",
        "--disable-uvicorn-access-log",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "llama3_json",
    ],
    "enabled": True,
    "params_b": 70.6,
    "layers": 80,
    "kv_heads": 8,
    "head_dim": 128,
}
POOLING = {
    "name": "embed-small",
    "model": "intfloat/multilingual-e5-small",
    "port": 58101,
    "runner": "pooling",
    "max_model_len": 512,
    "gpu_memory_utilization": 0.05,
}


def _fetch() -> Path:
    """The needed files of vLLM's source for VERSION, cached; pip fetches the release."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with (CACHE.parent / f".{VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        complete = CACHE / "COMPLETE"
        if complete.is_file() and f"wanted: {' '.join(WANTED)}" in complete.read_text():
            return CACHE
        with tempfile.TemporaryDirectory(dir=CACHE.parent) as tmp:
            download = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    f"vllm=={VERSION}",
                    "--no-deps",
                    "--only-binary",
                    ":all:",
                    "--dest",
                    tmp,
                    "--quiet",
                ],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            wheels = list(Path(tmp).glob(f"vllm-{VERSION}-*.whl"))
            if download.returncode != 0 or not wheels:
                pytest.skip(f"pip cannot fetch vllm=={VERSION} here: {download.stderr.strip()[-500:]}")
            staging = Path(tmp) / "src"
            with zipfile.ZipFile(wheels[0]) as wheel:
                for name in wheel.namelist():
                    if name.endswith(".py") and name.startswith(WANTED):
                        wheel.extract(name, staging)
            shutil.rmtree(CACHE, ignore_errors=True)
            shutil.move(str(staging), CACHE)
        (CACHE / "COMPLETE").write_text(f"vllm {VERSION}, from {wheels[0].name}\nwanted: {' '.join(WANTED)}\n")
    return CACHE


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _add_argument_flags(tree: ast.AST) -> set[str]:
    return {
        arg.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-")
    }


def _dataclass_fields(tree: ast.AST, class_names: set[str]) -> dict[str, str]:
    """Field name -> annotation source, of the named classes."""
    return {
        statement.target.id: ast.unparse(statement.annotation)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name in class_names
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    }


def _literal(source: Path, name: str, others: dict[str, set[str]] | None = None) -> set[str]:
    """The values of `name = Literal[...]` in source, with Literal aliases named in others expanded."""
    for node in ast.walk(_tree(source)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Subscript) and ast.unparse(value.value) == "Literal":
                items = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
                found: set[str] = set()
                for item in items:
                    if isinstance(item, ast.Constant):
                        found.add(item.value)
                    elif isinstance(item, ast.Name) and others and item.id in others:
                        found |= others[item.id]
                    else:
                        raise AssertionError(f"{name} in {source}: cannot read {ast.unparse(item)}")
                return found
    raise AssertionError(f"{name} = Literal[...] not found in {source}")


def _dict_keys(source: Path, name: str) -> set[str]:
    """The string keys of `name = {...}` in source."""
    for node in ast.walk(_tree(source)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            assert isinstance(node.value, ast.Dict), f"{name} in {source} is not a dict"
            return {key.value for key in node.value.keys if isinstance(key, ast.Constant)}
    raise AssertionError(f"{name} = {{...}} not found in {source}")


@pytest.fixture(scope="module")
def vllm_cli() -> dict[str, Any]:
    """What `vllm serve` of the pinned release accepts."""
    src = _fetch() / "vllm"
    arg_utils = _tree(src / "engine" / "arg_utils.py")
    frontend_files = [path for path in (src / "entrypoints").rglob("*.py") if "class FrontendArgs" in path.read_text()]
    assert len(frontend_files) == 1, frontend_files
    frontend = _tree(frontend_files[0])
    assert "def make_arg_parser" in frontend_files[0].read_text()
    fields = _dataclass_fields(frontend, {"FrontendArgs", "BaseFrontendArgs"})
    flags = _add_argument_flags(arg_utils) | _add_argument_flags(frontend)
    flags |= {f"--{name.replace('_', '-')}" for name in fields}
    runner_type = _literal(src / "config" / "scheduler.py", "RunnerType")
    envs = (src / "envs.py").read_text()
    return {
        "tool_call_parser": _dict_keys(src / "tool_parsers" / "__init__.py", "_TOOL_PARSERS_TO_REGISTER"),
        "flags": flags,
        "frontend_file": frontend_files[0].relative_to(src.parent),
        "runner": _literal(src / "config" / "model.py", "RunnerOption", {"RunnerType": runner_type}),
        "quantization": _literal(
            src / "model_executor" / "layers" / "quantization" / "__init__.py", "QuantizationMethods"
        ),
        "kv_cache_dtype": _literal(src / "config" / "cache.py", "CacheDType"),
        "env": set(re.findall(r'^\s+"(VLLM_[A-Z0-9_]+)": lambda', envs, re.M)),
        "do_not_track": "DO_NOT_TRACK" in envs,
    }


def render_commands(tmp_path: Path, variables: dict[str, Any]) -> dict[str, list[str]]:
    """Run the vllm role in check mode on this machine and return the commands it renders, by model name."""
    out = tmp_path / "commands.json"
    (tmp_path / "playbook.yml").write_text(
        "- name: Render the vllm role's commands\n"
        "  hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  roles:\n"
        "    - role: parrotpark.llm.vllm\n"
        "  post_tasks:\n"
        "    - name: Write the commands\n"
        "      ansible.builtin.copy:\n"
        "        content: '{{ _vllm_commands | to_json }}'\n"
        f"        dest: {json.dumps(str(out))}\n"
        "        mode: '0600'\n"
        "      check_mode: false\n"
    )
    (tmp_path / "vars.json").write_text(
        json.dumps({"vllm_listen_address": "127.0.0.1", "vllm_gpus": "none", **variables})
    )
    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [
            str(bin_dir / "ansible-playbook"),
            "--check",
            "-i",
            "localhost,",
            str(tmp_path / "playbook.yml"),
            "-e",
            f"@{tmp_path / 'vars.json'}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0 and out.is_file(), run.stdout + run.stderr
    return json.loads(out.read_text())


def assert_accepted(command: list[str], cli: dict[str, Any]) -> None:
    """Every flag of the command is one `vllm serve` accepts, and every choice is one of its choices."""
    unknown = [
        token.split("=", 1)[0]
        for token in command
        if token.startswith("--") and token.split("=", 1)[0] not in cli["flags"]
    ]
    assert unknown == [], f"flags vLLM {VERSION} does not accept: {unknown} (in {command})"
    for flag, choices in (
        ("--runner", "runner"),
        ("--quantization", "quantization"),
        ("--kv-cache-dtype", "kv_cache_dtype"),
        ("--tool-call-parser", "tool_call_parser"),
    ):
        if flag in command:
            value = command[command.index(flag) + 1]
            assert value in cli[choices], f"{flag} {value}: not one of vLLM {VERSION}'s {sorted(cli[choices])}"


def test_source_read(vllm_cli):
    """The reading of vLLM's source found its parser (a guard against a silently empty flag set)."""
    flags = vllm_cli["flags"]
    assert len(flags) > 200, len(flags)
    assert {"--model", "--served-model-name", "--host", "--port", "--api-key", "--max-model-len"} <= flags
    assert "--not-a-vllm-flag" not in flags
    assert {"generate", "pooling"} <= vllm_cli["runner"]
    assert "awq" in vllm_cli["quantization"]
    assert {"mistral", "hermes", "llama3_json"} <= vllm_cli["tool_call_parser"]


def test_default_models(tmp_path, vllm_cli):
    commands = render_commands(tmp_path, {})
    assert set(commands) == {"embed", "chat"}
    for command in commands.values():
        assert_accepted(command, vllm_cli)
    assert commands["embed"][commands["embed"].index("--runner") + 1] == "pooling"
    # LibreChat's File Search runs the chat model as an agent that calls a
    # tool: vLLM answers requests with tools only with both flags.
    chat = commands["chat"]
    assert "--enable-auto-tool-choice" in chat, chat
    assert chat[chat.index("--tool-call-parser") + 1] == "mistral"


def test_model_with_every_option(tmp_path, vllm_cli):
    commands = render_commands(
        tmp_path, {"vllm_gpu_type": "L40S-2-48G", "vllm_models": [POOLING, EVERY_OPTION], "vllm_fit_min_model_len": 512}
    )
    command = commands["full"]
    for flag in ("--quantization", "--max-model-len", "--gpu-memory-utilization", "--max-num-seqs"):
        assert flag in command, command
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    assert command[command.index("--kv-cache-dtype") + 1] == "fp8"
    assert command[-len(EVERY_OPTION["extra_args"]) :] == EVERY_OPTION["extra_args"]
    assert_accepted(command, vllm_cli)
    assert_accepted(commands["embed-small"], vllm_cli)


def test_checker_rejects_what_vllm_would(vllm_cli):
    """The comparison fails for a flag or a choice the release does not have."""
    with pytest.raises(AssertionError, match=r"flags vLLM .* does not accept"):
        assert_accepted(["--model", "x", "--task", "embed", "--enable-magic"], vllm_cli)
    with pytest.raises(AssertionError, match="--runner embed: not one of"):
        assert_accepted(["--runner", "embed"], vllm_cli)
    with pytest.raises(AssertionError, match="--tool-call-parser mistral-nemo: not one of"):
        assert_accepted(["--enable-auto-tool-choice", "--tool-call-parser", "mistral-nemo"], vllm_cli)


def test_environment_variables_read_by_vllm(vllm_cli):
    """The role passes the key and the opt-out of usage statistics in variables this release reads."""
    assert {"VLLM_API_KEY", "VLLM_NO_USAGE_STATS"} <= vllm_cli["env"]
    assert vllm_cli["do_not_track"]
