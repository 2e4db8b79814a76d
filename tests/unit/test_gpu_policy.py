"""The on-demand GPU policy, roles/scheduler/files/gpu_policy.py, on a virtual clock.

Every test feeds events with fixed times (Europe/Paris; Monday 17 March 2025
is a winter Monday, summer time starts on Sunday 30 March) and checks the
actions and the state: one test per rule of the policy.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "roles" / "scheduler" / "files") not in sys.path:
    sys.path.insert(0, str(ROOT / "roles" / "scheduler" / "files"))
import gpu_policy as gp  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2025, 3, 17, tzinfo=PARIS)  # 00:00, a Monday in winter (UTC+1)


def at(day: int, hhmm: str, second: int = 0) -> datetime:
    """17 March 2025 + ``day`` days at HH:MM local time."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    base = MONDAY + timedelta(days=day)
    return datetime(base.year, base.month, base.day, hour, minute, second, tzinfo=PARIS)


def config(**settings) -> gp.Config:
    """On demand, no quiet hours, no caps unless given: each test turns on what it checks."""
    base = {
        "mode": "on_demand",
        "quiet_start": None,
        "quiet_end": None,
        "quiet_days": [],
        "boot_minutes": 8,
        "hold_seconds": 20,
        "drain_seconds": 300,
        "max_gpu_hours_per_day": None,
        "max_eur_per_month": None,
        "max_wakes_per_day": None,
        "min_off_minutes": 2,
    }
    return gp.Config.from_dict({**base, **settings})


class Run:
    """A policy driven by hand: ``run(event)`` applies it and returns its actions."""

    def __init__(self, cfg: gp.Config, state: gp.State | None = None):
        self.config = cfg
        self.state = state or gp.State()
        self.actions: list[gp.Action] = []

    def __call__(self, event) -> tuple[gp.Action, ...]:
        stepped = gp.step(self.config, self.state, event)
        self.state = stepped.state
        self.actions.extend(stepped.actions)
        return stepped.actions

    def request(self, when: datetime, kind: str = "chat") -> gp.Answer:
        actions = self(gp.Request(when, kind))
        answers = [action for action in actions if isinstance(action, gp.Answer)]
        assert len(answers) == 1, actions
        return answers[0]

    def tick(self, when: datetime) -> tuple[gp.Action, ...]:
        return self(gp.Tick(when))

    def wakes(self) -> list[gp.Wake]:
        return [action for action in self.actions if isinstance(action, gp.Wake)]

    def destroys(self) -> list[gp.Destroy]:
        return [action for action in self.actions if isinstance(action, gp.Destroy)]

    def up(self, when: datetime) -> None:
        """A request at ``when`` wakes the server; it is healthy boot_minutes later; the request is answered."""
        assert self.request(when).reason == "starting"
        ready = when + timedelta(minutes=self.config.boot_minutes)
        self(gp.ServerHealthy(ready))
        assert self.state.phase == "ready"

    def served(self, when: datetime, seconds: float = 10) -> None:
        assert self.request(when).kind == "pass"
        self(gp.RequestFinished(when + timedelta(seconds=seconds)))


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def test_defaults_and_idle_is_the_boot_time():
    cfg = gp.Config.from_dict({})
    assert cfg.mode == "scheduled"
    assert cfg.idle_minutes == cfg.boot_minutes == 8  # the ski-rental break-even
    assert cfg.hourly_price_eur == 0.79
    assert gp.Config.from_dict({"boot_minutes": 4}).idle_minutes == 4
    assert gp.Config.from_dict({"boot_minutes": 4, "idle_minutes": 30}).idle_minutes == 30


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "lazy"}, r"mode must be one of scheduled, on_demand, hybrid, got 'lazy'"),
        ({"idel_minutes": 5}, r"unknown setting\(s\) idel_minutes"),
        ({"up_time": "8h"}, r"up_time must be HH:MM"),
        ({"up_time": "19:00", "down_time": "08:00"}, r"up_time \(19:00\) must be before down_time \(08:00\)"),
        ({"time_zone": "Mars/Olympus"}, r"time_zone must be a known time zone"),
        ({"days": []}, r"days must be a non-empty list of Mon"),
        ({"quiet_days": ["Sunday"]}, r"quiet_days must be a list of Mon"),
        ({"holidays": ["25/12/2025"]}, r"holidays: '25/12/2025' is not a date"),
        ({"quiet_start": "20:00", "quiet_end": "20:00"}, r"quiet_start and quiet_end must differ"),
        ({"quiet_start": "25:00"}, r"quiet_start must be HH:MM"),
        ({"idle_minutes": -1}, r"idle_minutes must be a number at least 0, got -1"),
        ({"boot_minutes": 0}, r"boot_minutes must be a number above 0, got 0"),
        ({"max_wakes_per_day": 2.5}, r"max_wakes_per_day must be an integer above 0, got 2.5"),
        ({"max_eur_per_month": "lots"}, r"max_eur_per_month must be a number above 0, got 'lots'"),
        ({"hold_seconds": True}, r"hold_seconds must be a number"),
        ({"boot_minutes": 25}, r"boot_deadline_minutes \(20\) must be above boot_minutes \(25\)"),
        ({"session_cap_hours": 10}, r"session_cap_hours \(10\) must be above the floor window 08:00-19:00 \(11 h\)"),
    ],
)
def test_bad_settings_name_the_key(settings, message):
    with pytest.raises(gp.PolicyError, match=message):
        gp.Config.from_dict(settings)


