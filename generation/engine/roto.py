"""AI-assisted roto: the artist's key frames in, a matte for every frame of the shot out.

How a pass makes a frame's matte (all at the shot's proxy size except the last step):
1. flow: the two key frames around the frame are carried to it by dense optical flow (OpenCV DIS), forward
   from the key before and backward from the key after, each with a trust map (forward/backward consistency,
   so occluded and revealed pixels are not trusted; trust also fades a little per step; and a pixel is
   trusted only as far as it looks like its source in the key frame, :func:`roto_flow.photometric`, so the
   background flow drags along with a moving object, between a camel's legs, is not). Warps are
   accumulated (:func:`roto_flow.carry`): each frame samples the key matte once, where its pixels came from,
   so the matte does not blur away over tens of frames as a chain of resampled warps does;
2. fusion: the two carried mattes are blended per pixel by trust and nearness in time;
3. the shot's model, learned from the two key frames: a local colour model (:mod:`roto_colour`) decides the
   pixels near the edge that flow does not trust (occluded or revealed on the way, and, as trust fades, more
   and more far from both key frames). A tiny CNN that mends the carried matte
   (:mod:`roto_model`, ``RotoOptions.model``) is there too, off by default: the bench did not show it
   paying for its time. Islands smaller than half the smallest part drawn on the key frames are dropped, and
   so are separate parts flow did not vouch for (mostly untrusted) that lie farther from the object than the
   key frames' own parts do (:func:`part_reach`: a horse drawn in one piece has no far-off parts; a kite's
   board and lines, drawn apart from the rider, stay);
4. the cut (:mod:`roto_cut`): a GrabCut in a narrow band around the fused edge, and inside the matte where
   flow lost it, with the pixels flow carried all the way (and is sure about) fixed, decides the rest from the
   frame's own colours and edges: the background a moving object drags along, the edge where flow drifted;
5. the edge pass: a guided filter at full resolution gives soft, sub-pixel edges on a narrow band.

Steps 1-4's choices (photometric trust, colour, islands, cut) were made on six DAVIS sequences. With
``RotoOptions.self_check`` (off: measured, it misjudged dog) each segment checks them against its own key
frames first (:meth:`RotoShot.self_check`): each key is carried across the segment to the other and made a
matte by those stages and by plain flow; if plain flow wins at both keys, the segment is made by plain flow.

Corrections stick: a frame between key frames a and b depends on a, b and the plate only, so adding or fixing
key frame k recomputes exactly the frames between k's neighbouring key frames (:func:`frames_affected`);
frames before the first key (after the last) depend on that key alone. Locked frames keep the matte they had.
Everything is seeded per segment: the same inputs give the same mattes, in any order of computing.

Mattes are float32 (H, W) 0..1 at the plate's full size; frame numbers are the plate's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from generation.engine.roto_colour import colour_mend, colour_model, reliability
from generation.engine.roto_cut import cut_band
from generation.engine.roto_edge import refine_edges
from generation.engine.roto_flow import STEP_TRUST, ShotFlow, carry, propagate
from generation.engine.roto_model import TrainingFrame, mend, train_mender

ROUND_TRIPS = (4, 8, 16)  # frames out and back: short, medium and long drift for the model to learn from
MINOR_PART = 0.005  # of the largest part's area: smaller parts of a key frame are specks, not drawn parts
REACH_SLACK = 1.25  # parts move apart a little within a segment
DEFAULT_PROXY_LONG_SIDE = 854  # DAVIS' 480p: flow and the model are affordable there on two CPU cores
# The stages :meth:`RotoShot.self_check` turns off for a segment whose key frames say plain flow does better.
CHECKED_STAGES = ("photometric", "colour", "untrusted_islands", "cut")


class RotoError(ValueError):
    """A key frame (or request) the roto engine refuses; the message says which frame and why."""


def analysis_image(plate: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image for flow and the model from a plate frame.

    uint8 plates (display-referred footage such as DAVIS JPEGs) pass through. Float plates are scene-linear
    RGB: they are compressed with ``x / (1 + x)`` and a 1/2.2 power so shadows keep their texture; this is an
    analysis encoding, not a view (it never reaches anyone's eyes).
    """
    plate = np.asarray(plate)
    if plate.ndim != 3 or plate.shape[2] < 3:
        raise RotoError(f"a plate frame must be (H, W, 3) RGB, got shape {plate.shape}")
    rgb = plate[..., :3]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    linear = np.maximum(np.nan_to_num(rgb.astype(np.float32)), 0.0)
    encoded = (linear / (1.0 + linear)) ** (1 / 2.2) * 2.0  # 0.18 grey lands near mid-range
    return np.clip(encoded * 255 + 0.5, 0, 255).astype(np.uint8)


