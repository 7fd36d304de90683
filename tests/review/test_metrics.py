"""The producer dashboard: every figure against values worked out by hand, its queries, CSV, API and access.

The story, in the portal's time zone, over 2–4 March 2026 (three days):
  A  sh010 (sq010), 2 Mar 09:00: 4 variations, proxy at 5 min, picked at 1 h, sent back at 1.5 h,
     re-picked at 2 h, approved at 2.5 h, released 10 min later.
  B  sh010, 3 Mar 09:00: 2 variations, picked at 30 min, approved 10 min later, release still writing.
  C  sh020 (sq010), 3 Mar 10:00: 2 variations, every one rejected: no lock.
  D  sh020, 4 Mar 12:00: still running: one variation started, two queued, one proxy frame so far.
  E  sh030 (sq020), 2 Mar 12:00: 1 variation, picked, approved and released within minutes.
  Outside the range: one request a second before 2 Mar, one at 00:00 on 5 Mar.
"""

import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generation.models import GenerationModel, GenerationRequest, RequestEvent, Variation
from portal.models import Plate, Sequence, Shot
from review.metrics import Figures, Scope, percentile, show_metrics
from review.models import Pick, Release, SignOff

pytestmark = pytest.mark.django_db

START, END = dt.date(2026, 3, 2), dt.date(2026, 3, 4)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second, tzinfo=timezone.get_current_timezone())


def later(moment: dt.datetime, seconds: float) -> dt.datetime:
    return moment + dt.timedelta(seconds=seconds)


@pytest.fixture
def shots(show) -> dict[str, Shot]:
    sq010, sq020 = (Sequence.objects.create(show=show, code=code) for code in ("sq010", "sq020"))
    found = {}
    for sequence, code in ((sq010, "sh010"), (sq010, "sh020"), (sq020, "sh030")):
        shot = Shot.objects.create(sequence=sequence, code=code, first_frame=1001, last_frame=1006)
        Plate.objects.create(shot=shot, path_pattern=f"/plates/{code}.####.exr", first_frame=1001, last_frame=1006,
                             display_window={"x": 0, "y": 0, "width": 320, "height": 180},
                             data_window={"x": 0, "y": 0, "width": 320, "height": 180}, channels=["R", "G", "B"])
        found[code] = shot
    return found


@pytest.fixture
def model(show) -> GenerationModel:
    model = GenerationModel.objects.create(name="tiny-sky", kind="show_model", path="/models/tiny", status="approved")
    model.approved_shows.add(show)
    return model


class Story:
    """Builds one request's history with explicit timestamps (auto_now_add fields are set by .update())."""

    def __init__(self, *, shot: Shot, model, user, created: dt.datetime, variations: list[tuple]):
        """`variations`: (status, seconds from the request to its start or None, gpu seconds or None)."""
        self.user, self.created, self.seq = user, created, 0
        self.request = GenerationRequest.objects.create(
            shot=shot, plate=shot.plates.first(), first_frame=1001, last_frame=1006, count=len(variations),
            model=model, requested_by=user, status="running")
        GenerationRequest.objects.filter(pk=self.request.pk).update(created_at=created)
        self.variations = Variation.objects.bulk_create(
            Variation(request=self.request, index=i, seed=i, status=status, gpu_seconds=gpu,
                      started_at=None if wait is None else later(created, wait))
            for i, (status, wait, gpu) in enumerate(variations))
        self.event("request.created", 0)
        self.pick = None

    def event(self, type: str, after: float) -> None:
        self.seq += 1
        event = RequestEvent.objects.create(request=self.request, seq=self.seq, type=type)
        RequestEvent.objects.filter(pk=event.pk).update(created_at=later(self.created, after))

    def proxies(self, *afters: float) -> "Story":
        for after in afters:
            self.event("variation.frame", after)
        return self

    def picked(self, after: float, *, reject_all: bool = False) -> "Story":
        self.pick = Pick.objects.create(request=self.request, variation=None if reject_all else self.variations[0],
                                        rejected_all=reject_all, picked_by=self.user)
        Pick.objects.filter(pk=self.pick.pk).update(created_at=later(self.created, after))
        self.event("pick.rejected_all" if reject_all else "pick.made", after)
        return self

    def signed(self, decision: str, after: float) -> "Story":
        self.signoff = SignOff.objects.create(pick=self.pick, variation=self.pick.variation, decision=decision,
                                              signed_by=self.user)
        SignOff.objects.filter(pk=self.signoff.pk).update(created_at=later(self.created, after))
        self.event(f"signoff.{decision}", after)
        return self

    def released(self, after: float | None) -> "Story":
        """Released `after` seconds from the request; None: the release is still being written."""
        shot = self.request.shot
        release = Release.objects.create(signoff=self.signoff, shot=shot, task="sky_replacement",
                                         version=Release.objects.filter(shot=shot).count() + 1)
        if after is not None:
            Release.objects.filter(pk=release.pk).update(status="done", released_at=later(self.created, after))
            self.event("release.done", after)
        return self


