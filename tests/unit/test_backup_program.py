"""The decisions of the backup program (roles/backup/files/parrotpark_backup.py): restic's locations, the
retention arguments, what a run takes from what exists on the host, the restore's list without the
superuser entries, the roles' SQL without the superuser, what counts as data on an entrance, and restic's
environment (the password as a file, never in the arguments)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "backup" / "files"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
import parrotpark_backup as pb  # noqa: E402

CONFIG = {
    "postgres": {"container": "parrotpark-postgres"},
    "mongodb": {"container": "parrotpark-librechat-mongodb", "database": "LibreChat"},
    "volumes": ["parrotpark-librechat-uploads", "parrotpark-caddy-data"],
    "paths": ["/etc/parrotpark", "/var/lib/parrotpark/scheduler"],
}


@pytest.mark.parametrize(
    ("endpoint", "bucket", "prefix", "url"),
    [
        ("s3.fr-par.scw.cloud", "pp-backups", "parrotpark", "s3:https://s3.fr-par.scw.cloud/pp-backups/parrotpark"),
        ("http://127.0.0.1:8333/", "pp", "/a/b/", "s3:http://127.0.0.1:8333/pp/a/b"),
        ("https://s3.example.test", "pp", "", "s3:https://s3.example.test/pp"),
    ],
)
def test_s3_location(endpoint, bucket, prefix, url):
    assert pb.s3_repository_url(endpoint, bucket, prefix) == url
    assert pb.repository_url({"name": "s3", "endpoint": endpoint, "bucket": bucket, "prefix": prefix}) == url


def test_local_location_is_the_path():
    assert pb.repository_url({"name": "local", "path": "/var/backups/parrotpark/restic"}) == (
        "/var/backups/parrotpark/restic"
    )


def test_retention_arguments():
    assert pb.forget_arguments({"daily": 7, "weekly": 4, "monthly": 6}) == [
        "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "6",
    ]  # fmt: skip
    assert pb.forget_arguments({"daily": 0, "weekly": "2", "monthly": 0}) == ["--keep-weekly", "2"]


@pytest.mark.parametrize("keep", [{"daily": 0, "weekly": 0, "monthly": 0}, {}])
def test_retention_that_keeps_nothing_is_refused(keep):
    with pytest.raises(pb.BackupError, match="keeps nothing"):
        pb.forget_arguments(keep)


def test_negative_retention_is_refused():
    with pytest.raises(pb.BackupError, match="keep daily must be 0 or more"):
        pb.forget_arguments({"daily": -1, "weekly": 1})


def test_application_databases_leave_out_the_servers_own():
    assert pb.application_databases(["template1", "rag", "postgres", "keycloak", "template0", ""]) == [
        "keycloak",
        "rag",
    ]


def test_plan_takes_what_exists():
    probe = {
        "postgres_running": True,
        "databases": ["postgres", "litellm", "keycloak", "template1"],
        "mongodb_running": True,
        "mongodump": True,
        "volumes": {"parrotpark-librechat-uploads": "/var/lib/docker/volumes/parrotpark-librechat-uploads/_data"},
        "paths": ["/etc/parrotpark"],
    }
    taken = pb.plan(CONFIG, probe)
    assert taken["postgres"] == {"container": "parrotpark-postgres", "databases": ["keycloak", "litellm"]}
    assert taken["mongodb"]["dumped"] is True
    assert taken["volumes"] == probe["volumes"]
    assert taken["paths"] == ["/etc/parrotpark"]
    assert taken["skipped"] == [
        "docker volume parrotpark-caddy-data: does not exist",
        "path /var/lib/parrotpark/scheduler: does not exist",
    ]


def test_plan_says_why_mongodb_is_not_dumped_when_its_image_has_no_mongodump():
    """The lab's FerretDB: the run says so instead of pretending."""
    taken = pb.plan(CONFIG, {"postgres_running": True, "databases": [], "mongodb_running": True, "mongodump": False})
    assert taken["mongodb"]["dumped"] is False
    assert any("has no mongodump; its data is NOT in this backup" in reason for reason in taken["skipped"])


def test_plan_skips_containers_that_do_not_run():
    taken = pb.plan(CONFIG, {})
    assert taken["postgres"]["databases"] == []
    assert taken["mongodb"]["dumped"] is False
    assert "PostgreSQL: container parrotpark-postgres is not running" in taken["skipped"]
    assert any(
        reason.startswith("MongoDB: container parrotpark-librechat-mongodb is not running")
        for reason in taken["skipped"]
    )


def test_plan_without_containers_configured_skips_nothing_about_them():
    taken = pb.plan({"postgres": {"container": ""}, "mongodb": {"container": ""}}, {})
    assert taken["skipped"] == []


