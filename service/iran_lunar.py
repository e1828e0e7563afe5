"""Iran's lunar Hijri calendar: months begun as Iran announces them, not as Umm al-Qura tables do.

Iran starts each lunar month by moon sighting, so its calendar runs up to a day or two off the
Umm al-Qura tables, and by an amount that changes from month to month. Three sources, strongest
first, say where a month began:

1. **announced**: an operator's record of Iran's announcement (``[widgets.date] hijri_month_starts``);
2. **observed**: the day Iran observed a lunar holiday, as the ``holidays`` package carries them for
   the years it has confirmed (Ashura on 10 Muharram fixes 1 Muharram, and so on);
3. **estimated**: for the months no holiday fixes (Rabi' al-Thani, Jumada al-Ula, Dhu al-Qa'dah)
   and past the confirmed years, the Umm al-Qura month lengths counted from the nearest known
   start, made to fit the next known start when there is one; with nothing known nearby, Umm
   al-Qura's start a day later (where Iran most often is).

A date is ``official`` when its month's start is announced or observed (and, on a 30th day, the
next month's too); otherwise ``estimated``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Literal

from hijridate import Gregorian, Hijri
from holidays.countries.iran import IranIslamicHolidays

Source = Literal["official", "estimated"]

#: Lunar holidays Iran observes on a fixed day of a month, by the ``holidays`` package's method
#: name: each observed date fixes the start of its month. (Imam Reza's martyrdom, on the last day
#: of Safar, is 29 or 30 Safar, so it fixes nothing.)
FIXING_HOLIDAYS: dict[str, tuple[int, int]] = {
    "tasua_dates": (1, 9),
    "ashura_dates": (1, 10),
    "arbaeen_dates": (2, 20),
    "prophet_death_dates": (2, 28),
    "hasan_al_askari_death_dates": (3, 8),
    "sadiq_birthday_dates": (3, 17),
    "fatima_death_dates": (6, 3),
    "ali_birthday_dates": (7, 13),
    "isra_and_miraj_dates": (7, 27),
    "imam_mahdi_birthday_dates": (8, 15),
    "ali_death_dates": (9, 21),
    "eid_al_fitr_dates": (10, 1),
    "sadiq_death_dates": (10, 25),
    "eid_al_adha_dates": (12, 10),
    "eid_al_ghadir_dates": (12, 18),
}
#: The Gregorian years searched for observed holidays (the package knows Iran from 1980 on).
OBSERVED_YEARS = range(1980, 2101)
#: Umm al-Qura tables as hijridate implements them.
FIRST_YEAR, LAST_YEAR = 1343, 1500
#: How far to look for a known month start on either side of an unknown one.
SEARCH_MONTHS = 18
#: An announced start this far from Umm al-Qura's is a typing slip, not a sighting.
MAX_ANNOUNCED_GAP_DAYS = 3


@dataclass(frozen=True)
class LunarDate:
    year: int
    month: int
    day: int
    source: Source


def month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def umm_al_qura_start(index: int) -> date | None:
    year, month = divmod(index, 12)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    return date(*Hijri(year, month + 1, 1).to_gregorian().datetuple())


def umm_al_qura_index(day: date) -> int | None:
    try:
        lunar = Gregorian(day.year, day.month, day.day).to_hijri()
    except (ValueError, OverflowError):
        return None  # outside the tables
    return month_index(lunar.year, lunar.month)


def check_announced(year: int, month: int, start: date) -> None:
    """Raise ``ValueError`` unless ``start`` can be the first day of lunar ``year``-``month``."""
    if not 1 <= month <= 12:
        raise ValueError(f"{year}-{month:02d}: there is no lunar month {month}")
    expected = umm_al_qura_start(month_index(year, month))
    if expected is None:
        raise ValueError(f"{year}-{month:02d} is outside the years this calendar covers")
    if abs((start - expected).days) > MAX_ANNOUNCED_GAP_DAYS:
        raise ValueError(
            f"{year}-{month:02d} starting {start} is more than {MAX_ANNOUNCED_GAP_DAYS} days from "
            f"the tables' {expected}: a typing slip?"
        )


class IranLunarCalendar:
    """Lunar dates as Iran keeps them; ``announced`` maps (year, month) to the announced first day."""

    def __init__(self, announced: Mapping[tuple[int, int], date] | None = None) -> None:
        self._known: dict[int, date] = dict(observed_month_starts())
        for (year, month), start in (announced or {}).items():
            self._known[month_index(year, month)] = start

    def on(self, day: date) -> LunarDate | None:
        """``day``'s lunar date, or None outside the years the tables cover."""
        guess = umm_al_qura_index(day)
        if guess is None:
            return None
        for index in (guess - 1, guess, guess + 1, guess - 2, guess + 2):
            start, following = self.month_start(index), self.month_start(index + 1)
            if start is None or following is None or not start[0] <= day < following[0]:
                continue
            number = (day - start[0]).days + 1
            official = start[1] and (number < 30 or following[1])
            year, month = divmod(index, 12)
            return LunarDate(year, month + 1, number, "official" if official else "estimated")
        return None

    def month_start(self, index: int) -> tuple[date, bool] | None:
        """The first day of lunar month ``index`` and whether it is known (announced or observed)."""
        known = self._known.get(index)
        if known is not None:
            return known, True
        before = next((i for i in range(index - 1, index - SEARCH_MONTHS, -1) if i in self._known), None)
        after = next((i for i in range(index + 1, index + SEARCH_MONTHS) if i in self._known), None)
        if before is not None:
            lengths = self._lengths(before, after if after is not None else index + 1)
            if lengths is not None:
                return self._known[before] + timedelta(days=sum(lengths[: index - before])), False
        if after is not None:
            lengths = self._lengths(index, after)
            if lengths is not None:
                return self._known[after] - timedelta(days=sum(lengths)), False
        start = umm_al_qura_start(index)
        return None if start is None else (start + timedelta(days=1), False)

    def _lengths(self, first: int, last: int) -> list[int] | None:
        """Umm al-Qura's lengths of months ``first`` … ``last − 1``; when ``last`` is a known start,
        adjusted (each 29 or 30 days) so they end on it. None where the tables end."""
        starts = [umm_al_qura_start(i) for i in range(first, last + 1)]
        if any(start is None for start in starts):
            return None
        lengths = [(b - a).days for a, b in zip(starts, starts[1:], strict=False)]  # type: ignore[operator]
        if first in self._known and last in self._known:
            gap = (self._known[last] - self._known[first]).days - sum(lengths)
            # Lengthen (or shorten) the latest months first: the nearer the known end, the surer.
            for i in reversed(range(len(lengths))):
                if gap > 0 and lengths[i] == 29:
                    lengths[i], gap = 30, gap - 1
                elif gap < 0 and lengths[i] == 30:
                    lengths[i], gap = 29, gap + 1
            if gap != 0:
                return None  # the known starts disagree with any run of real months
        return lengths


@cache
def observed_month_starts() -> dict[int, date]:
    """Month starts fixed by the lunar holidays Iran observed in the years ``holidays`` confirms."""
    calendar = IranIslamicHolidays(calendar_delta_days=+1)
    starts: dict[int, date] = {}
    for method, (month, number) in FIXING_HOLIDAYS.items():
        for year in OBSERVED_YEARS:
            for observed in _confirmed(getattr(calendar, method)(year), year):
                index = _index_of(observed, month)
                if index is not None:
                    starts.setdefault(index, observed - timedelta(days=number - 1))
    return starts


def _confirmed(dates: Iterable[tuple[date, bool]], year: int) -> list[date]:
    # The package yields last year's dates too (a lunar year ends inside a Gregorian one).
    return [day for day, estimated in dates if not estimated and day.year == year]


def _index_of(observed: date, month: int) -> int | None:
    """The index of lunar ``month`` that ``observed`` (a day of it) falls in."""
    guess = umm_al_qura_index(observed)
    if guess is None:
        return None
    return next((i for i in (guess - 1, guess, guess + 1) if i % 12 == month - 1), None)
