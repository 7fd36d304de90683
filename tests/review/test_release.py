"""Sign-off and release: only what was picked and signed off reaches the publish area, intact."""

import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from generation import services
from generation.engine import colour, frames
from generation.engine.frames import read_rgba
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest
from portal import worker
from portal.colour import show_colour
from portal.errors import Conflict, Forbidden, NotFound
from portal.models import Membership, Show
from review import services as review
from review.models import Pick, Release, SignOff
from review.publish import PublishError, PublishPlan, publish, verify
from review.tasks import release_element
from tests.conftest import OIIOTOOL, inside


@pytest.fixture
def generated(compositor, shot, show_model):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1004, count=2, steps=2, base_seed=9)
    worker.drain_embedded()
    request.refresh_from_db()
    assert request.status == "review"
    return request


def _released(director, compositor, request, index=0) -> Release:
    review.pick_make(user=director, variation=request.variations.get(index=index))
    signoff = review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=request.pk))
    worker.drain_embedded()
    release = Release.objects.get(signoff=signoff)
    assert release.status == "done", release.error
    return release


def _folder(release: Release, storage: Path) -> Path:
    return inside(Path(release.path_pattern).parent, storage / "publish")


@pytest.mark.django_db(transaction=True)
def test_only_a_picked_variation_can_be_signed_off(compositor, generated):
    with pytest.raises(Conflict, match="nothing is picked"):
        review.signoff_approve(user=compositor, request=generated)


@pytest.mark.django_db(transaction=True)
def test_a_sent_back_variation_cannot_be_released(director, compositor, generated):
    review.pick_make(user=director, variation=generated.variations.get(index=0))
    review.signoff_send_back(user=compositor, request=generated, note="edge chatter on the towers")
    assert GenerationRequest.objects.get(pk=generated.pk).status == "review"
    with pytest.raises(Conflict):
        review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=generated.pk))
    worker.drain_embedded()
    assert not Release.objects.exists()
    assert SignOff.objects.get().decision == "sent_back"


