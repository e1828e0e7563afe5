"""Iran's official holidays on a day: the solar ones on the Jalali calendar, the lunar ones on Iran's
own lunar calendar (``service.iran_lunar``), with their Persian names from the ``holidays`` package.

The solar holidays (Nowruz, 12 and 13 Farvardin, 14 and 15 Khordad, 22 Bahman, 29 Esfand, …) and
one-off public holidays come from ``holidays.Iran`` as they are. Its lunar holidays are not taken
by its dates but by the lunar date this service shows, so the box never says "Ashura" beside
"9 Muharram", and an operator's announced month start moves both together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from holidays import HolidayBase
from holidays.countries.iran import Iran, IranIslamicHolidays

from service import persian
from service.iran_lunar import IranLunarCalendar, LunarDate, observed_month_starts

#: Each lunar holiday by the ``holidays`` package's method for its dates, the days it adds to them
#: (Eid al-Fitr's second day), and its day of Iran's lunar calendar: (month, day), or (month, 0)
#: for the month's last day (Imam Reza's martyrdom at the end of Safar, 29 or 30 Safar).
LUNAR_HOLIDAYS: tuple[tuple[str, int, tuple[int, int]], ...] = (
    ("tasua_dates", 0, (1, 9)),
    ("ashura_dates", 0, (1, 10)),
    ("arbaeen_dates", 0, (2, 20)),
    ("prophet_death_dates", 0, (2, 28)),
    ("ali_al_rida_death_dates", 0, (2, 0)),
    ("hasan_al_askari_death_dates", 0, (3, 8)),
    ("sadiq_birthday_dates", 0, (3, 17)),
    ("fatima_death_dates", 0, (6, 3)),
    ("ali_birthday_dates", 0, (7, 13)),
    ("isra_and_miraj_dates", 0, (7, 27)),
    ("imam_mahdi_birthday_dates", 0, (8, 15)),
    ("ali_death_dates", 0, (9, 21)),
    ("eid_al_fitr_dates", 0, (10, 1)),
    ("eid_al_fitr_dates", 1, (10, 2)),
    ("sadiq_death_dates", 0, (10, 25)),
    ("eid_al_adha_dates", 0, (12, 10)),
    ("eid_al_ghadir_dates", 0, (12, 18)),
)
#: Years in which the package's names are read (any it confirms will do).
NAME_YEARS = range(2026, 2000, -1)


@dataclass(frozen=True)
class OfficialHoliday:
    name: str
    #: A lunar holiday on an estimated lunar date (no announcement or observation fixes it yet).
    estimated: bool = False


def official_holidays(
    day: date, lunar: LunarDate | None, calendar: IranLunarCalendar
) -> list[OfficialHoliday]:
    """Iran's official holidays falling on ``day`` (whose lunar date is ``lunar``)."""
    lunar_names = set(_lunar_names().values())
    found = [
        OfficialHoliday(_tidy(name)) for name in _year(day.year).get_list(day) if name not in lunar_names
    ]
    if lunar is None:
        return found
    for (month, number), name in _lunar_names().items():
        if month != lunar.month:
            continue
        if number == lunar.day or (number == 0 and _is_last_day(day, lunar, calendar)):
            found.append(OfficialHoliday(_tidy(name), estimated=lunar.source == "estimated"))
    return found


def warm_up() -> None:
    """Read the package's tables now (some milliseconds), before the event loop serves anyone."""
    observed_month_starts()
    _lunar_names()


def _is_last_day(day: date, lunar: LunarDate, calendar: IranLunarCalendar) -> bool:
    following = calendar.on(day + timedelta(days=1))
    return following is not None and following.month != lunar.month


@cache
def _year(year: int) -> HolidayBase:
    return Iran(years=year, language="fa_IR", islamic_show_estimated=False)


@cache
def _lunar_names() -> dict[tuple[int, int], str]:
    """The package's Persian name of each lunar holiday, read where it falls alone on its date."""
    dates = IranIslamicHolidays(calendar_delta_days=+1)
    names: dict[tuple[int, int], str] = {}
    for method, shift, when in LUNAR_HOLIDAYS:
        for year in NAME_YEARS:
            days = [d + timedelta(days=shift) for d, _ in getattr(dates, method)(year) if d.year == year]
            listed = [_year(year).get_list(d) for d in days]
            alone = [names_on[0] for names_on in listed if len(names_on) == 1]
            if alone:
                names[when] = alone[0]
                break
        else:  # pragma: no cover - the package always has a year with the day alone
            raise LookupError(f"holidays has no name for {method}")
    return names


def _tidy(name: str) -> str:
    """The package's name as the box prints it: Persian digits, a space after the Persian semicolon."""
    return persian.digits(name.replace("؛", "؛ ").replace("؛  ", "؛ "))
