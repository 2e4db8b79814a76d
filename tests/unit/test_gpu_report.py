"""The cost and usage report (roles/scheduler/files/gpu_report.py, ``parrotpark-gpu report``) on fixture files.

Every expected number is computed by hand in the comment beside it, from
tests/unit/fixtures/report/: ledger.json (October 2025 in Europe/Paris, with a
session that starts in September, one that ends in November, one across
midnight, one across the end of summer time, a one-second failed wake),
usage.csv, prices.yml (round test prices, USD at 1.25 per EUR, a cache volume
and a flexible IPv4), schedule.yml (Mon-Fri 08:00-19:00, 2025-10-10 off),
ledger_running.json (a session still running), ledger_march.json (the
23-hour day of 30 March 2025) and gpu-sessions.jsonl (the waker's own ledger,
one event a line, November 2025: a timer session, a wake, a wake that never
became healthy and a manual session still running).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "scheduler" / "files"
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))
import gpu_report as gr  # noqa: E402

PROGRAM = FILES / "parrotpark_gpu.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "report"
LEDGER = FIXTURES / "ledger.json"
USAGE = FIXTURES / "usage.csv"
PRICES = FIXTURES / "prices.yml"
SCHEDULE = FIXTURES / "schedule.yml"
LATER = datetime(2026, 1, 1, tzinfo=UTC)  # "now" for the reports of past months


def october(**kwargs):
    options = {"month": "2025-10", "now": LATER, **kwargs}
    return gr.build(LEDGER, USAGE, PRICES, **options)


def day(report, iso):
    return next(entry for entry in report["days"] if entry["day"] == iso)


# --------------------------------------------------------------------------
# GPU time and money
# --------------------------------------------------------------------------


def test_gpu_minutes_hours_and_euros_of_october():
    report = october()
    # Minutes that begin in October (Europe/Paris), per session of ledger.json:
    #   row 1 manual 30 Sep 23:00 -> 1 Oct 01:00 (+02:00): 120 min, the 60 from 1 Oct 00:00 are October's
    #   row 2 timer   1 Oct 08:00 -> 19:00: 660
    #   row 3 wake    2 Oct 21:10:20 -> 21:41:00: 30 min 40 s, rounded up to 31
    #   row 4 wake    3 Oct 23:30 -> 4 Oct 00:45: 75
    #   row 5 wake   10 Oct 10:00:00 -> 10:00:01: 1 s, rounded up to 1
    #   row 6 timer  15 Oct 08:00 -> 12:00 on an L40S at 1.47 EUR/h: 240
    #   row 7 wake   26 Oct 01:30+02:00 -> 02:30+01:00 (summer time ends at 03:00+02:00): 120, not 60
    #   row 8 wake   31 Oct 23:15+01:00 -> 1 Nov 00:20: 65, of which 45 in October
    # floor (timer) 660 + 240 = 900 min = 15.00 h; on demand 60 + 31 + 75 + 1 + 120 + 45 = 332 min = 5.53 h
    assert report["gpu_minutes"] == 1232
    assert report["gpu_hours"] == Decimal("20.53")  # 1232 / 60 = 20.5333
    assert report["gpu_hours_floor"] == Decimal("15.00")
    assert report["gpu_hours_on_demand"] == Decimal("5.53")  # 332 / 60 = 5.5333
    # L4: (60 + 660 + 31 + 75 + 1 + 120 + 45) = 992 min x 0.79 / 60 = 13.061333; L40S: 240 x 1.47 / 60 = 5.88
    assert report["gpu_eur"] == Decimal("18.94")  # 18.941333
    assert report["sessions"] == 8
    assert report["mode_as_run"] == "hybrid"


def test_days_split_at_midnight_month_ends_and_the_25_hour_day():
    report = october()
    assert len(report["days"]) == 31
    first = day(report, "2025-10-01")
    # 1 Oct: 660 floor; the September session's last 60 minutes (00:00-01:00) are on demand (manual)
    assert (first["gpu_minutes_floor"], first["gpu_minutes_on_demand"]) == (660, 60)
    assert first["gpu_eur"] == Decimal("9.48")  # 720 x 0.79 / 60 = 9.48
    # 3 Oct 23:30 -> 4 Oct 00:45: 30 minutes on the 3rd, 45 on the 4th
    assert day(report, "2025-10-03")["gpu_minutes_on_demand"] == 30
    assert day(report, "2025-10-04")["gpu_minutes_on_demand"] == 45
    # 26 Oct lasts 25 hours: 01:30+02:00 -> 02:30+01:00 is 23:30Z -> 01:30Z, 120 minutes, all on the 26th
    assert day(report, "2025-10-26")["gpu_minutes_on_demand"] == 120
    assert day(report, "2025-10-26")["gpu_eur"] == Decimal("1.58")  # 120 x 0.79 / 60
    # 31 Oct 23:15 -> 1 Nov 00:20: 45 minutes on the 31st; the other 20 belong to November
    assert day(report, "2025-10-31")["gpu_minutes_on_demand"] == 45
    assert sum(entry["gpu_minutes_floor"] + entry["gpu_minutes_on_demand"] for entry in report["days"]) == 1232
    november = gr.build(LEDGER, USAGE, PRICES, month="2025-11", now=LATER)
    assert november["gpu_minutes"] == 20
    assert day(november, "2025-11-01")["gpu_minutes_on_demand"] == 20
    september = gr.build(LEDGER, USAGE, PRICES, month="2025-09", now=LATER)
    assert september["gpu_minutes"] == 60  # 30 Sep 23:00 -> 24:00


def test_per_minute_round_up_per_session():
    report = october()
    # 2 Oct 21:10:20 -> 21:41:00 is 30 min 40 s: billed 31 minutes, 31 x 0.79 / 60 = 0.408 -> 0.41
    assert day(report, "2025-10-02")["gpu_minutes_on_demand"] == 31
    assert day(report, "2025-10-02")["gpu_eur"] == Decimal("0.41")
    # 10 Oct: a wake that stopped after one second is billed one whole minute: 0.79 / 60 = 0.0132 -> 0.01
    assert day(report, "2025-10-10")["gpu_minutes_on_demand"] == 1
    assert day(report, "2025-10-10")["gpu_eur"] == Decimal("0.01")


def test_the_23_hour_day_of_march():
    report = gr.build(FIXTURES / "ledger_march.json", FIXTURES / "usage_empty.csv", PRICES, now=LATER)
    assert report["month"] == "2025-03"  # the month of the latest data
    # 30 Mar 00:00+01:00 -> 31 Mar 00:00+02:00 is 23:00Z -> 22:00Z: 1380 minutes (not 1440)
    assert day(report, "2025-03-30")["gpu_minutes_on_demand"] == 1380
    # 31 Mar 01:30 -> 02:30 (+02:00, the clocks are already on summer time): 60
    assert day(report, "2025-03-31")["gpu_minutes_on_demand"] == 60
    assert report["gpu_minutes"] == 1440
    assert report["gpu_eur"] == Decimal("18.96")  # 1440 x 0.79 / 60 = 18.96
    # The flexible IPv4 bills the month's real hours: 31 x 24 - 1 = 743 h x 0.005 = 3.715 -> 3.72 (half up)
    assert report["month_hours"] == Decimal("743.00")
    assert [item["eur"] for item in report["fixed"]] == [Decimal("14.25"), Decimal("3.72")]
    assert report["eur_per_million_tokens"] is None
    assert any("No tokens" in note for note in report["notes"])


def test_a_session_still_running_is_billed_to_the_end_of_a_past_month():
    ledger = FIXTURES / "ledger_running.json"
    report = gr.build(ledger, FIXTURES / "usage_empty.csv", PRICES, month="2025-10", now=LATER)
    # 30 Oct 22:00+01:00 -> 1 Nov 00:00+01:00 = 26 h = 1560 min: 120 on the 30th, 1440 on the 31st
    assert report["gpu_minutes"] == 1560
    assert day(report, "2025-10-30")["gpu_minutes_on_demand"] == 120
    assert day(report, "2025-10-31")["gpu_minutes_on_demand"] == 1440
    assert report["gpu_eur"] == Decimal("20.54")  # 1560 x 0.79 / 60 = 20.54
    assert report["running_sessions"] == [
        {"instance": "parrotpark-gpu", "row": 1, "billed_until": "2025-11-01T00:00:00+01:00"}
    ]
    assert any("still running" in note and "the end of the month" in note for note in report["notes"])


def test_a_session_still_running_is_billed_to_now_in_the_current_month():
    ledger = FIXTURES / "ledger_running.json"
    now = datetime.fromisoformat("2025-10-30T23:20:30+01:00")
    report = gr.build(ledger, FIXTURES / "usage_empty.csv", PRICES, now=now)
    assert report["month"] == "2025-10"  # a running session makes now the latest data
    # 22:00:00 -> 23:20:30 is 80 min 30 s, rounded up to 81: 81 x 0.79 / 60 = 1.0665 -> 1.07
    assert report["gpu_minutes"] == 81
    assert report["gpu_eur"] == Decimal("1.07")
    assert report["period"] == {
        "start": "2025-10-01T00:00:00+02:00",
        "end": "2025-10-30T23:20:30+01:00",
        "complete": False,
    }
    assert report["running_sessions"][0]["billed_until"] == "2025-10-30T23:20:30+01:00"
    assert any("still running" in note and "now" in note for note in report["notes"])
    # The fixed costs cover the month so far: 1 Oct 00:00+02:00 -> 30 Oct 00:00+01:00 is 29 x 24 + 1 = 697 h, then
    # 23 h 20 min 30 s: 720.341667 h. The volume pro rata 150 x 0.095 x 720.341667 / 745 = 13.778 -> 13.78; the IP
    # 720.341667 x 0.005 = 3.6017 -> 3.60
    assert [item["eur"] for item in report["fixed"]] == [Decimal("13.78"), Decimal("3.60")]


def test_cold_starts_and_wake_times():
    report = october()
    # Wakes started in October: rows 3, 4, 5, 7, 8 (row 1 is manual, in September)
    assert report["cold_starts"] == 5
    # healthy - started: 420 s, 480 s, (row 5 never healthy), 360 s, 420 s -> sorted 360, 420, 420, 480
    # nearest rank: p50 = the ceil(0.50 x 4) = 2nd = 420; p95 = the ceil(0.95 x 4) = 4th = 480
    assert report["wake_seconds_p50"] == 420
    assert report["wake_seconds_p95"] == 480
    assert report["wakes_never_healthy"] == 1
    assert [day(report, iso)["cold_starts"] for iso in ("2025-10-02", "2025-10-03", "2025-10-10", "2025-10-26")] == [
        1,
        1,
        1,
        1,
    ]


@pytest.mark.parametrize(
    ("values", "p50", "p95"),
    [([], None, None), ([7], 7, 7), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5, 10), ([30, 10, 20], 20, 30)],
)
def test_percentile_is_nearest_rank(values, p50, p95):
    assert gr.percentile(values, 50) == p50
    assert gr.percentile(values, 95) == p95


# --------------------------------------------------------------------------
# Tokens, prices and the comparison
# --------------------------------------------------------------------------


def test_tokens_local_and_fallback():
    report = october()
    # October rows only (the 30 Sep and 1 Nov rows are left out):
    # prompt 12M + 5M + 2M + 1.5M + 8M + 1M + 0.5M = 30,000,000; completion 3M + 1M + 0.5M + 0.4M + 2M + 0.3M
    # + 0.1M = 7,300,000; the fallback scaleway-mistral-small served 1.5M / 0.4M
    assert (report["prompt_tokens"], report["completion_tokens"], report["tokens"]) == (
        30_000_000,
        7_300_000,
        37_300_000,
    )
    assert report["local_tokens"] == {"prompt": 28_500_000, "completion": 6_900_000}
    assert report["fallback_tokens"]["by_name"] == {
        "scaleway-mistral-small": {"prompt": 1_500_000, "completion": 400_000}
    }
    first = day(report, "2025-10-01")
    assert (first["local_prompt_tokens"], first["local_completion_tokens"]) == (17_000_000, 4_000_000)
    fourth = day(report, "2025-10-04")
    assert (fourth["fallback_prompt_tokens"], fourth["fallback_completion_tokens"]) == (1_500_000, 400_000)
    # alice 12M+3M+2M+0.5M = 17.5M, bob 5M+1M+8M+2M = 16M, carol 3.2M (1.9M by the fallback), no user 0.6M
    assert [(entry["user"], entry["tokens"]) for entry in report["top_users"]] == [
        ("alice", 17_500_000),
        ("bob", 16_000_000),
        ("carol", 3_200_000),
        ("(none)", 600_000),
    ]
    assert report["top_users"][2]["fallback_tokens"] == 1_900_000
    assert [(entry["model"], entry["tokens"]) for entry in report["top_models"]] == [
        ("gemma-3-12b", 27_300_000),
        ("mistral-small", 10_000_000),
    ]


def test_each_hosted_offer_prices_the_whole_traffic():
    hosted = {entry["id"]: entry for entry in october()["hosted"]}
    # Scaleway EUR 0.15 / 0.35: 30 x 0.15 + 7.3 x 0.35 = 4.5 + 2.555 = 7.055 -> 7.06
    assert hosted["scaleway-mistral-small"]["eur"] == Decimal("7.06")
    # Mistral USD 0.10 / 0.30: 3.00 + 2.19 = USD 5.19, at 1 EUR = 1.25 USD: 4.152 -> 4.15
    assert hosted["mistral-small"]["eur"] == Decimal("4.15")
    assert hosted["mistral-small"]["rate"]["per_eur"] == Decimal("1.25")
    # OVHcloud EUR 0.14 / 0.14 (no id: named by provider and model): 37.3 x 0.14 = 5.222 -> 5.22
    assert hosted["OVHcloud Mistral-Nemo"]["eur"] == Decimal("5.22")


def test_total_per_million_tokens_and_the_cheapest_sentence():
    report = october()
    # fixed: volume 150 GB x 0.095 = 14.25; IPv4 745 h (October has 31 x 24 + 1 hours in Paris) x 0.005 = 3.725,
    # shown 3.73 (half up, not 3.72 half even); together 17.975 -> 17.98
    assert [item["eur"] for item in report["fixed"]] == [Decimal("14.25"), Decimal("3.73")]
    assert report["fixed_eur"] == Decimal("17.98")
    # the fallback is priced at its offer: 1.5 x 0.15 + 0.4 x 0.35 = 0.365 -> 0.37 (half up)
    assert report["fallback_eur"] == Decimal("0.37")
    # total 18.941333 + 17.975 + 0.365 = 37.281333 -> 37.28; per million 37.281333 / 37.3 = 0.9995 -> 1.00
    assert report["total_eur"] == Decimal("37.28")
    assert report["eur_per_million_tokens"] == Decimal("1.00")
    assert report["cheapest"] == {"option": "Mistral mistral-small-2506", "eur": Decimal("4.15")}
    # 37.28 - 4.15 = 33.13
    assert report["summary"] == (
        "Mistral mistral-small-2506 would have been the cheapest option for this month's traffic at €4.15, "
        "€33.13 less than this stack as run (€37.28)."
    )
    # Break-even: GPU EUR per hour 18.941333 / 20.533333 = 0.922468; the cheapest offer costs 4.152 / 37.3M per
    # token, so a GPU-hour must serve 0.922468 x 37.3M / 4.152 = 8,287,100 tokens; it served 35.4M / 20.5333 =
    # 1,724,026
    assert report["break_even"]["tokens_per_gpu_hour_to_match"] == 8_287_100
    assert report["break_even"]["local_tokens_per_gpu_hour"] == 1_724_026


def test_the_stack_as_run_can_be_the_cheapest(tmp_path):
    prices = tmp_path / "dear.yml"
    prices.write_text(
        "hosted:\n"
        "  - {provider: Dear, model: big, currency: EUR, input_per_million: 5, output_per_million: 15,"
        " source: test, date: 2025-10-01}\n"
    )
    report = gr.build(LEDGER, USAGE, prices, month="2025-10", now=LATER)
    # no fixed items, fallback unpriced: total = GPU 18.941333 -> 18.94; Dear: 30 x 5 + 7.3 x 15 = 259.50
    assert report["total_eur"] == Decimal("18.94")
    assert report["fallback_unpriced"] == ["scaleway-mistral-small"]
    assert report["summary"] == (
        "This stack as run was the cheapest option for this month's traffic at €18.94, €240.56 less than the next, "
        "Dear big (€259.50)."
    )
    assert any("not priced" in note for note in report["notes"])
    assert any("No fixed costs" in note for note in report["notes"])


def test_scheduled_mode_is_priced_from_the_schedule_and_said_unknown_without_it():
    report = october(schedule=SCHEDULE)
    scheduled = next(entry for entry in report["other_modes"] if entry["mode"] == "scheduled")
    # October 2025 has 23 weekdays (1-3, 6-10, 13-17, 20-24, 27-31), less the holiday 10 Oct: 22 x 11 h = 242 h
    # x 0.79 = 191.18; plus the same fixed (17.975) and fallback (0.365) costs = 209.52
    assert scheduled["computed"] is True
    assert scheduled["gpu_hours"] == Decimal("242.00")
    assert scheduled["gpu_eur"] == Decimal("191.18")
    assert scheduled["eur"] == Decimal("209.52")
    assert "not on 2025-10-10" in scheduled["windows"]
    on_demand = next(entry for entry in report["other_modes"] if entry["mode"] == "on_demand")
    assert on_demand["computed"] is False and on_demand["eur"] is None
    without = next(entry for entry in october()["other_modes"] if entry["mode"] == "scheduled")
    assert without["computed"] is False
    assert "not computed" in without["sentence"] and "--schedule" in without["sentence"]


def test_the_installed_schedule_json_is_read_too(tmp_path):
    schedule = tmp_path / "schedule.json"
    schedule.write_text(
        json.dumps(
            {
                "time_zone": "Europe/Paris",
                "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                "up_time": "08:00",
                "down_time": "19:00",
                "retry_minutes": 15,
                "holidays": [],
            }
        )
    )
    scheduled = october(schedule=schedule)["other_modes"][0]
    # 23 weekdays x 11 h = 253 h at the latest session's price (0.79, row 8) = 199.87
    assert (scheduled["gpu_hours"], scheduled["gpu_eur"]) == (Decimal("253.00"), Decimal("199.87"))


def test_the_shipped_price_table():
    prices = gr.load_prices(gr.DEFAULT_PRICES)
    assert len(prices.offers) >= 3
    for offer in prices.offers:
        assert offer.source and offer.date
        assert offer.input_per_million > 0 and offer.output_per_million > 0
        assert offer.currency == "EUR" or offer.currency in prices.rates
    assert "USD" in prices.rates and prices.rates["USD"]["date"]
    assert prices.fixed == ()  # the operator lists what bills while the GPU is off
    report = gr.build(LEDGER, USAGE, month="2025-10", now=LATER)  # --prices defaults to the shipped table
    assert len(report["hosted"]) == len(prices.offers)
    assert report["inputs"]["prices"].endswith("hosted_prices.yml")


def test_unit_prices_of_the_shipped_table_price_fixed_items(tmp_path):
    text = gr.DEFAULT_PRICES.read_text().replace(
        "fixed_monthly: []",
        "fixed_monthly:\n  - {name: cache, quantity: 100, price: block_ssd}\n"
        "  - {name: ip, quantity: 1, price: flexible_ipv4}\n",
    )
    prices = tmp_path / "prices.yml"
    prices.write_text(text)
    report = gr.build(LEDGER, USAGE, prices, month="2025-10", now=LATER)
    # 100 GB x 0.095 = 9.50; 745 h x 0.005 = 3.725 -> 3.73
    assert [item["eur"] for item in report["fixed"]] == [Decimal("9.50"), Decimal("3.73")]


# --------------------------------------------------------------------------
# Bad input: file, row and field named; nothing written
# --------------------------------------------------------------------------


def _ledger(tmp_path, change):
    sessions = json.loads(LEDGER.read_text())
    change(sessions)
    path = tmp_path / "LEDGER.json"
    path.write_text(json.dumps(sessions))
    return path


def _usage(tmp_path, old, new):
    text = USAGE.read_text()
    assert old in text
    path = tmp_path / "USAGE.csv"
    path.write_text(text.replace(old, new, 1))
    return path


def _prices(tmp_path, old, new):
    text = PRICES.read_text()
    assert old in text
    path = tmp_path / "PRICES.yml"
    path.write_text(text.replace(old, new, 1))
    return path


def _without(field, index):
    def change(sessions):
        del sessions[index][field]

    return change


def _set(field, index, value):
    def change(sessions):
        sessions[index][field] = value

    return change


LEDGER_ERRORS = [
    (_without("stopped", 2), ["LEDGER.json", "row 3", "'stopped'", "missing"]),
    (_without("hourly_price_eur", 0), ["LEDGER.json", "row 1", "'hourly_price_eur'", "missing"]),
    (_set("stopped", 1, "2025-10-01T07:59:00+02:00"), ["LEDGER.json", "row 2", "'stopped'", "before it starts"]),
    (_set("started", 3, "2025-10-03T23:30:00"), ["row 4", "'started'", "no UTC offset"]),
    (_set("started", 3, "yesterday"), ["row 4", "'started'", "ISO 8601"]),
    (_set("started_by", 4, "cron"), ["row 5", "'started_by'", "timer, wake, manual"]),
    (_set("healthy", 2, "2025-10-02T21:00:00+02:00"), ["row 3", "'healthy'", "before started"]),
    (_set("hourly_price_eur", 5, -1), ["row 6", "'hourly_price_eur'", "at least 0"]),
    (_set("hourly_price_eur", 5, None), ["row 6", "'hourly_price_eur'", "a number"]),
]


@pytest.mark.parametrize(("change", "words"), LEDGER_ERRORS)
def test_a_bad_ledger_names_file_row_and_field(tmp_path, change, words):
    with pytest.raises(gr.ReportError) as caught:
        gr.build(_ledger(tmp_path, change), USAGE, PRICES, month="2025-10", now=LATER)
    for word in words:
        assert word in str(caught.value)


USAGE_ERRORS = [
    (
        "day,model,user,prompt_tokens,completion_tokens,served_by",
        "day,model,user,prompt_tokens,completion_tokens",
        ["USAGE.csv", "header (line 1)", "'served_by'", "missing column"],
    ),
    (
        "2025-10-02,gemma-3-12b,alice,2000000,500000,local",
        "2025-10-02,gemma-3-12b,alice,-2000000,500000,local",
        ["USAGE.csv", "row 4 (line 5)", "'prompt_tokens'", "negative token count -2000000"],
    ),
    (
        "2025-10-02,gemma-3-12b,alice,2000000,500000,local",
        "2025-10-02,gemma-3-12b,alice,2000000,5e5,local",
        ["row 4 (line 5)", "'completion_tokens'", "whole number"],
    ),
    (
        "2025-10-02,gemma-3-12b,alice,2000000,500000,local",
        "2025-10-32,gemma-3-12b,alice,2000000,500000,local",
        ["row 4 (line 5)", "'day'", "YYYY-MM-DD"],
    ),
    (
        "2025-10-02,gemma-3-12b,alice,2000000,500000,local",
        "2025-10-02,gemma-3-12b,alice,2000000,500000",
        ["row 4 (line 5)", "has 5 fields, the header has 6"],
    ),
    (
        "2025-10-02,gemma-3-12b,alice,2000000,500000,local",
        "2025-10-02,gemma-3-12b,alice,2000000,500000,",
        ["row 4 (line 5)", "'served_by'", "non-empty"],
    ),
]


@pytest.mark.parametrize(("old", "new", "words"), USAGE_ERRORS)
def test_a_bad_usage_file_names_file_row_and_field(tmp_path, old, new, words):
    with pytest.raises(gr.ReportError) as caught:
        gr.build(LEDGER, _usage(tmp_path, old, new), PRICES, month="2025-10", now=LATER)
    for word in words:
        assert word in str(caught.value)


PRICE_ERRORS = [
    ("currency: USD", "currency: GBP", ["PRICES.yml", "hosted row 2", "'currency'", "unknown currency 'GBP'"]),
    ("  USD: {per_eur: 1.25", "  CHF: {per_eur: 1.25", ["hosted row 2", "'currency'", "unknown currency 'USD'"]),
    ("per_eur: 1.25", "per_eur: 0", ["currency_rates USD", "'per_eur'", "above 0"]),
    ("input_per_million: 0.15", "input_per_million: -0.15", ["hosted row 1", "'input_per_million'"]),
    ("    date: 2025-06-20\n", "", ["hosted row 2", "'date'", "YYYY-MM-DD"]),
    (
        "price: block_ssd",
        "price: block_hdd",
        ["fixed_monthly row 1", "'price'", "'block_hdd' is not under unit_prices"],
    ),
    ("unit: hour", "unit: day", ["unit_prices flexible_ipv4", "'unit'", "hour, month, GB-month"]),
]


@pytest.mark.parametrize(("old", "new", "words"), PRICE_ERRORS)
def test_a_bad_price_table_names_file_row_and_field(tmp_path, old, new, words):
    with pytest.raises(gr.ReportError) as caught:
        gr.build(LEDGER, USAGE, _prices(tmp_path, old, new), month="2025-10", now=LATER)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"month": "2025-13"}, ["--month", "YYYY-MM"]),
        ({"timezone_name": "Europe/Pariss"}, ["--timezone", "Europe/Pariss"]),
    ],
)
def test_bad_options(options, words):
    with pytest.raises(gr.ReportError) as caught:
        gr.build(LEDGER, USAGE, PRICES, now=LATER, **{"month": "2025-10", **options})
    for word in words:
        assert word in str(caught.value)


def test_a_bad_schedule_names_the_file_and_the_field(tmp_path):
    schedule = tmp_path / "SCHEDULE.yml"
    schedule.write_text("days: [Mon, Funday]\nup_time: '08:00'\ndown_time: '19:00'\n")
    with pytest.raises(gr.ReportError) as caught:
        october(schedule=schedule)
    assert "SCHEDULE.yml" in str(caught.value) and "days" in str(caught.value)


def test_bad_input_writes_no_report_and_keeps_the_previous_one(tmp_path, capsys):
    bad = _ledger(tmp_path, _set("stopped", 1, "2025-10-01T07:59:00+02:00"))
    fresh = tmp_path / "fresh"
    assert gr.run(str(bad), str(USAGE), str(PRICES), str(fresh), month="2025-10", now=LATER) == 2
    assert not fresh.exists()
    assert "row 2" in capsys.readouterr().err
    kept = tmp_path / "kept"
    assert gr.run(str(LEDGER), str(USAGE), str(PRICES), str(kept), month="2025-10", now=LATER) == 0
    before = {path.name: path.read_bytes() for path in kept.iterdir()}
    assert gr.run(str(bad), str(USAGE), str(PRICES), str(kept), month="2025-10", now=LATER) == 2
    assert {path.name: path.read_bytes() for path in kept.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []  # no staging left


# --------------------------------------------------------------------------
# The waker's ledger: gpu-sessions.jsonl, one event a line
# --------------------------------------------------------------------------

EVENTS = FIXTURES / "gpu-sessions.jsonl"
EMPTY_USAGE = FIXTURES / "usage_empty.csv"


def november(ledger=EVENTS, **kwargs):
    return gr.build(ledger, EMPTY_USAGE, PRICES, month="2025-11", now=LATER, **kwargs)


def test_the_wakers_events_become_sessions():
    sessions = gr.load_ledger(EVENTS)
    paris = [
        (
            session.row,
            session.started_by,
            session.started.astimezone(gr.ZoneInfo("Europe/Paris")).isoformat(),
            session.healthy and session.healthy.astimezone(gr.ZoneInfo("Europe/Paris")).isoformat(),
            session.stopped and session.stopped.astimezone(gr.ZoneInfo("Europe/Paris")).isoformat(),
            session.commercial_type,
            session.zone,
            session.price,
        )
        for session in sessions
    ]
    assert paris == [
        # the first healthy (08:04:10), not the one after a restart (13:05)
        (1, "timer", "2025-11-03T08:00:00+01:00", "2025-11-03T08:04:10+01:00", "2025-11-03T19:00:40+01:00",
         "L4-1-24G", "fr-par-2", Decimal("0.79")),
        # the price of the healthy row (0.81), not the created row's default (0.79)
        (6, "wake", "2025-11-04T21:10:20+01:00", "2025-11-04T21:17:20+01:00", "2025-11-04T21:41:00+01:00",
         "L4-1-24G", "fr-par-2", Decimal("0.81")),
        # boot failed: never healthy, type and zone unknown, the created row's price; line 11 (line 8 is blank)
        (11, "wake", "2025-11-05T10:00:00+01:00", None, "2025-11-05T10:20:30+01:00", None, None, Decimal("0.79")),
        # no destroyed line: still running
        (14, "manual", "2025-11-28T16:00:00+01:00", "2025-11-28T16:06:00+01:00", None, "L4-1-24G", "fr-par-2",
         Decimal("0.79")),
    ]  # fmt: skip
    assert {session.instance for session in sessions} == {"parrotpark-gpu"}


def test_the_report_of_the_wakers_ledger():
    report = november()
    # timer  3 Nov 08:00:00 -> 19:00:40: 11 h 0 min 40 s, rounded up to 661 min x 0.79 / 60 = 8.703167
    # wake   4 Nov 21:10:20 -> 21:41:00: 30 min 40 s -> 31 min x 0.81 / 60 = 0.4185 (0.41 at the created price)
    # wake   5 Nov 10:00:00 -> 10:20:30 (boot failed): 20 min 30 s -> 21 min x 0.79 / 60 = 0.2765
    # manual 28 Nov 16:00 -> still running, billed to 1 Dec 00:00: 8 h + 2 x 24 h = 3360 min x 0.79 / 60 = 44.24
    assert report["gpu_minutes"] == 4073  # 661 + 31 + 21 + 3360
    assert report["gpu_hours"] == Decimal("67.88")  # 4073 / 60 = 67.883
    assert report["gpu_hours_floor"] == Decimal("11.02")  # 661 / 60 = 11.0167
    assert report["gpu_hours_on_demand"] == Decimal("56.87")  # 3412 / 60 = 56.8667
    assert report["gpu_eur"] == Decimal("53.64")  # 8.703167 + 0.4185 + 0.2765 + 44.24 = 53.638167
    assert day(report, "2025-11-04")["gpu_eur"] == Decimal("0.42")  # 0.4185, half up
    assert day(report, "2025-11-05")["gpu_eur"] == Decimal("0.28")  # 0.2765, half up
    assert (day(report, "2025-11-28")["gpu_minutes_on_demand"], day(report, "2025-11-30")["gpu_eur"]) == (
        480,
        Decimal("18.96"),  # 1440 x 0.79 / 60
    )
    # the wakes: 4 Nov healthy after 420 s; 5 Nov never healthy (the manual session is not a cold start)
    assert (report["cold_starts"], report["wakes_never_healthy"]) == (2, 1)
    assert (report["wake_seconds_p50"], report["wake_seconds_p95"]) == (420, 420)
    assert (report["sessions"], report["mode_as_run"]) == (4, "hybrid")
    assert report["running_sessions"] == [
        {"instance": "parrotpark-gpu", "row": 14, "billed_until": "2025-12-01T00:00:00+01:00"}
    ]
    assert any("ledger line 14" in note and "still running" in note for note in report["notes"])


def test_json_lines_are_read_whatever_the_files_name(tmp_path):
    copy = tmp_path / "ledger.json"
    copy.write_text(EVENTS.read_text())
    assert november(copy)["gpu_eur"] == Decimal("53.64")


def test_a_session_without_destroyed_before_the_next_one_is_billed_up_to_it(tmp_path):
    lines = [line for line in EVENTS.read_text().splitlines() if '"destroyed"' not in line or "11-04" not in line]
    ledger = tmp_path / "gpu-sessions.jsonl"
    ledger.write_text("\n".join(lines) + "\n")
    report = november(ledger)
    # the 4 Nov wake loses its destroyed line: billed up to the next start, 5 Nov 10:00:00, not to the month's end:
    # 21:10:20 -> 24:00 is 169 min 40 s, 170 minutes on the 4th (begun by 23:59:20), 600 on the 5th up to 10:00
    assert day(report, "2025-11-04")["gpu_minutes_on_demand"] == 170
    assert day(report, "2025-11-05")["gpu_minutes_on_demand"] == 600 + 21
    assert len(report["running_sessions"]) == 1  # only the manual one
    assert any("line 6" in note and "no 'destroyed' line" in note for note in report["notes"])


def _events(tmp_path, line, old, new):
    lines = EVENTS.read_text().split("\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path = tmp_path / "gpu-sessions.jsonl"
    path.write_text("\n".join(lines))
    return path


EVENT_ERRORS = [
    (3, '"event": "healthy", ', "", ["gpu-sessions.jsonl", "line 3", "'event'", "missing"]),
    (9, '"at": "2025-11-04T21:31:00+01:00", ', "", ["line 9", "'at'", "missing"]),
    (2, '"healthy"', '"ready"', ["line 2", "'event'", "created, healthy, idle, boot_failed, destroyed"]),
    (7, '"trigger": "wake"', '"trigger": "cron"', ["line 7", "'trigger'", "timer, wake, manual"]),
    (7, '"trigger": "wake"', '"trigger": "timer"', ["line 7", "'trigger'", "differs from 'wake' on line 6"]),
    (13, '"at": "2025-11-05T10:20:30+01:00"', '"at": "2025-11-05T10:20:30"', ["line 13", "'at'", "no UTC offset"]),
    (6, '"session": "2025-11-04T21:10:20+01:00"', '"session": "4 Nov"', ["line 6", "'session'", "ISO 8601"]),
    (11, '"at": "2025-11-05T10:00:00+01:00"', '"at": "2025-11-05T09:59:00+01:00"', ["line 11", "'at'", "before the"]),
    (7, '"at": "2025-11-04T21:17:20+01:00"', '"at": "2025-11-04T21:45:00+01:00"', ["line 7", "after", "(line 10)"]),
    (14, '"hourly_price_eur": 0.79', '"hourly_price_eur": -0.79', ["line 14", "'hourly_price_eur'", "at least 0"]),
    (15, '"zone": "fr-par-2"', '"zone": 2', ["line 15", "'zone'", "string or null"]),
    (5, "}", "", ["line 5", "not valid JSON"]),
    (5, '{"session"', '["session"', ["line 5", "not valid JSON"]),
]


@pytest.mark.parametrize(("line", "old", "new", "words"), EVENT_ERRORS)
def test_a_bad_line_of_the_wakers_ledger_names_file_line_and_field(tmp_path, line, old, new, words):
    with pytest.raises(gr.ReportError) as caught:
        november(_events(tmp_path, line, old, new))
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_the_command_reads_the_wakers_ledger(tmp_path):
    out = tmp_path / "report"
    assert gr.run(str(EVENTS), str(EMPTY_USAGE), str(PRICES), str(out), month="2025-11", now=LATER) == 0
    data = json.loads((out / "report.json").read_text())
    assert (data["gpu_hours"], data["gpu_eur"], data["cold_starts"]) == (67.88, 53.64, 2)
    bad = _events(tmp_path, 7, '"trigger": "wake"', '"trigger": "cron"')
    fresh = tmp_path / "fresh"
    assert gr.run(str(bad), str(EMPTY_USAGE), str(PRICES), str(fresh), month="2025-11", now=LATER) == 2
    assert not fresh.exists()


# --------------------------------------------------------------------------
# The files, and the command
# --------------------------------------------------------------------------


def test_the_files_of_a_report(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not the report's")
    assert gr.run(str(LEDGER), str(USAGE), str(PRICES), str(out), month="2025-10", now=LATER) == 0
    assert (out / "keep.txt").read_text() == "not the report's"  # only the report's own files are replaced
    for name in gr.FILES.values():
        assert (out / name).stat().st_size > 0
    for plot in ("gpu_hours_per_day.png", "tokens_per_day.png", "costs.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3  # self-contained
    assert "€33.13 less than this stack as run" in page
    assert "<td>alice</td>" in page
    rows = (out / "report.csv").read_text().splitlines()
    assert rows[0].split(",") == list(gr.CSV_COLUMNS)
    assert len(rows) == 1 + 31
    assert rows[1] == "2025-10-01,660,60,11.00,1.00,9.48,0,17000000,4000000,0,0"
    data = json.loads((out / "report.json").read_text())
    assert data["total_eur"] == 37.28
    assert sum(entry["gpu_eur"] for entry in data["days"]) == pytest.approx(18.94, abs=0.05)


def test_the_command_writes_the_report(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, str(PROGRAM), "report", "--ledger", str(LEDGER), "--usage", str(USAGE), "--prices",
         str(PRICES), "--out", str(out), "--month", "2025-10", "--schedule", str(SCHEDULE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "written to" in result.stdout
    for name in ("report.html", "report.json", "report.csv", "gpu_hours_per_day.png", "tokens_per_day.png"):
        assert (out / name).is_file()
    data = json.loads((out / "report.json").read_text())
    assert (data["gpu_hours"], data["gpu_eur"], data["total_eur"]) == (20.53, 18.94, 37.28)
    assert (data["prompt_tokens"], data["completion_tokens"], data["eur_per_million_tokens"]) == (
        30_000_000,
        7_300_000,
        1.0,
    )
    assert {entry["id"]: entry["eur"] for entry in data["hosted"]} == {
        "scaleway-mistral-small": 7.06,
        "mistral-small": 4.15,
        "OVHcloud Mistral-Nemo": 5.22,
    }
    assert data["other_modes"][0]["eur"] == 209.52
    assert data["cold_starts"] == 5 and data["wake_seconds_p95"] == 480


def test_the_command_refuses_bad_input_with_exit_code_2(tmp_path):
    usage = _usage(
        tmp_path,
        "2025-10-02,gemma-3-12b,alice,2000000,500000,local",
        "2025-10-02,gemma-3-12b,alice,-5,500000,local",
    )
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, str(PROGRAM), "report", "--ledger", str(LEDGER), "--usage", str(usage), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{usage}: row 4 (line 5), field 'prompt_tokens': negative token count -5" in result.stderr
    assert not out.exists()
