"""Paths that come from the outside world are checked against the shared-storage roots."""

import os
import re
from pathlib import Path

from django.conf import settings

from generation.engine.sequence import frame_path, glob_frames
from portal.errors import PortalError


def shared_storage_roots() -> list[Path]:
    return [Path(r).resolve() for r in settings.PLATE_ROOTS] + [Path(settings.WORK_ROOT).resolve()]


def checked_pattern(pattern: str) -> str:
    """An absolute frame pattern inside shared storage, with no way out of it (no .., no symlink escape)."""
    if not pattern or "\x00" in pattern:
        raise PortalError("a path is required", code="path")
    if not os.path.isabs(pattern):
        raise PortalError(f"{pattern}: paths must be absolute paths on shared storage", code="path")
    if ".." in Path(pattern).parts:
        raise PortalError(f"{pattern}: '..' is not allowed in paths", code="path")
    folder = Path(pattern).parent.resolve()
    roots = shared_storage_roots()
    if not any(folder == root or root in folder.parents for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise PortalError(f"{pattern}: outside shared storage ({allowed})", code="path")
    return str(folder / Path(pattern).name)


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
