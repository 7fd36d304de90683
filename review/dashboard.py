"""The producer dashboard: the metrics page with its server-side SVG charts, its CSV, and the metrics API.

Every member of a show sees it (producers included); outsiders get 404, like every page of a show.
"""

import csv
import math

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.models import Shot
from portal.pages import page
from portal.selectors import show_for_member
from review.metrics import Figures, ShowMetrics, TrendPoint, scope_from_params, show_metrics

# The table, its CSV and its headers: (Figures attribute, column header, kind of value).
COLUMNS = [
    ("sequence", "Sequence", "text"),
    ("label", "Shot", "text"),
    ("requests", "Requests", "count"),
    ("variations", "Variations", "count"),
    ("locks", "Locks", "count"),
    ("variations_per_lock", "Variations per lock", "ratio"),
    ("proxy_median", "Request → first proxy, median", "seconds"),
    ("proxy_p90", "Request → first proxy, p90", "seconds"),
    ("pick_median", "Request → pick, median", "seconds"),
    ("pick_p90", "Request → pick, p90", "seconds"),
    ("signoff_median", "Pick → sign-off, median", "seconds"),
    ("signoff_p90", "Pick → sign-off, p90", "seconds"),
    ("release_median", "Sign-off → release, median", "seconds"),
    ("release_p90", "Sign-off → release, p90", "seconds"),
    ("queue_median", "Queue wait, median", "seconds"),
    ("queue_p90", "Queue wait, p90", "seconds"),
    ("compute_seconds", "Compute", "seconds"),
    ("releases", "Released elements", "count"),
    ("compute_per_release", "Compute per released element", "seconds"),
    ("send_back_rate", "Send-back rate", "rate"),
    ("throughput_per_day", "Released per day", "ratio"),
    ("roto_passes", "Roto passes", "count"),
    ("roto_correction_passes", "Roto correction passes", "count"),
    ("roto_elements", "Roto mattes released", "count"),
    ("keyframes_per_roto_element", "Key frames per roto matte", "ratio"),
    ("roto_compute_seconds", "Roto compute", "seconds"),
]


def _metrics(request, show_code: str) -> ShowMetrics:
    show = show_for_member(request.user, show_code)[0]
    return show_metrics(scope_from_params(show, request.GET))


# Values: raw in the CSV (seconds, ratios), readable on the page; each cell carries both.

def csv_value(kind: str, value) -> str:
    if value is None:
        return ""
    if kind in ("text", "count"):
        return str(value)
    return f"{value:.1f}" if kind == "seconds" else f"{value:.3f}"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def shown_value(kind: str, value) -> str:
    if value is None:
        return "—"
    if kind == "seconds":
        return human_duration(value)
    if kind == "rate":
        return f"{value * 100:.0f} %"
    if kind == "ratio":
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def table_rows(metrics: ShowMetrics) -> list[list[dict]]:
    """The shots, then the totals: every cell as {"value": its CSV text, "text": what the page shows}."""
    return [[{"value": csv_value(kind, getattr(figures, key)), "text": shown_value(kind, getattr(figures, key))}
             for key, _, kind in COLUMNS] for figures in [*metrics.shots, metrics.totals]]


# Charts: plain SVG geometry computed here; the template only draws it.