def frames_affected(keys: Iterable[int], k: int, frames: range) -> range:
    """Frames a pass recomputes when key frame ``k`` is added or changed, given the other ``keys``.

    Everything strictly between k's neighbouring key frames (or the shot's ends), k itself included.
    """
    others = sorted(set(keys) - {k})
    before = [f for f in others if f < k]
    after = [f for f in others if f > k]
    start = before[-1] + 1 if before else frames.start
    stop = after[0] if after else frames.stop
    return range(start, stop)


def _digest(matte: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(matte, np.float32).tobytes()).hexdigest()


def _resize(image: np.ndarray, size: tuple[int, int], area: bool) -> np.ndarray:
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)


@dataclass
class RotoOptions:
    """How a pass works; the defaults are what the roto bench measured best."""

    # Mend flow with the shot's CNN. Off by default: on the DAVIS bench it moved J&F by -0.03..+0.02 per
    # sequence for 5-10x the time of a pass (python -m tests.bench.roto --model measures it again).
    model: bool = False
    specks: bool = (
        True  # drop islands smaller than half the smallest part drawn on the key frames (bench: dog +0.05 J&F)
    )
    colour: bool = True  # the segment's colour model speaks where flow is not trusted (bench: +0.03..0.11 J)
    # GrabCut in the band around the fused edge decides what flow lost (roto_cut; bench: J&F dog +0.04, kite-surf +0.02)
    cut: bool = True
    edges: bool = True  # the full-resolution guided-filter edge pass
    # Trust a carried pixel only as far as it looks like its source in the key frame (roto_flow.photometric;
    # bench: camel +0.02 J&F, horsejump-high -0.07 and car-shadow -0.02 without the two below)
    photometric: bool = True
    # The photometric check with the light's change taken out (roto_flow.RELIGHT_SIGMA), for shadows and
    # reflections sliding over the object. Off: chosen on camel, kite-surf, horsejump-high every 2nd frame it
    # lost (J&F 0.900/0.682/0.848 -> 0.895/0.683/0.837); on car-shadow, whose reflections motivated it, +0.012
    relight: bool = False
    cut_interior: bool = True  # the cut may also decide the inside of the matte where flow lost it (camel +0.01)
    # drop separate parts flow did not vouch for, farther from the object than the key frames' own parts lie
    # (horsejump-high +0.14 with the photometric trust; kite-surf -0.02)
    untrusted_islands: bool = True
    # Per segment, its two key frames judge the stages above (:meth:`RotoShot.self_check`): each key is carried
    # to the other and made into a matte by the stages and by plain flow; the segment falls back to plain flow
    # if that beats the stages at both key frames. Off: on the full bench it fell back on car-shadow (J&F
    # 0.917 -> 0.933) and on dog, wrongly (0.824 -> 0.669; every 2nd frame 0.845 -> 0.702): a key carried over
    # the whole segment is a poor judge of the frames inside it, which have a key on each side.
    self_check: bool = False
    train_steps: int = 150
    model_long_side: int = 854  # the model sees context, not detail (the edge pass brings detail back)
    seed: int = 0
    device: str = "cpu"


