"""The chat site's offline page and wake button in the policy (gpu_policy.offline_view, Request kind button).

With the gateway on the GPU server LibreChat runs there, so while the GPU is
off the entrance's waker answers for the chat site: ``offline_view`` says
what the page shows (never changing the state: a page load never wakes), and
the page's button is a ``Request`` of kind ``button``: a user's wake, within
the quiet hours and the caps, answered at once and never counted in flight.
Same virtual clock as tests/unit/test_gpu_policy.py.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "roles" / "scheduler" / "files") not in sys.path:
    sys.path.insert(0, str(ROOT / "roles" / "scheduler" / "files"))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_policy as gp  # noqa: E402
from test_gpu_policy import Run, at, config  # noqa: E402


def test_off_offers_the_button_with_the_boot_time_and_changes_nothing():
    cfg = config()
    state = gp.State()
    view = gp.offline_view(cfg, state, at(0, "09:00"))
    assert view == gp.Offline(
        "off", "off", "The model is off; starting it takes about 8 minutes.", True, 15, 15, 8 * 60
    )
    # A page load is not an event: the state is what it was, no wake.
    assert state == gp.State()


def test_the_button_wakes_once_then_the_page_says_starting():
    run = Run(config())
    answer = run.request(at(0, "09:00"), gp.BUTTON_KIND)
    assert (answer.kind, answer.reason) == ("unavailable", "starting")
    assert answer.message == "The model is starting, ready in about 8 minutes."
    assert run.wakes() == [gp.Wake("wake")]
    assert run.state.phase == "starting" and run.state.in_flight == 0
    # A second press, and a third from another user: single flight.
    run.request(at(0, "09:01"), gp.BUTTON_KIND)
    run.request(at(0, "09:01", 30), gp.BUTTON_KIND)
    assert run.wakes() == [gp.Wake("wake")]
    assert run.state.wakes_today == 1 and run.state.in_flight == 0
    view = gp.offline_view(run.config, run.state, at(0, "09:03"))
    assert (view.phase, view.reason, view.can_wake) == ("starting", "starting", False)
    assert view.message == "The model is starting, ready in about 5 minutes."
    assert (view.eta_seconds, view.retry_after, view.refresh_seconds) == (300, 15, 15)
    late = gp.offline_view(run.config, run.state, at(0, "09:09"))
    assert late.message == "The model is starting, ready shortly."


def test_a_button_press_nearly_ready_is_never_held():
    run = Run(config(hold_seconds=120))
    run.request(at(0, "09:00"), gp.BUTTON_KIND)
    answer = run.request(at(0, "09:07", 30), gp.BUTTON_KIND)  # 30 s before the ETA, within the hold
    assert (answer.kind, answer.reason) == ("unavailable", "starting")
    assert answer.message == "The model is starting, ready shortly."
    assert run.state.in_flight == 0
    run(gp.ServerHealthy(at(0, "09:08")))
    answer = run.request(at(0, "09:09"), gp.BUTTON_KIND)
    assert (answer.kind, answer.reason) == ("pass", "ready")
    assert run.state.in_flight == 0  # nothing to wait for: the idle time is not held up by the button
    assert run.state.last_request == at(0, "09:09")  # but a press is a user's request
    assert gp.offline_view(run.config, run.state, at(0, "09:09")).phase == "ready"


def test_quiet_hours_give_the_policys_sentence_and_no_button_and_the_button_does_not_wake():
    cfg = config(quiet_start="20:00", quiet_end="07:00", quiet_days=["Sat", "Sun"])
    run = Run(cfg)
    view = gp.offline_view(cfg, run.state, at(0, "23:00"))
    assert (view.phase, view.reason, view.can_wake) == ("off", "quiet", False)
    assert view.message == "The model is available from Tue 07:00 Europe/Paris (quiet hours)."
    assert view.retry_after == 8 * 3600 and view.refresh_seconds == 60
    answer = run.request(at(0, "23:00"), gp.BUTTON_KIND)  # a forged press
    assert (answer.kind, answer.reason) == ("unavailable", "quiet")
    assert run.wakes() == [] and run.state.phase == "off"
    weekend = gp.offline_view(cfg, run.state, at(5, "12:00"))
    assert weekend.message == "The model is available from Mon 07:00 Europe/Paris (quiet hours)."


def test_a_cap_blocks_the_button_and_the_page_names_the_cap():
    cfg = config(max_wakes_per_day=1)
    run = Run(cfg)
    run.request(at(0, "09:00"), gp.BUTTON_KIND)
    run(gp.ServerHealthy(at(0, "09:08")))
    run(gp.ServerDestroyed(at(0, "10:00")))
    view = gp.offline_view(cfg, run.state, at(0, "11:00"))
    assert (view.phase, view.reason, view.can_wake) == ("blocked", "cap_wakes", False)
    assert view.message == (
        "The GPU was started 1 times today (the daily limit); the model is available again from Tue 00:00 Europe/Paris."
    )
    answer = run.request(at(0, "11:00"), gp.BUTTON_KIND)
    assert answer.reason == "cap_wakes"
    assert len(run.wakes()) == 1


def test_within_the_minimum_off_time_the_button_delays_the_wake_and_the_page_says_restarting():
    cfg = config(min_off_minutes=5)
    run = Run(cfg)
    run.request(at(0, "09:00"), gp.BUTTON_KIND)
    run(gp.ServerHealthy(at(0, "09:08")))
    run(gp.ServerDestroyed(at(0, "09:30")))
    view = gp.offline_view(cfg, run.state, at(0, "09:31"))
    assert (view.phase, view.can_wake, view.eta_seconds) == ("off", True, 4 * 60 + 8 * 60)
    answer = run.request(at(0, "09:31"), gp.BUTTON_KIND)
    assert answer.reason == "min_off"
    assert len(run.wakes()) == 1
    view = gp.offline_view(cfg, run.state, at(0, "09:32"))
    assert (view.reason, view.can_wake) == ("restarting", False)
    assert view.message == "The model is restarting, ready in about 11 minutes."
    run.tick(at(0, "09:35"))
    assert len(run.wakes()) == 2 and run.state.phase == "starting"


def test_while_stopping_after_idleness_the_button_wakes_it_again_once_gone():
    cfg = config(idle_minutes=10)
    run = Run(cfg)
    run.request(at(0, "09:00"), gp.BUTTON_KIND)
    run(gp.ServerHealthy(at(0, "09:08")))
    run.tick(at(0, "09:20"))
    assert run.state.phase == "stopping"
    view = gp.offline_view(cfg, run.state, at(0, "09:20"))
    assert (view.phase, view.reason, view.can_wake) == ("stopping", "stopping", True)
    assert (
        view.message == "The model is stopping (nobody used it for a while); starting it again takes about 10 minutes."
    )
    answer = run.request(at(0, "09:20", 30), gp.BUTTON_KIND)
    assert answer.reason == "restarting"
    assert gp.offline_view(cfg, run.state, at(0, "09:21")).reason == "restarting"
    run(gp.ServerDestroyed(at(0, "09:22")))
    run.tick(at(0, "09:22") + timedelta(minutes=cfg.min_off_minutes))
    assert len(run.wakes()) == 2


def test_the_offline_view_never_changes_the_state_in_any_phase():
    cfg = config(max_gpu_hours_per_day=1)
    run = Run(cfg)
    states = [run.state]
    run.request(at(0, "09:00"))
    states.append(run.state)
    run(gp.ServerHealthy(at(0, "09:08")))
    states.append(run.state)
    run.tick(at(0, "10:30"))
    states.append(run.state)
    for state in states:
        before = gp.state_to_dict(state)
        gp.offline_view(cfg, state, at(0, "10:31"))
        assert gp.state_to_dict(state) == before
