"""Where the cleanup bench's hole error is: per sequence, the hole's squared error split by how each pixel was
filled, for several :class:`CleanupOptions` variants sharing one computation of the flows.

python -m tests.bench.cleanup_split [--only SEQ ...] [--limit N] [--variants JSON] → one JSON line per sequence.

Per variant: ``psnr`` / ``psnr_hole`` / ``flicker_ratio_flow`` exactly as :mod:`tests.bench.cleanup` scores
them (the same holes, the same default generator), and the hole's squared error split into
- ``revealed_first`` / ``revealed_second``: propagated from other frames through the first / the second flow,
- ``generated``: never revealed (made in the reference frame and carried, or filled spatially),
- ``seam``: the hole pixels within 2 px of its edge (of any kind; counted in the above too),
each as its share of the hole's squared error, its pixel share and its own PSNR; ``pre_blend`` the same
PSNRs before the Poisson blend. For the never-revealed pixels the PSNR of two spatial fills of the final
frame made instead (``unseen_telea``, ``unseen_pushpull``: that frame's own Telea / push-pull from everything
else), so a generator worse per pixel than a smooth fill shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace

import numpy as np

from generation.engine import cleanup as engine
from generation.engine.cleanup import CleanupOptions, CleanupShot, _grow, fill_smooth, telea
from tests.bench.cleanup import hole_plate, psnr, score, shared_sequences

DEFAULT_VARIANTS = {"shipped": {}, "ratio_0.25": {"second_ratio": 0.25}, "first_only": {"second_ratio": 0.0}}
DIS_FIELDS = ("flow_size", "flow_finest", "flow_stride", "flow_refine")  # options that change the raw DIS flows
FLOW_FIELDS = {"flow_margin", "consistency", "temporal", "second_flow", "second_consistency", "second_temporal",
               *DIS_FIELDS}  # options that change the completed flows: such a variant gets its own shot


class _DisCache:
    """The plate's DIS flows computed once per sequence and shared by every variant's shot (a variant that
    changes how flow is completed still starts from the same raw flows)."""

    def __init__(self) -> None:
        self.flows: dict[tuple[bytes, bytes, int], np.ndarray] = {}
        self._dis = CleanupShot._dis

    def __call__(self, shot: CleanupShot, a8: np.ndarray, b8: np.ndarray) -> np.ndarray:
        key = (hashlib.sha1(a8.tobytes()).digest(), hashlib.sha1(b8.tobytes()).digest(),
               *(getattr(shot.options, f) for f in DIS_FIELDS))
        if key not in self.flows:
            self.flows[key] = self._dis(shot, a8, b8)
        return self.flows[key].copy()


def _run(shot: CleanupShot, options: CleanupOptions, originals, mattes) -> dict:
    """One fill of ``shot`` (flows already computed) with ``options``, instrumented, and its split error."""
    shot.options = options
    n = len(originals)
    took: dict[int, np.ndarray] = {}
    unseen_pts: list = []
    pre: list[dict] = [dict() for _ in range(n)]  # t -> {"revealed": (mask, values), "unseen": ...}
    choose, fill_unseen, blend = shot._choose, shot._fill_unseen, engine.poisson_blend
    filled_ref: list = []

    def _choose(t, ys, xs, *a):
        took[t] = choose(t, ys, xs, *a)
        return took[t]

    def _fill_unseen(filled, unseen, *a, **k):
        unseen_pts.extend(unseen)
        filled_ref.extend(filled)
        return fill_unseen(filled, unseen, *a, **k)

    def _blend(plate, hole, patches, *a, **k):
        stage = "revealed" if k.get("ignore") is not None else "unseen"
        frames = shot.plates if stage == "revealed" else filled_ref  # the frame is the image blended into
        t = next(i for i in range(n) if frames[i] is plate)
        pre[t][stage] = (hole.copy(), patches[:, 0].copy())
        return blend(plate, hole, patches, *a, **k)

    shot._choose, shot._fill_unseen, engine.poisson_blend = _choose, _fill_unseen, _blend
    try:
        start = time.perf_counter()
        result = shot.fill()
        seconds = time.perf_counter() - start
    finally:
        shot._choose, shot._fill_unseen, engine.poisson_blend = choose, fill_unseen, blend
    figures = score(result.frames, originals, mattes)
    kinds = ("revealed_first", "revealed_second", "generated", "seam")
    sse = dict.fromkeys(kinds, 0.0)
    px = dict.fromkeys(kinds, 0.0)
    pre_sse = {"revealed": 0.0, "generated": 0.0}
    pre_px = {"revealed": 0.0, "generated": 0.0}
    alt = {"unseen_telea": 0.0, "unseen_pushpull": 0.0}
    total = total_px = 0.0
    h, w = mattes[0].shape
    for t in range(n):
        hole = mattes[t] > 0
        f = np.clip(result.frames[t], 0.0, 1.0)
        d2 = ((f - originals[t]) ** 2).sum(axis=2)
        total += float(d2[hole].sum())
        total_px += float(hole.sum())
        ys, xs = np.nonzero(hole)
        gen = np.zeros((h, w), bool)
        if unseen_pts and len(unseen_pts[t]):
            p = unseen_pts[t].astype(np.int64)
            gen[p[:, 1], p[:, 0]] = True
        second = np.zeros((h, w), bool)
        if t in took:
            second[ys[took[t]], xs[took[t]]] = True
        second &= ~gen
        first = hole & ~gen & ~second
        seam = hole & _grow(~hole, 2)
        for k, m in zip(kinds, (first, second, gen, seam), strict=True):
            sse[k] += float(d2[m].sum())
            px[k] += float(m.sum())
        for stage, key in (("revealed", "revealed"), ("unseen", "generated")):
            if stage in pre[t]:
                m, vals = pre[t][stage]
                v = np.clip(vals, 0.0, 1.0)
                pre_sse[key] += float(((v - originals[t][m]) ** 2).sum())
                pre_px[key] += float(m.sum())
        if gen.any():
            fill = result.fills[t]
            for key, made in (("unseen_telea", telea(fill, gen)), ("unseen_pushpull", fill_smooth(fill, ~gen))):
                alt[key] += float(((np.clip(made[gen], 0.0, 1.0) - originals[t][gen]) ** 2).sum())
    out = {k: round(v, 4) for k, v in figures.items()}
    out["seconds_fill"] = round(seconds, 1)
    for k in kinds:
        out[k] = {"sse_share": round(sse[k] / max(total, 1e-12), 4), "px_share": round(px[k] / max(total_px, 1), 4),
                  "psnr": round(psnr(sse[k] / max(3 * px[k], 1)), 3)}
    out["pre_blend"] = {k: round(psnr(pre_sse[k] / max(3 * pre_px[k], 1)), 3) for k in pre_sse}
    out.update({k: round(psnr(v / max(3 * px["generated"], 1)), 3) for k, v in alt.items()})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--variants", type=json.loads, default=DEFAULT_VARIANTS,
                        help='{"name": {CleanupOptions field: value}} (default: shipped, ratio_0.25, first_only)')
    args = parser.parse_args(argv)
    cache = _DisCache()
    CleanupShot._dis = lambda shot, a8, b8: cache(shot, a8, b8)
    seqs = shared_sequences()
    donors = [name for name, s in seqs.items() if s["masks"]]
    for name in [n for n in seqs if not args.only or n in args.only]:
        others = [d for d in donors if d != name] or donors
        donor = others[(sorted(seqs).index(name)) % len(others)]
        originals, plates, mattes = hole_plate(seqs[name], seqs[donor], args.limit)
        shot = CleanupShot(plates, mattes)
        start = time.perf_counter()
        shot.flows()
        row = {"frames": len(originals), "seconds_flow": round(time.perf_counter() - start, 1)}
        ref = [np.where(m[..., None] > 0, telea(p, m > 0), p) for p, m in zip(plates, mattes, strict=True)]
        row["psnr_hole_opencv"] = round(score(ref, originals, mattes)["psnr_hole"], 4)
        for vname, fields in args.variants.items():
            options = replace(CleanupOptions(), **fields)
            own = shot
            if FLOW_FIELDS & set(fields):
                own = CleanupShot(plates, mattes, options)
                own.flows()
            row[vname] = _run(own, options, originals, mattes)
            row[vname]["gain_db"] = round(row[vname]["psnr_hole"] - row["psnr_hole_opencv"], 4)
        print(json.dumps({name: row}), flush=True)
        cache.flows.clear()


if __name__ == "__main__":
    main()