DONE = "done"


@pytest.fixture
def make(shots, model, compositor):
    def _make(shot: str, created: dt.datetime, variations: list[tuple]) -> Story:
        return Story(shot=shots[shot], model=model, user=compositor, created=created, variations=variations)

    return _make


@pytest.fixture
def story(make):
    a = make("sh010", at(2, 9), [(DONE, 60, 100), (DONE, 60, 100), (DONE, 120, 100), (DONE, 120, 100)])
    a.proxies(300, 400).picked(3600).signed("sent_back", 5400).picked(7200).signed("approved", 9000).released(9600)
    b = make("sh010", at(3, 9), [(DONE, 30, 50), (DONE, 30, 50)])
    b.proxies(200).picked(1800).signed("approved", 2400).released(None)
    make("sh020", at(3, 10), [(DONE, 600, 30), (DONE, 600, 30)]).proxies(900).picked(1000, reject_all=True)
    make("sh020", at(4, 12), [("running", 100, None), ("queued", None, None), ("queued", None, None)]).proxies(150)
    e = make("sh030", at(2, 12), [(DONE, 10, 20)])
    e.proxies(50).picked(100).signed("approved", 200).released(260)
    # Outside the range, with figures that would show if they leaked in.
    make("sh010", later(at(2, 0), -1), [(DONE, 5, 9999)]).proxies(5).picked(5)
    make("sh010", at(5, 0), [(DONE, 5, 9999)]).proxies(5).picked(5)


def scope(show, **narrow) -> Scope:
    return Scope(show=show, start=narrow.pop("start", START), end=narrow.pop("end", END), **narrow)


EXPECTED_TOTALS = Figures(
    label="All shots", requests=5, variations=9, locks=3, variations_per_lock=3.0,
    proxy_median=200, proxy_p90=660,  # [50, 150, 200, 300, 900]
    pick_median=1800, pick_p90=3240,  # [100, 1800, 3600]
    signoff_median=600, signoff_p90=4440,  # [100, 600, 5400]: A's runs from its first pick
    release_median=330, release_p90=546,  # [60, 600]
    queue_median=80, queue_p90=600,  # [10, 30, 30, 60, 60, 100, 120, 120, 600, 600]
    compute_seconds=580, releases=2, compute_per_release=210,  # (400 + 20) / 2
    send_back_rate=0.25, throughput_per_day=2 / 3)

EXPECTED_SHOTS = [
    Figures(label="sh010", sequence="sq010", requests=2, variations=6, locks=2, variations_per_lock=3.0,
            proxy_median=250, proxy_p90=290, pick_median=2700, pick_p90=3420, signoff_median=3000,
            signoff_p90=4920, release_median=600, release_p90=600, queue_median=60, queue_p90=120,
            compute_seconds=500, releases=1, compute_per_release=400, send_back_rate=1 / 3,
            throughput_per_day=1 / 3),
    Figures(label="sh020", sequence="sq010", requests=2, variations=2, locks=0, variations_per_lock=None,
            proxy_median=525, proxy_p90=825, queue_median=600, queue_p90=600, compute_seconds=60),
    Figures(label="sh030", sequence="sq020", requests=1, variations=1, locks=1, variations_per_lock=1.0,
            proxy_median=50, proxy_p90=50, pick_median=100, pick_p90=100, signoff_median=100, signoff_p90=100,
            release_median=60, release_p90=60, queue_median=10, queue_p90=10, compute_seconds=20, releases=1,
            compute_per_release=20, send_back_rate=0.0, throughput_per_day=1 / 3),
]


def assert_figures(actual: Figures, expected: Figures) -> None:
    """Equal to the millisecond: SQLite's date functions keep no finer time."""
    for name, value in vars(expected).items():
        assert getattr(actual, name) == pytest.approx(value, abs=1e-3), name


