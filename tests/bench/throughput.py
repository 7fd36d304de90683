"""Throughput on one machine: a request's variations as the embedded default runs them.

python -m tests.bench.throughput → one JSON object (last line). 12 variations × 96 frames of the 1920×1080
demo plate (its sky matte), 25 steps, on one worker thread running the variations one after another, as
``portal/worker.py``'s embedded executor does (the same engine call the Celery task makes; the request's
camera track and plate frames are shared through the engine's caches, as on a worker). The process has
imported the engine and the denoisers' model code first (``backends.warm``, what ``manage.py serve``
has its embedded worker do at start); the shot is new to it (no frame, track or flow cached) and so is
the model (loaded inside the measurement):

- first_proxy_s: from submit to the first variation's first proxy JPEG on disk (polled every 10 ms);
- all_in_review_s: from submit to the last variation's last frame written;
- floor_s: measured in the same run, the time the same number of frames (variations × frames) takes to
  read a plate frame, write it as a zip EXR and turn it into a 960-wide proxy JPEG (a box-filtered
  resize, the filter our proxies use: OIIO's default filter alone takes about 1 s a frame, 16x ours,
  and would make the floor too easy to reach; the show's OCIO display/view; JPEG) with OpenImageIO
  alone on one thread, divided by the cores; timed on the floor frames before and after the run (the
  mean of the two is used, both are printed, so a machine whose load changed shows it);
- ratio_to_floor: all_in_review_s / floor_s (goal ≤ 1.5); first_proxy_s (goal ≤ 3 s), all_in_review_s
  (goal ≤ 180 s);
- cpu_s / floor_cpu_s / cpu_ratio_to_floor: the CPU seconds of the run (every thread) against the floor's
  CPU seconds for the same frames: what the work costs, whatever share of a busy machine it got;
- variation_cpu_s / cpu_per_frame_after_first: each variation's CPU seconds (the process's while it ran: its
  own with in_flight 1) and what a variation after the first costs per frame, beside floor_cpu_per_frame;
- cpu_count (the cores this process may use), load_start / load_end (1, 5, 15-minute load averages),
  frame_workers, in_flight, per-variation seconds, when each variation's first proxy appeared, and the
  first and last variations' stage timings.

Flags (each also an environment variable, flags win): --variations (BENCH_VARIATIONS, 12), --frames
(BENCH_FRAMES, 96), --size (BENCH_SIZE, 1920x1080), --steps (BENCH_STEPS, 25), --floor-frames
(BENCH_FLOOR_FRAMES, 12), --in-flight (BENCH_IN_FLIGHT, 1: variations run at once, as many worker
threads), --model (BENCH_MODEL, default deploy/demo-model/demo-sky when present, else a tiny seeded
model). A smaller run: ``python -m tests.bench.throughput --variations 2 --frames 24``.
"""

from __future__ import annotations

import argparse
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

from generation.engine import backends, colour
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
    small = oiio.ImageBufAlgo.resize(rgb, "box", 0.0, oiio.ROI(0, PROXY_WIDTH, 0, height, 0, 1, 0, 3))
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


