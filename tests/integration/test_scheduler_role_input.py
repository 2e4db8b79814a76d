"""The scheduler role: bad input fails before anything changes, and what it renders is what runs.

- Bad input: the role runs in check mode against this machine (connection
  local), every case in one ansible-playbook run, a host each; argument spec
  validation and the preflight checks come before any task that could change
  the host, so every case must stop with changed=0, naming the variable.
  Secrets are never shown.
- Valid input: the whole role in check mode, its rendered timers and no secret
  in the output.
- The timers: systemd's own reading of the rendered OnCalendar= expressions
  gives exactly the ticks the command computes; the rendered schedule and
  command are what the program reads.
- The nested inventory, rendered from the role's templates, read by
  ansible-inventory against the fake Scaleway API: the GPU server in its
  groups on its private address, the forwarded variables (a vaulted one
  decrypted), the entrance server under its own name.

The command itself (files/parrotpark_gpu.py) is tested in
tests/unit/test_scheduler_cli.py, files/pack_collections.py in
tests/unit/test_pack_collections.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_run import (
    BIN,
    ROOT,
    ansible_env,
    assert_refused,
    group_members,
    inventory_hosts,
    overlay,
    run_inventory,
    run_playbook,
    run_role_checks,
)
from fake_scaleway import ACCESS_KEY, PROJECT_ID, SECRET_KEY, Seeder

ROLE = ROOT / "roles" / "scheduler"
# The stack contract (roles/parrotpark, a dependency of the scheduler role): its defaults and constants.
CONTRACT_VARS = [
    str(ROLE.parent / "parrotpark" / "defaults" / "main.yml"),
    str(ROLE.parent / "parrotpark" / "vars" / "main.yml"),
]
PROGRAM = ROLE / "files" / "parrotpark_gpu.py"
PACK = ROLE / "files" / "pack_collections.py"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

BASE = {
    "scheduler_scaleway_access_key": ACCESS_KEY,
    "scheduler_scaleway_secret_key": SECRET_KEY,
    "scheduler_scaleway_project_id": PROJECT_ID,
}
BAD_SECRET = "not-a-uuid-but-very-secret"

ON_DEMAND_GPU_GATEWAY = "on demand with the gateway on the GPU server passes the on-demand checks"
CASES = {
    "no secret key": (
        {"scheduler_scaleway_secret_key": None},
        [r"missing required arguments: scheduler_scaleway_secret_key"],
    ),
    "secret key not a UUID": (
        {"scheduler_scaleway_secret_key": BAD_SECRET},
        [r"scheduler_scaleway_secret_key a UUID \(not shown\)"],
    ),
    "access key malformed": (
        {"scheduler_scaleway_access_key": "SCW123"},
        [r"scheduler_scaleway_access_key must be SCW and 17 upper-case", r"\(got\s+'SCW123'\)"],
    ),
    "no project with the real API": (
        {"scheduler_scaleway_project_id": None},
        [r"scheduler_scaleway_project_id a UUID", r"empty only with scheduler_scaleway_api_url set"],
    ),
    "API URL not http": (
        {"scheduler_scaleway_api_url": "ftp://fake:8383"},
        [r"scheduler_scaleway_api_url empty or an http\(s\) URL", r"'ftp://fake:8383'"],
    ),
    "organization not a UUID": (
        {"scheduler_scaleway_organization_id": "my-org"},
        [r"scheduler_scaleway_organization_id empty or a UUID \(got 'my-org'\)"],
    ),
    "zone without its number": (
        {"scheduler_gpu_zones": ["fr-par"]},
        [r"scheduler_gpu_zones distinct Scaleway zones", r"wrong:\s+\['fr-par'\]"],
    ),
    "no zone": ({"scheduler_gpu_zones": []}, [r"scheduler_gpu_zones must not be empty \(got \[\]\)"]),
    "no GPU tags": ({"scheduler_gpu_tags": []}, [r"scheduler_gpu_tags must not be empty \(got \[\]\)"]),
    "an empty GPU tag": (
        {"scheduler_gpu_tags": ["parrotpark", " "]},
        [r"scheduler_gpu_tags non-empty tags \(got \['parrotpark', ' '\]\)"],
    ),
    "GPU name with a space": (
        {"scheduler_gpu_name": "my gpu"},
        [r"scheduler_gpu_name must be a server name", r"'my gpu'"],
    ),
    "a group holding both servers": (
        {"scheduler_entrance_groups": ["inference"]},
        [r"no group may hold both servers", r"in both:\s+\['inference'\]"],
    ),
    "GPU in the entrance group": (
        {"scheduler_gpu_groups": ["entrance"]},
        [r"scheduler_gpu_groups", r"entrance is\s+the\s+entrance server's own", r"Wrong: \['entrance'\]"],
    ),
    "no GPU group": ({"scheduler_gpu_groups": []}, [r"scheduler_gpu_groups must not be empty \(got \[\]\)"]),
    "unknown day": (
        {"scheduler_days": ["Monday"]},
        [r"scheduler_days must be distinct days from Mon, Tue", r"wrong: \['Monday'\]"],
    ),
    "no day": ({"scheduler_days": []}, [r"scheduler_days must not be empty \(got \[\]\)"]),
    "a day twice": ({"scheduler_days": ["Mon", "Mon"]}, [r"scheduler_days must be distinct days"]),
    "up time without its leading zero": (
        {"scheduler_up_time": "8:00"},
        [r"scheduler_up_time and scheduler_down_time must be times HH:MM", r"'8:00'"],
    ),
    "up time 24:00": ({"scheduler_up_time": "24:00"}, [r"scheduler_up_time and scheduler_down_time must be times"]),
    "down before up": (
        {"scheduler_up_time": "19:00", "scheduler_down_time": "08:00"},
        [r"the up time before the down time", r"'19:00' and\s+'08:00'"],
    ),
    "retry too short": (
        {"scheduler_retry_minutes": 4},
        [r"scheduler_retry_minutes must be between 5 and 180", r"\(got 4\)"],
    ),
    "retry too long": ({"scheduler_retry_minutes": 181}, [r"scheduler_retry_minutes must be between 5 and 180"]),
    "retry not a number": ({"scheduler_retry_minutes": "often"}, [r"scheduler_retry_minutes", r"int"]),
    "holiday in another format": (
        {"scheduler_holidays": ["2025-12-25", "25/12/2025"]},
        [r"scheduler_holidays must be dates YYYY-MM-DD", r"wrong: \['25/12/2025'\]"],
    ),
    "holiday that does not exist": (
        {"scheduler_holidays": ["2025-02-29"]},
        [r"scheduler_holidays must be dates YYYY-MM-DD that exist", r"wrong: \['2025-02-29'\]"],
    ),
    "time zone with a path in it": (
        {"scheduler_time_zone": "../../etc/passwd"},
        [r"scheduler_time_zone must be a tz database name", r"'\.\./\.\./etc/passwd'"],
    ),
    "unknown time zone": (
        {"scheduler_time_zone": "Europe/Atlantis", "scheduler_secret_files": []},
        [r"scheduler_time_zone: localhost has no time zone 'Europe/Atlantis'"],
    ),
    "no lock wait": (
        {"scheduler_lock_wait_seconds": 0},
        [r"scheduler_lock_wait_seconds must be between 1 and 86400 \(got 0\)"],
    ),
    "run timeout too short": (
        {"scheduler_run_timeout_seconds": 10},
        [r"scheduler_run_timeout_seconds must be between 60 and 86400 \(got 10\)"],
    ),
    "no forks": ({"scheduler_ansible_forks": 0}, [r"scheduler_ansible_forks must be between 1 and 100 \(got 0\)"]),
    "no lock wait and no forks, both reported": (
        {"scheduler_lock_wait_seconds": 0, "scheduler_ansible_forks": 0},
        [r"scheduler_lock_wait_seconds must be between 1 and 86400", r"scheduler_ansible_forks must be between 1"],
    ),
    "relative venv": ({"scheduler_venv_dir": "opt/venv"}, [r"scheduler_venv_dir must be an absolute path"]),
    "ansible-core version not a version": (
        {"scheduler_ansible_core_version": "latest"},
        [r"scheduler_ansible_core_version a version of ansible-core the role knows", r"got 'latest'"],
    ),
    "ansible-core among the pip packages": (
        {"scheduler_pip_packages": ["ansible-core==2.18.0", "docker==7.2.0"]},
        [r"not ansible or ansible-core", r"wrong: \['ansible-core==2\.18\.0'\]"],
    ),
    "pip environment name with a space": (
        {"scheduler_pip_environment": {"PIP CERT": "/etc/ssl/ca.pem"}},
        [r"scheduler_pip_environment must map environment variable names", r"not names: \['PIP CERT'\]"],
    ),
    "collection name with a dash": (
        {"scheduler_collections": ["community-docker"]},
        [r"scheduler_collections must be collection names NAMESPACE\.NAME", r"wrong:\s+\['community-docker'\]"],
    ),
    "no cache directory": (
        {"scheduler_controller_cache_dir": ""},
        [r"scheduler_controller_cache_dir must not be empty \(got ''\)"],
    ),
    "prefix that matches the connection settings": (
        {"scheduler_forward_prefixes": ["vllm_", "ansible"]},
        [r"scheduler_forward_prefixes must be variable name prefixes", r"ansible_\*", r"wrong: \['ansible'\]"],
    ),
    "no prefix": ({"scheduler_forward_prefixes": []}, [r"scheduler_forward_prefixes must not be empty \(got \[\]\)"]),
    "empty prefix": ({"scheduler_forward_prefixes": [""]}, [r"scheduler_forward_prefixes", r"wrong: \[''\]"]),
    "extra variable the role sets": (
        {"scheduler_extra_vars": {"parrotpark_secrets_dir": "/tmp"}},
        [r"scheduler_extra_vars names variable\s+names other than parrotpark_secrets_dir"],
    ),
    "forwarded variable that does not render": (
        {"vllm_listen_address": "{{ parrotpark_no_such_variable }}"},
        [r"parrotpark_no_such_variable"],
    ),
    "secret file outside the secrets directory": (
        {"scheduler_secret_files": ["../etc/shadow"]},
        [r"scheduler_secret_files must be distinct relative paths without '\.\.'", r"\.\./etc"],
    ),
    "no secrets directory": (
        {"scheduler_controller_secrets_dir": ""},
        [r"scheduler_controller_secrets_dir must not be empty \(got ''\)"],
    ),
    "secret files missing on the controller": (
        {},
        [r"scheduler_secret_files: .*/secrets/vllm-api-key", r"not found on the controller", r"litellm, pgvector"],
    ),
    # On demand: the waker's settings, checked by the rules and by the policy's own code.
    "unknown mode": (
        {"scheduler_mode": "always"},
        [r"scheduler_mode must be one of: scheduled, on_demand, hybrid", r"always"],
    ),
    "quiet hours not a time": (
        {"scheduler_mode": "on_demand", "scheduler_quiet_start": "8pm"},
        [r"scheduler_quiet_start must be HH:MM", r"8pm"],
    ),
    "boot deadline before the boot": (
        {"scheduler_mode": "hybrid", "scheduler_boot_minutes": 30, "scheduler_boot_deadline_minutes": 20},
        [r"scheduler_boot_deadline_minutes \(20\) must be above boot_minutes \(30\)"],
    ),
    "negative cap": (
        {"scheduler_mode": "on_demand", "scheduler_hold_seconds": -1},
        [r"scheduler_hold_seconds must be a number at least 0, got -1"],
    ),
    "waker ports the same": (
        {"scheduler_mode": "on_demand", "scheduler_waker_control_port": 8089},
        [r"scheduler_waker_port and scheduler_waker_control_port must differ; both are 8089"],
    ),
    "report dir relative": (
        {"scheduler_report_dir": "reports"},
        [r"scheduler_report_dir must be an absolute directory such as /var/lib/parrotpark/reports", r"'reports'"],
    ),
    "report dir in the state dir": (
        {"scheduler_report_dir": "/var/lib/parrotpark/scheduler/reports"},
        [r"scheduler_report_dir must be a directory of its own, outside /var/lib/parrotpark/scheduler"],
    ),
    "report prices with an unknown key": (
        {"scheduler_report_prices": {"hosted_offers": []}},
        [
            r"scheduler_report_prices may replace only hosted, currency_rates, unit_prices, fixed_monthly",
            r"wrong: \['hosted_offers'\]",
        ],
    ),
    "report calendar twice": (
        {"scheduler_report_calendars": ["Mon *-*-* 06:00:00", "Mon *-*-* 06:00:00"]},
        [r"scheduler_report_calendars must be distinct systemd OnCalendar= expressions"],
    ),
    "report database user not a name": (
        {"scheduler_report_postgresql_user": "metrics; drop"},
        [r"scheduler_report_postgresql_user must be a user name", r"'metrics; drop'"],
    ),
    # Localhost is in neither group gateway nor chat: the gateway on the GPU server. On demand is no longer
    # refused there; the run goes past the on-demand checks to the next refusal, the missing secret files.
    ON_DEMAND_GPU_GATEWAY: (
        {"scheduler_mode": "on_demand"},
        [r"scheduler_secret_files: .*/secrets/vllm-api-key", r"not found on the controller"],
    ),
}

SECRETS = (SECRET_KEY, BAD_SECRET)
# Its message names the host, localhost in a run of its own: in the batch, its host is localhost too.
HOST_NAMED = "unknown time zone"


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case in one run, a host each (localhost for the case whose message names the host)."""
    cases = {case: overlay(BASE, spec[0]) for case, spec in CASES.items()}
    return run_role_checks(tmp_path_factory, "scheduler", cases, localhost=HOST_NAMED)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_fails_before_any_change(refusals, case):
    patterns = CASES[case][1]
    assert_refused(refusals[case], patterns, SECRETS)


