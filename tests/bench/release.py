"""Release throughput: our publish of a 96-frame 2K element against a plain copy of the same bytes.

python -m tests.bench.release  → one JSON object (last line): frames, release_seconds, copy_seconds,
release_vs_copy_ratio (copy time / release time: 1.0 means as fast as a copy; goal ≥ 0.8).

Both sides start from the same element in the page cache and end with os.sync(), so both pay for getting
their bytes to disk (the release also fdatasyncs every frame before its rename). BENCH_ROUNDS rounds (3 by
default) alternate which side goes first; the keys give the medians, `rounds` every round's pair, `load`
the load average at the start (the machine may be shared) and *_cpu_seconds the CPU time each side used
(the release hashes every byte for the manifest: CPU a busy machine may not have to spare).
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from generation.engine.colour import DEFAULT_CONFIG
from generation.engine.frames import Window, write_exr
from generation.engine.sequence import frame_path
from review.publish import PublishPlan, publish, verify


def _element(folder: Path, frames: range, width: int, height: int) -> str:
    """A premultiplied RGBA half element cropped to its alpha, like the engine writes, with grain."""
    folder.mkdir(parents=True)
    pattern = str(folder / "element.####.exr")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    alpha = np.clip((height * 0.55 - yy) / 8.0, 0.0, 1.0)
    display = Window(0, 0, width, height)
    data = Window(0, 0, width, int(height * 0.55) + 8)
    with ThreadPoolExecutor(max_workers=2) as pool:  # OpenImageIO compresses without the GIL
        for frame in frames:
            rgb = np.stack([0.6 + 0.3 * xx / width, 0.7 + 0.0 * yy, 1.1 - 0.4 * yy / height], axis=2)
            rgb += rng.normal(0, 0.01, rgb.shape).astype(np.float32)
            rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)
            pool.submit(write_exr, frame_path(pattern, frame), rgba, display_window=display, data_window=data)
    return pattern


def _release(source: str, frames: range, folder: Path) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (all threads, user and kernel) to publish the element."""
    plan = PublishPlan(source_pattern=source, target_pattern=str(folder / "v001" / "sh_sky_v001.####.exr"),
                       frames=list(frames), attributes={f"parallel_track:key{i}": "x" * 40 for i in range(15)},
                       colourspace="ACEScg", release_id=1, ocio_config=DEFAULT_CONFIG, fps=24,
                       plate_pattern=source)  # the pipeline header too: a plate header read per frame
    os.sync()
    start, cpu = time.perf_counter(), time.process_time()
    publish(plan)
    os.sync()
    return time.perf_counter() - start, time.process_time() - cpu


def _copy(source: str, frames: range, folder: Path) -> tuple[float, float]:
    folder.mkdir()
    os.sync()
    start, cpu = time.perf_counter(), time.process_time()
    for frame in frames:
        shutil.copyfile(frame_path(source, frame), folder / Path(frame_path(source, frame)).name)
    os.sync()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    frames = range(1001, 1001 + int(os.environ.get("BENCH_FRAMES", "96")))
    width, height = 2048, 1080
    root = Path(tempfile.mkdtemp(prefix="pt-bench-release-"))
    rounds, cpu = [], []
    try:
        source = _element(root / "work", frames, width, height)
        size = sum(Path(frame_path(source, f)).stat().st_size for f in frames)
        load = os.getloadavg()[0]
        for n in range(int(os.environ.get("BENCH_ROUNDS", "3"))):
            release, copy = root / f"publish{n}", root / f"copy{n}"
            if n % 2:
                copy_seconds, copy_cpu = _copy(source, frames, copy)
                release_seconds, release_cpu = _release(source, frames, release)
            else:
                release_seconds, release_cpu = _release(source, frames, release)
                copy_seconds, copy_cpu = _copy(source, frames, copy)
            if n == 0:
                assert verify(release / "v001") == [], "the release does not match its manifest"
            rounds.append([round(release_seconds, 3), round(copy_seconds, 3)])
            cpu.append([release_cpu, copy_cpu])
            shutil.rmtree(release)
            shutil.rmtree(copy)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    release_seconds = statistics.median(r for r, _ in rounds)
    copy_seconds = statistics.median(c for _, c in rounds)
    print(json.dumps({"frames": len(frames), "frame_size": [width, height], "megabytes": round(size / 1e6, 1),
                      "release_seconds": round(release_seconds, 3), "copy_seconds": round(copy_seconds, 3),
                      "release_vs_copy_ratio": round(copy_seconds / release_seconds, 3),
                      "rounds": rounds, "load": round(load, 2),
                      "release_cpu_seconds": round(statistics.median(r for r, _ in cpu), 3),
                      "copy_cpu_seconds": round(statistics.median(c for _, c in cpu), 3)}))


if __name__ == "__main__":
    sys.exit(main())
