"""Roto from drawn key frames in production mode: PostgreSQL (row locks on the roto set), a Celery worker process,
a correction pass that keeps every frame not depending on the fix bit for bit, and the release naming who drew."""

import re
import subprocess
import time

import numpy as np
import pytest

from generation import roto_keyframes as keyframes
from generation.engine import frames
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RotoPass
from review import services as review
from review.models import Release
from tests.conftest import OIIOTOOL

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def _square(x0, y0, x1, y1):
    return [{"tool": "polygon", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "feather": 2}]


def _settled(request: GenerationRequest, timeout: float = 240) -> GenerationRequest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if request.status in ("review", "failed"):
            variation = request.variations.get()
            assert variation.status == "done", variation.error
            return request
        time.sleep(0.3)
    raise AssertionError(f"request {request.pk} did not settle within {timeout:.0f} s")


def _mattes(request: GenerationRequest) -> dict[int, np.ndarray]:
    pattern = request.variations.get().exr_pattern
    return {f: frames.read_matte(frame_path(pattern, f)) for f in range(request.first_frame, request.last_frame + 1)}


def test_a_drawn_roto_corrected_once_and_released_through_the_celery_worker(celery_worker, compositor, shot):
    roto = keyframes.roto_set_create(user=compositor, shot=shot)
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1001, shapes=_square(40, 30, 160, 120))
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1004, shapes=_square(50, 30, 170, 120))
    first = _settled(keyframes.pass_request(user=compositor, roto_set=roto))
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1002, shapes=_square(60, 40, 150, 110))
    second = _settled(keyframes.pass_request(user=compositor, roto_set=roto))
    assert RotoPass.objects.get(request=second).recomputed == [1003]
    one, two = _mattes(first), _mattes(second)
    for f in (1001, 1004, 1005, 1006):
        assert np.array_equal(one[f], two[f]), f

    review.signoff_approve(user=compositor, request=second, variation=second.variations.get())
    deadline = time.monotonic() + 120
    while not Release.objects.filter(status="done").exists():
        assert time.monotonic() < deadline, "no release within 120 s"
        time.sleep(0.3)
    released = frame_path(Release.objects.get().path_pattern, 1003)
    info = subprocess.run([OIIOTOOL, "--info", "-v", released], capture_output=True, text=True, check=True).stdout
    assert re.search(r'parallel_track:roto_keyframes_drawn: "1001 by cora at \S+; 1002 by cora at \S+; '
                     r'1004 by cora at \S+"', info), info
