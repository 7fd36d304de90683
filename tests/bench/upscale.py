"""Show upscaler and grain bench on real footage: ``python -m tests.bench.upscale [--data DIR] [--steps N]``.

Upscaler: a show upscaler is trained by the engine's own training (the one ``manage.py train_upscaler`` runs, with
:data:`RECIPE`) for a fixed number of optimiser steps (``--steps``; the seconds it took and the load average are
reported, never budgeted, so the figure does not depend on the machine's load) on some sequences of the data
(DAVIS 2016: blackswan, car-shadow, dog, horsejump-high, every ``--train-every``-th frame), then evaluated on frames
it never saw: the other sequences (camel every 10th frame, kite-surf every 10th, Sintel every 3rd; ``--held-out``
picks which: ``clean``, the default, from frame 5 of camel and kite-surf and frame 1 of Sintel, a rule fixed before
any of them was looked at; ``first``, the earlier runs' set from frame 0, three of whose camel frames were looked at
while the multi-frame recipe was first chosen).
``held_out_in_training`` counts the scored frames whose sha256 the upscaler's training manifest lists (0, checked).
Each held-out frame is degrained and box-downscaled ×4 (:func:`upscale_training.degrade`, the very degradation the
training learns to undo, with the held-out plate's own grain profile); the same low-resolution frame is upscaled ×4
by ours and by OpenImageIO's Lanczos-3 (``ImageBufAlgo.resize(..., filtername="lanczos3")``, the reference, same
run), and both are scored against the original in its own sRGB encoding: PSNR (``psnr_gain_db``, ours minus
Lanczos, mean over frames) and SSIM (Gaussian 11×11, σ 1.5, on luma). Diagnostics: ``psnr_gain_db_vs_degrained``
(the same gain scored against the degrained original: how much the target's grain and JPEG noise, which no
upscaler can predict, dilutes it), ``psnr_gain_db_ensemble`` and ``fps_2k_ensemble`` (``--ensemble``: the ×8
self-ensemble, flips and transposes averaged).

Multi-frame (the default; ``--single-frame`` skips it): each held-out frame is also upscaled with its neighbours
(:mod:`upscale_video`, :data:`MULTI_FRAME`: the frames within the radius in its own sequence, each degraded like it,
none trained on: ``neighbours_in_training`` counts them against the manifest, 0). ``psnr_gain_db`` and
``ssim_ours`` are then the multi-frame figures (``ours`` says which); ``psnr_gain_db_single_frame`` and
``psnr_gain_db_multi_frame`` are both printed, against the same Lanczos reference. ``fps_2k_multi_frame``: per
frame of a sequence at 2K, its single-frame upscale plus its refinement (``refine_seconds_2k``). ``--same-plate``: the show's-own-plates protocol (:func:`same_plate_sets`): the
upscaler also trains on the early frames of camel and kite-surf and is scored on their late frames, 10 or more
frames after the last it trained on. ``--multi-frame JSON``: MultiFrameConfig fields over :data:`MULTI_FRAME`;
``--compare-multi JSON``: a second multi-frame configuration scored in the same run on the same single-frame
upscales against the same Lanczos reference (``psnr_gain_db_multi_frame_compare``, overall and per set): choose a
configuration on the tuning frames (``tests.bench.upscale_tune``), never with this.

Grain: each plate's profile is measured (grain.measure_grain); a flat element (one constant patch per measured
intensity, the plate's colours) is regrained from it and measured again with the same estimator.
``grain_amplitude_error``: mean relative error of the regrained amplitude-versus-intensity curve against the plate's
at the plate's intensities; ``grain_spectrum_error``: relative L2 error of the radially averaged power spectrum over
the rings the estimator reads (from 1/8 cycle per pixel up). Plates: OpenEXR's Carrots.exr (a real camera frame,
Sony SLT-A99, linear EXR: real sensor noise, not compressed), and the held-out DAVIS sequences (JPEG: what grain
survived the compression, and picture texture the estimator cannot tell from it).

``fps_2k``: our ×4 upscale to 1920×1080 (from 480×270, a real frame), on one thread, beside Lanczos's in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from generation.engine import colour, frames, grain, training, upscale, upscale_training, upscale_video
from tests.realdata import find_testdata

TRAIN_SEQUENCES = ("blackswan", "car-shadow", "dog", "horsejump-high")
HELD_OUT_SEQUENCES = ("camel", "kite-surf")
FACTOR = 4
TRAIN_EVERY = 1  # every frame of the training sequences (3 before 2026-12-04: the tuning frames are off the manifest then)
SAME_PLATE_GAP, SAME_PLATE_MIN = 10, 30
# The scored frames of the held-out sequences: (first DAVIS frame, first Sintel frame), then every 10th / 3rd.
# "first" (0, 0) is the set of the runs before 2026-12-02 18:30; three of its camel frames were looked at while the
# multi-frame recipe was first chosen, so "clean" (5, 1), fixed before any of its frames was looked at, is the
# default: frames 5, 15, … of camel and kite-surf, 1, 4, 7 of Sintel.
HELD_OUT_STARTS = {"clean": (5, 1), "first": (0, 0)}
# The training recipe the bench measures (UpscalerConfig fields; its defaults for the rest): 64 features x 8 layers
# (335 k parameters), lr 1e-3, the gradient clipped to 0.5, 4000 steps; `train_upscaler --features 64 --layers 8 --lr
# 0.001 --clip-grad 0.5 --steps 4000` trains it for a show. 6000 steps of the 57 k default net before 2026-12-04.
RECIPE = {"steps": 4000, "features": 64, "layers": 8, "lr": 0.001, "clip_grad": 0.5}
MULTI_FRAME = upscale_video.MultiFrameConfig()  # the multi-frame refinement measured (its defaults)


def _srgb(linear: np.ndarray) -> np.ndarray:
    return np.clip(colour.convert(np.ascontiguousarray(linear, np.float32), "ACEScg", upscale.SOURCE_SPACE_8BIT),
                   0.0, 1.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) on Rec.709 luma of two (H, W, 3) [0, 1] images, Gaussian window 11, σ 1.5."""
    weights = torch.tensor([0.2126, 0.7152, 0.0722], dtype=torch.float64)
    x, y = (torch.from_numpy(v.astype(np.float64)) @ weights for v in (a, b))
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t[None, None], window)[0, 0]

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def _frames_of(folder: Path, every: int, start: int = 0) -> list[str]:
    return upscale_training.collect_plates(str(folder))[start::every]


