"""Roto quality and speed on real footage with ground truth (DAVIS 2016 layout).

python -m tests.bench.roto [--data DIR] [--quick] [--cap N] → one JSON object (last line). Per sequence and
as the mean over sequences, with both references computed in the same run on the same flow:
- jf_first_last: J&F mean (J = IoU, F = DAVIS boundary F-measure, tolerance 0.008 of the image diagonal)
  over the frames between the first and the last frame, given those two as key frames (goal ≥ 0.85);
  the same for the references (jf_interpolation, jf_flow) and J alone beside it;
- keyframes_vs_interpolation / keyframes_vs_flow: how many key frames a simulated artist needs so every
  frame reaches J ≥ 0.85 (greedy: start from first and last, add the worst frame as a key, up to --cap),
  ours over signed-distance interpolation's count (goal ≤ 0.45) and over plain DIS flow's (goal ≤ 0.75);
  the mean is the ratio of the summed counts;
- fps_480p: frames per second of a whole first pass (flow, training, mattes, edge pass) on the first
  sequence at its own size; fps_2k: the same on its first frames upscaled to 2048 px wide, scene-linear float.
Layout: DIR/<seq>/frames/*.jpg|png and DIR/<seq>/masks/*.png (0/255, same index as the frame).

Generalisation (``generalisation`` in the JSON, ``--no-generalise`` skips it): the six sequences were all used
to choose the defaults, so the same first/last measure (ours and both references, same run, same flow) is taken
on variants nobody tuned on: every second frame (``stride2``: twice the motion per step, half the frames) and
every third (``stride3``), the sequences played backwards (``reverse``, with ``--reverse``), and OpenEXR's
Beachball (a scene-linear EXR render with its alpha as the truth, at 854 px). ``--sensitivity`` adds a sweep of
the main thresholds, each ×0.7 and ×1.3 (STEP_TRUST's per-step loss, not the trust itself), on the ``stride2``
variant with its flow computed once: a flat J&F around the defaults says they are not fitted to the six.
``--sequences a,b`` restricts any run to those sequences.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio

from generation.engine import roto, roto_colour, roto_cut, roto_flow
from generation.engine.roto import RotoOptions, RotoShot
from generation.engine.roto_flow import propagate
from tests.realdata import find_testdata

GOOD_J = 0.85
BOUNDARY_TOLERANCE = 0.008  # DAVIS: a fraction of the image diagonal


# -- footage -----------------------------------------------------------------------------------------------------


def _read(path: Path) -> np.ndarray:
    buf = oiio.ImageBuf(str(path))
    pixels = buf.get_pixels(oiio.UINT8)
    if buf.has_error or pixels is None:
        raise RuntimeError(f"{path}: {buf.geterror()}")
    return pixels


def load_sequence(folder: Path, limit: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(frames as (H, W, 3) uint8, ground-truth mattes as (H, W) float32 0/1) of one sequence folder."""
    frames = sorted(p for p in (folder / "frames").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    frames = frames[:limit] if limit else frames
    plates = [_read(p)[..., :3] for p in frames]
    masks = [(_read(folder / "masks" / f"{p.stem}.png")[..., 0] > 127).astype(np.float32) for p in frames]
    return plates, masks


def load_beachball(folder: Path, long_side: int = 854) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """OpenEXR's Beachball (left eye, 8 frames): scene-linear float RGB plates and alpha > 0.5 as the truth.

    Each frame's data window moves with the ball: frames are placed in the display window, cropped to the
    union of the data windows and scaled (area) to ``long_side``, so the shot is its own proxy as in the bench.
    """
    bufs = [oiio.ImageBuf(str(p)) for p in sorted(folder.glob("singlepart.*.exr"))]
    full = bufs[0].spec().full_width, bufs[0].spec().full_height
    x0 = max(0, min(b.spec().x for b in bufs))
    y0 = max(0, min(b.spec().y for b in bufs))
    x1 = min(full[0], max(b.spec().x + b.spec().width for b in bufs))
    y1 = min(full[1], max(b.spec().y + b.spec().height for b in bufs))
    scale = long_side / max(x1 - x0, y1 - y0)
    size = (round((x1 - x0) * scale), round((y1 - y0) * scale))
    plates, masks = [], []
    for buf in bufs:
        roi = oiio.ROI(x0, x1, y0, y1, 0, 1, 0, 4)
        pixels = np.asarray(buf.get_pixels(oiio.FLOAT, roi), np.float32)  # outside the data window: 0
        rgba = cv2.resize(np.nan_to_num(pixels), size, interpolation=cv2.INTER_AREA)
        plates.append(np.ascontiguousarray(np.maximum(rgba[..., :3], 0.0)))
        masks.append((rgba[..., 3] > 0.5).astype(np.float32))
    return plates, masks


# -- DAVIS measures ----------------------------------------------------------------------------------------------


def jaccard(ours: np.ndarray, truth: np.ndarray) -> float:
    """J: intersection over union of two boolean masks; 1 when both are empty (DAVIS' convention)."""
    union = np.logical_or(ours, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(ours, truth).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    # DAVIS' seg2bmap: a pixel is boundary when it differs from its right, lower or lower-right neighbour.
    m = mask.astype(bool)
    right = np.zeros_like(m)
    down = np.zeros_like(m)
    diag = np.zeros_like(m)
    right[:, :-1] = m[:, :-1] != m[:, 1:]
    down[:-1] = m[:-1] != m[1:]
    diag[:-1, :-1] = m[:-1, :-1] != m[1:, 1:]
    return right | down | diag


def boundary_f(ours: np.ndarray, truth: np.ndarray) -> float:
    """F: DAVIS' boundary F-measure (boundaries matched within 0.008 of the diagonal)."""
    radius = math.ceil(BOUNDARY_TOLERANCE * math.hypot(*truth.shape))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    b_ours, b_truth = _boundary(ours), _boundary(truth)
    n_ours, n_truth = b_ours.sum(), b_truth.sum()
    if n_ours == 0 or n_truth == 0:
        return 1.0 if n_ours == n_truth else 0.0
    near_truth = cv2.dilate(b_truth.astype(np.uint8), disk).astype(bool)
    near_ours = cv2.dilate(b_ours.astype(np.uint8), disk).astype(bool)
    precision = (b_ours & near_truth).sum() / n_ours
    recall = (b_truth & near_ours).sum() / n_truth
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


# -- the references ----------------------------------------------------------------------------------------------


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    inside = mask > 0.5
    d_in = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
    return d_in - d_out


def interpolation(masks: list[np.ndarray]) -> Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]]:
    """Signed-distance interpolation between key-frame shapes (what interpolated roto shapes do)."""
    cache: dict[int, np.ndarray] = {}

    def run(keys: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        order = sorted(keys)
        for k in order:
            cache.setdefault(k, _signed_distance(keys[k]))
        out = {}
        for f in range(len(masks)):
            a = max([k for k in order if k <= f], default=order[0])
            b = min([k for k in order if k >= f], default=order[-1])
            w = 0.0 if a == b else (f - a) / (b - a)
            out[f] = ((1 - w) * cache[a] + w * cache[b] > 0).astype(np.float32)
        return out

    return run


def plain_flow(shot: RotoShot) -> Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]]:
    """Plain DIS flow propagation: every frame takes the matte carried from its nearest key frame."""

    def run(keys: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        order = sorted(keys)
        out = {k: keys[k] for k in order}
        bounds = [None, *order, None]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            start = 0 if a is None else a + 1
            stop = len(shot) if b is None else b
            # The first frame nearer to b than to a (ties go to a).
            mid = stop if b is None else (start if a is None else (a + b) // 2 + 1)
            if a is not None and mid > start:
                out.update(zip(range(start, mid), propagate(shot.flow, keys[a], a, mid)[0], strict=True))
            if b is not None and mid < stop:
                carried = propagate(shot.flow, keys[b], b, mid - 1)[0]
                out.update(zip(range(stop - 1, mid - 1, -1), carried, strict=True))
        return out

    return run


def ours(shot: RotoShot) -> Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]]:
    return lambda keys: shot.pass_(keys)


