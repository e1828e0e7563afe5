"""Persian digits, separators, Jalali dates in Tehran time, ages."""

from __future__ import annotations

from datetime import UTC, datetime

from service import persian


def test_digits_and_separators() -> None:
    assert persian.digits("2026") == "۲۰۲۶"
    assert persian.number(1864000) == "۱٬۸۶۴٬۰۰۰"
    assert persian.number(-0.32, 2) == "−۰٫۳۲"


def test_jalali_new_year_in_tehran_time() -> None:
    # 2026-03-20 20:31 UTC is 00:01 on 1 Farvardin 1405 in Tehran (UTC+03:30, no DST since 2022).
    moment = datetime(2026, 3, 20, 20, 31, tzinfo=UTC).timestamp()
    assert persian.jalali_datetime(moment) == "۱ فروردین ۱۴۰۵، ساعت ۰۰:۰۱"


def test_a_jalali_moment_begins_with_its_day_and_month() -> None:
    # The prices fragment prints an older trade's day as the first two words (no year, no time).
    moment = datetime(2026, 8, 15, 8, 19, tzinfo=UTC).timestamp()
    assert persian.jalali_datetime(moment).split(" ")[:2] == ["۲۴", "مرداد"]
    assert persian.jalali_day_month("1405-05-24") == "۲۴ مرداد"  # the same words for a day-only row


def test_summer_time_is_still_plus_three_thirty() -> None:
    moment = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
    assert persian.jalali_datetime(moment).endswith("ساعت ۱۵:۳۰")


def test_age_phrases() -> None:
    assert persian.age_phrase(10) == "لحظاتی پیش"
    assert persian.age_phrase(5 * 60 + 3) == "۵ دقیقه پیش"
    assert persian.age_phrase(3 * 3600) == "۳ ساعت پیش"
    assert persian.age_phrase(2 * 86400) == "۲ روز پیش"


def test_language_is_english_only_for_text_without_persian_letters() -> None:
    assert persian.language("Tiles © Esri — Source: Esri, Maxar") == "en"
    assert persian.language("داده‌های هواشناسی: Open-Meteo.com (CC BY 4.0)") == "fa"
    assert persian.language("منبع: tgju.org") == "fa"
    assert persian.language("۱۴۰۳ — 2024") == "fa"  # no Latin letter: nothing English to mark


def test_a_gregorian_day_reads_as_its_jalali_day_and_month():
    assert persian.gregorian_day_month("2026-11-23") == "۲ آذر"
    assert persian.gregorian_day_month("2026-03-21T10:15:00+03:30") == "۱ فروردین"


def test_latin_runs_keep_a_latin_name_and_its_licence_in_one_piece() -> None:
    assert persian.latin_runs("داده‌های هواشناسی: Open-Meteo.com (CC BY 4.0)") == [
        ("داده‌های هواشناسی: ", False),
        ("Open-Meteo.com (CC BY 4.0)", True),
    ]
    assert persian.latin_runs("منبع: tgju.org") == [("منبع: ", False), ("tgju.org", True)]
    assert persian.latin_runs("بدون نام لاتین") == [("بدون نام لاتین", False)]
    assert persian.latin_runs("(CC BY 4.0) پس از آن") == [("(CC BY 4.0)", True), (" پس از آن", False)]
