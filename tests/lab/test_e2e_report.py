"""End to end, the cost report on the entrance (run after test_e2e_on_demand.py in the stage lab).

test_e2e_on_demand.py leaves the waker's ledger with the session it woke, and LiteLLM's token counters (and
the GPU's vLLM counters) in the metrics database through Telegraf. ``parrotpark-gpu report`` on the entrance,
with no input named, reads the ledger from the scheduler's state directory, the tokens from PostgreSQL and the
installed price table, and writes HTML, JSON, CSV and plots; its timer's service does the same into the reports
directory. The ledger also reaches PostgreSQL (Telegraf's file input, table parrotpark_gpu_session). The
reports directory is served at https://chat.<domain>/reports/ behind Keycloak's login (the reports role's
OAuth2 Proxy): a user with the realm role admin reads it, a user without gets 403, nobody else gets anything.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import requests
from lab_support import (
    FAKE,
    SECRETS,
    SHOTS,
    entrance,
    keycloak_login,
    lab_ca,
    only_in_layout,
    psql,
    site_url,
    table_exists,
)
from lab_support import lab as lab_settings

pytestmark = only_in_layout("default")

STATE_DIR = "/var/lib/parrotpark/scheduler"
LEDGER = f"{STATE_DIR}/gpu-sessions.jsonl"
OUT = "/tmp/parrotpark-report-test"
REPORTS = "/var/lib/parrotpark/reports"
FILES = {"report.html", "report.json", "report.csv", "gpu_hours_per_day.png", "tokens_per_day.png", "costs.png"}
TOKEN_TABLES = (
    "litellm_input_tokens_metric_total",
    "litellm_input_tokens_total",
    "litellm_output_tokens_metric_total",
    "litellm_output_tokens_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)


def ledger_sessions() -> list[dict]:
    """The sessions of the waker's ledger: start, stop (destroyed, else the next start, else None), price and
    type (the healthy event's, else the first's), as gpu_report reads them."""
    events = [json.loads(line) for line in entrance("cat", LEDGER).stdout.splitlines() if line.strip()]
    groups: dict[str, list[dict]] = {}
    for event in events:
        groups.setdefault(event["session"], []).append(event)
    starts = sorted(groups, key=datetime.fromisoformat)
    sessions = []
    for index, start in enumerate(starts):
        group = groups[start]
        healthy = next((event for event in group if event["event"] == "healthy"), None)
        destroyed = next((event for event in group if event["event"] == "destroyed"), None)
        stop = destroyed["at"] if destroyed else (starts[index + 1] if index + 1 < len(starts) else None)
        priced = healthy or next((event for event in group if event["event"] == "created"), group[0])
        sessions.append(
            {
                "session": start,
                "started": datetime.fromisoformat(start),
                "stopped": None if stop is None else datetime.fromisoformat(stop),
                "price": Decimal(str(priced["hourly_price_eur"])),
                "type": (healthy or {}).get("commercial_type"),
                "zone": (healthy or {}).get("zone"),
                "trigger": group[0].get("trigger"),
            }
        )
    return sessions


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    year, number = map(int, month.split("-"))
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def run_report(*argv: str) -> dict:
    entrance("rm", "-rf", OUT)
    result = entrance("parrotpark-gpu", "report", "--out", OUT, *argv, timeout=600, check=False)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "written to" in result.stdout, result.stdout
    print(result.stdout.strip())
    return json.loads(entrance("cat", f"{OUT}/report.json").stdout)


def catalog_price(zone: str, commercial_type: str) -> Decimal:
    answer = requests.get(
        f"{FAKE}/instance/v1/zones/{zone}/products/servers",
        headers={"X-Auth-Token": lab_settings.SCW_SECRET_KEY},
        params={"per_page": 100},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:500]
    return Decimal(str(answer.json()["servers"][commercial_type]["hourly_price"]))


REPORT: dict = {}


def test_report_on_the_entrance_with_the_installed_defaults():
    sessions = ledger_sessions()
    assert sessions, "test_e2e_on_demand.py left no session in the ledger"
    report = run_report()
    zone = ZoneInfo(report["timezone"])
    last = sessions[-1]["started"].astimezone(zone)
    wanted = f"{last.year:04d}-{last.month:02d}"
    if report["month"] != wanted:  # the on-demand session was last month (the tests ran across a month's end)
        report = run_report("--month", wanted)
    assert report["month"] == wanted
    listed = set(entrance("ls", "-A", OUT).stdout.split())
    assert listed >= FILES, listed
    html = entrance("cat", f"{OUT}/report.html").stdout
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html, html[:500]
    csv_lines = entrance("cat", f"{OUT}/report.csv").stdout.splitlines()
    assert csv_lines[0].startswith("day,gpu_minutes_floor,gpu_minutes_on_demand"), csv_lines[:2]
    assert report["inputs"]["ledger"] == LEDGER
    assert report["inputs"]["prices"] == "/etc/parrotpark/scheduler/report-prices.yml"
    REPORT.update(report)
    REPORT["_sessions"] = sessions
    REPORT["_zone"] = zone


def test_report_has_exactly_the_ledgers_sessions_at_the_catalog_price():
    report, zone = REPORT, REPORT["_zone"]
    start, end = month_bounds(report["month"], zone)
    # Every session of the ledger that started in the month or billed minutes in it (the lab's are minutes long).
    ours = [
        session
        for session in REPORT["_sessions"]
        if start <= session["started"] < end or (session["stopped"] is None or start <= session["stopped"] < end)
    ]
    assert report["sessions"] == len(ours), (report["session_list"], ours)
    listed = sorted(datetime.fromisoformat(entry["started"]) for entry in report["session_list"])
    assert listed == sorted(session["started"] for session in ours), (report["session_list"], ours)
    inside = [s for s in ours if s["stopped"] is not None and start <= s["started"] and s["stopped"] < end]
    if len(inside) == len(ours):
        # Per minute from the start to the stop, rounded up per session, at the session's hourly price.
        minutes = [math.ceil((s["stopped"] - s["started"]) / timedelta(minutes=1)) for s in ours]
        exact = sum(count * s["price"] / 60 for count, s in zip(minutes, ours, strict=True))
        assert report["gpu_minutes"] == sum(minutes), (report["session_list"], minutes)
        assert Decimal(str(report["gpu_eur"])) == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(str(report["gpu_eur"])) > 0, report["session_list"]
    # The price of the last session is the catalog's price of the type that ran (scaleway_server_type_info).
    woken = REPORT["_sessions"][-1]
    assert woken["type"] == "L4-1-24G" and woken["zone"], woken
    catalog = catalog_price(woken["zone"], woken["type"])
    entry = next(e for e in report["session_list"] if datetime.fromisoformat(e["started"]) == woken["started"])
    assert Decimal(str(entry["hourly_price_eur"])) == catalog > 0, (entry, catalog)
    # What started each session, as the ledger says: the on-demand test's requests (wake), its floor (timer).
    started_by = {datetime.fromisoformat(e["started"]): e["started_by"] for e in report["session_list"]}
    assert started_by == {s["started"]: s["trigger"] for s in ours}, report["session_list"]
    assert entry["started_by"] == woken["trigger"] and "wake" in started_by.values(), report["session_list"]
    print(
        f"report {report['month']}: {report['sessions']} session(s), {report['gpu_minutes']} GPU minutes, "
        f"GPU €{report['gpu_eur']}, total €{report['total_eur']}; {report['summary']}"
    )


def test_report_reads_the_tokens_from_postgresql():
    report = REPORT
    tables = [name for name in TOKEN_TABLES if table_exists(name)]
    diagnosis = (
        f"token tables in the metrics database: {tables}; usage: {report['inputs']['usage']}; notes: {report['notes']}"
    )
    print(diagnosis)
    assert report["usage_available"] is True, diagnosis
    assert report["inputs"]["usage"].startswith("PostgreSQL metrics database, tables "), diagnosis
    assert report["prompt_tokens"] > 0 and report["completion_tokens"] > 0, diagnosis
    assert report["tokens"] == report["prompt_tokens"] + report["completion_tokens"]
    # The lab's chat model answered (test_e2e_on_demand.py's completions through LiteLLM).
    assert "mistral-nemo-12b" in [entry["model"] for entry in report["top_models"]], report["top_models"]
    assert report["eur_per_million_tokens"] is not None and report["eur_per_million_tokens"] > 0
    assert len(report["hosted"]) >= 3 and all(entry["eur"] >= 0 for entry in report["hosted"])


def test_report_timer_and_its_service_write_the_months_report():
    assert entrance("systemctl", "is-enabled", "parrotpark-gpu-report.timer", check=False).stdout.strip() == "enabled"
    calendar = entrance("systemctl", "cat", "parrotpark-gpu-report.timer").stdout
    assert "OnCalendar=*-*-01 06:00:00" in calendar and "OnCalendar=Mon *-*-* 06:00:00" in calendar, calendar
    started = entrance("systemctl", "start", "parrotpark-gpu-report.service", timeout=900, check=False)
    log = entrance("journalctl", "-u", "parrotpark-gpu-report.service", "--no-pager", "-n", "50", check=False).stdout
    assert started.returncode == 0, f"{started.stderr}\n{log}"
    now = datetime.now(UTC).astimezone(REPORT["_zone"])
    month = f"{now.year:04d}-{now.month:02d}"
    listed = set(entrance("ls", "-A", f"{REPORTS}/{month}").stdout.split())
    assert listed >= FILES, (listed, log)
    mode = entrance("stat", "-c", "%a %U", REPORTS).stdout.strip()
    assert mode == "750 root", mode


def test_the_ledger_is_in_postgresql():
    """Telegraf tails gpu-sessions.influx (telegraf_influx_tail_files) into the table parrotpark_gpu_session: each
    ledger line once, so the table has the ledger's events, each one row."""
    session = REPORT["_sessions"][-1]["session"]  # the tag is the ledger's text of the session's start
    events: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if table_exists("parrotpark_gpu_session"):
            out = psql(f"SELECT DISTINCT event FROM parrotpark_gpu_session WHERE session = '{session}' ORDER BY event")
            events = out.split()
            if "destroyed" in events:
                break
        time.sleep(5)
    ledger = [json.loads(line) for line in entrance("cat", LEDGER).stdout.splitlines() if line.strip()]
    expected = sorted({event["event"] for event in ledger if event["session"] == session})
    assert events == expected, (events, expected, session)
    price = psql(
        "SELECT DISTINCT hourly_price_eur FROM parrotpark_gpu_session "
        f"WHERE session = '{session}' AND event = 'healthy'"
    )
    assert Decimal(price) == REPORT["_sessions"][-1]["price"], price


