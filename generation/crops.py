"""The review's 1:1 crop: a square of a variation's frame at full resolution, the plate beside the element over the
plate, to judge grain and sharpness (a proxy shrinks both away). JPEGs through the show's display/view, cached
beside the variation's proxies like the other renders of :mod:`proxies`."""

from pathlib import Path

import numpy as np

from generation import proxies
from generation.engine import colour, frames
from generation.engine.sequence import ELEMENT_NAME, frame_path
from generation.models import Variation
from portal.colour import show_colour
from portal.errors import NotFound, PortalError
from portal.paths import show_roots

SIZES = (128, 256, 512)
WHICH = ("plate", "incontext")


def crop_box(variation: Variation, x: int | None, y: int | None, size: int) -> tuple[int, int]:
    """The crop's top-left, inside the plate: (x, y) as given, else centred on the element's window."""
    if size not in SIZES:
        raise PortalError(f"a crop is {', '.join(map(str, SIZES))} pixels square, not {size}", code="size")
    plate = variation.request.plate
    window = variation.element_window or {"x": 0, "y": 0, "width": plate.width, "height": plate.height}
    if x is None or y is None:
        x = window["x"] + window["width"] // 2 - size // 2
        y = window["y"] + window["height"] // 2 - size // 2
    return (min(max(x, 0), max(plate.width - size, 0)), min(max(y, 0), max(plate.height - size, 0)))


def crop_jpeg(variation: Variation, frame: int, which: str, x: int, y: int, size: int) -> Path:
    """The cached JPEG of one side of the crop: ``plate`` or ``incontext`` (the element over the plate)."""
    if which not in WHICH:
        raise PortalError(f"a crop shows {' or '.join(WHICH)}, not {which!r}", code="which")
    request = variation.request
    proxies.check_frame(request, frame)
    if not variation.work_dir:
        raise NotFound("that variation has no frames yet")
    code = request.show.code
    roots = show_roots(code)
    folder = proxies.inside_work_root(Path(variation.output_dir) / "proxy" / "crop", code)
    missing = "that frame is not written yet"
    element_path = proxies.readable(folder.parent.parent / "exr" / Path(frame_path(ELEMENT_NAME, frame)).name,
                                     roots, missing)
    plate_path = proxies.plate_frame_path(request, frame, roots)
    target = proxies.cache_target(folder / f"{which}.{frame:04d}.{x}.{y}.{size}.jpg", roots, missing)
    if proxies.fresh(target, [element_path, plate_path]):
        return target
    show = show_colour(request.show)
    rows, cols = slice(y, y + size), slice(x, x + size)
    pixels = proxies.plate_rgb(request, plate_path, show)[rows, cols]
    if which == "incontext":
        element = frames.read_rgba(element_path)[0][rows, cols]
        pixels = element[..., :3] + pixels * (1.0 - element[..., 3:])  # premultiplied over
    jpeg = colour.make_proxy(np.ascontiguousarray(pixels), width=pixels.shape[1], src=show.working_space,
                             display=show.display, view=show.view, config_name=show.config)
    target.parent.mkdir(parents=True, exist_ok=True)
    frames.write_jpeg(target, jpeg)
    return target
