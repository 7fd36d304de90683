"""Show grain: measure a plate's grain, remove it (degrain), and synthesise it anew on an element (regrain).

Studio practice is degrain → work → regrain at delivery resolution, with grain strength following brightness
(F_ReGrain, DasGrain; AV1's film-grain synthesis models a noise pattern plus a strength-versus-intensity curve).
A :class:`GrainProfile` is that model, per channel:

- ``intensity`` / ``amplitude``: the grain's standard deviation (scene-linear units) at a few intensities;
- ``spectrum``: the grain's radially averaged power spectrum, normalised to a mean of 1, over
  :data:`RADIAL_BINS` rings of spatial frequency from 0 to 0.5 cycles per pixel;
- ``correlation``: the 3×3 correlation of the grain between R, G and B (film grain is partly shared).

It is measured from the quiet parts of the plate: the plate is cut into ``TILE``-pixel tiles, a quadratic surface is
fitted to each tile and channel and removed, and the residual's power is read per ring of frequency. Grain is in
every tile, texture and edges only in some, so in each intensity bin and ring the low percentile over the tiles
stands for the grain (minimum statistics, as in audio noise estimation), corrected by what the same estimator reads
from white noise. Rings below 1/8 cycle per pixel are not read (picture content outweighs grain there) but carried
over. The spectrum is then corrected for the tile window's smearing, so grain synthesised from the profile reads back
as the plate read. Tiles touching clipped or constant pixels (JPEG white, crushed black, CG flats) are left out,
because they would read as "no grain". A plate whose quiet tiles hold no measurable deviation (a CG render, a clean
digital plate) gets the empty profile, and regraining with it changes nothing. Temporal differences are not used:
the spatial estimate needs no motion compensation and works on a single frame.

Everything here is numpy over float32 (H, W, 3) scene-linear RGB (ACEScg by convention); no Django, no torch.
A profile is a few dozen numbers per channel and round-trips through JSON (:meth:`GrainProfile.to_json`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

TILE = 32
RADIAL_BINS = 12
INTENSITY_BINS = 8
MIN_TILES = 3  # per intensity bin
# Below this deviation relative to the level (0.1 %) there is no grain worth the name: it is what half-float
# rounding and a clean render leave. Film and digital-cinema grain sit at 0.5-5 %.
EMPTY_RELATIVE = 1e-3
_EPS = 1e-12


class GrainError(ValueError):
    """A profile or an image that cannot be used."""


@dataclass(frozen=True)
class ChannelGrain:
    """One channel's grain: deviation against intensity (scene-linear) and the normalised power spectrum."""

    intensity: tuple[float, ...]
    amplitude: tuple[float, ...]
    spectrum: tuple[float, ...]

    def amplitude_at(self, values: np.ndarray) -> np.ndarray:
        """Grain deviation at ``values`` (any shape, scene-linear), interpolated in log intensity, held flat
        beyond the measured range."""
        x = np.log(np.maximum(np.asarray(self.intensity, np.float64), _EPS))
        v = np.log(np.maximum(np.asarray(values, np.float64), _EPS))
        return np.interp(v, x, np.asarray(self.amplitude, np.float64)).astype(np.float32)


