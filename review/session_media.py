"""Colour-critical looks at a variation or a plate: exposure (stops) and gamma applied to the scene-linear pixels
before the display transform, and the element's alpha (its matte) as a grey image.

Done on the server, from the EXRs, through the same proxy path as every proxy (``colour.make_proxy``), and
cached beside the review room's renders: a 960-px float frame sent to the browser for a client-side pass would be
~3 MB (960×540 RGB half) against ~150 kB of 4:4:4 JPEG per look, and the browser has no OCIO to apply the view after it. The
alpha is data, not colour: it is written as it is (0..1 → 0..255), no view applied. Only the sRGB display's
views are offered (the proxies are 8-bit sRGB), see ``sessions.browser_display_views``.
"""

from pathlib import Path

import numpy as np
from django.http import HttpRequest, HttpResponse

from generation import proxies
from generation.engine import colour, frames
from generation.engine.sequence import ELEMENT_NAME, frame_path
from generation.models import GenerationRequest, Variation
from generation.selectors import request_for_member, variation_for_member
from generation.views import _proxy_response
from portal.colour import show_colour
from portal.errors import NotFound, PortalError
from portal.pages import page
from portal.paths import show_roots
from review import sessions

KINDS = ("incontext", "element", "alpha")


def _look(query) -> tuple[float, float]:
    """Exposure in stops and gamma, on a 0.1 grid (a bounded cache), inside the session's ranges."""
    try:
        exposure = float(query.get("exposure", "0") or 0)
        gamma = float(query.get("gamma", "1") or 1)
    except ValueError:
        raise PortalError("exposure and gamma are numbers", code="look") from None
    if not (sessions.EXPOSURE_RANGE[0] <= exposure <= sessions.EXPOSURE_RANGE[1]
            and sessions.GAMMA_RANGE[0] <= gamma <= sessions.GAMMA_RANGE[1]):
        raise PortalError(f"exposure is {sessions.EXPOSURE_RANGE} stops, gamma {sessions.GAMMA_RANGE}", code="look")
    return round(exposure, 1), round(gamma, 1)


def graded(linear: np.ndarray, exposure: float, gamma: float) -> np.ndarray:
    """Scene-linear RGB times 2^stops, then the gamma (a power of 1/gamma on the positive part), before the view."""
    out = linear * np.float32(2.0 ** exposure)
    if gamma != 1.0:
        out = np.sign(out) * np.power(np.abs(out), np.float32(1.0 / gamma))
    return out.astype(np.float32)


def _write(target: Path, rgb8: np.ndarray) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    frames.write_jpeg(target, rgb8)
    return target


def alpha_image(alpha: np.ndarray, pixel_aspect: float) -> np.ndarray:
    """The matte as an 8-bit grey image at proxy size (same size as every proxy, so it lines up in context)."""
    h, w = colour.proxy_size(alpha.shape[0], alpha.shape[1], proxies.PROXY_WIDTH, pixel_aspect)
    small = frames.resize(alpha[..., None], w, h)[..., 0]
    grey = np.round(np.clip(small, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def variation_look(variation: Variation, frame: int, *, kind: str, exposure: float, gamma: float,
                   display: str = "", view: str = "") -> Path:
    if kind not in KINDS:
        raise PortalError(f"unknown look kind {kind!r}; known: {', '.join(KINDS)}", code="kind")
    request = variation.request
    proxies.check_frame(request, frame)
    show = show_colour(request.show)
    dv = proxies.checked_display_view(show, display, view) if display or view else proxies.DisplayView(
        show.display, show.view)
    missing = "that frame is not written yet"
    if not variation.work_dir:
        raise NotFound(missing)
    roots = show_roots(request.show.code)
    folder = proxies.inside_work_root(Path(variation.work_dir) / "proxy", request.show.code)
    element_path = proxies.readable(folder.parent / "exr" / Path(frame_path(ELEMENT_NAME, frame)).name, roots,
                                    missing)
    name = f"alpha.{frame:04d}.jpg" if kind == "alpha" else f"{kind}.e{exposure:+.1f}.g{gamma:.1f}.{frame:04d}.jpg"
    target = proxies.cache_target(folder / "look" / ("" if kind == "alpha" else dv.slug) / name, roots, missing)
    sources = [element_path] if kind != "incontext" else [element_path, proxies.plate_frame_path(request, frame, roots)]
    if proxies.fresh(target, sources):
        return target
    element, _ = frames.read_rgba(element_path)
    if kind == "alpha":
        return _write(target, alpha_image(element[..., 3], request.plate.pixel_aspect))
    rgb = element[..., :3]
    if kind == "incontext":
        rgb = rgb + proxies.plate_rgb(request, sources[1], show) * (1.0 - element[..., 3:])
    return _write(target, _display(graded(rgb, exposure, gamma), show, dv, request.plate.pixel_aspect))


def _display(linear: np.ndarray, show, dv: proxies.DisplayView, pixel_aspect: float) -> np.ndarray:
    return colour.make_proxy(linear, width=proxies.PROXY_WIDTH, src=show.working_space, display=dv.display,
                             view=dv.view, config_name=show.config, pixel_aspect=pixel_aspect)


def plate_look(request: GenerationRequest, frame: int, *, exposure: float, gamma: float, display: str = "",
               view: str = "") -> Path:
    proxies.check_frame(request, frame)
    show = show_colour(request.show)
    dv = proxies.checked_display_view(show, display, view) if display or view else proxies.DisplayView(
        show.display, show.view)
    first = request.variations.exclude(work_dir="").values_list("work_dir", flat=True).first()
    if not first:
        raise NotFound("the request has no work folder")
    roots = show_roots(request.show.code)
    folder = proxies.inside_work_root(Path(first).parent / "plate-look" / dv.slug, request.show.code)
    plate_path = proxies.plate_frame_path(request, frame, roots)
    target = proxies.cache_target(folder / f"plate.e{exposure:+.1f}.g{gamma:.1f}.{frame:04d}.jpg", roots,
                                  "the plate look is not written yet")
    if proxies.fresh(target, [plate_path]):
        return target
    rgb = graded(proxies.plate_rgb(request, plate_path, show), exposure, gamma)
    return _write(target, _display(rgb, show, dv, request.plate.pixel_aspect))


@page
def variation_look_image(request: HttpRequest, variation_id: int, frame: int) -> HttpResponse:
    """?kind=incontext|element|alpha&exposure=<stops>&gamma=&display=&view="""
    variation = variation_for_member(request.user, variation_id)
    exposure, gamma = _look(request.GET)
    return _proxy_response(variation_look(variation, frame, kind=request.GET.get("kind", "incontext"),
                                          exposure=exposure, gamma=gamma, display=request.GET.get("display", ""),
                                          view=request.GET.get("view", "")))


@page
def plate_look_image(request: HttpRequest, request_id: int, frame: int) -> HttpResponse:
    gen_request = request_for_member(request.user, request_id)
    exposure, gamma = _look(request.GET)
    return _proxy_response(plate_look(gen_request, frame, exposure=exposure, gamma=gamma,
                                      display=request.GET.get("display", ""), view=request.GET.get("view", "")))