def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value`: a round top for an axis."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def duration_unit(largest_seconds: float) -> tuple[float, str]:
    if largest_seconds >= 2 * 3600:
        return 3600.0, "h"
    if largest_seconds >= 120:
        return 60.0, "min"
    return 1.0, "s"


def bar_chart(title: str, items: list[tuple[str, float | None]], *, seconds: bool = False) -> dict:
    """Horizontal bars, one per labelled value; a None value is written out as "—" with no bar."""
    present = [v for _, v in items if v is not None]
    divisor, unit = duration_unit(max(present, default=0)) if seconds else (1.0, "")
    top = _nice_ceiling(max(present, default=0) / divisor)
    label_w, bar_w, row_h = 110, 330, 24
    bars = []
    for i, (label, value) in enumerate(items):
        scaled = None if value is None else value / divisor
        text = "—" if scaled is None else f"{scaled:.1f}".rstrip("0").rstrip(".") + (f" {unit}" if unit else "")
        w = 0 if scaled is None else max(1.0, round(bar_w * scaled / top, 1))
        bars.append({"label": label, "text": text, "y": 8 + i * row_h, "text_y": 8 + i * row_h + 12, "w": w,
                     "value_x": label_w + w + 6, "has_value": scaled is not None})
    return {"title": title, "width": label_w + bar_w + 80, "height": 16 + len(items) * row_h, "bars": bars,
            "bar_x": label_w, "empty": not present}


def trend_chart(points: list[TrendPoint]) -> dict:
    """Median request → pick of each day's requests: a line through the days that have one."""
    width, height, left, right, top, bottom = 560, 220, 56, 16, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    present = [p.pick_median for p in points if p.pick_median is not None]
    divisor, unit = duration_unit(max(present, default=0))
    ceiling = _nice_ceiling(max(present, default=0) / divisor)
    step = plot_w / max(len(points) - 1, 1)
    marks = []
    for i, point in enumerate(points):
        if point.pick_median is not None:
            value = point.pick_median / divisor
            marks.append({"x": round(left + i * step, 1), "y": round(top + plot_h * (1 - value / ceiling), 1),
                          "title": f"{point.day:%a %d %b}: {value:.1f} {unit}"})
    ticks = [{"y": round(top + plot_h * (1 - f), 1), "text": f"{ceiling * f:g} {unit}"} for f in (0, 0.5, 1)]
    days = [(0, points[0].day), (len(points) - 1, points[-1].day)] if points else []
    return {"width": width, "height": height, "left": left, "right": width - right, "top": top,
            "mid": left + plot_w / 2, "mid_y": top + plot_h / 2, "marks": marks, "ticks": ticks, "empty": not marks,
            "line": " ".join(f"{m['x']},{m['y']}" for m in marks),
            "days": [{"x": round(left + i * step, 1), "text": f"{day:%d %b}", "anchor": anchor}
                     for (i, day), anchor in zip(days, ("start", "end"), strict=False)]}


def _charts(metrics: ShowMetrics) -> dict:
    shots = metrics.shots
    return {
        "trend": trend_chart(metrics.trend),
        "bars": [
            bar_chart("Variations per lock, per shot", [(s.label, s.variations_per_lock) for s in shots]),
            bar_chart("Compute per shot", [(s.label, s.compute_seconds or None) for s in shots], seconds=True),
        ],
    }


def _summary(totals: Figures) -> list[tuple[str, str]]:
    return [
        ("Requests", str(totals.requests)),
        ("Variations", str(totals.variations)),
        ("Variations per lock", shown_value("ratio", totals.variations_per_lock)),
        ("Request → pick, median", human_duration(totals.pick_median)),
        ("Request → first proxy, median", human_duration(totals.proxy_median)),
        ("Released elements", str(totals.releases)),
        ("Compute per released element", human_duration(totals.compute_per_release)),
        ("Send-back rate", shown_value("rate", totals.send_back_rate)),
    ]


@page
def dashboard(request: HttpRequest, show_code: str) -> HttpResponse:
    metrics = _metrics(request, show_code)
    show = metrics.scope.show
    choices = Shot.objects.filter(sequence__show=show).order_by("sequence__code", "code").values_list(
        "sequence__code", "code")
    return render(request, "review/dashboard.html", {
        "show": show, "scope": metrics.scope, "totals": metrics.totals, "summary": _summary(metrics.totals),
        "headers": [header for _, header, _ in COLUMNS], "rows": table_rows(metrics), "charts": _charts(metrics),
        "sequences": sorted({seq for seq, _ in choices}), "shots": sorted({code for _, code in choices}),
        "query": request.GET.urlencode()})


@page
def dashboard_csv(request: HttpRequest, show_code: str) -> HttpResponse:
    metrics = _metrics(request, show_code)
    scope = metrics.scope
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{scope.show.code}-metrics-{scope.start}-{scope.end}.csv"')
    writer = csv.writer(response)
    writer.writerow([header + (" (s)" if kind == "seconds" else "") for _, header, kind in COLUMNS])
    for row in table_rows(metrics):
        writer.writerow([cell["value"] for cell in row])
    return response


class FiguresSerializer(serializers.Serializer):
    sequence = serializers.CharField()
    label = serializers.CharField(help_text="The shot's code, or 'All shots' for the totals")
    requests = serializers.IntegerField()
    variations = serializers.IntegerField(help_text="Variations generated (finished)")
    locks = serializers.IntegerField(help_text="Requests with a variation picked")
    variations_per_lock = serializers.FloatField(allow_null=True)
    proxy_median = serializers.FloatField(allow_null=True, help_text="Seconds, request → first proxy frame")
    proxy_p90 = serializers.FloatField(allow_null=True)
    pick_median = serializers.FloatField(allow_null=True, help_text="Seconds, request → first pick")
    pick_p90 = serializers.FloatField(allow_null=True)
    signoff_median = serializers.FloatField(allow_null=True, help_text="Seconds, first pick → approved sign-off")
    signoff_p90 = serializers.FloatField(allow_null=True)
    release_median = serializers.FloatField(allow_null=True, help_text="Seconds, sign-off → released")
    release_p90 = serializers.FloatField(allow_null=True)
    queue_median = serializers.FloatField(allow_null=True, help_text="Seconds, request → a variation started")
    queue_p90 = serializers.FloatField(allow_null=True)
    compute_seconds = serializers.FloatField()
    releases = serializers.IntegerField()
    compute_per_release = serializers.FloatField(allow_null=True)
    send_back_rate = serializers.FloatField(allow_null=True, help_text="Sent back / all sign-off decisions")
    throughput_per_day = serializers.FloatField(help_text="Released elements per day of the range")
    roto_passes = serializers.IntegerField(help_text="Roto requests (each pass of a roto is one)")
    roto_correction_passes = serializers.IntegerField(
        help_text="Roto passes that redo an earlier pass (iterated from it, or keeping its locked frames)")
    roto_elements = serializers.IntegerField(help_text="Roto mattes released")
    keyframes_per_roto_element = serializers.FloatField(
        allow_null=True, help_text="The artist's key frames per released roto matte (mean)")
    roto_compute_seconds = serializers.FloatField(help_text="Compute seconds of the roto passes")


class TrendPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    pick_median = serializers.FloatField(allow_null=True)


class ShowMetricsSerializer(serializers.Serializer):
    show = serializers.CharField(source="scope.show.code")
    sequence = serializers.CharField(source="scope.sequence")
    shot = serializers.CharField(source="scope.shot")
    start = serializers.DateField(source="scope.start")
    end = serializers.DateField(source="scope.end")
    totals = FiguresSerializer()
    shots = FiguresSerializer(many=True)
    trend = TrendPointSerializer(many=True)


class ShowMetricsView(APIView):
    """Iteration metrics of the requests created in a date range (by default the last 30 days)."""

    @extend_schema(
        parameters=[OpenApiParameter("sequence", str, description="A sequence's code"),
                    OpenApiParameter("shot", str, description="A shot's code"),
                    OpenApiParameter("start", OpenApiTypes.DATE, description="Default: 29 days before end"),
                    OpenApiParameter("end", OpenApiTypes.DATE, description="Inclusive; default: today")],
        responses={200: ShowMetricsSerializer})
    def get(self, request, show_code: str):
        return Response(ShowMetricsSerializer(_metrics(request, show_code)).data)
