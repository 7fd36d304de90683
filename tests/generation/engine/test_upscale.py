"""The show upscaler: trained from plates, resumable, deterministic, refuses what it cannot do."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from generation.engine import colour, frames, grain, upscale, upscale_training, upscale_video
from generation.engine.sequence import frame_path
from generation.engine.spec import VariationSpec
from generation.engine.training import TrainingError, TrainingStopped
from generation.engine.upscale_task import _delivered, finish_element, upscale_element
from generation.engine.variation import generate_variation
from tests import realdata

from .conftest import SMALL_FIRST
from .test_variation import _spec as variation_spec


def write_sintel_plates(root: Path, *, frames_per_plate: int = 2, size=(96, 128)) -> Path:
    """Two small EXR plates (ACEScg) cut from real Sintel frames: one folder per plate."""
    sources = sorted(realdata.testdata("sintel-demo").glob("*.png"))
    h, w = size
    for plate in range(2):
        folder = root / f"plate{plate}"
        folder.mkdir(parents=True)
        for i in range(frames_per_plate):
            rgb = upscale.read_plate_rgb(sources[plate * frames_per_plate + i])[100:100 + h, 300:300 + w]
            rgba = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], axis=2)
            frames.write_exr(folder / f"plate.{1001 + i}.exr", rgba, display_window=frames.Window(0, 0, w, h))
    return root


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> Path:
    return write_sintel_plates(tmp_path_factory.mktemp("upscale-plates"))


def _config(plates: Path, out: Path, steps: int = 4, **extra) -> upscale_training.UpscalerConfig:
    tiny = dict(batch_size=2, patch=32, features=8, layers=1, checkpoint_every=2, threads=1) | extra
    return upscale_training.UpscalerConfig(plates=[str(plates)], out_dir=str(out), steps=steps, **tiny)


@pytest.fixture(scope="module")
def model_dir(plates, tmp_path_factory) -> str:
    return upscale_training.train_upscaler(_config(plates, tmp_path_factory.mktemp("upscaler"))).path


def test_the_card_lists_every_source_frame_with_its_sha256(plates, model_dir) -> None:
    card = upscale.read_upscaler_card(model_dir)
    files = card.manifest["files"]
    assert [f["path"] for f in files] == [f"plate{p}/plate.{1001 + i}.exr" for p in range(2) for i in range(2)]
    assert all(len(f["sha256"]) == 64 and f["licence"] for f in files)
    assert card.factors == (2, 4) and card.kind == "upscaler" and len(card.manifest_hash) == 64
    raw = json.loads((Path(model_dir) / "parallel_track.json").read_text())
    assert raw["training"]["steps"] == 4 and raw["training"]["grain_profiles"] == 2


def test_upscaling_is_deterministic_and_the_size_the_factor_says(plates, model_dir) -> None:
    low = upscale.read_plate_rgb(plates / "plate0" / "plate.1001.exr")[:24, :40]
    for factor in (2, 4):
        first = upscale.upscale(low, model_dir, factor=factor)
        assert first.shape == (24 * factor, 40 * factor, 3) and first.dtype == np.float32
        assert first.tobytes() == upscale.upscale(low, model_dir, factor=factor).tobytes()
    with pytest.raises(upscale.UpscaleError, match="not ×3"):
        upscale.upscale(low, model_dir, factor=3)


def test_an_untrained_upscaler_is_exactly_its_bicubic_base() -> None:
    net = upscale.ShowUpscaler(8, 1).eval()
    low = torch.rand(1, 3, 12, 16)
    base = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(net(low, 4), base)


def test_upscale_to_goes_the_rest_of_the_way_with_lanczos(plates, model_dir) -> None:
    low = upscale.read_plate_rgb(plates / "plate0" / "plate.1001.exr")[:24, :40]
    out = upscale.upscale_to(low, 200, 120, model_dir)  # ×4 by the model, then ×1.25 by Lanczos
    assert out.shape == (120, 200, 3)
    assert upscale.upscale_to(low, 60, 36, None).shape == (36, 60, 3)


def test_training_resumes_from_a_checkpoint_as_if_never_stopped(plates, model_dir, tmp_path) -> None:
    config = _config(plates, tmp_path / "stopped")
    calls = []
    with pytest.raises(TrainingStopped) as stopped:
        upscale_training.train_upscaler(config, should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert stopped.value.step == 3
    resumed = []
    card = upscale_training.train_upscaler(config, on_progress=lambda step, total, loss: resumed.append(step))
    assert resumed == [4]  # only the last step was left
    weights = (Path(card.path) / upscale.WEIGHTS_NAME).read_bytes()
    assert weights == (Path(model_dir) / upscale.WEIGHTS_NAME).read_bytes()


def test_the_self_ensemble_is_deterministic_and_undoes_each_flip(plates, model_dir) -> None:
    low = upscale.read_plate_rgb(plates / "plate0" / "plate.1001.exr")[:24, :40]
    single = upscale.upscale(low, model_dir, factor=4)
    ensemble = upscale.upscale(low, model_dir, factor=4, ensemble=True)
    assert ensemble.shape == single.shape and ensemble.tobytes() == upscale.upscale(
        low, model_dir, factor=4, ensemble=True).tobytes()
    assert not np.array_equal(ensemble, single)
    # a flipped or transposed input gives the same ensemble, flipped or transposed (to float rounding)
    np.testing.assert_allclose(upscale.upscale(low[:, ::-1], model_dir, factor=4, ensemble=True), ensemble[:, ::-1],
                               atol=1e-5)
    np.testing.assert_allclose(upscale.upscale(low.transpose(1, 0, 2), model_dir, factor=4, ensemble=True),
                               ensemble.transpose(1, 0, 2), atol=1e-5)
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert all(torch.equal(upscale._undo(upscale._view(x, k), k), x) for k in range(8))
    assert len({upscale._view(x, k).flatten()[:7].numpy().tobytes() for k in range(8)}) == 8


def test_detail_sampling_draws_the_patches_where_the_detail_is(tmp_path) -> None:
    """One frame, left half flat grey, right half real Sintel texture: detail-sampled patches land on the right."""
    h, w = 96, 192
    rgb = np.full((h, w, 3), 0.18, np.float32)
    texture = upscale.read_plate_rgb(sorted(realdata.testdata("sintel-demo").glob("*.png"))[0])
    rgb[:, w // 2:] = texture[150:150 + h, 400:400 + w // 2]
    plate = tmp_path / "plate"
    plate.mkdir()
    frames.write_exr(plate / "p.1001.exr", np.concatenate([rgb, np.ones((h, w, 1), np.float32)], 2),
                     display_window=frames.Window(0, 0, w, h))

    def mean_x(share: float) -> float:
        config = _config(plate, tmp_path / "out", batch_size=64, detail_share=share)
        data = upscale_training.load_plates([str(plate / "p.1001.exr")], config)
        starts = []
        g = torch.Generator().manual_seed(0)
        high, _ = upscale_training._batch(data, config, g)
        for crop in high:  # where each crop came from: the flat half has no variance
            starts.append(float(crop.std()) > 1e-3)
        return float(np.mean(starts))

    assert mean_x(1.0) > 0.95  # every patch touches the texture
    assert mean_x(0.0) < 0.8  # uniform: many lie wholly in the flat half


def test_charbonnier_is_a_smooth_l1() -> None:
    a, b = torch.zeros(4), torch.tensor([0.0, 0.1, -0.2, 0.5])
    assert upscale_training._loss(a, b, "l1") == pytest.approx(0.2)
    assert upscale_training._loss(a, b, "charbonnier") == pytest.approx(0.2, abs=1e-3)
    assert upscale_training._loss(a, a, "charbonnier") == pytest.approx(1e-3)
    with pytest.raises(TrainingError, match="loss must be one of"):
        _config(Path("."), Path("."), loss="mse").check()


def test_the_bench_counts_held_out_frames_the_upscaler_trained_on(plates, model_dir, tmp_path) -> None:
    from tests.bench.upscale import held_out_overlap

    trained = str(plates / "plate1" / "plate.1002.exr")
    unseen = tmp_path / "unseen.exr"
    rgba, _ = frames.read_rgba(trained)
    frames.write_exr(unseen, rgba * 0.5, display_window=frames.Window(0, 0, rgba.shape[1], rgba.shape[0]))
    assert held_out_overlap(model_dir, {"a": [str(unseen)]}) == 0
    assert held_out_overlap(model_dir, {"a": [str(unseen)], "b": [trained]}) == 1  # by content, not by name


def test_the_bench_counts_the_neighbours_the_multi_frame_upscale_reads(plates, model_dir) -> None:
    from tests.bench.upscale import held_out_overlap, neighbours_of

    first = str(plates / "plate1" / "plate.1001.exr")
    read = neighbours_of({"a": [first]})
    assert read == {"a": [first, str(plates / "plate1" / "plate.1002.exr")]}
    assert held_out_overlap(model_dir, read) == 2


def test_the_bench_scores_a_second_multi_frame_configuration_on_the_same_upscales(plates, model_dir) -> None:
    """``--compare-multi``: a second refinement scored in the same run against the same Lanczos reference; with no
    refinement steps it is the single-frame upscale, and with the bench's own configuration its multi-frame one."""
    from tests.bench import upscale as bench

    held = {"p": sorted(str(p) for p in (plates / "plate1").glob("*.exr"))}
    none = bench._evaluate(model_dir, held, compare=replace(bench.MULTI_FRAME, iterations=0))["p"]
    assert none["psnr_gain_db_multi_frame_compare"] == none["psnr_gain_db_single_frame"]
    assert none["psnr_gain_db_multi_frame"] != none["psnr_gain_db_single_frame"]
    same = bench._evaluate(model_dir, held, compare=bench.MULTI_FRAME)["p"]
    assert same["psnr_gain_db_multi_frame_compare"] == same["psnr_gain_db_multi_frame"]
    assert "psnr_gain_db_multi_frame_compare" not in bench._evaluate(model_dir, held, multi=False)["p"]


