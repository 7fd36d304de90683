"""Look-dev skies cut from real sky HDRIs: the demo show's real look-dev beside the procedural skies.

A sky HDRI is an equirectangular panorama (top row the zenith, the middle row the horizon). From each one we cut
windows of the sky above the horizon (the horizon on the bottom row, as in :func:`demo_plate.render_lookdev_skies`),
at ``yaws`` headings around the panorama (wrapping) and a few heights (how far up the window reaches), 1:2 like the
procedural skies, box-resized in scene-linear to ``size``. Each window's exposure is normalised so its median
luminance is :data:`MEDIAN_LEVEL` (± a seeded ``jitter_stops``): the HDRIs' absolute levels are arbitrary
(a night sky, a sun of 70 000), the procedural skies' are near this level. Written as ACEScg half EXRs (the
HDRIs are linear Rec.709, converted through OpenColorIO), byte-identical for the same arguments, with their
licence merged into the folder's ``approvals.json`` (the training command refuses files without one).

The nine 1k HDRIs of ``../shared/testdata/lookdev-skies`` are Poly Haven's, CC0. Six of them are open sky above
the horizon (:data:`OPEN_SKIES`, the demo's look-dev); looked at window by window, the other three are not skies:
``adams_place_bridge`` is under a glass canopy, ``forest_slope`` inside a forest, ``lebombo`` an interior.
No Django here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from generation.engine import colour, frames
from generation.engine.frames import Window, write_exr

MEDIAN_LEVEL = 0.4  # the procedural look-dev skies' median luminance (measured: 0.40)
HEIGHTS = (0.28, 0.39, 0.5)  # window height as a share of the upper hemisphere (0.5: up to 45° elevation)
LICENCE = "CC0 (Poly Haven), real sky HDRI"
_DATETIME = "2025:01:01 00:00:00"
OPEN_SKIES = ("dikhololo_night_1k", "immenstadter_horn_1k", "kiara_1_dawn_1k", "potsdamer_platz_1k", "rooitou_park_1k",
              "venice_sunset_1k")


class LookdevError(ValueError):
    """An HDRI that cannot be used."""


def read_hdri(path: str | os.PathLike) -> np.ndarray:
    """An equirectangular HDRI (Radiance .hdr or EXR, linear Rec.709) as float32 (H, W, 3) ACEScg."""
    buf = oiio.ImageBuf(os.fspath(path))
    if buf.has_error or buf.nchannels < 3:
        raise LookdevError(f"{path}: {buf.geterror() or 'not an RGB image'}")
    rgb = np.asarray(buf.get_pixels(oiio.FLOAT), np.float32)[..., :3]
    rgb = np.nan_to_num(np.maximum(rgb, 0.0), nan=0.0, posinf=0.0)
    if rgb.shape[1] != 2 * rgb.shape[0]:
        raise LookdevError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} is not a 2:1 equirectangular panorama")
    return colour.convert(np.ascontiguousarray(rgb), "Linear Rec.709 (sRGB)", "ACEScg")


def sky_windows(panorama: np.ndarray, *, size: tuple[int, int], yaws: int, rng: np.random.Generator,
                jitter_stops: float = 0.4) -> list[np.ndarray]:
    """Sky windows of an ACEScg panorama (see the module docstring), float32 (size[0], size[1], 3) each."""
    h, w = size
    horizon = panorama.shape[0] // 2
    wrapped = np.concatenate([panorama[:horizon], panorama[:horizon]], axis=1)  # headings wrap around
    weights = np.array([0.2722, 0.6741, 0.0537], np.float32)  # ACEScg luminance
    out = []
    for share in HEIGHTS:
        rows = max(2, round(horizon * share * 2))
        rows = min(rows, horizon)
        cols = min(panorama.shape[1], round(rows * w / h))
        for k in range(yaws):
            x0 = (k * panorama.shape[1]) // yaws
            window = np.ascontiguousarray(wrapped[horizon - rows:horizon, x0:x0 + cols])
            small = frames.resize(window, w, h)
            median = float(np.median(small @ weights))
            gain = MEDIAN_LEVEL * 2.0 ** rng.uniform(-jitter_stops, jitter_stops) / max(median, 1e-6)
            out.append((small * np.float32(gain)).astype(np.float32))
    return out


def render_hdri_skies(hdri_dir: str | os.PathLike, out_dir: str | os.PathLike, *, size: tuple[int, int] = (96, 192),
                      yaws: int = 16, seed: int = 11, licence: str = LICENCE,
                      names: tuple[str, ...] | None = OPEN_SKIES) -> list[str]:
    """Write the sky windows of every ``*.hdr``/``*.exr`` in ``hdri_dir`` (only those whose stem is in ``names``,
    unless it is None) to ``out_dir`` as
    ``lookdev_hdri_<name>_<nnn>.exr`` and merge their licence into ``out_dir/approvals.json``. Returns the paths."""
    sources = sorted(p for p in Path(hdri_dir).iterdir() if p.suffix.lower() in (".hdr", ".exr") and p.is_file()
                     and (names is None or p.stem in names))
    if not sources:
        raise LookdevError(f"{hdri_dir} holds no .hdr or .exr sky HDRIs")
    os.makedirs(out_dir, exist_ok=True)
    approvals_path = Path(out_dir) / "approvals.json"
    approvals = json.loads(approvals_path.read_text()) if approvals_path.is_file() else {}
    paths = []
    for index, source in enumerate(sources):
        rng = np.random.default_rng([seed, index])
        for n, rgb in enumerate(sky_windows(read_hdri(source), size=size, yaws=yaws, rng=rng)):
            name = f"lookdev_hdri_{source.stem}_{n:03d}.exr"
            path = os.path.join(out_dir, name)
            write_exr(path, rgb, display_window=Window(0, 0, size[1], size[0]), channel_names=("R", "G", "B"),
                      attributes={"parallel_track:colourspace": "ACEScg", "parallel_track:lookdev_source": source.name,
                                  "DateTime": _DATETIME})
            paths.append(path)
            approvals[name] = f"{licence}: {source.name}"
    approvals_path.write_text(json.dumps(approvals, indent=2, sort_keys=True))
    return paths
