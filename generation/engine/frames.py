"""OpenEXR plate and matte I/O through OpenImageIO.

Pixels cross this module as numpy arrays shaped (H, W, C) over the DISPLAY window,
float32 unless stated, in whatever colour space the file holds, unless the reader is
given the plate's ``colourspace`` and a ``working_space``: then R, G, B arrive converted
through OCIO (:func:`generation.engine.colour.to_working`), alpha and other channels as stored.
Every failure on a file is a :class:`FrameError` with a one-line message.
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import OpenImageIO as oiio

from generation.engine.sequence import frame_path, glob_frames

MAX_DIMENSION = 32768
MAX_CHANNELS = 256
EXR_COMPRESSIONS = frozenset({"none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab", "htj2k"})
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_EXR_FLAG_DEEP = 0x800
_VERIFY_ROWS = 64
_HALF_ONE = 0x3C00  # 1.0's half bits: a half whose bits are at most this is in +0..1 (NaN, -0 and negatives above)


class FrameError(ValueError):
    """A frame that cannot be used; ``str(error)`` is ``"<basename>: reason"`` on one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        reason = reason.replace(self.path, os.path.basename(self.path))
        line = " ".join(reason.replace("\x00", " ").split())
        line = "".join(ch if ch.isprintable() else "?" for ch in line)[:300]
        super().__init__(f"{os.path.basename(self.path)}: {line or 'unreadable'}")


@dataclass(frozen=True)
class Window:
    """A pixel rectangle; ``x, y`` is the top-left pixel, ``xmax, ymax`` are inclusive."""

    x: int
    y: int
    width: int
    height: int

    @property
    def xmax(self) -> int:
        return self.x + self.width - 1

    @property
    def ymax(self) -> int:
        return self.y + self.height - 1

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    @classmethod
    def from_roi(cls, roi: oiio.ROI) -> Window:
        return cls(roi.xbegin, roi.ybegin, roi.xend - roi.xbegin, roi.yend - roi.ybegin)

    def to_roi(self) -> oiio.ROI:
        return oiio.ROI(self.x, self.x + self.width, self.y, self.y + self.height)

    def intersect(self, other: Window) -> Window | None:
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.xmax, other.xmax), min(self.ymax, other.ymax)
        if x1 < x0 or y1 < y0:
            return None
        return Window(x0, y0, x1 - x0 + 1, y1 - y0 + 1)

    def union(self, other: Window) -> Window:
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        x1, y1 = max(self.xmax, other.xmax), max(self.ymax, other.ymax)
        return Window(x0, y0, x1 - x0 + 1, y1 - y0 + 1)

    def contains(self, other: Window) -> bool:
        return self.x <= other.x and self.y <= other.y and other.xmax <= self.xmax and other.ymax <= self.ymax


@dataclass(frozen=True)
class FrameHeader:
    """What a plate frame declares: windows, channels (file order) and per-channel formats."""

    path: str
    frame: int | None
    display_window: Window
    data_window: Window
    channels: tuple[str, ...]
    channel_formats: tuple[str, ...]
    compression: str
    tiled: bool
    subimages: int
    pixel_aspect: float = 1.0  # width / height of one pixel: 2.0 for a 2:1 anamorphic squeeze
    timecode: tuple[int, int] | None = None  # SMPTE (time and flags, user bits), as the EXR stores it


@dataclass
class SequenceScan:
    """Headers of the frames of ``pattern`` in ``first..last`` that exist; ``missing`` are absent."""

    pattern: str
    first: int
    last: int
    frames: list[FrameHeader] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    @property
    def display_window(self) -> Window:
        return self.frames[0].display_window

    @property
    def data_window(self) -> Window:
        window = self.frames[0].data_window
        for header in self.frames[1:]:
            window = window.union(header.data_window)
        return window

    @property
    def channels(self) -> tuple[str, ...]:
        return self.frames[0].channels

    @property
    def pixel_aspect(self) -> float:
        return self.frames[0].pixel_aspect


def _oiio_error(source: oiio.ImageInput | oiio.ImageOutput | None = None) -> str:
    """OIIO's pending error text; damaged headers can put undecodable bytes in it."""
    try:
        message = source.geterror() if source is not None else oiio.geterror()
    except UnicodeDecodeError:
        return "damaged file (undecodable error message)"
    return message or "unknown OpenImageIO error"


