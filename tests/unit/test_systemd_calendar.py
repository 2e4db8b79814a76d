"""The systemd_calendar filter: the OnCalendar= expressions of the scheduler's up timer.

The expected expressions are those the Jinja program of
roles/scheduler/vars/main.yml (`_scheduler_up_calendar`, before it became this
filter) rendered for the same schedule. systemd's own reading of them is
checked by tests/integration/test_scheduler_role_input.py
(test_timer_ticks_are_the_ticks_of_the_command).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.parrotpark.llm.plugins.filter.systemd_calendar import (  # noqa: E402
    FilterModule,
    systemd_calendar,
)
from filter_support import filter_doc, render  # noqa: E402

WORKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")
PARIS = "Europe/Paris"


def calendar(start, end, every, days=WORKDAYS, time_zone=PARIS):
    days = list(days) if isinstance(days, tuple) else days  # a tuple default: no shared mutable default
    return systemd_calendar(start, end=end, every=every, days=days, time_zone=time_zone)


def test_role_defaults():
    """08:00 to 19:00 every 15 minutes on working days in Paris (roles/scheduler/defaults/main.yml)."""
    assert calendar("08:00", "19:00", 15) == [
        "Mon,Tue,Wed,Thu,Fri *-*-* 08,09,10,11,12,13,14,15,16,17,18:00,15,30,45:00 Europe/Paris"
    ]


# (start, end, every) -> expressions, days and time zone of the defaults.
TABLE = {
    "every 20 minutes divides the hour": (
        ("07:00", "09:00", 20),
        ["Mon,Tue,Wed,Thu,Fri *-*-* 07,08:00,20,40:00 Europe/Paris"],
    ),
    "every 25 minutes does not divide the hour": (
        ("08:00", "12:00", 25),
        [
            "Mon,Tue,Wed,Thu,Fri *-*-* 08:00,25,50:00 Europe/Paris",
            "Mon,Tue,Wed,Thu,Fri *-*-* 09:15,40:00 Europe/Paris",
            "Mon,Tue,Wed,Thu,Fri *-*-* 10:05,30,55:00 Europe/Paris",
            "Mon,Tue,Wed,Thu,Fri *-*-* 11:20,45:00 Europe/Paris",
        ],
    ),
    "odd minutes: hours with the same minutes share an expression": (
        ("08:07", "17:53", 45),
        [
            "Mon,Tue,Wed,Thu,Fri *-*-* 08,11,14,17:07,52:00 Europe/Paris",
            "Mon,Tue,Wed,Thu,Fri *-*-* 09,12,15:37:00 Europe/Paris",
            "Mon,Tue,Wed,Thu,Fri *-*-* 10,13,16:22:00 Europe/Paris",
        ],
    ),
    "every 7 minutes": (
        ("06:00", "08:00", 7),
        [
            "Mon,Tue,Wed,Thu,Fri *-*-* 06:00,07,14,21,28,35,42,49,56:00 Europe/Paris",
            "Mon,Tue,Wed,Thu,Fri *-*-* 07:03,10,17,24,31,38,45,52,59:00 Europe/Paris",
        ],
    ),
    "one minute window: the start only": (("10:00", "10:01", 15), ["Mon,Tue,Wed,Thu,Fri *-*-* 10:00:00 Europe/Paris"]),
    "the end never elapses": (("10:00", "10:30", 15), ["Mon,Tue,Wed,Thu,Fri *-*-* 10:00,15:00 Europe/Paris"]),
    "the longest retry over the whole day": (
        ("00:00", "23:59", 180),
        ["Mon,Tue,Wed,Thu,Fri *-*-* 00,03,06,09,12,15,18,21:00:00 Europe/Paris"],
    ),
    "retry minutes as a string": (("09:10", "11:10", "30"), ["Mon,Tue,Wed,Thu,Fri *-*-* 09,10:10,40:00 Europe/Paris"]),
    "one-digit hour": (("8:00", "9:00", 30), ["Mon,Tue,Wed,Thu,Fri *-*-* 08:00,30:00 Europe/Paris"]),
    "end before start: no expression": (("10:00", "09:00", 15), []),
    "end at start: no expression": (("10:00", "10:00", 15), []),
}


@pytest.mark.parametrize("case", TABLE, ids=list(TABLE))
def test_schedule_table(case):
    (start, end, every), expected = TABLE[case]
    assert calendar(start, end, every) == expected


def test_days_and_time_zone_as_given():
    assert calendar("23:30", "23:59", 60, days=["Sat", "Sun"], time_zone="America/New_York") == [
        "Sat,Sun *-*-* 23:30:00 America/New_York"
    ]
    assert calendar("08:58", "10:03", 5, days=["Mon"], time_zone="UTC") == [
        "Mon *-*-* 08:58:00 UTC",
        "Mon *-*-* 09:03,08,13,18,23,28,33,38,43,48,53,58:00 UTC",
    ]
    assert calendar("08:00", "08:30", 15, days=["Fri", "Mon"])[0].startswith("Fri,Mon *-*-* ")


def test_positional_arguments():
    assert systemd_calendar("08:00", "10:00", 25, ["Sat", "Sun"], "UTC") == [
        "Sat,Sun *-*-* 08:00,25,50:00 UTC",
        "Sat,Sun *-*-* 09:15,40:00 UTC",
    ]


BAD = {
    "start not a time": (
        ("8h", "19:00", 15),
        {},
        r"systemd_calendar: the input \(the first time\) must be a time HH:MM",
    ),
    "start read by YAML as a number": ((480, "19:00", 15), {}, r"quote it in YAML.*got 480"),
    "end out of range": (("08:00", "24:00", 15), {}, r"end must be a time HH:MM from 00:00 to 23:59; got '24:00'"),
    "minutes out of range": (("08:60", "19:00", 15), {}, r"the input \(the first time\) must be a time"),
    "every 0": (("08:00", "19:00", 0), {}, r"every must be a number of minutes of at least 1; got 0"),
    "every text": (("08:00", "19:00", "often"), {}, r"every must be a number of minutes"),
    "every bool": (("08:00", "19:00", True), {}, r"every must be a number of minutes"),
    "no days": (("08:00", "19:00", 15), {"days": []}, r"days must be a non-empty list of days"),
    "days a string": (("08:00", "19:00", 15), {"days": "Mon"}, r"days must be a non-empty list of days"),
    "no time zone": (("08:00", "19:00", 15), {"time_zone": ""}, r"time_zone must be a time zone name"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_the_argument(case):
    arguments, overrides, pattern = BAD[case]
    with pytest.raises(AnsibleFilterError, match=pattern):
        calendar(*arguments, **overrides)


def test_registered_as_a_filter():
    assert FilterModule().filters()["systemd_calendar"] is systemd_calendar


def test_through_ansible():
    """The filter runs under its collection name in a playbook, and ansible-doc renders its documentation."""
    answer = render(
        "'08:00' | parrotpark.llm.systemd_calendar(end='10:00', every='25', days=['Sat', 'Sun'], time_zone='UTC')"
    )
    assert answer == ["Sat,Sun *-*-* 08:00,25,50:00 UTC", "Sat,Sun *-*-* 09:15,40:00 UTC"]
    documented = filter_doc("systemd_calendar")
    assert set(documented["doc"]["options"]) == {"_input", "end", "every", "days", "time_zone"}
