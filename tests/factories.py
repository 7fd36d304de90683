"""Builders for review-stage state, so role, stream and metrics tests need not run the generator."""

import numpy as np
from django.utils import timezone

from generation.engine.frames import read_rgba
from generation.engine.sequence import frame_path
from generation.events import event_append
from generation.models import GenerationRequest, Variation, VariationStatus


def request_with_done_variations(*, user, shot, model, count: int = 2, frames: tuple[int, int] | None = None,
                                 task: str = "sky_replacement") -> GenerationRequest:
    """A request whose variations are finished (no files, no tasks queued): for picks, roles and streams."""
    first, last = frames or (shot.first_frame, shot.last_frame)
    plate = shot.plates.first()
    now = timezone.now()
    request = GenerationRequest.objects.create(
        shot=shot, plate=plate, task=task, first_frame=first, last_frame=last, matte_pattern=plate.matte_pattern,
        count=count, model=model, base_seed=1, steps=2, requested_by=user, status="review", settled_at=now)
    Variation.objects.bulk_create(
        Variation(request=request, index=i, seed=1 + i, status=VariationStatus.DONE, progress=1.0,
                  started_at=now, finished_at=now, gpu_seconds=1.0, flicker_ratio=1.0) for i in range(count))
    event_append(request_id=request.pk, type="request.created", actor=user, payload={"by": user.username})
    return request


def assert_outside_matte_is_the_plate(exr_pattern: str, plate_pattern: str, frames) -> None:
    """The element over its plate leaves every pixel outside the matte bit-identical to the plate."""
    for frame in frames:
        element, _ = read_rgba(frame_path(exr_pattern, frame))
        plate, _ = read_rgba(frame_path(plate_pattern, frame))
        comp = element + plate * (1.0 - element[..., 3:4])
        outside = element[..., 3] == 0
        assert outside.any() and (~outside).any()
        assert np.array_equal(comp[outside], plate[outside])
