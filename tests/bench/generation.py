"""Generation speed, overhead and flicker on the demo shot.

python -m tests.bench.generation  → one JSON object (last line). Measured in one run:
- seconds_per_variation_frame: wall time of a whole variation (track, denoise, 24 frames of EXR and proxy
  writing) divided by its frames;
- overhead_ratio: our masked denoise of the variation's card against a bare diffusers DDIMPipeline call on
  the same model, steps and size (goal ≤ 1.05);
- flicker_ratio: the worst variation's warping error over the plate's own (Lai et al. 2018; goal ≤ 1.2);
- peak_rss_mb: the process's peak resident memory.
Env: BENCH_VARIATIONS (default 3), BENCH_FRAMES (24), BENCH_SIZE (1920x1080), BENCH_MODEL (a model
directory; default: deploy/demo-model/demo-sky when present, else a tiny seeded model).
"""

import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from diffusers import DDIMPipeline

from generation.engine.demo_plate import render_demo_plate
from generation.engine.device import pick_device, pick_dtype
from generation.engine.registry import build_tiny_show_model, load_show_model, read_model_card
from generation.engine.variation import VariationSpec, generate_variation

REPO = Path(__file__).resolve().parents[2]


def _model(root: Path) -> str:
    explicit = os.environ.get("BENCH_MODEL")
    if explicit:
        return explicit
    demo = REPO / "deploy" / "demo-model" / "demo-sky"
    if (demo / "parallel_track.json").exists():
        return str(demo)
    return build_tiny_show_model(str(root / "model"), seed=1).path


def _bare_diffusers_seconds(model_path: str, steps: int, repeats: int = 3) -> float:
    device = pick_device("")
    unet, scheduler, _ = load_show_model(model_path, device, pick_dtype(device))
    pipe = DDIMPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        pipe(batch_size=1, generator=torch.Generator("cpu").manual_seed(seed), num_inference_steps=steps,
             output_type="np")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    variations = int(os.environ.get("BENCH_VARIATIONS", "3"))
    frames = int(os.environ.get("BENCH_FRAMES", "24"))
    width, height = (int(v) for v in os.environ.get("BENCH_SIZE", "1920x1080").split("x"))
    steps = 25
    root = Path(tempfile.mkdtemp(prefix="pt-bench-generation-"))
    try:
        plate = render_demo_plate(str(root / "plate"), first=1001, last=1000 + frames, width=width, height=height)
        model_path = _model(root)
        model_name = read_model_card(model_path).name
        results = []
        for index in range(variations):
            spec = VariationSpec(plate_pattern=plate["plate"], matte_pattern=plate["matte"], rect=None,
                                 first=1001, last=1000 + frames, model_path=model_path, seed=1000 + index,
                                 steps=steps, out_dir=str(root / f"v{index:02d}"))
            start = time.perf_counter()
            result = generate_variation(spec)
            results.append((time.perf_counter() - start, result))
        bare = _bare_diffusers_seconds(model_path, steps)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    # The first variation also pays for the camera track, which later variations of a request reuse.
    walls = [wall for wall, _ in results]
    denoise = statistics.median(r.timings["denoise"] for _, r in results)
    print(json.dumps({
        "model": model_name, "frames": frames, "size": [width, height], "steps": steps,
        "variations": variations, "variation_seconds": [round(w, 2) for w in walls],
        "timings_last": {k: round(v, 2) for k, v in results[-1][1].timings.items()},
        "seconds_per_variation_frame": round(statistics.median(walls) / frames, 3),
        "denoise_seconds": round(denoise, 3), "bare_diffusers_seconds": round(bare, 3),
        "overhead_ratio": round(denoise / bare, 3),
        "flicker_ratio": round(max(r.flicker_ratio for _, r in results), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