def test_the_session_cap_is_not_checked_against_a_floor_on_demand():
    assert gp.Config.from_dict({"mode": "on_demand", "session_cap_hours": 2}).session_cap_hours == 2


def test_scheduler_variables_map_to_settings():
    variables = {
        "scheduler_mode": "hybrid",
        "scheduler_idle_minutes": 12,
        "scheduler_up_time": "09:00",
        "scheduler_retry_minutes": 15,  # a scheduler variable the policy does not use
        "vllm_model": "x",
    }
    assert gp.from_scheduler_vars(variables) == {"mode": "hybrid", "idle_minutes": 12, "up_time": "09:00"}


def test_times_must_carry_a_zone():
    with pytest.raises(gp.PolicyError, match="with a time zone"):
        gp.step(config(), gp.State(), gp.Tick(datetime(2025, 3, 17, 9, 0)))


# --------------------------------------------------------------------------
# Waking
# --------------------------------------------------------------------------


def test_single_flight_twenty_cold_requests_make_one_wake():
    run = Run(config())
    answers = [run.request(at(0, "09:00", second)) for second in range(20)]
    assert run.wakes() == [gp.Wake("wake")]
    assert run.state.phase == "starting"
    assert run.state.wakes_today == 1
    assert {answer.kind for answer in answers} == {"unavailable"}
    assert answers[0].message == "The model is starting, ready in about 8 minutes."
    assert answers[0].retry_after == answers[0].eta_seconds == 480
    assert answers[0].status == 503
    assert answers[19].eta_seconds == 480 - 19  # the ETA counts down
    assert answers[0].openai_error()["error"]["code"] == "starting"


def test_eta_while_starting_and_a_hold_when_nearly_ready():
    run = Run(config(hold_seconds=30))
    run.request(at(0, "09:00"))
    answer = run.request(at(0, "09:05"))
    assert (answer.kind, answer.message, answer.retry_after) == (
        "unavailable",
        "The model is starting, ready in about 3 minutes.",
        180,
    )
    held = run.request(at(0, "09:07", 45))
    assert (held.kind, held.seconds) == ("hold", 15)
    assert run.state.in_flight == 1  # a held request is in flight: the gateway forwards it when ready
    assert len(run.wakes()) == 1


def test_hold_when_the_boot_itself_fits_in_the_hold():
    run = Run(config(boot_minutes=0.25, hold_seconds=20, idle_minutes=8, boot_deadline_minutes=5))
    answer = run.request(at(0, "09:00"))
    assert (answer.kind, answer.seconds) == ("hold", 15)
    assert run.wakes() == [gp.Wake("wake")]


@pytest.mark.parametrize("kind", ["health", "models", "smoke"])
def test_probes_never_wake_and_do_not_keep_the_server_up(kind):
    run = Run(config())
    for minute in range(0, 60, 5):
        answer = run.request(at(0, f"09:{minute:02d}"), kind)
        assert answer.kind == "unavailable" and answer.reason == "off"
    assert run.wakes() == []
    run.up(at(0, "10:00"))  # ready 10:08
    assert run.request(at(0, "10:10"), kind).kind == "pass"
    assert run.state.in_flight == 0
    run.request(at(0, "10:15"), kind)
    assert run.tick(at(0, "10:16")) == (gp.Destroy("idle"),)  # 10:08 + 8 min: the probes did not count


def test_a_request_of_an_unknown_kind_is_an_error():
    with pytest.raises(gp.PolicyError, match="request kind must be one of chat, completion"):
        gp.step(config(), gp.State(), gp.Request(at(0, "09:00"), "embeddings"))


def test_quiet_hours_refuse_a_wake_and_name_when_the_model_is_available():
    run = Run(config(quiet_start="20:00", quiet_end="07:00", quiet_days=["Sat", "Sun"]))
    friday_night = run.request(at(4, "21:30"))
    assert friday_night.reason == "quiet"
    assert friday_night.message == "The model is available from Mon 07:00 Europe/Paris (quiet hours)."
    assert friday_night.retry_after == int((at(7, "07:00") - at(4, "21:30")).total_seconds())
    early = run.request(at(1, "06:30"))
    assert early.message == "The model is available from Tue 07:00 Europe/Paris (quiet hours)."
    assert run.wakes() == []
    assert run.request(at(1, "07:00")).reason == "starting"


