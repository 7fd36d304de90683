"""Throughput on one machine: a request's variations as the embedded default runs them.

python -m tests.bench.throughput → one JSON object (last line). 12 variations × 96 frames of the 1920×1080
demo plate (its sky matte), 25 steps, on one worker thread running the variations one after another, as
``portal/worker.py``'s embedded executor does (the same engine call the Celery task makes; the request's
camera track and plate frames are shared through the engine's caches, as on a worker):

- first_proxy_s: from submit to the first variation's first proxy JPEG on disk (polled every 10 ms);
- all_in_review_s: from submit to the last variation's last frame written;
- floor_s: measured in the same run, the time the same number of frames (variations × frames) takes to
  read a plate frame, write it as a zip EXR and turn it into a 960-wide proxy JPEG (resize, the show's
  OCIO display/view, JPEG) with OpenImageIO alone on one thread, divided by the cores; timed on
  BENCH_FLOOR_FRAMES frames before and after the run (the mean of the two is used, both are printed,
  so a machine whose load changed shows it);
- ratio_to_floor: all_in_review_s / floor_s (goal ≤ 1.5); first_proxy_s (goal ≤ 3 s), all_in_review_s
  (goal ≤ 180 s);
- cpu_s / floor_cpu_s / cpu_ratio_to_floor: the CPU seconds of the run (every thread) against the floor's
  CPU seconds for the same frames: what the work costs, whatever share of a busy machine it got;
- cpu_count (the cores this process may use), load_start / load_end (1, 5, 15-minute load averages),
  frame_workers, per-variation seconds and the first variation's stage timings.
Env: BENCH_VARIATIONS (12), BENCH_FRAMES (96), BENCH_SIZE (1920x1080), BENCH_STEPS (25), BENCH_FLOOR_FRAMES
(12), BENCH_MODEL (default deploy/demo-model/demo-sky when present, else a tiny seeded model).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import OpenImageIO as oiio

from generation.engine import colour
from generation.engine.demo_plate import render_demo_plate
from generation.engine.frame_writer import frame_workers
from generation.engine.sequence import frame_path
from generation.engine.variation import VariationSpec, generate_variation
from tests.bench.generation import _model

PROXY_WIDTH = 960


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def oiio_frame(plate: str, exr_out: str, jpg_out: str, display: str, view: str, config: str) -> None:
    """The floor's unit of work: read → EXR → proxy with OpenImageIO alone."""
    buf = oiio.ImageBuf(plate)
    buf.read(force=True)
    buf.specmod().attribute("compression", "zip")
    buf.set_write_format(oiio.HALF)
    if not buf.write(exr_out):
        raise RuntimeError(buf.geterror())
    spec = buf.spec()
    height = max(1, round(spec.full_height * PROXY_WIDTH / spec.full_width))
    rgb = oiio.ImageBufAlgo.channels(buf, (0, 1, 2))
    small = oiio.ImageBufAlgo.resize(rgb, roi=oiio.ROI(0, PROXY_WIDTH, 0, height, 0, 1, 0, 3))
    shown = oiio.ImageBufAlgo.ociodisplay(small, display, view, fromspace="ACEScg", colorconfig=config)
    shown.set_write_format(oiio.UINT8)
    shown.specmod().attribute("compression", "jpeg:90")
    if not shown.write(jpg_out):
        raise RuntimeError(shown.geterror())


def floor_seconds_per_frame(plate: dict, root: Path, count: int) -> tuple[float, float]:
    """Wall and CPU seconds per frame of :func:`oiio_frame` on one thread (OIIO's own threads set to 1)."""
    config = colour.pinned_config_name(None)
    display, view = colour.default_display_view(config)
    threads = oiio.get_int_attribute("threads")
    oiio.attribute("threads", 1)
    out = root / "floor"
    out.mkdir(exist_ok=True)
    try:
        frames = list(range(plate["first"], plate["first"] + count))
        oiio_frame(
            frame_path(plate["plate"], frames[0]), str(out / "w.exr"), str(out / "w.jpg"), display, view, config
        )  # warm: the config's processors
        start, cpu = time.perf_counter(), time.process_time()
        for f in frames:
            oiio_frame(
                frame_path(plate["plate"], f), str(out / f"{f}.exr"), str(out / f"{f}.jpg"), display, view, config
            )
        return (time.perf_counter() - start) / len(frames), (time.process_time() - cpu) / len(frames)
    finally:
        oiio.attribute("threads", threads)


