"""Paths that come from the outside world are checked against the shared-storage roots."""

import os
import re
from pathlib import Path

from django.conf import settings

from generation.engine.sequence import frame_path, glob_frames
from portal.errors import PortalError


def _roots_of(setting) -> list[Path]:
    """A storage root as configured and as resolved (they differ when the root itself is a symlink)."""
    return list(dict.fromkeys([Path(os.path.normpath(setting)), Path(setting).resolve()]))


def show_roots(show_code: str) -> list[Path]:
    """Where a request of the show may read files: the plate roots and the show's own subtrees of the work and
    publish roots (WORK_ROOT/<show>/…, PUBLISH_ROOT/<show>/…), all resolved."""
    code = checked_code("show", show_code)
    return plate_roots() + [(Path(settings.WORK_ROOT) / code).resolve(), (Path(settings.PUBLISH_ROOT) / code).resolve()]


def resolved_inside(path, roots: list[Path]) -> Path | None:
    """``path`` with every symlink followed (the file too), if it exists and lies in one of ``roots``; else None.

    Missing and outside answer the same, so a caller cannot tell them apart."""
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    return real if _root_of(real, roots) is not None else None


def shown(path) -> str:
    """A path as a message may name it: relative to the storage root it lies in (``plates:``, ``work:``,
    ``publish:``), never the server's own root paths; outside every root, its file name only."""
    lexical = Path(os.path.normpath(str(path)))
    named = [("plates", r) for setting in settings.PLATE_ROOTS for r in _roots_of(setting)]
    named += [("work", r) for r in _roots_of(settings.WORK_ROOT)] + [("publish", r) for r in _roots_of(settings.PUBLISH_ROOT)]
    for label, root in named:
        if lexical == root or root in lexical.parents:
            return f"{label}:{lexical.relative_to(root)}"
    return lexical.name


def shown_in(text: str) -> str:
    """A message (a worker's error, say) with every storage root in it replaced by its name (``work:…``), so what
    viewers read names paths relative to their root, never the server's own folders."""
    named = [("plates", r) for setting in settings.PLATE_ROOTS for r in _roots_of(setting)]
    named += [(label, r) for label, setting in (("work", settings.WORK_ROOT), ("publish", settings.PUBLISH_ROOT),
                                                ("models", settings.MODEL_ROOT)) for r in _roots_of(setting)]
    for label, root in sorted(named, key=lambda pair: -len(str(pair[1]))):  # the deepest root first
        text = re.sub(re.escape(str(root)) + r"(?:/|(?=[\s'\":,)]|$))", f"{label}:", text)
    return text


def checked_pattern(pattern: str, *, show_code: str, first_frame: int, last_frame: int,
                    key_frames: bool = False) -> str:
    """A request's matte: an absolute frame pattern whose frames ``first_frame``..``last_frame`` all exist (with
    ``key_frames``: at least one of them, the artist's key frames) and, with every symlink followed (folder and
    files), lie in the plate roots or the show's own work/publish subtree.

    A frame that is missing, outside the roots, on another show or behind a symlink that leads away gets one
    and the same answer (no existence oracle). Returns the pattern with its folder resolved.
    """
    if not isinstance(pattern, str) or not pattern or "\x00" in pattern:
        raise PortalError("a matte path is required", code="path")
    if not os.path.isabs(pattern):
        raise PortalError(f"matte {pattern}: give an absolute path on shared storage", code="path")
    if ".." in Path(pattern).parts:
        raise PortalError(f"matte {shown(pattern)}: '..' is not allowed in paths", code="path")
    try:
        glob_frames(pattern)  # exactly one frame token, in the file name
    except ValueError:
        raise PortalError(f"matte {shown(pattern)}: a frame pattern has exactly one frame number token "
                          "(#### or %04d), in the file name", code="bad_pattern") from None
    missing = PortalError(f"matte {shown(pattern)}: frames {first_frame}-{last_frame} are not on this show's "
                          "storage", code="matte_missing")
    roots = show_roots(show_code)
    folder = resolved_inside(Path(pattern).parent, roots)
    if folder is None:
        raise missing
    resolved = folder / Path(pattern).name
    present = 0
    for frame in range(first_frame, last_frame + 1):
        path = frame_path(str(resolved), frame)
        if key_frames and not os.path.lexists(path):
            continue  # a frame the artist did not key
        real = resolved_inside(path, roots)
        if real is None or not real.is_file():
            raise missing
        present += 1
    if not present:
        raise missing
    return str(resolved)