def test_quiet_message_names_the_floor_when_it_comes_first():
    run = Run(config(mode="hybrid", quiet_start="20:00", quiet_end="09:30", quiet_days=["Sat", "Sun"]))
    answer = run.request(at(5, "11:00"))  # Saturday
    assert answer.message == "The model is available from Mon 08:00 Europe/Paris (quiet hours)."


def test_holidays_are_quiet_and_have_no_floor():
    run = Run(config(mode="hybrid", holidays=["2025-03-18"], quiet_start="20:00", quiet_end="07:00"))
    answer = run.request(at(1, "10:00"))  # Tuesday, a holiday
    assert answer.message == "The model is available from Wed 07:00 Europe/Paris (quiet hours)."
    assert run.tick(at(1, "08:00")) == ()


def test_scheduled_mode_follows_the_timers_only():
    run = Run(config(mode="scheduled"))
    answer = run.request(at(0, "07:30"))
    assert answer.message == "The model is available from Mon 08:00 Europe/Paris (working hours)."
    assert run.wakes() == []
    assert gp.next_wakeup(run.config, run.state, at(0, "07:30")) == at(0, "08:00")
    assert run.tick(at(0, "08:00")) == (gp.Wake("timer"),)
    run(gp.ServerHealthy(at(0, "08:08")))
    assert run.tick(at(0, "12:00")) == ()  # no idle stop in the window
    assert run.tick(at(0, "19:00")) == (gp.Destroy("floor_end"),)
    run(gp.ServerDestroyed(at(0, "19:00")))
    assert run.request(at(0, "19:30")).message == "The model is available from Tue 08:00 Europe/Paris (working hours)."


# --------------------------------------------------------------------------
# Stopping
# --------------------------------------------------------------------------


def test_idle_stop_after_idle_minutes_without_a_request():
    run = Run(config(idle_minutes=15))
    run.up(at(0, "09:00"))  # ready 09:08
    run.served(at(0, "09:10"))  # finished 09:10:10
    assert gp.next_wakeup(run.config, run.state, at(0, "09:11")) == at(0, "09:25", 10)
    assert run.tick(at(0, "09:25")) == ()
    assert run.tick(at(0, "09:25", 10)) == (gp.Destroy("idle"),)
    assert run.state.phase == "stopping"
    run(gp.ServerDestroyed(at(0, "09:25", 11)))
    assert run.state.phase == "off"
    assert run.state.gpu_seconds_today == pytest.approx(25 * 60 + 11)


def test_floor_keeps_the_server_up_in_hybrid_and_demand_follows_after_it():
    run = Run(config(mode="hybrid"))
    assert run.tick(at(0, "08:00")) == (gp.Wake("timer"),)
    run(gp.ServerHealthy(at(0, "08:08")))
    for hhmm in ("09:00", "12:00", "18:59"):
        assert run.tick(at(0, hhmm)) == ()  # idle since 08:08, kept by the floor
    assert run.tick(at(0, "19:00")) == (gp.Destroy("floor_end"),)
    run(gp.ServerDestroyed(at(0, "19:00")))
    # Outside the floor it follows demand: a request wakes it, idleness stops it.
    run.up(at(0, "19:30"))
    run.served(at(0, "19:40"))
    assert run.tick(at(0, "19:48", 10)) == (gp.Destroy("idle"),)


def test_hybrid_floor_end_with_a_late_request_waits_for_the_idle_time():
    run = Run(config(mode="hybrid"))
    run.tick(at(0, "08:00"))
    run(gp.ServerHealthy(at(0, "08:08")))
    run.served(at(0, "18:58"))
    assert run.tick(at(0, "19:00")) == ()
    assert run.tick(at(0, "19:06", 10)) == (gp.Destroy("idle"),)


def test_a_stream_open_at_the_idle_deadline_is_not_cut():
    run = Run(config())
    run.up(at(0, "09:00"))  # ready 09:08
    assert run.request(at(0, "09:10")).kind == "pass"
    run(gp.StreamOpened(at(0, "09:10")))
    assert run.tick(at(0, "09:18")) == ()  # the idle deadline, a stream open
    assert run.tick(at(0, "09:20")) == ()
    run(gp.StreamClosed(at(0, "09:21")))
    run(gp.RequestFinished(at(0, "09:21")))
    assert run.tick(at(0, "09:28")) == ()
    assert run.tick(at(0, "09:29")) == (gp.Destroy("idle"),)  # idle counts from the stream's end