def test_percentile_interpolates_between_ranks_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([50, 150, 200, 300, 900], 0.9) == pytest.approx(660)
    assert percentile([1, 2, 3, 4], 0.5) == 2.5


def test_every_figure_of_the_show_matches_the_hand_computed_values(show, story):
    metrics = show_metrics(scope(show))
    assert_figures(metrics.totals, EXPECTED_TOTALS)
    assert [s.label for s in metrics.shots] == ["sh010", "sh020", "sh030"]
    for actual, expected in zip(metrics.shots, EXPECTED_SHOTS, strict=True):
        assert_figures(actual, expected)


def test_a_running_request_counts_as_a_request_but_only_towards_what_it_reached(show, story):
    running = scope(show, start=END, end=END)  # only D, created on 4 March, is still running
    totals = show_metrics(running).totals
    assert_figures(totals, Figures(label="All shots", requests=1, proxy_median=150, proxy_p90=150, queue_median=100,
                                   queue_p90=100))


def test_the_trend_is_the_median_request_to_pick_of_each_days_requests(show, story):
    trend = show_metrics(scope(show)).trend
    assert [p.day for p in trend] == [START, dt.date(2026, 3, 3), END]
    assert [p.pick_median for p in trend] == [pytest.approx(1850, abs=1e-3), pytest.approx(1800, abs=1e-3), None]


def test_a_sequence_or_a_shot_narrows_every_figure(show, story):
    sq010 = show_metrics(scope(show, sequence="sq010"))
    assert [s.label for s in sq010.shots] == ["sh010", "sh020"]
    assert (sq010.totals.requests, sq010.totals.variations, sq010.totals.locks) == (4, 8, 2)
    sh030 = show_metrics(scope(show, shot="sh030")).totals
    assert_figures(sh030, Figures(**{**vars(EXPECTED_SHOTS[2]), "label": "All shots", "sequence": ""}))


def test_an_empty_range_has_zero_counts_and_no_durations(show, story):
    metrics = show_metrics(scope(show, start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 7)))
    assert_figures(metrics.totals, Figures(label="All shots"))
    assert [s.requests for s in metrics.shots] == [0, 0, 0]
    assert [p.pick_median for p in metrics.trend] == [None] * 7


# The pages, the CSV and the API.

QUERY = "?start=2026-03-02&end=2026-03-04"


def test_a_producer_sees_the_dashboard_with_its_charts(client, producer, story):
    client.force_login(producer)
    page = client.get(f"/shows/tst/dashboard/{QUERY}").content.decode()
    assert page.count('<circle class="mark"') == 2  # the trend: 2 and 3 March
    assert page.count('<rect class="mark"') == 2 + 3  # variations per lock (sh020 has no lock), compute per shot
    assert "Dashboard" in client.get("/").content.decode()


def test_an_outsider_gets_404_from_the_dashboard_the_csv_and_the_api(client, outsider, story):
    client.force_login(outsider)
    for url in ("/shows/tst/dashboard/", "/shows/tst/dashboard.csv", "/api/shows/tst/metrics/"):
        assert client.get(url).status_code == 404, url
    assert client.get("/shows/nope/dashboard/").status_code == 404


def test_a_bad_date_is_refused(client, producer, story):
    client.force_login(producer)
    assert client.get("/shows/tst/dashboard/?start=yesterday").status_code == 400
    assert client.get("/api/shows/tst/metrics/?start=2026-03-05&end=2026-03-01").status_code == 400


def _table(page: str) -> list[list[str]]:
    rows = re.findall(r"<tr data-row[^>]*>(.*?)</tr>", page, re.S)
    return [[value for value in re.findall(r'data-value="([^"]*)"', row)] for row in rows]


def test_the_csv_matches_the_table(client, producer, story):
    client.force_login(producer)
    page = client.get(f"/shows/tst/dashboard/{QUERY}").content.decode()
    response = client.get(f"/shows/tst/dashboard.csv{QUERY}")
    assert response["Content-Type"].startswith("text/csv")
    header, *rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert header[:3] == ["Sequence", "Shot", "Requests"]
    assert rows == _table(page)
    assert rows[-1][:6] == ["", "All shots", "5", "9", "3", "3.000"]
    assert rows[0][header.index("Request → pick, median (s)")] == "2700.0"


