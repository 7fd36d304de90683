"""Multi-frame upscaling: the neighbours' sub-pixel information, and nothing when there is none."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generation.engine import upscale, upscale_video

HR, FACTOR = 128, 4
SHIFTS = [(0, 0), (1, 2), (2, 1), (3, 3), (2, 3), (1, 1), (3, 0)]  # output pixels: quarter-pixel steps of the input


def _scene(seed: int, size: int) -> np.ndarray:
    """A textured scene-linear picture: blurred noise plus hard-edged squares, float32 (size, size, 3)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand((1, 3, size, size), generator=g)
    kernel = torch.exp(-((torch.arange(7) - 3.0) ** 2) / 2.0)
    kernel = (kernel[:, None] * kernel[None, :] / kernel.sum() ** 2)[None, None].repeat(3, 1, 1, 1)
    texture = F.conv2d(noise, kernel, padding=3, groups=3)[0].numpy().transpose(1, 2, 0)
    picture = 0.05 + 0.4 * texture
    for k in range(12):
        y, x = torch.randint(0, size - 24, (2,), generator=g).tolist()
        picture[y:y + 9 + k, x:x + 13] += 0.3
    return np.ascontiguousarray(picture.astype(np.float32))


def _box(hr: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(hr.transpose(2, 0, 1).copy())[None]
    return F.avg_pool2d(t, FACTOR)[0].numpy().transpose(1, 2, 0).copy()


def _sequence(shifts) -> tuple[np.ndarray, list[np.ndarray]]:
    """The reference frame's original and every frame's ×4-smaller box-filtered input (a camera panning by
    ``shifts``, output pixels)."""
    canvas = _scene(3, HR + 8)
    frames = [canvas[4 + dy:4 + dy + HR, 4 + dx:4 + dx + HR] for dy, dx in shifts]
    return np.ascontiguousarray(frames[0]), [_box(f) for f in frames]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    inner = (slice(8, -8), slice(8, -8))  # the border, where a pan brings pixels no frame saw, is not scored
    return float(10 * np.log10(1.0 / np.mean((a[inner] - b[inner]) ** 2)))


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_the_neighbours_sub_pixel_shifts_add_detail_a_single_frame_lacks() -> None:
    original, lows = _sequence(SHIFTS)
    single = upscale.lanczos(lows[0], HR, HR)
    multi = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[0])[0]
    assert multi.shape == (HR, HR, 3)
    assert _psnr(multi, original) > _psnr(single, original) + 1.5  # measured +2.68 dB (+2.05 with the recipe before 2026-12-04 19:40)


def test_a_still_sequence_holds_nothing_more_than_its_frame() -> None:
    """The QC of the figure above: the same frames without motion give no new information, and no gain."""
    original, lows = _sequence([(0, 0)] * len(SHIFTS))
    moving = _sequence(SHIFTS)[1]
    single = upscale.lanczos(lows[0], HR, HR)
    still = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[0])[0]
    panned = upscale_video.upscale_frames(moving, None, factor=FACTOR, indices=[0])[0]
    still_gain = _psnr(still, original) - _psnr(single, original)
    assert still_gain < 0.5  # measured +0.17 (the frame's own back-projection)
    assert _psnr(panned, original) - _psnr(single, original) > still_gain + 1.2


def test_the_multi_frame_upscale_is_deterministic() -> None:
    _, lows = _sequence(SHIFTS)
    a = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[3])[3]
    b = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[3])[3]
    assert a.tobytes() == b.tobytes()


def test_each_frame_uses_the_neighbours_within_the_radius_inside_the_sequence() -> None:
    assert upscale_video.window(0, 10, 3) == [0, 1, 2, 3]
    assert upscale_video.window(5, 10, 3) == [2, 3, 4, 5, 6, 7, 8]
    assert upscale_video.window(9, 10, 2) == [7, 8, 9]
    with pytest.raises(upscale.UpscaleError):
        upscale_video.upscale_frames([np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32)], None,
                                     factor=FACTOR)


def _motion_blurred(hr: np.ndarray, length: int) -> np.ndarray:
    """A horizontal box blur of ``length`` output pixels: a fast camera pan's motion blur."""
    t = torch.from_numpy(hr.transpose(2, 0, 1).copy())[:, None]
    kernel = torch.full((1, 1, 1, length), 1.0 / length)
    return F.conv2d(t, kernel, padding=(0, length // 2))[:, 0].numpy().transpose(1, 2, 0).copy()


def test_neighbours_sharper_than_a_motion_blurred_frame_lose_their_weight() -> None:
    """A frame blurred by a fast pan among sharp neighbours: they are not its picture moved, and back-projecting
    them puts in detail the frame never had. Their detail (the Laplacian's energy) against the frame's takes their
    weight away. The QC: with the weight off (``sharpness_sigma=0``) the same frames lose 1.4 dB, and frames alike
    in sharpness keep their weight."""
    canvas = _scene(3, HR + 8)
    crops = [canvas[4 + dy:4 + dy + HR, 4 + dx:4 + dx + HR] for dy, dx in SHIFTS]
    original = _motion_blurred(crops[0], 13)
    lows = [_box(original)] + [_box(c) for c in crops[1:]]
    single = upscale.lanczos(lows[0], HR, HR)
    weighted = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[0])[0]
    off = upscale_video.MultiFrameConfig(sharpness_sigma=0.0)
    unweighted = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[0], config=off)[0]
    assert _psnr(weighted, original) > _psnr(unweighted, original) + 1.0  # measured +2.08 dB
    assert _psnr(weighted, original) > _psnr(single, original)  # measured +0.19 dB
    sharp_original, sharp = _sequence(SHIFTS)
    kept = upscale_video.upscale_frames(sharp, None, factor=FACTOR, indices=[0])[0]
    unkept = upscale_video.upscale_frames(sharp, None, factor=FACTOR, indices=[0], config=off)[0]
    assert abs(_psnr(kept, sharp_original) - _psnr(unkept, sharp_original)) < 0.05  # measured 0.018 dB


