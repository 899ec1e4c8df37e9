"""When a practice's texts may go out: working hours on working days, not bank holidays.

Sending only while the practice is open means that a risky answer arrives
while a clinician can act on it. Times are wall-clock times in the
practice's zone, so "09:00" stays 09:00 across the clock change; bank
holidays come from the ``holidays`` package for the practice's nation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.domain import DAY_NAMES

LOOKAHEAD_DAYS = 40  # longer than any run of closed days (Christmas to New Year)


def parse_clock(text: str) -> time:
    """'09:00' as a time; '24:00' is the end of the day (a window open until midnight)."""
    hour, _, minute = text.partition(":")
    if int(hour) == 24 and int(minute or 0) == 0:
        return time.max
    return time(int(hour), int(minute or 0))


def parse_days(text: str) -> frozenset[int]:
    days = {DAY_NAMES.index(d) for d in text.lower().replace(",", " ").split()}
    return frozenset(days)


@lru_cache(maxsize=16)
def _bank_holidays(nation: str, year: int) -> frozenset[date]:
    if nation == "NONE":
        return frozenset()
    return frozenset(holidays.country_holidays("GB", subdiv=nation, years=year))


@dataclass(frozen=True)
class SendWindow:
    start: time
    end: time
    days: frozenset[int]
    zone: ZoneInfo
    nation: str = "ENG"

    @classmethod
    def of(cls, practice) -> SendWindow:
        return cls(
            start=parse_clock(practice.send_window_start),
            end=parse_clock(practice.send_window_end),
            days=parse_days(practice.working_days),
            zone=ZoneInfo(practice.timezone),
            nation=practice.nation,
        )

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in _bank_holidays(self.nation, day.year)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return self.is_working_day(local.date()) and self.start <= local.time() < self.end

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself when open, else the next moment the window opens (UTC)."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone)
        day = local.date()
        if local.time() >= self.start:
            day += timedelta(days=1)
        for _ in range(LOOKAHEAD_DAYS):
            if self.is_working_day(day):
                opening = datetime.combine(day, self.start, tzinfo=self.zone)
                return opening.astimezone(UTC)
            day += timedelta(days=1)
        raise ValueError("the send window never opens: check working_days")
