"""parrotpark-backup: back up the entrance's state into restic repositories, and restore it.

Installed by the parrotpark.llm.backup role into /usr/local/lib/parrotpark/backup and run
as /usr/local/sbin/parrotpark-backup (which passes --config): nightly by
parrotpark-backup.service (timer parrotpark-backup.timer), and by the restore
playbook (parrotpark.llm.restore). Python's standard library only.

  parrotpark-backup init            initialise every repository that does not exist yet
  parrotpark-backup backup          dump the databases, back everything up, apply the retention
  parrotpark-backup restore [--snapshot ID] [--repository NAME]
                                    restore databases, MongoDB, volumes and files from a snapshot
  parrotpark-backup restic [--repository NAME] ARGS...
                                    run restic on a repository (password and keys set), e.g. snapshots

The configuration is <backup_config_dir>/backup.json (written by the role):
repositories, the restic password file, the S3 keys file, the containers, volumes
and paths to back up, the retention. Secrets reach restic through its password
file and the environment, never through its arguments.

One run makes one snapshot per repository: the dumps are written into a staging
directory (removed afterwards) with a manifest (manifest.json) that says what the
snapshot holds and what was skipped, and why; the docker volumes and the paths are
read in place. The functions above `main` decide; the ones that run commands are
thin.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/parrotpark/backup/backup.json")
MANIFEST = "manifest.json"
# Databases of the server that are not the application's.
SYSTEM_DATABASES = ("postgres", "template0", "template1")
SUPERUSER = "postgres"
NOT_A_REPOSITORY = re.compile(
    r"(does not exist|Is there a repository at the following location|unable to open config file|"
    r"no such file or directory|NoSuchKey|NoSuchBucket|repository not found)",
    re.IGNORECASE,
)


class BackupError(Exception):
    """A step failed; the message says which and what to do."""


# ---------------------------------------------------------------- decisions


def s3_repository_url(endpoint: str, bucket: str, prefix: str) -> str:
    """restic's s3: location for a bucket on an S3-compatible endpoint (https unless the endpoint says http)."""
    endpoint = endpoint.strip().rstrip("/")
    if not re.match(r"^https?://", endpoint):
        endpoint = "https://" + endpoint
    path = "/".join(part for part in (bucket, prefix.strip("/")) if part)
    return f"s3:{endpoint}/{path}"


def repository_url(repository: dict[str, Any]) -> str:
    """restic's location of a configured repository: a path, or a bucket (endpoint, bucket, prefix)."""
    if repository.get("bucket"):
        return s3_repository_url(repository.get("endpoint", ""), repository["bucket"], repository.get("prefix", ""))
    return repository["path"]


def forget_arguments(keep: dict[str, int]) -> list[str]:
    """restic forget arguments of the retention; a zero keeps none of that kind. Nothing to keep is refused:
    restic would forget every snapshot."""
    arguments: list[str] = []
    for kind in ("daily", "weekly", "monthly"):
        count = int(keep.get(kind, 0))
        if count < 0:
            raise BackupError(f"keep {kind} must be 0 or more (got {count})")
        if count:
            arguments += [f"--keep-{kind}", str(count)]
    if not arguments:
        raise BackupError("the retention keeps nothing (backup_keep_daily, _weekly and _monthly are all 0)")
    return arguments


def application_databases(names: list[str]) -> list[str]:
    """The databases to dump one by one: all but the server's own, sorted."""
    return sorted(name for name in names if name and name not in SYSTEM_DATABASES)


