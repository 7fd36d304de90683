"""The review-room bench in a tiny configuration: it runs, and its JSON has the issue's keys and sane values.

Not a timed test: the goals (p95 ≤ 100 ms, ≥ 2× oiiotool) are the bench's to report, on a quiet machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import streaming

REPO = Path(__file__).resolve().parents[2]
ISSUE_KEYS = {"viewers", "event_p50_ms", "event_p95_ms", "proxy_speedup_vs_oiiotool", "proxy_p999_code_error"}


def test_the_proxy_bench_times_both_paths_on_the_same_frames() -> None:
    result = streaming.proxy_bench(frame_count=2, width=320, height=180)
    assert result["proxy_frames"] == 2 and result["proxy_size"] == [160, 90]
    assert result["proxy_fps"] > 0 and result["oiiotool_fps"] > 0 and result["oiiotool_resize_first_fps"] > 0
    assert result["proxy_speedup_vs_oiiotool"] == pytest.approx(result["proxy_fps"] / result["oiiotool_fps"],
                                                                rel=0.05)
    assert result["proxy_p999_code_error"] <= 1 and result["proxy_max_code_error"] <= 3


def test_delays_count_every_viewer_and_event_and_flag_a_gap() -> None:
    stamp = "2026-01-01T00:00:00+00:00"
    t0 = 1767225600.0  # that stamp as a Unix time
    whole = [(2, stamp, t0 + 0.010), (3, stamp, t0 + 0.030)]
    gap = [(3, stamp, t0 + 0.020)]
    result = streaming._delays([whole, gap], events=2)
    assert result["viewers"] == 2 and result["viewers_complete_in_order"] == 1
    assert result["event_p50_ms"] == pytest.approx(20.0) and result["event_max_ms"] == pytest.approx(30.0)


@pytest.mark.production
def test_the_bench_module_prints_the_issue_keys() -> None:
    from django.conf import settings

    if not (settings.PRODUCTION_MODE and settings.DATABASE_URL.startswith("postgres")):
        message = "!!! PRODUCTION TIER NOT RUN: set DATABASE_URL (PostgreSQL) and REDIS_URL !!!"
        if os.getenv("PT_REQUIRE_PRODUCTION", "0") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    env = dict(os.environ, BENCH_VIEWERS="3", BENCH_EVENTS="5", BENCH_PROXY_FRAMES="1", BENCH_PLATE="320x180",
               DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL)
    run = subprocess.run([sys.executable, "-m", "tests.bench.streaming"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert ISSUE_KEYS <= result.keys()
    assert result["viewers"] == 3 and result["events"] == 5 and result["viewers_complete_in_order"] == 3
    assert 0 < result["event_p50_ms"] <= result["event_p95_ms"] <= result["event_max_ms"] < 10_000
    assert result["proxy_speedup_vs_oiiotool"] > 0 and result["proxy_p999_code_error"] <= 1