LISTING = """;
; Archive created at 2026-12-06 03:15:00 UTC
;
; Selected TOC Entries:
;
2; 3079 16390 EXTENSION - vector
3996; 0 0 COMMENT - EXTENSION vector
218; 1259 16400 TABLE public embeddings rag
3990; 0 16400 TABLE DATA public embeddings rag
"""


def test_restore_list_leaves_the_extensions_to_the_superuser():
    extensions, kept = pb.restore_list(LISTING)
    assert extensions == ["vector"]
    assert "EXTENSION" not in kept.replace("; Selected TOC Entries:", "")
    assert "TABLE public embeddings rag" in kept
    assert "TABLE DATA public embeddings rag" in kept


GLOBALS = """--
-- Roles
--

CREATE ROLE keycloak;
ALTER ROLE keycloak WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:y';
CREATE ROLE postgres_reader;
"""


def test_globals_without_the_superuser():
    sql = pb.globals_without_superuser(GLOBALS)
    assert "CREATE ROLE keycloak;" in sql
    assert "ALTER ROLE keycloak WITH" in sql
    assert "CREATE ROLE postgres_reader;" in sql, "a role whose name starts with postgres stays"
    assert "ROLE postgres;" not in sql
    assert "ALTER ROLE postgres WITH" not in sql


def test_data_found_names_what_holds_data():
    found = pb.data_found({"keycloak": 92, "rag": 0, "litellm": 3}, {"parrotpark-librechat-uploads": 0, "x": 2})
    assert found == ["database keycloak has 92 tables", "database litellm has 3 tables", "volume x has 2 entries"]
    assert pb.data_found({"rag": 0}, {}) == []


def test_restic_environment_passes_the_password_as_a_file():
    base = {"PATH": "/usr/bin", "RESTIC_PASSWORD": "from-the-caller"}
    env = pb.restic_environment(base, "/etc/parrotpark/backup/password", {}, "fr-par", "/var/cache/x")
    assert env["RESTIC_PASSWORD_FILE"] == "/etc/parrotpark/backup/password"
    assert "RESTIC_PASSWORD" not in env
    assert "AWS_ACCESS_KEY_ID" not in env
    keys = {"access_key": "AK", "secret_key": "SK"}
    env = pb.restic_environment(base, "/p", keys, "fr-par", "/var/cache/x")
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_DEFAULT_REGION"]) == ("AK", "SK", "fr-par")
    assert base == {"PATH": "/usr/bin", "RESTIC_PASSWORD": "from-the-caller"}, "the caller's environment is kept"


def test_restic_commands_never_carry_the_secrets(tmp_path, monkeypatch):
    """Every restic command line has the repository and arguments only; password and keys are in the environment."""
    keys = tmp_path / "s3-credentials"
    keys.write_text(json.dumps({"access_key": "AK-1", "secret_key": "SK-secret"}))
    config = {
        "password_file": str(tmp_path / "password"),
        "s3_credentials_file": str(keys),
        "repositories": [{"name": "s3", "endpoint": "127.0.0.1:8333", "bucket": "pp", "prefix": "x"}],
    }
    seen = []

    def fake_run(command, **kwargs):
        seen.append((command, kwargs["env"]))
        return pb.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(pb, "run", fake_run)
    restic = pb.repositories(config)[0]
    restic("snapshots", capture_output=True)
    command, env = seen[0]
    assert command == ["restic", "--repo", "s3:https://127.0.0.1:8333/pp/x", "snapshots"]
    assert env["AWS_SECRET_ACCESS_KEY"] == "SK-secret"
    assert "SK-secret" not in " ".join(command)


def test_unknown_repository_is_named():
    with pytest.raises(pb.BackupError, match=r"no repository named s3 \(known: local\)"):
        pb.repositories({"repositories": [{"name": "local", "path": "/r"}], "password_file": "/p"}, "s3")


def test_missing_configuration_is_a_clear_error(tmp_path, capsys):
    assert pb.main(["--config", str(tmp_path / "nope.json"), "backup"]) == 1
    assert "cannot read the configuration" in capsys.readouterr().err


def test_other_secrets_compares_the_files_known_to_both():
    recorded = {"postgres-litellm": "a1", "litellm-master-key": "b2", "restic-password": "c3", "gone": "d4"}
    here = {"postgres-litellm": "a1", "litellm-master-key": "XX", "restic-password": "c3", "new": "e5"}
    assert pb.other_secrets(recorded, here) == ["litellm-master-key"]
    assert pb.other_secrets(recorded, {}) == [], "no secrets on the controller: nothing to compare"
    assert pb.other_secrets({}, here) == [], "a snapshot made before fingerprints were recorded"


