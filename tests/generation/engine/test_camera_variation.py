"""The camera track inside a variation, on real footage: Beachball's locked-off static region, known
zooms and rolls of a real frame, a card the motion makes too big, anamorphic cards, track files."""

import os

import cv2
import numpy as np
import pytest

from generation.engine import camera, frames
from generation.engine.camera import CameraTrack
from generation.engine.card import card_geometry
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.engine.variation import VariationSpec, generate_variation
from tests.bench.realplates import known_move, luma, read_rgb
from tests.realdata import testdata as real

BEACH_CHANNELS = ("R", "G", "B", "A", "forward.right.u", "forward.right.v")


@pytest.fixture(scope="module")
def beachball(tmp_path_factory):
    """Beachball's top-left 1024x800 (the ball crosses into it), all 8 frames, with its alpha and vectors."""
    out = tmp_path_factory.mktemp("beachball")
    window = Window(0, 0, 1024, 800)
    for k in range(1, 9):
        path = real("openexr-images", "Beachball", f"singlepart.{k:04d}.exr")
        pixels = frames.read_channels(path, BEACH_CHANNELS)
        frames.write_exr(
            out / f"beach.{k:04d}.exr", pixels[:800, :1024], display_window=window, channel_names=BEACH_CHANNELS
        )
    return str(out / "beach.####.exr")


def _spec(plate, model, out, **kw):
    args = dict(matte_pattern=None, rect=(60, 120, 400, 300), first=1, last=8, model_path=model, seed=3, steps=2)
    args.update(kw)
    return VariationSpec(plate_pattern=plate, out_dir=str(out), proxy_width=64, **args)


def test_a_static_region_on_beachball_stays_put_and_is_covered_in_all_8_frames(beachball, tiny_model_dir, tmp_path):
    result = generate_variation(_spec(beachball, tiny_model_dir, tmp_path / "v"))
    assert result.camera_model == "locked"
    assert result.coverage == 1.0  # exactly: anything less is flagged on the tile
    first, _ = frames.read_rgba(frame_path(result.exr_pattern, 1))
    region = (slice(120, 420), slice(60, 460))
    for frame in range(1, 9):
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, frame))
        assert (element[region][..., 3] == 1.0).all()
        assert (np.abs(element[region][..., :3]).max(axis=2) > 0).all()  # no black hole anywhere
        assert np.array_equal(element, first)  # not a pixel moved
    assert result.flicker_ratio <= 1.2


def _moved_plate(tmp_path, move, n=5):
    rgb = read_rgb(real("davis16", "dog", "frames", "00000.jpg"))[:228, 100:420]
    moved, truth = known_move(rgb, move, n=n, border=24)
    window = Window(0, 0, moved[0].shape[1], moved[0].shape[0])
    for k, img in enumerate(moved):
        frames.write_exr(
            tmp_path / f"{move}.{k + 1:04d}.exr", img, display_window=window, channel_names=("R", "G", "B")
        )
    return str(tmp_path / f"{move}.####.exr"), truth


@pytest.mark.parametrize("move", ["zoom", "roll"])
def test_a_known_zoom_or_roll_carries_the_element_within_half_a_pixel(move, tiny_model_dir, tmp_path):
    plate, truth = _moved_plate(tmp_path, move)
    rect = (40, 20, 180, 90)
    result = generate_variation(_spec(plate, tiny_model_dir, tmp_path / "v", rect=rect, last=5))
    assert result.camera_model == "similarity" and result.coverage == pytest.approx(1.0)
    first, _ = frames.read_rgba(frame_path(result.exr_pattern, 1))
    h, w = first.shape[:2]
    inner = (slice(rect[1] + 12, rect[1] + rect[3] - 12), slice(rect[0] + 12, rect[0] + rect[2] - 12))
    for k in range(1, 5):
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, k + 1))
        expected = cv2.warpPerspective(first, truth[k], (w, h), flags=cv2.INTER_CUBIC)
        # What is left between the element and frame 1's element moved by the true matrix: under half a
        # pixel at the region's corners, while frame 1's element itself is more than a pixel off.
        left = camera.estimate_track([luma(expected[..., :3])[inner], luma(element[..., :3])[inner]])
        size = (inner[0].stop - inner[0].start, inner[1].stop - inner[1].start)
        assert camera.corner_error(left.matrices[1], np.eye(3), size) <= 0.5
        stuck = camera.estimate_track([luma(first[..., :3])[inner], luma(element[..., :3])[inner]])
        assert camera.corner_error(stuck.matrices[1], np.eye(3), size) > 1.0