@dataclass(frozen=True)
class GrainProfile:
    """A plate's grain per channel (empty: the plate has none). See the module docstring."""

    channels: tuple[ChannelGrain, ...] = ()
    correlation: tuple[tuple[float, ...], ...] = ()
    measured: dict = field(default_factory=dict)  # how it was measured: frames, tiles, tile size

    @property
    def is_empty(self) -> bool:
        return not self.channels

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "tile": TILE,
            "channels": [
                {"intensity": list(c.intensity), "amplitude": list(c.amplitude), "spectrum": list(c.spectrum)}
                for c in self.channels
            ],
            "correlation": [list(row) for row in self.correlation],
            "measured": dict(self.measured),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """The profile's identity in provenance: sha256 (hex) of its canonical JSON."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, raw: dict) -> GrainProfile:
        """The profile ``to_dict`` wrote; GrainError on anything malformed."""
        try:
            channels = tuple(
                ChannelGrain(
                    tuple(float(v) for v in c["intensity"]),
                    tuple(float(v) for v in c["amplitude"]),
                    tuple(float(v) for v in c["spectrum"]),
                )
                for c in raw["channels"]
            )
            correlation = tuple(tuple(float(v) for v in row) for row in raw.get("correlation", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise GrainError(f"malformed grain profile ({exc})") from None
        profile = cls(channels, correlation, dict(raw.get("measured", {})))
        _check_profile(profile)
        return profile

    @classmethod
    def from_json(cls, text: str) -> GrainProfile:
        try:
            return cls.from_dict(json.loads(text))
        except ValueError as exc:
            if isinstance(exc, GrainError):
                raise
            raise GrainError(f"grain profile is not JSON ({exc})") from None


EMPTY = GrainProfile()


def _check_profile(profile: GrainProfile) -> None:
    if profile.is_empty:
        return
    if len(profile.channels) != 3:
        raise GrainError(f"a grain profile has 3 channels (R, G, B) or none, not {len(profile.channels)}")
    for c in profile.channels:
        n = len(c.intensity)
        if n < 1 or len(c.amplitude) != n or len(c.spectrum) != RADIAL_BINS:
            raise GrainError(f"a channel needs matching intensity/amplitude lists and {RADIAL_BINS} spectrum values")
        if any(b <= a for a, b in zip(c.intensity, c.intensity[1:], strict=False)) or min(c.amplitude) < 0:
            raise GrainError("intensities must increase and amplitudes be >= 0")
    if np.asarray(profile.correlation).shape != (3, 3):
        raise GrainError("a grain profile's correlation is 3x3")


def _check_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise GrainError(f"{what} must be (H, W, 3+), got {rgb.shape}")
    return rgb


# ------------------------------------------------------------------------------------------ measuring


def _surface_design(tile: int) -> tuple[np.ndarray, np.ndarray]:
    """The (T², 6) design of a quadratic surface over a tile and its pseudo-inverse: shading and gentle gradients
    are taken out of a tile before its deviation is read as grain."""
    y, x = (np.mgrid[0:tile, 0:tile].astype(np.float64) - (tile - 1) / 2) / tile
    x, y = x.ravel(), y.ravel()
    design = np.stack([np.ones(tile * tile), x, y, x * x, x * y, y * y], axis=1)
    return design, np.linalg.pinv(design)


_DESIGN, _PINV = _surface_design(TILE)
_HANN = np.outer(np.hanning(TILE), np.hanning(TILE))


def _tiles(rgb: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """(N, T, T, 3) float64 tiles that lie wholly inside ``valid`` (and hold finite pixels)."""
    h, w = (rgb.shape[0] // TILE) * TILE, (rgb.shape[1] // TILE) * TILE
    if h == 0 or w == 0:
        return np.empty((0, TILE, TILE, 3))
    grid = rgb[:h, :w, :3].astype(np.float64).reshape(h // TILE, TILE, w // TILE, TILE, 3).transpose(0, 2, 1, 3, 4)
    tiles = grid.reshape(-1, TILE, TILE, 3)
    keep = np.isfinite(tiles).all(axis=(1, 2, 3))
    if valid is not None:
        inside = valid[:h, :w].reshape(h // TILE, TILE, w // TILE, TILE).transpose(0, 2, 1, 3).reshape(-1, TILE * TILE)
        keep &= inside.all(axis=1)
    return tiles[keep]


def _unclipped(tiles: np.ndarray) -> np.ndarray:
    """(N,) True where no channel of the tile has a run of repeated extreme values (clipping, flat CG)."""
    flat = tiles.reshape(tiles.shape[0], -1, 3)
    top = flat.max(axis=1, keepdims=True)
    bottom = flat.min(axis=1, keepdims=True)
    at_extreme = ((flat == top) | (flat == bottom)).mean(axis=1)
    # Strong grain on dark levels dips below 0 in scene-linear: that is grain, not clipping, so it stays.
    return (at_extreme < 0.05).all(axis=1)


@dataclass
class _TileStats:
    mean: np.ndarray  # (N, 3) level
    rings: np.ndarray  # (N, 3, RADIAL_BINS) residual variance per ring of frequency
    residual: np.ndarray  # (N, T*T, 3)


def _ring_index(h: int, w: int) -> np.ndarray:
    """(h, w) ring number of each FFT bin's radial frequency (cycles per pixel, 0..0.5, corners in the last)."""
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    return np.minimum((radius / 0.5 * RADIAL_BINS).astype(int), RADIAL_BINS - 1)


_RINGS = _ring_index(TILE, TILE).ravel()
_RING_SHARE = np.bincount(_RINGS, minlength=RADIAL_BINS) / TILE**2  # a white field's variance share per ring


