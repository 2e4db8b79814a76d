"""Verify the backup role on a molecule platform beside the pgvector role: restic and the timer are
installed, the password file is 0600 and never shown, a run of the service makes a snapshot with the
dumps, the volumes and the paths, and the restore playbook puts destroyed rows and files back (refused
without backup_restore_force, naming it, while the entrance holds data, and refused when the snapshot was
made with other secrets than the controller's).

The tests run in file order: each step builds on the one before."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molecule_support import converge, recap_changed

ROOT = Path(__file__).resolve().parents[3]
POSTGRES = "parrotpark-postgres"
UPLOADS = "parrotpark-librechat-uploads"
STAGING = "/var/tmp/parrotpark-backup"
NOTE = "drill-row-7f3a"
PROGRAM = "/usr/local/sbin/parrotpark-backup"


@pytest.fixture(scope="module")
def password(host):
    inventory = host.ansible.get_variables()
    secrets = Path(inventory["parrotpark_secrets_dir"]) / inventory["inventory_hostname"]
    return (secrets / "restic-password").read_text().split()[0]


def sql(host, database: str, statement: str, role: str = "postgres") -> str:
    prefix = f"SET ROLE {role}; " if role != "postgres" else ""
    command = f"docker exec {POSTGRES} psql -U postgres -d {database} -v ON_ERROR_STOP=1 -At -c "
    return host.check_output(command + shlex.quote(prefix + statement))


def uploads_dir(host) -> str:
    host.run_expect([0], f"docker volume create {UPLOADS}")
    return host.check_output(f"docker volume inspect --format '{{{{.Mountpoint}}}}' {UPLOADS}")


def restore(extra: dict) -> subprocess.CompletedProcess[str]:
    """Run playbooks/restore.yml on the scenario's instance (no sudo on the platform: connected as root)."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    variables = {"backup_restore_hosts": "all", "ansible_become": False, **extra}
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / "restore.yml"),
            "-e",
            json.dumps(variables),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=900,
        check=False,
    )


