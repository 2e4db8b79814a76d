"""Secrets never in logs (issue 15), run last in each layout's stage.

After the layout's end-to-end tests: no secret value the run generated (the
files of the inventory's secrets directory, where the roles keep passwords,
keys and tokens), nor the lab bucket's key from the inventory, appears in
what an operator or a log collector reads:

- the output of the site.yml runs the tests made at -v (the second run, and
  the switch to on demand in the default layout), kept in SITE_LOGS;
- the entrance's whole journal, where gpu_up, gpu_down, the reaper, the
  waker and Ansible's module invocations on the entrance log;
- the log of every container of the lab, of the entrance's engine and of a
  GPU server still running.

The GPU servers the tests destroyed took their containers' logs with them;
their gpu_up and gpu_down output is in the entrance's journal.

Nor does any of them, or Caddy's access log, keep the one-time credentials of
the logins the tests made: Keycloak's session_code and the authorization code
it sends back to the client, which a URL carries (the request's URI, its
Referer, the Location of Keycloak's answer). Caddy writes them as REDACTED.
"""

from __future__ import annotations

import re

from lab_support import LAYOUT, SECRETS, SITE_LOGS, entrance, lab, sh

# Shorter values (a port, "true") would match by chance; every generated secret is longer.
SECRET_MIN_LENGTH = 12
# Files of the secrets directory that are not secret: public halves of key pairs, certificates.
PUBLIC_SUFFIXES = (".pub", ".crt", ".pem.pub")


# A login's one-time credentials in a URL's query (JSON logs may write & as \u0026); state is not a credential
# but goes with them in the access log.
LOGIN_CREDENTIAL = re.compile(r"(?:[?&]|\\u0026)(code|session_code)=([^&\s\"'\\#]+)")
REDACTED_IN_ACCESS_LOG = re.compile(r"(?:[?&]|\\u0026)(code|session_code|state)=REDACTED")
# Where the caddy role writes the access log on the entrance (caddy_log_dir, its default).
ACCESS_LOG = "/var/log/parrotpark/caddy/access.log"


def secret_values() -> dict[str, str]:
    """Every secret line of the secrets directory -> the file it comes from (relative)."""
    values: dict[str, str] = {}
    for path in sorted(SECRETS.rglob("*")):
        if not path.is_file() or path.name.endswith(PUBLIC_SUFFIXES):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            value = line.strip()
            if len(value) >= SECRET_MIN_LENGTH and not value.startswith("-----"):
                values.setdefault(value, str(path.relative_to(SECRETS)))
    # Not generated but secret all the same: the lab bucket's key, given in the inventory (backup_s3_secret_key,
    # and LibreChat's in the gateway-on-GPU layout).
    values.setdefault(lab.S3_SECRET_KEY, "the inventory's backup_s3_secret_key")
    return values


def container_logs(prefix: list[str], label: str | None = None) -> dict[str, str]:
    listing = [*prefix, "docker", "ps", "-a", "--format", "{{.Names}}"]
    if label:
        listing += ["--filter", f"label={label}"]
    logs = {}
    for name in sh(*listing).stdout.split():
        out = sh(*prefix, "docker", "logs", name, timeout=120, check=False)
        logs[f"{' '.join(prefix[-1:]) or 'host'} container {name}"] = out.stdout + out.stderr
    return logs


def logs_to_search() -> dict[str, str]:
    logs = {
        f"site.yml output {path.name}": path.read_text(encoding="utf-8")
        for path in sorted(SITE_LOGS.glob(f"{LAYOUT}-*.log"))
    }
    logs["entrance journal"] = entrance("journalctl", "--no-pager", "-o", "cat", timeout=300).stdout
    logs.update(container_logs([], f"{lab.LAB_LABEL}=true"))
    logs.update(container_logs(["docker", "exec", lab.ENTRANCE]))
    return logs


def test_no_secret_value_appears_in_any_log():
    secrets = secret_values()
    assert len(secrets) >= 5, f"too few secrets found in {SECRETS}: {sorted(set(secrets.values()))}"
    logs = logs_to_search()
    assert any(name.startswith("site.yml output") for name in logs), f"no site.yml output kept in {SITE_LOGS}"
    hits = [
        f"{origin} (from {len(value)} characters) in {where}"
        for value, origin in secrets.items()
        for where, text in logs.items()
        if value in text
    ]
    searched = sum(len(text) for text in logs.values())
    print(
        f"secrets in logs: {len(secrets)} secret values from {len(set(secrets.values()))} files, "
        f"{len(logs)} logs ({searched:,} characters) searched, {len(hits)} hits"
    )
    assert not hits, "secret values found in logs (the values are not shown):\n" + "\n".join(hits)


def test_no_login_code_appears_in_any_log():
    """The layout's tests logged users in (LibreChat's client; browsers on the chat and report pages in the default
    layout): Caddy's access log shows their session_code and code as REDACTED, and no log keeps a value."""
    access = entrance("cat", ACCESS_LOG).stdout
    redacted = set(REDACTED_IN_ACCESS_LOG.findall(access))
    # Every login posts Keycloak's form to a URL with a session_code and is answered with the code.
    assert {"session_code", "code"} <= redacted, f"no login seen in {ACCESS_LOG}: redacted {sorted(redacted)}"
    logs = {**logs_to_search(), "Caddy's access log": access}
    hits = sorted(
        {
            f"{name}= in {where}"
            for where, text in logs.items()
            for name, value in LOGIN_CREDENTIAL.findall(text)
            if value != "REDACTED"
        }
    )
    print(f"login credentials in logs: {len(logs)} logs searched, redacted in the access log: {sorted(redacted)}")
    assert not hits, "one-time login credentials found in logs (the values are not shown):\n" + "\n".join(hits)