def test_drain_bound_a_request_counted_in_flight_for_ever_does_not_keep_the_gpu():
    run = Run(config(drain_seconds=300))
    run.up(at(0, "09:00"))
    run.request(at(0, "09:10"))  # its RequestFinished never comes
    assert run.tick(at(0, "09:18")) == ()
    assert run.tick(at(0, "09:22", 59)) == ()
    assert run.tick(at(0, "09:23")) == (gp.Destroy("idle"),)  # idle deadline + drain_seconds


def test_a_cap_stop_drains_requests_in_flight_within_the_bound():
    run = Run(config(max_gpu_hours_per_day=1, drain_seconds=300))
    run.up(at(0, "09:00"))  # started 09:00: the cap is reached at 10:00, the stop begins at 09:55
    run.request(at(0, "09:50"))
    assert run.tick(at(0, "09:55")) == ()
    assert (run.state.phase, run.state.why) == ("stopping", "cap_hours")
    answer = run.request(at(0, "09:56"))
    assert answer.reason == "cap_hours" and run.state.in_flight == 1  # no new request during the drain
    assert run.tick(at(0, "09:57")) == ()
    assert run(gp.RequestFinished(at(0, "09:58"))) == (gp.Destroy("cap_hours"),)


def test_a_cap_stop_destroys_at_the_drain_bound():
    run = Run(config(max_gpu_hours_per_day=1, drain_seconds=300))
    run.up(at(0, "09:00"))
    run.request(at(0, "09:50"))
    run.tick(at(0, "09:55"))
    assert run.tick(at(0, "09:59", 59)) == ()
    assert run.tick(at(0, "10:00")) == (gp.Destroy("cap_hours"),)


def test_boot_deadline_destroys_a_server_that_never_became_healthy():
    run = Run(config(boot_deadline_minutes=20))
    run.request(at(0, "09:00"))
    assert gp.next_wakeup(run.config, run.state, at(0, "09:00")) == at(0, "09:20")
    assert run.tick(at(0, "09:19")) == ()
    late = run.request(at(0, "09:19"))  # later than the expected boot: held, it may be seconds
    assert (late.kind, late.seconds) == ("hold", 20)
    no_hold = Run(config(hold_seconds=0))
    no_hold.request(at(0, "09:00"))
    assert no_hold.request(at(0, "09:19")).message == "The model is starting, ready shortly."
    assert run.tick(at(0, "09:20")) == (gp.Destroy("boot_deadline"),)
    run(gp.ServerHealthy(at(0, "09:20", 30)))  # too late: ignored
    assert run.state.phase == "stopping"


def test_a_failed_boot_is_destroyed():
    run = Run(config())
    run.request(at(0, "09:00"))
    assert run(gp.BootFailed(at(0, "09:03"))) == (gp.Destroy("boot_failed"),)


def test_a_request_while_stopping_restarts_after_the_minimum_off_time():
    run = Run(config(min_off_minutes=2))
    run.up(at(0, "09:00"))
    run.tick(at(0, "09:16"))  # idle stop
    answer = run.request(at(0, "09:16", 5))
    assert answer.reason == "restarting"
    assert answer.message == "The model is restarting, ready in about 10 minutes."
    run(gp.ServerDestroyed(at(0, "09:16", 10)))
    assert run.tick(at(0, "09:18", 9)) == ()
    assert gp.next_wakeup(run.config, run.state, at(0, "09:16", 10)) == at(0, "09:18", 10)
    assert run.tick(at(0, "09:18", 10)) == (gp.Wake("wake"),)


# --------------------------------------------------------------------------
# Runaway protection
# --------------------------------------------------------------------------


def test_min_off_blocks_a_wake_with_an_eta_then_wakes():
    run = Run(config(min_off_minutes=5))
    run.up(at(0, "09:00"))
    run.tick(at(0, "09:16"))
    run(gp.ServerDestroyed(at(0, "09:16")))
    answer = run.request(at(0, "09:18"))
    assert answer.reason == "min_off"
    assert answer.message == "The model was stopped moments ago; it starts again, ready in about 11 minutes."
    assert answer.eta_seconds == 3 * 60 + 8 * 60
    assert len(run.wakes()) == 1
    assert run.tick(at(0, "09:20")) == ()
    assert run.tick(at(0, "09:21")) == (gp.Wake("wake"),)


def test_wakes_per_day_cap_refuses_the_next_wake_until_tomorrow():
    run = Run(config(max_wakes_per_day=2, min_off_minutes=0, quiet_start="20:00", quiet_end="07:00"))
    for hhmm in ("09:00", "11:00"):
        run.up(at(0, hhmm))
        run.tick(at(0, hhmm) + timedelta(minutes=16))
        run(gp.ServerDestroyed(at(0, hhmm) + timedelta(minutes=16)))
    answer = run.request(at(0, "14:00"))
    assert answer.reason == "cap_wakes"
    assert answer.message == (
        "The GPU was started 2 times today (the daily limit); the model is available again from Tue 07:00 Europe/Paris."
    )
    assert len(run.wakes()) == 2
    assert gp.status(run.config, run.state, at(0, "14:01"))["phase"] == "blocked"
    assert gp.status(run.config, run.state, at(1, "07:00"))["phase"] == "off"
    assert run.request(at(1, "07:00")).reason == "starting"


