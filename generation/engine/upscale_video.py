"""Multi-frame upscaling: a frame of a sequence upscaled with the sub-pixel information of its neighbours.

A single low-resolution frame has lost what its box filter averaged away; its neighbours in a moving shot sampled
the same scene at other sub-pixel offsets, so together they hold real detail the frame alone lacks (classic
multi-frame super-resolution: Irani & Peleg's iterative back-projection, with robust weights as in Farsiu et al.).
Here, for the reference frame ``ref`` of ``lows``:

1. every frame is upscaled by the show upscaler (:func:`upscale.upscale`; Lanczos-3 without one);
2. optical flow (OpenCV DIS) from each neighbour's upscale to the reference's, at the output resolution, its
   patches matched down to the input's own resolution (:func:`flow_level`: finer, the upscales' detail is the
   upscaler's guess, a little different in every frame), with a forward-backward consistency check: where the
   two flows disagree by more than ``fb_threshold`` pixels (occlusion, a flow failure) or the warp leaves the
   frame, that neighbour is not used;
3. the output ``X`` starts as the reference's upscale and is refined by ``iterations`` Adam steps on
   ``Σ_k ‖box(warp_k(X)) − low_k‖²`` (in a 1/2.2 power encoding, so the error weighs as it is seen) plus
   ``prior`` × ``‖X − X₀‖²``: what every frame saw must be what the output, moved and box-filtered, gives back,
   without straying far from the single-frame answer where the frames say nothing. Each neighbour's term is
   weighted by how alike its sharpness is to the reference's (``sharpness_sigma``: the Laplacian's energy of the
   two low-resolution frames; a fast pan blurs some frames and not others, and a neighbour sharper or blurrier
   than the reference is not its picture moved); and per low-resolution pixel by a structure check
   (``structure_window``: the local correlation of what the neighbour saw with the reference's single-frame answer
   moved there; water or spray whose ripples changed between the frames passes the flow check but does not
   correlate, and there the neighbour falls back to the single-frame answer); and by its distance in time
   (``distance_sigma``: a Gaussian in frames, so a wide window reads far neighbours without letting them outvote
   the near ones, whose picture is most nearly the reference's moved). The term is still normalised by the
   trusted mask alone, so a down-weighted neighbour gives way to the prior.

The degradation model is the one the show upscaler is trained on (:func:`upscale_training.degrade`: a box
downscale by ``factor``). The recipe's numbers (:class:`MultiFrameConfig`) were chosen on frames of the bench's
*training* sequences only (frames not in the upscaler's manifest), never on its held-out ones.

No Django. Pixels in and out are float32 (H, W, 3) scene-linear; deterministic for a thread count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from generation.engine import upscale
from generation.engine.upscale_params import MULTI_FRAME_RADIUS

GAMMA = 1 / 2.2
_FLOOR = 1e-5


@dataclass(frozen=True)
class MultiFrameConfig:
    radius: int = MULTI_FRAME_RADIUS  # neighbours each side of the reference frame
    iterations: int = 40
    lr: float = 0.004
    prior: float = 4.0  # 5 before 2026-12-04 (with the flow at half the output's resolution)
    fb_threshold: float = 1.0  # output pixels
    residual_threshold: float = 0.0  # encoded units; 0: off
    robust_scale: float = 0.0  # encoded units: a neighbour's pixel weighs 1 / (1 + (r / scale)²); 0: off (it lost)
    robust_from: int = 10  # the step from which the weights are re-estimated (every step after it)
    robust_window: int = 3  # low-resolution pixels: the residual's neighbourhood the weight reads (odd)
    sharpness_sigma: float = 0.15  # a neighbour weighs exp(-ln²(its detail / the reference's) / 2σ²); 0: off
    structure_window: int = 5  # low-resolution pixels (odd): the local structure check's window; 0: off
    structure_floor: float = 0.75  # local correlation at or under which a neighbour's pixel gets no weight (0.7 before 2026-12-04)
    structure_full: float = 0.95  # local correlation from which it gets its full weight
    distance_sigma: float = 4.0  # frames: a neighbour d frames away weighs exp(-d² / 2σ²); 0: off
    # DIS's finest pyramid level (0: the output's resolution; each level halves it). None: the input's own
    # resolution (log2 of the factor: 2 at ×4); 1 before 2026-12-04 (half the output's)
    flow_scale: int | None = None


def _grey8(rgb: np.ndarray) -> np.ndarray:
    """8-bit display-ish luma for the flow (a 1/2.2 power of Rec.709-weighted scene-linear RGB)."""
    luma = np.maximum(rgb, 0.0) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return np.ascontiguousarray(np.clip(luma ** GAMMA * 255 + 0.5, 0, 255).astype(np.uint8))


def _flow(a8: np.ndarray, b8: np.ndarray, finest: int) -> np.ndarray:
    """DIS flow f with a(q) ≈ b(q + f(q)), float32 (H, W, 2) in pixels: the medium preset, its patches matched
    down to the pyramid level ``finest`` (each level halves the resolution; the preset's own is 1)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(finest)
    return dis.calc(a8, b8, None)


def flow_level(factor: int, config: MultiFrameConfig) -> int:
    """The finest pyramid level the flows are matched at: ``config.flow_scale``, or the input's own resolution.
    Finer than the input, the single-frame upscales' detail is the upscaler's guess, a little different in every
    frame, and matching it moves the flow off the scene's motion."""
    return config.flow_scale if config.flow_scale is not None else max(int(round(np.log2(factor))), 0)


def _grid(flow: np.ndarray) -> torch.Tensor:
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    gx = (xs + flow[..., 0]) * 2 / max(w - 1, 1) - 1
    gy = (ys + flow[..., 1]) * 2 / max(h - 1, 1) - 1
    return torch.from_numpy(np.stack([gx, gy], -1))[None]


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]