def test_the_bench_refines_a_compared_configuration_with_its_own_radius(plates, model_dir) -> None:
    """``--compare-multi '{"radius": 0}'`` refines with the frame alone, not with the bench's window."""
    from tests.bench import upscale as bench

    path = str(plates / "plate1" / "plate.1001.exr")
    profile = grain.measure_grain([upscale.read_plate_rgb(path)])
    cache: dict = {}
    alone = bench._multi_frame(model_dir, path, profile, cache, replace(bench.MULTI_FRAME, radius=0))
    low, single = cache[path]
    assert len(cache) == 1  # no neighbour read
    np.testing.assert_array_equal(alone, upscale_video.refine([low], [single], 0, 4, replace(bench.MULTI_FRAME,
                                                                                            radius=0)))
    assert not np.array_equal(alone, bench._multi_frame(model_dir, path, profile, cache, bench.MULTI_FRAME))
    assert len(cache) == 2


def test_the_tuning_bench_refines_each_configuration_with_its_own_radius() -> None:
    from tests.bench.upscale_tune import select

    case = {"frames": [10, 11, 12, 13, 14, 15], "ref": 3, "lows": list("abcdef"), "singles": list("ABCDEF")}
    assert select(case, 1) == (list("cde"), list("CDE"), 1)
    assert select(case, 0) == (["d"], ["D"], 0)
    assert select(case, 5) == (list("abcdef"), list("ABCDEF"), 3)