def test_hours_per_day_cap_refuses_a_wake_that_would_exceed_it():
    run = Run(config(max_gpu_hours_per_day=1, idle_minutes=8))  # a wake needs 16 min (boot + idle)
    run.up(at(0, "09:00"))
    run.served(at(0, "09:30"))  # finished 09:30:10
    run.tick(at(0, "09:38", 10))
    run(gp.ServerDestroyed(at(0, "09:38", 10)))
    assert run.state.gpu_seconds_today == pytest.approx(38 * 60 + 10)
    run.up(at(0, "10:00"))  # 38 min used + 16 min needed: fits
    run.tick(at(0, "10:16"))
    run(gp.ServerDestroyed(at(0, "10:16")))  # 54 min used
    answer = run.request(at(0, "11:00"))
    assert answer.reason == "cap_hours"
    assert answer.message.startswith("The GPU has run its 1 hours for today (the daily limit)")
    assert (run.state.phase, run.state.why) == ("blocked", "cap_hours")
    assert gp.status(run.config, run.state, at(0, "11:00"))["gpu_hours_today"] == pytest.approx(
        (54 * 60 + 10) / 3600, abs=1e-4
    )


def test_eur_per_month_cap_refuses_a_wake_and_stops_a_running_session():
    run = Run(config(max_eur_per_month=5, hourly_price_eur=1.0, drain_seconds=0, idle_minutes=120))
    run.up(at(0, "09:00"))
    for hour in range(9, 14):
        run.served(at(0, f"{hour}:30"))
    assert gp.next_wakeup(run.config, run.state, at(0, "13:31")) == at(0, "14:00")
    # EUR 5 at EUR 1/h: the session is stopped at 14:00 whatever the requests.
    run.served(at(0, "13:45"))
    assert run.tick(at(0, "13:59")) == ()
    assert run.tick(at(0, "14:00")) == (gp.Destroy("cap_eur"),)
    run(gp.ServerDestroyed(at(0, "14:00")))
    assert run.state.phase == "blocked"
    answer = run.request(at(1, "10:00"))
    assert answer.reason == "cap_eur"
    assert answer.message == (
        "This month's GPU budget (EUR 5) is spent; the model is available again from Tue 2025-04-01 00:00 Europe/Paris."
    )
    report = gp.status(run.config, run.state, at(1, "10:00"))
    assert (report["phase"], report["why"], report["eur_month"]) == ("blocked", "cap_eur", 5.0)
    assert run.request(at(15, "10:00")).reason == "starting"  # 1 April: a new month


def test_the_floor_is_not_stopped_by_the_hours_cap():
    run = Run(config(mode="hybrid", max_gpu_hours_per_day=11.5))
    run.tick(at(0, "08:00"))
    run(gp.ServerHealthy(at(0, "08:08")))
    assert run.tick(at(0, "18:59")) == ()
    assert run.tick(at(0, "19:00")) == (gp.Destroy("floor_end"),)
    run(gp.ServerDestroyed(at(0, "19:00")))
    # 11 h used, a demand wake needs 16 min more (boot and idle): fits under 11.5 h; a second one does not.
    run.up(at(0, "19:10"))
    run.tick(at(0, "19:26"))
    run(gp.ServerDestroyed(at(0, "19:26")))
    assert run.request(at(0, "21:00")).reason == "cap_hours"
    # A cap below the floor's length does not cut the floor either.
    short = Run(config(mode="hybrid", max_gpu_hours_per_day=4))
    short.tick(at(0, "08:00"))
    short(gp.ServerHealthy(at(0, "08:08")))
    assert short.tick(at(0, "18:59")) == ()
    assert short.tick(at(0, "19:00")) == (gp.Destroy("floor_end"),)


def test_manual_wake_ignores_quiet_hours_but_not_the_budget():
    run = Run(config(quiet_start="20:00", quiet_end="07:00", max_eur_per_month=0.5, hourly_price_eur=1.0))
    assert run(gp.ManualWake(at(0, "22:00"))) == (gp.Wake("manual"),)
    run(gp.ServerHealthy(at(0, "22:08")))
    run.tick(at(0, "22:16"))
    run(gp.ServerDestroyed(at(0, "22:16")))
    refused = run(gp.ManualWake(at(0, "23:00")))
    assert len(refused) == 1 and isinstance(refused[0], gp.Refused) and refused[0].reason == "cap_eur"