def _tile_stats(tiles: np.ndarray) -> _TileStats:
    flat = tiles.reshape(tiles.shape[0], TILE * TILE, 3)
    columns = flat.transpose(1, 0, 2).reshape(TILE * TILE, -1)  # (T², N·3)
    fitted = _DESIGN @ (_PINV @ columns)
    residual = (columns - fitted).reshape(TILE * TILE, -1, 3).transpose(1, 0, 2)
    windowed = residual.transpose(0, 2, 1).reshape(-1, TILE, TILE) * _HANN
    # Parseval: a white field of variance v puts v · sum(w²) · T² of |F|² into the spectrum, spread evenly.
    power = (np.abs(np.fft.fft2(windowed)) ** 2).reshape(-1, TILE * TILE) / (TILE**2 * np.sum(_HANN**2))
    rings = np.stack([np.bincount(_RINGS, row, RADIAL_BINS) for row in power])
    return _TileStats(flat.mean(axis=1), rings.reshape(tiles.shape[0], 3, RADIAL_BINS), residual)


def _intensity_bins(mean: np.ndarray) -> np.ndarray:
    """Bin edges at quantiles of the tiles' levels (log-spaced data gets even coverage)."""
    edges = np.quantile(mean, np.linspace(0.0, 1.0, INTENSITY_BINS + 1))
    return np.unique(edges)


def _low_percentile(rings: np.ndarray) -> np.ndarray:
    """(RADIAL_BINS,) the quiet tiles' variance per ring: grain is in every tile, texture and edges only in some,
    so per ring the low percentile of the tiles is grain (minimum statistics)."""
    return np.percentile(rings, QUIET_PERCENTILE, axis=0)


def _calibration() -> np.ndarray:
    """Per ring, what :func:`_low_percentile` over detrended, windowed tiles reads from unit white noise, as a share
    of the truth: dividing by it undoes the percentile's, the surface fit's and the window's bias."""
    rng = np.random.Generator(np.random.PCG64(20261201))
    noise = rng.standard_normal((CALIBRATION_TILES, TILE, TILE, 3))
    read = _low_percentile(_tile_stats(noise).rings[:, 0, :])
    return np.maximum(read / _RING_SHARE, _EPS)


QUIET_PERCENTILE = 20.0
CALIBRATION_TILES = 400
_BIAS = _calibration()
# Below 1/8 cycle per pixel picture content (soft backgrounds, shading a quadratic does not follow) outweighs
# grain even in the quietest tiles of real footage, so those rings are not read but carried over from the first
# readable one: grain clumps larger than 8 px are not told apart from the picture.
FIRST_RING = 3


def _grain_rings(rings: np.ndarray) -> np.ndarray:
    """(RADIAL_BINS,) bias-corrected grain variance per ring, the unreadable lowest rings copied from the first
    readable one."""
    corrected = _low_percentile(rings) / _BIAS
    corrected[:FIRST_RING] = corrected[FIRST_RING] / _RING_SHARE[FIRST_RING] * _RING_SHARE[:FIRST_RING]
    return corrected