def _observation(neighbour8: np.ndarray, ref8: np.ndarray, low: np.ndarray, factor: int,
                 fb_threshold: float, finest: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sampling grid from the neighbour's pixels into the output, low-resolution mask of trusted pixels, low)."""
    to_ref, from_ref = _flow(neighbour8, ref8, finest), _flow(ref8, neighbour8, finest)
    grid = _grid(to_ref)
    back = F.grid_sample(_tensor(from_ref), grid, align_corners=True, padding_mode="border")[0].numpy()
    disagreement = np.linalg.norm(to_ref + back.transpose(1, 2, 0), axis=-1)
    inside = (grid.abs() <= 1).all(-1)[0].numpy()
    trusted = torch.from_numpy(((disagreement < fb_threshold) & inside).astype(np.float32))[None, None]
    mask = (F.avg_pool2d(trusted, factor) > 0.999).float()
    return grid, mask, _tensor(low)


def _encoded(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, _FLOOR) ** GAMMA


def _agrees(start: torch.Tensor, grid: torch.Tensor, low: torch.Tensor, factor: int,
            config: MultiFrameConfig) -> torch.Tensor:
    """Low-resolution mask of a neighbour's pixels that the single-frame answer, moved there, already nearly
    explains: where it does not (water, smoke, a flow that slid), the flow is not trusted."""
    moved = F.grid_sample(start, grid, mode="bilinear", padding_mode="border", align_corners=True)
    error = (_encoded(F.avg_pool2d(moved, factor)) - _encoded(low)).abs().mean(1, keepdim=True)
    return (error < config.residual_threshold).float()


def _robust_weight(error: torch.Tensor, config: MultiFrameConfig) -> torch.Tensor:
    """Per low-resolution pixel, the Cauchy weight of a neighbour's residual (its squared error over the channels,
    averaged over ``robust_window``²): a flow failure (water, spray, an occlusion the check missed) is spatially
    coherent and loses weight smoothly; a lone edge pixel the single-frame answer got wrong keeps most of it."""
    r2 = (error * error).mean(1, keepdim=True)
    if config.robust_window > 1:
        r2 = F.avg_pool2d(r2, config.robust_window, stride=1, padding=config.robust_window // 2,
                          count_include_pad=False)
    return 1.0 / (1.0 + r2 / config.robust_scale ** 2)


def _local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    return F.avg_pool2d(x, window, stride=1, padding=window // 2, count_include_pad=False)


_STRUCTURE_C = 0.03**2 / 2  # SSIM's c3 = c2 / 2 for a [0, 1] range: flat windows read as agreeing


def _structure_weight(start: torch.Tensor, grid: torch.Tensor, low: torch.Tensor, factor: int,
                      config: MultiFrameConfig) -> torch.Tensor:
    """Low-resolution weight of a neighbour's pixels from the local correlation (SSIM's structure term, on the
    encoded luma over ``structure_window``²) of what it saw with the reference's single-frame answer moved there
    and box-filtered. A rigid, well-tracked region correlates (its residual at edges is new sub-pixel information,
    not an error, and keeps its weight); water, spray or smoke whose pattern changed between the frames does not,
    and there the neighbour gives way to the prior (the single-frame output). Linear from ``structure_floor``
    (weight 0) to ``structure_full`` (weight 1)."""
    moved = F.grid_sample(start, grid, mode="bilinear", padding_mode="border", align_corners=True)
    a = (_encoded(F.avg_pool2d(moved, factor)) * _LUMA).sum(1, keepdim=True)
    b = (_encoded(low) * _LUMA).sum(1, keepdim=True)
    w = config.structure_window
    ma, mb = _local_mean(a, w), _local_mean(b, w)
    va = (_local_mean(a * a, w) - ma * ma).clamp(min=0.0)
    vb = (_local_mean(b * b, w) - mb * mb).clamp(min=0.0)
    cov = _local_mean(a * b, w) - ma * mb
    correlation = (cov + _STRUCTURE_C) / (torch.sqrt(va * vb) + _STRUCTURE_C)
    span = max(config.structure_full - config.structure_floor, 1e-6)
    return ((correlation - config.structure_floor) / span).clamp(0.0, 1.0)


_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])[None, :, None, None]


