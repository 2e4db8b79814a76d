"""Verify the telegraf role on a molecule platform.

Telegraf runs as the variables say (image, command, host network, read-only
mounts of the host and the docker socket, the socket's group, no secret in
the container's configuration), telegraf.conf is 0600 and belongs to the
image's telegraf user, the health endpoint answers, and the metrics arrive
in PostgreSQL: a table per measurement, named as documented in
docs/telegraf.md (cpu, mem, disk, system, net, docker_container_cpu, and one
per Prometheus metric: "vllm:num_requests_running", ...), with rows from this
host and each scrape target, the vllm-double's counters counting the
requests prepare.yml made, and the global tags stored as written. At the end
the role runs again against the instance: (when the file is checked with
`telegraf --test`) a scrape target that does not answer keeps the new file
from being installed; a changed password restarts Telegraf, and when the
database refuses it the role fails with Telegraf's log; the scenario's
settings then bring it back.

Queries run with psql inside the PostgreSQL container, which trusts local
connections.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import converge, recap_changed, resolve, wait_healthy
from molecule_support import inspect_container as inspect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles/telegraf/defaults/main.yml").read_text())
PGVECTOR_DEFAULTS = yaml.safe_load((ROOT / "roles/pgvector/defaults/main.yml").read_text())
CONTAINER_CONFIG = "/etc/telegraf/telegraf.conf"
CONTAINER_HEALTH_CONFIG = "/etc/telegraf/health.conf"
HEALTH_SOCKET = "/run/telegraf/health.sock"
# Tables of the host inputs, and of the docker input when it is on.
HOST_TABLES = {"cpu", "mem", "disk", "diskio", "system", "net"}
DOCKER_TABLES = {"docker", "docker_container_cpu", "docker_container_mem", "docker_container_status"}
# What the vllm-double serves, with vLLM's names (lab/images/vllm-double).
VLLM_TABLES = {
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:time_to_first_token_seconds",
    "vllm:e2e_request_latency_seconds",
}
# What molecule/telegraf-default/metrics_backend.py serves.
EXPORTER_TABLES = {"exporter:scrapes_total", "exporter:refused_scrapes_total", "exporter_up"}
WAIT_SECONDS = 90


@pytest.fixture(scope="module")
def role_vars(host) -> dict[str, Any]:
    """Role defaults (telegraf, pgvector) overlaid with the scenario's inventory variables, rendered."""
    inventory = host.ansible.get_variables()
    return resolve({**PGVECTOR_DEFAULTS, **DEFAULTS, **inventory}, ("telegraf_", "pgvector_container_name"))


@pytest.fixture(scope="module")
def container(host, role_vars) -> dict[str, Any]:
    return inspect(host, role_vars["telegraf_container_name"])


def log_of(host, role_vars) -> str:
    result = host.run(f"docker logs --tail 60 {role_vars['telegraf_container_name']}")
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def psql(host, role_vars):
    """Run a query in the metrics database as the superuser; returns the rows as lists of strings."""
    database = role_vars["telegraf_postgresql_database"]

    def query(sql: str) -> list[list[str]]:
        result = host.run(
            f"docker exec {shlex.quote(role_vars['pgvector_container_name'])} psql --username postgres "
            f"--dbname {shlex.quote(database)} --no-psqlrc --no-align --tuples-only --field-separator '|' "
            f"--command {shlex.quote(sql)}"
        )
        assert result.rc == 0, f"{sql}: {result.stderr}"
        return [line.split("|") for line in result.stdout.splitlines() if line]

    return query