def reports_url(path: str = "") -> str:
    return site_url("chat") + "/reports/" + path


def login_to_reports(username: str, password: str) -> tuple[requests.Session, requests.Response]:
    """Ask for the reports page as a browser would: follow the page's redirects to Keycloak, log in there, follow
    the redirect back to the page's callback; the session and the callback's answer."""
    ca = lab_ca()
    session = requests.Session()
    answer = session.get(reports_url(), allow_redirects=False, timeout=30, verify=ca)
    for _hop in range(3):  # /reports/ may pass by /reports/oauth2/start on its way to Keycloak
        assert answer.status_code in (302, 303), (answer.status_code, answer.text[:300])
        location = answer.headers["Location"]
        if location.startswith(site_url("auth")):
            break
        answer = session.get(urllib.parse.urljoin(answer.url, location), allow_redirects=False, timeout=30, verify=ca)
    else:
        raise AssertionError(f"the reports page never sent to Keycloak: {answer.headers}")
    assert "client_id=parrotpark-reports" in location and "code_challenge=" in location, location
    callback = keycloak_login(session, location, ca, username, password)
    assert callback.startswith(reports_url("oauth2/callback")), callback
    return session, session.get(callback, allow_redirects=False, timeout=30, verify=ca)


def test_report_pages_are_not_public():
    ca = lab_ca()
    month = REPORT["month"]
    for path in ("", f"{month}/", f"{month}/report.json", f"{month}/report.html"):
        answer = requests.get(reports_url(path), allow_redirects=False, timeout=30, verify=ca)
        assert answer.status_code in (302, 303, 401, 403), (path, answer.status_code, answer.text[:300])
        assert '"total_eur"' not in answer.text and "<!DOCTYPE html><html" not in answer.text[:50], path
    # The proxy's port is on the entrance's loopback only; the firewall lets nothing else in.
    published = entrance("docker", "port", "parrotpark-reports").stdout.split()
    assert published and all(entry.startswith("127.0.0.1:") for entry in published if ":" in entry), published


