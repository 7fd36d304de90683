"""Add string attributes to an OpenEXR file's header without re-encoding its pixels.

A released frame is the variation's element with the provenance added to its header. Decoding and
re-compressing 2K frames only to add a few strings costs more than the copy itself, so for single-part,
non-deep files we copy the compressed chunks verbatim and patch the header and the chunk offset table
(every offset moves by the size of the added attributes). Anything else raises `UnsupportedExr`, and the
caller falls back to a full read and write through OpenImageIO.
"""

import hashlib
import struct
from pathlib import Path

MAGIC = b"\x76\x2f\x31\x01"
_DEEP = 0x800
_MULTIPART = 0x1000
_LONG_NAMES = 0x400


class UnsupportedExr(ValueError):
    pass


def _read_cstring(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(b"\x00", pos, min(len(data), pos + 256))
    return data[pos:end], end + 1


def _parse_header(head: bytes) -> tuple[list[tuple[bytes, bytes, bytes]], int]:
    """The header's attributes as (name, type, value) and the offset just past its terminating null."""
    if head[:4] != MAGIC:
        raise UnsupportedExr("not an OpenEXR file")
    (flags,) = struct.unpack_from("<I", head, 4)
    if flags & (_DEEP | _MULTIPART):
        raise UnsupportedExr("deep or multi-part files are rewritten through OpenImageIO")
    pos, attributes = 8, []
    while True:
        if pos >= len(head):
            raise UnsupportedExr("header larger than expected")
        if head[pos] == 0:
            return attributes, pos + 1
        name, pos = _read_cstring(head, pos)
        kind, pos = _read_cstring(head, pos)
        (size,) = struct.unpack_from("<i", head, pos)
        pos += 4
        attributes.append((name, kind, head[pos:pos + size]))
        pos += size


def _encode(name: bytes, kind: bytes, value: bytes) -> bytes:
    return name + b"\x00" + kind + b"\x00" + struct.pack("<i", len(value)) + value


def copy_with_attributes(source: str | Path, target: str | Path, attributes: dict[str, str]) -> str:
    """Copy `source` to `target` with string `attributes` set in its header (replacing same-named ones).

    Returns the sha256 of the written file, computed on the way through (no second read for the manifest).
    """
    with open(source, "rb") as src:
        head = src.read(1 << 20)
        old, header_end = _parse_header(head)
        replaced = {name.encode() for name in attributes}
        flags = struct.unpack_from("<I", head, 4)[0]
        if any(len(name) > 31 for name in replaced):
            flags |= _LONG_NAMES
        new_header = head[:4] + struct.pack("<I", flags) + b"".join(
            _encode(*a) for a in old if a[0] not in replaced) + b"".join(
            _encode(name.encode(), b"string", str(value).encode()) for name, value in attributes.items()) + b"\x00"
        delta = len(new_header) - header_end
        # The offset table runs from the end of the header to the earliest chunk.
        src.seek(header_end)
        offsets: list[int] = []
        first_chunk = None
        while first_chunk is None or header_end + 8 * len(offsets) < first_chunk:
            raw = src.read(8)
            if len(raw) < 8:
                raise UnsupportedExr("truncated offset table")
            (offset,) = struct.unpack("<Q", raw)
            if offset <= header_end:
                raise UnsupportedExr("incomplete file (a chunk offset is missing)")
            offsets.append(offset)
            first_chunk = offset if first_chunk is None else min(first_chunk, offset)
        digest = hashlib.sha256()
        with open(target, "wb") as dst:
            for block in (new_header, struct.pack(f"<{len(offsets)}Q", *(o + delta for o in offsets))):
                digest.update(block)
                dst.write(block)
            while block := src.read(1 << 22):
                digest.update(block)
                dst.write(block)
    return digest.hexdigest()
