"""Iteration metrics for producers: from request to release, per show, sequence and shot (selectors).

Every figure is about the requests *created* in the date range (a cohort): a request made on the last day
of the range and released a week later counts in that range, with its whole history. A request still
running counts as a request, but only towards the durations it has reached.

The database does the work, in a fixed number of queries: the requests in scope with the moment of their
first proxy frame (a correlated subquery that walks the event log's (request, seq) index), then one grouped
aggregate per related table (variations, picks, sign-offs with their releases), joined here by request id,
and the variations' queue waits. Moments come back as epoch seconds (see Epoch). Medians and p90s are taken
in Python from the per-request lists, because SQLite has no percentile_cont.
"""

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    FloatField,
    Func,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from generation.engine.task_kinds import TASKS
from generation.models import GenerationRequest, RequestEvent, Variation, VariationStatus
from portal.errors import PortalError
from portal.models import Shot, Show
from review.models import Pick, ReleaseStatus, SignOff, SignOffDecision

DEFAULT_DAYS = 30
# A range's days must exist on the calendar with room for the day after the end (an end of 9999-12-31 has none).
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(9998, 12, 31)
MAX_DAYS = 731  # the trend has a point per day


@dataclass(frozen=True)
class Scope:
    """A show, optionally narrowed to a sequence and a shot (by code), over whole days [start, end]."""

    show: Show
    start: dt.date
    end: dt.date
    sequence: str = ""
    shot: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start 00:00, the day after end 00:00) in the portal's time zone."""
        tz = timezone.get_current_timezone()
        first = dt.datetime.combine(self.start, dt.time.min, tzinfo=tz)
        return first, dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


@dataclass
class Figures:
    """One row of the dashboard's table: a shot, or the totals of the scope. Durations in seconds."""

    label: str
    sequence: str = ""
    requests: int = 0
    variations: int = 0
    locks: int = 0
    variations_per_lock: float | None = None
    proxy_median: float | None = None
    proxy_p90: float | None = None
    pick_median: float | None = None
    pick_p90: float | None = None
    signoff_median: float | None = None
    signoff_p90: float | None = None
    release_median: float | None = None
    release_p90: float | None = None
    queue_median: float | None = None
    queue_p90: float | None = None
    compute_seconds: float = 0.0
    releases: int = 0
    compute_per_release: float | None = None
    send_back_rate: float | None = None
    throughput_per_day: float = 0.0
    # Roto (a task whose element is a matte): each pass is a request; a correction pass redoes an earlier one
    # (iterated from it, or keeping its locked frames); key frames are the artist's, per released matte.
    roto_passes: int = 0
    roto_correction_passes: int = 0
    roto_elements: int = 0
    keyframes_per_roto_element: float | None = None
    roto_compute_seconds: float = 0.0


@dataclass
class TrendPoint:
    day: dt.date
    pick_median: float | None  # the median request → pick of the requests created that day


@dataclass
class ShowMetrics:
    scope: Scope
    totals: Figures
    shots: list[Figures] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)


class Epoch(Func):
    """A timestamp as seconds since 1970 (a float): differences are durations, and floats load fast.

    Django hands every fetched timestamp to a Python-level psycopg loader; at 30,000 of them that alone
    took most of a second, so the dashboard fetches its moments as numbers.
    """

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()
    # Both databases already return a float or None: skip Django's per-value float() (10,000s of calls).
    convert_value = staticmethod(Func._convert_value_noop)

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite's date functions keep milliseconds; round away julianday's floating-point noise below that.
        template = "round((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)"
        return super().as_sql(compiler, connection, template=template, **extra)


