"""The producer dashboard in headless Chromium: a producer opens it, the charts show data, a screenshot is kept."""

import datetime as dt
import random

import pytest

from generation.models import GenerationModel
from portal.models import Plate, Sequence, Shot
from tests.review.test_metrics import Story

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST_DAY = dt.date(2026, 3, 2)
DAYS = 14


def _shots(show) -> list[Shot]:
    shots = []
    for seq_code, shot_codes in (("sq010", ("sh010", "sh020", "sh030")), ("sq020", ("sh040", "sh050"))):
        sequence = Sequence.objects.create(show=show, code=seq_code)
        for code in shot_codes:
            shot = Shot.objects.create(sequence=sequence, code=code, first_frame=1001, last_frame=1048)
            Plate.objects.create(shot=shot, path_pattern=f"/plates/{code}.####.exr", first_frame=1001,
                                 last_frame=1048, display_window={"x": 0, "y": 0, "width": 2048, "height": 1080},
                                 data_window={"x": 0, "y": 0, "width": 2048, "height": 1080}, channels=["R", "G", "B"])
            shots.append(shot)
    return shots


def _two_weeks_of_requests(show, user) -> None:
    """Two weeks in which request → pick falls from most of a day to about an hour: the story producers want."""
    rng = random.Random(6)
    model = GenerationModel.objects.create(name="tiny-sky", kind="show_model", path="/m", status="approved")
    shots = _shots(show)
    tz = dt.UTC
    for day in range(DAYS):
        for n in range(rng.randint(1, 4)):
            shot = rng.choice(shots)
            created = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=day), dt.time(9 + 2 * n), tzinfo=tz)
            count = rng.choice((2, 4, 4, 8))
            story = Story(shot=shot, model=model, user=user, created=created,
                          variations=[("done", 20 + 30 * i, rng.uniform(60, 240)) for i in range(count)])
            to_pick = 3600 * (1 + (DAYS - day) * rng.uniform(0.5, 1.5))
            story.proxies(90, 120).picked(to_pick)
            if rng.random() < 0.25:
                story.signed("sent_back", to_pick + 1800).picked(to_pick + 3600)
            if rng.random() < 0.8:
                story.signed("approved", to_pick + 5400).released(to_pick + 6000)


def test_a_producer_reads_the_dashboard_at_a_glance(open_page, show, producer, compositor, screenshots):
    _two_weeks_of_requests(show, compositor)
    page = open_page("pete", "pete-pw")
    page.click("text=Dashboard")
    page.wait_for_url("**/shows/tst/dashboard/")
    end = FIRST_DAY + dt.timedelta(days=DAYS - 1)
    page.goto(f"/shows/tst/dashboard/?start={FIRST_DAY}&end={end}")
    assert page.locator("#metrics tr.total td").nth(1).inner_text() == "All shots"
    assert page.locator("#chart-trend circle.mark").count() == DAYS
    assert page.locator("#chart-trend polyline.line").count() == 1
    assert page.locator("#chart-1 rect.mark").count() == 5  # variations per lock, a bar per shot
    assert page.locator("#chart-2 rect.mark").count() == 5  # compute per shot
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
