"""Real footage as a camera would deliver it: Sintel's sRGB PNGs written as EXR plates in a camera colour space,
optionally squeezed 2:1 (anamorphic) and with a SMPTE timecode, for the colour, proxy and release tests.

The pixels are Sintel's own (© Blender Foundation, CC BY 3.0, "Sintel, Blender Foundation, durian.blender.org"),
read through OpenImageIO and converted through PyOpenColorIO with the engine's pinned config.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import PyOpenColorIO as ocio

from generation.engine import colour
from tests.realdata import testdata

FIRST = 1001
SRGB = "sRGB - Texture"  # what Sintel's PNGs hold, by its name in the pinned config
TIMECODE_1H = 0x01000000  # 01:00:00:00, SMPTE BCD as OpenEXR stores it


def sintel_rgb(index: int) -> np.ndarray:
    """Sintel frame ``index`` (0..9) as float32 (436, 1024, 3), sRGB-encoded, as the PNG holds it."""
    path = testdata("sintel-demo") / f"frame_{16 + index:04d}.png"
    buf = oiio.ImageBuf(str(path))
    pixels = buf.get_pixels(oiio.FLOAT)
    assert pixels is not None, buf.geterror()
    return np.ascontiguousarray(np.asarray(pixels, np.float32)[..., :3])


def ocio_convert(rgb: np.ndarray, src: str, dst: str) -> np.ndarray:
    """OCIO's own conversion (a processor of the pinned config, not the engine's code path)."""
    config = ocio.Config.CreateFromFile(colour.DEFAULT_CONFIG)
    out = np.ascontiguousarray(rgb, np.float32).copy()
    config.getProcessor(src, dst).getDefaultCPUProcessor().applyRGB(out.reshape(-1))
    return out


def squeeze(rgb: np.ndarray, factor: float) -> np.ndarray:
    """A horizontal anamorphic squeeze by ``factor`` (box filter), as a 2:1 lens records the picture."""
    h, w, _ = rgb.shape
    buf = oiio.ImageBuf(oiio.ImageSpec(w, h, 3, "float"))
    buf.set_pixels(oiio.ROI(0, w, 0, h, 0, 1, 0, 3), np.ascontiguousarray(rgb))
    out = oiio.ImageBufAlgo.resize(buf, "box", 0.0, oiio.ROI(0, round(w / factor), 0, h, 0, 1, 0, 3))
    return np.asarray(out.get_pixels(oiio.FLOAT), np.float32).reshape(h, round(w / factor), 3)


def write_plate(folder: Path, *, frames: int = 2, colourspace: str = SRGB, pixel_aspect: float = 1.0,
                timecode_on_first: int | None = None) -> str:
    """Sintel frames 0.. as half RGBA EXRs ``<folder>/plate.####.exr`` from frame 1001, encoded in ``colourspace``,
    squeezed by ``pixel_aspect`` (and declaring it), the first frame carrying ``timecode_on_first``; the pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = folder / "plate.####.exr"
    for k in range(frames):
        rgb = sintel_rgb(k)
        if colourspace != SRGB:
            rgb = ocio_convert(rgb, SRGB, colourspace)
        if pixel_aspect != 1.0:
            rgb = squeeze(rgb, pixel_aspect)
        h, w, _ = rgb.shape
        spec = oiio.ImageSpec(w, h, 4, "half")
        spec.channelnames = ("R", "G", "B", "A")
        spec.attribute("compression", "zip")
        spec.attribute("PixelAspectRatio", float(pixel_aspect))
        if timecode_on_first is not None and k == 0:
            spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (timecode_on_first, 0))
        rgba = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], axis=2)
        path = str(pattern).replace("####", f"{FIRST + k:04d}")
        out = oiio.ImageOutput.create(path)
        assert out.open(path, spec) and out.write_image(rgba), out.geterror()
        out.close()
    return str(pattern)
