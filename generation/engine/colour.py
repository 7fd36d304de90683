"""Colour management through PyOpenColorIO, always with an explicitly named config.

OIIO bundles its own OCIO build whose results differ, so no colour goes through OIIO.
Pixels are float32 (H, W, 3) or (H, W, 4); alpha is never transformed.
"""

from __future__ import annotations

import functools
import os
import re

import numpy as np
import PyOpenColorIO as ocio

from generation.engine.frames import resize

# Pinned, not ``*-latest``: OpenImageIO's bundled OCIO 2.5 and PyOpenColorIO 2.6 mean different configs by
# ``latest`` (ACES 2.0 and 2.1). This one loads in both and in every DCC on OCIO >= 2.3 (VFX Platform CY2024).
DEFAULT_CONFIG = "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3"
_ALIASES = re.compile(r"^ocio://(default|[a-z]+-config-latest)$")
LUT_SIZE = 65
# The proxy LUT is indexed by the ACEScct curve applied to the input values; its domain
# covers linear -0.0069 (ACEScct 0) to ~222 (ACEScct 1.0), i.e. about +10 stops over 18% grey.
_CCT_DOMAIN = (0.0, 1.0)


class ColourError(ValueError):
    """A bad config, colour space, display or view; one-line message."""


def resolve_config_name(explicit: str | None = None) -> str:
    """The config to use: ``explicit``, else ``$OCIO``, else :data:`DEFAULT_CONFIG`."""
    return explicit or os.environ.get("OCIO") or DEFAULT_CONFIG


@functools.lru_cache(maxsize=8)
def _load(name: str) -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(name)
    except Exception as error:  # ocio.Exception and OSError
        message = " ".join(str(error).split())
        raise ColourError(f"cannot load OCIO config {name!r}: {message}") from None


def load_config(name: str | None = None) -> ocio.Config:
    """The (cached) OCIO config named ``name`` (see :func:`resolve_config_name`)."""
    return _load(resolve_config_name(name))


def pinned_config_name(name: str | None = None) -> str:
    """The versioned name to store for config ``name`` (see :func:`resolve_config_name`).

    A built-in alias (``ocio://default``, ``ocio://studio-config-latest``) becomes the versioned built-in
    it means in this OCIO build, so a library update cannot change a show's colour; a config file
    becomes its absolute path. Raises ColourError when the config cannot be loaded.
    """
    name = resolve_config_name(name)
    config = _load(name)
    if _ALIASES.match(name):
        return f"ocio://{config.getName()}"
    if name.startswith("ocio://"):
        return name
    return os.path.abspath(name)


def is_pinned(name: str) -> bool:
    """True unless ``name`` is a built-in alias whose meaning changes with the OCIO build."""
    return bool(name) and not _ALIASES.match(name)


def colourspace_names(config_name: str | None = None) -> list[str]:
    """Every colour space of the config, in config order."""
    return list(load_config(config_name).getColorSpaceNames())


def checked_colourspace(name: str, config_name: str | None = None) -> str:
    """The config's own name for colour space (or alias) ``name``; ColourError listing the valid ones."""
    config = load_config(config_name)
    _check_colourspace(config, name)
    return config.getColorSpace(name).getName()


def displays_and_views(config_name: str | None = None) -> dict[str, list[str]]:
    """``{display: [view, ...]}`` of the config, in config order."""
    config = load_config(config_name)
    return {display: list(config.getViews(display)) for display in config.getDisplays()}


def default_display_view(config_name: str | None = None) -> tuple[str, str]:
    """The config's default display and its default view."""
    config = load_config(config_name)
    display = config.getDefaultDisplay()
    return display, config.getDefaultView(display)


def _check_colourspace(config: ocio.Config, name: str) -> None:
    if config.getColorSpace(name) is None:
        valid = ", ".join(config.getColorSpaceNames())
        raise ColourError(f"unknown colour space {name!r}; valid: {valid}")


def _check_display_view(config: ocio.Config, display: str, view: str) -> None:
    displays = list(config.getDisplays())
    if display not in displays:
        raise ColourError(f"unknown display {display!r}; valid: {', '.join(displays)}")
    views = list(config.getViews(display))
    if view not in views:
        raise ColourError(f"unknown view {view!r} for {display!r}; valid: {', '.join(views)}")


