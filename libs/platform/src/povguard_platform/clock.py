"""The campaign's clock: the one place that says what day it is for a campaign's rules.

Rules, handlers and lists take "today" from a `Clock`, never from `date.today()`: in production the clock is the
real date; a replayed or past campaign sets `CAMPAIGN_TODAY` (a day inside the policy's `campaign_window`), so that
deadlines, overdue lists and dates stamped on events (a case opened without a lead date, a scale-risk alert, a
passed visit deadline) are the campaign's, not the machine's. Record timestamps (the envelope's `time`, `recorded_at`,
token expiry, relay and audit signing times) stay real time: they say when the system did something, not when the
campaign did it, and the ledger's order and signatures depend on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from povguard_platform.policy import Policy, load_policy
from povguard_platform.settings import Settings


@dataclass(frozen=True)
class Clock:
    """`fixed` set: the campaign stands on that day; unset: the real date (production)."""

    fixed: date | None = None

    def today(self) -> date:
        return self.fixed if self.fixed is not None else date.today()  # the one wall-clock read of a date


def clock_for(policy: Policy, fixed: date | None) -> Clock:
    """A campaign's clock; a set day must fall inside the campaign's window (events recorded for a campaign are
    dated inside it)."""
    if fixed is not None:
        start, end = policy.calendar.campaign_window
        if not start <= fixed <= end:
            raise ValueError(f"CAMPAIGN_TODAY {fixed} is outside campaign {policy.policy.id}'s window "
                             f"{start}..{end}")
    return Clock(fixed)


def campaign_clock(settings: Settings) -> Clock:
    """The clock of the campaign in force (settings.campaign, settings.campaign_today)."""
    return clock_for(load_policy(settings.campaign), settings.campaign_today)
