"""The report's usage from PostgreSQL and the installed command's defaults (roles/scheduler/files/gpu_report.py).

psql is replaced by a small program that answers canned CSV: the table query with the tables it "has", the
usage query with fixed rows (what psql --csv prints for usage_sql). The SQL itself is checked for what it must
say (the months' bounds, the zone, the tables quoted, the increase of a counter across a reset); the lab test
tests/lab/test_e2e_report.py runs it against the real metrics database.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "scheduler" / "files"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
import gpu_report as gr  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "report"
PARIS = ZoneInfo("Europe/Paris")
HEADER = "kind,day,requested_model,model,end_user,user,tokens\n"
ROWS = (
    HEADER + "prompt,2025-11-03,mistral-nemo-12b,hosted_vllm/mistral-nemo-12b,alice@example.org,default_user_id,1200\n"
    "completion,2025-11-03,mistral-nemo-12b,hosted_vllm/mistral-nemo-12b,alice@example.org,default_user_id,300\n"
    "prompt,2025-11-03,mistral-nemo-12b,hosted_vllm/mistral-nemo-12b,,default_user_id,50\n"
    "prompt,2025-11-04,parrotpark-fallback,mistral-small-3.2,bob@example.org,,400\n"
    "completion,2025-11-04,parrotpark-fallback,mistral-small-3.2,bob@example.org,,100\n"
    'completion,2025-11-04,"model, with comma",,,,7\n'
)
DATABASE = gr.Database(("psql",), "parrotpark-fallback", ("openai/mistral-small-3.2",))


def test_rows_merge_prompt_and_completion_per_day_model_user_and_server():
    rows = gr.parse_usage_rows(ROWS, DATABASE)
    summary = [(r.day.isoformat(), r.model, r.user, r.prompt, r.completion, r.served_by) for r in rows]
    assert summary == [
        # The end user when LiteLLM has it (LibreChat's header), else LiteLLM's user of the key.
        ("2025-11-03", "mistral-nemo-12b", "alice@example.org", 1200, 300, "local"),
        ("2025-11-03", "mistral-nemo-12b", "default_user_id", 50, 0, "local"),
        # Requested as the fallback group: the fallback served it.
        ("2025-11-04", "model, with comma", "", 0, 7, "local"),
        ("2025-11-04", "parrotpark-fallback", "bob@example.org", 400, 100, "parrotpark-fallback"),
    ]
    assert [row.line for row in rows] == [1, 2, 3, 4]


def test_the_fallback_is_known_by_its_model_too():
    text = HEADER + "prompt,2025-11-04,mistral-nemo-12b,mistral-small-3.2,u,,10\n"
    (row,) = gr.parse_usage_rows(text, DATABASE)
    # LiteLLM names the model without the provider prefix of litellm_fallback.model (openai/...).
    assert (row.model, row.served_by) == ("mistral-nemo-12b", "parrotpark-fallback")
    (local,) = gr.parse_usage_rows(text, gr.Database(("psql",)))
    assert local.served_by == "local"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind,day,model,end_user,user,tokens\n", "field 'requested_model': missing column"),
        (HEADER + "prompt,2025-11-03,m,m,u,u,-5\n", "line 2, field 'tokens': must be a whole number at least 0"),
        (HEADER + "prompt,2025-11-03,m,m,u,u,1.5\n", "field 'tokens'"),
        (HEADER + "input,2025-11-03,m,m,u,u,1\n", "field 'kind': must be prompt or completion"),
        (HEADER + "prompt,2025-13-03,m,m,u,u,1\n", "field 'day'"),
        (HEADER + "prompt,2025-11-03,m,m,u,1\n", "has 6 fields, the header has 7"),
        ("", "no header"),
    ],
)
def test_bad_rows_name_the_line_and_field(text, message):
    with pytest.raises(gr.ReportError) as caught:
        gr.parse_usage_rows(text, DATABASE)
    assert message in str(caught.value)


def test_usage_sql_reads_the_month_with_a_lookback_in_the_zone():
    start = datetime(2025, 10, 31, 23, 0, tzinfo=UTC)
    end = datetime(2025, 11, 30, 23, 0, tzinfo=UTC)
    sql = gr.usage_sql(
        {"prompt": "litellm_input_tokens_total", "completion": "vllm:generation_tokens_total"},
        start,
        end,
        "Europe/Paris",
    )
    assert '"public"."litellm_input_tokens_total"' in sql and '"vllm:generation_tokens_total"' in sql
    assert "'2025-10-24T23:00:00+00:00'::timestamptz" in sql  # 7 days before, for the last sample before
    assert "time >= '2025-10-31T23:00:00+00:00'::timestamptz" in sql
    assert "time < '2025-11-30T23:00:00+00:00'::timestamptz" in sql
    assert "AT TIME ZONE 'Europe/Paris'" in sql
    # A reset (the value went down) or a new series counts the value itself, else the difference.
    assert "WHEN previous IS NULL OR reading < previous THEN reading ELSE reading - previous" in sql
    assert "PARTITION BY series ORDER BY time" in sql
    assert sql.count("UNION ALL") == 1
    assert "'it''s'" in gr.tables_sql(["it's"])


def fake_psql(tmp_path: Path, tables: list[str], usage: str | None = None, fail: str | None = None) -> tuple[str, ...]:
    """A psql that answers the table query with ``tables``, the usage query with ``usage``, and logs the SQL."""
    program = tmp_path / "psql.py"
    program.write_text(
        "import json, sys\n"
        "sql = sys.stdin.read()\n"
        f"log = {str(tmp_path / 'sql.log')!r}\n"
        "open(log, 'a').write(sql + '\\n----\\n')\n"
        f"fail = {fail!r}\n"
        "if fail:\n"
        "    sys.stderr.write(fail)\n"
        "    sys.exit(2)\n"
        "if 'pg_tables' in sql:\n"
        f"    print('tablename')\n    for name in {tables!r}:\n        print(name)\n"
        "else:\n"
        f"    sys.stdout.write({(usage or HEADER)!r})\n"
    )
    return (sys.executable, str(program))


NOVEMBER = (datetime(2025, 10, 31, 23, tzinfo=UTC), datetime(2025, 11, 30, 23, tzinfo=UTC))


def test_litellm_counters_first(tmp_path):
    command = fake_psql(tmp_path, ["litellm_input_tokens_total", "litellm_output_tokens_total"], ROWS)
    usage = gr.usage_from_database(gr.Database(command), *NOVEMBER, "Europe/Paris")
    assert usage.available and usage.notes == ()
    assert sum(row.prompt for row in usage.rows) == 1650 and sum(row.completion for row in usage.rows) == 407
    assert usage.source == "PostgreSQL metrics database, tables litellm_input_tokens_total, litellm_output_tokens_total"


def test_vllm_counters_when_litellm_has_none(tmp_path):
    vllm_rows = HEADER + "prompt,2025-11-03,mistral-nemo-12b,mistral-nemo-12b,,,90\n"
    command = fake_psql(tmp_path, ["vllm:prompt_tokens_total", "vllm:generation_tokens_total"], vllm_rows)
    usage = gr.usage_from_database(gr.Database(command), *NOVEMBER, "Europe/Paris")
    assert usage.available and [(r.model, r.user, r.prompt) for r in usage.rows] == [("mistral-nemo-12b", "", 90)]
    assert "vLLM's own counters" in usage.notes[0] and "are not in the metrics database" in usage.notes[0]
    assert '"vllm:prompt_tokens_total"' in (tmp_path / "sql.log").read_text()


def test_no_counters_or_no_database_is_said_plainly(tmp_path):
    usage = gr.usage_from_database(gr.Database(fake_psql(tmp_path, [])), *NOVEMBER, "Europe/Paris")
    assert not usage.available and usage.rows == ()
    assert "none of the token counters' tables" in usage.notes[0]
    down = fake_psql(tmp_path, [], fail="Error response from daemon: No such container: parrotpark-postgres")
    usage = gr.usage_from_database(gr.Database(down), *NOVEMBER, "Europe/Paris")
    assert not usage.available
    assert "could not be read (Error response from daemon: No such container: parrotpark-postgres)" in usage.notes[0]
    missing = gr.usage_from_database(gr.Database(("/nonexistent/psql",)), *NOVEMBER, "Europe/Paris")
    assert "/nonexistent/psql is not installed" in missing.notes[0]


def test_report_without_usage_still_prices_the_gpu(tmp_path):
    unavailable = gr.UsageFromDatabase((), "PostgreSQL metrics database", False, ("Usage unavailable: down.",))
    report = gr.build(
        FIXTURES / "gpu-sessions.jsonl",
        unavailable,
        FIXTURES / "prices.yml",
        month="2025-11",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert report["usage_available"] is False and report["tokens"] == 0
    assert report["gpu_eur"] > 0 and report["notes"][0] == "Usage unavailable: down."
    assert report["summary"].startswith("Usage from PostgreSQL is unavailable (see the notes): GPU €")
    assert report["inputs"]["usage"] == "PostgreSQL metrics database"
    assert len(report["session_list"]) == report["sessions"]
    assert sum(entry["minutes"] for entry in report["session_list"]) == report["gpu_minutes"]


def test_timer_months():
    assert gr.timer_months(datetime(2025, 11, 17, 5, tzinfo=UTC), PARIS) == ["2025-11"]
    # 1 December 06:00 in Paris: November is complete, December begins.
    assert gr.timer_months(datetime(2025, 12, 1, 5, tzinfo=UTC), PARIS) == ["2025-11", "2025-12"]
    assert gr.timer_months(datetime(2026, 1, 1, 5, tzinfo=UTC), PARIS) == ["2025-12", "2026-01"]
    # 30 November 23:30 UTC is already 1 December in Paris.
    assert gr.timer_months(datetime(2025, 11, 30, 23, 30, tzinfo=UTC), PARIS) == ["2025-11", "2025-12"]


def installed(tmp_path: Path, command: tuple[str, ...]) -> dict:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "gpu-sessions.jsonl").write_text((FIXTURES / "gpu-sessions.jsonl").read_text())
    return {
        "state_dir": str(state),
        "schedule": str(tmp_path / "no-schedule.json"),
        "report": {
            "prices": str(FIXTURES / "prices.yml"),
            "out_dir": str(tmp_path / "reports"),
            "timezone": "Europe/Paris",
            "psql": list(command),
            "fallback": {"name": "parrotpark-fallback", "models": []},
        },
    }


def arguments(**given) -> argparse.Namespace:
    values = {
        "ledger": None,
        "usage": None,
        "prices": None,
        "out": None,
        "month": None,
        "timezone": None,
        "report_schedule": None,
        "timer": False,
    }
    return argparse.Namespace(**{**values, **given})


def test_installed_defaults_read_the_ledger_and_the_database(tmp_path):
    settings = installed(
        tmp_path, fake_psql(tmp_path, ["litellm_input_tokens_total", "litellm_output_tokens_total"], ROWS)
    )
    now = datetime(2025, 12, 1, 5, tzinfo=UTC)
    assert gr.run_installed(settings, arguments(month="2025-11"), now=now) == 0
    report = json.loads((tmp_path / "reports" / "2025-11" / "report.json").read_text())
    assert report["inputs"]["ledger"] == settings["state_dir"] + "/gpu-sessions.jsonl"
    assert report["inputs"]["prices"] == settings["report"]["prices"]
    assert (report["prompt_tokens"], report["completion_tokens"]) == (1650, 407)
    assert report["usage_available"] is True and report["sessions"] > 0
    assert {entry["user"] for entry in report["top_users"]} >= {"alice@example.org", "bob@example.org"}
    # A usage file wins over the database; --out is used as given.
    usage = tmp_path / "usage.csv"
    usage.write_text("day,model,user,prompt_tokens,completion_tokens,served_by\n2025-11-05,m,u,10,5,local\n")
    out = tmp_path / "given"
    assert gr.run_installed(settings, arguments(month="2025-11", usage=str(usage), out=str(out)), now=now) == 0
    assert json.loads((out / "report.json").read_text())["tokens"] == 15


def test_timer_run_writes_the_previous_month_on_the_first(tmp_path):
    settings = installed(tmp_path, fake_psql(tmp_path, [], fail="could not connect to server"))
    assert gr.run_installed(settings, arguments(timer=True), now=datetime(2025, 12, 1, 5, tzinfo=UTC)) == 0
    written = sorted(path.name for path in (tmp_path / "reports").iterdir() if not path.name.startswith("."))
    assert written == ["2025-11", "2025-12", "index.html"]
    # The reports page opens on the index: newest month first, each linked to its page.
    index = (tmp_path / "reports" / "index.html").read_text()
    assert index.index('href="2025-12/report.html"') < index.index('href="2025-11/report.html"'), index
    november = json.loads((tmp_path / "reports" / "2025-11" / "report.json").read_text())
    assert november["usage_available"] is False and november["gpu_eur"] > 0
    assert any("could not connect to server" in note for note in november["notes"])


def test_missing_ledger_is_an_empty_month_with_a_note(tmp_path):
    settings = installed(tmp_path, fake_psql(tmp_path, [], fail="down"))
    (Path(settings["state_dir"]) / "gpu-sessions.jsonl").unlink()
    assert gr.run_installed(settings, arguments(month="2025-11"), now=datetime(2025, 12, 1, tzinfo=UTC)) == 0
    report = json.loads((tmp_path / "reports" / "2025-11" / "report.json").read_text())
    assert report["sessions"] == 0 and report["gpu_eur"] == 0
    assert any("does not exist yet" in note for note in report["notes"])
    # Given on the command line, a missing ledger is an error, and nothing is written.
    gone = tmp_path / "nothing.jsonl"
    out = tmp_path / "out"
    assert gr.run_installed(settings, arguments(month="2025-11", ledger=str(gone), out=str(out))) == 2
    assert not out.exists()


def test_without_database_or_out_the_command_says_what_is_missing(tmp_path, capsys):
    assert gr.run_installed({"state_dir": str(tmp_path)}, arguments(out=str(tmp_path / "x"))) == 2
    assert "--usage USAGE.csv is required" in capsys.readouterr().err
    assert gr.run_installed({"report": {"psql": ["psql"]}}, arguments()) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert gr.run_installed({"report": {"psql": ["psql"]}}, arguments(month="2025-13", out="x")) == 2
    assert "must be YYYY-MM" in capsys.readouterr().err


def test_check_prices(capsys):
    assert gr.main(["check-prices", str(FIXTURES / "prices.yml")]) == 0
    assert "hosted offers" in capsys.readouterr().out
    assert gr.main(["check-prices", str(FIXTURES / "usage.csv")]) == 2


def test_index_lists_the_months_with_a_report_newest_first(tmp_path):
    """write_index: month folders with a report.json only, newest first, with the total, the tokens, euros per
    million tokens and the verdict (escaped); a report.json that cannot be read is listed as such."""
    reports = tmp_path / "reports"
    for month, total, prompt, completion, per_million, summary in (
        ("2025-10", "12.5", 1000, 500, "8333.33", "This stack <b>as run</b> was the cheapest"),
        ("2025-11", "0.006", 0, 0, None, "No traffic"),
    ):
        (reports / month).mkdir(parents=True)
        (reports / month / "report.json").write_text(
            json.dumps(
                {
                    "total_eur": total,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "eur_per_million_tokens": per_million,
                    "summary": summary,
                }
            )
        )
    (reports / "2025-12").mkdir()  # no report yet: not listed
    (reports / "2025-09").mkdir()
    (reports / "2025-09" / "report.json").write_text("{not json")
    (reports / "scratch").mkdir()  # not a month
    (reports / "scratch" / "report.json").write_text("{}")
    index = gr.write_index(reports).read_text()
    months = [month for month in ("2025-12", "2025-11", "2025-10", "2025-09", "scratch") if f'href="{month}/' in index]
    assert months == ["2025-11", "2025-10", "2025-09"], index
    assert index.index("2025-11") < index.index("2025-10") < index.index("2025-09")
    assert "<td>€12.50</td><td>1,500</td><td>€8,333.33</td>" in index, index
    assert "<td>€0.01</td><td>0</td><td>n/a</td><td>No traffic</td>" in index, index
    assert "This stack &lt;b&gt;as run&lt;/b&gt; was the cheapest" in index
    assert "report.json cannot be read" in index
    assert oct((reports / "index.html").stat().st_mode & 0o777) == "0o644"
    assert not [path for path in reports.iterdir() if path.name.startswith(".index")]


def test_index_says_when_there_is_no_report(tmp_path):
    assert "No report yet" in gr.write_index(tmp_path).read_text()
