"""Add attributes to an OpenEXR file's header without re-encoding its pixels.

A released frame is the variation's element with the provenance added to its header. Decoding and
re-compressing 2K frames only to add a few strings costs more than the copy itself, so for single-part,
non-deep files we copy the compressed chunks verbatim and patch the header and the chunk offset table
(every offset moves by the size of the added attributes). Anything else raises `UnsupportedExr`, and the
caller falls back to a full read and write through OpenImageIO.

Only the header and the offset table pass through Python. The chunks are copied by the kernel
(copy_file_range, else sendfile, else read/write) and hashed straight from the page cache through a
read-only mapping of the source, so the sha256 for the manifest costs no extra read and no extra copy.
hashlib releases the GIL while it hashes, so frames copied on other threads keep the other cores busy.
"""

import errno
import hashlib
import mmap
import os
import struct
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

MAGIC = b"\x76\x2f\x31\x01"
_DEEP = 0x800
_MULTIPART = 0x1000
_LONG_NAMES = 0x400
_HEAD = 1 << 16  # a generous element header; larger ones are read again up to _MAX_HEAD
_MAX_HEAD = 1 << 20
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}


class UnsupportedExr(ValueError):
    pass


@dataclass(frozen=True)
class Typed:
    """A header attribute of an OpenEXR type other than ``string``: its type name and its values."""

    kind: str  # "chromaticities", "rational", "timecode" or "float"
    values: tuple

    def encode(self) -> bytes:
        return struct.pack(_FORMATS[self.kind], *self.values)


_FORMATS = {"chromaticities": "<8f", "rational": "<iI", "timecode": "<II", "float": "<f"}


def chromaticities(xy: tuple[float, ...]) -> Typed:
    """CIE xy of red, green, blue and white (8 floats)."""
    return Typed("chromaticities", tuple(float(v) for v in xy))


def rational(value: Fraction) -> Typed:
    return Typed("rational", (value.numerator, value.denominator))


def fps_fraction(fps: Decimal | float | int) -> Fraction:
    """Frames per second as the rational a pipeline expects: 24/1, and 24000/1001 for 23.976 (NTSC rates)."""
    exact = Fraction(Decimal(str(fps)))
    if exact <= 0:
        raise ValueError(f"frames per second must be positive, got {fps}")
    ntsc = Fraction(round(exact * Fraction(1001, 1000)) * 1000, 1001)
    if exact.denominator != 1 and abs(exact - ntsc) < Fraction(1, 500):
        return ntsc
    return exact.limit_denominator(1001)


_TC_FLAGS = 0x40 | 0x80 | 0x8000 | 0x800000 | 0x40000000 | 0x80000000  # drop frame, colour frame, field, bgf0-2


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def _unbcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0xF)