class _FirstFiles:
    """Polls for files (every 10 ms, one thread) and records when each appears (seconds after ``start``)."""

    def __init__(self, paths: list[str], start: float) -> None:
        self.paths, self.start = paths, start
        self.seen: list[float | None] = [None] * len(paths)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set() and None in self.seen:
            for i, path in enumerate(self.paths):
                if self.seen[i] is None and os.path.exists(path):
                    self.seen[i] = time.perf_counter() - self.start
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m tests.bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--variations", type=int, default=int(env("BENCH_VARIATIONS", "12")))
    parser.add_argument("--frames", type=int, default=int(env("BENCH_FRAMES", "96")))
    parser.add_argument("--size", default=env("BENCH_SIZE", "1920x1080"), help="WIDTHxHEIGHT of the plate")
    parser.add_argument("--steps", type=int, default=int(env("BENCH_STEPS", "25")))
    parser.add_argument("--floor-frames", type=int, default=int(env("BENCH_FLOOR_FRAMES", "12")))
    parser.add_argument(
        "--in-flight",
        type=int,
        default=int(env("BENCH_IN_FLIGHT", "1")),
        help="variations run at once (worker threads); the embedded default runs 1",
    )
    parser.add_argument("--model", default=env("BENCH_MODEL", ""), help="a model directory")
    args = parser.parse_args(argv)
    if min(args.variations, args.frames, args.steps, args.floor_frames, args.in_flight) < 1:
        parser.error("--variations, --frames, --steps, --floor-frames and --in-flight must be at least 1")
    try:
        args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size wants WIDTHxHEIGHT, got {args.size!r}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    variations, count, steps, in_flight = args.variations, args.frames, args.steps, args.in_flight
    width, height = args.width, args.height
    floor_frames = min(count, args.floor_frames)
    cores = frame_workers()
    root = Path(tempfile.mkdtemp(prefix="pt-bench-throughput-"))
    try:
        plate = render_demo_plate(str(root / "plate"), first=1001, last=1000 + count, width=width, height=height)
        model = args.model or _model(root)
        warm = time.perf_counter()
        backends.warm()  # what the embedded worker does when the portal starts
        warm = time.perf_counter() - warm
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
        spans: list[tuple[float, float] | None] = [None] * variations
        cpu_each: list[float | None] = [None] * variations
        results: list = [None] * variations
        start, cpu_start = time.perf_counter(), time.process_time()
        proxies = [frame_path(os.path.join(spec.out_dir, "proxy", "incontext.####.jpg"), 1001) for spec in specs]
        watch = _FirstFiles(proxies, start)

        def run(index: int) -> None:
            began, cpu_began = time.perf_counter() - start, time.process_time()
            results[index] = generate_variation(specs[index])
            spans[index] = (began, time.perf_counter() - start)
            cpu_each[index] = time.process_time() - cpu_began  # the process's: one variation's own when in_flight 1

        try:
            with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="pt-worker") as worker:
                futures = [worker.submit(run, index) for index in range(variations)]
                for future in futures:
                    future.result()
            all_in_review = time.perf_counter() - start
            cpu_run = time.process_time() - cpu_start
        finally:
            watch.stop()
        floor_after = floor_seconds_per_frame(plate, root, floor_frames)
        load_end = _load()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per_frame = statistics.mean([floor_before[0], floor_after[0]])
    floor = per_frame * variations * count / cores
    floor_cpu = statistics.mean([floor_before[1], floor_after[1]]) * variations * count
    first_proxy = min((t for t in watch.seen if t is not None), default=None)
    print(
        json.dumps(
            {
                "variations": variations,
                "frames": count,
                "size": [width, height],
                "steps": steps,
                "model": os.path.basename(model),
                "first_proxy_s": round(first_proxy, 2) if first_proxy is not None else None,
                "all_in_review_s": round(all_in_review, 1),
                "floor_s": round(floor, 1),
                "ratio_to_floor": round(all_in_review / floor, 3),
                "floor_seconds_per_frame_one_thread": [round(floor_before[0], 4), round(floor_after[0], 4)],
                "cpu_s": round(cpu_run, 1),
                "floor_cpu_s": round(floor_cpu, 1),
                "cpu_ratio_to_floor": round(cpu_run / floor_cpu, 3),
                "cpu_count": cores,
                "os_cpu_count": os.cpu_count(),
                "frame_workers": frame_workers(),
                "in_flight": in_flight,
                "load_start": load_start,
                "load_end": load_end,
                "warm_s": round(warm, 2),
                "variation_seconds": [round(end - began, 1) for began, end in spans],
                "variation_cpu_s": [round(c, 1) for c in cpu_each],
                # What a variation after the first costs a frame, in CPU seconds (with in_flight 1 only its own
                # work runs): against floor_cpu_s / (variations x frames), the floor's per frame.
                "cpu_per_frame_after_first": round(statistics.mean(cpu_each[1:]) / count, 4) if variations > 1 else None,
                "floor_cpu_per_frame": round(floor_cpu / (variations * count), 4),
                "first_proxy_each_s": [None if t is None else round(t, 2) for t in watch.seen],
                "timings_first": {k: round(v, 2) for k, v in results[0].timings.items()},
                "timings_last": {k: round(v, 2) for k, v in results[-1].timings.items()},
                "coverage_min": min(r.coverage for r in results),
                "goals": {"first_proxy_s": 3.0, "all_in_review_s": 180.0, "ratio_to_floor": 1.5},
            }
        )
    )


if __name__ == "__main__":
    main()