@dataclass
class RotoShot:
    """A shot to roto: its plate frames, the flow through them (computed once) and each pass's mattes.

    ``plates``: a sequence (list, or anything with ``len`` and ``[i]``) of (H, W, 3) frames, uint8 display
    footage or float32 scene-linear RGB, all the same size; ``first_frame``: the plate's first frame number.
    ``progress(done, total, stage)`` is called as flow and passes advance.
    """

    plates: Sequence[np.ndarray]
    first_frame: int = 0
    proxy_long_side: int = DEFAULT_PROXY_LONG_SIDE
    options: RotoOptions = field(default_factory=RotoOptions)
    progress: Callable[[int, int, str], None] | None = None
    mattes: dict[int, np.ndarray] = field(default_factory=dict, init=False)
    # Per segment (key a, key b): whether its self-check fell back to plain flow, and J of both at both keys.
    checks: dict[tuple, dict] = field(default_factory=dict, init=False)
    _segments: dict[tuple, dict[int, np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.plates) < 1:
            raise RotoError("a roto shot needs at least one plate frame")
        first = np.asarray(self.plates[0])
        self.size = first.shape[:2]
        h, w = self.size
        scale = min(1.0, self.proxy_long_side / max(h, w))
        self.proxy_size = (max(8, round(h * scale)), max(8, round(w * scale)))
        self.frames = range(self.first_frame, self.first_frame + len(self.plates))
        self._proxies = [_resize(analysis_image(self._plate(i)), self.proxy_size, True) for i in range(len(self))]
        self.flow = ShotFlow.compute(self._proxies, lambda d, t: self._report(d, t, "flow"))

    def __len__(self) -> int:
        return len(self.plates)

    def _plate(self, index: int) -> np.ndarray:
        plate = np.asarray(self.plates[index])
        if plate.shape[:2] != self.size:
            raise RotoError(f"plate frame {self.first_frame + index} is {plate.shape[:2]}, the shot is {self.size}")
        return plate

    def _report(self, done: int, total: int, stage: str) -> None:
        if self.progress:
            self.progress(done, total, stage)

    # -- key frames -------------------------------------------------------------------------------------------

    def check_keyframe(self, frame: int, matte: np.ndarray) -> np.ndarray:
        """The key frame as float32 (H, W) 0..1, or :class:`RotoError` saying what is wrong with it."""
        if not isinstance(frame, int | np.integer) or frame not in self.frames:
            raise RotoError(
                f"key frame {frame} is outside the shot's frames {self.frames.start}-{self.frames.stop - 1}"
            )
        m = np.asarray(matte)
        if m.ndim == 3 and m.shape[2] == 1:
            m = m[..., 0]
        if m.ndim != 2:
            raise RotoError(f"key frame {frame} is not a matte: shape {m.shape}, expected one channel (H, W)")
        if m.shape != self.size:
            raise RotoError(
                f"key frame {frame} is {m.shape[1]}x{m.shape[0]}, the plate is {self.size[1]}x{self.size[0]}"
            )
        if not np.issubdtype(m.dtype, np.floating) and m.dtype != np.bool_:
            raise RotoError(f"key frame {frame} is {m.dtype}; give a float matte 0..1")
        m = m.astype(np.float32)
        if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise RotoError(f"key frame {frame} is not a matte: values must be finite and within 0..1")
        if m.max() < 0.5:
            raise RotoError(f"key frame {frame} is empty: nothing in it reaches 0.5")
        return m

    # -- passes -----------------------------------------------------------------------------------------------

    def pass_(self, keyframes: Mapping[int, np.ndarray], locked: Iterable[int] = ()) -> dict[int, np.ndarray]:
        """A matte for every frame from ``keyframes`` (frame → matte); frames in ``locked`` keep their last matte.

        Only segments whose bounding key frames changed since an earlier pass are recomputed. Returns
        {frame: float32 (H, W) 0..1}; the same dict is kept as :attr:`mattes`.
        """
        return dict(self.iter_pass(keyframes, locked))

    def iter_pass(
        self, keyframes: Mapping[int, np.ndarray], locked: Iterable[int] = ()
    ) -> Iterator[tuple[int, np.ndarray]]:
        """:meth:`pass_` frame by frame, in frame order, each segment computed when its first frame is due
        (so mattes can stream out while the rest of the shot computes). Key frames are checked first."""
        if not keyframes:
            raise RotoError("a roto pass needs at least one key frame")
        keys = {int(f): self.check_keyframe(int(f), m) for f, m in keyframes.items()}
        locked = {int(f) for f in locked} - set(keys)  # a key frame is the artist's own matte: it always wins
        unknown = sorted(f for f in locked if f not in self.mattes)
        if unknown:
            raise RotoError(f"frames {unknown} are locked but have no matte from an earlier pass")
        previous, self.mattes = self.mattes, {}
        order = sorted(keys)
        bounds = [None, *order, None]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            segment = self._segment(a, b, keys, locked)
            start = self.frames.start if a is None else a
            stop = self.frames.stop if b is None else b
            for f in range(start, stop):
                matte = keys[f] if f in keys else previous[f] if f in locked else segment[f]
                self.mattes[f] = matte
                yield f, matte

    def flicker_ratio(self, mattes: Mapping[int, np.ndarray]) -> float:
        """How much the mattes boil: their flow-warping error between neighbouring frames over the plate's own
        in the same place (Lai et al. 2018, as the variations' QC figure). Higher boils more; it compares passes
        of a shot, not shots (DAVIS' hand-drawn truth scores about 2 on blackswan, a matte jittered by ±2 px 8).

        Measured at proxy size on pixels the flow trusts near the matte's edge; 0 when there is nothing to measure.
        """
        ours = plate = 0.0
        i0 = self.frames.start
        for f in sorted(mattes):
            if f + 1 not in mattes:
                continue
            t = f - i0
            m0, m1 = self._proxy_matte(mattes[f]), self._proxy_matte(mattes[f + 1])
            carried, trust = self.flow.step(m0, np.ones_like(m0), t, 1)
            near = (trust > 0.5) & (np.abs(cv2.GaussianBlur(m1, (0, 0), 3) - 0.5) < 0.45)
            grey0, grey1 = (self._proxies[t + k].astype(np.float32).mean(-1) / 255 for k in (0, 1))
            warped, _ = self.flow.step(grey0, np.ones_like(grey0), t, 1)
            ours += float(np.abs(carried - m1)[near].sum())
            plate += float(np.abs(warped - grey1)[near].sum())
        return ours / plate if plate > 0 else 0.0

    def _segment(self, a: int | None, b: int | None, keys: Mapping[int, np.ndarray], locked: set[int]):
        start = self.frames.start if a is None else a + 1
        stop = self.frames.stop if b is None else b
        wanted = [f for f in range(start, stop) if f not in locked]
        if not wanted:
            return {}
        tag = (a, b, None if a is None else _digest(keys[a]), None if b is None else _digest(keys[b]))
        cached = self._segments.get(tag)
        if cached is None or any(f not in cached for f in wanted):
            cached = self._compute_segment(a, b, keys, range(start, stop))
            self._segments[tag] = cached
        return {f: cached[f] for f in wanted}

    def _proxy_matte(self, matte: np.ndarray) -> np.ndarray:
        return _resize(matte.astype(np.float32), self.proxy_size, True)

    def _carry(self, a, b, keys: Mapping[int, np.ndarray], span: range, photometric: bool, relight: bool = False):
        """Per frame of ``span``: [(matte, trust, nearness, steps)] carried from key a forward and key b backward.

        Mattes and trust are proxy-size float32; nearness is the frame's distance in time to the *other* key,
        so the nearer key weighs more; steps is how many frames the matte travelled.
        """
        carried: dict[int, list] = {f: [] for f in span}
        i0 = self.frames.start
        photo = self._proxies if photometric else None
        if a is not None:
            mattes, trusts = carry(self.flow, self._proxy_matte(keys[a]), a - i0, span.stop - i0, photo, relight)
            for f, m, t in zip(span, mattes, trusts, strict=True):
                carried[f].append((m, t, span.stop - f if b is not None else 1, f - a))
        if b is not None:
            mattes, trusts = carry(self.flow, self._proxy_matte(keys[b]), b - i0, span.start - 1 - i0, photo, relight)
            for f, m, t in zip(reversed(span), mattes, trusts, strict=True):
                carried[f].append((m, t, f - span.start + 1 if a is not None else 1, b - f))
        return carried

    def _compute_segment(self, a, b, keys, span: range) -> dict[int, np.ndarray]:
        options = self.options
        if options.self_check and a is not None and b is not None:
            options = self.self_check(a, b, keys)
        carried = self._carry(a, b, keys, span, options.photometric, options.relight)
        model = self._train(a, b, keys) if options.model else None
        ends = [f for f in (a, b) if f is not None]
        table = self._colour_table(ends, keys) if options.colour else None
        speck = min(smallest_part(self._proxy_matte(keys[f])) for f in ends) / 2
        reach = max(part_reach(self._proxy_matte(keys[f])) for f in ends) * REACH_SLACK
        out = {}
        for n, f in enumerate(span):
            fused = self._stages(f, carried[f], options, table, speck, reach, model)
            out[f] = self._finish(f, fused)
            self._report(n + 1, len(span), "matte")
        return out

    def _stages(self, f: int, carried: list, options: RotoOptions, table, speck: float, reach: float, model=None):
        """The proxy-size matte of frame ``f`` from its carried mattes: fusion, colour, model, islands, cut."""
        image = self._proxies[f - self.frames.start]
        fused, trust, seen = fuse(carried)
        if table is not None:
            # The colour model speaks where flow is not trusted: occluded or revealed on the way (the
            # consistency test) and, more and more, far from both key frames (trust fades per step).
            fused = colour_mend(table[0], image, fused, trust, table[1])
        if model is not None:
            small = self._model_image(f)
            size = small.shape[:2]
            mended = mend(model, small, _resize(fused, size, True), _resize(trust, size, True), options.device)
            fused = _resize(mended, self.proxy_size, False)
        if options.specks:
            fused = drop_specks(fused, speck)
        if options.untrusted_islands:
            fused = drop_untrusted_islands(fused, seen, reach)
        if options.cut:
            fused = cut_band(image, fused, seen, options.cut_interior)
        return fused

    def self_check(self, a: int, b: int, keys: Mapping[int, np.ndarray]) -> RotoOptions:
        """The options for segment (a, b): the pass's own, or plain flow if its key frames say the stages hurt.

        Each key frame is carried by flow across the whole segment to the other one and made into a matte twice,
        learning from the key it left only (its colour model, its parts): by the pass's stages, and with
        :data:`CHECKED_STAGES` all off (plain flow, specks dropped). J (IoU at proxy size) against the key frame
        it arrived at scores each. The segment falls back to plain flow only when that beats the full pass at
        *both* key frames (no margin to tune; one key frame alone can be luck). The key frames are the only
        truth a shot has, and a key carried over the segment's whole length meets more than any frame inside
        it. Recorded in :attr:`checks`; deterministic (the same key frames and plates, the same choice).

        Turning single stages off by the same test was measured and is not done: the differences at the two
        key frames were a few hundredths, and following them cost horsejump-high's stride-2 variant 0.01 J&F.
        """
        base = self.options
        plain = dataclasses.replace(base, **dict.fromkeys(CHECKED_STAGES, False))
        i0 = self.frames.start
        scores: dict[str, list[float]] = {"full": [], "flow": []}
        for source, target in ((a, b), (b, a)):
            key = self._proxy_matte(keys[source])
            truth = self._proxy_matte(keys[target]) >= 0.5
            stop = target - i0 + (1 if target > source else -1)
            table = self._colour_table([source], keys) if base.colour else None
            speck, reach = smallest_part(key) / 2, part_reach(key) * REACH_SLACK
            for name, options in (("full", base), ("flow", plain)):
                photo = self._proxies if options.photometric else None
                mattes, trusts = carry(self.flow, key, source - i0, stop, photo, options.relight)
                arrived = [(mattes[-1], trusts[-1], 1, abs(target - source))]
                said = table if options.colour else None
                hard = self._stages(target, arrived, options, said, speck, reach) >= 0.5
                union = np.logical_or(hard, truth).sum()
                scores[name].append(float(np.logical_and(hard, truth).sum() / union) if union else 1.0)
        fallback = all(f > s for f, s in zip(scores["flow"], scores["full"], strict=True))
        self.checks[(a, b)] = {"fallback": fallback, **{n: [round(v, 4) for v in s] for n, s in scores.items()}}
        return plain if fallback else base

    def _train(self, a, b, keys):
        """The segment's model, trained on its bounding key frames and what flow does to them.

        Drift examples with a known answer: the other key frame carried across the segment, and each key's
        own matte carried out and back again over growing distances (round trips inside the segment).
        """
        ends = [f for f in (a, b) if f is not None]
        frames = []
        for f in ends:
            other = b if f == a else a
            matte = self._proxy_matte(keys[f])
            carried = [] if other is None else [self._carried_to(keys[other], other, f)]
            away = 1 if f == a else -1
            for distance in ROUND_TRIPS:
                turn = f + away * distance
                inside = turn in self.frames and (other is None or (turn - other) * away < 0)
                if inside:
                    out, out_trust = self._carried_to(matte, f, turn, proxy=True)
                    back, back_trust = self._carried_to(out, turn, f, proxy=True)
                    carried.append((back, back_trust * out_trust))
            size = self._model_image(f).shape[:2]
            small = [(_resize(m, size, True), _resize(t, size, True)) for m, t in carried]
            frames.append(TrainingFrame(self._model_image(f), _resize(matte, size, True), small))
        seed = self.options.seed * 1_000_003 + sum(ends) * 7919 + len(ends)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # determinism and a fair share of a small machine
        try:
            return train_mender(frames, seed=seed, steps=self.options.train_steps, device=self.options.device)
        finally:
            torch.set_num_threads(threads)

    def _colour_table(self, ends: Sequence[int], keys) -> tuple[np.ndarray, float]:
        """The segment's colour model from its key frames ``ends``, and how reliable it proved on them."""
        images = [self._proxies[f - self.frames.start] for f in ends]
        mattes = [self._proxy_matte(keys[f]) for f in ends]
        if len(ends) == 2:  # each key frame judges the model learned from the other
            crossed = [
                reliability(colour_model([images[i]], [mattes[i]]), images[1 - i], mattes[1 - i]) for i in (0, 1)
            ]
            score = min(crossed)
        else:
            score = reliability(colour_model(images, mattes), images[0], mattes[0])
        return colour_model(images, mattes), score

    def _model_image(self, frame: int) -> np.ndarray:
        h, w = self.proxy_size
        scale = min(1.0, self.options.model_long_side / max(h, w))
        return _resize(self._proxies[frame - self.frames.start], (round(h * scale), round(w * scale)), True)

    def _carried_to(self, matte: np.ndarray, source: int, target: int, proxy: bool = False):
        """(matte, trust) at proxy size carried by flow from frame ``source`` to frame ``target``."""
        i0 = self.frames.start
        start = matte if proxy else self._proxy_matte(matte)
        mattes, trusts = propagate(self.flow, start, source - i0, target - i0 + (1 if target > source else -1))
        return mattes[-1], trusts[-1]

    def _finish(self, frame: int, proxy_matte: np.ndarray) -> np.ndarray:
        if not self.options.edges:
            return _resize(proxy_matte, self.size, False)
        plate01 = analysis_image(self._plate(frame - self.frames.start)).astype(np.float32) / 255.0
        return refine_edges(plate01, proxy_matte)


def _parts(matte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count, labels, stats, _ = cv2.connectedComponentsWithStats((matte >= 0.5).astype(np.uint8), connectivity=8)
    return labels, stats[1:, cv2.CC_STAT_AREA]


def smallest_part(matte: np.ndarray) -> float:
    """Area in pixels of the smallest separate part of a key frame's matte (0 for an empty matte)."""
    _, areas = _parts(matte)
    return float(areas.min()) if areas.size else 0.0


def drop_specks(matte: np.ndarray, min_area: float) -> np.ndarray:
    """``matte`` without the islands smaller than ``min_area`` pixels: colour and flow leave specks the artist
    never drew, and each one is a false edge."""
    labels, areas = _parts(matte)
    small = np.flatnonzero(areas < min_area) + 1
    if small.size == 0:
        return matte
    out = matte.copy()
    out[np.isin(labels, small)] = 0.0
    return out


def _distance_from_main(labels: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Per part: its distance in pixels from the largest part (0 for the largest)."""
    main = np.argmax(areas) + 1
    far = cv2.distanceTransform((labels != main).astype(np.uint8), cv2.DIST_L2, 5)
    others = (labels > 0) & (labels != main)  # small next to the frame: np.minimum.at is slow per element
    near = np.full(areas.size + 1, np.inf, np.float32)
    np.minimum.at(near, labels[others], far[others])
    near[main] = 0.0
    return near[1:]


def part_reach(matte: np.ndarray, least: float = MINOR_PART) -> float:
    """How far from its largest part a key frame's other parts (≥ ``least`` of the largest's area) lie, in pixels
    (0 for a matte in one piece): a kite's lines and board are drawn apart from the rider, a horse is one piece."""
    labels, areas = _parts(matte)
    if areas.size < 2:
        return 0.0
    distance = _distance_from_main(labels, areas)
    minor = areas >= least * areas.max()
    minor[np.argmax(areas)] = False
    return float(distance[minor].max()) if minor.any() else 0.0


def drop_untrusted_islands(matte: np.ndarray, seen: np.ndarray, reach: float, least: float = 0.5) -> np.ndarray:
    """``matte`` without the separate parts that flow mostly did not vouch for (mean ``seen`` below ``least``)
    and that lie farther than ``reach`` from the largest part (the key frames' own parts lie within it)."""
    labels, areas = _parts(matte)
    if areas.size < 2:
        return matte
    means = np.bincount(labels.ravel(), weights=seen.ravel(), minlength=areas.size + 1)[1:] / np.maximum(areas, 1)
    untrusted = means < least
    untrusted[np.argmax(areas)] = False
    if not untrusted.any():
        return matte
    drop = np.flatnonzero(untrusted & (_distance_from_main(labels, areas) > reach)) + 1
    if drop.size == 0:
        return matte
    out = matte.copy()
    out[np.isin(labels, drop)] = 0.0
    return out


def fuse(carried: Sequence[tuple[np.ndarray, np.ndarray, float, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend carried (matte, trust, nearness, steps) per pixel by trust × nearness.

    Returns float32 (H, W) arrays: the matte; its trust (0..1, fading with distance); and ``seen``, 1 where
    some carrier came all the way without failing a consistency test (occlusion only, no fading): the colour
    model speaks where that is 0, not merely where a key frame is far away.
    Where no carrier is trusted the plain mean is used (so a later stage still sees a guess) with trust 0.
    """
    mattes = np.stack([c[0] for c in carried])
    trusts = np.stack([c[1] for c in carried]).astype(np.float32)
    weights = trusts * np.array([c[2] for c in carried], np.float32)[:, None, None]
    total = weights.sum(0)
    blended = np.where(total > 1e-6, (weights * mattes).sum(0) / np.maximum(total, 1e-6), mattes.mean(0))
    fading = np.array([STEP_TRUST ** c[3] for c in carried], np.float32)[:, None, None]
    seen = np.clip((trusts / fading).max(0), 0, 1)
    return blended.astype(np.float32), trusts.max(0), seen
