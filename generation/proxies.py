"""Review proxies rendered on demand in any display/view of the show's OCIO config.

The engine writes one in-context proxy per frame in the show's display/view while it generates. A viewer
who switches to another display/view (or asks for the element alone, or the plate) gets a JPEG rendered
here from the EXRs: the element over the plate frame, through the same proxy path as the engine
(``colour.make_proxy``). Renders are cached beside the engine's proxies, under
``<work_dir>/proxy/<display>--<view>/``; a display/view string only reaches the file system after it was
found in the config's own list, and then only as a slug. The plate is read into the show's working space
from its own colour space (through the show's pinned config), and an anamorphic plate's proxies are
desqueezed (its PixelAspectRatio), like the engine's.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from generation.engine import colour, frames
from generation.engine.sequence import ELEMENT_NAME, PROXY_NAME, frame_path
from generation.models import GenerationRequest, Variation
from portal.colour import ShowColour, show_colour
from portal.errors import NotFound, PortalError
from portal.paths import resolved_inside, show_roots

KINDS = ("incontext", "element", "plate")
PROXY_WIDTH = 960  # the engine's default, so every kind lines up in a wipe


@dataclass(frozen=True)
class DisplayView:
    display: str
    view: str

    @property
    def slug(self) -> str:
        return f"{_slug(self.display)}--{_slug(self.view)}"

    def as_dict(self) -> dict:
        return {"display": self.display, "view": self.view, "slug": self.slug}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def display_views(colour_settings: ShowColour) -> list[DisplayView]:
    """Every display/view pair of the show's config, in config order."""
    pairs = colour.displays_and_views(colour_settings.config)
    return [DisplayView(display, view) for display, views in pairs.items() for view in views]


def checked_display_view(colour_settings: ShowColour, display: str, view: str) -> DisplayView:
    """The pair as the config names it; anything else is refused (it never forms a path)."""
    wanted = DisplayView(display, view)
    if wanted not in display_views(colour_settings):
        raise PortalError(f"{display!r} / {view!r} is not a display/view of the show's OCIO config",
                          code="display_view")
    return wanted


def inside_work_root(folder: Path, show_code: str) -> Path:
    """The folder, resolved, if it lies in the show's own subtree of the work root."""
    folder = folder.resolve()
    if (Path(settings.WORK_ROOT) / show_code).resolve() not in folder.parents:
        raise NotFound("no proxies for this variation")
    return folder


def readable(path: Path, roots: list[Path], missing: str) -> Path:
    """``path`` with every symlink followed (the file too) if it is a file inside the show's roots; a file that is
    missing and one that leads outside get the same ``NotFound``."""
    real = resolved_inside(path, roots)
    if real is None or not real.is_file():
        raise NotFound(missing)
    return real


def cache_target(target: Path, roots: list[Path], missing: str) -> Path:
    """Where a rendered proxy is cached: a file already there must resolve inside the roots (a symlink planted
    there is neither served nor written through)."""
    if os.path.lexists(target):
        return readable(target, roots, missing)
    if os.path.lexists(target.parent) and resolved_inside(target.parent, roots) is None:
        raise NotFound(missing)
    return target


def check_frame(request: GenerationRequest, frame: int) -> None:
    if not request.first_frame <= frame <= request.last_frame:
        raise NotFound(f"frame {frame} is outside the request's range {request.first_frame}-{request.last_frame}")


def fresh(target: Path, sources: list[Path]) -> bool:
    if not target.is_file():
        return False
    made = target.stat().st_mtime
    return all(source.stat().st_mtime <= made for source in sources)


