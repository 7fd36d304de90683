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


def test_shift_image_moves_content_forward_and_clamps_edges():
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    out = motion.shift_image(img, 1, 0)
    assert np.array_equal(out[:, 1:], img[:, :-1])
    assert np.array_equal(out[:, 0], img[:, 0])
    assert motion.shift_image(img, 0.5, 0)[0, 1] == pytest.approx(0.5)