def test_restic_and_the_timer_are_installed(host):
    assert host.package("restic").is_installed
    timer = host.service("parrotpark-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert "OnCalendar=*-*-* 03:15:00" in host.file("/etc/systemd/system/parrotpark-backup.timer").content_string


def test_secrets_are_root_only(host, password):
    for path in ("/etc/parrotpark/backup", "/etc/parrotpark/backup/password", "/etc/parrotpark/backup/backup.json"):
        found = host.file(path)
        assert found.user == "root"
        assert found.mode in (0o600, 0o700), f"{path}: {oct(found.mode)}"
    assert host.file("/etc/parrotpark/backup/password").content_string == password
    assert password not in host.file("/etc/parrotpark/backup/backup.json").content_string


def test_the_local_repository_is_initialised(host):
    assert host.file("/var/backups/parrotpark/restic/config").exists
    assert host.file("/var/backups/parrotpark/restic").mode == 0o700


def test_write_state_a_user_would_miss(host):
    sql(
        host,
        "litellm",
        f"CREATE TABLE drill (id int PRIMARY KEY, note text); INSERT INTO drill VALUES (1, '{NOTE}')",
        "litellm",
    )
    sql(host, "rag", "CREATE TABLE items (id int, embedding vector(3)); INSERT INTO items VALUES (1, '[1,2,3]')", "rag")
    host.run_expect([0], f"echo upload-{NOTE} > {uploads_dir(host)}/file.txt")
    host.run_expect([0], f"mkdir -p /var/lib/parrotpark/scheduler && echo '{{\"session\": \"{NOTE}\"}}' > "
                         "/var/lib/parrotpark/scheduler/gpu-sessions.jsonl")  # fmt: skip
    host.run_expect([0], f"echo {NOTE} > /etc/parrotpark/drill.txt")


def test_the_service_makes_a_snapshot(host, password):
    result = host.run("systemctl start parrotpark-backup.service")
    journal = host.run("journalctl -u parrotpark-backup.service --no-pager -n 80").stdout
    assert result.rc == 0, journal
    assert "dumped PostgreSQL database litellm" in journal, journal
    assert "skipped: MongoDB: container parrotpark-librechat-mongodb is not running" in journal, journal
    assert password not in journal
    assert not host.file(STAGING).exists, "the staging directory is removed after the run"
    snapshots = json.loads(host.check_output(f"{PROGRAM} restic snapshots --json"))
    assert len(snapshots) == 1
    inventory = host.ansible.get_variables()
    assert snapshots[0]["hostname"] == inventory["inventory_hostname"]
    assert snapshots[0]["tags"] == ["parrotpark"]


def test_the_snapshot_holds_the_dumps_the_files_and_a_manifest(host):
    listing = host.check_output(f"{PROGRAM} restic ls latest")
    for path in (
        f"{STAGING}/postgres/globals.sql",
        f"{STAGING}/postgres/keycloak.dump",
        f"{STAGING}/postgres/litellm.dump",
        f"{STAGING}/postgres/rag.dump",
        f"{STAGING}/postgres/metrics.dump",
        "/etc/parrotpark/drill.txt",
        "/var/lib/parrotpark/scheduler/gpu-sessions.jsonl",
        f"{uploads_dir(host)}/file.txt",
    ):
        assert path in listing.splitlines(), f"{path} not in the snapshot:\n{listing}"
    assert "/etc/parrotpark/backup/password" not in listing
    # The dump holds the row: pg_restore turns it back into SQL.
    dump = f"{PROGRAM} restic dump latest {STAGING}/postgres/litellm.dump"
    rows = host.check_output(f"{dump} | docker exec -i {POSTGRES} pg_restore -f - --data-only")
    assert NOTE in rows
    manifest = json.loads(host.check_output(f"{PROGRAM} restic dump latest {STAGING}/manifest.json"))
    assert manifest["postgres"]["databases"] == ["keycloak", "litellm", "metrics", "rag"]
    assert manifest["postgres"]["owners"]["litellm"] == "litellm"
    assert manifest["mongodb"]["dumped"] is False
    assert UPLOADS in manifest["volumes"]


def test_a_second_converge_changes_nothing_and_shows_no_secret(password):
    result = converge({})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert recap_changed(result) == 0, result.stdout[-4000:]
    assert password not in result.stdout + result.stderr


def test_destroy_the_state(host):
    sql(host, "litellm", "DELETE FROM drill", "litellm")
    sql(host, "rag", "DROP TABLE items", "rag")
    host.run_expect([0], f"rm {uploads_dir(host)}/file.txt /etc/parrotpark/drill.txt")
    host.run_expect([0], "rm /var/lib/parrotpark/scheduler/gpu-sessions.jsonl")


def test_restore_refuses_an_entrance_with_data_unless_forced(host, password):
    result = restore({})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    flat = " ".join(output.split())
    assert "already holds data" in flat, output[-4000:]
    assert "database litellm has 1 tables" in flat, output[-4000:]
    assert "Set backup_restore_force: true" in flat, output[-4000:]
    assert password not in output
    assert sql(host, "litellm", "SELECT count(*) FROM drill") == "0", "nothing was restored"
    assert not host.file("/etc/parrotpark/drill.txt").exists


def test_restore_refuses_a_backup_made_with_other_secrets(host, password, tmp_path):
    """The snapshot records digests of the entrance's secret files on the controller; restored with a secrets
    directory in which one of them differs (another entrance's), the restore says so and restores nothing,
    even with backup_restore_force."""
    inventory = host.ansible.get_variables()
    secrets = Path(inventory["parrotpark_secrets_dir"]) / inventory["inventory_hostname"]
    other = tmp_path / "other-entrance"
    shutil.copytree(secrets, other)
    (other / "postgres-litellm").write_text("Another-entrance-password-0123456789\n")
    result = restore({"backup_restore_force": True, "backup_secrets_dir": str(other)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    flat = " ".join(output.split())
    expected = "with other secrets than those of this entrance on the controller: postgres-litellm differ"
    assert expected in flat, flat[-4000:]
    assert "backup_restore_other_secrets: true" in flat, flat[-4000:]
    assert "Another-entrance-password" not in output and password not in output
    assert sql(host, "litellm", "SELECT count(*) FROM drill") == "0", "nothing was restored"
    assert not host.file("/etc/parrotpark/drill.txt").exists


def test_restore_with_force_brings_everything_back(host, password):
    result = restore({"backup_restore_force": True})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert password not in output
    assert sql(host, "litellm", "SELECT note FROM drill WHERE id = 1") == NOTE
    assert sql(host, "litellm", "SELECT tableowner FROM pg_tables WHERE tablename = 'drill'") == "litellm"
    assert sql(host, "rag", "SELECT embedding::text FROM items WHERE id = 1") == "[1,2,3]"
    assert host.file(f"{uploads_dir(host)}/file.txt").content_string == f"upload-{NOTE}\n"
    assert host.file("/etc/parrotpark/drill.txt").content_string == f"{NOTE}\n"
    assert NOTE in host.file("/var/lib/parrotpark/scheduler/gpu-sessions.jsonl").content_string
    # The application users still log in with their passwords (the controller's files).
    inventory = host.ansible.get_variables()
    secrets = Path(inventory["parrotpark_secrets_dir"]) / inventory["inventory_hostname"]
    litellm_password = (secrets / "postgres-litellm").read_text().split()[0]
    url = f"postgresql://litellm:{litellm_password}@{POSTGRES}:5432/litellm"
    client = (
        f"docker run --rm --network parrotpark --entrypoint psql {inventory['pgvector_image']} "
        f"{shlex.quote(url)} -At -c 'SELECT count(*) FROM drill'"
    )
    assert host.check_output(client) == "1"


def test_a_wrong_password_fails_and_is_never_shown(password):
    """A repository password that does not open the repository fails the role with restic's reason; neither
    password is shown. The last test: the instance keeps the wrong password until it is destroyed."""
    wrong = "Wrong-repository-password-0123456789"
    result = converge({"backup_password": wrong})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    flat = " ".join(output.split())
    assert "repository local (/var/backups/parrotpark/restic) cannot be read" in flat, flat[-4000:]
    assert "the password does not open it: check backup_password" in flat, flat[-4000:]
    assert wrong not in output
    assert password not in output
