"""Official working days (国务院办公厅 holiday notices, via `chinesecalendar`): weekends and public holidays are not
working days, make-up working days (调休上班) are."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar


def is_working_day(day: date) -> bool:
    return bool(chinese_calendar.is_workday(day))


def last_notice_day(start: date, working_days: int) -> date:
    """The last of `working_days` working days counted from `start` (which counts when it is a working day)."""
    if working_days < 1:
        raise ValueError("working_days must be at least 1")
    day, counted = start, 0
    while True:
        if is_working_day(day):
            counted += 1
            if counted == working_days:
                return day
        day += timedelta(days=1)