# -- the simulated artist ----------------------------------------------------------------------------------------


def scores(mattes: dict[int, np.ndarray], masks: list[np.ndarray], keys) -> tuple[dict[int, float], float]:
    """(J per frame, J&F mean) over the frames that are not key frames."""
    js, jfs = {}, []
    for f, m in mattes.items():
        if f in keys:
            continue
        hard, truth = m >= 0.5, masks[f] > 0.5
        js[f] = jaccard(hard, truth)
        jfs.append((js[f] + boundary_f(hard, truth)) / 2)
    return js, float(np.mean(jfs)) if jfs else 1.0


def keyframes_needed(method, masks: list[np.ndarray], cap: int) -> int:
    """Key frames until every frame has J ≥ 0.85: first and last, then the worst frame each time (≤ cap)."""
    keys = {0: masks[0], len(masks) - 1: masks[-1]}
    while len(keys) < cap:
        js, _ = scores(method(keys), masks, keys)
        worst = min(js, key=js.get, default=None)
        if worst is None or js[worst] >= GOOD_J:
            break
        keys[worst] = masks[worst]
    return len(keys)


def first_last(shot: RotoShot, masks: list[np.ndarray]) -> dict[str, float]:
    """J&F (and J) from the first and last frame as key frames: ours and both references, on ``shot``'s flow."""
    keys = {0: masks[0], len(masks) - 1: masks[-1]}
    methods = {"ours": ours(shot), "flow": plain_flow(shot), "interpolation": interpolation(masks)}
    row: dict[str, float] = {"frames": len(masks)}
    for name, method in methods.items():
        js, jf = scores(method(keys), masks, keys)
        row[f"jf_{name}"] = round(jf, 4)
        row[f"j_{name}"] = round(float(np.mean(list(js.values()))), 4)
    return row