def test_sessions_beyond_the_cap_are_destroyed_even_when_busy():
    run = Run(config(session_cap_hours=2, drain_seconds=0, idle_minutes=30))
    run.up(at(0, "09:00"))
    for minute in range(10, 60, 10):
        run.served(at(0, f"09:{minute}"))
        run.served(at(0, f"10:{minute}"))
    assert run.tick(at(0, "10:59")) == ()
    assert run.tick(at(0, "11:00")) == (gp.Destroy("session_cap"),)


def _server(name, created, zone="fr-par-2"):
    return {"name": name, "zone": zone, "id": f"id-{name}", "creation_date": created}


def test_reaper_destroys_strays_and_keeps_the_sessions_server():
    now = at(0, "12:00")  # 2025-03-17 12:00 Paris = 11:00 UTC
    servers = [
        _server("parrotpark-gpu", "2025-03-17T10:30:00+00:00"),  # the session's, 0.5 h old
        _server("parrotpark-gpu-old", "2025-03-17T10:45:00+00:00", zone="nl-ams-1"),  # another name
        _server("left-over", None),  # no creation date: the name alone decides
    ]
    plan = gp.reap_plan(servers, gpu_name="parrotpark-gpu", session_cap_hours=24, session_known=True, now=now)
    assert [e["name"] for e in plan["keep"]] == ["parrotpark-gpu"]
    assert plan["keep"][0]["age_hours"] == 0.5
    destroyed = {e["name"]: (e["zone"], e["reason"], e["age_hours"]) for e in plan["destroy"]}
    assert destroyed == {
        "parrotpark-gpu-old": ("nl-ams-1", "unknown_name", 0.25),
        "left-over": ("fr-par-2", "unknown_name", None),
    }
    assert "is not named parrotpark-gpu" in plan["destroy"][0]["message"]


def test_reaper_destroys_the_gpu_named_server_without_a_session_or_past_the_cap():
    now = at(1, "12:00")
    young = [_server("parrotpark-gpu", "2025-03-18T10:00:00Z")]
    plan = gp.reap_plan(young, gpu_name="parrotpark-gpu", session_cap_hours=24, session_known=False, now=now)
    assert [(e["name"], e["reason"]) for e in plan["destroy"]] == [("parrotpark-gpu", "no_session")]
    # With a session, the cap decides: 24 h exactly is the cap.
    old = [_server("parrotpark-gpu", "2025-03-17T11:00:00Z")]
    plan = gp.reap_plan(old, gpu_name="parrotpark-gpu", session_cap_hours=24, session_known=True, now=now)
    assert [(e["reason"], e["age_hours"]) for e in plan["destroy"]] == [("session_cap", 24.0)]
    plan = gp.reap_plan(old, gpu_name="parrotpark-gpu", session_cap_hours=24.5, session_known=True, now=now)
    assert plan == {"destroy": [], "keep": [{**plan["keep"][0], "name": "parrotpark-gpu"}]}
    assert plan["keep"][0]["age_hours"] == 24.0


def test_reaper_refuses_what_it_cannot_read():
    now = at(0, "12:00")
    with pytest.raises(gp.PolicyError, match="each server must be an object with a name"):
        gp.reap_plan([{"zone": "fr-par-2"}], gpu_name="g", session_cap_hours=24, session_known=True, now=now)
    with pytest.raises(gp.PolicyError, match="session_cap_hours must be above 0"):
        gp.reap_plan([], gpu_name="g", session_cap_hours=0, session_known=True, now=now)
    assert gp.reap_plan([], gpu_name="g", session_cap_hours=1, session_known=False, now=now) == {
        "destroy": [],
        "keep": [],
    }


# --------------------------------------------------------------------------
# Clock: days, months, summer time
# --------------------------------------------------------------------------


def test_counters_follow_the_local_day_and_a_session_across_midnight_is_split():
    run = Run(config(idle_minutes=60))
    run.up(at(0, "23:00"))
    run.served(at(0, "23:30"))
    assert gp.status(run.config, run.state, at(1, "00:30"))["gpu_hours_today"] == pytest.approx(0.5, abs=1e-4)
    run.tick(at(1, "00:30", 10))
    run(gp.ServerDestroyed(at(1, "00:30", 10)))
    report = gp.status(run.config, run.state, at(1, "01:00"))
    assert report["gpu_hours_today"] == pytest.approx((30 * 60 + 10) / 3600, abs=1e-4)
    assert report["gpu_hours_month"] == pytest.approx((90 * 60 + 10) / 3600, abs=1e-4)
    assert report["eur_month"] == pytest.approx((90 * 60 + 10) / 3600 * 0.79, abs=1e-4)
    assert report["wakes_today"] == 0


