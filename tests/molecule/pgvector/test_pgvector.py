"""Verify the pgvector role on a molecule platform: the server runs healthy with the
scenario's settings, vector search works, each application user reaches only its
own database, and the dump timer of earlier versions is gone (backups are the backup
role's, tested by backup-default) while the dumps it wrote stay."""

from __future__ import annotations

import shlex
import stat
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import wait_healthy

DEFAULTS = yaml.safe_load((Path(__file__).parents[3] / "roles/pgvector/defaults/main.yml").read_text())


@pytest.fixture(scope="module")
def role_vars(host):
    """Role defaults overlaid with the scenario's inventory variables (templated defaults left as they are)."""
    inventory = host.ansible.get_variables()
    merged = {key: inventory.get(key, value) for key, value in DEFAULTS.items()}
    merged["inventory_hostname"] = inventory["inventory_hostname"]
    merged["secrets"] = Path(inventory["parrotpark_secrets_dir"]) / inventory["inventory_hostname"]
    return merged


def password(role_vars, owner: str) -> str:
    given = role_vars["pgvector_passwords"]
    if owner in given:
        return given[owner]
    return (role_vars["secrets"] / f"postgres-{owner}").read_text().split()[0]


@pytest.fixture(scope="module")
def vector_db(role_vars):
    return next(db for db in role_vars["pgvector_databases"] if "vector" in db.get("extensions", []))


def client_sql(host, role_vars, user: str, database: str, sql: str, *, secret: str | None = None):
    """Run psql as an application user over the docker network, from a throwaway client container."""
    secret = secret if secret is not None else password(role_vars, user)
    url = f"postgresql://{user}:{secret}@{role_vars['pgvector_container_name']}:5432/{database}"
    command = (
        f"docker run --rm --network {role_vars['pgvector_docker_network']} --entrypoint psql "
        f"{role_vars['pgvector_image']} {shlex.quote(url)} -v ON_ERROR_STOP=1 -At -c {shlex.quote(sql)}"
    )
    return host.run(command)


def wait_accepting(host, container: str, seconds: int = 90) -> None:
    """Wait until the server in ``container`` accepts connections over TCP. The image's first start runs a
    temporary server on the socket only, then stops it: a socket that answers can still vanish, TCP cannot."""
    for _attempt in range(seconds):
        if host.run(f"docker exec {container} pg_isready -U postgres -h 127.0.0.1").rc == 0:
            return
        time.sleep(1)
    raise AssertionError(f"PostgreSQL in {container} did not accept connections within {seconds}s")


def local_sql(host, container: str, database: str, sql: str) -> str:
    return host.check_output(
        f"docker exec {container} psql -U postgres -d {database} -v ON_ERROR_STOP=1 -At -c {shlex.quote(sql)}"
    )


@pytest.fixture(scope="module")
def inspect(host, role_vars):
    return wait_healthy(host, role_vars["pgvector_container_name"])


def test_container_runs_healthy_with_bounded_logs(host, inspect, role_vars):
    state = inspect["State"]
    if state.get("Health", {}).get("Status") != "healthy":
        print(host.run(f"docker logs --tail 50 {role_vars['pgvector_container_name']}").stderr)
    assert state["Running"]
    assert state["Health"]["Status"] == "healthy"
    assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert inspect["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": role_vars["pgvector_log_max_size"], "max-file": str(role_vars["pgvector_log_max_file"])},
    }
    assert role_vars["pgvector_docker_network"] in inspect["NetworkSettings"]["Networks"]


def test_published_only_where_told(inspect, role_vars):
    bindings = inspect["HostConfig"]["PortBindings"] or {}
    expected = [
        {"HostIp": address, "HostPort": str(role_vars["pgvector_port"])}
        for address in role_vars["pgvector_listen_addresses"]
    ]
    assert bindings.get("5432/tcp", []) == expected


