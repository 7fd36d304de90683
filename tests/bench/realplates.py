"""Real plates: camera track accuracy, coverage and flow flicker of variations on real footage.

python -m tests.bench.realplates [--plates DIR] [--frames N] → one JSON object (last line).

Plates: Beachball (locked-off, a ball moving, motion vectors), Sintel (slow camera move), DAVIS dog,
kite-surf and car-shadow (handheld, moving objects; their ground-truth object masks are excluded from the
camera track), and the demo plate; ``--plates DIR`` runs instead on every folder of DIR (an EXR or
PNG/JPG sequence, optionally a ``matte``/``mattes`` subfolder of region mattes; without one the region is
the top third of the frame, a drawn rectangle). JPG/PNG are read through OIIO and converted to scene-linear
ACEScg through OCIO ("sRGB - Texture") into a temporary folder of EXRs.

Per plate and overall:
- coverage_min: the worst variation's fraction of matte pixels that received generated content (goal 1.0);
- flicker_ratio_flow_max: the worst variation's flow warping error over the plate's own (goal ≤ 1.2);
- track_error_px_p95: the 95th percentile corner error of the camera track on the plate's first frame moved
  by known translations, zooms, rolls and a mix (cv2.warpPerspective on arrays; goal ≤ 0.5 px). The
  reference in the same run: the old phase-correlation shift track on the same frames (track_error_px_p95_shift);
- seconds_per_variation_frame: wall time of a variation over its frames;
- overall: the worst plate's figure of each, and track_error_px_p95_pooled over every plate's known moves;
- track_model: the model the plate's own track chose, and its notes.
Env: BENCH_MODEL (a model directory; default deploy/demo-model/demo-sky when present, else a tiny seeded
model), BENCH_STEPS (default 4), BENCH_VARIATIONS (default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio

from generation.engine import camera, colour, frames

REPO = Path(__file__).resolve().parents[2]
SRGB = "sRGB - Texture"
IMAGE_EXTS = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def read_rgb(path: str | os.PathLike[str], working_space: str = "ACEScg") -> np.ndarray:
    """A JPG/PNG/EXR frame as scene-linear ``working_space`` float32 (H, W, 3): EXRs as they are,
    display-referred images through OCIO from sRGB."""
    path = os.fspath(path)
    if path.lower().endswith(".exr"):
        return frames.read_channels(path, ("R", "G", "B"))
    buf = oiio.ImageBuf(path)
    if buf.has_error:
        raise ValueError(f"{path}: {buf.geterror()}")
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT), np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    rgb = np.repeat(pixels[..., :1], 3, axis=2) if pixels.shape[2] < 3 else pixels[..., :3]
    return colour.convert(np.ascontiguousarray(rgb), SRGB, working_space)


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """A 0/255 PNG (DAVIS ground truth) or any matte image as float32 (H, W) in [0, 1]."""
    buf = oiio.ImageBuf(os.fspath(path))
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT), np.float32)
    return np.clip(pixels if pixels.ndim == 2 else pixels[..., 0], 0.0, 1.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float32) @ camera.AP1_LUMA


KNOWN_MOVES = {
    # name: (tx, ty up, rot degrees ccw, scale) per frame step, as read_track_file's short form
    "translation": (3.3, -1.7, 0.0, 1.0),
    "zoom": (0.0, 0.0, 0.0, 1.012),
    "roll": (0.0, 0.0, 0.6, 1.0),
    "mix": (2.1, 1.3, 0.3, 1.006),
}


def known_move(rgb: np.ndarray, move: str, n: int = 6, border: int = 48):
    """``n`` frames of a real frame moved by a known per-frame transform (cropped by ``border`` so no
    frame shows an edge) and their true frame-0 → frame-k matrices in the cropped coordinates."""
    h, w = rgb.shape[:2]
    tx, ty, rot, scale = KNOWN_MOVES[move]
    shift = np.array([[1, 0, border], [0, 1, border], [0, 0, 1.0]])
    out, truth = [], []
    for k in range(n):
        m = camera.transform_matrix(tx * k, ty * k, rot * k, scale**k, (h, w))
        out.append(cv2.warpPerspective(rgb, m, (w, h), flags=cv2.INTER_CUBIC)[border:-border, border:-border])
        truth.append(np.linalg.inv(shift) @ m @ shift)
    return out, truth


# --------------------------------------------------------------------------------------- plates


def _sequence_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    return files


def _sky_matte(rgb: np.ndarray) -> np.ndarray:
    """A drawn rectangle: the top third of the frame (our own matte, the same rule on every plate)."""
    h, w = rgb.shape[:2]
    matte = np.zeros((h, w), np.float32)
    matte[: max(8, h // 3), w // 8 : w - w // 8] = 1.0
    return matte


def stage_plate(name: str, files: list[Path], out: Path, mattes: list[Path] | None, objects: list[Path] | None,
                count: int) -> dict:
    """Scene-linear EXRs of ``files[:count]`` (frames 1001…), their region mattes and, from ``objects`` (DAVIS
    ground truth), holdout mattes the camera track keeps out, in ``out``."""
    plate_dir, matte_dir, holdout_dir = out / name / "plate", out / name / "matte", out / name / "holdout"
    plate_dir.mkdir(parents=True)
    matte_dir.mkdir()
    holdout_dir.mkdir()
    for k, path in enumerate(files[:count]):
        rgb = read_rgb(path)
        frame = 1001 + k
        window = frames.Window(0, 0, rgb.shape[1], rgb.shape[0])
        frames.write_exr(
            plate_dir / f"plate.{frame:04d}.exr", rgb, display_window=window, channel_names=("R", "G", "B")
        )
        matte = read_mask(mattes[k]) if mattes else _sky_matte(rgb)
        if objects:
            obj = (read_mask(objects[k]) > 0.5).astype(np.float32)
            frames.write_exr(holdout_dir / f"holdout.{frame:04d}.exr", obj, display_window=window, channel_names=("A",))
            matte = (matte * (1.0 - obj)).astype(np.float32)  # the region never includes the moving object
        frames.write_exr(matte_dir / f"matte.{frame:04d}.exr", matte, display_window=window, channel_names=("A",))
    return {
        "name": name,
        "plate": str(plate_dir / "plate.####.exr"),
        "matte": str(matte_dir / "matte.####.exr"),
        "first": 1001,
        "last": 1000 + min(count, len(files)),
        "holdout": str(holdout_dir / "holdout.####.exr") if objects else None,
        "source": str(files[0].parent),
    }


def shared_plates(root: Path, count: int) -> list[dict]:
    """The real plates of ../shared/testdata (staged into ``root``) and the demo plate."""
    from generation.engine.demo_plate import render_demo_plate
    from tests.realdata import find_testdata

    data = find_testdata()
    if data is None:
        raise SystemExit("real footage not found: set PT_TESTDATA to ../shared/testdata")
    beach = data / "openexr-images" / "Beachball"
    plates = [
        {
            "name": "beachball",
            "plate": str(beach / "singlepart.####.exr"),
            "matte": None,
            # A static region the ball never crosses (left of it, above the floor): the element must stay put.
            "rect": (60, 120, 520, 360),
            "first": 1,
            "last": min(8, count),
            "holdout": None,
            "source": str(beach),
        },
        stage_plate("sintel", sorted((data / "sintel-demo").glob("frame_*.png")), root, None, None, count),
    ]
    for seq in ("dog", "kite-surf", "car-shadow"):
        folder = data / "davis16" / seq
        objects = sorted((folder / "masks").glob("*.png"))
        plates.append(stage_plate(f"davis-{seq}", sorted((folder / "frames").glob("*.jpg")), root, None, objects,
                                  count))
    demo = render_demo_plate(str(root / "demo"), first=1001, last=1000 + count, width=640, height=360)
    plates.append({"name": "demo", "plate": demo["plate"], "matte": demo["matte"], "first": 1001,
                   "last": 1000 + count, "holdout": None, "source": "demo plate"})
    return plates


def folder_plates(folder: Path, root: Path, count: int) -> list[dict]:
    """Every sub-folder of ``folder`` with an image sequence (and optionally a matte/mattes sub-folder)."""
    plates = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = _sequence_files(sub)
        if not files:
            continue
        matte_dir = next((sub / m for m in ("matte", "mattes") if (sub / m).is_dir()), None)
        mattes = _sequence_files(matte_dir) if matte_dir else None
        if mattes is not None and len(mattes) < min(count, len(files)):
            raise SystemExit(f"{matte_dir}: {len(mattes)} mattes for {len(files)} frames")
        plates.append(stage_plate(sub.name, files, root, mattes, None, count))
    if not plates:
        raise SystemExit(f"{folder}: no folder with an EXR or PNG/JPG sequence")
    return plates


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else 0.0


def track_errors(rgb: np.ndarray) -> tuple[list[float], list[float]]:
    """Corner errors of our track and of the old shift-only track on ``rgb`` moved by every known move."""
    from generation.engine import motion

    ours, shift = [], []
    for move in KNOWN_MOVES:
        moved, truth = known_move(rgb, move)
        lumas = [luma(f) for f in moved]
        track = camera.estimate_track(lumas)
        old = motion.camera_track(lumas)
        size = moved[0].shape[:2]
        for k, t in enumerate(truth[1:], 1):
            ours.append(camera.corner_error(track.matrices[k], t, size))
            m = np.eye(3)
            m[:2, 2] = old[k]
            shift.append(camera.corner_error(m, t, size))
    return ours, shift


def _first_frame_rgb(plate: dict) -> np.ndarray:
    from generation.engine.sequence import frame_path

    path = frame_path(plate["plate"], plate["first"])
    rgb = frames.read_channels(path, ("R", "G", "B"))
    header = frames.read_header(path, verify_pixels=False)
    w, d = header.display_window, header.data_window
    x0, y0 = max(d.x - w.x, 0), max(d.y - w.y, 0)
    # A data window inside the display window (Beachball): only it has pixels, outside is black.
    return rgb[y0 : min(d.y - w.y + d.height, w.height), x0 : min(d.x - w.x + d.width, w.width)]


def measure_variation(plate: dict, result, matte_for) -> tuple[float, float]:
    """Coverage and flow flicker measured from the written files, independently of the engine's own
    figures: a matte pixel counts as covered when the element there has alpha and is not pure black."""
    from generation.engine import qc
    from generation.engine.sequence import frame_path

    coverage, flicker = qc.CoverageMeter(), qc.FlowFlickerMeter()
    for frame in result.frames:
        plate_rgb = frames.read_channels(frame_path(plate["plate"], frame), ("R", "G", "B"))
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, frame))
        matte = matte_for(frame)
        covered = (element[..., 3] > 0) & (np.abs(element[..., :3]).max(axis=2) > 0)
        coverage.add(matte, covered)
        comp = element[..., :3] + plate_rgb * (1.0 - element[..., 3:])
        flicker.add(luma(comp), luma(plate_rgb), matte)
    return coverage.figure(), flicker.ratio()


def run_plate(plate: dict, root: Path, model: str, steps: int, variations: int) -> dict:
    from generation.engine.sequence import frame_path
    from generation.engine.variation import VariationSpec, generate_variation

    ours, shift = track_errors(_first_frame_rgb(plate))
    first, last = plate["first"], plate["last"]
    header = frames.read_header(frame_path(plate["plate"], first), verify_pixels=False)
    rect = plate.get("rect")

    def matte_for(frame: int) -> np.ndarray:
        if rect:
            m = np.zeros((header.display_window.height, header.display_window.width), np.float32)
            x, y, w, h = rect
            m[y : y + h, x : x + w] = 1.0
            return m
        return frames.read_matte(frame_path(plate["matte"], frame))

    covs, flicks, engine_flicks, engine_covs, walls, failures = [], [], [], [], [], []
    for index in range(variations):
        spec = VariationSpec(plate_pattern=plate["plate"], matte_pattern=plate["matte"], rect=rect, first=first,
                             last=last, model_path=model, seed=100 + index, steps=steps,
                             out_dir=str(root / "out" / plate["name"] / f"v{index}"), proxy_width=320,
                             holdout_pattern=plate["holdout"])
        start = time.perf_counter()
        try:
            result = generate_variation(spec)
        except ValueError as error:  # a shot the model cannot cover: refused, no holes written
            failures.append(str(error))
            continue
        walls.append((time.perf_counter() - start) / len(result.frames))
        cov, flick = measure_variation(plate, result, matte_for)
        covs.append(cov)
        flicks.append(flick)
        engine_flicks.append(result.flicker_ratio)
        engine_covs.append(getattr(result, "coverage", None))
    def exclude(k: int) -> np.ndarray:
        region = matte_for(first + k)
        if plate["holdout"]:
            return np.maximum(region, frames.read_matte(frame_path(plate["holdout"], first + k)))
        return region

    track = camera.plate_track([frame_path(plate["plate"], f) for f in range(first, last + 1)], exclude=exclude)
    return {
        "source": plate["source"],
        "frames": last - first + 1,
        "size": [header.display_window.width, header.display_window.height],
        "track_model": track.model,
        "track_source": track.source,
        "track_notes": track.notes[:3],
        "coverage_min": round(min(covs), 4) if covs else None,
        "flicker_ratio_flow_max": round(max(flicks), 3) if flicks else None,
        "engine_flicker_ratio_max": round(max(engine_flicks), 4) if engine_flicks else None,
        "engine_coverage_min": min(engine_covs) if engine_covs and None not in engine_covs else None,
        "track_error_px_p95": round(_p95(ours), 3),
        "track_error_px_p95_shift": round(_p95(shift), 3),
        "track_error_ratio_vs_shift": round(_p95(ours) / max(_p95(shift), 1e-9), 4),
        "seconds_per_variation_frame": round(float(np.median(walls)), 3) if walls else None,
        "refused": failures,
        "_track_errors": ours,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=Path, help="a folder of plate folders (instead of ../shared/testdata)")
    parser.add_argument("--frames", type=int, default=int(os.environ.get("BENCH_FRAMES", "8")))
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    steps = int(os.environ.get("BENCH_STEPS", "4"))
    variations = int(os.environ.get("BENCH_VARIATIONS", "2"))
    with tempfile.TemporaryDirectory(prefix="pt-bench-realplates-") as tmp:
        root = Path(tmp)
        plates = folder_plates(args.plates, root, args.frames) if args.plates else shared_plates(root, args.frames)
        from tests.bench.generation import _model

        model = _model(root)
        per_plate = {}
        for plate in plates:
            per_plate[plate["name"]] = run_plate(plate, root, model, steps, variations)
            shown = {k: v for k, v in per_plate[plate["name"]].items() if not k.startswith("_")}
            print(f"# {plate['name']}: {json.dumps(shown)}", file=sys.stderr, flush=True)
    pooled = [e for v in per_plate.values() for e in v.pop("_track_errors")]
    values = list(per_plate.values())

    def worst(key, pick):
        found = [v[key] for v in values if v[key] is not None]
        return pick(found) if found else None

    print(json.dumps({
        "plates": list(per_plate),
        "model": os.path.basename(model), "steps": steps, "variations_per_plate": variations,
        "coverage_min": worst("coverage_min", min),
        "flicker_ratio_flow_max": worst("flicker_ratio_flow_max", max),
        "track_error_px_p95": worst("track_error_px_p95", max),
        "track_error_px_p95_pooled": round(_p95(pooled), 3),
        "track_error_px_p95_shift": worst("track_error_px_p95_shift", max),
        "seconds_per_variation_frame": worst("seconds_per_variation_frame", max),
        "goals": {"coverage_min": 1.0, "flicker_ratio_flow_max": 1.2, "track_error_px_p95": 0.5},
        "per_plate": per_plate,
    }))


if __name__ == "__main__":
    main()