def measure_grain(plates: list[np.ndarray], *, valid: list[np.ndarray] | None = None) -> GrainProfile:
    """Measure the grain of one or more frames of a plate.

    ``plates``: float32 (H, W, 3+) scene-linear RGB frames (extra channels ignored); ``valid``: optional (H, W)
    bool per frame (the data window, or where alpha > 0). Returns the empty profile when the flat areas hold no
    measurable grain (see :data:`EMPTY_RELATIVE`) or there are too few usable tiles.
    """
    if not plates:
        raise GrainError("measure_grain needs at least one frame")
    tiles = np.concatenate([
        _tiles(_check_rgb(p, "a plate frame"), None if valid is None else np.asarray(valid[i], bool))
        for i, p in enumerate(plates)
    ])
    tiles = tiles[_unclipped(tiles)] if tiles.size else tiles
    if tiles.shape[0] < MIN_TILES * 2:
        return EMPTY
    stats = _tile_stats(tiles)
    channels = [_channel_grain(stats, c) for c in range(3)]
    if any(c is None for c in channels):
        return EMPTY
    quiet = np.argsort(stats.rings.sum(axis=(1, 2)))[: max(MIN_TILES, tiles.shape[0] // 5)]
    correlation = np.corrcoef(stats.residual[quiet].transpose(2, 0, 1).reshape(3, -1))
    measured = {"frames": len(plates), "tiles": int(tiles.shape[0]), "tile": TILE,
                "quiet_percentile": QUIET_PERCENTILE}
    profile = GrainProfile(tuple(channels), tuple(tuple(_rounded(row)) for row in correlation), measured)
    return _unblurred(profile)


def _spectrum_read_back(profile: GrainProfile) -> list[np.ndarray]:
    """Per channel, the spectrum :func:`measure_grain` reads from grain synthesised with ``profile``."""
    field_ = synthesize_grain(profile, 8 * TILE, 8 * TILE, seed=0, frame=0).astype(np.float64)
    stats = _tile_stats(_tiles(field_, None))
    rings = [_grain_rings(stats.rings[:, c, :]) for c in range(3)]
    return [r / max(r.sum(), _EPS) / _RING_SHARE for r in rings]


def _unblurred(profile: GrainProfile) -> GrainProfile:
    """The profile with each spectrum corrected for what the tile window smears between neighbouring rings: the
    grain synthesised from the corrected spectrum reads back, through the same estimator, as the plate read
    (one fixed-point step: corrected = measured² / read back)."""
    channels = []
    for channel, back in zip(profile.channels, _spectrum_read_back(profile), strict=True):
        measured = np.asarray(channel.spectrum)
        corrected = measured * measured / np.maximum(back, _EPS)
        corrected = corrected / max(float(np.sum(corrected * _RING_SHARE)), _EPS)
        channels.append(ChannelGrain(channel.intensity, channel.amplitude, _rounded(corrected)))
    return GrainProfile(tuple(channels), profile.correlation, profile.measured | {"spectrum": "unblurred"})


def _channel_grain(stats: _TileStats, c: int) -> ChannelGrain | None:
    """One channel's curve and spectrum, or None when it holds no measurable grain."""
    mean = stats.mean[:, c]
    edges = _intensity_bins(mean)
    levels, variances, shapes = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        idx = np.flatnonzero((mean >= lo) & (mean <= hi))
        if idx.size < MIN_TILES:
            continue
        rings = _grain_rings(stats.rings[idx, c, :])
        levels.append(float(np.median(mean[idx])))
        variances.append(float(rings.sum()))
        shapes.append(rings / max(rings.sum(), _EPS))
    if not levels:
        return None
    intensity, amplitude = np.array(levels), np.sqrt(np.array(variances))
    if np.all(amplitude <= EMPTY_RELATIVE * np.abs(intensity)):
        return None
    order = np.argsort(intensity)
    intensity, amplitude = _strictly_increasing(intensity[order], amplitude[order])
    # power per frequency (not per ring), normalised so the whole spectrum averages 1 over the Fourier plane
    spectrum = np.mean(shapes, axis=0) / _RING_SHARE
    return ChannelGrain(_rounded(intensity), _rounded(amplitude), _rounded(spectrum))


def measure_plate(
    pattern: str, first: int, last: int, *, colourspace: str | None = None, working_space: str | None = None,
    config_name: str | None = None, frames_used: int = 4,
) -> GrainProfile:
    """:func:`measure_grain` over up to ``frames_used`` frames spread over ``first..last`` of a plate's EXR sequence
    (``####``), its R, G, B read into ``working_space`` (from ``colourspace``) through OpenColorIO."""
    from generation.engine import frames
    from generation.engine.sequence import frame_path

    picks = sorted({int(round(v)) for v in np.linspace(first, last, min(frames_used, last - first + 1))})
    plates = [frames.read_channels(frame_path(pattern, f), ("R", "G", "B"), colourspace=colourspace,
                                   working_space=working_space, config_name=config_name) for f in picks]
    return measure_grain(plates)


def _strictly_increasing(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.concatenate([[True], np.diff(x) > 0])
    return x[keep], y[keep]


def _rounded(values) -> tuple[float, ...]:
    return tuple(float(f"{v:.6g}") for v in np.asarray(values, np.float64))


# --------------------------------------------------------------------------------------- synthesising


def grain_seed(seed: int, frame: int) -> np.random.Generator:
    """The generator for one element's grain on one frame: the same (seed, frame) always draws the same grain,
    and every frame draws new grain."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & (2**63 - 1), int(frame) & 0xFFFFFFFF])))


def synthesize_grain(profile: GrainProfile, height: int, width: int, *, seed: int, frame: int) -> np.ndarray:
    """Unit-deviation grain float32 (height, width, 3) with the profile's spectrum and channel correlation.

    White Gaussian noise is filtered in the Fourier domain by the square root of the measured power spectrum
    (interpolated over the rings), then the channels are mixed by the Cholesky factor of the correlation.
    Zeros for the empty profile.
    """
    if profile.is_empty:
        return np.zeros((height, width, 3), np.float32)
    rng = grain_seed(seed, frame)
    white = rng.standard_normal((3, height, width))
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    radius = np.minimum(np.sqrt(fx**2 + fy**2), 0.5)
    centres = (np.arange(RADIAL_BINS) + 0.5) * 0.5 / RADIAL_BINS
    out = np.empty((3, height, width))
    for c, channel in enumerate(profile.channels):
        gain = np.sqrt(np.interp(radius, centres, np.asarray(channel.spectrum, np.float64)))
        field_ = np.fft.ifft2(np.fft.fft2(white[c]) * gain).real
        out[c] = field_ / max(np.sqrt(np.mean(gain**2)), _EPS)
    mix = _cholesky(np.asarray(profile.correlation, np.float64))
    return np.einsum("ij,jhw->hwi", mix, out).astype(np.float32)


def _cholesky(correlation: np.ndarray) -> np.ndarray:
    # A measured correlation can be a hair off positive definite; nudge the diagonal until it factors.
    for jitter in (0.0, 1e-6, 1e-4, 1e-2):
        try:
            return np.linalg.cholesky(correlation + jitter * np.eye(3))
        except np.linalg.LinAlgError:
            continue
    return np.eye(3)


def apply_grain(
    element: np.ndarray, profile: GrainProfile, *, seed: int, frame: int, alpha: np.ndarray | None = None
) -> np.ndarray:
    """Regrain an element: float32 (H, W, 3 or 4) scene-linear, premultiplied when it has alpha.

    Grain scaled by the profile's amplitude at the element's (unpremultiplied) level, times alpha, is added to
    RGB. Pixels whose alpha is 0 (``alpha`` given, else channel 3, else everywhere is element) are returned bit
    for bit; alpha itself is never changed. The same (seed, frame) gives the same bytes.
    """
    element = _check_rgb(element, "an element")
    out = np.array(element, np.float32, copy=True)
    if profile.is_empty:
        return out
    a = np.asarray(alpha, np.float32) if alpha is not None else (
        out[..., 3] if out.shape[2] > 3 else np.ones(out.shape[:2], np.float32))
    if a.shape != out.shape[:2]:
        raise GrainError(f"alpha is {a.shape}; the element is {out.shape[:2]}")
    grain = synthesize_grain(profile, out.shape[0], out.shape[1], seed=seed, frame=frame)
    inside = a > 0
    level = out[..., :3] / np.where(inside, a, 1.0)[..., None]
    for c, channel in enumerate(profile.channels):
        added = out[..., c] + a * channel.amplitude_at(level[..., c]) * grain[..., c]
        out[..., c] = np.where(inside, added, out[..., c])
    return out


# ------------------------------------------------------------------------------------------ degraining


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window (edges replicated), for (H, W) float64."""
    padded = np.pad(values, radius + 1, mode="edge")
    c = padded.cumsum(0).cumsum(1)
    k = 2 * radius + 1
    window = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return window[: values.shape[0], : values.shape[1]] / (k * k)


def degrain(rgb: np.ndarray, profile: GrainProfile, *, radius: int = 2, passes: int = 1) -> np.ndarray:
    """Remove the profile's grain from float32 (H, W, 3+) scene-linear RGB (extra channels pass through).

    A local Wiener (Lee) filter per channel: each pixel moves toward its (2r+1)² neighbourhood mean by the share of
    the local variance the profile says is grain, so flat areas are smoothed and edges and texture, whose
    variance exceeds the grain's, are kept. The empty profile returns an unchanged copy.
    """
    rgb = _check_rgb(rgb, "a plate frame")
    out = np.array(rgb, np.float32, copy=True)
    if profile.is_empty:
        return out
    for c, channel in enumerate(profile.channels):
        x = out[..., c].astype(np.float64)
        for _ in range(passes):
            mean = _box_mean(x, radius)
            var = np.maximum(_box_mean(x * x, radius) - mean * mean, 0.0)
            noise = channel.amplitude_at(mean).astype(np.float64) ** 2
            x = mean + np.maximum(var - noise, 0.0) / np.maximum(var, _EPS) * (x - mean)
        out[..., c] = x.astype(np.float32)
    return out