def test_on_demand_with_the_gateway_on_the_gpu_server_is_not_refused(refusals):
    """The gateway on the GPU server (localhost is in neither gateway nor chat): the on-demand checks run and
    pass (the case stops later, at the secret files, which preflight.yml checks after preflight_on_demand.yml),
    and nothing says the layout cannot run on demand."""
    run = refusals[ON_DEMAND_GPU_GATEWAY]
    assert "needs the gateway on the entrance" not in run.stdout + run.stderr + run.shared
    assert "Refuse on demand with the gateway on the GPU server" not in run.shared
    for task in ("Check the on-demand settings with the policy's rules", "Look up the waker's network"):
        assert f"{task}]" in run.shared, task
    fatal = [line for line in run.stdout.splitlines() if line.startswith("fatal: ")]
    assert len(fatal) == 1, run.stdout  # one refusal, the secret files' (test_bad_input_fails_before_any_change)


# LiteLLM's and LibreChat's secrets under the entrance's name, which the
# nested runs need with the gateway on the GPU server (LiteLLM and LibreChat
# there, the entrance in neither gateway nor chat, as localhost is in these
# tests).
GPU_GATEWAY_SECRET_FILES = [
    "postgres-litellm",
    "litellm-salt-key",
    "postgres-rag",
    "keycloak-librechat-client-secret",
    "librechat-openid-session-secret",
    "librechat-creds-key",
    "librechat-creds-iv",
    "librechat-jwt-secret",
    "librechat-jwt-refresh-secret",
]


