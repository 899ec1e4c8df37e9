"""The send window: working hours on working days, bank holidays off, the clock change handled."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.services.send_window import SendWindow, parse_clock, parse_days

LONDON = ZoneInfo("Europe/London")


def window(nation: str = "ENG", days: str = "mon tue wed thu fri") -> SendWindow:
    return SendWindow(parse_clock("09:00"), parse_clock("17:00"), parse_days(days), LONDON, nation)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (what, UTC time, open?, next opening in UTC)
CASES = [
    ("a winter Monday at 10:00 GMT", "2026-03-02T10:00", True, "2026-03-02T10:00"),
    ("08:59 GMT is before opening", "2026-03-02T08:59", False, "2026-03-02T09:00"),
    ("17:00 GMT is closing time", "2026-03-02T17:00", False, "2026-03-03T09:00"),
    ("Friday evening waits for Monday", "2026-03-06T18:00", False, "2026-03-09T09:00"),
    ("Saturday waits for Monday", "2026-03-07T12:00", False, "2026-03-09T09:00"),
    # Clocks go forward on Sunday 29 March 2026: 09:00 BST is 08:00 UTC.
    ("the Sunday of the spring change", "2026-03-29T12:00", False, "2026-03-30T08:00"),
    ("08:30 UTC is 09:30 BST: open", "2026-03-30T08:30", True, "2026-03-30T08:30"),
    ("16:30 UTC is 17:30 BST: closed", "2026-03-30T16:30", False, "2026-03-31T08:00"),
    # Good Friday 3 April and Easter Monday 6 April 2026 are bank holidays.
    ("Thursday before Easter after hours", "2026-04-02T17:00", False, "2026-04-07T08:00"),
    ("Easter Monday", "2026-04-06T10:00", False, "2026-04-07T08:00"),
    # Clocks go back on Sunday 25 October 2026: 09:00 GMT is 09:00 UTC again.
    ("the Sunday of the autumn change", "2026-10-25T12:00", False, "2026-10-26T09:00"),
    ("Christmas Eve at closing", "2026-12-24T17:00", False, "2026-12-29T09:00"),
    ("Boxing Day observed on Monday 28 December", "2026-12-28T10:00", False, "2026-12-29T09:00"),
]


@pytest.mark.parametrize(("what", "at", "is_open", "opening"), CASES, ids=[c[0] for c in CASES])
def test_send_window_in_england(what: str, at: str, is_open: bool, opening: str) -> None:
    assert window().is_open(utc(at)) is is_open
    assert window().next_opening(utc(at)) == utc(opening)


def test_each_nation_has_its_own_bank_holidays() -> None:
    second_of_january = utc("2026-01-02T10:00")  # a Friday; a bank holiday in Scotland only
    assert window("ENG").is_open(second_of_january)
    assert not window("SCT").is_open(second_of_january)
    st_andrews_day = utc("2026-11-30T10:00")  # a Monday
    assert window("ENG").is_open(st_andrews_day)
    assert not window("SCT").is_open(st_andrews_day)


def test_a_practice_may_open_on_saturdays() -> None:
    saturday = utc("2026-03-07T12:00")
    assert window(days="mon tue wed thu fri sat").is_open(saturday)


def test_a_window_that_never_opens_is_an_error_not_a_loop() -> None:
    with pytest.raises(ValueError, match="never opens"):
        window(days="").next_opening(utc("2026-03-02T10:00"))


def test_next_opening_is_never_before_the_time_asked() -> None:
    start = utc("2026-01-01T00:00")
    for hour in range(0, 24 * 60, 7):
        at = start.replace(day=1) + (utc("2026-01-01T01:00") - start) * hour
        opening = window().next_opening(at)
        assert opening >= at
        assert window().is_open(opening)
