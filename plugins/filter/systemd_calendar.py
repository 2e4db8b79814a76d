# Copyright (c) 2026 Parrotpark contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: systemd_calendar
short_description: systemd OnCalendar= expressions for a time, repeated every few minutes until another
version_added: 0.2.0
author: Parrotpark contributors (@parrotpark)
description:
  - The OnCalendar= expressions of a timer that elapses at the input time and every O(every) minutes after it,
    strictly before O(end), on O(days), in O(time_zone). The scheduler role's up timer uses it
    (C(scheduler_up_time), C(scheduler_down_time), C(scheduler_retry_minutes), C(scheduler_days),
    C(scheduler_time_zone)).
  - "One expression per group of hours that elapse at the same minutes, the groups in the order of their first
    hour: from 08:00 every 15 minutes until 19:00 is the single expression
    C(Mon,Tue,Wed,Thu,Fri *-*-* 08,09,10,11,12,13,14,15,16,17,18:00,15,30,45:00 Europe/Paris); every 25 minutes
    from 08:00 until 10:00 is C(... 08:00,25,50:00 ...) and C(... 09:15,40:00 ...)."
  - An end time that is not after the start gives no expression (an empty list).
  - C(systemd-analyze calendar EXPRESSION) shows when an expression elapses.
positional: end, every, days, time_zone
options:
  _input:
    description: The first time, C(HH:MM) (24-hour clock, C(H:MM) accepted), in O(time_zone).
    type: str
    required: true
  end:
    description: The time the repetition stops before, C(HH:MM) on the same day; it never elapses itself.
    type: str
    required: true
  every:
    description: Minutes between two elapses, at least 1 (an integer or a string of one).
    type: int
    required: true
  days:
    description:
      - The days of the week, as systemd writes them (V(Mon), V(Tue), ... V(Sun)), joined with commas in the given
        order.
    type: list
    elements: str
    required: true
  time_zone:
    description: The time zone of the times, a name of the tz database such as V(Europe/Paris) or V(UTC).
    type: str
    required: true
seealso:
  - name: systemd.time(7)
    description: The calendar events of systemd timers.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.time.html
"""

EXAMPLES = r"""
- name: Bring the GPU up at 08:00 and retry every 15 minutes until 19:00, on working days
  ansible.builtin.debug:
    msg: >-
      {{ '08:00' | parrotpark.llm.systemd_calendar(end='19:00', every=15, days=['Mon', 'Tue', 'Wed', 'Thu', 'Fri'],
                                                   time_zone='Europe/Paris') }}
  # ['Mon,Tue,Wed,Thu,Fri *-*-* 08,09,10,11,12,13,14,15,16,17,18:00,15,30,45:00 Europe/Paris']

- name: Every 25 minutes (does not divide the hour) from 08:00 until 10:00 on weekends
  ansible.builtin.debug:
    msg: "{{ '08:00' | parrotpark.llm.systemd_calendar('10:00', 25, ['Sat', 'Sun'], 'UTC') }}"
  # ['Sat,Sun *-*-* 08:00,25,50:00 UTC', 'Sat,Sun *-*-* 09:15,40:00 UTC']
"""

RETURN = r"""
_value:
  description: The OnCalendar= expressions, C(DAYS *-*-* HOURS:MINUTES:00 TIME_ZONE), one per line of a timer unit.
  type: list
  elements: str
"""

import re  # noqa: E402 (the documentation comes first)
from typing import Any  # noqa: E402

from ansible_collections.parrotpark.llm.plugins.plugin_utils._filters import fail, is_list  # noqa: E402

FILTER = "systemd_calendar"
TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


def _minute_of_day(argument: str, value: Any) -> int:
    match = TIME.match(value) if isinstance(value, str) else None
    if match is None:
        hint = " (quote it in YAML: an unquoted 08:00 is read as the number 480)" if isinstance(value, int) else ""
        raise fail(FILTER, argument, f"a time HH:MM from 00:00 to 23:59{hint}", value)
    return int(match[1]) * 60 + int(match[2])


def _every(value: Any) -> int:
    if isinstance(value, bool):
        raise fail(FILTER, "every", "a number of minutes of at least 1", value)
    try:
        minutes = int(value, 10) if isinstance(value, str) else value
    except ValueError:
        raise fail(FILTER, "every", "a number of minutes of at least 1", value) from None
    if isinstance(minutes, float) and minutes.is_integer():
        minutes = int(minutes)
    if not isinstance(minutes, int) or minutes < 1:
        raise fail(FILTER, "every", "a number of minutes of at least 1", value)
    return minutes


def systemd_calendar(start: str, end: str, every: int, days: list[str], time_zone: str) -> list[str]:
    """OnCalendar= expressions from start every `every` minutes before end; see DOCUMENTATION."""
    first = _minute_of_day("the input (the first time)", start)
    stop = _minute_of_day("end", end)
    step = _every(every)
    if not is_list(days) or not days or not all(isinstance(day, str) and day for day in days):
        raise fail(FILTER, "days", "a non-empty list of days such as Mon, Tue", days)
    if not isinstance(time_zone, str) or not time_zone:
        raise fail(FILTER, "time_zone", "a time zone name such as Europe/Paris or UTC", time_zone)

    # The minutes of each hour that elapse, then the hours by their minutes.
    minutes_by_hour: dict[int, list[str]] = {}
    for minute in range(first, stop, step):
        minutes_by_hour.setdefault(minute // 60, []).append(f"{minute % 60:02d}")
    hours_by_minutes: dict[str, list[str]] = {}
    for hour in sorted(minutes_by_hour):
        hours_by_minutes.setdefault(",".join(minutes_by_hour[hour]), []).append(f"{hour:02d}")
    weekdays = ",".join(days)
    return [
        f"{weekdays} *-*-* {','.join(hours)}:{minutes}:00 {time_zone}" for minutes, hours in hours_by_minutes.items()
    ]


class FilterModule:
    """The systemd_calendar filter."""

    def filters(self) -> dict[str, Any]:
        return {"systemd_calendar": systemd_calendar}