def advance_timecode(time_and_flags: int, frames: int, rate: int) -> int:
    """SMPTE 12M time-and-flags (OpenEXR's ``timeCode``) ``frames`` later at ``rate`` frames per second
    (nominal: 30 for 29.97); drop-frame counting when its flag is set; flags kept, wraps at 24 h."""
    hours, minutes = _unbcd(time_and_flags >> 24 & 0x3F), _unbcd(time_and_flags >> 16 & 0x7F)
    seconds, frame = _unbcd(time_and_flags >> 8 & 0x7F), _unbcd(time_and_flags & 0x3F)
    drop = 2 * (rate // 30) if time_and_flags & 0x40 and rate % 30 == 0 else 0
    total_minutes = hours * 60 + minutes
    count = (total_minutes * 60 + seconds) * rate + frame - drop * (total_minutes - total_minutes // 10)
    count = (count + frames) % ((24 * 3600 * rate) - drop * (24 * 60 - 24 * 6))
    if drop:  # the frame number back to a drop-frame label (SMPTE: two labels per minute skipped, not every tenth)
        per_ten = 600 * rate - 9 * drop
        tens, rest = divmod(count, per_ten)
        count += 9 * drop * tens + (drop * ((rest - drop) // (60 * rate - drop)) if rest > drop else 0)
    frame, seconds_total = count % rate, count // rate
    seconds, minutes, hours = seconds_total % 60, seconds_total // 60 % 60, seconds_total // 3600
    return (time_and_flags & _TC_FLAGS) | _bcd(hours) << 24 | _bcd(minutes) << 16 | _bcd(seconds) << 8 | _bcd(frame)


class _ShortHeader(UnsupportedExr):
    pass


def _read_cstring(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\x00", pos, min(len(data), pos + 256))
    if end < 0:
        raise _ShortHeader("header larger than expected")
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
            raise _ShortHeader("header larger than expected")
        if head[pos] == 0:
            return attributes, pos + 1
        name, pos = _read_cstring(head, pos)
        kind, pos = _read_cstring(head, pos)
        if pos + 4 > len(head):
            raise _ShortHeader("header larger than expected")
        (size,) = struct.unpack_from("<i", head, pos)
        pos += 4
        if pos + size > len(head):
            raise _ShortHeader("header larger than expected")
        attributes.append((name, kind, head[pos:pos + size]))
        pos += size


def _encode(name: bytes, kind: bytes, value: bytes) -> bytes:
    return name + b"\x00" + kind + b"\x00" + struct.pack("<i", len(value)) + value


def _read_head(fd: int, size: int) -> tuple[bytes, list, int]:
    for length in (_HEAD, _MAX_HEAD):
        head = os.pread(fd, min(length, size), 0)
        try:
            return head, *_parse_header(head)
        except _ShortHeader:
            if len(head) >= size:
                raise UnsupportedExr("truncated header") from None
    raise UnsupportedExr("header larger than expected")


def _offset_table(fd: int, head: bytes, header_end: int, size: int) -> list[int]:
    """The chunk offsets: from the end of the header up to the earliest chunk."""
    offsets: list[int] = []
    first_chunk = size
    pos = header_end
    while pos < first_chunk:
        raw = head[pos:pos + 8] if pos + 8 <= len(head) else os.pread(fd, 8, pos)
        if len(raw) < 8:
            raise UnsupportedExr("truncated offset table")
        (offset,) = struct.unpack("<Q", raw)
        if offset <= header_end or offset >= size:
            raise UnsupportedExr("incomplete file (a chunk offset is missing or out of range)")
        offsets.append(offset)
        first_chunk = min(first_chunk, offset)
        pos += 8
    return offsets


def copy_range(src: int, dst: int, offset: int, count: int, dst_offset: int) -> None:
    """`count` bytes of `src` from `offset` to `dst` at `dst_offset`, copied inside the kernel if it can."""
    copiers = (
        lambda done: os.copy_file_range(src, dst, count - done, offset + done, dst_offset + done),
        lambda done: os.sendfile(dst, src, offset + done, count - done),  # writes at dst's position
        lambda done: os.pwrite(dst, os.pread(src, min(count - done, 1 << 22), offset + done), dst_offset + done),
    )
    for copier in copiers:
        os.lseek(dst, dst_offset, os.SEEK_SET)
        done = 0
        try:
            while done < count:
                n = copier(done)
                if n == 0:
                    raise OSError(errno.EIO, "source ended early")
                done += n
            return
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY or done or copier is copiers[-1]:
                raise


def hash_range(digest, fd: int, offset: int, end: int) -> None:
    """Feed bytes [offset, end) of `fd` to `digest`, from the page cache through a read-only mapping."""
    if end <= offset:
        return
    try:
        mapped = mmap.mmap(fd, end, prot=mmap.PROT_READ, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
    except (OSError, ValueError):
        while offset < end:
            block = os.pread(fd, min(end - offset, 1 << 22), offset)
            if not block:
                raise OSError(errno.EIO, "file ended early") from None
            digest.update(block)
            offset += len(block)
        return
    with mapped, memoryview(mapped) as view:
        digest.update(view[offset:end])


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        hash_range(digest, fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return digest.hexdigest()


def start_writeback(fd: int) -> None:
    """Have the kernel start writing `fd`'s dirty pages to disk now, without waiting for them.

    A later fdatasync then finds the data on its way or already on disk, so the disk works while the other
    frames are copied and hashed instead of after all of them. POSIX_FADV_DONTNEED starts that writeback on
    Linux (and lets the cache drop the pages once written: a release need not evict the work area's frames).
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _encode_value(name: str, value: str | Typed) -> bytes:
    if isinstance(value, Typed):
        return _encode(name.encode(), value.kind.encode(), value.encode())
    return _encode(name.encode(), b"string", str(value).encode())


def copy_with_attributes(source: str | Path, target: str | Path, attributes: dict[str, str | Typed], *,
                         writeback: bool = False) -> str:
    """Copy `source` to a new file `target` with `attributes` set in its header (replacing same-named ones):
    strings, or `Typed` values (chromaticities, rationals, timecodes, floats); with `writeback`, the new file's
    writing to disk starts at once (see `start_writeback`).

    Returns the sha256 of the written file, computed on the way through (no second read for the manifest).
    """
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src).st_size
        head, old, header_end = _read_head(src, size)
        offsets = _offset_table(src, head, header_end, size)
        replaced = {name.encode() for name in attributes}
        flags = struct.unpack_from("<I", head, 4)[0]
        if any(len(name) > 31 for name in replaced):
            flags |= _LONG_NAMES
        new_header = head[:4] + struct.pack("<I", flags) + b"".join(
            _encode(*a) for a in old if a[0] not in replaced) + b"".join(
            _encode_value(name, value) for name, value in attributes.items()) + b"\x00"
        delta = len(new_header) - header_end
        prefix = new_header + struct.pack(f"<{len(offsets)}Q", *(o + delta for o in offsets))
        chunks = header_end + 8 * len(offsets)  # the chunks (and anything else) follow verbatim
        digest = hashlib.sha256(prefix)
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            written = 0
            while written < len(prefix):
                written += os.write(dst, prefix[written:])
            copy_range(src, dst, chunks, size - chunks, len(prefix))
            hash_range(digest, src, chunks, size)
            if writeback:
                start_writeback(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return digest.hexdigest()