def plan(config: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    """What a backup run takes, from the configuration and what exists on the host.

    probe: postgres_running (bool), databases (list of names), mongodb_running (bool), mongodump (bool),
    volumes (name: mountpoint of the volumes that exist), paths (the configured paths that exist).
    Returns the manifest's body: what is taken, what is skipped and why.
    """
    skipped: list[str] = []
    postgres = config.get("postgres") or {}
    databases: list[str] = []
    if postgres.get("container"):
        if probe.get("postgres_running"):
            databases = application_databases(probe.get("databases", []))
        else:
            skipped.append(f"PostgreSQL: container {postgres['container']} is not running")
    mongodb = config.get("mongodb") or {}
    mongodb_dump = False
    if mongodb.get("container"):
        if not probe.get("mongodb_running"):
            skipped.append(f"MongoDB: container {mongodb['container']} is not running (or does not exist)")
        elif not probe.get("mongodump"):
            skipped.append(
                f"MongoDB: the image of container {mongodb['container']} has no mongodump; its data is NOT in "
                "this backup (see docs/backup.md)"
            )
        else:
            mongodb_dump = True
    volumes = {}
    for name in config.get("volumes", []):
        if name in probe.get("volumes", {}):
            volumes[name] = probe["volumes"][name]
        else:
            skipped.append(f"docker volume {name}: does not exist")
    paths = []
    for path in config.get("paths", []):
        if path in probe.get("paths", []):
            paths.append(path)
        else:
            skipped.append(f"path {path}: does not exist")
    return {
        "postgres": {"container": postgres.get("container", ""), "databases": databases},
        "mongodb": {
            "container": mongodb.get("container", ""),
            "database": mongodb.get("database", ""),
            "dumped": mongodb_dump,
        },
        "volumes": volumes,
        "paths": paths,
        "skipped": skipped,
    }


def restore_list(listing: str) -> tuple[list[str], str]:
    """From `pg_restore --list` output: the extensions the dump creates, and the list without the entries
    that need a superuser (the extensions and their comments), which the restore runs as the owner."""
    extensions = []
    kept = []
    for line in listing.splitlines():
        match = re.match(r"^\d+;\s*\d+\s+\d+\s+EXTENSION\s+-\s+(\S+)", line)
        if match:
            extensions.append(match.group(1))
            continue
        if " EXTENSION " in line and not line.startswith(";"):
            continue
        kept.append(line)
    return extensions, "\n".join(kept) + "\n"


def globals_without_superuser(sql: str, superuser: str = SUPERUSER) -> str:
    """pg_dumpall --globals-only output without the statements about the superuser, whose password the
    pgvector role sets on the new server."""
    quoted = re.escape(superuser)
    pattern = re.compile(rf"^(CREATE|ALTER) ROLE (\"?){quoted}\2( |;)")
    return "".join(line for line in sql.splitlines(keepends=True) if not pattern.match(line))


def data_found(tables: dict[str, int], volume_entries: dict[str, int]) -> list[str]:
    """What on the entrance already holds data: databases with tables, volumes with files."""
    found = [f"database {name} has {count} tables" for name, count in sorted(tables.items()) if count > 0]
    found += [f"volume {name} has {count} entries" for name, count in sorted(volume_entries.items()) if count > 0]
    return found


def other_secrets(recorded: dict[str, str], here: dict[str, str]) -> list[str]:
    """The secret files whose fingerprints differ between a snapshot's manifest and this configuration.

    Only files known to both count: a secret added or dropped since the backup says nothing about whose
    backup it is. Fingerprints are SHA-256 digests of the controller's files, never their values."""
    return sorted(name for name in recorded.keys() & here.keys() if recorded[name] != here[name])


def restic_environment(
    base: dict[str, str], password_file: str, credentials: dict[str, str], region: str, cache_dir: str
) -> dict[str, str]:
    """The environment of a restic command: the password file, the S3 keys (when given) and a cache."""
    env = dict(base)
    env["RESTIC_PASSWORD_FILE"] = password_file
    env["RESTIC_CACHE_DIR"] = cache_dir
    env.pop("RESTIC_PASSWORD", None)
    if credentials.get("access_key"):
        env["AWS_ACCESS_KEY_ID"] = credentials["access_key"]
        env["AWS_SECRET_ACCESS_KEY"] = credentials.get("secret_key", "")
        if region:
            env["AWS_DEFAULT_REGION"] = region
    return env


# ---------------------------------------------------------------- commands


def log(message: str) -> None:
    print(message, flush=True)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, text=True, check=False, **kwargs)