def _shrink(pixels: np.ndarray, width: int) -> np.ndarray:
    """A box average by a whole factor (2K/4K to the proxy width), several times faster than a general resize;
    other sizes are left to ``make_proxy``."""
    h, w, c = pixels.shape
    k = w // width
    if k < 2 or w != k * width or h % k:
        return pixels
    return pixels.reshape(h // k, k, width, k, c).mean(axis=(1, 3), dtype=np.float32)


def _render(target: Path, pixels: np.ndarray, colour_settings: ShowColour, dv: DisplayView,
            pixel_aspect: float) -> Path:
    proxy = colour.make_proxy(_shrink(pixels, PROXY_WIDTH), width=PROXY_WIDTH, src=colour_settings.working_space,
                              display=dv.display, view=dv.view, config_name=colour_settings.config,
                              pixel_aspect=pixel_aspect)
    target.parent.mkdir(parents=True, exist_ok=True)
    frames.write_jpeg(target, proxy)
    return target


def plate_frame_path(request: GenerationRequest, frame: int, roots: list[Path]) -> Path:
    return readable(Path(frame_path(request.plate.path_pattern, frame)), roots, f"plate frame {frame} is missing")


def plate_rgb(request: GenerationRequest, path: Path, colour_settings: ShowColour) -> np.ndarray:
    """The plate frame's RGB in the working space, whatever colour space the plate was shot in."""
    return frames.read_channels(path, ("R", "G", "B"), colourspace=request.plate.colourspace,
                                working_space=colour_settings.working_space, config_name=colour_settings.config)


def variation_proxy(variation: Variation, frame: int, *, kind: str, display: str = "", view: str = "") -> Path:
    """The JPEG of ``variation`` at ``frame``: ``incontext`` (element over plate) or ``element`` (alone, over black).

    Without a display/view, or in the show's own, the in-context proxy is the engine's file.
    """
    if kind not in ("incontext", "element"):
        raise PortalError(f"unknown proxy kind {kind!r}; known: incontext, element", code="kind")
    request = variation.request
    check_frame(request, frame)
    show = show_colour(request.show)
    dv = checked_display_view(show, display, view) if display or view else DisplayView(show.display, show.view)
    missing = "that proxy is not written yet"
    if not variation.work_dir:
        raise NotFound(missing)
    code = request.show.code
    roots = show_roots(code)
    proxy_dir = inside_work_root(Path(variation.output_dir) / "proxy", code)  # a running attempt: its own
    engine_proxy = resolved_inside(proxy_dir / Path(frame_path(PROXY_NAME, frame)).name, roots)
    if kind == "incontext" and dv == DisplayView(show.display, show.view) and engine_proxy and engine_proxy.is_file():
        return engine_proxy
    element_path = readable(proxy_dir.parent / "exr" / Path(frame_path(ELEMENT_NAME, frame)).name, roots, missing)
    target = cache_target(proxy_dir / dv.slug / f"{kind}.{frame:04d}.jpg", roots, missing)
    if kind == "element":
        if fresh(target, [element_path]):
            return target
        element, _ = frames.read_rgba(element_path)
        return _render(target, element[..., :3], show, dv, request.plate.pixel_aspect)
    plate_path = plate_frame_path(request, frame, roots)
    if fresh(target, [element_path, plate_path]):
        return target
    element, _ = frames.read_rgba(element_path)
    comp = element[..., :3] + plate_rgb(request, plate_path, show) * (1.0 - element[..., 3:])  # premultiplied over
    return _render(target, comp, show, dv, request.plate.pixel_aspect)


def plate_proxy(request: GenerationRequest, frame: int, *, display: str = "", view: str = "") -> Path:
    """The JPEG of the request's plate at ``frame``, cached in the request's work folder."""
    check_frame(request, frame)
    show = show_colour(request.show)
    dv = checked_display_view(show, display, view) if display or view else DisplayView(show.display, show.view)
    first = request.variations.exclude(work_dir="").values_list("work_dir", flat=True).first()
    if not first:
        raise NotFound("the request has no work folder")
    code = request.show.code
    roots = show_roots(code)
    folder = inside_work_root(Path(first).parent / "plate-proxy" / dv.slug, code)
    plate_path = plate_frame_path(request, frame, roots)
    target = cache_target(folder / f"plate.{frame:04d}.jpg", roots, "the plate proxy is not written yet")
    if fresh(target, [plate_path]):
        return target
    return _render(target, plate_rgb(request, plate_path, show), show, dv, request.plate.pixel_aspect)