def test_the_bench_degrades_a_frame_exactly_as_training_does(plates) -> None:
    """The bench's input (upscale_training.degrade, then the card's encoding) is the training's ×4 input."""
    paths = sorted(str(p) for p in (plates / "plate0").glob("*.exr"))
    config = _config(plates, Path("."))
    data = upscale_training.load_plates(paths, config)
    profile = grain.GrainProfile.from_dict(data.profiles[str(plates / "plate0")])
    assert not profile.is_empty
    for i, path in enumerate(paths):
        low = upscale_training.degrade(upscale.read_plate_rgb(path), profile, 4)
        encoded = colour.convert(np.maximum(low, 0.0), "ACEScg", "ACEScct")
        np.testing.assert_allclose(data.low[4][i].float().numpy().transpose(1, 2, 0), encoded, atol=2e-3)


def test_the_same_plate_protocol_never_scores_a_frame_it_trained_on(tmp_path) -> None:
    from tests.bench.upscale import SAME_PLATE_GAP, same_plate_sets

    long, short = tmp_path / "long", tmp_path / "short"
    for folder, n in ((long, 50), (short, 10)):
        folder.mkdir()
        for i in range(n):
            (folder / f"{i:05d}.jpg").write_bytes(b"")
    held = {"long": [str(long / "00000.jpg"), str(long / "00010.jpg")], "short": [str(short / "00003.jpg")]}
    train, scored = same_plate_sets(["elsewhere.jpg"], held, 1)
    index = [int(Path(p).stem) for p in train if "long" in p]
    assert train[0] == "elsewhere.jpg" and index == list(range(30 - SAME_PLATE_GAP))
    assert [int(Path(p).stem) for p in scored["long"]] == [30, 35, 40, 45]
    assert scored["short"] == held["short"] and not any("short" in p for p in train)