def _check_version_flags(path: str) -> None:
    """Refuse non-EXR and deep files from the first 8 bytes, before OpenEXR parses anything."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise FrameError(path, error.strerror or str(error)) from None
    if len(head) < 8 or head[:4] != _EXR_MAGIC:
        raise FrameError(path, "not an OpenEXR file")
    (version,) = struct.unpack("<I", head[4:8])
    if version & _EXR_FLAG_DEEP:
        raise FrameError(path, "deep data is not supported for plates")


def _open(path: str) -> oiio.ImageInput:
    _check_version_flags(path)
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise FrameError(path, _oiio_error())
    if inp.format_name() != "openexr":
        inp.close()
        raise FrameError(path, "not an OpenEXR file")
    return inp


def _header(path: str, inp: oiio.ImageInput, frame: int | None) -> FrameHeader:
    spec = inp.spec()
    display = Window(spec.full_x, spec.full_y, spec.full_width, spec.full_height)
    data = Window(spec.x, spec.y, spec.width, spec.height)
    for name, window in (("display", display), ("data", data)):
        if not (0 < window.width <= MAX_DIMENSION and 0 < window.height <= MAX_DIMENSION):
            raise FrameError(path, f"{name} window {window.width}x{window.height} is outside 1..{MAX_DIMENSION}")
    if not 0 < spec.nchannels <= MAX_CHANNELS:
        raise FrameError(path, f"{spec.nchannels} channels is outside 1..{MAX_CHANNELS}")
    if spec.depth != 1:
        raise FrameError(path, "volumetric images are not supported for plates")
    formats = [str(t) for t in spec.channelformats] or [str(spec.format)] * spec.nchannels
    subimages = 1
    while subimages < 4096 and inp.seek_subimage(subimages, 0):
        subimages += 1
    inp.seek_subimage(0, 0)
    aspect = spec.get_float_attribute("PixelAspectRatio", 1.0)
    if not (np.isfinite(aspect) and 0.01 <= aspect <= 100):
        raise FrameError(path, f"pixel aspect ratio {aspect} is outside 0.01..100")
    timecode = spec.getattribute("smpte:TimeCode")
    return FrameHeader(
        path=path,
        frame=frame,
        display_window=display,
        data_window=data,
        channels=tuple(spec.channelnames),
        channel_formats=tuple(formats),
        compression=spec.get_string_attribute("compression") or "none",
        tiled=spec.tile_width > 0,
        subimages=subimages,
        pixel_aspect=float(aspect),
        timecode=tuple(int(v) for v in timecode) if timecode is not None else None,
    )


def _verify_pixels(path: str, inp: oiio.ImageInput) -> None:
    """Decode every pixel of subimage 0 in bands, so a truncated or corrupt file fails here."""
    spec = inp.spec()
    rows = spec.tile_height * max(1, _VERIFY_ROWS // spec.tile_height) if spec.tile_width else _VERIFY_ROWS
    for y0 in range(spec.y, spec.y + spec.height, rows):
        y1 = min(y0 + rows, spec.y + spec.height)
        if spec.tile_width:
            pixels = inp.read_tiles(0, 0, spec.x, spec.x + spec.width, y0, y1, 0, 1, 0, spec.nchannels, "half")
        else:
            pixels = inp.read_scanlines(0, 0, y0, y1, 0, 0, spec.nchannels, "half")
        if pixels is None or inp.has_error:
            raise FrameError(path, f"unreadable pixels near row {y0}: {_oiio_error(inp)}")


def read_header(path: str | os.PathLike[str], *, frame: int | None = None, verify_pixels: bool = True) -> FrameHeader:
    """Read and sanity-check a plate frame's header; with ``verify_pixels`` decode all pixels too."""
    path = os.fspath(path)
    inp = _open(path)
    try:
        header = _header(path, inp, frame)
        if verify_pixels:
            _verify_pixels(path, inp)
        return header
    except FrameError:
        raise
    except Exception as error:  # OIIO raises assorted errors on damaged files
        raise FrameError(path, f"{type(error).__name__}: {error}") from None
    finally:
        inp.close()