@functools.lru_cache(maxsize=64)
def _cpu(config_name: str, src: str, dst: str | None, display: str | None, view: str | None):
    """A cached CPU processor: src->dst, or src through display/view when dst is None."""
    config = _load(config_name)
    _check_colourspace(config, src)
    if dst is not None:
        _check_colourspace(config, dst)
        processor = config.getProcessor(src, dst)
    else:
        assert display is not None and view is not None
        _check_display_view(config, display, view)
        transform = ocio.DisplayViewTransform(src=src, display=display, view=view)
        processor = config.getProcessor(transform, ocio.TRANSFORM_DIR_FORWARD)
    return processor.getDefaultCPUProcessor()


def _apply(cpu: ocio.CPUProcessor, rgb: np.ndarray) -> np.ndarray:
    """Apply ``cpu`` to a copy of float32 (..., 3) ``rgb``."""
    out = np.ascontiguousarray(rgb, np.float32).copy()
    if out.size:
        cpu.applyRGB(out.reshape(-1))
    return out


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"pixels must be (H, W, 3|4), got {pixels.shape}")
    return pixels.astype(np.float32, copy=False)


def convert(pixels: np.ndarray, src: str, dst: str, *, config_name: str | None = None) -> np.ndarray:
    """Convert float32 (H, W, 3|4) from colour space ``src`` to ``dst``; alpha copied bit-exact."""
    pixels = _check_pixels(pixels)
    out = pixels.copy()
    out[..., :3] = _apply(_cpu(resolve_config_name(config_name), src, dst, None, None), pixels[..., :3])
    return out


def _resolve_display_view(display: str | None, view: str | None, config_name: str) -> tuple[str, str]:
    default_display, default_view = default_display_view(config_name)
    display = display or default_display
    return display, view or (default_view if display == default_display else _load(config_name).getDefaultView(display))


def display_view(
    pixels: np.ndarray, *, src: str, display: str, view: str, config_name: str | None = None
) -> np.ndarray:
    """Exact OCIO display/view transform: scene (H, W, 3|4) in ``src`` -> display float32 (H, W, 3)."""
    pixels = _check_pixels(pixels)
    cpu = _cpu(resolve_config_name(config_name), src, None, display, view)
    return _apply(cpu, pixels[..., :3])


def _cct_encode(linear: np.ndarray) -> np.ndarray:
    """The ACEScct curve (per channel, any values), used as the proxy LUT's shaper."""
    x = np.asarray(linear, np.float32)
    log = (np.log2(np.maximum(x, np.float32(2**-16))) + np.float32(9.72)) / np.float32(17.52)
    lin = np.float32(10.5402377416545) * x + np.float32(0.0729055341958355)
    return np.where(x <= np.float32(0.0078125), lin, log).astype(np.float32)


def _cct_decode(cct: np.ndarray) -> np.ndarray:
    y = np.asarray(cct, np.float64)
    lin = (y - 0.0729055341958355) / 10.5402377416545
    log = np.exp2(y * 17.52 - 9.72)
    return np.where(y <= 0.155251141552511, lin, log).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _baked_lut(config_name: str, src: str, display: str, view: str) -> ocio.CPUProcessor:
    """The exact display/view sampled once on a LUT_SIZE^3 ACEScct-shaped grid.

    Returned as an OCIO CPU processor applying the baked 3D LUT with tetrahedral
    interpolation (C++; ~7x faster than the same interpolation in numpy, same results).
    """
    axis = np.linspace(*_CCT_DOMAIN, LUT_SIZE, dtype=np.float64)
    r, g, b = np.meshgrid(axis, axis, axis, indexing="ij")  # blue varies fastest, as OCIO wants
    grid = _cct_decode(np.stack([r, g, b], axis=-1))
    samples = _apply(_cpu(config_name, src, None, display, view), grid)
    lut = ocio.Lut3DTransform(gridSize=LUT_SIZE)
    lut.setData(np.ascontiguousarray(samples.reshape(-1)))
    lut.setInterpolation(ocio.INTERP_TETRAHEDRAL)
    return ocio.Config.CreateRaw().getProcessor(lut).getDefaultCPUProcessor()