class Seconds(Epoch):
    """Seconds from the second timestamp to the first, as a float."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))::double precision"
    arg_joiner = " - "

    def as_sqlite(self, compiler, connection, **extra):
        return Func.as_sql(self, compiler, connection, arg_joiner=") - julianday(",
                           template="round((julianday(%(expressions)s)) * 86400.0, 3)", **extra)


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont and numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def scope_from_params(show: Show, params, *, today: dt.date | None = None) -> Scope:
    """A Scope from ?sequence=&shot=&start=&end= (ISO dates); by default the last 30 days."""
    today = today or timezone.localdate()
    try:
        end = dt.date.fromisoformat(params["end"]) if params.get("end") else today
        start = (dt.date.fromisoformat(params["start"]) if params.get("start")
                 else max(EARLIEST, end - dt.timedelta(days=DEFAULT_DAYS - 1)))
    except (ValueError, OverflowError) as exc:
        raise PortalError("start and end are dates, YYYY-MM-DD", code="bad_date") from exc
    if not (EARLIEST <= start and end <= LATEST):
        raise PortalError(f"start and end are dates from {EARLIEST} to {LATEST}", code="bad_date")
    if start > end:
        raise PortalError("start is after end", code="bad_range")
    if (end - start).days >= MAX_DAYS:
        raise PortalError(f"a range is at most {MAX_DAYS} days", code="bad_range")
    return Scope(show=show, start=start, end=end, sequence=params.get("sequence", "").strip(),
                 shot=params.get("shot", "").strip())


def show_metrics(scope: Scope) -> ShowMetrics:
    """Every figure of the dashboard for the scope, in six queries whatever the amount of data."""
    shots = scope_shots(scope)
    rows = _request_rows(scope)
    waits = _queue_waits(scope)
    by_shot: dict[int, list] = defaultdict(list)
    for row in rows:
        by_shot[row.shot_id].append(row)
    per_shot = [_figures(shot.code, by_shot.get(shot.pk, []), waits.get(shot.pk, []), scope.days,
                         sequence=shot.sequence.code) for shot in shots]
    every_wait = [w for shot_waits in waits.values() for w in shot_waits]
    totals = _figures("All shots", rows, every_wait, scope.days)
    return ShowMetrics(scope=scope, totals=totals, shots=per_shot, trend=_trend(scope, rows))


def scope_shots(scope: Scope) -> list[Shot]:
    shots = Shot.objects.filter(sequence__show=scope.show).select_related("sequence")
    if scope.sequence:
        shots = shots.filter(sequence__code=scope.sequence)
    if scope.shot:
        shots = shots.filter(code=scope.shot)
    return list(shots.order_by("sequence__code", "code"))


def _requests_in(scope: Scope) -> QuerySet[GenerationRequest]:
    first, after = scope.bounds()
    qs = GenerationRequest.objects.filter(shot__sequence__show=scope.show, created_at__gte=first,
                                          created_at__lt=after)
    if scope.sequence:
        qs = qs.filter(shot__sequence__code=scope.sequence)
    if scope.shot:
        qs = qs.filter(shot__code=scope.shot)
    return qs


@dataclass
class _Request:
    """What the dashboard needs of one request: its counts and when it first reached each milestone.

    Moments are seconds since the epoch (see Epoch); None: not reached (yet).
    """

    shot_id: int
    created_at: float
    first_proxy_at: float | None = None
    variations_done: int = 0
    gpu: float = 0.0
    first_pick_at: float | None = None
    approved_at: float | None = None
    signoffs: int = 0
    sent_back: int = 0
    released_at: float | None = None
    roto: bool = False  # a pass of a matte task
    correction: bool = False  # a roto pass that redoes an earlier one
    key_frames: int | None = None  # the artist's key frames, as the request recorded them


MATTE_TASKS = [task for task, info in TASKS.items() if info.element == "matte"]


def _request_rows(scope: Scope) -> list[_Request]:
    """The requests in scope, then one grouped aggregate per related table, joined here by request id.

    Grouped aggregates (hash joins over the scope) rather than a correlated subquery per request and table:
    with 10,000 variations that is tens of milliseconds instead of seconds in PostgreSQL.
    """
    in_scope = _requests_in(scope)
    # The first proxy by seq walks the (request, seq) index and stops at the first frame, however many
    # frames and progress events follow it.
    first_frame = (RequestEvent.objects.filter(request=OuterRef("pk"), type="variation.frame").order_by("seq")
                   .values("created_at")[:1])
    # A request's first event (seq 1) is its creation, which records a roto pass's key frames: one index lookup.
    created = RequestEvent.objects.filter(request=OuterRef("pk"), seq=1, type="request.created")
    rows = {pk: _Request(shot_id=shot_id, created_at=created_at, first_proxy_at=proxy_at, roto=task in MATTE_TASKS,
                         correction=task in MATTE_TASKS and (derived is not None or previous is not None),
                         key_frames=_count(keys))
            for pk, shot_id, created_at, proxy_at, task, derived, previous, keys in in_scope.order_by().annotate(
                created=Epoch("created_at"), proxy_at=Epoch(Subquery(first_frame, output_field=DateTimeField())),
                keys=Subquery(created.annotate(keys=KeyTextTransform("key_frames", "payload")).values("keys")[:1],
                              output_field=CharField()),
            ).values_list("pk", "shot_id", "created", "proxy_at", "task", "derived_from_id",
                          "params__previous_pattern", "keys")}
    if not rows:
        return []
    grouped = [
        ("request", Variation.objects.filter(request__in=in_scope), {
            "variations_done": Count("pk", filter=Q(status=VariationStatus.DONE)), "gpu": Sum("gpu_seconds")}),
        ("request", Pick.objects.filter(request__in=in_scope, variation__isnull=False),
         {"first_pick_at": Epoch(Min("created_at"))}),
        # A sign-off has at most one release, so joining it counts no sign-off twice.
        ("variation__request", SignOff.objects.filter(variation__request__in=in_scope), {
            "approved_at": Epoch(Min("created_at", filter=Q(decision=SignOffDecision.APPROVED))),
            "signoffs": Count("pk"), "sent_back": Count("pk", filter=Q(decision=SignOffDecision.SENT_BACK)),
            "released_at": Epoch(Min("release__released_at", filter=Q(release__status=ReleaseStatus.DONE)))}),
    ]
    for key, qs, aggregates in grouped:
        for values in qs.order_by().values(key).annotate(**aggregates):
            row = rows[values.pop(key)]
            for name, value in values.items():
                setattr(row, name, getattr(row, name) if value is None else value)
    return list(rows.values())


def _count(text) -> int | None:
    """A count recorded in an event's payload (text from the database), or None when absent or not a count."""
    return int(text) if isinstance(text, int | str) and str(text).isdigit() else None


