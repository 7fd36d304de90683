"""The tasks beyond sky replacement, on both backends: each keeps the plate outside the matte."""

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from generation.engine import colour, frames
from generation.engine.card import Card, card_geometry
from generation.engine.frames import Window
from generation.engine.looks import Haze
from generation.engine.registry import ModelError, load_show_model
from generation.engine.sequence import frame_path
from generation.engine.variation import depth_channel, generate_variation

from .test_variation import _spec as variation_spec

FRAMES = [1, 2, 3]
REGIONS = {"rect": (20, 10, 120, 60), "low": (0, 40, 160, 56)}


def _spec(plate, model, out_dir, task, **changes):
    base = {"first": 1, "last": 3, "task": task, "steps": 3, "matte_pattern": None, "rect": REGIONS["rect"]}
    return variation_spec(plate, model, out_dir, **{**base, **changes})


def _check_outside_is_the_plate(result, plate_pattern, rect):
    x, y, w, h = rect
    for frame in FRAMES:
        plate = frames.read_channels(frame_path(plate_pattern, frame), ("R", "G", "B"))
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, frame))
        inside = np.zeros(plate.shape[:2], bool)
        inside[y : y + h, x : x + w] = True
        assert np.all(element[~inside] == 0) and np.all(element[inside, 3] == 1)
        over = element[..., :3] + plate * (1 - element[..., 3:])
        assert np.array_equal(over[~inside], plate[~inside])
        assert np.isfinite(element).all()


@pytest.mark.parametrize(
    "task, backend",
    [
        ("set_extension", "show"),
        ("background_fill", "sd"),
        ("atmosphere", "show"),
        ("atmosphere", "sd"),
        ("time_of_day", "sd"),
    ],
)
def test_each_task_changes_the_region_and_nothing_else(
    depth_plate, tiny_model_dir, tiny_sd_dir, tmp_path, task, backend
):
    model = tiny_model_dir if backend == "show" else tiny_sd_dir
    events = []
    result = generate_variation(
        _spec(depth_plate, model, tmp_path / "v", task), on_progress=lambda *e: events.append(e)
    )
    _check_outside_is_the_plate(result, depth_plate["plate"], REGIONS["rect"])
    plate = frames.read_channels(frame_path(depth_plate["plate"], 2), ("R", "G", "B"))
    element, _ = frames.read_rgba(frame_path(result.exr_pattern, 2))
    x, y, w, h = REGIONS["rect"]
    assert not np.array_equal(element[y : y + h, x : x + w, :3], plate[y : y + h, x : x + w])
    assert [e[1] for e in events if e[0] == "denoise"]  # progress from the denoiser, whichever backend
    spec = oiio.ImageInput.open(frame_path(result.exr_pattern, 1)).spec()
    assert spec.getattribute("parallel_track:task") == task
    assert spec.getattribute("parallel_track:depth_channel") == ("Z" if task == "atmosphere" else None)


def test_time_of_day_is_refused_for_a_show_model_before_anything_is_written(depth_plate, tiny_model_dir, tmp_path):
    with pytest.raises(ModelError, match="ignores prompts"):
        generate_variation(_spec(depth_plate, tiny_model_dir, tmp_path / "never", "time_of_day"))
    assert not (tmp_path / "never").exists()


def test_a_strength_outside_the_tasks_range_is_refused(depth_plate, tiny_sd_dir, tmp_path):
    with pytest.raises(ValueError, match="strength"):
        generate_variation(_spec(depth_plate, tiny_sd_dir, tmp_path / "never", "time_of_day", strength=0.99))
    assert not (tmp_path / "never").exists()


def test_more_strength_changes_the_region_more(depth_plate, tiny_model_dir, tmp_path):
    x, y, w, h = REGIONS["rect"]
    plate = frames.read_channels(frame_path(depth_plate["plate"], 1), ("R", "G", "B"))[y : y + h, x : x + w]
    change = []
    for strength in (0.2, 0.8):
        spec = _spec(depth_plate, tiny_model_dir, tmp_path / str(strength), "atmosphere", strength=strength, steps=5)
        element, _ = frames.read_rgba(frame_path(generate_variation(spec).exr_pattern, 1))
        change.append(np.abs(element[y : y + h, x : x + w, :3] - plate).mean())
    assert change[0] < change[1]


