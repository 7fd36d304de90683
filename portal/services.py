"""Changes to the catalogue."""

from django.db import transaction

from generation.engine import colour
from generation.engine.frames import FrameError, scan_sequence
from portal.errors import PortalError
from portal.models import Plate, Sequence, Shot, Show
from portal.paths import checked_code, checked_plate_pattern


def plate_ingest(*, show: Show, sequence_code: str, shot_code: str, pattern: str, first: int | None = None,
                 last: int | None = None, name: str = "main", colourspace: str = "ACEScg",
                 matte_pattern: str = "", allow_missing: bool = False) -> Plate:
    """Register an EXR sequence after reading every frame's header (and pixels) through OpenImageIO.

    Nothing is written unless every present frame reads cleanly; missing frames refuse the plate unless
    `allow_missing`, and are then recorded on it. Paths are stored absolute and normalised inside the
    plate roots; codes must be slugs; the colour space must be one of the show's OCIO config.
    """
    pattern, colourspace = _checked_plate_inputs(show, sequence_code, shot_code, name, pattern, colourspace)
    matte_pattern = checked_plate_pattern(matte_pattern) if matte_pattern else ""
    try:
        scan = scan_sequence(pattern, first, last, verify_pixels=True)
    except FrameError as exc:
        raise PortalError(str(exc), code="bad_plate") from exc
    except ValueError as exc:
        raise PortalError(str(exc), code="bad_pattern") from exc
    if scan.missing and not allow_missing:
        raise PortalError(f"{pattern}: frames missing: {_ranges(scan.missing)} (use --allow-missing to register "
                          "the plate with the gaps recorded)", code="missing_frames")
    if matte_pattern:
        try:
            matte = scan_sequence(matte_pattern, scan.first, scan.last, verify_pixels=True)
        except (FrameError, ValueError) as exc:
            raise PortalError(f"matte: {exc}", code="bad_matte") from exc
        if matte.display_window != scan.display_window:
            raise PortalError("the matte's display window differs from the plate's", code="bad_matte")
    with transaction.atomic():
        sequence, _ = Sequence.objects.get_or_create(show=show, code=sequence_code)
        shot, _ = Shot.objects.get_or_create(sequence=sequence, code=shot_code, defaults={
            "first_frame": scan.first, "last_frame": scan.last})
        if Plate.objects.filter(shot=shot, name=name).exists():
            raise PortalError(f"shot {shot_code} already has a plate named {name!r}", code="duplicate")
        return Plate.objects.create(
            shot=shot, name=name, path_pattern=pattern, first_frame=scan.first, last_frame=scan.last,
            display_window=scan.display_window.as_dict(), data_window=scan.data_window.as_dict(),
            channels=list(scan.channels), colourspace=colourspace, missing_frames=scan.missing,
            matte_pattern=matte_pattern, pixel_aspect=scan.pixel_aspect)


def _checked_plate_inputs(show: Show, sequence_code: str, shot_code: str, name: str, pattern: str,
                          colourspace: str) -> tuple[str, str]:
    """The plate's stored pattern and colour space (the config's own name), after checking every input."""
    checked_code("sequence", sequence_code, 32)
    checked_code("shot", shot_code, 64)
    checked_code("plate name", name, 64)
    try:
        colourspace = colour.checked_colourspace(colourspace, show.ocio_config)
    except colour.ColourError as exc:
        raise PortalError(f"plate colour space: {exc} (in {show.ocio_config})", code="colourspace") from exc
    return checked_plate_pattern(pattern), colourspace


def _ranges(frames: list[int]) -> str:
    spans, start = [], None
    for i, f in enumerate(frames):
        if start is None:
            start = f
        if i + 1 == len(frames) or frames[i + 1] != f + 1:
            spans.append(f"{start}" if start == f else f"{start}-{f}")
            start = None
    return ", ".join(spans)