def test_summer_time_floor_in_local_time_and_durations_in_real_time():
    cfg = config(mode="hybrid", days=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    # The floor starts at 08:00 Paris time: 07:00 UTC in winter, 06:00 UTC from 30 March.
    assert gp.floor_active(cfg, datetime(2025, 3, 28, 7, 0, tzinfo=gp.UTC))
    assert not gp.floor_active(cfg, datetime(2025, 3, 31, 5, 59, tzinfo=gp.UTC))
    assert gp.floor_active(cfg, datetime(2025, 3, 31, 6, 0, tzinfo=gp.UTC))
    # A session across the change (02:00 -> 03:00 on 30 March): 01:30 to 03:30 local is one real hour.
    run = Run(config(idle_minutes=60))
    start = datetime(2025, 3, 30, 1, 30, tzinfo=PARIS)
    run.up(start)  # ready 01:38 local
    run.served(datetime(2025, 3, 30, 1, 50, tzinfo=PARIS))  # finished 01:50:10 (UTC+1)
    # idle 60 min: 02:50:10 UTC+1 = 03:50:10 UTC+2
    assert run.tick(datetime(2025, 3, 30, 3, 50, tzinfo=PARIS)) == ()
    assert run.tick(datetime(2025, 3, 30, 3, 50, 10, tzinfo=PARIS)) == (gp.Destroy("idle"),)
    run(gp.ServerDestroyed(datetime(2025, 3, 30, 3, 50, 10, tzinfo=PARIS)))
    assert run.state.gpu_seconds_today == pytest.approx(80 * 60 + 10)


def test_quiet_hours_end_in_local_time_after_the_change():
    cfg = config(quiet_start="20:00", quiet_end="07:00", quiet_days=[])
    run = Run(cfg)
    answer = run.request(datetime(2025, 3, 29, 23, 0, tzinfo=PARIS))  # Saturday night, winter time
    assert answer.message == "The model is available from Sun 07:00 Europe/Paris (quiet hours)."
    assert answer.retry_after == 7 * 3600  # 23:00 +01:00 to 07:00 +02:00


# --------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------


def test_status_shows_phase_eta_hours_and_euros():
    run = Run(config())
    run.request(at(0, "09:00"))
    report = gp.status(run.config, run.state, at(0, "09:03"))
    assert (report["phase"], report["eta_seconds"], report["wakes_today"]) == ("starting", 300, 1)
    assert report["gpu_hours_today"] == pytest.approx(0.05)
    assert report["eur_today"] == pytest.approx(0.05 * 0.79, abs=1e-4)
    run(gp.ServerHealthy(at(0, "09:08")))
    report = gp.status(run.config, run.state, at(0, "10:00"))
    assert (report["phase"], report["eta_seconds"], report["trigger"]) == ("ready", None, "wake")
    assert report["gpu_hours_today"] == pytest.approx(1.0)


def test_step_leaves_its_input_alone():
    before = gp.State()
    stepped = gp.step(config(), before, gp.Request(at(0, "09:00")))
    assert before == gp.State() and stepped.state.phase == "starting"


# --------------------------------------------------------------------------
# The state as JSON
# --------------------------------------------------------------------------


def test_state_round_trips_through_json():
    run = Run(config(hourly_price_eur=0.9))
    run.up(at(0, "09:00"))  # wakes at 09:00, healthy 09:08
    run.served(at(0, "09:20"))
    assert run.request(at(0, "09:21")).kind == "pass"  # one in flight
    run(gp.StreamOpened(at(0, "09:22")))
    state = run.state
    text = json.dumps(gp.state_to_dict(state))
    data = json.loads(text)
    assert data["session_start"] == "2025-03-17T08:00:00+00:00"  # ISO 8601 with the offset (UTC)
    assert data["day"] == "2025-03-17" and data["month"] == "2025-03"
    back = gp.state_from_dict(data)
    assert back == state
    # The restored state goes on exactly as the original would.
    later = at(0, "10:00")
    assert gp.step(run.config, back, gp.Tick(later)) == gp.step(run.config, state, gp.Tick(later))


def test_state_from_dict_ignores_unknown_keys_and_fills_missing_ones():
    data = gp.state_to_dict(gp.State(phase="blocked", why="cap_hours", wakes_today=3))
    data["a_newer_field"] = {"x": 1}
    del data["eur_month"]
    state = gp.state_from_dict(data)
    assert (state.phase, state.why, state.wakes_today, state.eur_month) == ("blocked", "cap_hours", 3, 0.0)
    assert gp.state_from_dict({}) == gp.State()


def test_state_times_in_another_offset_are_read_as_the_same_moment():
    state = gp.state_from_dict({"phase": "starting", "trigger": "wake", "session_start": "2025-03-17T09:00:00+01:00"})
    assert state.session_start == datetime(2025, 3, 17, 8, 0, tzinfo=gp.UTC)
    assert gp.state_from_dict({"last_stop": "2025-03-17T08:00:00Z"}).last_stop == state.session_start


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"phase": "sleeping"}, r"state phase must be one of off, starting, ready, stopping, blocked, got 'sleeping'"),
        ({"phase": None}, r"state phase must be one of"),
        ({"why": "tired"}, r"state why must be one of .* or null, got 'tired'"),
        ({"session_start": "2025-03-17T09:00:00"}, r"state session_start must be an ISO 8601 .* with an offset"),
        ({"last_stop": "yesterday"}, r"state last_stop must be an ISO 8601"),
        ({"healthy_at": 1742198400}, r"state healthy_at must be an ISO 8601"),
        ({"in_flight": -1}, r"state in_flight must be an integer at least 0, got -1"),
        ({"wakes_today": "2"}, r"state wakes_today must be an integer"),
        ({"eur_month": "lots"}, r"state eur_month must be a number at least 0"),
        ({"destroy_sent": "yes"}, r"state destroy_sent must be true or false"),
        ({"day": "17/03/2025"}, r"state day must be a date YYYY-MM-DD"),
        ({"month": "2025-13"}, r"state month must be YYYY-MM"),
        ([], r"the state must be a mapping, got list"),
    ],
)
def test_bad_state_names_the_key(data, message):
    with pytest.raises(gp.PolicyError, match=message):
        gp.state_from_dict(data)