def ident(name: str) -> str:
    """A quoted SQL identifier (table names such as vllm:num_requests_running)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def vllm_targets(role_vars) -> list[str]:
    ports = {str(double["port"]) for double in role_vars.get("molecule_vllm_doubles", [])}
    return [
        target["name"]
        for target in role_vars["telegraf_prometheus_targets"]
        if re.search(r":(\d+)/", target["url"]) and re.search(r":(\d+)/", target["url"]).group(1) in ports
    ]


def token_targets(role_vars) -> list[str]:
    return [target["name"] for target in role_vars["telegraf_prometheus_targets"] if target.get("bearer_token")]


def expected_tables(role_vars) -> set[str]:
    tables = set(HOST_TABLES)
    if role_vars["telegraf_docker_enabled"]:
        tables |= DOCKER_TABLES
    if vllm_targets(role_vars):
        tables |= VLLM_TABLES
    if token_targets(role_vars):
        tables |= EXPORTER_TABLES
    return tables


def tables_with_rows(psql, role_vars) -> set[str]:
    schema = role_vars["telegraf_postgresql_schema"]
    names = [
        row[0]
        for row in psql(f"SELECT table_name FROM information_schema.tables WHERE table_schema = {literal(schema)}")
    ]
    found = set()
    for name in names:
        rows = psql(
            f"SELECT count(*) FROM {ident(schema)}.{ident(name)} WHERE host = {literal(role_vars['telegraf_hostname'])}"
        )
        if int(rows[0][0]) > 0:
            found.add(name)
    return found


@pytest.fixture(scope="module")
def stored_tables(psql, role_vars) -> set[str]:
    """The tables with rows from this host, once every expected one has some (bounded wait)."""
    wanted = expected_tables(role_vars)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = tables_with_rows(psql, role_vars)
        if wanted <= found or time.monotonic() > deadline:
            return found
        time.sleep(2)


def columns(psql, role_vars, table: str) -> set[str]:
    schema = role_vars["telegraf_postgresql_schema"]
    rows = psql(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = {literal(schema)} AND table_name = {literal(table)}"
    )
    return {row[0] for row in rows}


# --- the container -----------------------------------------------------------


def test_container_runs_the_image_in_the_host_network(host, container, role_vars):
    assert container["State"]["Running"], log_of(host, role_vars)
    assert container["State"]["Restarting"] is False
    assert container["Config"]["Image"] == role_vars["telegraf_image"]
    # health.conf after telegraf.conf: the outputs of one file connect in no fixed order, the files in order,
    # so the health endpoint cannot answer before the database accepted Telegraf.
    assert container["Config"]["Cmd"] == [
        "telegraf",
        "--config",
        CONTAINER_CONFIG,
        "--config",
        CONTAINER_HEALTH_CONFIG,
        "--strict-env-handling",
    ]
    assert container["HostConfig"]["NetworkMode"] == "host"
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": role_vars["telegraf_log_max_size"], "max-file": str(role_vars["telegraf_log_max_file"])},
    }
    assert container["Config"]["Labels"]["parrotpark.role"] == "telegraf"
    assert not container["HostConfig"].get("PortBindings")


def test_container_becomes_healthy(host, role_vars):
    """Docker's health check (the health endpoint over its unix socket) passes; bounded wait."""
    state = wait_healthy(host, role_vars["telegraf_container_name"], WAIT_SECONDS)["State"]
    status = state.get("Health", {}).get("Status")
    assert status == "healthy", f"{status}: {state.get('Health')}\n{log_of(host, role_vars)}"


def test_health_endpoint_answers(host, role_vars):
    result = host.run(
        f"docker exec {role_vars['telegraf_container_name']} curl --silent --show-error --write-out ' %{{http_code}}' "
        f"--unix-socket {HEALTH_SOCKET} http://localhost/"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.endswith(" 200"), result.stdout


def health_answers(host, name: str) -> bool:
    result = host.run(
        f"docker exec {name} curl --silent --fail --output /dev/null --unix-socket {HEALTH_SOCKET} http://x/"
    )
    return result.rc == 0


def test_killed_telegraf_is_restarted_and_healthy_again(host, role_vars):
    """Killed (not stopped), Telegraf is started again by Docker's restart policy and listens again: the
    socket directory is a tmpfs, so no socket file of the killed process is in the way."""
    name = role_vars["telegraf_container_name"]
    before = inspect(host, name)
    assert before["HostConfig"]["Tmpfs"] == {"/run/telegraf": "rw,noexec,nosuid,size=1m,mode=1777"}
    host.run_expect([0], f"kill -KILL {before['State']['Pid']}")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        after = inspect(host, name)
        if after["RestartCount"] > before["RestartCount"] and after["State"]["Running"] and health_answers(host, name):
            break
        assert time.monotonic() < deadline, f"{after['State']}\n{log_of(host, role_vars)}"
        time.sleep(2)


def test_mounts_are_read_only(host, container, role_vars):
    mounts = {mount["Destination"]: mount for mount in container["Mounts"]}
    expected = {"/etc/telegraf", "/hostfs"} | (
        {"/var/run/docker.sock"} if role_vars["telegraf_docker_enabled"] else set()
    )
    assert set(mounts) == expected
    assert mounts["/etc/telegraf"]["Source"] == role_vars["telegraf_config_dir"]
    assert mounts["/hostfs"]["Source"] == "/"
    assert mounts["/hostfs"]["Propagation"] == "rslave"
    for mount in mounts.values():
        assert mount["RW"] is False, mount
    if role_vars["telegraf_docker_enabled"]:
        assert mounts["/var/run/docker.sock"]["Source"] == role_vars["telegraf_docker_socket"]


def test_telegraf_user_may_use_the_docker_socket(host, container, role_vars):
    """The container joins the socket's group, and the telegraf process keeps it after the entrypoint."""
    if not role_vars["telegraf_docker_enabled"]:
        assert not container["HostConfig"].get("GroupAdd")
        return
    gid = host.check_output(f"stat -c %g {role_vars['telegraf_docker_socket']}")
    assert container["HostConfig"]["GroupAdd"] == [gid]
    status = host.check_output(
        f"docker exec {role_vars['telegraf_container_name']} sh -c 'grep -E \"^(Uid|Groups):\" /proc/1/status'"
    )
    uid = host.check_output(f"docker exec {role_vars['telegraf_container_name']} id -u telegraf")
    assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), status
    assert gid in re.search(r"^Groups:(.*)$", status, re.M).group(1).split(), status