def variant(plates: list, masks: list, name: str) -> tuple[list, list]:
    """A sequence nobody tuned on, made from a real one: ``stride2`` / ``stride3`` (every n-th frame), ``reverse``."""
    if name.startswith("stride"):
        n = int(name[len("stride") :])
        return plates[::n], masks[::n]
    if name == "reverse":
        return plates[::-1], masks[::-1]
    raise ValueError(f"unknown variant {name}")


# (module, constant, how it is varied): the thresholds the defaults rest on. STEP_TRUST is swept by its loss.
SWEEP = (
    (roto_flow, "PHOTO_TOLERANCE", "value"),
    (roto_cut, "BAND", "value"),
    (roto_colour, "BAND", "value"),
    (roto_flow, "STEP_TRUST", "loss"),
    (roto, "REACH_SLACK", "value"),
)


@contextmanager
def scaled(module, constant: str, how: str, factor: float) -> Iterator[float]:
    """The engine with one threshold scaled by ``factor`` (restored after); yields the value used."""
    old = getattr(module, constant)
    new = 1 - (1 - old) * factor if how == "loss" else old * factor
    twins = [m for m in (roto, roto_flow) if constant == "STEP_TRUST" and hasattr(m, constant)]
    try:
        for m in twins or [module]:
            setattr(m, constant, new)
        yield new
    finally:
        for m in twins or [module]:
            setattr(m, constant, old)


def sensitivity(shots: dict[str, tuple[RotoShot, list]], factors=(0.7, 1.3)) -> dict:
    """Mean J&F first/last over ``shots`` with each :data:`SWEEP` threshold scaled by each factor in turn."""

    def mean_jf() -> float:
        values = []
        for shot, masks in shots.values():
            shot._segments.clear()
            shot.mattes = {}
            values.append(first_last_ours(shot, masks))
        for shot, _ in shots.values():
            shot._segments.clear()
        return round(float(np.mean(values)), 4)

    out: dict = {"sequences": sorted(shots), "factors": list(factors), "default": mean_jf()}
    for module, constant, how in SWEEP:
        key = f"{module.__name__.rsplit('.', 1)[-1]}.{constant}"
        out[key] = {"default": getattr(module, constant)}
        for factor in factors:
            with scaled(module, constant, how, factor) as value:
                out[key][f"x{factor}"] = {"value": round(value, 5), "jf": mean_jf()}
        print(json.dumps({"sensitivity": {key: out[key]}}), flush=True)
    return out