def write_secrets(root: Path, host: str = "localhost") -> dict[str, str]:
    files = {
        "vllm-api-key": "vllm-key-0123456789abcdef",
        "litellm-master-key": "sk-master-0123456789abcdef",
        f"{host}/postgres-metrics": "metrics-password-0123456789",
        **{f"{host}/{name}": f"{name}-secret-0123456789abcdef" for name in GPU_GATEWAY_SECRET_FILES},
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content + "\n")
    return files


def test_valid_input_passes_in_check_mode(tmp_path):
    """The whole role in check mode: the timers it would write, the tarballs packed, nothing secret shown."""
    secrets = write_secrets(tmp_path / "secrets")
    variables = {
        **BASE,
        "scheduler_controller_cache_dir": str(tmp_path / "cache"),
        "scheduler_days": ["Mon", "Wed", "Sat"],
        "scheduler_up_time": "07:30",
        "scheduler_down_time": "18:10",
        "scheduler_retry_minutes": 45,
        "scheduler_holidays": ["2025-12-25"],
        "vllm_api_key": "forwarded-secret-0123456789",
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "playbook.yml").write_text(
        "- name: Apply the role\n  hosts: localhost\n  connection: local\n  gather_facts: false\n"
        "  roles:\n    - role: parrotpark.llm.scheduler\n"
    )
    result = run_playbook(
        "--check",
        "--diff",
        "-i",
        "localhost,",
        "playbook.yml",
        "-e",
        "@vars.json",
        cwd=tmp_path,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"localhost\s*:.*failed=0", output), output
    # 07:30, then every 45 minutes before 18:10: the hours fall into three groups of minutes.
    for expression in (
        "Mon,Wed,Sat *-*-* 07,10,13,16:30:00 Europe/Paris",
        "Mon,Wed,Sat *-*-* 08,11,14,17:15:00 Europe/Paris",
        "Mon,Wed,Sat *-*-* 09,12,15:00,45:00 Europe/Paris",
        "*-*-* 18:10:00 Europe/Paris",
    ):
        assert f"OnCalendar={expression}" in output, output
    assert "ExecStart=/usr/bin/flock -w 3600 /run/lock/parrotpark-gpu.lock /usr/local/bin/parrotpark-gpu up" in output
    # The report's timer: monthly and weekly in the schedule's zone, no lock, its own program.
    assert (
        "OnCalendar=*-*-01 06:00:00 Europe/Paris" in output and "OnCalendar=Mon *-*-* 06:00:00 Europe/Paris" in output
    )
    assert "ExecStart=/usr/local/bin/parrotpark-gpu report --timer" in output
    assert "parrotpark-gpu-report.timer" in output
    packed = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert packed == sorted(
        ["parrotpark-llm-0.1.0.tar.gz"]
        + [f"{name.replace('.', '-')}-{version}.tar.gz" for name, version in controller_versions().items()]
    )
    for secret in (SECRET_KEY, "forwarded-secret-0123456789", *secrets.values()):
        assert secret not in output, f"{secret!r} shown"