def _to_uint8(display_rgb: np.ndarray) -> np.ndarray:
    return (np.clip(display_rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def proxy_size(height: int, width: int, proxy_width: int, pixel_aspect: float = 1.0) -> tuple[int, int]:
    """(h, w) of a proxy ``proxy_width`` wide keeping the picture's aspect ratio: an anamorphic plate
    (``pixel_aspect`` 2.0: each pixel twice as wide as tall) is desqueezed into square display pixels."""
    if not (np.isfinite(pixel_aspect) and pixel_aspect > 0):
        raise ValueError(f"pixel_aspect must be positive, got {pixel_aspect}")
    return max(1, round(height * proxy_width / (width * pixel_aspect))), proxy_width


def make_proxy(
    pixels: np.ndarray,
    *,
    width: int = 960,
    src: str = "ACEScg",
    display: str | None = None,
    view: str | None = None,
    config_name: str | None = None,
    exact: bool = False,
    pixel_aspect: float = 1.0,
) -> np.ndarray:
    """A uint8 (h, width, 3) display-referred proxy of scene-linear (H, W, 3|4) ``pixels``.

    ``h`` keeps the picture's aspect (desqueezed when ``pixel_aspect`` is not 1, see :func:`proxy_size`).
    Resizes first (area filter), then applies the display/view (config default when None)
    through a cached 65^3 LUT baked from the exact OCIO processor (within 1 code of it at
    p99.9; pixels outside the LUT's domain go through the exact processor), or, with ``exact``,
    the exact processor itself. Alpha is ignored.
    """
    small = proxy_resize(pixels, width=width, pixel_aspect=pixel_aspect)
    return encode_proxy(small, src=src, display=display, view=view, config_name=config_name, exact=exact)


def proxy_resize(pixels: np.ndarray, *, width: int = 960, pixel_aspect: float = 1.0) -> np.ndarray:
    """:func:`make_proxy`'s first half: (H, W, 3|4) ``pixels`` resized to the proxy (float32 (h, width, 3))."""
    pixels = _check_pixels(pixels)
    h, w = proxy_size(pixels.shape[0], pixels.shape[1], width, pixel_aspect)
    return resize(pixels[..., :3], w, h)


def encode_proxy(
    small: np.ndarray,
    *,
    src: str = "ACEScg",
    display: str | None = None,
    view: str | None = None,
    config_name: str | None = None,
    exact: bool = False,
) -> np.ndarray:
    """:func:`make_proxy`'s second half: scene-linear (..., 3) ``small`` through the display/view to uint8. Each
    pixel's code depends on that pixel alone (so a part of an image encodes as that part of the whole)."""
    name = resolve_config_name(config_name)
    display, view = _resolve_display_view(display, view, name)
    small = np.asarray(small, np.float32)
    if exact:
        flat = display_view(small.reshape(-1, 1, 3), src=src, display=display, view=view, config_name=name)
        return _to_uint8(flat).reshape(small.shape)
    shaped = _cct_encode(small)
    out = _apply(_baked_lut(name, src, display, view), np.clip(shaped, *_CCT_DOMAIN))
    # Beyond the LUT's domain (a sun at 1e4, a strongly negative pixel) the view can still change
    # (ACES 1.0 desaturates towards white far above 222): those few pixels get the exact processor.
    beyond = (shaped < _CCT_DOMAIN[0]) | (shaped > _CCT_DOMAIN[1])
    outside = beyond[..., 0] | beyond[..., 1] | beyond[..., 2]  # any channel (numpy's any over 3 is slow)
    if outside.any():
        out[outside] = _apply(_cpu(name, src, None, display, view), small[outside])
    return _to_uint8(out)


# CIE xy of red, green, blue and white: what an OpenEXR ``chromaticities`` attribute holds.
PRIMARIES = {
    "AP0": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767),
    "AP1": (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767),
    "Rec.709": (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329),
    "P3-D65": (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329),
    "Rec.2020": (0.708, 0.292, 0.17, 0.797, 0.131, 0.046, 0.3127, 0.329),
}
# The ACES configs' scene spaces by their gamut; OCIO does not say which primaries a space has
# (only how to reach the reference), and a white point cannot be recovered from that.
GAMUTS = {
    "ACES2065-1": "AP0",
    "ACEScg": "AP1",
    "ACEScct": "AP1",
    "ACEScc": "AP1",
    "Linear Rec.709 (sRGB)": "Rec.709",
    "Linear P3-D65": "P3-D65",
    "Linear Rec.2020": "Rec.2020",
}


def chromaticities(space: str, config_name: str | None = None) -> tuple[float, ...] | None:
    """The 8 floats of an EXR ``chromaticities`` attribute for colour space ``space`` (name or alias):
    AP1 for ACEScg; None for a space whose gamut is not in :data:`GAMUTS`."""
    gamut = GAMUTS.get(checked_colourspace(space, config_name))
    return PRIMARIES[gamut] if gamut else None


def to_working(
    rgb: np.ndarray, colourspace: str, working_space: str, *, config_name: str | None = None
) -> np.ndarray:
    """float32 (..., 3) ``rgb`` from the plate's ``colourspace`` into ``working_space`` (a copy)."""
    name = resolve_config_name(config_name)
    return _apply(_cpu(name, colourspace, working_space, None, None), np.asarray(rgb, np.float32))
