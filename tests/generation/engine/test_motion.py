import numpy as np
import pytest

from generation.engine import motion


def _texture(h, w, seed=0, sigma=0.05):
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((h, w)))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    img = np.fft.ifft2(spectrum * np.exp(-(fx**2 + fy**2) / (2 * sigma**2))).real
    return (img - img.min()) / np.ptp(img) + 0.05


def _pair(h, w, dx, dy):
    big = _texture(h + 64, w + 64)
    return big[32:-32, 32:-32], motion.shift_image(big, dx, dy)[32:-32, 32:-32]


@pytest.mark.parametrize("size", [(144, 256), (1080, 1920)])
@pytest.mark.parametrize("shift", [(3.3, -1.7), (0.25, 0.6), (-12.8, 4.4)])
def test_it_recovers_a_synthetic_shift_within_a_tenth_of_a_pixel(size, shift):
    a, b = _pair(*size, *shift)
    assert np.allclose(motion.estimate_shift(a, b), shift, atol=0.1)


def test_camera_track_is_cumulative_from_the_first_frame():
    big = _texture(200, 300)
    lumas = (motion.shift_image(big, 2.5 * k, -0.5 * k)[20:-20, 20:-20] for k in range(4))
    track = motion.camera_track(lumas)
    assert track[0] == (0.0, 0.0)
    assert np.allclose(track, [(2.5 * k, -0.5 * k) for k in range(4)], atol=0.15)


def test_track_from_motion_vectors_ignores_frame_zero():
    mv = [np.full((8, 8, 2), 99.0)] + [np.dstack([np.full((8, 8), 2.0), np.full((8, 8), -1.0)])] * 3
    mv[2] = mv[2].copy()
    mv[2][0, 0] = (500.0, 500.0)  # an outlier the median ignores
    assert motion.track_from_motion_vectors(mv) == [(0, 0), (2, -1), (4, -2), (6, -3)]


def test_shift_image_moves_content_forward_and_clamps_edges():
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    out = motion.shift_image(img, 1, 0)
    assert np.array_equal(out[:, 1:], img[:, :-1])
    assert np.array_equal(out[:, 0], img[:, 0])
    assert motion.shift_image(img, 0.5, 0)[0, 1] == pytest.approx(0.5)


def _sequence(carried: bool, n=5, pan=2.0):
    plate_world = _texture(120, 260, seed=1)
    sky_world = _texture(120, 260, seed=2, sigma=0.08)
    track = [(pan * k, 0.0) for k in range(n)]
    alpha = np.zeros((80, 200), np.float32)
    alpha[:40] = 1.0
    generated, plate, masks = [], [], []
    for k, (dx, dy) in enumerate(track):
        p = motion.shift_image(plate_world, dx, dy)[20:100, 30:230]
        world = sky_world if carried else _texture(120, 260, seed=10 + k, sigma=0.08)
        g = motion.shift_image(world, dx, dy)[20:100, 30:230]
        generated.append(np.where(alpha > 0, g, p))
        plate.append(p)
        masks.append(alpha)
    return generated, plate, masks, track


def test_a_carried_element_flickers_like_the_plate_and_a_regenerated_one_does_not():
    carried = motion.flicker_ratio(*_sequence(carried=True))
    regenerated = motion.flicker_ratio(*_sequence(carried=False))
    assert carried < 2.0
    assert regenerated > 10 * carried


def test_flicker_meter_matches_flicker_ratio_and_guards_a_static_plate():
    generated, plate, masks, track = _sequence(carried=True)
    meter = motion.FlickerMeter(track)
    for k in range(len(plate)):
        meter.add(k, generated[k], plate[k], masks[k])
    assert meter.ratio() == pytest.approx(motion.flicker_ratio(generated, plate, masks, track))
    still = [plate[0]] * 3
    assert motion.flicker_ratio(still, still, masks[:3], [(0, 0)] * 3) == pytest.approx(1.0)
