"""The whole loop on the embedded default: request → generate (worker thread) → pick → sign-off → release."""

import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generation import services
from generation.engine.frames import read_rgba
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RequestEvent, Variation
from portal import worker
from review import services as review
from review.models import Release
from tests.conftest import OIIOTOOL
from tests.factories import assert_outside_matte_is_the_plate


def _run_request(compositor, shot, show_model, *, count=2, steps=3):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1006, count=count, steps=steps, base_seed=42)
    worker.drain_embedded()
    request.refresh_from_db()
    return request


@pytest.mark.django_db(transaction=True)
def test_a_request_generates_every_variation_and_logs_events_in_order(compositor, shot, show_model):
    request = _run_request(compositor, shot, show_model)
    assert request.status == "review"
    for variation in request.variations.all():
        assert variation.status == "done", variation.error
        assert variation.gpu_seconds > 0 and variation.flicker_ratio is not None
        for frame in range(1001, 1007):
            assert Path(frame_path(variation.exr_pattern, frame)).is_file()
            assert (Path(variation.work_dir) / "proxy" / f"incontext.{frame}.jpg").is_file()
    seqs = list(RequestEvent.objects.filter(request=request).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    types = list(RequestEvent.objects.filter(request=request).values_list("type", flat=True))
    assert types[0] == "request.created" and types[-1] == "request.settled"
    assert types.count("variation.frame") == 2 * 6 and types.count("variation.done") == 2


@pytest.mark.django_db(transaction=True)
def test_pixels_outside_the_matte_are_the_plates_own(compositor, shot, show_model, small_plate):
    request = _run_request(compositor, shot, show_model, count=1)
    variation = request.variations.get()
    assert_outside_matte_is_the_plate(variation.exr_pattern, small_plate["plate"], (1001, 1006))


@pytest.mark.django_db(transaction=True)
def test_the_same_request_seed_and_model_give_bit_identical_exrs(compositor, shot, show_model):
    first = _run_request(compositor, shot, show_model, count=1).variations.get()
    second = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                     last_frame=1006, count=1, steps=3, base_seed=42)
    worker.drain_embedded()
    again = second.variations.get()
    assert first.seed == again.seed
    for frame in (1001, 1006):
        a, _ = read_rgba(frame_path(first.exr_pattern, frame))
        b, _ = read_rgba(frame_path(again.exr_pattern, frame))
        assert np.array_equal(a, b)


@pytest.mark.django_db(transaction=True)
def test_a_released_element_carries_windows_frames_and_provenance(compositor, director, shot, show_model):
    request = _run_request(compositor, shot, show_model)
    picked = request.variations.get(index=1)
    review.pick_make(user=director, variation=picked)
    review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=request.pk))
    worker.drain_embedded()
    release = Release.objects.get()
    assert release.status == "done", release.error
    assert release.version == 1
    assert GenerationRequest.objects.get(pk=request.pk).status == "released"
    folder = Path(release.path_pattern).parent
    assert folder.name == "v001" and folder.parent.name == "sky_replacement"
    assert not list(folder.parent.glob(".*")), "no hidden partial folder left behind"
    frames = sorted(folder.glob("*.exr"))
    assert [int(p.name.split(".")[-2]) for p in frames] == list(range(1001, 1007))
    manifest = dict(reversed(line.split("  ")) for line in (folder / "manifest.sha256").read_text().splitlines())
    for path in frames:
        assert manifest[path.name] == hashlib.sha256(path.read_bytes()).hexdigest()
    info = subprocess.run([OIIOTOOL, "--info", "-v", str(frames[0])], capture_output=True, text=True,
                          check=True).stdout
    assert "4 channel, half openexr" in info
    assert "full/display size: 320 x 180" in info
    for key, value in [("request", str(request.pk)), ("variation", picked.label), ("seed", str(picked.seed)),
                       ("model", show_model.name), ("picked_by", "dana"), ("signed_off_by", "cora")]:
        assert re.search(rf'parallel_track:{key}: "{re.escape(value)}"', info), key
    assert "parallel_track:signed_off_at" in info and "parallel_track:model_manifest_sha256" in info
    assert (folder / "provenance.json").is_file() and list(folder.glob("*.nk"))


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_request_stops_it_and_removes_its_files(compositor, shot, show_model):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1006, count=2, steps=200, base_seed=1)
    services.request_cancel(user=compositor, request=request)
    worker.drain_embedded()
    for variation in Variation.objects.filter(request=request):
        assert variation.status == "cancelled" and variation.cancelled_by == compositor
        assert not Path(variation.work_dir).exists()
    assert GenerationRequest.objects.get(pk=request.pk).status == "cancelled"