def test_no_gpu_requested_without_nvidia_smi(container, role_vars):
    enabled = role_vars["telegraf_nvidia_smi_enabled"]
    assert enabled in ("auto", False), "the lab has no GPU: a scenario cannot force nvidia_smi on"
    assert not container["HostConfig"].get("DeviceRequests")
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert "NVIDIA_VISIBLE_DEVICES" not in env


def test_environment_points_at_the_host_and_holds_no_secret(host, container, role_vars):
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert {key: env.get(key) for key in ("HOST_PROC", "HOST_SYS", "HOST_ETC", "HOST_MOUNT_PREFIX")} == {
        "HOST_PROC": "/hostfs/proc",
        "HOST_SYS": "/hostfs/sys",
        "HOST_ETC": "/hostfs/etc",
        "HOST_MOUNT_PREFIX": "/hostfs",
    }
    inspected = host.check_output(f"docker inspect {role_vars['telegraf_container_name']}")
    secrets = [role_vars["telegraf_postgresql_password"]] + [
        target["bearer_token"] for target in role_vars["telegraf_prometheus_targets"] if target.get("bearer_token")
    ]
    for secret in secrets:
        assert secret not in inspected


# --- telegraf.conf -------------------------------------------------------------


def test_config_file_belongs_to_the_telegraf_user_mode_0600(host, role_vars):
    directory = host.file(role_vars["telegraf_config_dir"])
    config = host.file(f"{role_vars['telegraf_config_dir']}/telegraf.conf")
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o755)
    passwd = host.check_output(
        f"docker run --rm --network none --entrypoint getent {role_vars['telegraf_image']} passwd telegraf"
    ).split(":")
    assert (config.uid, config.gid, config.mode) == (int(passwd[2]), int(passwd[3]), 0o600)


def test_config_file_says_what_the_variables_say(host, role_vars):
    text = host.file(f"{role_vars['telegraf_config_dir']}/telegraf.conf").content_string
    assert f'interval = "{role_vars["telegraf_interval"]}s"' in text
    assert f'flush_interval = "{role_vars["telegraf_flush_interval"]}s"' in text
    assert f"hostname = {json.dumps(role_vars['telegraf_hostname'])}" in text
    assert text.count("[[inputs.prometheus]]") == len(role_vars["telegraf_prometheus_targets"])
    assert text.count("metric_version = 1") == len(role_vars["telegraf_prometheus_targets"])
    assert ("[[inputs.docker]]" in text) == role_vars["telegraf_docker_enabled"]
    assert "[[inputs.nvidia_smi]]" not in text
    assert ("create_hypertable" in text) == role_vars["telegraf_postgresql_timescaledb"]
    assert "[[outputs.postgresql]]" in text
    assert "[[outputs.health]]" not in text
    health = host.file(f"{role_vars['telegraf_config_dir']}/health.conf").content_string
    assert "[[outputs.health]]" in health
    assert "[[outputs.postgresql]]" not in health
    # A '$' reaches Telegraf doubled, so it is not taken for an environment variable.
    for value in role_vars["telegraf_global_tags"].values():
        assert json.dumps(str(value).replace("$", "$$")) in text


# --- the metrics in PostgreSQL ---------------------------------------------------