def test_superuser_password_is_a_secret(host, inspect, role_vars):
    env = "\n".join(inspect["Config"]["Env"])
    superuser = (role_vars["secrets"] / "postgres-superuser").read_text().split()[0]
    assert superuser not in env, "the superuser password must not be in the container's environment"
    secret_file = host.file(f"{role_vars['pgvector_config_dir']}/superuser-password")
    assert secret_file.mode == 0o600
    assert secret_file.uid == 999
    # generated passwords are kept on the controller, readable by its owner only
    for file in role_vars["secrets"].glob("postgres-*"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_settings_in_effect(host, role_vars):
    container = role_vars["pgvector_container_name"]
    conf = host.file(f"{role_vars['pgvector_config_dir']}/postgresql.conf").content_string
    shared = next(line.split("=")[1].strip() for line in conf.splitlines() if line.startswith("shared_buffers"))
    assert local_sql(host, container, "postgres", "SHOW shared_buffers") == shared
    assert local_sql(host, container, "postgres", "SHOW max_connections") == str(role_vars["pgvector_max_connections"])
    if role_vars["pgvector_shared_buffers_mb"]:
        assert shared == f"{role_vars['pgvector_shared_buffers_mb']}MB"
    for name, value in role_vars["pgvector_settings"].items():
        shown = local_sql(host, container, "postgres", f"SELECT setting FROM pg_settings WHERE name = '{name}'")
        assert shown == str(value), name


def test_databases_owners_and_extensions(host, role_vars):
    container = role_vars["pgvector_container_name"]
    for database in role_vars["pgvector_databases"]:
        owner = local_sql(
            host,
            container,
            "postgres",
            f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database['name']}'",
        )
        assert owner == database["owner"]
        installed = local_sql(host, container, database["name"], "SELECT extname FROM pg_extension").split()
        for extension in database.get("extensions", []):
            assert extension in installed


def test_nearest_neighbour_query(host, role_vars, vector_db):
    sql = (
        "DROP TABLE IF EXISTS items; CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));"
        "INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]'), (4, '[0.9,0.1,0]');"
        "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);"
        "SELECT id FROM items ORDER BY embedding <-> '[0,0.2,0.9]' LIMIT 1;"
    )
    result = client_sql(host, role_vars, vector_db["owner"], vector_db["name"], sql)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "3"


def test_each_user_reaches_only_its_own_database(host, role_vars):
    databases = role_vars["pgvector_databases"]
    for database in databases:
        own = client_sql(host, role_vars, database["owner"], database["name"], "SELECT current_database()")
        assert own.rc == 0, own.stderr
        assert own.stdout.strip() == database["name"]
        for other in databases:
            if other["owner"] == database["owner"]:
                continue
            refused = client_sql(host, role_vars, database["owner"], other["name"], "SELECT 1")
            assert refused.rc != 0, f"{database['owner']} reached {other['name']}"
            assert "no pg_hba.conf entry" in refused.stderr or "permission denied" in refused.stderr
    first = databases[0]
    wrong = client_sql(host, role_vars, first["owner"], first["name"], "SELECT 1", secret="wrong-password-123")
    assert wrong.rc != 0
    assert "password authentication failed" in wrong.stderr


OLD_BACKUP_FILES = (
    "/etc/systemd/system/parrotpark-pg-backup.timer",
    "/etc/systemd/system/parrotpark-pg-backup.service",
    "/etc/systemd/system/timers.target.wants/parrotpark-pg-backup.timer",
    "/usr/local/sbin/parrotpark-pg-backup",
    "/usr/local/sbin/parrotpark-pg-restore",
)


def test_no_old_dump_timer(host, role_vars):
    """No parrotpark-pg-backup unit, script or S3 credentials: the backup role is the only backup."""
    for path in (*OLD_BACKUP_FILES, f"{role_vars['pgvector_config_dir']}/s3cfg"):
        assert not host.file(path).exists, path
    # systemd forgot it too (daemon-reload); a pattern that matches nothing may exit non-zero
    for command in ("list-units --all", "list-unit-files", "list-timers --all"):
        listed = host.run(f"systemctl {command} --plain --no-legend 'parrotpark-pg-*'")
        assert "parrotpark-pg-backup" not in listed.stdout, f"systemctl {command}: {listed.stdout}"


def test_old_dumps_left_in_place(host):
    """A dump the old timer wrote is kept, with its directory (scenarios whose prepare left one)."""
    old_dump = host.ansible.get_variables().get("molecule_pgvector_old_dump")
    if not old_dump:
        pytest.skip("this scenario's host never had the old dump timer")
    dump = host.file(old_dump)
    assert dump.is_file
    assert dump.content_string.startswith("PGDMP")
    assert host.file(str(Path(old_dump).parent)).mode == 0o700


def test_data_survives_a_restart(host, role_vars, vector_db):
    container = role_vars["pgvector_container_name"]
    before = local_sql(host, container, vector_db["name"], "SELECT count(*) FROM items")
    host.check_output(f"docker restart {container}")
    wait_accepting(host, container)
    assert local_sql(host, container, vector_db["name"], "SELECT count(*) FROM items") == before
