"""Procedural demo material: a panning city-skyline plate with its sky matte, and look-dev skies.

Everything is scene-linear ACEScg, written as half EXRs.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from generation.engine.frames import Window, write_exr
from generation.engine.sequence import frame_path

APPROVAL_NOTE = "approved look-dev, demo show, procedural"


def _span_cover(start: float, end: float, size: int) -> tuple[int, int, np.ndarray]:
    """Pixel range [i0, i1) touched by [start, end) and each pixel's fractional coverage."""
    i0, i1 = max(0, math.floor(start)), min(size, math.ceil(end))
    if i1 <= i0:
        return 0, 0, np.zeros(0, np.float32)
    pixels = np.arange(i0, i1, dtype=np.float32)
    cover = np.clip(np.minimum(pixels + 1, end) - np.maximum(pixels, start), 0.0, 1.0)
    return i0, i1, cover.astype(np.float32)


def _paint_rect(
    rgb: np.ndarray, solid: np.ndarray, box: tuple[float, float, float, float], colour: np.ndarray
) -> tuple[slice, slice] | None:
    """Composite an anti-aliased opaque rectangle (x0, y0, x1, y1) over ``rgb``; grow ``solid``."""
    h, w = solid.shape
    x0, x1, cx = _span_cover(box[0], box[2], w)
    y0, y1, cy = _span_cover(box[1], box[3], h)
    if x1 == x0 or y1 == y0:
        return None
    cover = cy[:, None] * cx[None, :]
    region = (slice(y0, y1), slice(x0, x1))
    rgb[region] += (colour - rgb[region]) * cover[..., None]
    solid[region] = 1.0 - (1.0 - solid[region]) * (1.0 - cover)
    return region