@pytest.mark.parametrize(
    "text, error, message",
    [
        # 300 px a frame: the card would be many times the region's width.
        ("".join(f"{k} {-300 * (k - 1)} 0 0 1\n" for k in range(1, 9)), camera.CardTooBig, "split the shot"),
        ("1 0 0 0 1\n", camera.CameraError, "no track for 7 frame"),
    ],
)
def test_a_shot_that_cannot_be_carried_is_refused_and_nothing_is_written(
    beachball, tiny_model_dir, tmp_path, text, error, message
):
    track = tmp_path / "shot.chan"
    track.write_text(text)
    out = tmp_path / "v"
    with pytest.raises(error, match=message):
        generate_variation(_spec(beachball, tiny_model_dir, out, track_file=str(track)))
    assert not out.exists()


def test_a_track_file_carries_the_element(beachball, tiny_model_dir, tmp_path):
    track = tmp_path / "pan.chan"
    track.write_text("".join(f"{k} {4 * (k - 1)} 0 0 1\n" for k in range(1, 9)))  # 4 px right a frame
    result = generate_variation(_spec(beachball, tiny_model_dir, tmp_path / "v", track_file=str(track), last=3))
    assert result.camera_model == "file" and result.coverage == pytest.approx(1.0)
    a, _ = frames.read_rgba(frame_path(result.exr_pattern, 1))
    b, _ = frames.read_rgba(frame_path(result.exr_pattern, 3))
    assert np.allclose(b[150:400, 100:400], a[150:400, 92:392], atol=2e-3 * np.abs(a).max())


def test_an_anamorphic_card_is_square_in_desqueezed_pixels():
    boxes = [Window(100, 200, 400, 50)]
    still = CameraTrack(np.eye(3)[None], "locked", "none")
    flat = card_geometry(boxes, still, (32, 64), "bottom", 0.03)
    scope = card_geometry(boxes, still, (32, 64), "bottom", 0.03, pixel_aspect=2.0)
    assert flat.width / flat.height == pytest.approx(2.0, rel=0.02)
    assert scope.width * 2.0 / scope.height == pytest.approx(2.0, rel=0.02)  # 2:1 once desqueezed
    assert scope.x <= 100 and scope.x + scope.width >= 500  # and it still holds the region


def test_the_plates_pixel_aspect_is_read(tmp_path):
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(4, 4, 3, "half")
    spec.attribute("PixelAspectRatio", 2.0)
    path = str(tmp_path / "scope.exr")
    out = oiio.ImageOutput.create(path)
    out.open(path, spec)
    out.write_image(np.zeros((4, 4, 3), np.float32))
    out.close()
    assert camera.pixel_aspect(path) == 2.0
    assert os.path.exists(path)


def test_coverage_falls_below_one_when_frames_sample_what_was_not_generated(
    beachball, tiny_model_dir, tmp_path, monkeypatch
):
    # Break it on purpose: generate only what frame 1's matte covers (the old card) while the shot pans.
    real_region = camera.generated_region

    def first_frame_only(mattes, track, *args):
        first = CameraTrack(track.matrices[:1], track.model, track.source)
        return real_region([next(iter(mattes))], first, *args)

    monkeypatch.setattr(camera, "generated_region", first_frame_only)
    track = tmp_path / "pan.chan"
    track.write_text("".join(f"{k} {20 * (k - 1)} 0 0 1\n" for k in range(1, 9)))
    result = generate_variation(_spec(beachball, tiny_model_dir, tmp_path / "v", track_file=str(track), last=3))
    assert result.coverage < 0.99
