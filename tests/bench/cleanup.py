"""Cleanup (object removal) quality and speed on real footage, with its reference in the same run.

python -m tests.bench.cleanup [--data DIR] [--limit N] → one JSON object (last line).

Each real sequence gets a moving, real-shaped hole: the object masks of ANOTHER sequence (resized to this one,
grown by 4 px), with that sequence's object pasted into the hole, so the plate shows a real object moving over
a real background and the original frames are the ground truth (the video-inpainting papers' object-removal
protocol). Per sequence and as the mean over sequences:
- psnr, ssim: over the whole frame against the original (per-frame mean; goal PSNR ≥ 30 dB at the sequence's
  own size); psnr_hole: inside the hole only (all frames' hole pixels together);
- the reference, OpenCV's per-frame Telea inpaint on the same hole: psnr_opencv, psnr_hole_opencv, and
  psnr_vs_opencv_inpaint_db = psnr_hole - psnr_hole_opencv (ours minus Telea, goal ≥ +3 dB);
- flicker_ratio_flow: the flow warping error of the filled frames inside the hole over the original's there
  (:class:`qc.FlowFlickerMeter` with the original as the plate; goal ≤ 1.2), and the same for Telea;
- revealed / generated: the fraction of hole pixels taken from other frames / made in the reference frame;
- seconds_per_frame of our whole fill (flow included) on this CPU.
Layout (DAVIS'): DIR/<seq>/frames/*.jpg|png and, optionally, DIR/<seq>/masks/*.png; a folder of only frames
(Sintel) gets a hole but gives none. Values are display-referred 0..1 (the frames as stored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio

from generation.engine import qc
from generation.engine.cleanup import CleanupShot, telea
from tests.realdata import find_testdata

GROW = 4  # px the donor's object mask is grown by: a compositor's generous cleanup matte


def _read(path: Path) -> np.ndarray:
    buf = oiio.ImageBuf(str(path))
    pixels = buf.get_pixels(oiio.FLOAT)
    if buf.has_error or pixels is None:
        raise RuntimeError(f"{path}: {buf.geterror()}")
    return pixels


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def sequences(root: Path) -> dict[str, dict]:
    """{name: {"frames": [paths], "masks": [paths] or []}} of every sequence folder under ``root``."""
    out: dict[str, dict] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        frames_dir = folder / "frames" if (folder / "frames").is_dir() else folder
        frames = _images(frames_dir)
        if len(frames) < 2:
            continue
        masks = [folder / "masks" / f"{p.stem}.png" for p in frames] if (folder / "masks").is_dir() else []
        out[folder.name] = {"frames": frames, "masks": [m for m in masks if m.exists()]}
    return out


def shared_sequences() -> dict[str, dict]:
    root = find_testdata()
    if root is None:
        raise SystemExit("no ../shared/testdata: pass --data DIR")
    seqs = sequences(root / "davis16") if (root / "davis16").is_dir() else {}
    sintel = root / "sintel-demo"
    if sintel.is_dir():
        seqs["sintel"] = {"frames": _images(sintel), "masks": []}
    return seqs


def _pingpong(n: int, length: int) -> list[int]:
    period = max(1, 2 * (n - 1))
    return [(k % period) if (k % period) < n else period - (k % period) for k in range(length)]


def hole_plate(seq: dict, donor: dict, limit: int | None) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(originals, plates with the donor's object pasted in, mattes) of ``seq`` with ``donor``'s masks."""
    paths = seq["frames"][:limit] if limit else seq["frames"]
    originals = [_read(p)[..., :3] for p in paths]
    h, w = originals[0].shape[:2]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW + 1, 2 * GROW + 1))
    plates, mattes = [], []
    for k, idx in enumerate(_pingpong(len(donor["masks"]), len(originals))):
        mask = _read(donor["masks"][idx])[..., 0] > 0.5
        obj = _read(donor["frames"][idx])[..., :3]
        mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        obj = cv2.resize(obj, (w, h), interpolation=cv2.INTER_AREA)
        plate = np.where(mask[..., None] > 0, obj, originals[k])
        plates.append(plate.astype(np.float32))
        mattes.append((cv2.dilate(mask, kernel) > 0).astype(np.float32))
    return originals, plates, mattes