def test_every_expected_table_has_rows_from_this_host(stored_tables, role_vars, host):
    missing = expected_tables(role_vars) - stored_tables
    assert not missing, f"no rows yet in {sorted(missing)}; found {sorted(stored_tables)}\n{log_of(host, role_vars)}"


def test_only_enabled_inputs_are_stored(stored_tables, role_vars):
    assert "nvidia_smi" not in stored_tables
    if not role_vars["telegraf_docker_enabled"]:
        assert not {table for table in stored_tables if table.startswith("docker")}


def test_host_metrics_have_values(psql, stored_tables, role_vars):
    host_tag = literal(role_vars["telegraf_hostname"])
    total = psql(f"SELECT max(total) FROM mem WHERE host = {host_tag}")[0][0]
    assert float(total) > 0
    idle = psql(f"SELECT max(usage_idle) FROM cpu WHERE host = {host_tag} AND cpu = 'cpu-total'")[0][0]
    assert 0 <= float(idle) <= 100
    assert "time" in columns(psql, role_vars, "cpu")


def test_containers_are_named_in_docker_metrics(psql, stored_tables, role_vars):
    if not role_vars["telegraf_docker_enabled"]:
        pytest.skip("the docker input is off in this scenario")
    names = {row[0] for row in psql("SELECT DISTINCT container_name FROM docker_container_cpu")}
    assert role_vars["pgvector_container_name"] in names, names
    assert role_vars["telegraf_container_name"] in names, names
    labelled = {row[0] for row in psql('SELECT DISTINCT "parrotpark.role" FROM docker_container_cpu')}
    assert {"pgvector", "telegraf"} <= labelled, labelled


def counter_column(psql, role_vars, table: str) -> str:
    """The field of a counter: `counter`. (An exporter that declares a counter's family without its
    _total suffix, unlike prometheus_client, makes Telegraf see an untyped metric: field `value`.)"""
    found = columns(psql, role_vars, table)
    return "counter" if "counter" in found else "value"


def test_vllm_metrics_per_target(psql, stored_tables, role_vars):
    """The vllm-double's metrics, a table per metric, tagged with the target; the two requests counted."""
    targets = vllm_targets(role_vars)
    if not targets:
        pytest.skip("no vllm-double is scraped in this scenario")
    for target in targets:
        where = f"target = {literal(target)} AND host = {literal(role_vars['telegraf_hostname'])}"
        running = psql(f'SELECT count(*), max(gauge) FROM "vllm:num_requests_running" WHERE {where}')[0]
        assert int(running[0]) > 0 and float(running[1]) == 0.0, running
        assert {"model_name", "engine", "url", "target"} <= columns(psql, role_vars, "vllm:num_requests_running")
        # vLLM (prometheus_client) types its counters as <name>_total: Telegraf stores them as counters.
        field = "counter"
        assert field in columns(psql, role_vars, "vllm:request_success_total")
        stops = psql(
            f"SELECT max({ident(field)}) FROM \"vllm:request_success_total\" WHERE {where} AND finished_reason = 'stop'"
        )[0][0]
        assert float(stops) >= 2, stops
        latency = psql(f'SELECT max("count"), max("sum") FROM "vllm:e2e_request_latency_seconds" WHERE {where}')[0]
        assert float(latency[0]) >= 2 and float(latency[1]) > 0, latency
        assert "+Inf" in columns(psql, role_vars, "vllm:e2e_request_latency_seconds")


def test_bearer_token_target_is_scraped(psql, stored_tables, role_vars):
    """The exporter answers only with the right token: its rows prove Telegraf sent it (with its '$')."""
    targets = token_targets(role_vars)
    if not targets:
        pytest.skip("no target with a bearer token in this scenario")
    for target in targets:
        field = counter_column(psql, role_vars, "exporter:scrapes_total")
        rows = psql(f'SELECT max({ident(field)}) FROM "exporter:scrapes_total" WHERE target = {literal(target)}')
        assert float(rows[0][0]) >= 1, rows


def test_global_tags_stored_as_written(psql, stored_tables, role_vars):
    host_tag = literal(role_vars["telegraf_hostname"])
    for name, value in role_vars["telegraf_global_tags"].items():
        stored = {row[0] for row in psql(f"SELECT DISTINCT {ident(name)} FROM cpu WHERE host = {host_tag}")}
        assert stored == {str(value)}, (name, stored)


# --- the role again, against this instance --------------------------------------