@pytest.mark.django_db(transaction=True)
def test_a_sent_back_sign_off_is_never_published(director, compositor, generated, storage):
    review.pick_make(user=director, variation=generated.variations.get(index=0))
    sent_back = review.signoff_send_back(user=compositor, request=generated, note="the clouds crawl")
    with pytest.raises(Conflict, match="sent back"):
        review.release_allocate(signoff=sent_back)
    # Even a release recorded behind the services' back is refused by the task, with a clear error.
    forged = Release.objects.create(signoff=sent_back, shot=generated.shot, task=generated.task, version=1)
    release_element.apply(args=(forged.pk,))
    forged.refresh_from_db()
    assert forged.status == "failed" and "sent back" in forged.error
    assert list((storage / "publish").iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_only_a_compositor_of_the_show_signs_off(director, supervisor, producer, generated, django_user_model):
    review.pick_make(user=director, variation=generated.variations.get(index=0))
    for user in (director, supervisor, producer):
        with pytest.raises(Forbidden):
            review.signoff_approve(user=user, request=GenerationRequest.objects.get(pk=generated.pk))
    stranger = django_user_model.objects.create_user("carl")
    Membership.objects.create(user=stranger, show=Show.objects.create(code="oth", name="Other"), role="compositor")
    with pytest.raises(NotFound):
        review.signoff_approve(user=stranger, request=GenerationRequest.objects.get(pk=generated.pk))


@pytest.mark.django_db(transaction=True)
def test_a_tampered_frame_fails_verify_release(director, compositor, generated, storage):
    folder = _folder(_released(director, compositor, generated), storage)
    call_command("verify_release", str(folder))
    frame = next(folder.glob("*.1002.exr"))
    data = bytearray(frame.read_bytes())
    data[-10] ^= 0xFF
    frame.write_bytes(bytes(data))
    with pytest.raises(CommandError, match=r"\.1002\.exr: checksum does not match"):
        call_command("verify_release", str(folder))


@pytest.mark.django_db(transaction=True)
def test_verify_release_catches_provenance_that_disagrees_with_the_database(director, compositor, generated,
                                                                           django_user_model, storage):
    release = _released(director, compositor, generated)
    impostor = django_user_model.objects.create_user("mallory")
    SignOff.objects.filter(pk=release.signoff_id).update(signed_by=impostor)
    with pytest.raises(CommandError, match="signed_off_by is 'cora', the database says 'mallory'"):
        call_command("verify_release", str(_folder(release, storage)))


@pytest.mark.django_db(transaction=True)
def test_released_frames_over_the_plate_equal_the_in_context_comp(director, compositor, generated, small_plate,
                                                                  tmp_path):
    release = _released(director, compositor, generated, index=1)
    variation = generated.variations.get(index=1)
    show = show_colour(generated.shot.sequence.show)
    for frame in (1001, 1004):
        released = frame_path(release.path_pattern, frame)
        plate = frame_path(small_plate["plate"], frame)
        out = tmp_path / f"over.{frame}.exr"
        subprocess.run([OIIOTOOL, released, plate, "--over", "-d", "float", "-o", str(out)], check=True)
        over, _ = read_rgba(str(out))
        element, header = read_rgba(frame_path(variation.exr_pattern, frame))
        plate_px, _ = read_rgba(plate)
        # The engine's in-context source: the element over the plate in float, the plate itself outside the
        # matte; the released frame over its plate frame equals it within half-float precision.
        comp = np.where(element[..., 3:4] > 0, element + plate_px * (1.0 - element[..., 3:4]), plate_px)
        assert np.allclose(over[..., :3], comp[..., :3], rtol=2**-10, atol=2**-14)
        # ... and rendered like the engine renders its proxy, it gives the engine's in-context proxy.
        ours = colour.make_proxy(over[..., :3], width=960, src=show.working_space, display=show.display,
                                 view=show.view, config_name=show.config)
        engine = np.asarray(oiio.ImageBuf(frame_path(variation.proxy_pattern, frame)).get_pixels(oiio.UINT8))
        frames.write_jpeg(tmp_path / "ours.jpg", ours)
        decoded = np.asarray(oiio.ImageBuf(str(tmp_path / "ours.jpg")).get_pixels(oiio.UINT8))
        assert decoded.shape == engine.shape
        assert np.abs(decoded.astype(int) - engine.astype(int)).max() <= 1
        released_px, released_header = read_rgba(released)
        assert np.array_equal(released_px, element)  # pixels copied, not re-encoded
        assert released_header.display_window == header.display_window
        assert released_header.data_window == header.data_window
        assert released_header.data_window.height < header.display_window.height  # cropped to the element


@pytest.mark.django_db(transaction=True)
def test_oiiotool_reads_the_provenance_and_the_windows_of_a_released_frame(director, compositor, generated):
    release = _released(director, compositor, generated)
    variation = release.signoff.variation
    _, header = read_rgba(frame_path(variation.exr_pattern, 1003))
    info = subprocess.run([OIIOTOOL, "--info", "-v", frame_path(release.path_pattern, 1003)], capture_output=True,
                          text=True, check=True).stdout
    data, display = header.data_window, header.display_window
    assert re.search(rf": +{data.width} x +{data.height}, 4 channel, half openexr", info), info
    assert re.search(rf"full/display size: {display.width} x {display.height}\b", info), info
    if (data.x, data.y) != (display.x, display.y):
        assert re.search(rf"pixel data origin: x={data.x}, y={data.y}\b", info), info
    for key, value in [("generated", "raw material, not final"), ("variation", variation.label),
                       ("seed", str(variation.seed)), ("picked_by", "dana"), ("signed_off_by", "cora"),
                       ("version", "1"), ("request", str(generated.pk))]:
        assert re.search(rf'parallel_track:{key}: "{re.escape(value)}"', info), key
    assert "parallel_track:signed_off_at" in info and "parallel_track:model_manifest_sha256" in info


@pytest.mark.django_db(transaction=True)
def test_concurrent_releases_of_the_same_shot_and_task_get_distinct_versions(director, compositor, generated):
    signoffs = []
    for i in range(4):  # sign-offs of the same shot and task, from four requests
        other = services.request_create(user=compositor, shot=generated.shot, model=generated.model,
                                        first_frame=1001, last_frame=1002, count=1, steps=2, base_seed=i)
        worker.drain_embedded()
        pick = Pick.objects.create(request=other, variation=other.variations.get(), picked_by=director)
        signoffs.append(SignOff.objects.create(pick=pick, variation=pick.variation, decision="approved",
                                               signed_by=compositor))
    versions, errors = [], []

    def allocate(signoff):
        try:
            versions.append(review.release_allocate(signoff=signoff).version)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate, args=(s,)) for s in signoffs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(versions) == [1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)