def test_report_pages_serve_a_user_with_the_admin_role():
    """lab-admin (realm role admin) logs in and reads this month's report, the same bytes as on the entrance."""
    password = (SECRETS / "lab-admin-password").read_text().strip()
    session, callback = login_to_reports("lab-admin", password)
    assert callback.status_code == 302, (callback.status_code, callback.text[:500])
    ca = lab_ca()
    month = datetime.now(UTC).astimezone(REPORT["_zone"]).strftime("%Y-%m")  # what the timer test wrote
    listing = session.get(reports_url(), timeout=30, verify=ca)
    # The index the report command keeps beside the months (write_index), newest first.
    assert listing.status_code == 200 and f'href="{month}/report.html"' in listing.text, listing.text[:500]
    assert listing.text.startswith("<!DOCTYPE html>") and "GPU cost and usage reports" in listing.text
    served = session.get(reports_url(f"{month}/report.json"), timeout=30, verify=ca)
    assert served.status_code == 200, (served.status_code, served.text[:300])
    assert served.json() == json.loads(entrance("cat", f"{REPORTS}/{month}/report.json").stdout)
    page = session.get(reports_url(f"{month}/report.html"), timeout=30, verify=ca)
    assert page.status_code == 200 and page.text.startswith("<!DOCTYPE html>"), page.text[:300]
    assert "data:image/png;base64," in page.text
    # Caddy's headers are on the page too, and the session cookie is limited to /reports.
    assert page.headers.get("Strict-Transport-Security"), page.headers
    cookies = [cookie for cookie in session.cookies if cookie.name.startswith("_parrotpark_reports")]
    assert cookies and all(cookie.path == "/reports" and cookie.secure for cookie in cookies), cookies


