"""Generation speed, overhead and flicker on the demo shot.

python -m tests.bench.generation  → one JSON object (last line). Measured in one run:
- seconds_per_variation_frame: wall time of a whole variation (track, denoise, 24 frames of EXR and proxy
  writing) divided by its frames;
- overhead_ratio: our denoise stage of each variation (masked denoising of the card, decoding it) against a
  bare diffusers DDIMPipeline call on the same model, steps and size made right after it; both are warmed
  first, and BENCH_PAIRS (default 7) more one-frame variations interleaved with bare calls add samples. The
  median over the pairs of (ours / the bare call right after it): each pair sees nearly the same machine,
  and the median ignores the pair a burst of other work hit (goal ≤ 1.05). The ratio of the fastest of
  each (timeit's rule) is printed as overhead_ratio_fastest, and every sample too;
- sd_overhead_ratio: the same for the SD inpainting backend (a tiny StableDiffusionInpaintPipeline built
  in code, a set extension through generate_variation against the bare pipeline call on the same card);
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

from generation.engine.backends import denoise_threads, torch_threads
from generation.engine.demo_plate import render_demo_plate
from generation.engine.device import pick_device, pick_dtype
from generation.engine.inpaint import masked_denoise
from generation.engine.registry import build_tiny_show_model, load_show_model, read_model_card
from generation.engine.sd_pipeline import build_tiny_sd_pipeline, load_sd_pipeline
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


class _BareDDIM:
    """The reference: diffusers' own DDIMPipeline on the same UNet and scheduler, steps and size."""

    def __init__(self, model_path: str, steps: int) -> None:
        device = pick_device("")
        unet, scheduler, _ = load_show_model(model_path, device, pick_dtype(device))
        self.pipe = DDIMPipeline(unet=unet, scheduler=scheduler)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps = steps
        self.threads = denoise_threads(unet)
        # Warm both paths (allocator, kernels, the scheduler's first set_timesteps) before timing either.
        self()
        h, w = unet.config.sample_size
        masked_denoise(unet, scheduler, known=torch.zeros(1, 3, h, w), mask=torch.ones(1, 1, h, w), seed=0, steps=2)

    def __call__(self, seed: int = 0) -> float:
        with torch_threads(self.threads):
            start = time.perf_counter()
            self.pipe(batch_size=1, generator=torch.Generator("cpu").manual_seed(seed), num_inference_steps=self.steps,
                      output_type="np")
            return time.perf_counter() - start


def _sd_overhead(root: Path, plate: dict, steps: int, repeats: int) -> float:
    """Fastest of our set extension's denoise stage over the fastest bare inpainting pipeline call on a card
    of the same size, interleaved."""
    model = build_tiny_sd_pipeline(root / "sd", seed=1, sample_size=(32, 64)).path
    device = pick_device("")
    pipe, card = load_sd_pipeline(model, device, pick_dtype(device))
    h, w = card.sample_size
    image, mask = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)), torch.ones(1, 1, h, w)

    threads = denoise_threads(pipe.unet)

    def bare(seed: int) -> float:
        with torch_threads(threads):
            start = time.perf_counter()
            pipe(prompt="rooftops at dusk", image=image, mask_image=mask, height=h, width=w, num_inference_steps=steps,
                 guidance_scale=7.5, generator=torch.Generator("cpu").manual_seed(seed), output_type="pt")
            return time.perf_counter() - start

    def ours(index: int) -> float:
        spec = VariationSpec(plate_pattern=plate["plate"], matte_pattern=plate["matte"], rect=None,
                             first=plate["first"], last=plate["first"], model_path=model, seed=index, steps=steps,
                             out_dir=str(root / f"sd-{index:02d}"), task="set_extension", prompt="rooftops at dusk")
        return generate_variation(spec).timings["denoise"]

    bare(0), ours(99)  # warm both
    pairs = [(ours(i), bare(i)) for i in range(repeats)]
    return _paired_median(pairs)


def _paired_median(pairs: list[tuple[float, float]]) -> float:
    return statistics.median(ours / bare for ours, bare in pairs)


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
        bare_ddim = _BareDDIM(model_path, steps)
        results, bare = [], []
        for index in range(variations):
            spec = VariationSpec(plate_pattern=plate["plate"], matte_pattern=plate["matte"], rect=None,
                                 first=1001, last=1000 + frames, model_path=model_path, seed=1000 + index,
                                 steps=steps, out_dir=str(root / f"v{index:02d}"))
            start = time.perf_counter()
            result = generate_variation(spec)
            results.append((time.perf_counter() - start, result))
            bare.append(bare_ddim(seed=index))
        denoise = [r.timings["denoise"] for _, r in results]
        for index in range(int(os.environ.get("BENCH_PAIRS", "7"))):
            spec = VariationSpec(plate_pattern=plate["plate"], matte_pattern=plate["matte"], rect=None,
                                 first=1001, last=1001, model_path=model_path, seed=2000 + index, steps=steps,
                                 out_dir=str(root / f"pair{index:02d}"))
            denoise.append(generate_variation(spec).timings["denoise"])
            bare.append(bare_ddim(seed=100 + index))
        sd_ratio = _sd_overhead(root, plate, steps, repeats=3)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    # The first variation also pays for the camera track, which later variations of a request reuse.
    walls = [wall for wall, _ in results]
    print(json.dumps({
        "model": model_name, "frames": frames, "size": [width, height], "steps": steps,
        "variations": variations, "variation_seconds": [round(w, 2) for w in walls],
        "timings_last": {k: round(v, 2) for k, v in results[-1][1].timings.items()},
        "seconds_per_variation_frame": round(statistics.median(walls) / frames, 3),
        "denoise_seconds": [round(d, 3) for d in denoise], "bare_diffusers_seconds": [round(b, 3) for b in bare],
        "overhead_ratio": round(_paired_median(list(zip(denoise, bare, strict=True))), 3),
        "overhead_ratio_fastest": round(min(denoise) / min(bare), 3),
        "sd_overhead_ratio": round(sd_ratio, 3),
        "flicker_ratio": round(max(r.flicker_ratio for _, r in results), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