def test_it_refuses_bad_plates_and_bad_model_directories(plates, model_dir, tmp_path) -> None:
    with pytest.raises(TrainingError, match="no frames found"):
        upscale_training.train_upscaler(_config(tmp_path / "nothing", tmp_path / "out"))
    with pytest.raises(TrainingError, match="multiple of 4"):
        upscale_training.train_upscaler(_config(plates, tmp_path / "out", patch=30))
    with pytest.raises(upscale.UpscaleError, match="no parallel_track.json"):
        upscale.read_upscaler_card(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    card = json.loads((Path(model_dir) / "parallel_track.json").read_text())
    (broken / "parallel_track.json").write_text(json.dumps(card))
    with pytest.raises(upscale.UpscaleError, match="no upscaler.safetensors"):
        upscale.read_upscaler_card(broken)
    (broken / "parallel_track.json").write_text(json.dumps(card | {"kind": "show_model"}))
    with pytest.raises(upscale.UpscaleError, match="not an upscaler"):
        upscale.read_upscaler_card(broken)


# ------------------------------------------------------------------------------------------ the upscale task


def _dog_shot(root: Path, count: int = 2, size=(144, 256)) -> dict:
    """A real plate (DAVIS dog, ACEScg EXR crops) and a half-resolution element of the dog (its ground-truth mask)."""
    h, w = size
    davis = realdata.testdata("davis16", "dog")
    for i in range(count):
        rgb = upscale.read_plate_rgb(davis / "frames" / f"{i:05d}.jpg")[200:200 + h, 300:300 + w]
        mask = np.asarray(oiio.ImageBuf(str(davis / "masks" / f"{i:05d}.png")).get_pixels(oiio.FLOAT))
        mask = mask[200:200 + h, 300:300 + w, 0] > 0.5
        rgb = grain.apply_grain(rgb, _grain_profile(), seed=1, frame=i)  # a plate with grain to measure
        full = frames.Window(0, 0, w, h)
        frames.write_exr(root / f"plate.{1001 + i}.exr", np.concatenate([rgb, np.ones((h, w, 1), np.float32)], 2),
                         display_window=full)
        small = frames.resize(np.concatenate([rgb * mask[..., None], mask[..., None]], 2).astype(np.float32),
                              w // 2, h // 2)
        frames.write_exr(root / f"element.{1001 + i}.exr", small, display_window=frames.Window(0, 0, w // 2, h // 2))
        frames.write_exr(root / f"matte.{1001 + i}.exr", small[..., 3:], display_window=frames.Window(0, 0, w // 2, h // 2),
                         channel_names=("A",))
    return {"plate": str(root / "plate.####.exr"), "element": str(root / "element.####.exr"),
            "matte": str(root / "matte.####.exr")}


def _grain_profile():
    levels = (0.02, 0.1, 0.3, 0.8)
    channel = grain.ChannelGrain(levels, tuple(0.03 * v for v in levels), (1.0,) * grain.RADIAL_BINS)
    return grain.GrainProfile((channel,) * 3, ((1, 0.6, 0.6), (0.6, 1, 0.6), (0.6, 0.6, 1)))


@pytest.fixture(scope="module")
def dog_shot(tmp_path_factory) -> dict:
    return _dog_shot(tmp_path_factory.mktemp("dog-shot"))


def _upscale_spec(shot: dict, model_dir: str, out: Path, **extra) -> VariationSpec:
    return VariationSpec(plate_pattern=shot["plate"], matte_pattern=None, rect=None, first=1001, last=1002,
                         model_path=model_dir, seed=42, steps=1, out_dir=str(out), task="upscale", proxy_width=128,
                         **extra)


def test_the_upscale_task_finishes_an_element_at_plate_size_with_the_plates_grain(dog_shot, model_dir, tmp_path):
    seen = []
    result = upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "a"), params={"element": dog_shot["element"]},
                             on_frame=lambda f, exr, proxy: seen.append(f))
    assert seen == [1001, 1002] and result.frames == [1001, 1002]
    again = upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "b"), params={"element": dog_shot["element"]})
    for f in (1001, 1002):
        rgba, header = frames.read_rgba(frame_path(result.exr_pattern, f))
        assert header.display_window == frames.Window(0, 0, 256, 144)
        assert rgba.tobytes() == frames.read_rgba(frame_path(again.exr_pattern, f))[0].tobytes()
        outside = rgba[..., 3] == 0
        assert outside.any() and not rgba[outside].any()
    spec = oiio.ImageInput.open(frame_path(result.exr_pattern, 1001)).spec()
    card = upscale.read_upscaler_card(model_dir)
    assert spec.getattribute("parallel_track:upscaler_manifest_sha256") == card.manifest_hash
    assert len(spec.getattribute("parallel_track:grain_profile_sha256")) == 64
    first, second = (frames.read_rgba(frame_path(result.exr_pattern, f))[0] for f in (1001, 1002))
    inside = (first[..., 3] == 1) & (second[..., 3] == 1)
    grain1 = first[..., 1] - frames.resize(frames.resize(first[..., 1], 64, 36), 256, 144)
    grain2 = second[..., 1] - frames.resize(frames.resize(second[..., 1], 64, 36), 256, 144)
    assert abs(np.corrcoef(grain1[inside], grain2[inside])[0, 1]) < 0.5  # new grain every frame


def test_the_multi_frame_upscale_task_uses_the_neighbours_and_is_deterministic(dog_shot, model_dir, tmp_path):
    params = {"element": dog_shot["element"], "multi_frame": 1}
    multi = upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "m1"), params=params)
    again = upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "m2"), params=params)
    single = upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "s"), params={"element": dog_shot["element"]})
    for f in (1001, 1002):
        rgba = frames.read_rgba(frame_path(multi.exr_pattern, f))[0]
        assert rgba.tobytes() == frames.read_rgba(frame_path(again.exr_pattern, f))[0].tobytes()
        one = frames.read_rgba(frame_path(single.exr_pattern, f))[0]
        assert np.array_equal(rgba[..., 3], one[..., 3]) and not np.array_equal(rgba[..., :3], one[..., :3])
        outside = rgba[..., 3] == 0
        assert outside.any() and not rgba[outside].any()
    method = {name: oiio.ImageInput.open(frame_path(r.exr_pattern, 1001)).spec().getattribute(
        "parallel_track:upscale_method") for name, r in (("multi", multi), ("single", single))}
    assert method == {"multi": "multi-frame, 1 frame each side", "single": "single-frame"}  # the header says which
    with pytest.raises(ValueError, match="multi_frame"):
        upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "never"),
                        params={"element": dog_shot["element"], "multi_frame": -1})
    assert not (tmp_path / "never").exists()


