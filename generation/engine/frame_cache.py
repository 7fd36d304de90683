"""Plate frames read once per request and shared by its variations: bounded, process-wide caches.

A request's variations run one after another on the same worker and each reads every plate frame
(its camera track, its card, its frames). :data:`PLATES` keeps the decoded arrays, keyed by the file's
path, size and mtime and by how it was read (channels, colour conversion), within a byte budget; a
half EXR read into the space it is in is decoded as half (no float32 round trip), kept so and handed back
as the float32 a float read gives, as is any float frame that half holds exactly. A plate frame's alpha
comes from the same decode as its colour (:func:`partial_alpha`: the camera track's look at it).
:data:`FLOWS` keeps the plate's own flow between frames,
which every variation's flicker figure measures again (:mod:`qc`), and :data:`PLATE_SIDES` the plate's half of
each frame's flicker inputs (its working-size luminance and matte); :data:`DERIVED` what the variations derive
alike from the mattes and the track (the card's generated region). :class:`Lru` holds the small memories: each
matte frame's box (:func:`matte_box`, so the card, its check and every variation's frames find it once) and
which plate frames are opaque (:data:`OPAQUE`); :mod:`registry` keeps its loaded models in one too.

A shot's matte is kept in its plate's group (:meth:`plan.VariationPlan.read_matte`). The budget may be
smaller than a whole shot, and variations read a shot front to back, so plain
LRU would evict every frame just before the next variation asks for it. So a full cache makes room
only by dropping entries of *other* sequences (least recently used first) and otherwise keeps what it
has: the first frames of the shot stay shared, the rest are read again.

:meth:`FrameCache.get_or_read` hands out a fresh array, so a caller that composites in place never
changes what the next variation reads: the bytes are those of a fresh read.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

# Bytes of decoded frames kept: a 96-frame 2K shot's half RGB plate and its matte (1.56 GiB) with room to spare.
DEFAULT_BUDGET = 2048 * 2**20


class FrameCache:
    """Decoded frames within ``budget`` bytes (see the module docstring for what is dropped)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._items: OrderedDict[Hashable, tuple[Hashable, object]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_read(
        self, path: str, how: Hashable, read: Callable[[], np.ndarray], group: Hashable = None
    ) -> np.ndarray:
        """``read()``'s array for ``path`` read ``how`` (a fresh array; ``read`` runs when it is not kept or
        the file changed). ``group``: the sequence the frame belongs to (its pattern), whose frames are never
        dropped to make room for each other."""
        try:
            st = os.stat(path)
        except OSError:
            return read()  # let the reader say what is wrong with it
        key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, how)
        found = self._get(key)
        if found is not None:
            return found.astype(np.float32) if found.dtype == np.float16 else found.copy()
        array = read()
        if array.dtype == np.float16:  # decoded as stored (frames.read_channels(half=True)): kept as it is
            self._put(key, group, array)
            return array.astype(np.float32)
        kept = _compact(array)
        self._put(key, group, kept)
        return array.copy() if kept is array else array

    def get_or_make(self, key: Hashable, make: Callable[[], tuple], group: Hashable) -> tuple:
        """``make()``'s tuple (arrays and numbers) for ``key``, handed out as kept: the caller must not write to it."""
        found = self._get(key)
        if found is not None:
            return found
        value = make()
        self._put(key, group, value)
        return value

    def _get(self, key: Hashable):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def _put(self, key: Hashable, group: Hashable, value) -> None:
        size = _nbytes(value)
        if size > self.budget:
            return
        with self._lock:
            if key in self._items:
                return
            for old in [k for k, (g, _) in self._items.items() if g != group]:
                if self._bytes + size <= self.budget:
                    break
                self._bytes -= _nbytes(self._items.pop(old)[1])
            if self._bytes + size > self.budget:
                return  # keep what we have (see the module docstring)
            self._items[key] = (group, value)
            self._bytes += size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes


def _nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    return sum(int(v.nbytes) for v in value if isinstance(v, np.ndarray)) + 64


def _compact(array: np.ndarray) -> np.ndarray:
    """``array`` as float16 when that holds it exactly, else itself."""
    if array.dtype != np.float32:
        return array
    half = array.astype(np.float16)
    return half if np.array_equal(half.astype(np.float32), array) else array


