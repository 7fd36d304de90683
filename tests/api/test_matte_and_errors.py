"""A matte is checked when the request is made (a malformed one is a 400 naming it under its root, never a 201
whose variations fail in the worker); a worker's error names paths under their root; Django's own errors under
/api/ are JSON too."""

import shutil
import uuid
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from django.conf import settings

from generation.engine.sequence import frame_path
from generation.models import GenerationRequest
from tests.conftest import PLATE_FIRST, PLATE_LAST, PLATE_SIZE, inside

pytestmark = pytest.mark.django_db


@pytest.fixture
def matte_folder(storage):
    root = Path(settings.PLATE_ROOTS[0])
    folder = root / f"api-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(inside(folder, root), ignore_errors=True)


def _write(path: Path, width: int, height: int, channels: list[str]) -> None:
    spec = oiio.ImageSpec(width, height, len(channels), oiio.HALF)
    spec.channelnames = tuple(channels)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    out.write_image(np.ones((height, width, len(channels)), np.float32))
    out.close()


def _matte(folder: Path, *, size=PLATE_SIZE, channels=("A",), broken_frame: int | None = None) -> str:
    pattern = str(folder / "matte.####.exr")
    for frame in range(PLATE_FIRST, PLATE_LAST + 1):
        path = Path(frame_path(pattern, frame))
        if frame == broken_frame:
            path.write_bytes(b"not an image at all")
        else:
            _write(path, *size, list(channels))
    return pattern


def _submit(client, shot, model, pattern):
    return client.post("/api/requests/", {"shot": shot.pk, "model": model.pk, "first_frame": PLATE_FIRST,
                                          "last_frame": PLATE_LAST, "count": 1, "steps": 2,
                                          "matte_pattern": pattern}, content_type="application/json")


@pytest.mark.parametrize(("kind", "expected"), [
    ({"broken_frame": PLATE_FIRST + 2}, "not a readable image"),
    ({"size": (PLATE_SIZE[0] // 2, PLATE_SIZE[1])}, "but the plate is"),
    ({"channels": ("G", "B")}, "no A, Y or R channel"),
])
def test_a_malformed_matte_is_a_400_at_request_time(client, compositor, shot, show_model, matte_folder, kind,
                                                    expected):
    client.force_login(compositor)
    answer = _submit(client, shot, show_model, _matte(matte_folder, **kind))
    assert answer.status_code == 400, answer.content[:300]
    body = answer.json()
    assert body["code"] == "bad_matte" and expected in body["message"]
    assert f"plates:{matte_folder.name}/matte." in body["message"]  # under its root ...
    assert str(Path(settings.PLATE_ROOTS[0]).resolve()) not in body["message"]  # ... never the root itself
    assert not GenerationRequest.objects.exists()


def test_a_good_matte_is_accepted(client, compositor, shot, show_model, matte_folder):
    client.force_login(compositor)
    answer = _submit(client, shot, show_model, _matte(matte_folder))
    assert answer.status_code == 201, answer.content[:300]
    GenerationRequest.objects.get().variations.update(status="cancelled")  # nothing need run


def test_a_workers_error_names_paths_under_their_root(compositor, shot, show_model):
    from generation import services

    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=PLATE_FIRST,
                                      last_frame=PLATE_FIRST, count=1, steps=2, base_seed=1)
    variation = request.variations.get()
    work = Path(settings.WORK_ROOT).resolve()
    services.variation_fail(variation=variation, error=f"FrameError: {work}/tst/v1/beauty.1001.exr: truncated; "
                                                       f"model directory {Path(settings.MODEL_ROOT)}/gone missing")
    variation.refresh_from_db()
    assert variation.error == "FrameError: work:tst/v1/beauty.1001.exr: truncated; model directory models:gone missing"


@pytest.mark.parametrize("url", ["/api/requests/abc/", "/api/shots/1.5/", "/api/requests/%C2%B2/cancel/",
                                 "/api/variations/-1/pick/", "/api/nothing-here/"])
def test_a_url_the_api_does_not_have_is_a_json_404(client, compositor, url):
    client.force_login(compositor)
    for method in (client.get, client.post):
        answer = method(url)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", (url, answer.content[:200])


def test_a_body_too_large_is_a_json_400_and_a_crash_a_json_500(client, compositor, settings):
    from portal.api_errors import server_error

    client.force_login(compositor)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    answer = client.post("/api/requests/", "x=" + "y" * 5000, content_type="application/x-www-form-urlencoded")
    assert answer.status_code in (400, 413) and answer["Content-Type"].startswith("application/json"), answer.content
    from django.test import RequestFactory

    crashed = server_error(RequestFactory().get("/api/requests/"))
    assert crashed.status_code == 500 and b'"code": "server_error"' in crashed.content
    assert server_error(RequestFactory().get("/")).status_code == 500  # pages keep Django's page