# A catalogue code names a folder and goes into publish paths: letters, digits, '_' and '-', no '..' or '/'.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")


def checked_code(kind: str, code: str, max_length: int = 64) -> str:
    """``code`` if it is a slug (letters, digits, ``_``, ``-``; not starting with ``-`` or ``_``)."""
    if not isinstance(code, str) or not _CODE.match(code) or len(code) > max_length:
        raise PortalError(f"{kind} {code!r}: use up to {max_length} letters, digits, '_' and '-' "
                          "(no '/', '.', '..' or spaces)", code="bad_code")
    return code


def plate_roots() -> list[Path]:
    return [Path(r).resolve() for r in settings.PLATE_ROOTS]


def _root_of(path: Path, roots: list[Path]) -> Path | None:
    return next((root for root in roots if path == root or root in path.parents), None)


def _under(path: Path, root: Path) -> str:
    return f"{path.relative_to(root)} under {root}"


def _candidate(pattern: str, roots: list[Path]) -> tuple[Path, Path]:
    """``(pattern made absolute and normalised, the root it lies in)``, before any symlink is followed."""
    if os.path.isabs(pattern):
        lexical = Path(os.path.normpath(pattern))
        root = _root_of(lexical, roots)
        if root is None:
            raise PortalError(f"{pattern}: outside the plate roots ({', '.join(map(str, roots))})", code="path")
        return lexical, root
    found = []
    for root in roots:
        lexical = Path(os.path.normpath(root / pattern))
        if _root_of(lexical, [root]) is None:
            raise PortalError(f"{pattern}: leaves the plate root {root} (it would be {lexical})", code="path")
        if glob_frames(str(lexical.parent.resolve() / lexical.name)):
            found.append((lexical, root))
    if len(found) != 1:
        where = "none of" if not found else "more than one of"
        raise PortalError(f"{pattern}: a relative pattern must name frames in exactly one plate root; {where} "
                          f"{', '.join(map(str, roots))} has them (give the absolute path)", code="path")
    return found[0]


def checked_plate_pattern(pattern: str) -> str:
    """The absolute, normalised frame pattern of a plate (or matte) inside a plate root, symlinks resolved.

    A relative pattern is taken under the plate root that holds its frames. '..' is resolved; a pattern
    that leaves the roots, or whose folder or frames lead outside them through a symlink, is refused
    with a message naming the path under its root.
    """
    if not pattern or "\x00" in pattern:
        raise PortalError("a plate path is required", code="path")
    try:
        glob_frames(pattern)  # one frame token, in the file name
    except ValueError as exc:
        raise PortalError(str(exc), code="bad_pattern") from exc
    roots = plate_roots()
    lexical, root = _candidate(pattern, roots)
    resolved = lexical.parent.resolve() / lexical.name
    if _root_of(resolved.parent, roots) is None:
        raise PortalError(f"{_under(lexical, root)}: its folder resolves to {resolved.parent}, outside the plate "
                          "roots", code="path")
    for frame in glob_frames(str(resolved)):
        path = Path(frame_path(str(resolved), frame))
        if _root_of(path.resolve(), roots) is None:
            raise PortalError(f"{_under(Path(frame_path(str(lexical), frame)), root)}: a symlink to "
                              f"{path.resolve()}, outside the plate roots", code="path")
    return str(resolved)