def test_the_comp_outside_the_elements_alpha_is_the_plate_bit_for_bit(dog_shot, model_dir):
    element = frames.read_rgba(frame_path(dog_shot["element"], 1001))[0]
    plate = frames.read_channels(frame_path(dog_shot["plate"], 1001), ("R", "G", "B"))
    up = finish_element(element, 256, 144, model_dir, _grain_profile(), seed=3, frame=1001)
    delivered = _delivered(up, plate, frames.Window(0, 0, 256, 144), False, [])
    outside = up[..., 3] == 0
    assert delivered.proxy_rgb[outside].tobytes() == plate[outside].tobytes()
    assert not np.array_equal(delivered.proxy_rgb[~outside], plate[~outside])


def test_a_matte_is_resized_and_never_grained(dog_shot, model_dir, tmp_path):
    result = upscale_element(_upscale_spec(dog_shot, model_dir, tmp_path / "m"), params={"element": dog_shot["matte"]})
    header = frames.read_header(frame_path(result.exr_pattern, 1001))
    assert header.channels == ("A",)
    matte = frames.read_matte(frame_path(result.exr_pattern, 1001))
    source = frames.read_matte(frame_path(dog_shot["matte"], 1001))
    assert np.allclose(matte, np.clip(upscale.lanczos(source[..., None], 256, 144)[..., 0], 0, 1), atol=1e-3)


