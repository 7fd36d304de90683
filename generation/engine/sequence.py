"""Frame-sequence patterns: ``plate.####.exr`` and ``plate.%04d.exr``.

A run of N ``#`` means N-digit zero padding (a single ``#`` means no padding);
printf ``%0Nd`` / ``%d`` mean the same. A pattern holds exactly one token.
"""

from __future__ import annotations

import os
import re

MAX_FRAMES = 10000
# A variation's folder: its element frames and their in-context proxies (here, free of torch, so the portal's
# web processes can find them without loading the engine).
ELEMENT_NAME = "element.####.exr"
PROXY_NAME = "incontext.####.jpg"

_TOKEN = re.compile(r"#+|%(?:0(\d+))?d")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _token(pattern: str) -> re.Match[str]:
    found = list(_TOKEN.finditer(pattern))
    if not found:
        raise ValueError(f"{pattern!r} has no frame number token (#### or %04d)")
    if len(found) > 1:
        raise ValueError(f"{pattern!r} has {len(found)} frame number tokens; expected one")
    return found[0]


def _padding(match: re.Match[str]) -> int:
    text = match.group(0)
    if text.startswith("#"):
        return len(text) if len(text) > 1 else 0
    return int(match.group(1) or 0)


def frame_path(pattern: str, frame: int) -> str:
    """The path of ``frame`` in ``pattern``; e.g. ``("a.####.exr", 7) -> "a.0007.exr"``."""
    match = _token(pattern)
    if frame < 0:
        raise ValueError(f"frame numbers must be non-negative, got {frame}")
    digits = str(frame).zfill(_padding(match))
    return pattern[: match.start()] + digits + pattern[match.end() :]


def to_printf(pattern: str) -> str:
    """``plate.####.exr -> plate.%04d.exr`` (``#`` -> ``%d``)."""
    match = _token(pattern)
    pad = _padding(match)
    token = f"%0{pad}d" if pad else "%d"
    return pattern[: match.start()] + token + pattern[match.end() :]


def to_hashes(pattern: str) -> str:
    """``plate.%04d.exr -> plate.####.exr`` (``%d`` -> ``#``)."""
    match = _token(pattern)
    token = "#" * max(_padding(match), 1)
    return pattern[: match.start()] + token + pattern[match.end() :]


def glob_frames(pattern: str) -> list[int]:
    """Sorted frame numbers on disk whose file name is exactly what :func:`frame_path` gives."""
    match = _token(pattern)
    directory, _ = os.path.split(pattern[: match.start()])
    if os.sep in pattern[match.end() :]:
        raise ValueError(f"{pattern!r}: the frame token must be in the file name")
    head = os.path.basename(pattern[: match.start()])
    tail = pattern[match.end() :]
    name = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + r"\Z")
    try:
        entries = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    frames = set()
    for entry in entries:
        found = name.match(entry)
        if found and os.path.basename(frame_path(pattern, int(found.group(1)))) == entry:
            frames.add(int(found.group(1)))
    return sorted(frames)


def parse_frame_range(text: str) -> tuple[int, int]:
    """Parse ``"1001-1024"`` or ``"1001"`` into an inclusive ``(first, last)``."""
    cleaned = "".join(text.split())
    if cleaned.startswith("-"):
        raise ValueError(f"frame range {text!r}: frame numbers must be non-negative")
    found = _RANGE.match(cleaned)
    if not found:
        raise ValueError(f"frame range {text!r} is not 'FIRST-LAST' or 'FRAME', e.g. '1001-1024'")
    first = int(found.group(1))
    last = int(found.group(2)) if found.group(2) is not None else first
    if first > last:
        raise ValueError(f"frame range {text!r}: first frame {first} is after last frame {last}")
    if last - first + 1 > MAX_FRAMES:
        raise ValueError(f"frame range {text!r} has {last - first + 1} frames; the limit is {MAX_FRAMES}")
    return first, last