def must(command: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = run(command, capture_output=True, **kwargs)
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


class Restic:
    """restic on one repository, with the password file and keys in its environment."""

    def __init__(self, config: dict[str, Any], repository: dict[str, Any]) -> None:
        credentials: dict[str, str] = {}
        if repository.get("bucket"):
            credentials = json.loads(Path(config["s3_credentials_file"]).read_text())
        self.name = repository["name"]
        self.repository = repository
        self.url = repository_url(repository)
        self.env = restic_environment(
            dict(os.environ),
            config["password_file"],
            credentials,
            config.get("s3_region", ""),
            config.get("cache_dir", "/var/cache/parrotpark-backup"),
        )

    def __call__(self, *arguments: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run(["restic", "--repo", self.url, *arguments], env=self.env, **kwargs)


def repositories(config: dict[str, Any], name: str | None = None) -> list[Restic]:
    chosen = [repo for repo in config["repositories"] if name in (None, repo["name"])]
    if not chosen:
        known = ", ".join(repo["name"] for repo in config["repositories"])
        raise BackupError(f"no repository named {name} (known: {known})")
    return [Restic(config, repo) for repo in chosen]


# What restic says, the variables that set it, and whether only an S3 repository has them.
_UNREADABLE_CAUSES = (
    (
        re.compile(r"wrong password|no key found", re.IGNORECASE),
        "the password does not open it: check backup_password",
        False,
    ),
    (
        re.compile(r"InvalidAccessKeyId|SignatureDoesNotMatch|Access Denied|AccessDenied|403 Forbidden", re.IGNORECASE),
        "the bucket refuses the keys: check backup_s3_access_key and backup_s3_secret_key",
        True,
    ),
    (
        re.compile(r"connection refused|no such host|i/o timeout|network is unreachable|dial tcp", re.IGNORECASE),
        "the endpoint does not answer: check backup_s3_endpoint",
        True,
    ),
)


def unreadable_hint(repository: dict[str, Any], stderr: str) -> str:
    """Which variables to check when restic cannot read a repository, from restic's own message."""
    s3 = "bucket" in repository
    for pattern, hint, s3_only in _UNREADABLE_CAUSES:
        if pattern.search(stderr) and (s3 or not s3_only):
            return hint
    if s3:
        return (
            "check backup_s3_endpoint, backup_s3_bucket, backup_s3_access_key, backup_s3_secret_key and backup_password"
        )
    return "check backup_local_repository and backup_password"


def init(config: dict[str, Any]) -> int:
    for restic in repositories(config):
        found = restic("cat", "config", capture_output=True)
        if found.returncode == 0:
            log(f"repository {restic.name}: exists")
            continue
        if not NOT_A_REPOSITORY.search(found.stderr):
            hint = unreadable_hint(restic.repository, found.stderr)
            raise BackupError(
                f"repository {restic.name} ({restic.url}) cannot be read ({hint}): {found.stderr.strip()[-1000:]}"
            )
        made = restic("init", capture_output=True)
        if made.returncode != 0:
            raise BackupError(f"restic init of repository {restic.name} failed: {made.stderr.strip()[-1000:]}")
        log(f"repository {restic.name}: initialised")
    return 0


def container_running(name: str) -> bool:
    result = run(["docker", "inspect", "--format", "{{.State.Running}}", name], capture_output=True)
    return result.returncode == 0 and result.stdout.strip() == "true"


def psql(container: str, database: str, sql: str, *, stdin: str | None = None) -> str:
    command = ["docker", "exec", "-i", container, "psql", "--username", SUPERUSER, "--dbname", database]
    command += ["--no-psqlrc", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1", "--command", sql]
    return must(command, f"psql in {container} ({database})", input=stdin).stdout


def probe_host(config: dict[str, Any]) -> dict[str, Any]:
    probe: dict[str, Any] = {"volumes": {}, "paths": []}
    postgres = (config.get("postgres") or {}).get("container")
    if postgres and container_running(postgres):
        probe["postgres_running"] = True
        probe["databases"] = psql(postgres, SUPERUSER, "SELECT datname FROM pg_database").split()
    mongodb = (config.get("mongodb") or {}).get("container")
    if mongodb and container_running(mongodb):
        probe["mongodb_running"] = True
        found = run(["docker", "exec", mongodb, "sh", "-c", "command -v mongodump"], capture_output=True)
        probe["mongodump"] = found.returncode == 0 and bool(found.stdout.strip())
    for name in config.get("volumes", []):
        result = run(["docker", "volume", "inspect", "--format", "{{.Mountpoint}}", name], capture_output=True)
        if result.returncode == 0 and result.stdout.strip():
            probe["volumes"][name] = result.stdout.strip()
    probe["paths"] = [path for path in config.get("paths", []) if Path(path).exists()]
    return probe


def dump_into(staging: Path, config: dict[str, Any], taken: dict[str, Any]) -> None:
    """The consistent dumps: pg_dumpall of the roles, pg_dump -Fc of each database, mongodump --archive."""
    postgres = taken["postgres"]
    if postgres["databases"]:
        folder = staging / "postgres"
        folder.mkdir()
        container = postgres["container"]
        with (folder / "globals.sql").open("w") as out:
            command = ["docker", "exec", container, "pg_dumpall", "--username", SUPERUSER, "--globals-only"]
            result = run(command, stdout=out, stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise BackupError(f"pg_dumpall --globals-only in {container} failed: {result.stderr.strip()}")
        owners = dict(
            line.split("|", 1)
            for line in psql(container, SUPERUSER, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database")
            .strip()
            .splitlines()
        )
        postgres["owners"] = {name: owners.get(name, SUPERUSER) for name in postgres["databases"]}
        for database in postgres["databases"]:
            target = folder / f"{database}.dump"
            with target.open("wb") as out:
                command = ["docker", "exec", container, "pg_dump", "--username", SUPERUSER, "--format", "custom"]
                result = subprocess.run(
                    [*command, "--dbname", database], stdout=out, stderr=subprocess.PIPE, check=False
                )
            if result.returncode != 0:
                raise BackupError(f"pg_dump of {database} in {container} failed: {result.stderr.decode().strip()}")
            log(f"dumped PostgreSQL database {database} ({target.stat().st_size} bytes)")
    mongodb = taken["mongodb"]
    if mongodb["dumped"]:
        folder = staging / "mongodb"
        folder.mkdir()
        target = folder / f"{mongodb['database']}.archive"
        with target.open("wb") as out:
            command = ["docker", "exec", mongodb["container"], "mongodump", "--quiet", "--archive"]
            command += ["--db", mongodb["database"]]
            result = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            raise BackupError(f"mongodump in {mongodb['container']} failed: {result.stderr.decode().strip()}")
        log(f"dumped MongoDB database {mongodb['database']} ({target.stat().st_size} bytes)")


def backup(config: dict[str, Any]) -> int:
    staging = Path(config["staging_dir"])
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700, parents=True)
    try:
        taken = plan(config, probe_host(config))
        dump_into(staging, config, taken)
        taken["host"] = config["host"]
        taken["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        taken["staging_dir"] = str(staging)
        taken["secrets"] = config.get("secret_fingerprints", {})
        (staging / MANIFEST).write_text(json.dumps(taken, indent=2, sort_keys=True) + "\n")
        for reason in taken["skipped"]:
            log(f"skipped: {reason}")
        sources = [str(staging), *taken["volumes"].values(), *taken["paths"]]
        excludes = [argument for path in config.get("excludes", []) for argument in ("--exclude", path)]
        failed = []
        for restic in repositories(config):
            made = restic(
                "backup", "--host", config["host"], "--tag", config["tag"], *excludes, *sources, capture_output=True
            )
            if made.returncode != 0:
                # 3: a snapshot was made without some files that could not be read. It stays, but the run
                # fails and the retention is not applied, so that no complete snapshot is pruned for it.
                what = "incomplete snapshot" if made.returncode == 3 else "no snapshot"
                failed.append(f"backup into {restic.name} ({what}): {made.stderr.strip()[-1000:]}")
                continue
            log(f"repository {restic.name}: {made.stdout.strip().splitlines()[-1] if made.stdout.strip() else ''}")
            pruned = restic(
                "forget", "--prune", "--host", config["host"], "--tag", config["tag"], "--group-by", "host",
                *forget_arguments(config["keep"]), capture_output=True,
            )  # fmt: skip
            if pruned.returncode != 0:
                failed.append(f"forget --prune in {restic.name}: {pruned.stderr.strip()[-1000:]}")
        if failed:
            raise BackupError("; ".join(failed))
        return 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def snapshot_manifest(restic: Restic, snapshot: str, staging_dir: str) -> dict[str, Any]:
    found = restic("dump", snapshot, f"{staging_dir}/{MANIFEST}", capture_output=True)
    if found.returncode != 0:
        raise BackupError(f"snapshot {snapshot} of repository {restic.name} has no manifest: {found.stderr.strip()}")
    return json.loads(found.stdout)


def entrance_data(container: str, guard_volumes: list[str]) -> list[str]:
    """What on this entrance already holds data (the restore refuses unless forced)."""
    tables: dict[str, int] = {}
    if container and container_running(container):
        names = application_databases(psql(container, SUPERUSER, "SELECT datname FROM pg_database").split())
        sql = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        tables = {name: int(psql(container, name, sql).strip() or 0) for name in names}
    entries = {}
    for name in guard_volumes:
        result = run(["docker", "volume", "inspect", "--format", "{{.Mountpoint}}", name], capture_output=True)
        if result.returncode == 0 and Path(result.stdout.strip()).is_dir():
            entries[name] = len(os.listdir(result.stdout.strip()))
    return data_found(tables, entries)


def restore_postgres(manifest: dict[str, Any], source: Path, container: str) -> None:
    postgres = manifest["postgres"]
    if not postgres["databases"]:
        return
    if not container_running(container):
        raise BackupError(f"PostgreSQL container {container} is not running: apply the pgvector role first")
    folder = source / "postgres"
    # The roles (their passwords as they were), except the superuser; existing roles make CREATE ROLE fail,
    # which is expected: ON_ERROR_STOP is off for this file only.
    globals_sql = globals_without_superuser((folder / "globals.sql").read_text())
    command = ["docker", "exec", "-i", container, "psql", "--username", SUPERUSER, "--no-psqlrc", "--quiet"]
    run([*command, "--dbname", SUPERUSER], input=globals_sql, capture_output=True)
    existing = psql(container, SUPERUSER, "SELECT datname FROM pg_database").split()
    for database in postgres["databases"]:
        owner = postgres.get("owners", {}).get(database, SUPERUSER)
        if database not in existing:
            psql(container, SUPERUSER, f'CREATE DATABASE "{database}" OWNER "{owner}" TEMPLATE template0')
        inside = f"/tmp/parrotpark-restore-{database}.dump"
        must(["docker", "cp", str(folder / f"{database}.dump"), f"{container}:{inside}"], f"docker cp {database}")
        try:
            listing = must(["docker", "exec", container, "pg_restore", "--list", inside], "pg_restore --list").stdout
            extensions, kept = restore_list(listing)
            for extension in extensions:
                psql(container, database, f'CREATE EXTENSION IF NOT EXISTS "{extension}"')
            must(["docker", "exec", "-i", container, "sh", "-c", f"cat > {inside}.list"], "the list", input=kept)
            restore = ["docker", "exec", container, "pg_restore", "--username", SUPERUSER, "--dbname", database]
            restore += ["--clean", "--if-exists", "--no-owner", "--role", owner, "--single-transaction"]
            restore += ["--exit-on-error", "--use-list", f"{inside}.list", inside]
            must(restore, f"pg_restore of {database}")
        finally:
            run(["docker", "exec", container, "rm", "-f", inside, f"{inside}.list"], capture_output=True)
        log(f"restored PostgreSQL database {database} (owner {owner})")


def restore_mongodb(manifest: dict[str, Any], source: Path) -> None:
    mongodb = manifest["mongodb"]
    if not mongodb.get("dumped"):
        if mongodb.get("container"):
            log("MongoDB: the snapshot has no dump of it (see the manifest's skipped list); not restored")
        return
    container = mongodb["container"]
    if not container_running(container):
        raise BackupError(f"MongoDB container {container} is not running: apply the librechat role first")
    archive = (source / "mongodb" / f"{mongodb['database']}.archive").read_bytes()
    command = ["docker", "exec", "-i", container, "mongorestore", "--quiet", "--drop", "--archive"]
    result = subprocess.run(command, input=archive, capture_output=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"mongorestore in {container} failed: {result.stderr.decode().strip()}")
    log(f"restored MongoDB database {mongodb['database']}")


def copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    must(["cp", "-a", "--", f"{source}/.", str(target)], f"copy into {target}")


def restore(config: dict[str, Any], snapshot: str, repository: str | None, other_secrets_ok: bool = False) -> int:
    restic = repositories(config, repository)[0]
    manifest = snapshot_manifest(restic, snapshot, config["staging_dir"])
    differing = other_secrets(manifest.get("secrets", {}), config.get("secret_fingerprints", {}))
    if differing and not other_secrets_ok:
        raise BackupError(
            f"snapshot {snapshot} of repository {restic.name} was made on {manifest['host']} with other secrets "
            f"than those of this entrance on the controller: {', '.join(differing)} differ. It is the backup of "
            "another entrance, or of this one before its secrets changed. Nothing was restored. Put the secrets "
            "directory of that entrance back on the controller (backup_secrets_dir) and run the restore again, or "
            "set backup_restore_other_secrets: true to restore it anyway (site.yml then sets the secrets of this "
            "entrance)."
        )
    log(f"restoring snapshot {snapshot} of repository {restic.name}, made {manifest['created']} on "
        f"{manifest['host']}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="parrotpark-restore-", dir=Path(config["staging_dir"]).parent) as tmp:
        must(["chmod", "0700", tmp], "chmod")
        made = restic("restore", snapshot, "--target", tmp, capture_output=True)
        if made.returncode != 0:
            raise BackupError(f"restic restore of {snapshot} failed: {made.stderr.strip()[-1000:]}")
        root = Path(tmp)
        staged = root / manifest["staging_dir"].lstrip("/")
        restore_postgres(manifest, staged, config["postgres"]["container"])
        restore_mongodb(manifest, staged)
        for name, mountpoint in manifest["volumes"].items():
            must(["docker", "volume", "create", name], f"docker volume create {name}")
            here = must(["docker", "volume", "inspect", "--format", "{{.Mountpoint}}", name], "inspect").stdout
            copy_tree(root / mountpoint.lstrip("/"), Path(here.strip()))
            users = must(["docker", "ps", "--quiet", "--filter", f"volume={name}"], "docker ps").stdout.split()
            if users:
                must(["docker", "restart", *users], f"restart the containers of volume {name}")
            log(f"restored docker volume {name}")
        for path in manifest["paths"]:
            copy_tree(root / path.lstrip("/"), Path(path))
            log(f"restored {path}")
    return 0


def load_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"cannot read the configuration {path}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parrotpark-backup", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="initialise the repositories that do not exist yet")
    commands.add_parser("backup", help="back up now")
    check = commands.add_parser("data", help="print, as JSON, what on this entrance already holds data")
    check.add_argument("--postgres-container", default="", help="the PostgreSQL container whose databases count")
    check.add_argument("--volume", action="append", default=[], help="a volume whose content counts as data")
    chosen = commands.add_parser("restore", help="restore a snapshot onto this entrance")
    chosen.add_argument("--snapshot", default="latest")
    chosen.add_argument("--repository", help="the repository's name (default: the first)")
    chosen.add_argument(
        "--other-secrets-ok", action="store_true", help="restore a snapshot made with other secrets than these"
    )
    passthrough = commands.add_parser("restic", help="run restic on a repository")
    passthrough.add_argument("--repository", help="the repository's name (default: the first)")
    passthrough.add_argument("arguments", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "data":
            print(json.dumps(entrance_data(arguments.postgres_container, arguments.volume)))
            return 0
        config = load_config(arguments.config)
        config.setdefault("host", socket.gethostname())
        if arguments.command == "init":
            return init(config)
        if arguments.command == "backup":
            return backup(config)
        if arguments.command == "restore":
            return restore(config, arguments.snapshot, arguments.repository, arguments.other_secrets_ok)
        return repositories(config, arguments.repository)[0](*arguments.arguments).returncode
    except BackupError as error:
        print(f"parrotpark-backup: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