def test_appended_ledger_lines_are_stored_once(host, psql, role_vars):
    """telegraf_influx_tail_files: each line appended to the file becomes one row, however many intervals pass
    (inputs.file would store the whole file again at every interval)."""
    files = role_vars.get("telegraf_influx_tail_files") or []
    if not files:
        pytest.skip("this scenario tails no file")
    path = shlex.quote(files[0])
    # The file exists before the lines come, as the scheduler role creates the waker's ledger empty.
    created = host.run(f"mkdir -p {shlex.quote(str(Path(files[0]).parent))} && touch {path}")
    assert created.rc == 0, created.stderr
    time.sleep(2 * role_vars["telegraf_interval"])
    stamp = time.time_ns()
    lines = [f"molecule_ledger,event=created n=1i {stamp}", f"molecule_ledger,event=destroyed n=2i {stamp + 1000}"]
    for line in lines:
        appended = host.run(f"echo {shlex.quote(line)} >> {path}")
        assert appended.rc == 0, appended.stderr
        time.sleep(role_vars["telegraf_interval"])
    deadline = time.monotonic() + WAIT_SECONDS
    count = 0
    while time.monotonic() < deadline:
        exists = psql("SELECT to_regclass('molecule_ledger') IS NOT NULL")[0][0] == "t"
        count = int(psql("SELECT count(*) FROM molecule_ledger")[0][0]) if exists else 0
        if count >= len(lines):
            break
        time.sleep(2)
    # Three more intervals: nothing is stored again.
    time.sleep(3 * (role_vars["telegraf_interval"] + role_vars["telegraf_flush_interval"]))
    rows = psql("SELECT event, n FROM molecule_ledger ORDER BY time")
    assert rows == [["created", "1"], ["destroyed", "2"]], f"{rows}\n{log_of(host, role_vars)}"


def test_unreachable_target_keeps_the_new_file_out(host, role_vars, stored_tables):
    """With telegraf --test as the check, a target that does not answer rejects the file; nothing changes."""
    if not role_vars["telegraf_validate_gather"]:
        pytest.skip("this scenario checks the file with `telegraf config check`, which does not scrape")
    config = f"{role_vars['telegraf_config_dir']}/telegraf.conf"
    before = (host.file(config).sha256sum, inspect(host, role_vars["telegraf_container_name"])["State"]["StartedAt"])
    targets = [*role_vars["telegraf_prometheus_targets"], {"name": "nowhere", "url": "http://127.0.0.1:9/metrics"}]
    result = converge({"telegraf_prometheus_targets": targets})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-4000:]
    assert "The new telegraf.conf was not installed and Telegraf keeps running the previous one" in output, output
    assert "127.0.0.1:9" in output, output[-4000:]
    assert recap_changed(result) == 0
    after = (host.file(config).sha256sum, inspect(host, role_vars["telegraf_container_name"])["State"]["StartedAt"])
    assert after == before


def test_changed_password_restarts_telegraf_and_a_refused_login_fails_the_role(host, psql, role_vars, stored_tables):
    """A changed setting rewrites telegraf.conf and restarts Telegraf. Here the database refuses the new
    password: Telegraf stops at start, and the role fails, with the log, without showing the password.
    The scenario's own settings then bring Telegraf back, and rows arrive again."""
    name = role_vars["telegraf_container_name"]
    started = inspect(host, name)["State"]["StartedAt"]
    wrong = "Wrong-password-0123456789"
    result = converge({"telegraf_postgresql_password": wrong, "telegraf_health_retries": 6, "telegraf_health_delay": 2})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, f"{output[-3000:]}\n{inspect(host, name)['State']}\n{log_of(host, role_vars)}"
    assert f"Telegraf in container {name} did not become healthy" in output, output[-4000:]
    assert "password authentication failed" in output, output[-4000:]
    assert wrong not in output
    assert inspect(host, name)["State"]["StartedAt"] != started

    result = converge({})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    assert recap_changed(result) >= 1
    restored = host.check_output("date -u '+%Y-%m-%d %H:%M:%S+00'")
    host_tag = literal(role_vars["telegraf_hostname"])
    deadline = time.monotonic() + WAIT_SECONDS
    while not psql(f"SELECT 1 FROM cpu WHERE host = {host_tag} AND time > {literal(restored)} LIMIT 1"):
        assert time.monotonic() < deadline, log_of(host, role_vars)
        time.sleep(2)