def test_the_upscale_task_refuses_what_it_cannot_do_before_writing(dog_shot, model_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="params\\['element'\\]"):
        upscale_element(_upscale_spec(dog_shot, model_dir, out))
    with pytest.raises(upscale.UpscaleError, match="not an upscaler"):
        upscale_element(_upscale_spec(dog_shot, tiny_model_dir, out), params={"element": dog_shot["element"]})
    with pytest.raises(ValueError, match="frame\\(s\\) missing"):
        upscale_element(_upscale_spec(dog_shot, model_dir, out, ), params={"element": dog_shot["element"] + ".x"})
    assert not out.exists()


# ------------------------------------------------------------------------------------------ the finishing stage


def _finished(plate: dict, model: str, out: Path, **changes) -> list[np.ndarray]:
    result = generate_variation(variation_spec(plate, model, out, **changes))
    return [frames.read_rgba(frame_path(result.exr_pattern, f))[0] for f in result.frames]


def test_the_finishing_stage_upscales_the_card_and_regrains_inside_the_matte_only(
    small_demo_plate, tiny_model_dir, model_dir, tmp_path
):
    profile = _grain_profile().to_dict()
    plain = _finished(small_demo_plate, tiny_model_dir, tmp_path / "plain")
    finished = _finished(small_demo_plate, tiny_model_dir, tmp_path / "a", upscaler_path=model_dir,
                         grain_profile=profile)
    again = _finished(small_demo_plate, tiny_model_dir, tmp_path / "b", upscaler_path=model_dir,
                      grain_profile=profile)
    assert [f.tobytes() for f in finished] == [f.tobytes() for f in again]
    for before, after in zip(plain, finished, strict=True):
        outside = before[..., 3] == 0
        assert np.array_equal(after[..., 3], before[..., 3])  # the matte is the matte
        assert not after[outside].any()  # nothing outside it: over the plate, the plate stays bit for bit
        assert not np.array_equal(after[~outside], before[~outside])
    header = oiio.ImageInput.open(str(tmp_path / "a" / "exr" / f"element.{SMALL_FIRST}.exr")).spec()
    assert header.getattribute("parallel_track:upscaler_manifest_sha256") == upscale.read_upscaler_card(
        model_dir).manifest_hash
    assert header.getattribute("parallel_track:grain_profile_sha256") == grain.GrainProfile.from_dict(
        profile).sha256()


def test_without_an_upscaler_or_grain_the_variation_is_as_before(small_demo_plate, tiny_model_dir, tmp_path):
    plain = _finished(small_demo_plate, tiny_model_dir, tmp_path / "plain")
    empty = _finished(small_demo_plate, tiny_model_dir, tmp_path / "empty", grain_profile=grain.EMPTY.to_dict())
    assert [f.tobytes() for f in plain] == [f.tobytes() for f in empty]