def test_report_pages_refuse_a_user_without_the_role():
    """The lab user (no realm role admin) logs in, and the callback answers 403: no session, no report."""
    password = (SECRETS / "lab-user-password").read_text().strip()
    session, callback = login_to_reports("lab", password)
    assert callback.status_code == 403, (callback.status_code, callback.text[:500])
    # The error page says what to do (reports_forbidden_message).
    assert 'id="parrotpark-forbidden">Only people with the role admin may read the cost reports' in callback.text
    month = REPORT["month"]
    again = session.get(reports_url(f"{month}/report.json"), allow_redirects=False, timeout=30, verify=lab_ca())
    assert again.status_code != 200 and '"total_eur"' not in again.text, (again.status_code, again.text[:300])


def browser_login(page, username: str, secret: str) -> None:
    """In a real browser, open the reports page and fill in Keycloak's login form (the caller clicks); the
    password is the lab's secret file ``secret``."""
    page.goto(reports_url())
    page.wait_for_url(site_url("auth") + "/realms/parrotpark/protocol/openid-connect/auth?**")
    page.locator("#username").fill(username)
    page.locator("#password").fill((SECRETS / secret).read_text().strip())


def test_a_browser_shows_the_report_with_its_plots_to_an_admin(page):
    month = datetime.now(UTC).astimezone(REPORT["_zone"]).strftime("%Y-%m")  # what the timer test wrote
    browser_login(page, "lab-admin", "lab-admin-password")
    page.locator("#kc-login").click()
    page.wait_for_url(reports_url())
    page.screenshot(path=SHOTS / "reports-1-months.png")
    page.get_by_role("link", name=month, exact=True).click()
    page.wait_for_url(reports_url(f"{month}/report.html"))
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    page.screenshot(path=SHOTS / "reports-2-report.png", full_page=True)
    assert len(widths) >= 3 and all(width > 0 for width in widths), widths
    assert "€" in page.inner_text("body")


def test_a_browser_gets_403_for_a_user_without_the_role(page):
    browser_login(page, "lab", "lab-user-password")
    with page.expect_response(lambda response: "/reports/oauth2/callback" in response.url) as callback:
        page.locator("#kc-login").click()
    page.wait_for_load_state("load")
    page.screenshot(path=SHOTS / "reports-3-forbidden.png")
    assert callback.value.status == 403, callback.value.status
    assert "ask your organisation" in page.inner_text("#parrotpark-forbidden")
    assert "total_eur" not in page.content()