# --------------------------------------------------------------------------
# Observed: the GPU's own counters
# --------------------------------------------------------------------------


def test_observed_sets_in_flight_and_counts_as_activity():
    run = Run(config(idle_minutes=10))
    run.up(at(0, "09:00"))  # ready 09:08
    run(gp.StreamOpened(at(0, "09:09")))
    run(gp.Observed(at(0, "09:10"), 2, 0))
    assert (run.state.in_flight, run.state.open_streams) == (2, 0)  # the streams are in vLLM's number
    assert run.state.last_request == run.state.last_activity == at(0, "09:10").astimezone(gp.UTC)
    run(gp.Observed(at(0, "09:12"), 0, 3))  # finished since: activity too
    assert run.state.in_flight == 0
    assert run.state.last_activity == at(0, "09:12").astimezone(gp.UTC)
    run(gp.Observed(at(0, "09:15"), 0, 0))  # nothing: not activity
    assert run.state.last_activity == at(0, "09:12").astimezone(gp.UTC)
    assert run.tick(at(0, "09:21", 59)) == ()
    assert run.tick(at(0, "09:22")) == (gp.Destroy("idle"),)  # 10 min after the last observed activity


def test_observed_requests_in_flight_keep_the_server_up_then_idle_stops_it():
    run = Run(config(idle_minutes=10, drain_seconds=3600))
    run.up(at(0, "09:00"))
    for minute in range(10, 40):  # a long stream seen by vLLM only (the gateway was bypassed)
        run(gp.Observed(at(0, f"09:{minute:02d}"), 1, 0))
        assert run.tick(at(0, f"09:{minute:02d}", 30)) == ()
    run(gp.Observed(at(0, "09:40"), 0, 1))  # it finished
    assert run.tick(at(0, "09:49", 59)) == ()
    assert run.tick(at(0, "09:50")) == (gp.Destroy("idle"),)


def test_observed_ends_a_drain():
    run = Run(config(max_gpu_hours_per_day=2, drain_seconds=300))
    run.up(at(0, "09:00"))
    run(gp.Observed(at(0, "10:50"), 1, 0))
    assert run.tick(at(0, "10:55")) == ()  # 5 min before the 2 h: the stop begins, draining the request
    assert (run.state.phase, run.state.why) == ("stopping", "cap_hours")
    assert run(gp.Observed(at(0, "10:56"), 0, 1)) == (gp.Destroy("cap_hours"),)


@pytest.mark.parametrize("phase", ["off", "starting"])
def test_observed_is_ignored_without_a_server_to_observe(phase):
    run = Run(config())
    if phase == "starting":
        run.request(at(0, "09:00"))
    before = run.state
    run(gp.Observed(at(0, "09:01"), 3, 2))
    assert run.state.in_flight == before.in_flight and run.state.last_request == before.last_request
    assert run.wakes() == ([gp.Wake("wake")] if phase == "starting" else [])


@pytest.mark.parametrize(("in_flight", "finished"), [(-1, 0), (0, -2), (1.5, 0), (True, 0)])
def test_observed_counts_must_be_whole_numbers(in_flight, finished):
    run = Run(config())
    run.up(at(0, "09:00"))
    with pytest.raises(gp.PolicyError, match=r"Observed\.(in_flight|finished) must be an integer at least 0"):
        run(gp.Observed(at(0, "09:10"), in_flight, finished))