def test_atmosphere_hazes_the_distance_and_leaves_the_foreground(depth_plate, tiny_model_dir, tmp_path):
    rect = REGIONS["low"]  # buildings at 400 and the street coming to 20 at the bottom
    result = generate_variation(_spec(depth_plate, tiny_model_dir, tmp_path / "haze", "atmosphere", rect=rect))
    _check_outside_is_the_plate(result, depth_plate["plate"], rect)
    pixels = frames.read_channels(frame_path(depth_plate["plate"], 2), ("R", "G", "B", "Z"))
    element, _ = frames.read_rgba(frame_path(result.exr_pattern, 2))
    change = np.abs(element[..., :3] - pixels[..., :3]).mean(axis=2)
    z = pixels[..., 3]
    near = (z < 60) & (element[..., 3] == 1)
    far = (z > 300) & (element[..., 3] == 1)
    assert near.any() and far.any()
    assert change[near].mean() < 0.3 * change[far].mean()


def test_haze_transmittance_follows_depth():
    card = Card(0, 0, 2, 2, 2, 2)
    look = Haze(card, np.zeros((2, 2, 3), np.float32), strength=0.5, depth_ref=100.0)
    t = look.transmittance(np.array([[0.0, 100.0, 200.0, np.inf, np.nan, -5.0]], np.float32), (1, 6))[0, :, 0]
    np.testing.assert_allclose(t, [1.0, 0.5, 0.25, 0.0, 0.0, 1.0], atol=1e-6)
    flat = Haze(card, np.zeros((2, 2, 3), np.float32), strength=0.3).transmittance(None, (2, 2))
    np.testing.assert_allclose(flat, 0.7)


def test_time_of_day_keeps_the_plates_structure_where_inpainting_replaces_it(depth_plate, tiny_sd_dir, tmp_path):
    x, y, w, h = REGIONS["rect"]
    plate = frames.read_channels(frame_path(depth_plate["plate"], 3), ("R", "G", "B"))[y : y + h, x : x + w]

    def encoded_detail(rgb):  # horizontal second differences in the SD card's display encoding
        encoded = colour.convert(np.ascontiguousarray(rgb), "ACEScg", "sRGB - Texture")
        return encoded, (encoded[:, 2:] - 2 * encoded[:, 1:-1] + encoded[:, :-2]).ravel()

    plate_encoded, plate_detail = encoded_detail(plate)
    found = {}
    for task in ("time_of_day", "set_extension"):
        result = generate_variation(_spec(depth_plate, tiny_sd_dir, tmp_path / task, task, steps=4))
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, 3))
        encoded, detail = encoded_detail(element[y : y + h, x : x + w, :3])
        found[task] = (np.abs(encoded - plate_encoded).mean(), np.corrcoef(detail, plate_detail)[0, 1])
    assert found["time_of_day"][0] > 0.01 and found["set_extension"][0] > 0.01  # both changed the look
    assert found["time_of_day"][1] > 0.8  # ... but the plate's edges are still there
    assert abs(found["set_extension"][1]) < 0.3


@pytest.mark.parametrize(
    "channels, found",
    [
        (("R", "G", "B", "Z"), "Z"),
        (("R", "G", "B", "depth.Z"), "depth.Z"),
        (("depth", "R"), "depth"),
        (("R", "G", "B", "A"), None),
    ],
)
def test_the_depth_channel_is_found_by_name(channels, found):
    assert depth_channel(channels) == found


def test_a_sky_card_sits_on_the_skyline_and_other_cards_on_the_region():
    bbox, track = Window(100, 200, 400, 50), [(0.0, 0.0), (3.0, 0.0)]
    sky = card_geometry(bbox, track, (32, 64), "bottom", 0.03)
    region = card_geometry(bbox, track, (32, 64), "centre", 0.15)
    assert sky.y + sky.height == pytest.approx(bbox.y + bbox.height + 0.03 * 403 + 2, abs=2)
    assert region.y + region.height / 2 == pytest.approx(bbox.y + bbox.height / 2, abs=1)
    assert region.width > sky.width  # more of the surrounding plate as context
    for card in (sky, region):
        assert card.width / card.height == pytest.approx(2.0, rel=0.02)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("task", ["set_extension", "atmosphere"])
def test_a_show_model_runs_every_task_in_fp16_on_cuda(depth_plate, tiny_model_dir, tmp_path, task):
    unet, _, _ = load_show_model(tiny_model_dir, torch.device("cuda"), torch.float16)
    assert unet.dtype == torch.float16
    a = generate_variation(_spec(depth_plate, tiny_model_dir, tmp_path / "a", task, device="cuda"))
    b = generate_variation(_spec(depth_plate, tiny_model_dir, tmp_path / "b", task, device="cuda"))
    _check_outside_is_the_plate(a, depth_plate["plate"], REGIONS["rect"])
    for frame in FRAMES:
        assert (
            Path(frame_path(a.exr_pattern, frame)).read_bytes() == Path(frame_path(b.exr_pattern, frame)).read_bytes()
        )