def _detail(low: torch.Tensor) -> torch.Tensor:
    """Per low-resolution pixel, the squared Laplacian of the encoded luma: what motion blur takes away."""
    return F.conv2d((_encoded(low) * _LUMA).sum(1, keepdim=True), _LAPLACE, padding=1) ** 2


def _sharpness_weight(low: torch.Tensor, theirs: float, config: MultiFrameConfig) -> float:
    """A neighbour's weight from how its detail compares with the reference's, over the whole frames: a frame
    blurred by a fast camera move (or sharper than a motion-blurred reference) is not the reference's picture
    moved, and back-projecting it puts in detail the reference never had (or takes out what it has). ``theirs``:
    the reference's mean detail (:func:`_detail`), read once per refinement."""
    ours = float(_detail(low).mean())
    floor = 0.1 * theirs + 1e-12  # a flat frame (no detail at all) is no ratio to read
    ratio = np.log((ours + floor) / (theirs + floor))
    return float(np.exp(-ratio ** 2 / (2 * config.sharpness_sigma ** 2)))


def refine(lows: list[np.ndarray], singles: list[np.ndarray], ref: int, factor: int,
           config: MultiFrameConfig = MultiFrameConfig()) -> np.ndarray:
    """The multi-frame refinement of ``singles[ref]`` (see the module docstring). ``lows``: float32 (h, w, 3)
    scene-linear frames; ``singles``: their single-frame upscales, (h·factor, w·factor, 3). Returns the output
    (h·factor, w·factor, 3), float32 scene-linear."""
    grey = [_grey8(s) for s in singles]
    finest = flow_level(factor, config)
    observations = []
    for k, low in enumerate(lows):
        if k == ref:
            observations.append((None, torch.ones(1, 1, *low.shape[:2]), _tensor(low)))
        else:
            observations.append(_observation(grey[k], grey[ref], low, factor, config.fb_threshold, finest))
    start = _tensor(np.maximum(singles[ref], 0.0))
    start_encoded = _encoded(start)
    if config.residual_threshold:
        observations = [(grid, mask if grid is None else mask * _agrees(start, grid, low, factor, config), low)
                        for grid, mask, low in observations]
    structure = [None if grid is None or not config.structure_window
                 else _structure_weight(start, grid, low, factor, config) for grid, mask, low in observations]
    # each observation's weight: its trusted mask times how far it is the reference's picture moved; the data
    # term is normalised by the mask alone, so a down-weighted neighbour gives way to the prior
    ref_detail = float(_detail(observations[ref][2]).mean()) if config.sharpness_sigma else 0.0
    base_weights = [mask if grid is None or not config.sharpness_sigma
                    else mask * _sharpness_weight(low, ref_detail, config)
                    for grid, mask, low in observations]
    base_weights = [w if s is None else w * s for w, s in zip(base_weights, structure, strict=True)]
    if config.distance_sigma:  # the further in time, the more the scene moved in ways the flow does not model
        base_weights = [w * float(np.exp(-(k - ref) ** 2 / (2 * config.distance_sigma ** 2)))
                        for k, w in enumerate(base_weights)]
    x = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=config.lr)
    weights: list[torch.Tensor | None] = [None] * len(observations)
    for step in range(config.iterations):
        optimiser.zero_grad(set_to_none=True)
        loss = config.prior * ((_encoded(x) - start_encoded) ** 2).mean()
        for k, (grid, mask, low) in enumerate(observations):
            moved = x if grid is None else F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                                         align_corners=True)
            error = _encoded(F.avg_pool2d(moved, factor)) - _encoded(low)
            if grid is not None and config.robust_scale and step >= config.robust_from:
                weights[k] = _robust_weight(error.detach(), config)
            weight = base_weights[k] if weights[k] is None else base_weights[k] * weights[k]
            loss = loss + (weight * error * error).sum() / mask.sum().clamp(min=1.0)
        loss.backward()
        optimiser.step()
    return x.detach()[0].numpy().transpose(1, 2, 0).copy()


