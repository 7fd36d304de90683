"""Real plates: camera track accuracy, coverage and flow flicker of variations on real footage.

python -m tests.bench.realplates [--plates DIR] [--frames N] → one JSON object (last line).

Plates: Beachball (locked-off, a ball moving, motion vectors), Sintel (slow camera move), DAVIS dog,
kite-surf and car-shadow (handheld, moving objects; their ground-truth object masks are excluded from the
camera track), and the demo plate; ``--plates DIR`` runs instead on every folder of DIR (an EXR or
PNG/JPG sequence, optionally a ``matte``/``mattes`` subfolder of region mattes; without one the region is
the top third of the frame, a drawn rectangle). JPG/PNG are read through OIIO and converted to scene-linear
ACEScg through OCIO ("sRGB Encoded Rec.709 (sRGB)") into a temporary folder of EXRs.

Per plate and overall:
- coverage_min: the worst variation's fraction of matte pixels that received generated content (goal 1.0);
- flicker_ratio_flow_max: the worst variation's flow warping error over the plate's own (goal ≤ 1.2);
- track_error_px_p95: the 95th percentile corner error of the camera track on the plate's first frame moved
  by known translations, zooms, rolls and a mix (cv2.warpPerspective on arrays; goal ≤ 0.5 px). The
  reference in the same run: the old phase-correlation shift track on the same frames (track_error_px_p95_shift);
- seconds_per_variation_frame: wall time of a variation over its frames;
- track_model: the model the plate's own track chose, and its notes.
Env: BENCH_MODEL (a model directory; default deploy/demo-model/demo-sky when present, else a tiny seeded
model), BENCH_STEPS (default 4), BENCH_VARIATIONS (default 2).
"""

from __future__ import annotations

import argparse
import glob
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
SRGB = "sRGB Encoded Rec.709 (sRGB)"
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
    """Scene-linear EXRs of ``files[:count]`` (frames 1001…) and their region mattes in ``out``."""
    plate_dir, matte_dir = out / name / "plate", out / name / "matte"
    plate_dir.mkdir(parents=True)
    matte_dir.mkdir()
    excludes = []
    for k, path in enumerate(files[:count]):
        rgb = read_rgb(path)
        frame = 1001 + k
        window = frames.Window(0, 0, rgb.shape[1], rgb.shape[0])
        frames.write_exr(
            plate_dir / f"plate.{frame:04d}.exr", rgb, display_window=window, channel_names=("R", "G", "B")
        )
        matte = read_mask(mattes[k]) if mattes else _sky_matte(rgb)
        if objects:
            obj = read_mask(objects[k])
            excludes.append(obj)
            matte = matte * (1.0 - (obj > 0.5))  # the region never includes the moving object
        frames.write_exr(matte_dir / f"matte.{frame:04d}.exr", matte, display_window=window, channel_names=("A",))
    return {
        "name": name,
        "plate": str(plate_dir / "plate.####.exr"),
        "matte": str(matte_dir / "matte.####.exr"),
        "first": 1001,
        "last": 1000 + min(count, len(files)),
        "excludes": excludes or None,
        "source": str(files[0].parent),
    }