def test_the_structure_check_keeps_a_moved_picture_and_drops_a_changed_pattern() -> None:
    """The local-correlation weight of a neighbour (``structure_window``): its pixels keep their weight where it saw
    the reference's picture (also brighter and at a lower contrast: a cloud passing is not a failed warp), and lose
    it where the pattern is another one (water and spray whose ripples changed between the frames)."""
    original = _scene(3, HR)
    start = upscale_video._tensor(original)
    still = upscale_video._grid(np.zeros((HR, HR, 2), np.float32))
    config = upscale_video.MultiFrameConfig()

    def weight(low: np.ndarray) -> float:
        return float(upscale_video._structure_weight(start, still, upscale_video._tensor(low), FACTOR,
                                                     config).mean())

    assert weight(_box(original)) > 0.95  # measured 1.00
    assert weight(_box(0.6 * original + 0.1)) > 0.95  # measured 1.00
    assert weight(_box(_scene(11, HR))) < 0.15  # measured 0.06
    # a rigid pan: the check takes nothing away (its residual at the edges is the new sub-pixel detail)
    original, lows = _sequence(SHIFTS)
    off = upscale_video.MultiFrameConfig(structure_window=0)
    on = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[0], config=config)[0]
    plain = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[0], config=off)[0]
    assert abs(_psnr(on, original) - _psnr(plain, original)) < 0.05  # measured 0.016 dB



def _long_pan() -> tuple[np.ndarray, list[np.ndarray]]:
    """15 frames, each at another quarter-pixel offset of a pan, the reference (the original's frame) in the
    middle (index 7)."""
    shifts = [(dy, dx) for dy in range(4) for dx in range(4)][:15]
    original, lows = _sequence(shifts)
    return original, lows[1:8] + lows[:1] + lows[8:]


def test_the_recipe_reads_seven_neighbours_each_side_weighted_by_their_distance() -> None:
    """The recipe since 2026-12-04 (radius 7, ``distance_sigma`` 4; radius 3 unweighted before): on a 15-frame
    pan the middle frame gains from the frames 4 to 7 away that the old recipe did not read."""
    original, lows = _long_pan()
    default = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[7])[7]
    before = upscale_video.MultiFrameConfig(radius=3, distance_sigma=0.0)
    old = upscale_video.upscale_frames(lows, None, factor=FACTOR, indices=[7], config=before)[7]
    assert _psnr(default, original) > _psnr(old, original) + 0.4  # measured +0.79 dB


def test_a_neighbour_far_in_time_weighs_less() -> None:
    """``distance_sigma``: far under a frame, the neighbours weigh nothing (the frame's own refinement, to the
    bit); far over the window, every neighbour weighs the same as with the weight off."""
    _, lows = _long_pan()
    idx = upscale_video.window(7, len(lows), 2)
    singles = [upscale.lanczos(lows[j], HR, HR) for j in idx]
    near = upscale_video.MultiFrameConfig(radius=2, distance_sigma=0.01)
    alone = upscale_video.refine([lows[7]], [singles[2]], 0, FACTOR, near)
    assert upscale_video.refine([lows[j] for j in idx], singles, 2, FACTOR, near).tobytes() == alone.tobytes()
    wide, off = (upscale_video.MultiFrameConfig(radius=2, distance_sigma=s) for s in (1e4, 0.0))
    a = upscale_video.refine([lows[j] for j in idx], singles, 2, FACTOR, wide)
    b = upscale_video.refine([lows[j] for j in idx], singles, 2, FACTOR, off)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, alone, atol=1e-3)


def test_the_flow_is_matched_at_the_input_resolution_not_on_the_upscalers_guess() -> None:
    """The flows are matched down to the input's own resolution (``flow_scale`` None: level 2 at ×4), not to half
    the output's (level 1, before 2026-12-04): finer than the input, each frame's single-frame upscale holds detail
    that is the upscaler's guess, a little different in every frame, and matching it moves the flow off the
    scene's motion. On a 15-frame pan whose single-frame upscales each carry their own fine noise (a stand-in for
    that guess), the refinement gains more with the input-resolution flow."""
    original, lows = _long_pan()
    rng = np.random.default_rng(0)
    singles = [np.maximum(upscale.lanczos(low, HR, HR) + 0.02 * rng.standard_normal((HR, HR, 3)).astype(np.float32),
                          0.0) for low in lows]
    assert upscale_video.flow_level(FACTOR, upscale_video.MultiFrameConfig()) == 2
    assert upscale_video.flow_level(2, upscale_video.MultiFrameConfig()) == 1
    default = upscale_video.refine(lows, singles, 7, FACTOR)
    old = upscale_video.refine(lows, singles, 7, FACTOR, upscale_video.MultiFrameConfig(flow_scale=1))
    assert _psnr(default, original) > _psnr(old, original) + 0.2  # measured +0.33 dB
    assert _psnr(default, original) > _psnr(singles[7], original) + 2.0  # measured +3.26 dB
