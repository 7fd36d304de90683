"""Dashboard server time in PostgreSQL for a show with 100 variations and for one with 10,000.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python -m tests.bench.metrics
→ one JSON object (last line): dashboard_ms_100, dashboard_ms_10k (median of 7 runs of the dashboard view:
role check, selector, charts and template; goal ≤ 300 ms), queries_100, queries_10k.

The bench makes its own scratch database (pt_bench_metrics) on DATABASE_URL's server and drops it after.
"""

import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg

SCRATCH = "pt_bench_metrics"
RUNS = 7
VARIATIONS_PER_REQUEST = 4
FRAMES_STREAMED = 3  # proxy frames per variation in the event log (a real 96-frame request has more)


def _scratch_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit("DATABASE_URL must name a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test")
    return urlunsplit(parts._replace(path=f"/{SCRATCH}"))


def _admin(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextlib.contextmanager
def explicit_timestamps(*models):
    """Let bulk_create keep the created_at values we give (auto_now_add would stamp them all `now`)."""
    fields = [m._meta.get_field("created_at") for m in models]
    for f in fields:
        f.auto_now_add = False
    try:
        yield
    finally:
        for f in fields:
            f.auto_now_add = True


def build_show(code: str, variations: int, *, end: dt.datetime, seed: int = 1):
    """A show of 4 sequences × 5 shots whose requests spread over the 30 days before `end`."""
    from django.contrib.auth import get_user_model

    from generation.models import GenerationModel, GenerationRequest, RequestEvent
    from portal.models import Membership, Plate, Sequence, Shot, Show
    from review.models import Pick, Release, SignOff

    rng = random.Random(seed)
    show = Show.objects.create(code=code, name=f"Bench {code}")
    user = get_user_model().objects.create(username=f"{code}-producer")
    Membership.objects.create(user=user, show=show, role="producer")
    model = GenerationModel.objects.create(name=f"{code}-model", kind="show_model", path="/m", status="approved")
    shots = []
    for s in range(4):
        sequence = Sequence.objects.create(show=show, code=f"sq{s + 1:02d}0")
        for n in range(5):
            shot = Shot.objects.create(sequence=sequence, code=f"sh{s + 1}{n + 1}0", first_frame=1001,
                                       last_frame=1096)
            Plate.objects.create(shot=shot, path_pattern="/p.####.exr", first_frame=1001, last_frame=1096,
                                 display_window={}, data_window={}, channels=[])
            shots.append(shot)
    plates = {p.shot_id: p for p in Plate.objects.filter(shot__in=shots)}
    with explicit_timestamps(GenerationRequest, RequestEvent, Pick, SignOff, Release):
        requests = GenerationRequest.objects.bulk_create(
            GenerationRequest(shot=shot, plate=plates[shot.pk], first_frame=1001, last_frame=1096,
                              count=VARIATIONS_PER_REQUEST, model=model, requested_by=user, status="released",
                              created_at=end - dt.timedelta(minutes=rng.uniform(60, 30 * 24 * 60)))
            for shot in (rng.choice(shots) for _ in range(variations // VARIATIONS_PER_REQUEST)))
        _history(requests, user, rng)
    return show, user


def _history(requests, user, rng) -> None:
    """Variations, the event log, a pick, sign-offs (a quarter sent back first) and a release per request."""
    from generation.models import RequestEvent, Variation
    from review.models import Pick, Release, SignOff

    def after(request, minutes: float) -> dt.datetime:
        return request.created_at + dt.timedelta(minutes=minutes)

    variations = Variation.objects.bulk_create(
        Variation(request=r, index=i, seed=i, status="done", gpu_seconds=rng.uniform(60, 300),
                  started_at=after(r, rng.uniform(0.1, 5)), finished_at=after(r, 10))
        for r in requests for i in range(VARIATIONS_PER_REQUEST))
    events = []
    for r in requests:
        types = (["request.created"] + ["variation.started"] * VARIATIONS_PER_REQUEST
                 + ["variation.frame"] * (FRAMES_STREAMED * VARIATIONS_PER_REQUEST)
                 + ["variation.done"] * VARIATIONS_PER_REQUEST + ["pick.made", "signoff.approved", "release.done"])
        events += [RequestEvent(request=r, seq=seq, type=t, created_at=after(r, seq)) for seq, t in
                   enumerate(types, start=1)]
    RequestEvent.objects.bulk_create(events, batch_size=5000)
    first_of = {v.request_id: v for v in variations if v.index == 0}
    picks = Pick.objects.bulk_create(
        Pick(request=r, variation=first_of[r.pk], picked_by=user, created_at=after(r, rng.uniform(30, 600)))
        for r in requests)
    signoffs = SignOff.objects.bulk_create(
        SignOff(pick=p, variation=p.variation, decision=decision, signed_by=user,
                created_at=p.created_at + dt.timedelta(minutes=minutes))
        for p in picks for decision, minutes in ([("sent_back", 20)] if rng.random() < 0.25 else [])
        + [("approved", 40)])
    versions: dict[int, int] = {}
    releases = []
    for s in signoffs:
        if s.decision == "approved":
            shot_id = s.pick.request.shot_id
            versions[shot_id] = versions.get(shot_id, 0) + 1
            releases.append(Release(signoff=s, shot_id=shot_id, task="sky_replacement", version=versions[shot_id],
                                    status="done", created_at=s.created_at,
                                    released_at=s.created_at + dt.timedelta(minutes=rng.uniform(2, 15))))
    Release.objects.bulk_create(releases, batch_size=5000)


def time_dashboard(show, user, *, start: dt.date, end: dt.date) -> tuple[float, int]:
    """Median milliseconds of the dashboard view over RUNS runs (after one warm-up), and its query count."""
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from review.dashboard import dashboard

    def once():
        request = RequestFactory().get(f"/shows/{show.code}/dashboard/", {"start": str(start), "end": str(end)})
        request.user = user
        response = dashboard(request, show.code)
        assert response.status_code == 200 and b'class="mark"' in response.content
        return response

    once()
    with CaptureQueriesContext(connection) as queries:
        once()
    timings = []
    for _ in range(RUNS):
        began = time.perf_counter()
        once()
        timings.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(timings), 1), len(queries)


def main() -> None:
    server = os.environ.get("DATABASE_URL", "")
    if not server:
        sys.exit("set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test")
    scratch = _scratch_url(server)
    _admin(server, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    _admin(server, f"CREATE DATABASE {SCRATCH}")
    try:
        _setup_django(scratch)
        from django.db import connection

        end = dt.datetime.now(dt.UTC)
        start_day, end_day = (end - dt.timedelta(days=31)).date(), end.date()
        result = {}
        for key, count in (("100", 100), ("10k", 10_000)):
            show, user = build_show(f"bench{key}", count, end=end)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            ms, queries = time_dashboard(show, user, start=start_day, end=end_day)
            result[f"dashboard_ms_{key}"], result[f"queries_{key}"] = ms, queries
        from django.db import connections

        connections.close_all()
    finally:
        _admin(server, f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