def scan_sequence(
    pattern: str, first: int | None = None, last: int | None = None, *, verify_pixels: bool = True
) -> SequenceScan:
    """Read every existing frame's header; frames absent in the range are listed in ``missing``.

    Raises FrameError when no frame exists, a frame is damaged, or display windows, pixel
    aspects or channel sets differ from the first frame (the message names the first offending frame).
    """
    if first is None or last is None:
        on_disk = glob_frames(pattern)
        if not on_disk:
            raise FrameError(pattern, "no frames on disk")
        first = on_disk[0] if first is None else first
        last = on_disk[-1] if last is None else last
    scan = SequenceScan(pattern=pattern, first=first, last=last)
    for frame in range(first, last + 1):
        path = frame_path(pattern, frame)
        if not os.path.exists(path):
            scan.missing.append(frame)
            continue
        header = read_header(path, frame=frame, verify_pixels=verify_pixels)
        if scan.frames:
            reference = scan.frames[0]
            if header.display_window != reference.display_window:
                raise FrameError(
                    path,
                    f"display window {header.display_window.as_dict()} differs "
                    f"from frame {reference.frame}'s {reference.display_window.as_dict()}",
                )
            if header.pixel_aspect != reference.pixel_aspect:
                raise FrameError(
                    path, f"pixel aspect {header.pixel_aspect:g} differs from frame {reference.frame}'s "
                    f"{reference.pixel_aspect:g}"
                )
            if set(header.channels) != set(reference.channels):
                raise FrameError(
                    path,
                    f"channels {sorted(header.channels)} differ from frame "
                    f"{reference.frame}'s {sorted(reference.channels)}",
                )
        scan.frames.append(header)
    if not scan.frames:
        raise FrameError(pattern, f"no frames exist in {first}-{last}")
    return scan


def _read_display(
    path: str, names: Sequence[str], header: FrameHeader | None = None, half: bool = False
) -> tuple[np.ndarray, np.ndarray, FrameHeader]:
    """Channels ``names`` (all must exist) over the display window, plus the data-window mask (``header``: the
    file's, when the caller has read it). ``half``: float16 as stored (every channel read must be half)."""
    header = header or read_header(path, verify_pixels=False)
    indices = [header.channels.index(name) for name in names]
    display = header.display_window
    dtype = np.float16 if half else np.float32
    out = np.zeros((display.height, display.width, len(names)), dtype)
    inside = np.zeros((display.height, display.width), bool)
    overlap = header.data_window.intersect(display)
    if overlap is None:
        return out, inside, header
    begin, end = min(indices), max(indices) + 1
    inp = _open(path)
    try:
        pixels = inp.read_image(0, 0, begin, end, "half" if half else "float")
        if pixels is None or inp.has_error:
            raise FrameError(path, f"unreadable pixels: {_oiio_error(inp)}")
    except FrameError:
        raise
    except Exception as error:
        raise FrameError(path, f"{type(error).__name__}: {error}") from None
    finally:
        inp.close()
    data = header.data_window
    pixels = np.asarray(pixels, dtype).reshape(data.height, data.width, end - begin)
    src = pixels[overlap.y - data.y : overlap.ymax - data.y + 1, overlap.x - data.x : overlap.xmax - data.x + 1]
    dst = (
        slice(overlap.y - display.y, overlap.ymax - display.y + 1),
        slice(overlap.x - display.x, overlap.xmax - display.x + 1),
    )
    out[dst] = src[..., [i - begin for i in indices]]
    inside[dst] = True
    return out, inside, header


