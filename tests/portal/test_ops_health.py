"""Operations on the embedded default: /health/, /metrics (who may read it, what it says), JSON logs."""

import json
import subprocess
import sys

import pytest
from django.conf import settings
from health_check.exceptions import ServiceUnavailable

from generation.models import GenerationRequest, Variation
from portal import health as portal_health
from review.models import Release, SignOff


def health(client) -> tuple[int, dict]:
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    return response.status_code, json.loads(response.content)


@pytest.mark.django_db
def test_health_answers_every_embedded_check(client, storage):
    status, checks = health(client)
    assert status == 200, checks
    assert set(checks) == {"Database(alias='default')", "Broker()", "Workers()", "FreeSpace(root='work')",
                           "FreeSpace(root='publish')"}
    assert set(checks.values()) == {"OK"}


@pytest.mark.django_db
def test_health_fails_when_a_root_is_short_of_space(client, storage, settings):
    settings.PT_HEALTH_MIN_FREE_GB = 1e9  # a billion GB: no disk has that
    status, checks = health(client)
    assert status == 500
    assert checks["FreeSpace(root='work')"].startswith("Unavailable: ")
    assert "GB free on the work root" in checks["FreeSpace(root='work')"]
    assert str(settings.WORK_ROOT) not in json.dumps(checks), "health answers name roots, not server paths"
    assert checks["Database(alias='default')"] == "OK"


@pytest.mark.django_db
def test_health_fails_when_a_production_root_is_missing(client, storage, settings, tmp_path):
    settings.PUBLISH_ROOT = tmp_path / "not-mounted"
    assert health(client)[0] == 200  # embedded: made on first use, measured where it will be
    settings.PRODUCTION_MODE = True  # production: a share that is not mounted
    with pytest.raises(ServiceUnavailable, match="the publish root is missing"):
        portal_health.FreeSpace(root="publish").run()


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def metric(text: str, name: str) -> float:
    """The value of one sample line (``name`` with its labels exactly as written)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name}:\n{text}")


@pytest.mark.django_db
def test_metrics_are_for_the_token_or_staff_only(client, settings, django_user_model, compositor):
    settings.PT_METRICS_TOKEN = "s3cret-metrics"
    assert scrape(client).status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    client.force_login(compositor)  # a show member, not staff
    assert scrape(client).status_code == 401
    client.logout()
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    assert scrape(client).status_code == 200


@pytest.mark.django_db
def test_metrics_count_responses_variations_gpu_seconds_and_releases(client, settings, shot, show_model,
                                                                      compositor):
    from datetime import timedelta

    settings.PT_METRICS_TOKEN = "t"
    auth = {"HTTP_AUTHORIZATION": "Bearer t"}
    before = scrape(client, **auth).content.decode()
    client.get("/no-such-page/")
    request = GenerationRequest.objects.create(shot=shot, plate=shot.plates.first(), first_frame=1001,
                                               last_frame=1002, count=3, model=show_model, requested_by=compositor)
    Variation.objects.create(request=request, index=0, seed=1, status="running")
    Variation.objects.create(request=request, index=1, seed=2, status="failed")
    Variation.objects.create(request=request, index=2, seed=3, status="done", gpu_seconds=12.5)
    signoff = SignOff.objects.create(variation=request.variations.get(index=2), signed_by=compositor,
                                     decision="approved")
    release = Release.objects.create(signoff=signoff, shot=shot, task="sky_replacement", version=1, status="done")
    Release.objects.filter(pk=release.pk).update(released_at=release.created_at + timedelta(seconds=20))

    text = scrape(client, **auth).content.decode()
    not_found = 'pt_http_responses_total{status="404"}'
    assert metric(text, not_found) == (metric(before, not_found) if not_found in before else 0) + 1
    assert metric(text, "pt_variations_running") == 1 and metric(text, "pt_variations_failed") == 1
    assert metric(text, 'pt_variations{status="done"}') == 1
    assert metric(text, "pt_gpu_seconds_total") == 12.5
    assert metric(text, 'pt_release_duration_seconds_bucket{le="15.0"}') == 0
    assert metric(text, 'pt_release_duration_seconds_bucket{le="30.0"}') == 1
    assert metric(text, "pt_release_duration_seconds_sum") == pytest.approx(20.0)
    assert metric(text, 'pt_queue_depth{queue="embedded"}') == 0
    assert metric(text, "pt_websockets_open") == 0


_LOG = """
import logging, os
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
import django
django.setup()
logging.getLogger("pt.test").warning("plate %s ingested", "sh010", extra={"shot": "sh010"})
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("pt.test").exception("it broke")
"""


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_json_logs_are_an_option(fmt):
    env = {"PT_LOG_FORMAT": fmt, "PATH": "/usr/bin:/bin", "PT_VAR_DIR": str(settings.VAR_DIR)}
    run = subprocess.run([sys.executable, "-c", _LOG], capture_output=True, text=True, timeout=120,
                         cwd=settings.BASE_DIR, env=env)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    if fmt == "text":
        assert lines[0] == "plate sh010 ingested"
        return
    records = [json.loads(line) for line in lines]  # every line is one JSON object, the traceback included
    assert records[0]["message"] == "plate sh010 ingested" and records[0]["level"] == "WARNING"
    assert records[0]["logger"] == "pt.test" and records[0]["shot"] == "sh010" and records[0]["time"].endswith("+00:00")
    assert records[1]["message"] == "it broke" and "ZeroDivisionError" in records[1]["exception"]