def _building(
    rgb: np.ndarray,
    solid: np.ndarray,
    rng: np.random.Generator,
    x: float,
    width: float,
    top: float,
    street: float,
    scale: float,
    haze: float,
) -> None:
    body = np.array([0.03, 0.032, 0.038], np.float32) * rng.uniform(0.6, 1.6) + haze
    region = _paint_rect(rgb, solid, (x, top, x + width, street), body)
    if rng.random() < 0.4:  # setback on top
        inset = width * rng.uniform(0.15, 0.3)
        _paint_rect(
            rgb, solid, (x + inset, top - scale * rng.uniform(0.02, 0.06), x + width - inset, top + 1), body * 0.9
        )
    if rng.random() < 0.5:  # antenna
        ax = x + width * rng.uniform(0.2, 0.8)
        _paint_rect(rgb, solid, (ax, top - scale * rng.uniform(0.04, 0.1), ax + max(1.0, scale * 0.002), top + 1), body)
    elif rng.random() < 0.5:  # water tank
        tx = x + width * rng.uniform(0.1, 0.6)
        _paint_rect(rgb, solid, (tx, top - scale * 0.025, tx + scale * 0.02, top + 1), body * 1.2)
    if region is None or haze > 0.05:
        return
    ys, xs = np.mgrid[region[0], region[1]]
    pitch_x, pitch_y = max(3, int(scale * 0.014)), max(4, int(scale * 0.022))
    cell_x, cell_y = (xs - int(x)) // pitch_x, (ys - int(top)) // pitch_y
    in_window = ((xs - int(x)) % pitch_x >= pitch_x // 3) & ((ys - int(top)) % pitch_y >= pitch_y // 3)
    lit_hash = (cell_x * 73856093 ^ cell_y * 19349663 ^ int(x) * 83492791) % 1000
    lit = in_window & (lit_hash < 350) & (ys > top + pitch_y) & (xs < x + width - pitch_x / 2)
    glow = (0.8 + 3.2 * ((lit_hash * 7919) % 1000) / 1000.0).astype(np.float32)
    warm = np.array([1.0, 0.78, 0.5], np.float32)
    rgb[region] = np.where(lit[..., None], glow[..., None] * warm, rgb[region])


def _skyline(width: int, height: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The wide canvas: ACEScg RGB float32 (H, W, 3) and sky matte float32 (H, W)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    zenith, horizon = np.array([0.30, 0.42, 0.62], np.float32), np.array([2.0, 1.9, 1.7], np.float32)
    sky = zenith + (horizon - zenith) * (t[..., None] ** 1.6)
    rgb = np.broadcast_to(sky, (height, width, 3)).astype(np.float32)
    solid = np.zeros((height, width), np.float32)
    street = height * 0.9
    for layer, haze in ((0, 0.25), (1, 0.0)):  # hazy far row, then dark near row
        x = -rng.uniform(0, height * 0.05)
        while x < width:
            bw = height * rng.uniform(0.05, 0.14)
            rise = height * (rng.uniform(0.25, 0.55) if layer == 0 else rng.uniform(0.12, 0.6))
            _building(rgb, solid, rng, x, bw, street - rise, street, height, haze)
            x += bw + height * rng.uniform(0.0, 0.02)
    _paint_rect(rgb, solid, (0, street, width, height), np.array([0.05, 0.05, 0.055], np.float32))
    rgb[int(street) + 2 :: max(2, height // 60), :, :] *= 1.6  # lane markings / kerb texture
    return rgb, 1.0 - solid


def _slice(canvas: np.ndarray, offset: float, width: int) -> np.ndarray:
    """Columns [offset, offset + width) of ``canvas`` with linear sub-pixel interpolation."""
    i = math.floor(offset)
    f = np.float32(offset - i)
    return canvas[:, i : i + width] * (1 - f) + canvas[:, i + 1 : i + 1 + width] * f


def render_demo_plate(
    out_dir: str | os.PathLike[str],
    *,
    first: int = 1001,
    last: int = 1024,
    width: int = 1920,
    height: int = 1080,
    pan_px_per_frame: float = 3.0,
    seed: int = 7,
    depth: bool = False,
) -> dict:
    """Render the demo skyline plate (ACEScg half RGBA, A=1) and its sky matte (R=G=B=A).

    Content moves +x by ``pan_px_per_frame`` per frame. Returns the two ``####`` patterns
    (keys ``plate``, ``matte``) and ``first``/``last``. ``depth`` adds a synthetic ``Z`` channel
    (scene units): buildings at 400, the street coming from 400 to 20 at the bottom, sky at 10000.
    """
    out_dir = os.fspath(out_dir)
    plate = os.path.join(out_dir, "plate", "demo_plate.####.exr")
    matte = os.path.join(out_dir, "matte", "demo_sky_matte.####.exr")
    for pattern in (plate, matte):
        os.makedirs(os.path.dirname(pattern), exist_ok=True)
    travel = abs(pan_px_per_frame) * (last - first)
    rgb, sky = _skyline(width + math.ceil(travel) + 2, height, seed)
    if depth:
        street = height * 0.9  # as _skyline
        rows = np.arange(height, dtype=np.float32)[:, None]
        near = 400.0 - 380.0 * np.clip((rows - street) / max(height - 1 - street, 1.0), 0.0, 1.0)
        z = np.where(sky > 0.5, np.float32(10000.0), near).astype(np.float32)
    window = Window(0, 0, width, height)
    attributes = {"parallel_track:colourspace": "ACEScg", "parallel_track:source": "demo plate"}

    def write(frame: int) -> None:
        offset = (travel if pan_px_per_frame >= 0 else 0.0) - pan_px_per_frame * (frame - first)
        frame_rgb = _slice(rgb, offset, width)
        grain = np.random.default_rng([seed, frame]).standard_normal(frame_rgb.shape, np.float32)
        frame_rgb = np.maximum(frame_rgb * (1 + 0.02 * grain) + 0.002 * grain, 0.0)
        alpha = np.ones((height, width, 1), np.float32)
        layers = [frame_rgb, alpha] + ([_slice(z[..., None], offset, width)] if depth else [])
        write_exr(
            frame_path(plate, frame),
            np.concatenate(layers, 2),
            display_window=window,
            channel_names=("R", "G", "B", "A", "Z") if depth else ("R", "G", "B", "A"),
            attributes=attributes,
            compression="zips",
        )
        m = _slice(sky[..., None], offset, width)
        write_exr(
            frame_path(matte, frame),
            np.repeat(m, 4, axis=2),
            display_window=window,
            attributes=attributes,
            compression="zips",
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(write, range(first, last + 1)))
    return {"plate": plate, "matte": matte, "first": first, "last": last}


# ------------------------------------------------------------------------------------- look-dev skies

LOOKDEV_KINDS = ("sunset", "blue_cumulus", "dusk", "overcast", "stormy")
# Linear Rec.709 (D65) -> ACEScg (AP1, D60), Bradford: look-dev colours are authored in Rec.709.
_REC709_TO_ACESCG = np.array(
    [
        [0.6130974024, 0.3395231462, 0.0473794514],
        [0.0701937225, 0.9163538791, 0.0134523985],
        [0.0206155929, 0.1095697729, 0.8698146342],
    ],
    np.float32,
)
# OpenImageIO stamps DateTime with the wall clock; a fixed one makes the files (and their sha256, and so
# a trained model's manifest hash) the same on every machine that renders the set.
_LOOKDEV_DATETIME = "2025:01:01 00:00:00"


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _lattice_noise(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Periodic value noise of the square ``grid`` at float coordinates, smoothstep-interpolated."""
    size = grid.shape[0]
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = _smoothstep(0.0, 1.0, u - u0), _smoothstep(0.0, 1.0, v - v0)
    i0, j0 = u0.astype(np.int64) % size, v0.astype(np.int64) % size
    i1, j1 = (i0 + 1) % size, (j0 + 1) % size
    top = grid[j0, i0] * (1 - fu) + grid[j0, i1] * fu
    bottom = grid[j1, i0] * (1 - fu) + grid[j1, i1] * fu
    return top * (1 - fv) + bottom * fv


def _fbm(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, octaves: int = 6) -> np.ndarray:
    """Fractal value noise at float coordinates (u, v), each octave rotated and offset (no grid lines)."""
    total = np.zeros(np.broadcast(u, v).shape, np.float32)
    amplitude, frequency = 1.0, 1.0
    for _ in range(octaves):
        angle = rng.uniform(0, 2 * np.pi)
        ca, sa = np.cos(angle), np.sin(angle)
        ou, ov = rng.uniform(0, 64, 2)
        grid = rng.random((64, 64), dtype=np.float32)
        uu, vv = u * frequency, v * frequency
        total += amplitude * _lattice_noise(grid, ca * uu - sa * vv + ou, sa * uu + ca * vv + ov)
        amplitude, frequency = amplitude * 0.5, frequency * 2.0
    return total


def _cloud_plane(rng: np.random.Generator, h: int, w: int, stretch: float) -> tuple[np.ndarray, ...]:
    """Where each pixel's ray meets a flat cloud layer: (u across, distance away). The bottom row is a
    few degrees above the horizon, so clouds shrink and flatten towards it as in a real sky."""
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :] * (w / h)
    top, bottom = np.radians(rng.uniform(28, 45)), np.radians(rng.uniform(1.5, 3.5))
    distance = 1.0 / np.tan(top * (1 - y) + bottom * y)
    return x * np.sqrt(distance**2 + 1.0) * 1.1 * stretch, np.broadcast_to(distance, (h, w))


def _sky_palette(rng: np.random.Generator, kind: str) -> dict:
    """Linear Rec.709 zenith / mid / horizon / lit-cloud / shadowed-cloud colours, the fraction of sky
    the clouds cover, their edge softness, the sun's glow, the cloud layer's stretch, horizon haze."""

    def c(colour: list[float], spread: float = 0.12) -> np.ndarray:
        return np.array(colour, np.float32) * np.exp(rng.normal(0, spread, 3)).astype(np.float32)

    u = rng.uniform
    if kind == "sunset":
        return dict(
            zenith=c([0.10, 0.13, 0.32]),
            mid=c([0.9, 0.35, 0.35]),
            horizon=c([2.6, 1.0, 0.3]),
            lit=c([3.2, 1.2, 0.45]),
            shadow=c([0.25, 0.11, 0.16]),
            cover=u(0.25, 0.6),
            soft=u(0.1, 0.3),
            sun=u(6, 16),
            stretch=u(0.25, 0.6),
            haze=0.35,
        )
    if kind == "blue_cumulus":
        return dict(
            zenith=c([0.06, 0.16, 0.55], 0.08),
            mid=c([0.2, 0.36, 0.85], 0.08),
            horizon=c([0.6, 0.75, 1.05], 0.06),
            lit=c([2.4, 2.35, 2.3], 0.04),
            shadow=c([0.5, 0.55, 0.68], 0.06),
            cover=u(0.15, 0.5),
            soft=u(0.04, 0.12),
            sun=0.0,
            stretch=u(0.7, 1.1),
            haze=0.5,
        )
    if kind == "dusk":
        return dict(
            zenith=c([0.006, 0.012, 0.07]),
            mid=c([0.08, 0.05, 0.18]),
            horizon=c([1.2, 0.4, 0.12]),
            lit=c([0.9, 0.3, 0.15]),
            shadow=c([0.015, 0.012, 0.03]),
            cover=u(0.1, 0.4),
            soft=u(0.1, 0.3),
            sun=u(1.0, 3.0),
            stretch=u(0.15, 0.4),
            haze=0.3,
        )
    if kind == "overcast":
        grey = np.float32(u(0.7, 1.3))
        return dict(
            zenith=c([0.55, 0.58, 0.64], 0.03) * grey,
            mid=c([0.85, 0.88, 0.93], 0.03) * grey,
            horizon=c([1.2, 1.22, 1.25], 0.03) * grey,
            lit=c([1.35, 1.36, 1.38], 0.03) * grey,
            shadow=c([0.42, 0.44, 0.5], 0.04) * grey,
            cover=u(0.85, 1.0),
            soft=u(0.3, 0.6),
            sun=0.0,
            stretch=u(0.4, 0.9),
            haze=0.6,
        )
    if kind == "stormy":
        return dict(
            zenith=c([0.12, 0.13, 0.16], 0.05),
            mid=c([0.3, 0.32, 0.36], 0.05),
            horizon=c([0.9, 0.9, 0.85], 0.08),
            lit=c([0.35, 0.37, 0.42], 0.06),
            shadow=c([0.06, 0.065, 0.08], 0.05),
            cover=u(0.7, 0.95),
            soft=u(0.15, 0.35),
            sun=0.0,
            stretch=u(0.4, 0.8),
            haze=0.3,
        )
    raise ValueError(f"unknown look-dev sky kind {kind!r}; valid: {', '.join(LOOKDEV_KINDS)}")


def _lookdev_sky(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 linear Rec.709 sky of ``kind``, horizon at the bottom row: a three-colour
    dome, a sun glow, and a perspective cloud layer (fBm) that self-shadows and fades into the haze."""
    p = _sky_palette(rng, kind)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    t = y ** np.float32(rng.uniform(1.2, 2.6))
    mid_at = float(rng.uniform(0.35, 0.65))
    low, high = np.clip(t / mid_at, 0, 1), np.clip((t - mid_at) / (1 - mid_at), 0, 1)
    sky = np.where(
        t < mid_at, p["zenith"] + (p["mid"] - p["zenith"]) * low, p["mid"] + (p["horizon"] - p["mid"]) * high
    )
    sun_x, sun_y = rng.uniform(0.1, 0.9), rng.uniform(0.8, 1.08)
    sun_distance = np.sqrt(((x - sun_x) * (w / h)) ** 2 + (y - sun_y) ** 2)
    if p["sun"]:
        sky = sky + p["horizon"] * (np.exp(-sun_distance / 0.05) * p["sun"] + np.exp(-sun_distance / 0.3) * 0.8)
    across, distance = _cloud_plane(rng, h, w, p["stretch"])
    scale = rng.uniform(0.5, 1.2)
    density = _fbm(rng, across * scale, distance * scale)
    density = (density - density.mean()) / (density.std() + 1e-6)
    # The edge at a quantile makes 'cover' the fraction of the sky under cloud.
    edge = float(np.quantile(density, 1 - p["cover"])) if p["cover"] < 1 else float(density.min()) - 1
    alpha = _smoothstep(edge - p["soft"], edge + p["soft"], density)[..., None]
    # Self-shadowing: darker where the cloud is thick here and just above (towards the zenith).
    shift = max(1, h // 24)
    above = np.pad(density, ((shift, 0), (0, 0)), mode="edge")[:-shift]
    core = _smoothstep(edge, edge + 1.5, 0.5 * density + 0.5 * above)[..., None]
    cloud = p["lit"] + (p["shadow"] - p["lit"]) * core
    if p["sun"]:
        cloud = cloud * (0.4 + 1.6 * np.exp(-sun_distance / 0.35))
    alpha = alpha * (1 - 0.85 * _smoothstep(3.0, 14.0, distance)[..., None])  # lost in the haze
    sky = sky + (cloud - sky) * alpha
    haze = y**6 * p["haze"]
    sky = sky + (p["horizon"] - sky) * haze
    return (sky * np.float32(2.0 ** rng.uniform(-0.4, 0.4))).astype(np.float32)


def render_lookdev_skies(
    out_dir: str | os.PathLike[str], *, count: int = 64, size: tuple[int, int] = (64, 128), seed: int = 11
) -> list[str]:
    """Write ``count`` varied look-dev skies (ACEScg half RGB EXRs, H=size[0], W=size[1]), the kinds of
    LOOKDEV_KINDS in turn, horizon at the bottom. The same arguments give byte-identical files.

    Also writes ``approvals.json`` mapping each file name to the approval note. Returns the paths.
    """
    out_dir = os.fspath(out_dir)
    h, w = size
    if count <= 0 or h < 2 or w < 2:
        raise ValueError(f"need a positive count and a size of at least 2x2, got {count} and {size}")
    os.makedirs(out_dir, exist_ok=True)
    paths, approvals = [], {}
    for index in range(count):
        kind = LOOKDEV_KINDS[index % len(LOOKDEV_KINDS)]
        rgb = _lookdev_sky(np.random.default_rng([seed, index]), kind, h, w) @ _REC709_TO_ACESCG.T
        name = f"lookdev_sky_{index:03d}_{kind}.exr"
        path = os.path.join(out_dir, name)
        write_exr(
            path,
            rgb.astype(np.float32),
            display_window=Window(0, 0, w, h),
            channel_names=("R", "G", "B"),
            attributes={
                "parallel_track:colourspace": "ACEScg",
                "parallel_track:lookdev_kind": kind,
                "parallel_track:seed": seed,
                "DateTime": _LOOKDEV_DATETIME,
            },
        )
        paths.append(path)
        approvals[name] = APPROVAL_NOTE
    with open(os.path.join(out_dir, "approvals.json"), "w") as handle:
        json.dump(approvals, handle, indent=2, sort_keys=True)
    return paths