def first_last_ours(shot: RotoShot, masks: list[np.ndarray]) -> float:
    keys = {0: masks[0], len(masks) - 1: masks[-1]}
    return scores(shot.pass_(keys), masks, keys)[1]


def _means(rows: dict[str, dict]) -> dict[str, float]:
    keys = [k for k in next(iter(rows.values())) if k.startswith(("jf_", "j_"))]
    return {k: round(float(np.mean([r[k] for r in rows.values()])), 4) for k in keys}


def generalisation(data: Path, names: list[str], variants: list[str], options: RotoOptions, sweep: bool) -> dict:
    """First/last J&F with both references on the variants of ``names`` and on Beachball (see the docstring)."""
    out: dict = {}
    shots: dict[str, tuple[RotoShot, list]] = {}
    for name in variants:
        rows = {}
        for seq in names:
            plates, masks = variant(*load_sequence(data / seq), name)
            shot = RotoShot(plates, proxy_long_side=max(plates[0].shape[:2]), options=options)
            rows[seq] = first_last(shot, masks)
            print(json.dumps({name: {seq: rows[seq]}}), flush=True)
            if sweep and name == "stride2":
                shot._segments.clear()
                shots[seq] = (shot, masks)
        out[name] = {"sequences": rows, "mean": _means(rows)}
    beachball = (find_testdata() or Path("missing")) / "openexr-images" / "Beachball"
    if beachball.is_dir():
        plates, masks = load_beachball(beachball)
        shot = RotoShot(plates, proxy_long_side=max(plates[0].shape[:2]), options=options)
        out["beachball"] = first_last(shot, masks)
        print(json.dumps({"beachball": out["beachball"]}), flush=True)
    if sweep and shots:
        out["sensitivity"] = sensitivity(shots)
    return out


def bench_sequence(plates, masks, cap: int, options: RotoOptions) -> dict[str, float]:
    # Proxy = the footage's own size, so flow is shared by both flow-based methods and the references.
    shot = RotoShot(plates, proxy_long_side=max(plates[0].shape[:2]), options=options)
    methods = {"ours": ours(shot), "flow": plain_flow(shot), "interpolation": interpolation(masks)}
    row = first_last(shot, masks)
    for name, method in methods.items():
        row[f"keys_{name}"] = keyframes_needed(method, masks, cap)
    row["jf_first_last"] = row.pop("jf_ours")
    row["keyframes_vs_interpolation"] = round(row["keys_ours"] / row["keys_interpolation"], 4)
    row["keyframes_vs_flow"] = round(row["keys_ours"] / row["keys_flow"], 4)
    return row


def fps(plates, masks, options: RotoOptions) -> float:
    """Frames per second of a whole first pass (flow, model, mattes, edges) from the first and last frame."""
    t0 = time.perf_counter()
    shot = RotoShot(plates, options=options)
    h, w = plates[0].shape[:2]
    key = {0: cv2.resize(masks[0], (w, h)), len(plates) - 1: cv2.resize(masks[-1], (w, h))}
    shot.pass_(key)
    return len(plates) / (time.perf_counter() - t0)


