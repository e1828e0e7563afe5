"""Prayer times, computed here (no upstream): today and the coming days at the configured place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import Provider
from service.widgets.local_day import local_today
from service.widgets.prayer import MAX_DAYS, PrayerData, PrayerOptions, prayer_data

if TYPE_CHECKING:
    from providers.http import UpstreamSession


class PrayerTimesProvider(Provider):
    id = "prayer_times"
    widget = "prayer"
    attribution = "روش مؤسسه ژئوفیزیک دانشگاه تهران"

    async def fetch(self, http: UpstreamSession) -> PrayerData:
        options = self.config.widget_options
        if not isinstance(options, PrayerOptions):
            options = PrayerOptions()
        # "Today" on the engine's shared clock, so every replica agrees when the day turns.
        # A week of times costs about two milliseconds (bench/prayer_week.py): no need to leave
        # the event loop.
        return prayer_data(options, local_today(http.now(), options.zone), MAX_DAYS)
