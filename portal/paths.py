"""Paths that come from the outside world are checked against the shared-storage roots."""

import os
from pathlib import Path

from django.conf import settings

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
