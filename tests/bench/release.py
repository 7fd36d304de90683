"""Release throughput: our publish of a 96-frame 2K element against a plain copy of the same bytes.

python -m tests.bench.release  → one JSON object (last line): frames, release_seconds, copy_seconds,
release_vs_copy_ratio (copy time / release time: 1.0 means as fast as a copy; goal ≥ 0.8).
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from generation.engine.frames import Window, write_exr
from generation.engine.sequence import frame_path
from review.publish import PublishPlan, publish


def _element(folder: Path, frames: range, width: int, height: int) -> str:
    """A premultiplied RGBA half element cropped to its alpha, like the engine writes, with grain."""
    folder.mkdir(parents=True)
    pattern = str(folder / "element.####.exr")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    alpha = np.clip((height * 0.55 - yy) / 8.0, 0.0, 1.0)
    display = Window(0, 0, width, height)
    data = Window(0, 0, width, int(height * 0.55) + 8)
    for frame in frames:
        rgb = np.stack([0.6 + 0.3 * xx / width, 0.7 + 0.0 * yy, 1.1 - 0.4 * yy / height], axis=2)
        rgb += rng.normal(0, 0.01, rgb.shape).astype(np.float32)
        rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)
        write_exr(frame_path(pattern, frame), rgba, display_window=display, data_window=data)
    return pattern


def main() -> None:
    frames = range(1001, 1001 + int(os.environ.get("BENCH_FRAMES", "96")))
    width, height = 2048, 1080
    root = Path(tempfile.mkdtemp(prefix="pt-bench-release-"))
    try:
        source = _element(root / "work", frames, width, height)
        plan = PublishPlan(source_pattern=source, target_pattern=str(root / "publish" / "v001" / "sh_sky_v001.####.exr"),
                           frames=list(frames), attributes={f"parallel_track:key{i}": "x" * 40 for i in range(15)},
                           colourspace="ACEScg", release_id=1)
        os.sync()
        start = time.perf_counter()
        publish(plan)
        os.sync()
        release_seconds = time.perf_counter() - start
        copy_dir = root / "copy"
        copy_dir.mkdir()
        start = time.perf_counter()
        for frame in frames:
            shutil.copyfile(frame_path(source, frame), copy_dir / Path(frame_path(source, frame)).name)
        os.sync()
        copy_seconds = time.perf_counter() - start
        size = sum(Path(frame_path(source, f)).stat().st_size for f in frames)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"frames": len(frames), "frame_size": [width, height], "megabytes": round(size / 1e6, 1),
                      "release_seconds": round(release_seconds, 3), "copy_seconds": round(copy_seconds, 3),
                      "release_vs_copy_ratio": round(copy_seconds / release_seconds, 3)}))


if __name__ == "__main__":
    sys.exit(main())