def test_a_release_killed_midway_leaves_no_visible_version_and_a_retry_completes(director, compositor,
                                                                                generated, storage):
    release = _released(director, compositor, generated)
    final = _folder(release, storage)
    # The worker died in the middle: no final folder, a half-written hidden staging folder.
    shutil.rmtree(final)
    staging = final.parent / f".{final.name}.partial-{release.pk}"
    staging.mkdir()
    (staging / Path(frame_path(release.path_pattern, 1001)).name).write_bytes(b"half a frame")
    Release.objects.filter(pk=release.pk).update(status="writing")
    assert [p.name for p in final.parent.iterdir() if not p.name.startswith(".")] == []
    release_element.apply(args=(release.pk,))
    assert Release.objects.get(pk=release.pk).status == "done"
    assert final.is_dir() and not staging.exists() and verify(final) == []
    release_element.apply(args=(release.pk,))  # idempotent
    assert verify(final) == []


def _plan(root: Path, source: str, frames: list[int]) -> PublishPlan:
    return PublishPlan(source_pattern=source, target_pattern=str(root / "v001" / "x.####.exr"), frames=frames,
                       attributes={"parallel_track:request": "1"}, colourspace="ACEScg", release_id=1)


def test_a_failing_write_midway_leaves_no_partial_version(tmp_path, small_plate):
    root = tmp_path / "publish"
    with pytest.raises(PublishError):
        publish(_plan(root, small_plate["plate"], [1001, 1002, 1099]))  # 1099 does not exist
    assert list(root.iterdir()) == []


def test_a_relative_publish_path_is_refused(small_plate):
    plan = PublishPlan(source_pattern=small_plate["plate"], target_pattern="x.####.exr", frames=[1001],
                       attributes={}, colourspace="ACEScg", release_id=1)
    with pytest.raises(PublishError, match="must be absolute"):
        publish(plan)


@pytest.mark.django_db(transaction=True)
def test_the_audit_trail_lists_every_decision_with_who_and_when(client, director, compositor, generated):
    import csv
    import io

    review.pick_make(user=director, variation=generated.variations.get(index=0))
    review.signoff_send_back(user=compositor, request=GenerationRequest.objects.get(pk=generated.pk),
                             note="matte edge")
    review.pick_make(user=director, variation=generated.variations.get(index=1))
    review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=generated.pk))
    worker.drain_embedded()
    client.force_login(director)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/requests/{generated.pk}/audit.csv").content.decode())))
    decisions = [(r["event"], r["who"], r["variation"], r["note"]) for r in rows if r["event"].split(".")[0]
                 in ("request", "pick", "signoff", "release")]
    assert decisions[0] == ("request.created", "cora", "", "")
    assert decisions[1:] == [
        ("request.settled", "", "", ""), ("pick.made", "dana", "v01", ""),
        ("signoff.sent_back", "cora", "", "matte edge"), ("pick.made", "dana", "v02", ""),
        ("signoff.approved", "cora", "v02", ""), ("release.done", "", "", "")]
    assert all(r["time"] for r in rows)
    assert not any(r["event"] == "variation.progress" for r in rows)
    assert rows[-1]["detail"].endswith(".####.exr")