def _to_working(
    path: str,
    pixels: np.ndarray,
    header: FrameHeader,
    names: Sequence[str],
    colourspace: str | None,
    working_space: str | None,
    config_name: str | None,
) -> np.ndarray:
    """``pixels`` (fresh from :func:`_read_display`, converted in place) with their R, G, B taken from
    ``colourspace`` to ``working_space`` inside the data window (outside it stays 0: no data there,
    whatever that 0 would mean in the plate's encoding)."""
    if colourspace is None or working_space is None or colourspace == working_space:
        return pixels
    from generation.engine import colour  # colour imports this module (resize)

    rgb = [list(names).index(c) for c in ("R", "G", "B") if c in names]
    if len(rgb) != 3:
        raise FrameError(path, f"converting from {colourspace!r} needs R, G and B; reading {', '.join(names)}")
    overlap = header.data_window.intersect(header.display_window)
    if overlap is None:
        return pixels
    d = header.display_window
    block = pixels[overlap.y - d.y : overlap.ymax - d.y + 1, overlap.x - d.x : overlap.xmax - d.x + 1]
    try:
        block[..., rgb] = colour.to_working(block[..., rgb], colourspace, working_space, config_name=config_name)
    except colour.ColourError as error:
        raise FrameError(path, str(error)) from None
    return pixels


def read_rgba(
    path: str | os.PathLike[str],
    *,
    channels: Sequence[str] = ("R", "G", "B", "A"),
    fill_alpha: float = 1.0,
    colourspace: str | None = None,
    working_space: str | None = None,
    config_name: str | None = None,
) -> tuple[np.ndarray, FrameHeader]:
    """Read RGBA as float32 (H, W, 4) over the display window.

    Outside the data window everything is 0 (alpha too); data outside the display window is
    cropped. A file without the alpha channel gets ``fill_alpha`` inside its data window.
    With ``colourspace`` and ``working_space`` (names in OCIO config ``config_name``), RGB is
    converted from the one to the other; alpha never is.
    """
    path = os.fspath(path)
    header = read_header(path, verify_pixels=False)
    colour, alpha = list(channels[:3]), channels[3]
    absent = [name for name in colour if name not in header.channels]
    if absent:
        raise FrameError(path, f"no {', '.join(absent)} channel(s); present: {', '.join(header.channels)}")
    has_alpha = alpha in header.channels
    pixels, inside, header = _read_display(path, colour + ([alpha] if has_alpha else []))
    pixels = _to_working(path, pixels, header, ("R", "G", "B", "A")[: pixels.shape[2]], colourspace, working_space,
                         config_name)
    if not has_alpha:
        fill = np.where(inside, np.float32(fill_alpha), np.float32(0))[..., None]
        pixels = np.concatenate([pixels, fill], axis=2)
    return pixels, header


def read_channels(
    path: str | os.PathLike[str],
    names: Sequence[str],
    *,
    colourspace: str | None = None,
    working_space: str | None = None,
    config_name: str | None = None,
    header: FrameHeader | None = None,
    half: bool = False,
) -> np.ndarray:
    """Read ``names`` as float32 (H, W, len(names)) over the display window (0 outside data).

    With ``colourspace`` (the plate's) and ``working_space``, both names in OCIO config
    ``config_name``, the R, G and B among ``names`` are converted into the working space
    (they must all be read); other channels (alpha, depth, motion) are returned as stored.
    ``header``: the file's, when the caller has read it. ``half``: float16 as stored, no float32 round trip,
    when every channel read is half and nothing is converted (else float32 as always): the same values.
    """
    path = os.fspath(path)
    header = header or read_header(path, verify_pixels=False)
    absent = [name for name in names if name not in header.channels]
    if absent:
        raise FrameError(path, f"no {', '.join(absent)} channel(s); present: {', '.join(header.channels)}")
    converts = colourspace is not None and working_space is not None and colourspace != working_space
    if half and not converts:
        read = [header.channels.index(name) for name in names]
        half = all(header.channel_formats[i] == "half" for i in range(min(read), max(read) + 1))
        if half:
            return _read_display(path, list(names), header, half=True)[0]
    pixels, _, header = _read_display(path, list(names), header)
    return _to_working(path, pixels, header, names, colourspace, working_space, config_name)