class _FirstFile:
    """Polls for a file and records when it appears (seconds after ``start``)."""

    def __init__(self, path: str, start: float) -> None:
        self.path, self.start, self.seen = path, start, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            if os.path.exists(self.path):
                self.seen = time.perf_counter() - self.start
                return
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    variations = int(os.environ.get("BENCH_VARIATIONS", "12"))
    count = int(os.environ.get("BENCH_FRAMES", "96"))
    width, height = (int(v) for v in os.environ.get("BENCH_SIZE", "1920x1080").split("x"))
    steps = int(os.environ.get("BENCH_STEPS", "25"))
    floor_frames = min(count, int(os.environ.get("BENCH_FLOOR_FRAMES", "12")))
    cores = frame_workers()
    root = Path(tempfile.mkdtemp(prefix="pt-bench-throughput-"))
    try:
        plate = render_demo_plate(str(root / "plate"), first=1001, last=1000 + count, width=width, height=height)
        model = _model(root)
        load_start = _load()
        floor_before = floor_seconds_per_frame(plate, root, floor_frames)
        specs = [
            VariationSpec(
                plate_pattern=plate["plate"],
                matte_pattern=plate["matte"],
                rect=None,
                first=1001,
                last=1000 + count,
                model_path=model,
                seed=5000 + index,
                steps=steps,
                out_dir=str(root / "work" / f"v{index:03d}"),
                proxy_width=PROXY_WIDTH,
            )
            for index in range(variations)
        ]
        done: list[float] = []
        results = []
        start, cpu_start = time.perf_counter(), time.process_time()
        watch = _FirstFile(frame_path(os.path.join(specs[0].out_dir, "proxy", "incontext.####.jpg"), 1001), start)

        def run(spec: VariationSpec) -> None:
            results.append(generate_variation(spec))
            done.append(time.perf_counter() - start)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pt-worker") as worker:  # the embedded worker
            futures = [worker.submit(run, spec) for spec in specs]
            for future in futures:
                future.result()
        all_in_review = time.perf_counter() - start
        cpu_run = time.process_time() - cpu_start
        watch.stop()
        floor_after = floor_seconds_per_frame(plate, root, floor_frames)
        load_end = _load()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_frame = statistics.mean([floor_before[0], floor_after[0]])
    floor = per_frame * variations * count / cores
    floor_cpu = statistics.mean([floor_before[1], floor_after[1]]) * variations * count
    starts = [0.0] + done[:-1]
    print(
        json.dumps(
            {
                "variations": variations,
                "frames": count,
                "size": [width, height],
                "steps": steps,
                "model": os.path.basename(model),
                "first_proxy_s": round(watch.seen, 2) if watch.seen is not None else None,
                "all_in_review_s": round(all_in_review, 1),
                "floor_s": round(floor, 1),
                "ratio_to_floor": round(all_in_review / floor, 3),
                "floor_seconds_per_frame_one_thread": [round(floor_before[0], 4), round(floor_after[0], 4)],
                "cpu_s": round(cpu_run, 1),
                "floor_cpu_s": round(floor_cpu, 1),
                "cpu_ratio_to_floor": round(cpu_run / floor_cpu, 3),
                "cpu_count": cores,
                "frame_workers": frame_workers(),
                "load_start": load_start,
                "load_end": load_end,
                "variation_seconds": [round(d - s, 1) for s, d in zip(starts, done, strict=True)],
                "timings_first": {k: round(v, 2) for k, v in results[0].timings.items()},
                "timings_last": {k: round(v, 2) for k, v in results[-1].timings.items()},
                "goals": {"first_proxy_s": 3.0, "all_in_review_s": 180.0, "ratio_to_floor": 1.5},
            }
        )
    )


if __name__ == "__main__":
    main()