def _queue_waits(scope: Scope) -> dict[int, list[float]]:
    """Seconds from each variation's request to the moment a worker started it, by shot."""
    started = (Variation.objects.filter(request__in=_requests_in(scope), started_at__isnull=False).order_by()
               .annotate(wait=Seconds("started_at", "request__created_at"))
               .values_list("request__shot_id", "wait"))
    waits: dict[int, list[float]] = defaultdict(list)
    for shot_id, wait in started:
        waits[shot_id].append(wait)
    return waits


def _span(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


def _spans(rows, later: str, earlier: str) -> list[float]:
    spans = (_span(getattr(row, later), getattr(row, earlier)) for row in rows)
    return [s for s in spans if s is not None]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _figures(label: str, rows: list, waits: list[float], days: int, *, sequence: str = "") -> Figures:
    proxy = _spans(rows, "first_proxy_at", "created_at")
    pick = _spans(rows, "first_pick_at", "created_at")
    # From the first pick, so the time lost to send-backs and re-picks shows up here.
    signoff = _spans(rows, "approved_at", "first_pick_at")
    release = _spans(rows, "released_at", "approved_at")
    released = [row for row in rows if row.released_at is not None]
    variations = sum(row.variations_done for row in rows)
    return Figures(
        label=label, sequence=sequence, requests=len(rows), variations=variations, locks=len(pick),
        variations_per_lock=_ratio(variations, len(pick)),
        proxy_median=percentile(proxy, 0.5), proxy_p90=percentile(proxy, 0.9),
        pick_median=percentile(pick, 0.5), pick_p90=percentile(pick, 0.9),
        signoff_median=percentile(signoff, 0.5), signoff_p90=percentile(signoff, 0.9),
        release_median=percentile(release, 0.5), release_p90=percentile(release, 0.9),
        queue_median=percentile(waits, 0.5), queue_p90=percentile(waits, 0.9),
        compute_seconds=sum(row.gpu for row in rows), releases=len(released),
        compute_per_release=_ratio(sum(row.gpu for row in released), len(released)),
        send_back_rate=_ratio(sum(row.sent_back for row in rows), sum(row.signoffs for row in rows)),
        throughput_per_day=len(released) / days,
        **_roto_figures(rows),
    )


def _roto_figures(rows: list) -> dict:
    passes = [row for row in rows if row.roto]
    elements = [row for row in passes if row.released_at is not None]
    keyed = [row.key_frames for row in elements if row.key_frames is not None]
    return {"roto_passes": len(passes), "roto_correction_passes": sum(row.correction for row in passes),
            "roto_elements": len(elements), "keyframes_per_roto_element": _ratio(sum(keyed), len(keyed)),
            "roto_compute_seconds": sum(row.gpu for row in passes)}


def _trend(scope: Scope, rows: list) -> list[TrendPoint]:
    tz = timezone.get_current_timezone()
    picks_by_day: dict[dt.date, list[float]] = defaultdict(list)
    for row in rows:
        if row.first_pick_at is not None:
            day = dt.datetime.fromtimestamp(row.created_at, tz).date()
            picks_by_day[day].append(row.first_pick_at - row.created_at)
    days = (scope.start + dt.timedelta(days=i) for i in range(scope.days))
    return [TrendPoint(day=day, pick_median=percentile(picks_by_day.get(day, []), 0.5)) for day in days]