def read_with_alpha(
    path: str | os.PathLike[str], names: Sequence[str], *, half: bool = False, **colour
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`read_channels` of ``names`` (``colour``: its colour keywords) and, from the same decode, the frame's
    alpha (H, W) float32 when it has one that ``names`` leave out (else None): a zip EXR decompresses every
    channel of a chunk whichever are asked for, so the alpha costs a copy, not a second decode."""
    path = os.fspath(path)
    header = read_header(path, verify_pixels=False)
    if "A" in names or "A" not in header.channels:
        return read_channels(path, names, header=header, half=half, **colour), None
    both = read_channels(path, (*names, "A"), header=header, half=half, **colour)
    return np.ascontiguousarray(both[..., :-1]), np.ascontiguousarray(both[..., -1], np.float32)


def read_matte(path: str | os.PathLike[str], *, half: bool = False) -> np.ndarray:
    """Read a matte as float32 (H, W) in [0, 1]: channel A, else Y, else R (``half``: float16, as stored, when
    the channel is half; the same values)."""
    path = os.fspath(path)
    header = read_header(path, verify_pixels=False)
    for name in ("A", "Y", "R"):
        if name in header.channels:
            stored = half and header.channel_formats[header.channels.index(name)] == "half"
            matte = _read_display(path, [name], header, half=stored)[0][..., 0]
            if stored:
                if int(matte.view(np.uint16).max()) <= _HALF_ONE:  # all +0..1 already (numpy's half clip is slow)
                    return matte
                matte = matte.astype(np.float32)
            return np.clip(matte, 0.0, 1.0)
    raise FrameError(path, f"no A, Y or R channel for a matte; present: {', '.join(header.channels)}")


def alpha_bbox(alpha: np.ndarray, origin: Window) -> Window | None:
    """Bounding box of ``alpha > 0`` ((H, W) array whose pixel 0,0 is at ``origin.x, origin.y``)."""
    rows = np.flatnonzero((alpha > 0).any(axis=1))
    cols = np.flatnonzero((alpha > 0).any(axis=0))
    if rows.size == 0:
        return None
    return Window(
        origin.x + int(cols[0]), origin.y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
    )


def _atomic_write(path: str, suffix: str, write: Callable[[str], None]) -> None:
    """Run ``write(tmp)`` on a hidden temp file beside ``path``, then rename it into place."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_image(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray, *, into: str | None = None,
                 format_name: str | None = None) -> None:
    """OIIO writes ``pixels`` to ``into`` (default ``tmp``) in the format ``format_name`` (default: by ``tmp``'s
    extension); errors are OSErrors named by ``tmp``."""
    name = os.path.basename(tmp)
    out = oiio.ImageOutput.create(format_name or tmp)
    if out is None:
        raise OSError(f"{name}: {_oiio_error()}")
    try:
        if not out.open(into or tmp, spec) or not out.write_image(pixels):
            raise OSError(f"{name}: {_oiio_error(out)}")
    finally:
        if not out.close():
            raise OSError(f"{name}: {_oiio_error(out)}")


def _check_attribute(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"attribute {name!r} must be str, int or float, not {type(value).__name__}")
    if isinstance(value, int) and not -(2**31) <= value < 2**31:
        raise ValueError(f"attribute {name!r}={value} does not fit in 32 bits")


def write_exr(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    display_window: Window,
    data_window: Window | None = None,
    channel_names: Sequence[str] = ("R", "G", "B", "A"),
    attributes: dict[str, str | int | float] | None = None,
    compression: str = "zip",
    over_data_window: bool = False,
) -> None:
    """Atomically write a HALF OpenEXR.

    ``pixels`` is float32 or float16 (H, W, C) covering ``display_window`` (``over_data_window``: covering
    ``data_window`` alone); only ``data_window`` (default: the display window, must lie inside it) is stored.
    float16 input is stored bit-exact. ``attributes`` are written verbatim into the header.
    """
    path = os.fspath(path)
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    data = data_window or display_window
    covered, what = (data, "data") if over_data_window else (display_window, "display")
    expected = (covered.height, covered.width, len(channel_names))
    if pixels.shape != expected:
        raise ValueError(f"pixels are {pixels.shape}; the {what} window needs {expected}")
    if pixels.dtype not in (np.float16, np.float32):
        raise ValueError(f"pixels must be float16 or float32, not {pixels.dtype}")
    if not display_window.contains(data):
        raise ValueError(f"data window {data.as_dict()} is not inside display window {display_window.as_dict()}")
    if compression.split(":")[0] not in EXR_COMPRESSIONS:
        raise ValueError(f"unknown EXR compression {compression!r}; use one of {sorted(EXR_COMPRESSIONS)}")
    for name, value in (attributes or {}).items():
        _check_attribute(name, value)
    spec = oiio.ImageSpec(data.width, data.height, len(channel_names), "half")
    spec.x, spec.y = data.x, data.y
    spec.full_x, spec.full_y = display_window.x, display_window.y
    spec.full_width, spec.full_height = display_window.width, display_window.height
    spec.channelnames = tuple(channel_names)
    spec.attribute("compression", compression)
    for name, value in (attributes or {}).items():
        spec.attribute(name, value)
    if over_data_window:
        crop = np.ascontiguousarray(pixels)
    else:
        x0, y0 = data.x - display_window.x, data.y - display_window.y
        crop = np.ascontiguousarray(pixels[y0 : y0 + data.height, x0 : x0 + data.width])
    _atomic_write(path, ".exr", lambda tmp: _write_image(tmp, spec, crop))