def window(index: int, count: int, radius: int) -> list[int]:
    """The frame indices around ``index`` (within ``radius``, inside ``[0, count)``)."""
    return [j for j in range(index - radius, index + radius + 1) if 0 <= j < count]


def upscale_frames(
    lows: list[np.ndarray],
    model_dir: str | os.PathLike | None,
    *,
    factor: int,
    indices: list[int] | None = None,
    config: MultiFrameConfig = MultiFrameConfig(),
    device: str = "cpu",
) -> dict[int, np.ndarray]:
    """Multi-frame upscale of the frames ``indices`` (default: all) of the sequence ``lows`` (float32 (h, w, 3)
    scene-linear, one size): ``{index: (h·factor, w·factor, 3)}``. Each frame's single-frame upscale (the show
    upscaler at ``model_dir``, Lanczos-3 when None) is made once and shared by the windows that need it."""
    if not lows or len({low.shape for low in lows}) != 1:
        raise upscale.UpscaleError("a multi-frame upscale needs one or more frames of one size")
    h, w = lows[0].shape[:2]
    wanted = list(range(len(lows))) if indices is None else list(indices)
    singles: dict[int, np.ndarray] = {}

    def single(j: int) -> np.ndarray:
        if j not in singles:
            up = (upscale.upscale(lows[j], model_dir, factor=factor, device=device) if model_dir is not None
                  else upscale.lanczos(lows[j], w * factor, h * factor))
            singles[j] = np.maximum(up, 0.0)
        return singles[j]

    out = {}
    for i in wanted:
        idx = window(i, len(lows), config.radius)
        out[i] = refine([lows[j] for j in idx], [single(j) for j in idx], idx.index(i), factor, config)
    return out


def upscale_to(
    frames_rgb: list[np.ndarray],
    ref: int,
    width: int,
    height: int,
    model_dir: str | os.PathLike | None,
    *,
    config: MultiFrameConfig = MultiFrameConfig(),
    device: str = "cpu",
) -> np.ndarray:
    """``frames_rgb[ref]`` (float32 (H, W, 3) scene-linear, its neighbours beside it, one size) to (height, width,
    3): the multi-frame upscale at the show upscaler's largest factor that does not overshoot, then Lanczos-3 the
    rest of the way (as :func:`upscale.upscale_to`, which it is when no factor fits or there are no neighbours)."""
    rgb = np.asarray(frames_rgb[ref], np.float32)
    factors = upscale.read_upscaler_card(model_dir).factors if model_dir is not None else upscale.FACTORS
    need = min(width / rgb.shape[1], height / rgb.shape[0])
    fitting = [f for f in sorted(factors) if f <= need + 1e-6]
    if not fitting or len(frames_rgb) < 2:
        return upscale.upscale_to(rgb, width, height, model_dir, device=device)
    lows = [np.ascontiguousarray(np.asarray(f, np.float32)[..., :3]) for f in frames_rgb]
    out = upscale_frames(lows, model_dir, factor=fitting[-1], indices=[ref],
                         config=MultiFrameConfig(**{**config.__dict__, "radius": len(lows)}), device=device)[ref]
    return out if out.shape[:2] == (height, width) else upscale.lanczos(out, width, height)