def to_2k(plates: list[np.ndarray]) -> list[np.ndarray]:
    """DAVIS frames upscaled to 2048 px wide as scene-linear float32 (sRGB-ish decode), like a 2K plate."""
    h, w = plates[0].shape[:2]
    size = (2048, round(h * 2048 / w))
    return [(cv2.resize(p, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0) ** 2.2 for p in plates]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder of <seq>/frames, <seq>/masks (default: DAVIS 2016)")
    parser.add_argument("--quick", action="store_true", help="two sequences, 24 frames each, 2K on 6 frames")
    parser.add_argument("--cap", type=int, default=40, help="most key frames the simulated artist adds")
    parser.add_argument("--model", action="store_true", help="with the shot's mending CNN (ablation)")
    parser.add_argument("--no-edges", action="store_true", help="without the edge pass (ablation)")
    parser.add_argument("--no-cut", action="store_true", help="without the GrabCut of the band (ablation)")
    parser.add_argument(
        "--no-photometric", action="store_true", help="flow trust without the photometric check (ablation)"
    )
    parser.add_argument("--no-islands", action="store_true", help="keep the untrusted far islands (ablation)")
    parser.add_argument(
        "--self-check", action="store_true", help="per-segment fallback to flow (RotoOptions.self_check)"
    )
    parser.add_argument("--relight", action="store_true", help="the photometric check relit (RotoOptions.relight)")
    parser.add_argument("--sequences", help="comma-separated sequence names (default: every sequence in DIR)")
    parser.add_argument("--no-generalise", action="store_true", help="skip the unseen variants and Beachball")
    parser.add_argument("--only-generalise", action="store_true", help="only the unseen variants (no key counts, fps)")
    parser.add_argument("--reverse", action="store_true", help="also the sequences played backwards")
    parser.add_argument("--sensitivity", action="store_true", help="sweep the main thresholds x0.7 / x1.3 on stride2")
    args = parser.parse_args(argv)
    data = args.data or (find_testdata() or Path("missing")) / "davis16"
    if not data.is_dir():
        raise SystemExit(f"no sequences at {data}; give --data DIR or set PT_TESTDATA")
    options = RotoOptions(
        model=args.model,
        edges=not args.no_edges,
        cut=not args.no_cut,
        photometric=not args.no_photometric,
        untrusted_islands=not args.no_islands,
        self_check=args.self_check,
        relight=args.relight,
    )
    names = sorted(p.name for p in data.iterdir() if (p / "frames").is_dir() and (p / "masks").is_dir())
    names = names[:2] if args.quick else names
    if args.sequences:
        wanted = args.sequences.split(",")
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise SystemExit(f"no sequences {missing} in {data}")
        names = [n for n in names if n in wanted]
    limit = 24 if args.quick else None
    cv2.setNumThreads(1)
    variants = ["stride2", "stride3"] + (["reverse"] if args.reverse else [])
    if args.only_generalise:
        result = {"data": str(data), "options": vars(options)}
        result["generalisation"] = generalisation(data, names, variants, options, args.sensitivity)
        print(json.dumps(result))
        return result
    per_sequence = {}
    for name in names:
        plates, masks = load_sequence(data / name, limit)
        per_sequence[name] = bench_sequence(plates, masks, args.cap, options)
        print(json.dumps({name: per_sequence[name]}), flush=True)
    rows = list(per_sequence.values())
    mean = {key: round(float(np.mean([r[key] for r in rows])), 4) for key in rows[0]}
    for ref in ("interpolation", "flow"):
        mean[f"keyframes_vs_{ref}"] = round(sum(r["keys_ours"] for r in rows) / sum(r[f"keys_{ref}"] for r in rows), 4)
    plates, masks = load_sequence(data / names[0], limit)
    mean["fps_480p"] = round(fps(plates, masks, options), 3)
    count = 6 if args.quick else 16
    mean["fps_2k"] = round(fps(to_2k(plates[:count]), masks[:count], options), 3)
    result = {
        "data": str(data),
        "cap": args.cap,
        "options": vars(options),
        "sequences": per_sequence,
        "mean": mean,
        "goals": {"jf_first_last": ">= 0.85", "keyframes_vs_interpolation": "<= 0.45", "keyframes_vs_flow": "<= 0.75"},
    }
    if not args.no_generalise and not args.quick:
        result["generalisation"] = generalisation(data, names, variants, options, args.sensitivity)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