def test_the_api_returns_the_same_figures(client, producer, show, story):
    client.force_login(producer)
    body = client.get(f"/api/shows/tst/metrics/{QUERY}").json()
    assert (body["show"], body["start"], body["end"]) == ("tst", "2026-03-02", "2026-03-04")
    metrics = show_metrics(scope(show))
    assert body["totals"] == pytest.approx(vars(metrics.totals), abs=1e-3)
    assert [s["label"] for s in body["shots"]] == ["sh010", "sh020", "sh030"]
    assert body["shots"][0] == pytest.approx(vars(EXPECTED_SHOTS[0]), abs=1e-3)
    assert body["trend"][0] == {"day": "2026-03-02", "pick_median": pytest.approx(1850, abs=1e-3)}


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_dashboards_queries_do_not_grow_with_the_data(client, producer, make, django_assert_max_num_queries):
    client.force_login(producer)
    for i in range(2):
        make("sh010", at(3, 14, i), [(DONE, 5, 1)]).proxies(10).picked(20).signed("approved", 30).released(40)
    few = {url: _queries(client, url + QUERY) for url in ("/shows/tst/dashboard/", "/shows/tst/dashboard.csv",
                                                          "/api/shows/tst/metrics/")}
    for i in range(18):
        make("sh020", at(4, 14, i), [(DONE, 5, 1), (DONE, 6, 1)]).proxies(10).picked(20).signed("approved", 30)
    for url, count in few.items():
        assert _queries(client, url + QUERY) == count, url
    # session, user, show, role, shots, 5 for the figures, the filter's choices
    with django_assert_max_num_queries(11):
        client.get("/shows/tst/dashboard/" + QUERY)


def _roto(story: Story, key_frames: int, **changes) -> Story:
    """The story's request made a roto pass with ``key_frames`` key frames, as request_create records them."""
    GenerationRequest.objects.filter(pk=story.request.pk).update(task="roto", **changes)
    RequestEvent.objects.filter(request=story.request, seq=1).update(payload={"key_frames": key_frames})
    return story


def test_roto_figures_count_passes_corrections_key_frames_per_released_matte_and_compute(client, producer, show,
                                                                                        story, make):
    """Three roto passes beside the story: a first pass on sh010 (2 keys, never released), its correction
    iterated from it (3 keys, released), and a correction on sh030 that keeps locked frames of an earlier pass
    (5 keys, released). Key frames per released roto matte: (3 + 5) / 2."""
    first = _roto(make("sh010", at(2, 15), [(DONE, 5, 40)]).proxies(60), 2)
    fixed = make("sh010", at(3, 15), [(DONE, 5, 60)]).proxies(60)
    _roto(fixed, 3, derived_from=first.variations[0]).picked(100).signed("approved", 200).released(300)
    locked = make("sh030", at(4, 9), [(DONE, 5, 30)]).proxies(60)
    _roto(locked, 5, params={"previous_pattern": "/work/tst/roto.####.exr", "locked": [1002]})
    locked.picked(100).signed("approved", 200).released(300)

    metrics = show_metrics(scope(show))
    totals = metrics.totals
    assert (totals.roto_passes, totals.roto_correction_passes, totals.roto_elements) == (3, 2, 2)
    assert totals.keyframes_per_roto_element == pytest.approx(4.0)
    assert totals.roto_compute_seconds == pytest.approx(130)
    assert totals.compute_seconds == pytest.approx(580 + 130)  # roto's compute is part of the show's too
    sh010, sh020, sh030 = metrics.shots
    assert (sh010.roto_passes, sh010.roto_correction_passes, sh010.roto_elements) == (2, 1, 1)
    assert sh010.keyframes_per_roto_element == pytest.approx(3.0) and sh010.roto_compute_seconds == pytest.approx(100)
    assert (sh020.roto_passes, sh020.keyframes_per_roto_element, sh020.roto_compute_seconds) == (0, None, 0)
    assert sh030.keyframes_per_roto_element == pytest.approx(5.0)

    client.force_login(producer)
    header, *rows = list(csv.reader(io.StringIO(client.get(f"/shows/tst/dashboard.csv{QUERY}").content.decode())))
    column = header.index("Key frames per roto matte")
    assert [row[column] for row in rows] == ["3.000", "", "5.000", "4.000"]
    api = client.get(f"/api/shows/tst/metrics/{QUERY}").json()["totals"]
    assert (api["roto_passes"], api["roto_correction_passes"], api["keyframes_per_roto_element"]) == (3, 2, 4.0)