def _sets(data: Path, train_every: int = 3, held_out: str = "clean") -> tuple[list[str], dict[str, list[str]]]:
    """Training frames and the held-out sets; DAVIS-shaped data by sequence name, any other folder of sequences
    by order (the first two thirds of the sequences train, the rest are held out). ``held_out``: which frames of
    the held-out sequences are scored (:data:`HELD_OUT_STARTS`)."""
    davis = data / "davis16"
    davis_start, sintel_start = HELD_OUT_STARTS[held_out]
    if davis.is_dir():
        train = [p for s in TRAIN_SEQUENCES for p in _frames_of(davis / s / "frames", train_every)]
        held = {s: _frames_of(davis / s / "frames", 10, davis_start) for s in HELD_OUT_SEQUENCES}
        if (data / "sintel-demo").is_dir():
            held["sintel"] = _frames_of(data / "sintel-demo", 3, sintel_start)
        return train, held
    sequences = sorted({str(Path(p).parent) for p in upscale_training.collect_plates(str(data))})
    if len(sequences) < 2:
        raise SystemExit(f"{data}: need at least two sequences (folders of frames), one to train, one held out")
    cut = max(1, (2 * len(sequences)) // 3)
    train = [p for s in sequences[:cut] for p in _frames_of(Path(s), train_every)]
    return train, {Path(s).name: _frames_of(Path(s), 10, davis_start) for s in sequences[cut:]}


def same_plate_sets(train: list[str], held: dict[str, list[str]], train_every: int) -> tuple[list[str], dict]:
    """The show's-own-plates variant: the upscaler also trains on the early frames of each held-out sequence and is
    scored on its late frames, :data:`SAME_PLATE_GAP` frames or more after the last one it trained on (the scored
    frames are still never trained on: the same plate, not the same pixels). A sequence shorter than
    :data:`SAME_PLATE_MIN` frames stays wholly held out (Sintel's ten frames)."""
    train, scored = list(train), {}
    for name, paths in held.items():
        every = upscale_training.collect_plates(str(Path(paths[0]).parent))
        if len(every) < SAME_PLATE_MIN:
            scored[name] = paths
            continue
        cut = int(0.6 * len(every))
        train += every[:cut - SAME_PLATE_GAP:train_every]
        scored[name] = every[cut::5]
    return train, scored


def _train(train: list[str], out: str, recipe: dict) -> tuple[str, dict]:
    """Train for a fixed number of optimiser steps (not a wall-clock budget: the figure must not depend on the
    machine's load); the seconds it took and the load average are reported beside it."""
    config = upscale_training.UpscalerConfig(plates=train, out_dir=out, name="bench-upscaler", threads=1,
                                             licence="benchmark footage (see testdata README)",
                                             checkpoint_every=max(1, min(recipe["steps"], 500)),
                                             created_by="tests.bench.upscale", **recipe)
    load_before, started = os.getloadavg()[0], time.perf_counter()
    card = upscale_training.train_upscaler(config)
    info = json.loads((Path(card.path) / "parallel_track.json").read_text())["training"]
    return card.path, {"train_frames": len(train), "train_steps": info["steps"],
                       "train_seconds": round(time.perf_counter() - started, 1),
                       "train_step_seconds": info["seconds"], "train_parameters": info["parameters"],
                       "train_load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                       "train_recipe": config.recipe()}


def held_out_overlap(model: str, held: dict[str, list[str]]) -> int:
    """How many held-out frames the upscaler's training manifest lists (by sha256 of the file): must be 0."""
    card = upscale.read_upscaler_card(model)
    trained = {f["sha256"] for f in card.manifest["files"]}
    return sum(training._sha256(p) in trained for paths in held.values() for p in paths)


def _low_and_target(path: str, profile: grain.GrainProfile) -> tuple[np.ndarray, np.ndarray]:
    """A frame cropped to a multiple of the factor (scene-linear) and its degraded ×4-smaller input."""
    rgb = upscale.read_plate_rgb(path)
    h, w = (rgb.shape[0] // FACTOR) * FACTOR, (rgb.shape[1] // FACTOR) * FACTOR
    rgb = np.ascontiguousarray(rgb[:h, :w])
    return rgb, upscale_training.degrade(rgb, profile, FACTOR)


def _multi_frame(model: str, path: str, profile: grain.GrainProfile, cache: dict,
                 config: upscale_video.MultiFrameConfig | None = None) -> np.ndarray:
    """The held-out frame at ``path`` upscaled with its neighbours (every frame of its sequence within the radius,
    none of them trained on), each degraded like it."""
    config = config or MULTI_FRAME
    sequence = upscale_training.collect_plates(str(Path(path).parent))
    i = sequence.index(path)
    idx = upscale_video.window(i, len(sequence), config.radius)
    for j in idx:
        if sequence[j] not in cache:
            low = _low_and_target(sequence[j], profile)[1]
            cache[sequence[j]] = (low, np.maximum(upscale.upscale(low, model, factor=FACTOR), 0.0))
    lows, singles = zip(*(cache[sequence[j]] for j in idx), strict=True)
    return upscale_video.refine(list(lows), list(singles), idx.index(i), FACTOR, config)


def neighbours_of(held: dict[str, list[str]], radius: int | None = None) -> dict[str, list[str]]:
    """Every frame the multi-frame upscale of the held-out frames reads (the scored ones and their neighbours
    within ``radius``, default the bench's)."""
    radius = MULTI_FRAME.radius if radius is None else radius
    out = {}
    for name, paths in held.items():
        sequence = upscale_training.collect_plates(str(Path(paths[0]).parent))
        idx = sorted({j for p in paths for j in upscale_video.window(sequence.index(p), len(sequence), radius)})
        out[name] = [sequence[j] for j in idx]
    return out


def _evaluate(model: str, held: dict[str, list[str]], ensemble: bool = False, multi: bool = True,
              compare: upscale_video.MultiFrameConfig | None = None) -> dict:
    """Per held-out set the scores; ``compare``: a second multi-frame configuration scored on the same frames,
    the same single-frame upscales and the same Lanczos reference (``psnr_gain_db_multi_frame_compare``)."""
    rows = {}
    for name, paths in held.items():
        profile = grain.measure_grain([upscale.read_plate_rgb(p) for p in paths[:upscale_training.PROFILE_FRAMES]])
        scores, cache = [], {}
        for p in paths:
            rgb, low = _low_and_target(p, profile)
            h, w = rgb.shape[:2]
            target = _srgb(rgb)
            single = upscale.upscale(low, model, factor=FACTOR, ensemble=ensemble)
            ours = _srgb(single)
            reference = np.clip(upscale.lanczos(_srgb(low), w, h), 0.0, 1.0)
            clean = _srgb(grain.degrain(rgb, profile))  # diagnostic: the target without what degrain removes
            row = [psnr(ours, target), psnr(reference, target), ssim(ours, target), ssim(reference, target),
                   psnr(ours, clean) - psnr(reference, clean), psnr(clean, target)]
            if multi:
                video = _srgb(_multi_frame(model, p, profile, cache))
                row += [psnr(video, target), ssim(video, target), psnr(video, clean) - psnr(reference, clean)]
            if multi and compare is not None:
                row.append(psnr(_srgb(_multi_frame(model, p, profile, cache, compare)), target))
            scores.append(row)
        s = np.array(scores)
        rows[name] = {"frames": len(paths), "psnr_single": round(float(s[:, 0].mean()), 3),
                      "psnr_lanczos": round(float(s[:, 1].mean()), 3),
                      "psnr_gain_db_single_frame": round(float((s[:, 0] - s[:, 1]).mean()), 3),
                      "ssim_single": round(float(s[:, 2].mean()), 4), "ssim_lanczos": round(float(s[:, 3].mean()), 4),
                      "psnr_gain_db_single_vs_degrained": round(float(s[:, 4].mean()), 3),
                      "psnr_degrained_vs_original": round(float(s[:, 5].mean()), 3)}
        if multi:
            rows[name] |= {"psnr_multi": round(float(s[:, 6].mean()), 3),
                           "psnr_gain_db_multi_frame": round(float((s[:, 6] - s[:, 1]).mean()), 3),
                           "ssim_multi": round(float(s[:, 7].mean()), 4),
                           "psnr_gain_db_multi_vs_degrained": round(float(s[:, 8].mean()), 3)}
        if multi and compare is not None:
            rows[name]["psnr_gain_db_multi_frame_compare"] = round(float((s[:, 9] - s[:, 1]).mean()), 3)
    return rows


def flat_element(profile: grain.GrainProfile, size: int = 160) -> np.ndarray:
    """float32 (2·size, ⌈n/2⌉·size, 3): one constant patch per measured intensity of the profile."""
    levels = np.array([c.intensity for c in profile.channels])
    n = min(len(c.intensity) for c in profile.channels)
    columns = (n + 1) // 2
    element = np.zeros((2 * size, columns * size, 3), np.float32)
    for i in range(n):
        y, x = divmod(i, columns)
        element[y * size:(y + 1) * size, x * size:(x + 1) * size] = levels[:, i]
    return element


def grain_match(plate: grain.GrainProfile, regrained: grain.GrainProfile) -> tuple[float, float]:
    """(amplitude error, spectrum error) of ``regrained`` against ``plate``, means over channels."""
    amplitude, spectrum = [], []
    for want, got in zip(plate.channels, regrained.channels, strict=True):
        ref = np.array(want.amplitude)
        amplitude.append(float(np.mean(np.abs(got.amplitude_at(np.array(want.intensity)) - ref) / ref)))
        a, b = np.array(want.spectrum)[grain.FIRST_RING:], np.array(got.spectrum)[grain.FIRST_RING:]
        spectrum.append(float(np.linalg.norm(b - a) / np.linalg.norm(a)))
    return float(np.mean(amplitude)), float(np.mean(spectrum))


def _grain_rows(data: Path, held: dict[str, list[str]]) -> dict:
    plates: dict[str, list[np.ndarray]] = {}
    carrots = data / "openexr-images" / "ScanLines" / "Carrots.exr"
    if carrots.is_file():
        plates["carrots"] = [frames.read_rgba(carrots)[0][..., :3]]
    for name, paths in held.items():
        plates[name] = [upscale.read_plate_rgb(p) for p in paths[:upscale_training.PROFILE_FRAMES]]
    rows = {}
    for name, images in plates.items():
        profile = grain.measure_grain(images)
        if profile.is_empty:
            rows[name] = {"empty_profile": True}
            continue
        element = grain.apply_grain(flat_element(profile), profile, seed=7, frame=1)
        amp, spec = grain_match(profile, grain.measure_grain([element]))
        mid = profile.channels[1]
        rows[name] = {"amplitude_error": round(amp, 4), "spectrum_error": round(spec, 4),
                      "relative_amplitude_green": round(float(np.median(np.array(mid.amplitude) / mid.intensity)), 4)}
    return rows


def _fps(model: str, held: dict[str, list[str]], ensemble: bool = False, multi: bool = False) -> dict:
    torch.set_num_threads(1)
    first = next(iter(held.values()))[0]
    rgb = upscale.read_plate_rgb(first)
    low = upscale.lanczos(rgb, 480, 270)
    timings = {}
    for name, run in (("ours", lambda: upscale.upscale(low, model, factor=4, ensemble=ensemble)),
                      ("lanczos", lambda: upscale.lanczos(low, 1920, 1080))):
        run()
        started = time.perf_counter()
        for _ in range(2):
            out = run()
        timings[name] = 2 / (time.perf_counter() - started)
        assert out.shape == (1080, 1920, 3)
    result = {"fps_2k": round(timings["ours"], 3), "fps_2k_lanczos": round(timings["lanczos"], 3)}
    if multi:  # per frame of a sequence: its single-frame upscale (made once, shared) plus its refinement
        sequence = upscale_training.collect_plates(str(Path(first).parent))[:2 * MULTI_FRAME.radius + 1]
        lows = [upscale.lanczos(upscale.read_plate_rgb(p), 480, 270) for p in sequence]
        singles = [np.maximum(upscale.upscale(x, model, factor=4), 0.0) for x in lows]
        started = time.perf_counter()
        out = upscale_video.refine(lows, singles, len(lows) // 2, 4, MULTI_FRAME)
        refine_seconds = time.perf_counter() - started
        assert out.shape == (1080, 1920, 3)
        result |= {"fps_2k_multi_frame": round(1 / (1 / timings["ours"] + refine_seconds), 4),
                   "refine_seconds_2k": round(refine_seconds, 1)}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="a folder of frame sequences (default: testdata)")
    parser.add_argument("--steps", type=int, default=RECIPE["steps"],
                        help="optimiser steps to train (fixed: the seconds are reported, not budgeted)")
    parser.add_argument("--train-every", type=int, default=TRAIN_EVERY,
                        help="train on every Nth frame of the training sequences (1: all of them)")
    parser.add_argument("--ensemble", action="store_true",
                        help="also evaluate the single-frame x8 self-ensemble (eight times the inference)")
    parser.add_argument("--single-frame", dest="multi", action="store_false",
                        help="skip the multi-frame refinement (score the single-frame upscaler only)")
    parser.add_argument("--same-plate", action="store_true",
                        help="train also on the early frames of the held-out sequences, score their late frames")
    parser.add_argument("--held-out", choices=sorted(HELD_OUT_STARTS), default="clean",
                        help="which frames of the held-out sequences are scored (see HELD_OUT_STARTS)")
    parser.add_argument("--multi-frame", type=json.loads, default={},
                        help='JSON of MultiFrameConfig fields over MULTI_FRAME, e.g. \'{"split_window": 9}\'')
    parser.add_argument("--compare-multi", type=json.loads, default=None,
                        help="JSON of MultiFrameConfig fields over MULTI_FRAME: a second multi-frame configuration "
                             "scored in the same run on the same upscales (psnr_gain_db_multi_frame_compare)")
    parser.add_argument("--model", default="", help="evaluate this upscaler instead of training one")
    parser.add_argument("--recipe", type=json.loads, default={},
                        help='JSON of UpscalerConfig fields over RECIPE for the training, e.g. \'{"features": 48}\'')
    parser.add_argument("--save-model", default="",
                        help="train into this folder and keep it (resumes from its checkpoints) instead of a temporary one")
    args = parser.parse_args(argv)
    data = args.data or find_testdata()
    if data is None:
        raise SystemExit("no test data: pass --data or set PT_TESTDATA")
    torch.set_num_threads(1)
    global MULTI_FRAME
    MULTI_FRAME = replace(MULTI_FRAME, **args.multi_frame)
    compare = None if args.compare_multi is None else replace(MULTI_FRAME, **args.compare_multi)
    train, held = _sets(Path(data), args.train_every, args.held_out)
    if args.same_plate:
        train, held = same_plate_sets(train, held, args.train_every)
    result: dict = {"data": str(data), "protocol": "same-plate" if args.same_plate else "other-sequences",
                    "held_out": args.held_out,
                    "load_average_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory(prefix="pt-bench-upscale-") as tmp:
        model = args.model
        if not model:
            model, info = _train(train, args.save_model or tmp, RECIPE | args.recipe | {"steps": args.steps})
            result |= info
        result["held_out_frames"] = sum(len(v) for v in held.values())
        result["held_out_in_training"] = held_out_overlap(model, held)
        if args.multi:
            radius = max(MULTI_FRAME.radius, compare.radius if compare is not None else 0)
            result["neighbours_in_training"] = held_out_overlap(model, neighbours_of(held, radius))
        rows = _evaluate(model, held, multi=args.multi, compare=compare)
        grain_rows = _grain_rows(Path(data), held)
        result |= _summary(rows, grain_rows) | _fps(model, held, multi=args.multi)
        if args.multi:
            result["multi_frame_config"] = asdict(MULTI_FRAME)
        if args.multi and compare is not None:
            result |= {"multi_frame_compare_config": asdict(compare), "psnr_gain_db_multi_frame_compare": round(
                float(np.average([r["psnr_gain_db_multi_frame_compare"] for r in rows.values()],
                                 weights=[r["frames"] for r in rows.values()])), 4)}
        if args.ensemble:
            ensemble = _evaluate(model, held, ensemble=True, multi=False)
            result |= {"psnr_gain_db_ensemble": _summary(ensemble, grain_rows)["psnr_gain_db_single_frame"],
                       "ssim_ours_ensemble": _summary(ensemble, grain_rows)["ssim_single"],
                       "fps_2k_ensemble": _fps(model, held, ensemble=True)["fps_2k"]}
        result |= {"per_set": rows, "grain_per_plate": grain_rows,
                   "load_average_end": round(os.getloadavg()[0], 1)}
        if args.ensemble:
            result["per_set_ensemble"] = ensemble
    print(json.dumps(result))
    return result


def _summary(rows: dict, grain_rows: dict) -> dict:
    """The headline: ``psnr_gain_db`` / ``ssim_ours`` are the multi-frame upscale's when it was measured (a video
    frame upscaled with its neighbours), else the single-frame upscaler's; both are always named as well."""
    every = list(rows.values())
    weights = np.array([r["frames"] for r in every], float)

    def mean(key: str) -> float:
        return round(float(np.average([r[key] for r in every], weights=weights)), 4)

    measured = {k: v for k, v in grain_rows.items() if "amplitude_error" in v}
    real = measured.get("carrots") or next(iter(measured.values()), {})
    figures = {"psnr_gain_db_single_frame": mean("psnr_gain_db_single_frame"), "ssim_single": mean("ssim_single"),
               "ssim_lanczos": mean("ssim_lanczos"),
               "psnr_gain_db_single_vs_degrained": mean("psnr_gain_db_single_vs_degrained")}
    multi = "psnr_gain_db_multi_frame" in every[0]
    if multi:
        figures |= {"psnr_gain_db_multi_frame": mean("psnr_gain_db_multi_frame"), "ssim_multi": mean("ssim_multi"),
                    "psnr_gain_db_multi_vs_degrained": mean("psnr_gain_db_multi_vs_degrained")}
    headline = {"psnr_gain_db": figures["psnr_gain_db_multi_frame" if multi else "psnr_gain_db_single_frame"],
                "ssim_ours": figures["ssim_multi" if multi else "ssim_single"],
                "ours": "multi-frame" if multi else "single-frame"}
    return headline | figures | {
        "grain_amplitude_error": real.get("amplitude_error"), "grain_spectrum_error": real.get("spectrum_error"),
        "grain_plate": "carrots" if "carrots" in measured else next(iter(measured), None)}


if __name__ == "__main__":
    main(sys.argv[1:])
