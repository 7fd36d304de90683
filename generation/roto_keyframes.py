"""Key frames drawn in the browser for a roto, the passes asked from them, and who drew what.

A compositor draws on a frame of the shot's plate (frame numbers are the plate's): polygons with a feather,
brush and erase strokes, a box around an object or a few clicks on it (OpenCV's GrabCut turns those into a
matte from the plate's own colours). The server rasterises the shapes, in order, into a key-frame matte: a
half EXR with one channel ``A`` and the plate's display and data windows, written through OpenImageIO on the
show's storage (``WORK_ROOT/<show>/<shot>/roto/<set>/``), and records who drew it and when
(:class:`RotoKeyFrame`; rows are never changed, a redrawn frame is a new row).

A pass is a roto request on the key frames of its moment, copied into the pass's own folder (so a later drawing
never changes what an earlier pass was made from). A correction pass keeps every frame that does not depend on
a changed key frame, and every frame the artist locked, from the pass before (``params = {"previous_pattern",
"locked"}``, the engine's correction contract): only the frames between a changed key frame's neighbouring key
frames are computed again. A frame fixed by a correction is locked until the artist unlocks it; unlocking a
fixed frame takes its key frame out, so the next pass computes it from its neighbours.

Who drew each key frame goes into the released EXR header (:func:`release_provenance`), checked against the
file the pass used (its sha256), so a key-frame file changed behind the portal's back is not credited.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from generation import services
from generation.engine import colour, frames
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RotoKeyFrame, RotoPass, RotoSet, VariationStatus
from portal.access import require_role
from portal.colour import show_colour
from portal.errors import Conflict, NotFound, PortalError
from portal.models import CAN_REQUEST, Plate, Shot

TOOLS = ("polygon", "brush", "erase", "box", "clicks")
MAX_SHAPES = 200
MAX_POINTS = 20_000  # per shape: a long brush stroke at one point per pixel
MAX_FEATHER = 200.0
MAX_RADIUS = 500.0
KEY_NAME = "key.####.exr"
SEED = 7  # every pass of a set is seeded alike: the same key frames give the same mattes
_SHIFT = 4  # OpenCV's fixed point: shapes are rasterised to 1/16 pixel, anti-aliased
_GRABCUT_SIDE = 480  # GrabCut works on the object's neighbourhood at this size at most (2K plates stay fast)
_GRABCUT_ITERATIONS = 5


def _folder(roto_set: RotoSet) -> Path:
    shot = roto_set.shot
    return Path(settings.WORK_ROOT) / shot.show.code / shot.code / "roto" / roto_set.name


def _plate(shot: Shot) -> Plate:
    plate = shot.plates.order_by("pk").first()
    if plate is None:
        raise PortalError(f"shot {shot.code} has no plate to draw on", code="no_plate")
    return plate


def check_frame(plate: Plate, frame: int) -> None:
    if not plate.first_frame <= frame <= plate.last_frame:
        raise PortalError(f"frame {frame} is outside the plate's frames {plate.first_frame}-{plate.last_frame}",
                          code="frame")
    if frame in (plate.missing_frames or []):
        raise PortalError(f"frame {frame} is missing from the plate", code="frame")


# ---------------------------------------------------------------------------------------------------- shapes


def _number(value, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PortalError(f"{what} must be a number, got {str(value)[:20]!r}", code="shapes")
    if not low <= value <= high:
        raise PortalError(f"{what} must be from {low:g} to {high:g}, got {value:g}", code="shapes")
    return float(value)


def _points(shape: dict, size: tuple[int, int], least: int, index: int) -> np.ndarray:
    h, w = size
    points = shape.get("points")
    if not isinstance(points, list) or not least <= len(points) <= MAX_POINTS:
        raise PortalError(f"shape {index + 1} ({shape.get('tool')}) needs {least} to {MAX_POINTS} points [x, y]",
                          code="shapes")
    out = np.empty((len(points), 2), np.float64)
    for k, point in enumerate(points):
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise PortalError(f"shape {index + 1}: a point is [x, y], got {str(point)[:30]}", code="shapes")
        out[k, 0] = _number(point[0], f"shape {index + 1}'s x", -w, 2 * w)
        out[k, 1] = _number(point[1], f"shape {index + 1}'s y", -h, 2 * h)
    return out


_SUPERSAMPLE = 4  # shapes are filled on a 4x finer grid and box-averaged down: exact coverage at the edges


def _fixed(points: np.ndarray) -> np.ndarray:
    """Points on the fine grid in OpenCV's fixed point (1/16 of a fine pixel)."""
    return np.round(points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _coverage(points: np.ndarray, pad: float, size: tuple[int, int],
              fill: Callable[[np.ndarray, np.ndarray, int], None]) -> np.ndarray:
    """(H, W) float32: the fraction of each pixel ``fill`` covers. Display-window pixels have their centres
    at integers (x right, y down); only the shape's bounding box (grown by ``pad``) is rasterised, on a grid
    ``_SUPERSAMPLE`` times finer, then box-averaged back."""
    h, w = size
    out = np.zeros(size, np.float32)
    x0 = max(0, math.floor(points[:, 0].min() - pad) - 1)
    y0 = max(0, math.floor(points[:, 1].min() - pad) - 1)
    x1 = min(w, math.ceil(points[:, 0].max() + pad) + 2)
    y1 = min(h, math.ceil(points[:, 1].max() + pad) + 2)
    if x1 <= x0 or y1 <= y0:
        return out
    s = _SUPERSAMPLE
    fine = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    fill(fine, (points - [x0, y0] + 0.5) * s - 0.5, s)
    out[y0:y1, x0:x1] = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return out


def _polygon(points: np.ndarray, feather: float, size: tuple[int, int]) -> np.ndarray:
    def fill(fine, pts, s):
        cv2.fillPoly(fine, [_fixed(pts)], 255, lineType=cv2.LINE_8, shift=_SHIFT)

    matte = _coverage(points, 0, size, fill)
    if feather > 0:  # Nuke's Roto feather: a soft falloff centred on the shape's edge, `feather` pixels wide
        matte = cv2.GaussianBlur(matte, (0, 0), feather / 2.5)
    return matte


def _stroke(points: np.ndarray, radius: float, size: tuple[int, int]) -> np.ndarray:
    def fill(fine, pts, s):
        fixed = _fixed(pts)
        if len(pts) == 1:
            cv2.circle(fine, tuple(int(v) for v in fixed[0, 0]), int(round(radius * s * (1 << _SHIFT))), 255, -1,
                       lineType=cv2.LINE_8, shift=_SHIFT)
        else:  # thick OpenCV lines have round caps and joins: a brush dab at every point
            cv2.polylines(fine, [fixed], False, 255, max(1, round(2 * radius * s)), lineType=cv2.LINE_8,
                          shift=_SHIFT)

    return _coverage(points, radius + 1, size, fill)


def _grabcut(image: np.ndarray, *, box: tuple[float, float, float, float] | None = None,
             clicks: np.ndarray | None = None) -> np.ndarray:
    """A matte of the object in ``box`` or under ``clicks`` from the plate's colours (GrabCut), (H, W) 0..1.

    Done on the object's neighbourhood scaled to at most ``_GRABCUT_SIDE`` pixels; the result is scaled back
    bilinearly, which leaves a soft one-pixel edge. Deterministic (OpenCV's RNG seeded)."""
    h, w = image.shape[:2]
    if box is not None:
        x0, y0, bw, bh = box
        x1, y1 = x0 + bw, y0 + bh
    else:
        (x0, y0), (x1, y1) = clicks.min(axis=0), clicks.max(axis=0)
        reach = max(x1 - x0, y1 - y0, 0.2 * min(w, h))  # a few clicks span part of the object: look around
        x0, y0, x1, y1 = x0 - reach, y0 - reach, x1 + reach, y1 + reach
    margin = 0.15 * max(x1 - x0, y1 - y0) + 4  # background around the object for GrabCut's colour model
    cx0, cy0 = max(0, int(x0 - margin)), max(0, int(y0 - margin))
    cx1, cy1 = min(w, int(math.ceil(x1 + margin))), min(h, int(math.ceil(y1 + margin)))
    if cx1 - cx0 < 8 or cy1 - cy0 < 8:
        raise PortalError("the box is too small or outside the plate", code="shapes")
    scale = min(1.0, _GRABCUT_SIDE / max(cx1 - cx0, cy1 - cy0))
    sw, sh = max(8, round((cx1 - cx0) * scale)), max(8, round((cy1 - cy0) * scale))
    crop = cv2.resize(image[cy0:cy1, cx0:cx1], (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = sw / (cx1 - cx0), sh / (cy1 - cy0)

    def local(x, y):
        return int(np.clip(round((x - cx0) * fx), 0, sw - 1)), int(np.clip(round((y - cy0) * fy), 0, sh - 1))

    mask = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    (lx0, ly0), (lx1, ly1) = local(x0, y0), local(x1, y1)
    if box is not None:
        mask[ly0:ly1 + 1, lx0:lx1 + 1] = cv2.GC_PR_FGD
    else:
        mask[ly0:ly1 + 1, lx0:lx1 + 1] = cv2.GC_PR_BGD  # the object's colours are learned from the clicks
        for x, y in clicks:
            cv2.circle(mask, local(x, y), max(2, round(0.015 * max(sw, sh))), cv2.GC_FGD, -1)
    if not ((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)).any():
        mask[0, :] = mask[-1, :] = cv2.GC_BGD  # a box over the whole plate: GrabCut needs some background
    cv2.setRNGSeed(0)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(crop, mask, None, bgd, fgd, _GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    found = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if clicks is not None:  # the parts the clicks are on, not look-alikes elsewhere in the neighbourhood
        _, parts = cv2.connectedComponents(found)
        clicked = {int(parts[local(x, y)[1], local(x, y)[0]]) for x, y in clicks} - {0}
        found = np.isin(parts, list(clicked)).astype(np.uint8)
    found = found.astype(np.float32)
    matte = np.zeros((h, w), np.float32)
    matte[cy0:cy1, cx0:cx1] = cv2.resize(found, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_LINEAR)
    return matte


def rasterise(shapes: list, *, size: tuple[int, int], plate_image: Callable[[], np.ndarray]) -> np.ndarray:
    """The key-frame matte (H, W) float32 0..1 of ``shapes`` applied in order over the display window: polygon,
    brush, box and clicks add, erase takes away. ``plate_image()`` is the frame as display-referred uint8
    (H, W, 3), read only when a box or clicks need it. Bad shapes are refused with the shape's number."""
    if not isinstance(shapes, list) or not 1 <= len(shapes) <= MAX_SHAPES:
        raise PortalError(f"draw 1 to {MAX_SHAPES} shapes", code="shapes")
    matte = np.zeros(size, np.float32)
    image = None
    for index, shape in enumerate(shapes):
        tool = shape.get("tool") if isinstance(shape, dict) else None
        if tool not in TOOLS:
            raise PortalError(f"shape {index + 1}: the tool is one of {', '.join(TOOLS)}, got {str(tool)[:20]!r}",
                              code="shapes")
        if tool == "polygon":
            feather = _number(shape.get("feather", 0), f"shape {index + 1}'s feather", 0, MAX_FEATHER)
            np.maximum(matte, _polygon(_points(shape, size, 3, index), feather, size), out=matte)
        elif tool in ("brush", "erase"):
            radius = _number(shape.get("radius", 8), f"shape {index + 1}'s radius", 0.5, MAX_RADIUS)
            stroke = _stroke(_points(shape, size, 1, index), radius, size)
            if tool == "brush":
                np.maximum(matte, stroke, out=matte)
            else:
                matte *= 1 - stroke
        elif tool == "box":
            box = shape.get("box")
            if not isinstance(box, list) or len(box) != 4:
                raise PortalError(f"shape {index + 1}: a box is [x, y, width, height]", code="shapes")
            x, y = (_number(v, f"shape {index + 1}'s box", -size[1], 2 * size[1]) for v in box[:2])
            bw, bh = (_number(v, f"shape {index + 1}'s box size", 1, 2 * max(size)) for v in box[2:])
            image = plate_image() if image is None else image
            np.maximum(matte, _grabcut(image, box=(x, y, bw, bh)), out=matte)
        else:
            clicks = _points(shape, size, 1, index)[:50]
            image = plate_image() if image is None else image
            np.maximum(matte, _grabcut(image, clicks=clicks), out=matte)
    return np.clip(matte, 0.0, 1.0)


def plate_display_image(plate: Plate, frame: int) -> np.ndarray:
    """The plate frame through the show's display/view as uint8 (H, W, 3) on the plate's own pixel grid."""
    show = show_colour(plate.shot.show)
    pixels = frames.read_channels(frame_path(plate.path_pattern, frame), ("R", "G", "B"),
                                  colourspace=plate.colourspace, working_space=show.working_space,
                                  config_name=show.config)
    return colour.make_proxy(pixels, width=pixels.shape[1], src=show.working_space, display=show.display,
                             view=show.view, config_name=show.config)


# -------------------------------------------------------------------------------------------------- services


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@transaction.atomic
def roto_set_create(*, user: User, shot: Shot) -> RotoSet:
    """A new roto of the shot (``r01``, ``r02``, …), to draw key frames on."""
    require_role(user, shot.show.pk, CAN_REQUEST, "draw roto")
    _plate(shot)
    taken = set(RotoSet.objects.filter(shot=shot).values_list("name", flat=True))
    number = next(n for n in range(1, len(taken) + 2) if f"r{n:02d}" not in taken)
    return RotoSet.objects.create(shot=shot, name=f"r{number:02d}", created_by=user)


def current_keys(roto_set: RotoSet) -> dict[int, RotoKeyFrame]:
    """{frame: its newest key-frame row} of the frames that are key frames now (not removed)."""
    newest: dict[int, RotoKeyFrame] = {}
    for row in roto_set.keyframes.select_related("drawn_by").order_by("frame", "pk"):
        newest[row.frame] = row
    return {f: row for f, row in newest.items() if not row.removed}


def keyframe_draw(*, user: User, roto_set: RotoSet, frame: int, shapes: list) -> RotoKeyFrame:
    """Rasterise ``shapes`` drawn on ``frame`` into the set's key frame there and record who drew it. A frame
    drawn once a pass exists is a correction: it is locked (fixed) until the artist unlocks it."""
    shot = roto_set.shot
    require_role(user, shot.show.pk, CAN_REQUEST, "draw roto")
    plate = _plate(shot)
    check_frame(plate, frame)
    display, data = Window(**plate.display_window), Window(**plate.data_window)
    matte = rasterise(shapes, size=(display.height, display.width),
                      plate_image=lambda: plate_display_image(plate, frame))
    inside = np.zeros_like(matte)
    dx, dy = data.x - display.x, data.y - display.y
    inside[dy:dy + data.height, dx:dx + data.width] = matte[dy:dy + data.height, dx:dx + data.width]
    if inside.max() < 0.5:
        raise PortalError(f"the key frame at {frame} is empty: nothing drawn inside the plate reaches 0.5 "
                          "(draw a shape, or a box around the object)", code="empty")
    folder = _folder(roto_set) / "drawn"
    folder.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        row = RotoKeyFrame.objects.create(roto_set=roto_set, frame=frame, shapes=shapes, drawn_by=user)
        path = folder / f"key.{frame:04d}.r{row.pk}.exr"
        frames.write_exr(path, inside.astype(np.float16), display_window=display, data_window=data,
                         channel_names=("A",), attributes={
                             "parallel_track:roto_drawn_by": user.username,
                             "parallel_track:roto_drawn_at": row.drawn_at.isoformat(),
                             "parallel_track:roto_set": roto_set.name})
        RotoKeyFrame.objects.filter(pk=row.pk).update(path=str(path), sha256=_sha256(path))
        if roto_set.passes.exists():
            current = RotoSet.objects.select_for_update().get(pk=roto_set.pk)  # as the database has it now
            _set_locked(current, set(current.locked) | {frame})
            roto_set.locked = current.locked
    row.refresh_from_db()
    return row


def _set_locked(roto_set: RotoSet, locked: set[int]) -> None:
    roto_set.locked = sorted(locked)
    RotoSet.objects.filter(pk=roto_set.pk).update(locked=roto_set.locked)


@transaction.atomic
def frame_lock(*, user: User, roto_set: RotoSet, frame: int, locked: bool) -> None:
    """Lock a frame (later passes keep its matte) or unlock it; unlocking a fixed frame takes its key frame
    out, so the next pass computes it from its neighbouring key frames."""
    require_role(user, roto_set.shot.show.pk, CAN_REQUEST, "lock roto frames")
    check_frame(_plate(roto_set.shot), frame)
    roto_set = RotoSet.objects.select_for_update().get(pk=roto_set.pk)
    keys = current_keys(roto_set)
    if locked:
        if not roto_set.passes.exists():
            raise PortalError("nothing to lock yet: ask for a pass first", code="frame")
        _set_locked(roto_set, set(roto_set.locked) | {frame})
        return
    if frame in keys:
        if len(keys) == 1:
            raise PortalError(f"frame {frame} is the only key frame: draw another before unlocking it", code="frame")
        RotoKeyFrame.objects.create(roto_set=roto_set, frame=frame, drawn_by=user, removed=True)
    _set_locked(roto_set, set(roto_set.locked) - {frame})


def _between(keys: list[int], k: int, first: int, last: int) -> range:
    """The frames that depend on key frame ``k``: from just after the key before it to just before the key
    after it (the shot's ends where there is none), ``k`` itself included. ``keys`` sorted, without ``k``."""
    at = bisect.bisect_left(keys, k)
    start = keys[at - 1] + 1 if at > 0 else first
    stop = keys[at] if at < len(keys) else last + 1
    return range(start, stop)


def pass_frames(*, keys: set[int], previous_keys: dict[int, int], current: dict[int, int], unlocked: set[int],
                first: int, last: int) -> set[int]:
    """The frames a correction pass computes afresh: those between the neighbouring key frames of every key
    frame added, redrawn or removed since the pass before, and the frames unlocked since."""
    changed = {f for f in set(previous_keys) | set(current) if previous_keys.get(f) != current.get(f)}
    others = sorted(keys)
    fresh: set[int] = set(unlocked)
    for k in changed:
        fresh.update(_between([f for f in others if f != k], k, first, last))
    return {f for f in fresh if first <= f <= last}


@transaction.atomic
def pass_request(*, user: User, roto_set: RotoSet, first_frame: int | None = None,
                 last_frame: int | None = None) -> GenerationRequest:
    """Ask for the next pass of the roto from its key frames now. The first pass covers ``first..last`` (the
    plate's frames by default); a later pass covers the same frames, keeps from the pass before every frame
    that does not depend on a changed key frame and every locked frame, and iterates from it."""
    shot = roto_set.shot
    require_role(user, shot.show.pk, CAN_REQUEST, "ask for roto")
    roto_set = RotoSet.objects.select_for_update().get(pk=roto_set.pk)
    keys = current_keys(roto_set)
    if not keys:
        raise PortalError("draw a key frame first", code="keyframes")
    previous = roto_set.passes.select_related("request").order_by("-number").first()
    params: dict = {}
    derived_from = None
    current = {f: row.pk for f, row in keys.items()}
    recomputed: list[int] = []
    if previous is None:
        plate = _plate(shot)
        first = plate.first_frame if first_frame is None else first_frame
        last = plate.last_frame if last_frame is None else last_frame
        recomputed = list(range(first, last + 1))
    else:
        first, last = previous.request.first_frame, previous.request.last_frame
        derived_from = previous.request.variations.first()
        if derived_from is None or derived_from.status != VariationStatus.DONE:
            raise Conflict(f"pass {previous.number} has not finished: wait for it before asking for the next",
                           code="pass_running")
        before = {int(f): pk for f, pk in previous.keyframes.items()}
        unlocked = set(previous.request.params.get("roto", {}).get("locked", [])) - set(roto_set.locked) - set(keys)
        fresh = pass_frames(keys=set(keys), previous_keys=before, current=current, unlocked=unlocked,
                            first=first, last=last)
        fresh -= set(roto_set.locked) - set(keys)
        if not fresh - set(keys) and before == current:
            raise PortalError(f"nothing changed since pass {previous.number}: draw a correction on a frame, or "
                              "unlock one", code="keyframes")
        kept = [f for f in range(first, last + 1) if f not in fresh and f not in keys]
        params = {"previous_pattern": derived_from.exr_pattern, "locked": kept}
        recomputed = sorted(fresh - set(keys))
    outside = sorted(f for f in keys if not first <= f <= last)
    if outside:
        raise PortalError(f"key frames {outside} are outside frames {first}-{last}", code="keyframes")
    number = (previous.number + 1) if previous else 1
    pattern = _snapshot(roto_set, number, keys)
    params["roto"] = {"set": roto_set.name, "pass": number, "locked": sorted(roto_set.locked)}
    request = services.request_create(
        user=user, shot=shot, model=None, first_frame=first, last_frame=last, count=1, task="roto",
        matte_pattern=pattern, params=params, base_seed=SEED, derived_from=derived_from)
    RotoPass.objects.create(roto_set=roto_set, request=request, number=number,
                            keyframes={str(f): pk for f, pk in current.items()},
                            locked=params.get("locked", []), recomputed=recomputed)
    return request


def _snapshot(roto_set: RotoSet, number: int, keys: dict[int, RotoKeyFrame]) -> str:
    """The pass's own copy of the key frames, as the engine reads them: ``pass-NN/key.####.exr``."""
    folder = _folder(roto_set) / f"pass-{number:02d}"
    if folder.exists():  # left by a pass whose request was never made (its transaction rolled back)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    pattern = str(folder / KEY_NAME)
    for f, row in keys.items():
        shutil.copyfile(row.path, frame_path(pattern, f))
    return pattern


def roto_set_for_request(request: GenerationRequest) -> RotoPass | None:
    return RotoPass.objects.select_related("roto_set").filter(request=request).first()


def release_provenance(request: GenerationRequest) -> dict[str, str]:
    """What a roto made from drawn key frames adds to the released EXR header: the set, the pass, and each key
    frame with who drew it and when (only key frames whose file is the one that person's drawing made)."""
    roto_pass = roto_set_for_request(request)
    if roto_pass is None:
        return {}
    rows = {row.pk: row for row in RotoKeyFrame.objects.select_related("drawn_by").filter(
        roto_set=roto_pass.roto_set, pk__in=list(roto_pass.keyframes.values()))}
    drawn = []
    for f, pk in sorted(roto_pass.keyframes.items(), key=lambda item: int(item[0])):
        row = rows.get(pk)
        path = frame_path(request.matte_pattern, int(f))
        if row is None or not Path(path).is_file() or _sha256(path) != row.sha256:
            continue
        drawn.append(f"{f} by {row.drawn_by.username} at {row.drawn_at.isoformat(timespec='seconds')}")
    return {"parallel_track:roto_set": roto_pass.roto_set.name, "parallel_track:roto_pass": str(roto_pass.number),
            "parallel_track:roto_keyframes_drawn": "; ".join(drawn),
            "parallel_track:roto_recomputed": _frame_ranges(roto_pass.recomputed)}


def _frame_ranges(numbers: list[int]) -> str:
    """1001-1004,1009 for [1001, 1002, 1003, 1004, 1009]."""
    out, run = [], []
    for n in sorted(numbers):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def roto_set_of(shot: Shot, name: str) -> RotoSet:
    """The shot's roto set of that name (the shot already read through ``shot_for_member``)."""
    found = RotoSet.objects.select_related("shot__sequence__show").filter(shot=shot, name=name).first()
    if found is None:
        raise NotFound("no such roto")
    return found