def psnr(mse: float) -> float:
    return 99.0 if mse <= 1e-12 else 10.0 * math.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window σ 1.5, K1 0.01, K2 0.03, data range 1) over RGB."""
    c1, c2 = 0.01**2, 0.03**2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    a, b = a.astype(np.float64), b.astype(np.float64)
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def score(filled: list[np.ndarray], originals: list[np.ndarray], mattes: list[np.ndarray]) -> dict:
    frame_psnr, frame_ssim = [], []
    hole_err = hole_px = 0.0
    meter = qc.FlowFlickerMeter()
    for f, o, m in zip(filled, originals, mattes, strict=True):
        f = np.clip(f, 0.0, 1.0)
        d2 = (f - o) ** 2
        frame_psnr.append(psnr(float(d2.mean())))
        frame_ssim.append(ssim(f, o))
        hole = m > 0
        hole_err += float(d2[hole].sum())
        hole_px += float(hole.sum()) * 3
        meter.add(_luma(f), _luma(o), m)
    return {
        "psnr": float(np.mean(frame_psnr)),
        "ssim": float(np.mean(frame_ssim)),
        "psnr_hole": psnr(hole_err / max(hole_px, 1.0)),
        "flicker_ratio_flow": meter.ratio(),
    }


def run_sequence(seq: dict, donor: dict, limit: int | None) -> dict:
    originals, plates, mattes = hole_plate(seq, donor, limit)
    t = time.perf_counter()
    result = CleanupShot(plates, mattes).fill()
    seconds = time.perf_counter() - t
    ours = score(result.frames, originals, mattes)
    t = time.perf_counter()
    reference = [
        np.where(m[..., None] > 0, telea(p, m > 0), p) for p, m in zip(plates, mattes, strict=True)
    ]
    telea_seconds = time.perf_counter() - t
    ref = score(reference, originals, mattes)
    h, w = originals[0].shape[:2]
    return {
        "size": f"{w}x{h}",
        "frames": len(originals),
        "hole_fraction": float(np.mean([m.mean() for m in mattes])),
        **{k: round(v, 4) for k, v in ours.items()},
        "psnr_opencv": round(ref["psnr"], 4),
        "ssim_opencv": round(ref["ssim"], 4),
        "psnr_hole_opencv": round(ref["psnr_hole"], 4),
        "flicker_ratio_flow_opencv": round(ref["flicker_ratio_flow"], 4),
        "psnr_vs_opencv_inpaint_db": round(ours["psnr_hole"] - ref["psnr_hole"], 4),
        "revealed": round(result.revealed, 4),
        "generated": round(result.generated, 4),
        "seconds_per_frame": round(seconds / len(originals), 4),
        "seconds_per_frame_opencv": round(telea_seconds / len(originals), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a folder of sequences (<seq>/frames, optional <seq>/masks)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many frames per sequence")
    parser.add_argument("--only", nargs="*", help="only these sequences")
    args = parser.parse_args(argv)
    seqs = sequences(args.data) if args.data else shared_sequences()
    donors = [name for name, s in seqs.items() if s["masks"]]
    if not donors:
        raise SystemExit("no sequence has masks to make holes from")
    names = [n for n in seqs if not args.only or n in args.only]
    rows: dict[str, dict] = {}
    for name in names:
        others = [d for d in donors if d != name] or donors
        donor = others[(sorted(seqs).index(name)) % len(others)]
        rows[name] = {"hole_from": donor, **run_sequence(seqs[name], seqs[donor], args.limit)}
        print(json.dumps({name: rows[name]}), flush=True)
    keys = ["psnr", "ssim", "psnr_hole", "psnr_opencv", "psnr_hole_opencv", "psnr_vs_opencv_inpaint_db",
            "flicker_ratio_flow", "flicker_ratio_flow_opencv", "seconds_per_frame"]
    mean = {k: round(float(np.mean([r[k] for r in rows.values()])), 4) for k in keys}
    summary = {
        "sequences": names,
        "per_sequence": rows,
        "mean": mean,
        "psnr_min": min(r["psnr"] for r in rows.values()),
        "psnr_vs_opencv_inpaint_db_min": min(r["psnr_vs_opencv_inpaint_db"] for r in rows.values()),
        "flicker_ratio_flow_max": max(r["flicker_ratio_flow"] for r in rows.values()),
        "goals": {"psnr": ">= 30", "psnr_vs_opencv_inpaint_db": ">= 3", "flicker_ratio_flow": "<= 1.2"},
        "cpu_count": os.cpu_count(),
        "load": os.getloadavg()[0],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