def write_jpeg(path: str | os.PathLike[str], rgb8: np.ndarray, *, quality: int = 90) -> None:
    """Atomically write a uint8 (h, w, 3) display-referred image as JPEG: full-resolution chroma (4:4:4, no colour
    bleeding across a matte edge) and tagged sRGB (Exif ColorSpace 1), what the proxies' sRGB views encode."""
    rgb8 = np.ascontiguousarray(rgb8)
    if rgb8.dtype != np.uint8 or rgb8.ndim != 3 or rgb8.shape[2] != 3:
        raise ValueError(f"write_jpeg needs uint8 (h, w, 3), got {rgb8.dtype} {rgb8.shape}")
    spec = oiio.ImageSpec(rgb8.shape[1], rgb8.shape[0], 3, "uint8")
    spec.attribute("compression", f"jpeg:{int(quality)}")
    spec.attribute("jpeg:subsampling", "4:4:4")
    spec.attribute("oiio:ColorSpace", "sRGB")
    _atomic_write(os.fspath(path), ".jpg", lambda tmp: _write_through_memory(tmp, "jpeg", spec, rgb8))


def _write_through_memory(tmp: str, format_name: str, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
    """OIIO encodes into an anonymous in-memory file; Python writes its bytes to ``tmp``.

    For JPEG: libjpeg ends the whole process (``exit(1)``, "Output file write error --- out of disk space?") when
    a write to a full disk comes up short, and OIIO's JPEG writer does not catch it. In memory the encoder never
    meets the disk; the disk's error is Python's OSError (ENOSPC), which the caller can retry. Same bytes."""
    fd = os.memfd_create("pt-encode", os.MFD_CLOEXEC)
    try:
        _write_image(tmp, spec, pixels, into=f"/proc/self/fd/{fd}", format_name=format_name)
        encoded = os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
    with open(tmp, "wb") as target:
        target.write(encoded)


def resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-filtered (box) resize of (H, W, C) or (H, W) pixels to float32 (height, width, C)."""
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}x{height}")
    src = np.ascontiguousarray(pixels, np.float32)
    squeeze = src.ndim == 2
    if squeeze:
        src = src[..., None]
    h, w, c = src.shape
    if (h, w) == (height, width):
        return src[..., 0].copy() if squeeze else src.copy()
    if c == 3 and h in (height, 2 * height) and w in (width, 2 * width):
        # Halving RGB (a 1920-wide plate's 960 proxy): OpenCV's area filter gives OIIO's box filter's floats to the
        # bit (tests/generation/engine/test_frames.py) in a twentieth of its time (5 ms, not 100, on a 2K frame).
        return cv2.resize(src, (width, height), interpolation=cv2.INTER_AREA)
    buf = oiio.ImageBuf(oiio.ImageSpec(w, h, c, "float"))
    buf.set_pixels(oiio.ROI(0, w, 0, h, 0, 1, 0, c), src)
    out = oiio.ImageBufAlgo.resize(buf, "box", 0.0, oiio.ROI(0, width, 0, height, 0, 1, 0, c))
    if out.has_error:
        raise ValueError(f"resize failed: {out.geterror()}")
    result = np.asarray(out.get_pixels("float"), np.float32).reshape(height, width, c)
    return result[..., 0] if squeeze else result