PLATES = FrameCache()
FLOWS = FrameCache(768 * 2**20)  # the plate's own flow between frames, which every variation's flicker measures
# The flicker meter's plate half of each frame (working-size plate luminance and matte, ~3.7 MB a 2K frame).
PLATE_SIDES = FrameCache(512 * 2**20)
# Each plate frame's first variation proxy, whose pixels its matte's tiles do not reach the request's other
# variations copy (frame_writer.make_frame_proxy; 1.5 MB a 960-wide proxy of a 2K frame).
PROXIES = FrameCache(256 * 2**20)
# What a request's variations derive alike from its mattes and track (the card's generated region, model size).
DERIVED = FrameCache(64 * 2**20)


def read_plate(path: str, names: tuple[str, ...], colour: dict, group: Hashable = None) -> np.ndarray:
    """:func:`frames.read_channels` of ``path`` (``colour``: its colour keywords) through :data:`PLATES`."""
    how = ("plate", tuple(names), tuple(sorted(colour.items())))
    return PLATES.get_or_read(path, how, lambda: _decode_plate(path, tuple(names), colour, group), group=group)


def _decode_plate(path: str, names: tuple[str, ...], colour: dict, group: Hashable) -> np.ndarray:
    """:func:`frames.read_channels` of ``names``; a plate frame with an alpha ``names`` leave out has it read in
    the same decode (a zip EXR decompresses every channel of a chunk whichever are asked for) and noted for
    :func:`partial_alpha`, so the camera track's look at the alpha decodes the frame no second time."""
    from generation.engine import frames

    pixels, alpha = frames.read_with_alpha(path, names, half=True, **colour)
    if alpha is not None:
        _note_alpha(path, alpha, group)
    return pixels


def read_matte(path: str, group: Hashable = None) -> np.ndarray:
    """:func:`frames.read_matte` of ``path`` through :data:`PLATES`."""
    from generation.engine import frames

    return PLATES.get_or_read(path, ("matte",), lambda: frames.read_matte(path, half=True), group=group)


class Lru:
    """At most ``size`` values by key, the least recently used dropped first; thread-safe. The engine's small
    process-wide memories (a matte frame's box, a plate frame's opacity) and its few loaded models use it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], object]):
        """The value kept for ``key``, else ``make()``'s (made outside the lock, then kept)."""
        found = self.get(key, _MISSING)
        if found is not _MISSING:
            return found
        value = make()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_MISSING = object()
MATTE_BOXES = Lru(65_536)  # a box is a few dozen bytes: every frame of many shots
OPAQUE = Lru(4096)  # plate frames whose alpha is full (so not an exclusion of the camera track)
_OPAQUE_MEAN = 0.98  # an alpha whose mean is below this is partial (an element render over nothing)


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


def matte_box(path: str, matte: Callable[[], np.ndarray], origin) -> object:
    """:func:`frames.alpha_bbox` of the matte file ``path`` (``matte()`` reads it, only when its box is not
    kept or the file changed) placed at ``origin``: a Window, or None for an empty matte."""
    from generation.engine import frames

    try:
        key = (*_file_key(path), origin)
    except OSError:
        return frames.alpha_bbox(matte(), origin)  # let the reader say what is wrong with it
    return MATTE_BOXES.get_or_make(key, lambda: frames.alpha_bbox(matte(), origin))


def clear_matte_boxes() -> None:
    MATTE_BOXES.clear()


def partial_alpha(path: str) -> np.ndarray | None:
    """The plate frame's own alpha (H, W) when it is partial (what it covers moves on its own: not the camera's),
    None when it is full. Decoded only when :func:`read_plate` has not seen it already: an opaque frame is
    remembered by file (path, size, mtime) in :data:`OPAQUE`, a partial alpha kept in :data:`PLATES`."""
    from generation.engine import frames

    key = _file_key(path)
    if OPAQUE.get(key):
        return None
    alpha = PLATES.get_or_read(path, ("alpha",), lambda: frames.read_channels(path, ["A"])[..., 0])
    if float(alpha.mean()) < _OPAQUE_MEAN:
        return alpha
    OPAQUE.put(key, True)
    return None


def _note_alpha(path: str, alpha: np.ndarray, group: Hashable) -> None:
    """What :func:`partial_alpha` would find of ``alpha``, decoded with the plate's colour channels."""
    if float(alpha.mean()) < _OPAQUE_MEAN:
        PLATES.get_or_read(path, ("alpha",), lambda: alpha, group=group)
    else:
        OPAQUE.put(_file_key(path), True)