def controller_versions() -> dict[str, str]:
    """Versions of the default scheduler_collections on this controller."""
    versions = {}
    for name in DEFAULTS["scheduler_collections"]:
        namespace, collection = name.split(".")
        for base in [ROOT / "collections", *map(Path, sys.path)]:
            manifest = base / "ansible_collections" / namespace / collection / "MANIFEST.json"
            if manifest.is_file():
                versions[name] = json.loads(manifest.read_text())["collection_info"]["version"]
                break
    return versions


# --------------------------------------------------------------------------
# The timers, read by systemd
# --------------------------------------------------------------------------


def render_role_vars(
    tmp_path: Path,
    names: list[str],
    variables: dict[str, Any],
    host: str = "localhost",
    templates: dict[str, Path] | None = None,
) -> dict:
    """Render internal variables of the role (vars/main.yml over defaults/main.yml) with the given variables,
    and the given templates of the role (name -> destination)."""
    out = tmp_path / "rendered.json"
    playbook = tmp_path / "render.yml"
    template_tasks = [
        {
            "name": f"Render {name}",
            "ansible.builtin.template": {"src": str(ROLE / "templates" / name), "dest": str(dest), "mode": "0700"},
        }
        for name, dest in (templates or {}).items()
    ]
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render the role's variables",
                    "hosts": host,
                    "connection": "local",
                    "gather_facts": False,
                    "vars_files": [
                        *CONTRACT_VARS,
                        str(ROLE / "defaults" / "main.yml"),
                        str(ROLE / "vars" / "main.yml"),
                    ],
                    "tasks": [
                        {
                            "name": "Write them",
                            "ansible.builtin.copy": {
                                "content": "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}",
                                "dest": str(out),
                                "mode": "0600",
                            },
                        },
                        *template_tasks,
                    ],
                }
            ]
        )
    )
    (tmp_path / "extra.json").write_text(json.dumps(variables))
    result = run_playbook(
        "-i",
        f"{host},",
        str(playbook),
        "-e",
        "@extra.json",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def systemd_elapses(expressions: list[str], iterations: int) -> tuple[set[datetime], datetime]:
    """Every elapse systemd-analyze calendar lists for the expressions, in UTC, and the last time all cover."""
    elapses: set[datetime] = set()
    horizon = None
    for expression in expressions:
        result = subprocess.run(
            ["systemd-analyze", "calendar", f"--iterations={iterations}", expression],
            capture_output=True,
            text=True,
            env={**os.environ, "TZ": "UTC"},
            check=True,
        )
        found = [
            datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            for stamp in re.findall(
                r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.stdout
            )
        ]
        assert len(found) == iterations, result.stdout
        elapses.update(found)
        horizon = found[-1] if horizon is None else min(horizon, found[-1])
    return elapses, horizon


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize(
    "schedule",
    [
        {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "up": "08:00", "down": "19:00", "retry": 15},
        {"days": ["Mon", "Wed", "Sat"], "up": "07:30", "down": "18:10", "retry": 45},
        {"days": ["Sun", "Tue"], "up": "06:05", "down": "23:59", "retry": 90},
        {"days": ["Thu"], "up": "12:00", "down": "12:05", "retry": 180},
    ],
    ids=["weekdays-15", "three-days-45", "long-90", "five-minutes"],
)
def test_timer_ticks_are_the_ticks_of_the_command(tmp_path, schedule):
    """systemd's reading of the up timer's OnCalendar= lines gives exactly the ticks parrotpark-gpu computes."""
    variables = {
        "scheduler_days": schedule["days"],
        "scheduler_up_time": schedule["up"],
        "scheduler_down_time": schedule["down"],
        "scheduler_retry_minutes": schedule["retry"],
        "scheduler_time_zone": "America/New_York",
    }
    rendered = render_role_vars(tmp_path, ["_scheduler_up_calendar", "_scheduler_schedule"], variables)
    started = datetime.now(UTC)
    elapses, horizon = systemd_elapses(rendered["_scheduler_up_calendar"], 40)

    sys.path.insert(0, str(PROGRAM.parent))
    try:
        import parrotpark_gpu
    finally:
        sys.path.remove(str(PROGRAM.parent))
    command = parrotpark_gpu.Schedule.from_dict(rendered["_scheduler_schedule"])
    ticks = set()
    day = started.astimezone(command.zone).date() - timedelta(days=1)
    while day <= horizon.date() + timedelta(days=1):
        if command.working_day(day):
            ticks.update(tick.astimezone(UTC) for tick in command.ticks(day))
        day += timedelta(days=1)
    window = {tick for tick in ticks if started + timedelta(minutes=1) < tick <= horizon}
    assert window, "the comparison must cover ticks"
    assert {e for e in elapses if started + timedelta(minutes=1) < e <= horizon} == window


# --------------------------------------------------------------------------
# The nested inventory against the fake Scaleway API
# --------------------------------------------------------------------------


def nested_inventory_templates(inventory: Path) -> dict[str, Path]:
    """The role's templates of the nested inventory and where the role writes them under ``inventory``."""
    return {
        "hosts.yml.j2": inventory / "hosts.yml",
        "scaleway.yml.j2": inventory / "scaleway.yml",
        "forwarded.yml.j2": inventory / "group_vars" / "all" / "forwarded.yml",
    }


def write_render_playbook(playbook: Path, templates: dict[str, Path]) -> Path:
    """A playbook that renders ``templates`` for the entrance with the role's defaults and variables."""
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render the nested inventory with the role's templates",
                    "hosts": "entrance",
                    "gather_facts": False,
                    "vars_files": [
                        *CONTRACT_VARS,
                        str(ROLE / "defaults" / "main.yml"),
                        str(ROLE / "vars" / "main.yml"),
                    ],
                    "tasks": [
                        {
                            "name": f"Render {src}",
                            "ansible.builtin.template": {
                                "src": str(ROLE / "templates" / src),
                                "dest": str(dest),
                                "mode": "0600",
                            },
                        }
                        for src, dest in templates.items()
                    ],
                }
            ]
        )
    )
    return playbook


