"""The JPEGs a roto's pages show: the shot's plate frame to draw on, a drawn key frame's matte, and a roto
element's matte alone or its outline over the plate (the review room's toggles; the coloured overlay is the
engine's own in-context proxy).

A matte is data, not colour: its JPEG is the matte's value as grey, 0 black, 1 white, through no view
transform (as a compositor views alpha). Plates go through the show's display/view (OCIO), like every proxy.
Renders are cached in the show's work area and re-rendered when their sources are newer.
"""

from pathlib import Path

import cv2
import numpy as np
from django.conf import settings

from generation import proxies
from generation.engine import colour, frames
from generation.engine.sequence import ELEMENT_NAME, frame_path
from generation.models import RotoKeyFrame, Variation
from portal.colour import show_colour
from portal.errors import NotFound, PortalError
from portal.models import Plate
from portal.paths import show_roots

KINDS = ("matte", "outline")  # besides the proxies' own (incontext, element)
OUTLINE_RGB = (255, 214, 10)  # a yellow line reads over skin, sky and foliage
_MISSING = "that proxy is not written yet"


def _matte_jpeg(target: Path, matte: np.ndarray, width: int, pixel_aspect: float) -> Path:
    h, w = colour.proxy_size(matte.shape[0], matte.shape[1], width, pixel_aspect)
    small = cv2.resize(matte.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    grey = np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    frames.write_jpeg(target, np.repeat(grey[..., None], 3, axis=2))
    return target


def _plate_proxy(plate: Plate, frame: int, show) -> np.ndarray:
    pixels = frames.read_channels(frame_path(plate.path_pattern, frame), ("R", "G", "B"),
                                  colourspace=plate.colourspace, working_space=show.working_space,
                                  config_name=show.config)
    return colour.make_proxy(pixels, width=proxies.PROXY_WIDTH, src=show.working_space, display=show.display,
                             view=show.view, config_name=show.config, pixel_aspect=plate.pixel_aspect)


def outline(plate_rgb8: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """The matte's 0.5 contour drawn over a plate proxy (uint8 (h, w, 3)); the matte at any size."""
    h, w = plate_rgb8.shape[:2]
    small = cv2.resize(matte.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    contours, _ = cv2.findContours((small >= 0.5).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    out = np.ascontiguousarray(plate_rgb8.copy())
    cv2.drawContours(out, contours, -1, OUTLINE_RGB, max(1, round(w / 480)), lineType=cv2.LINE_AA)
    return out


def shot_plate(plate: Plate, frame: int) -> Path:
    """The plate at ``frame`` through the show's display/view, to draw key frames on."""
    shot = plate.shot
    code = shot.show.code
    roots = show_roots(code)
    source = proxies.readable(Path(frame_path(plate.path_pattern, frame)), roots, f"plate frame {frame} is missing")
    show = show_colour(shot.show)
    folder = proxies.inside_work_root(Path(settings.WORK_ROOT) / code / shot.code / "roto" / "plate-proxy", code)
    target = proxies.cache_target(folder / f"{plate.name}.{frame:04d}.jpg", roots, _MISSING)
    if proxies.fresh(target, [source]):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    frames.write_jpeg(target, _plate_proxy(plate, frame, show))
    return target


def key_matte(row: RotoKeyFrame, plate: Plate) -> Path:
    """A drawn key frame's matte as grey, at proxy width."""
    code = plate.shot.show.code
    roots = show_roots(code)
    source = proxies.readable(Path(row.path), roots, "that key frame has no matte") if row.path else None
    if source is None:
        raise NotFound("that key frame has no matte")
    target = proxies.cache_target(source.parent / "proxy" / f"{source.stem}.jpg", roots, _MISSING)
    if proxies.fresh(target, [source]):
        return target
    return _matte_jpeg(target, frames.read_matte(source), proxies.PROXY_WIDTH, plate.pixel_aspect)


def variation_matte(variation: Variation, frame: int, kind: str) -> Path:
    """A matte element's ``matte`` (alone, grey) or ``outline`` (its edge over the plate) at ``frame``."""
    if kind not in KINDS:
        raise PortalError(f"unknown proxy kind {kind!r}; known: {', '.join(KINDS)}", code="kind")
    request = variation.request
    proxies.check_frame(request, frame)
    if not variation.work_dir:
        raise NotFound(_MISSING)
    code = request.show.code
    roots = show_roots(code)
    proxy_dir = proxies.inside_work_root(Path(variation.work_dir) / "proxy", code)
    element = proxies.readable(proxy_dir.parent / "exr" / Path(frame_path(ELEMENT_NAME, frame)).name, roots, _MISSING)
    target = proxies.cache_target(proxy_dir / "roto" / f"{kind}.{frame:04d}.jpg", roots, _MISSING)
    plate = request.plate
    if kind == "matte":
        if proxies.fresh(target, [element]):
            return target
        return _matte_jpeg(target, frames.read_matte(element), proxies.PROXY_WIDTH, plate.pixel_aspect)
    plate_path = proxies.plate_frame_path(request, frame, roots)
    if proxies.fresh(target, [element, plate_path]):
        return target
    drawn = outline(_plate_proxy(plate, frame, show_colour(request.show)), frames.read_matte(element))
    target.parent.mkdir(parents=True, exist_ok=True)
    frames.write_jpeg(target, drawn)
    return target
