"""Multi-frame tuning frames: ``python -m tests.bench.upscale_tune MODEL 'name:{"iterations": 40}' ...``.

Scores :func:`upscale_video.refine` configurations (JSON of :class:`upscale_video.MultiFrameConfig` fields over the
bench's :data:`tests.bench.upscale.MULTI_FRAME`) on frames 13, 25 and 37 of the bench's *training* sequences, which
the upscaler's manifest does not list (checked; ``--train-every 3`` trains on every third frame from 0), never on
the held-out ones. The tuning upscaler (the 57 k default net): ``python -m tests.bench.upscale --single-frame --steps
2000 --train-every 3 --recipe '{"features": 32, "layers": 4, "lr": 0.002, "clip_grad": 0}' --save-model DIR``. Each frame and its neighbours are degraded like the bench's (the profile measured on the three
frames); the single-frame upscales are cached in ``MODEL/tune_cache.pkl``. Prints per configuration the mean gain
over OIIO Lanczos-3 (same run) and the mean per sequence.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from generation.engine import grain, training, upscale, upscale_training, upscale_video
from tests.bench import upscale as bench
from tests.realdata import find_testdata

TUNING_FRAMES = (13, 25, 37)


def select(case: dict, radius: int) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """(lows, singles, ref) of the cached ``case`` restricted to the frames within ``radius`` of its frame."""
    centre = case["frames"][case["ref"]]
    keep = [k for k, j in enumerate(case["frames"]) if abs(j - centre) <= radius]
    return ([case["lows"][k] for k in keep], [case["singles"][k] for k in keep],
            [case["frames"][k] for k in keep].index(centre))


def _cases(model: str, radius: int) -> dict:
    cached = sorted((int(f.stem.rsplit("_r", 1)[1]), f) for f in Path(model).glob("tune_cache_r*.pkl"))
    for wider, found in cached:
        if wider >= radius:  # a wider window holds this one (select() restricts it)
            return pickle.loads(found.read_bytes())
    cache_file = Path(model) / f"tune_cache_r{radius}.pkl"
    trained = {f["sha256"] for f in upscale.read_upscaler_card(model).manifest["files"]}
    cases = {}
    for name in bench.TRAIN_SEQUENCES:
        sequence = upscale_training.collect_plates(str(Path(find_testdata()) / "davis16" / name / "frames"))
        if any(training._sha256(sequence[i]) in trained for i in TUNING_FRAMES):
            raise SystemExit(f"{name}: a tuning frame is in the upscaler's manifest")
        profile = grain.measure_grain([upscale.read_plate_rgb(sequence[i]) for i in TUNING_FRAMES])
        done: dict[int, tuple] = {}
        for i in TUNING_FRAMES:
            idx = upscale_video.window(i, len(sequence), radius)
            for j in idx:
                if j not in done:
                    low = bench._low_and_target(sequence[j], profile)[1]
                    done[j] = (low, np.maximum(upscale.upscale(low, model, factor=bench.FACTOR), 0.0))
            rgb, low = bench._low_and_target(sequence[i], profile)
            reference = np.clip(upscale.lanczos(bench._srgb(low), rgb.shape[1], rgb.shape[0]), 0.0, 1.0)
            cases[(name, i)] = {"target": bench._srgb(rgb), "lanczos": reference, "ref": idx.index(i), "frames": idx,
                                "lows": [done[j][0] for j in idx], "singles": [done[j][1] for j in idx]}
    cache_file.write_bytes(pickle.dumps(cases))
    return cases


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    model, specs = argv[0], argv[1:]
    configs = [(spec.split(":", 1)[0], replace(bench.MULTI_FRAME, **json.loads(spec.split(":", 1)[1])))
               for spec in specs]
    cases = _cases(model, max([bench.MULTI_FRAME.radius] + [c.radius for _, c in configs]))
    for name, config in configs:
        started, gains, singles = time.perf_counter(), {}, []
        for key, case in cases.items():
            out = upscale_video.refine(*select(case, config.radius), bench.FACTOR, config)
            lanczos = bench.psnr(case["lanczos"], case["target"])
            gains[key] = bench.psnr(bench._srgb(out), case["target"]) - lanczos
            singles.append(bench.psnr(bench._srgb(case["singles"][case["ref"]]), case["target"]) - lanczos)
        per = {s: round(float(np.mean([g for k, g in gains.items() if k[0] == s])), 3) for s in bench.TRAIN_SEQUENCES}
        print(json.dumps({"config": name, "psnr_gain_db": round(float(np.mean(list(gains.values()))), 3),
                          "psnr_gain_db_single_frame": round(float(np.mean(singles)), 3), "per_sequence": per,
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