# The outer inventory's gateway and chat groups in each layout, and where the
# nested inventory then puts LiteLLM and LibreChat.
SERVICE_GROUPS = {
    "default": "    gateway: {hosts: {entrance-1: {}}}\n    chat: {hosts: {entrance-1: {}}}\n",
    "gpu-gateway": "",
}
SERVICES_ON = {"default": {"entrance-1"}, "gpu-gateway": {"parrotpark-gpu"}}


@pytest.mark.parametrize("layout", ["default", "gpu-gateway"])
def test_nested_inventory_finds_the_gpu_server_with_the_forwarded_variables(seed: Seeder, run_env, tmp_path, layout):
    """In the default layout the entrance keeps gateway and chat; with the gateway on the GPU server (the entrance
    in neither) the GPU server gets them."""
    network = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
    gpu = seed.server(
        "parrotpark-gpu",
        commercial_type="L4-1-24G",
        image="ubuntu_noble_gpu_os_13_nvidia",
        tags=["parrotpark", "gpu"],
        private_network=network,
    )
    seed.server(
        "spare-gpu",
        commercial_type="L4-1-24G",
        image="ubuntu_noble_gpu_os_13_nvidia",
        tags=["parrotpark", "gpu"],
        private_network=network,
    )
    seed.server("web-1", tags=["parrotpark"], public_ip=True)
    seed.server("far-gpu", zone="nl-ams-1", tags=["parrotpark", "gpu"])

    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    vaulted = subprocess.run(
        [
            str(BIN / "ansible-vault"),
            "encrypt_string",
            "--vault-password-file",
            str(password),
            "--stdin-name",
            "vllm_api_key",
        ],
        input="vaulted-vllm-key-0123456789",
        capture_output=True,
        text=True,
        env=run_env,
        check=True,
    ).stdout
    outer = tmp_path / "outer"
    (outer / "host_vars").mkdir(parents=True)
    (outer / "hosts.yml").write_text(
        "all:\n  children:\n    entrance: {hosts: {entrance-1: {ansible_connection: local}}}\n" + SERVICE_GROUPS[layout]
    )
    (outer / "host_vars" / "entrance-1.yml").write_text(
        f"{vaulted.strip()}\n"
        "docker_daemon_insecure_registries: [parrotpark-lab-registry:5000]\n"
        "litellm_port: 4000\n"
        "librechat_mongo_uri: mongodb://chat-db.example.test:27017/LibreChat\n"
        "telegraf_hostname: '{{ inventory_hostname }}-outer'\n"
        "other_setting: not forwarded\n"
        "ansible_user: debian\n"
    )
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    variables = {
        "scheduler_forward_exclude": ["litellm_port"],
        "scheduler_extra_vars": {"vllm_gpu_memory_utilization": 0.8},
    }
    templates = nested_inventory_templates(inventory)
    playbook = write_render_playbook(tmp_path / "render.yml", templates)
    (tmp_path / "extra.json").write_text(json.dumps(variables))
    rendered = run_playbook(
        "-i",
        str(outer / "hosts.yml"),
        str(playbook),
        "-e",
        "@extra.json",
        "--vault-password-file",
        str(password),
        cwd=tmp_path,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    forwarded_text = templates["forwarded.yml.j2"].read_text()
    assert "!vault" not in forwarded_text, "the nested runs have no vault password"

    run, data = run_inventory(inventory / "hosts.yml", run_env)  # the file alone parses
    assert run.returncode == 0, run.output
    run, data = run_inventory(inventory, run_env)
    assert run.returncode == 0, run.output
    hosts = inventory_hosts(data)

    assert group_members(data, "inference") == {"parrotpark-gpu"}, "only the Instance named parrotpark_gpu_name"
    assert group_members(data, "gpu") == {"parrotpark-gpu"}
    assert group_members(data, "entrance") == {"entrance-1"}
    assert group_members(data, "gateway") == group_members(data, "chat") == SERVICES_ON[layout]
    assert "web-1" not in hosts and "far-gpu" not in hosts, "other tags and zones are not listed"

    server = hosts["parrotpark-gpu"]
    assert server["ansible_host"] == gpu.private_ip == server["parrotpark_private_address"]
    assert server["ansible_user"] == "root"
    assert server["ansible_ssh_private_key_file"] == "/etc/parrotpark/scheduler/ssh/id_ed25519"
    assert server["ansible_ssh_common_args"] == "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    assert server["ansible_python_interpreter"] == "/usr/bin/python3"
    assert server["vllm_api_key"] == "vaulted-vllm-key-0123456789", "decrypted for the nested runs"
    assert server["docker_daemon_insecure_registries"] == ["parrotpark-lab-registry:5000"]
    assert server["telegraf_hostname"] == "entrance-1-outer", "rendered in the outer run"
    assert server["librechat_mongo_uri"] == "mongodb://chat-db.example.test:27017/LibreChat"
    assert server["vllm_gpu_memory_utilization"] == 0.8
    assert server["parrotpark_secrets_dir"] == "/etc/parrotpark/scheduler/secrets"
    for name in ("litellm_port", "other_setting"):
        assert name not in server, name
    assert "debian" not in forwarded_text, "connection settings are never forwarded"

    entrance = hosts["entrance-1"]
    assert entrance["ansible_connection"] == "local"
    assert entrance["ansible_python_interpreter"] == "/opt/parrotpark/venv/bin/python"


def test_schedule_file_and_command_are_what_the_program_reads(tmp_path):
    """The rendered schedule.json loads in the program with the same days, hours and holidays, and the
    rendered command runs the program with the paths of the installation."""
    variables = {
        "scheduler_days": ["Tue", "Sun"],
        "scheduler_holidays": ["2026-01-04"],
        "scheduler_retry_minutes": 30,
        "_scheduler_lib_dir": str(PROGRAM.parent),  # the program where the command looks for it
        "_scheduler_schedule_file": str(tmp_path / "schedule.json"),
    }
    command = tmp_path / "parrotpark-gpu"
    templates = {"schedule.json.j2": tmp_path / "schedule.json", "parrotpark-gpu.j2": command}
    rendered = render_role_vars(
        tmp_path, ["_scheduler_schedule", "_scheduler_command_settings"], variables, templates=templates
    )
    path = tmp_path / "schedule.json"
    assert json.loads(path.read_text()) == rendered["_scheduler_schedule"]
    assert command.read_text().startswith("#!/usr/bin/python3\n")
    result = subprocess.run(
        [sys.executable, str(command), "next-up", "--at", "2025-12-30T20:00", "--iso"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2026-01-06T08:00+01:00", "after Tue 30 Dec: not Sun 4 Jan, a holiday"
    sys.path.insert(0, str(PROGRAM.parent))
    try:
        import parrotpark_gpu
    finally:
        sys.path.remove(str(PROGRAM.parent))
    schedule = parrotpark_gpu.Schedule.load(path)
    assert schedule.days == (1, 6) and schedule.retry == 30 and schedule.holidays == {date(2026, 1, 4)}
    assert schedule.up == 8 * 60 and schedule.down == 19 * 60 and schedule.zone_name == "Europe/Paris"
    settings = rendered["_scheduler_command_settings"]
    assert settings["ansible_playbook"] == "/opt/parrotpark/venv/bin/ansible-playbook"
    assert settings["lock_wait"] == 3600 and settings["playbooks"]["up"] == "parrotpark.llm.gpu_up"
    assert set(settings) <= set(parrotpark_gpu.DEFAULTS)


def test_nested_inventory_is_the_same_bytes_in_every_run(tmp_path):
    """A second site.yml must not rewrite the nested inventory: the rendering may not depend on Python's string
    hashing, which changes with every process (PYTHONHASHSEED), as the order of a set operation does."""
    outer = tmp_path / "hosts.yml"
    outer.write_text(
        "all:\n  children:\n"
        "    entrance: {hosts: {entrance-1: {ansible_connection: local}}}\n"
        "    chat: {hosts: {entrance-1: {}}}\n"
        "    inference: {hosts: {entrance-1: {}}}\n"
        "    gateway: {hosts: {entrance-1: {}}}\n"
    )
    renderings = set()
    for seed in range(6):
        inventory = tmp_path / f"seed-{seed}"
        (inventory / "group_vars" / "all").mkdir(parents=True)
        templates = nested_inventory_templates(inventory)
        playbook = write_render_playbook(tmp_path / f"render-{seed}.yml", templates)
        rendered = run_playbook(
            "-i", str(outer), str(playbook), cwd=tmp_path, timeout=120, env=ansible_env({"PYTHONHASHSEED": str(seed)})
        )
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        renderings.add(tuple(path.read_text() for path in templates.values()))
    assert len(renderings) == 1, "the nested inventory differs between runs"
    hosts = yaml.safe_load(next(iter(renderings))[0])
    assert list(hosts["all"]["children"]) == ["entrance", "gateway", "chat", "inference", "gpu"], (
        "the entrance's groups in the documented order, then the GPU server's"
    )


def test_gpu_gateway_layout_gives_the_gpu_the_services_and_their_secrets(tmp_path):
    """An entrance in neither gateway nor chat (localhost here): the GPU server joins both groups in the nested
    runs, and the scheduler copies LiteLLM's and LibreChat's secrets kept under the entrance's name."""
    rendered = render_role_vars(tmp_path, ["scheduler_gpu_groups", "scheduler_secret_files"], {})
    assert rendered["scheduler_gpu_groups"] == ["inference", "gpu", "gateway", "chat"]
    assert rendered["scheduler_secret_files"] == [
        "vllm-api-key",
        "litellm-master-key",
        "localhost/postgres-metrics",
        *(f"localhost/{name}" for name in GPU_GATEWAY_SECRET_FILES),
    ]


# --------------------------------------------------------------------------
# The report: its settings, price table and units as rendered
# --------------------------------------------------------------------------


def test_report_settings_price_table_and_units_are_what_the_program_reads(tmp_path):
    """The command's report settings (psql in the pgvector container, the fallback from litellm_fallback), the price
    table with scheduler_report_prices replacing the shipped fixed_monthly (read by the report's own reader), and
    the report's service and timer as rendered."""
    fixed = [{"name": "GPU cache volume (Block SSD)", "quantity": 150, "price": "block_ssd"}]
    variables = {
        "scheduler_report_prices": {"fixed_monthly": fixed},
        "scheduler_report_calendars": ["*-*-01 05:00:00 UTC"],
        "scheduler_report_dir": "/srv/reports",
        "litellm_fallback": {"model": "openai/mistral-small-3.2", "api_base": "https://api.example/v1"},
        "role_path": str(ROLE),
        "__scheduler_action": "report",
        "_scheduler_on_demand": False,
        "_scheduler_timers_on": True,
    }
    templates = {
        "parrotpark-gpu.service.j2": tmp_path / "parrotpark-gpu-report.service",
        "parrotpark-gpu-report.timer.j2": tmp_path / "parrotpark-gpu-report.timer",
    }
    rendered = render_role_vars(
        tmp_path,
        ["_scheduler_command_settings", "_scheduler_report_prices", "_scheduler_timer_on", "_scheduler_unit_paths"],
        variables,
        templates=templates,
    )
    report = rendered["_scheduler_command_settings"]["report"]
    assert report == {
        "prices": "/etc/parrotpark/scheduler/report-prices.yml",
        "out_dir": "/srv/reports",
        "timezone": "Europe/Paris",
        "psql": [
            "docker",
            "exec",
            "--interactive",
            "parrotpark-postgres",
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--csv",
            "--set=ON_ERROR_STOP=1",
            "--username=metrics",
            "--dbname=metrics",
        ],
        "fallback": {"name": "parrotpark-fallback", "models": ["openai/mistral-small-3.2"]},
    }
    assert rendered["_scheduler_timer_on"]["report"] is True
    assert "/etc/systemd/system/parrotpark-gpu-report.timer" in rendered["_scheduler_unit_paths"]
    sys.path.insert(0, str(PROGRAM.parent))
    try:
        import gpu_report
        import parrotpark_gpu
    finally:
        sys.path.remove(str(PROGRAM.parent))
    assert set(rendered["_scheduler_command_settings"]) <= set(parrotpark_gpu.DEFAULTS)
    table = rendered["_scheduler_report_prices"]
    shipped = yaml.safe_load((ROLE / "files" / "hosted_prices.yml").read_text())
    # Dates come back as text through JSON.
    assert table["fixed_monthly"] == fixed and table["hosted"] == json.loads(json.dumps(shipped["hosted"], default=str))
    prices = tmp_path / "report-prices.yml"
    prices.write_text(yaml.safe_dump(table, sort_keys=False))
    loaded = gpu_report.load_prices(prices)
    assert [item.name for item in loaded.fixed] == ["GPU cache volume (Block SSD)"]
    assert loaded.fixed[0].unit_price_eur == gpu_report.Decimal("0.095")
    service = (tmp_path / "parrotpark-gpu-report.service").read_text()
    assert "ExecStart=/usr/local/bin/parrotpark-gpu report --timer\n" in service
    assert "flock" not in service and "/srv/reports" in service
    timer = (tmp_path / "parrotpark-gpu-report.timer").read_text()
    assert "OnCalendar=*-*-01 05:00:00 UTC\n" in timer and "Unit=parrotpark-gpu-report.service" in timer
    assert "Persistent=true" in timer
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "calendar", "*-*-01 05:00:00 UTC"], capture_output=True, text=True, check=False
        )
        assert verify.returncode == 0, verify.stderr


def test_report_defaults_without_a_fallback(tmp_path):
    rendered = render_role_vars(
        tmp_path,
        ["scheduler_report_fallback_name", "scheduler_report_fallback_models", "_scheduler_timer_on"],
        {"scheduler_report_calendars": [], "_scheduler_on_demand": False, "_scheduler_timers_on": False},
    )
    assert rendered["scheduler_report_fallback_name"] == "parrotpark-fallback"
    assert rendered["scheduler_report_fallback_models"] == []
    assert rendered["_scheduler_timer_on"]["report"] is False