def restore_setup(tmp_path, monkeypatch, recorded: dict[str, str]):
    """A configuration and a fake restic whose snapshot manifest records ``recorded``; returns the config and the
    restic commands run."""
    config = {
        "host": "entrance-b",
        "password_file": str(tmp_path / "password"),
        "repositories": [{"name": "local", "path": str(tmp_path / "repo")}],
        "staging_dir": str(tmp_path / "staging"),
        "postgres": {"container": ""},
        "secret_fingerprints": {"postgres-litellm": "mine", "restic-password": "same"},
    }
    manifest = {"host": "entrance-a", "created": "2026-12-01T03:15:00Z", "secrets": recorded}
    seen = []

    def fake_run(command, **kwargs):
        seen.append(command)
        if "dump" in command:
            return pb.subprocess.CompletedProcess(command, 0, json.dumps(manifest), "")
        if "restore" in command:  # restic restore: the test ends here, before any data is touched
            return pb.subprocess.CompletedProcess(command, 1, "", "stop here")
        return pb.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(pb, "run", fake_run)
    return config, seen


def test_restore_refuses_a_snapshot_made_with_other_secrets_before_restoring_anything(tmp_path, monkeypatch):
    config, seen = restore_setup(tmp_path, monkeypatch, {"postgres-litellm": "theirs", "restic-password": "same"})
    with pytest.raises(pb.BackupError) as refused:
        pb.restore(config, "latest", None)
    message = str(refused.value)
    assert "made on entrance-a with other secrets" in message
    assert "postgres-litellm differ" in message
    assert "restic-password" not in message, "only the files that differ are named"
    assert "backup_restore_other_secrets: true" in message
    assert "Nothing was restored" in message
    assert [command for command in seen if "restore" in command] == [], "restic restore never ran"


def test_restore_of_a_snapshot_with_other_secrets_goes_on_when_allowed(tmp_path, monkeypatch):
    config, seen = restore_setup(tmp_path, monkeypatch, {"postgres-litellm": "theirs"})
    with pytest.raises(pb.BackupError, match="restic restore of latest failed: stop here"):
        pb.restore(config, "latest", None, other_secrets_ok=True)
    assert any("restore" in command for command in seen)


def test_restore_of_a_snapshot_with_the_same_secrets_goes_on(tmp_path, monkeypatch):
    config, seen = restore_setup(tmp_path, monkeypatch, {"postgres-litellm": "mine", "restic-password": "same"})
    with pytest.raises(pb.BackupError, match="restic restore of latest failed"):
        pb.restore(config, "latest", None)
    assert any("restore" in command for command in seen)


LOCAL = {"name": "local", "path": "/var/backups/parrotpark/restic"}
S3 = {"name": "s3", "endpoint": "s3.example.test", "bucket": "pp", "prefix": "x"}


@pytest.mark.parametrize(
    ("repository", "stderr", "named"),
    [
        (LOCAL, "Fatal: wrong password or no key found", ["backup_password"]),
        (S3, "Fatal: wrong password or no key found", ["backup_password"]),
        (S3, "The AWS Access Key Id you provided does not exist (InvalidAccessKeyId)", ["backup_s3_access_key"]),
        (S3, "SignatureDoesNotMatch: The request signature we calculated", ["backup_s3_secret_key"]),
        (S3, 'Get "https://s3.example.test/pp/": dial tcp 127.0.0.1:9: connect: connection refused', ["endpoint"]),
        (S3, "dial tcp: lookup s3.example.test: no such host", ["backup_s3_endpoint"]),
        (S3, "something else entirely", ["backup_s3_endpoint", "backup_s3_bucket", "backup_password"]),
        (LOCAL, "permission denied", ["backup_local_repository", "backup_password"]),
    ],
)
def test_an_unreadable_repository_names_the_variables_to_check(repository, stderr, named):
    hint = pb.unreadable_hint(repository, stderr)
    assert all(name in hint for name in named), hint
    if "bucket" not in repository:
        assert "backup_s3" not in hint, "a local repository has no S3 settings to check"


def test_init_stops_at_an_unreadable_repository_naming_the_variable(tmp_path, monkeypatch):
    keys = tmp_path / "s3-credentials"
    keys.write_text(json.dumps({"access_key": "AK", "secret_key": "SK"}))
    config = {"password_file": str(tmp_path / "password"), "s3_credentials_file": str(keys), "repositories": [S3]}
    seen = []

    def fake_run(command, **kwargs):
        seen.append(command)
        return pb.subprocess.CompletedProcess(command, 1, "", "dial tcp 127.0.0.1:9: connect: connection refused")

    monkeypatch.setattr(pb, "run", fake_run)
    with pytest.raises(pb.BackupError, match=r"repository s3 \(.*\) cannot be read \(.*check backup_s3_endpoint\)"):
        pb.init(config)
    assert [command[-1] for command in seen] == ["config"], "no restic init after a repository that cannot be read"
