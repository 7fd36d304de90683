"""Grain: measured from the plate, synthesised anew per frame, deterministic, never outside the element's alpha."""

import numpy as np
import pytest

from generation.engine import frames, grain
from tests import realdata
from tests.bench.upscale import flat_element, grain_match


def _profile(amplitude: float = 0.02, spectrum=None) -> grain.GrainProfile:
    """A known profile: deviation ``amplitude`` × level (relative grain), white or the given spectrum."""
    levels = (0.05, 0.1, 0.2, 0.4, 0.8)
    shape = tuple(spectrum if spectrum is not None else [1.0] * grain.RADIAL_BINS)
    channel = grain.ChannelGrain(levels, tuple(amplitude * v for v in levels), shape)
    return grain.GrainProfile((channel,) * 3, ((1, 0.5, 0.5), (0.5, 1, 0.5), (0.5, 0.5, 1)))


def _smooth_plate(h: int = 256, w: int = 384) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.1 + 0.6 * (x / w) ** 2 + 0.05 * np.sin(y / 40.0)
    return np.stack([base, base * 0.9, base * 0.7], axis=2).astype(np.float32)


@pytest.fixture(scope="module")
def beachball() -> np.ndarray:
    rgba, _ = frames.read_rgba(realdata.testdata("openexr-images", "Beachball", "singlepart.0001.exr"))
    return rgba


def test_a_cg_plate_without_noise_gets_the_empty_profile_and_no_grain(beachball) -> None:
    profile = grain.measure_grain([beachball[..., :3]], valid=[beachball[..., 3] > 0])
    assert profile.is_empty
    assert grain.measure_grain([_smooth_plate()]).is_empty
    element = beachball.copy()
    assert grain.apply_grain(element, profile, seed=1, frame=1).tobytes() == element.tobytes()
    assert grain.degrain(element[..., :3], profile).tobytes() == element[..., :3].tobytes()


def test_the_same_cg_plate_with_grain_added_is_measured_back(beachball) -> None:
    want = _profile(0.03)
    valid = beachball[..., 3] > 0
    noisy = grain.apply_grain(beachball[..., :3], want, seed=4, frame=0, alpha=valid.astype(np.float32))
    got = grain.measure_grain([noisy], valid=[valid])
    assert not got.is_empty
    relative = np.array(got.channels[1].amplitude) / np.array(got.channels[1].intensity)
    assert np.median(relative) == pytest.approx(0.03, rel=0.25)


def test_a_measured_profile_round_trips_through_json() -> None:
    plate = grain.apply_grain(_smooth_plate(), _profile(0.02), seed=2, frame=0)
    profile = grain.measure_grain([plate])
    assert not profile.is_empty and len(profile.to_json()) < 4000
    assert grain.GrainProfile.from_json(profile.to_json()) == profile
    relative = np.array(profile.channels[0].amplitude) / np.array(profile.channels[0].intensity)
    assert np.median(relative) == pytest.approx(0.02, rel=0.15)
    assert grain.GrainProfile.from_json(grain.EMPTY.to_json()).is_empty


@pytest.mark.parametrize("text, message", [
    ("nope", "not JSON"),
    ('{"channels": [{"intensity": [1]}]}', "malformed"),
    ('{"channels": [{"intensity": [1], "amplitude": [0.1], "spectrum": [1]}]}', "3 channels"),
])
def test_a_malformed_profile_is_refused(text, message) -> None:
    with pytest.raises(grain.GrainError, match=message):
        grain.GrainProfile.from_json(text)


def test_grain_is_the_same_bytes_for_the_same_element_and_frame_and_new_every_frame() -> None:
    element = _smooth_plate(64, 96)
    profile = _profile()
    first = grain.apply_grain(element, profile, seed=11, frame=1001)
    assert first.tobytes() == grain.apply_grain(element, profile, seed=11, frame=1001).tobytes()
    next_frame = grain.apply_grain(element, profile, seed=11, frame=1002)
    other_element = grain.apply_grain(element, profile, seed=12, frame=1001)
    for other in (next_frame, other_element):
        change = np.corrcoef((first - element).ravel(), (other - element).ravel())[0, 1]
        assert abs(change) < 0.1  # independent grain, not the same pattern shifted or scaled


def test_pixels_outside_the_alpha_stay_the_plates_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    element = rng.uniform(-1, 2, (48, 64, 4)).astype(np.float32)
    element[..., 3] = 0.0
    element[10:30, 20:50, 3] = rng.uniform(0.1, 1, (20, 30))
    element[0, 0, 0] = -0.0
    out = grain.apply_grain(element, _profile(0.05), seed=3, frame=7)
    outside = element[..., 3] == 0
    assert out[outside].tobytes() == element[outside].tobytes()
    assert out[..., 3].tobytes() == element[..., 3].tobytes()
    assert not np.array_equal(out[~outside, :3], element[~outside, :3])


def test_grain_follows_the_intensity_curve() -> None:
    element = np.full((128, 512, 3), 0.1, np.float32)
    element[:, 256:] = 0.4
    out = grain.apply_grain(element, _profile(0.02), seed=5, frame=0) - element
    assert out[:, :256].std() == pytest.approx(0.002, rel=0.1)
    assert out[:, 256:].std() == pytest.approx(0.008, rel=0.1)


def test_synthesised_grain_has_the_profiles_spectrum() -> None:
    fine = [0.1] * 4 + [0.5, 1, 2, 3, 3, 3, 2, 1]
    out = grain.synthesize_grain(_profile(spectrum=fine), 256, 256, seed=1, frame=0)
    power = np.abs(np.fft.fft2(out[..., 0])) ** 2
    rings = grain._ring_index(256, 256)
    low, high = power[rings < 3].mean(), power[(rings >= 7) & (rings <= 9)].mean()
    assert high / low > 10  # fine grain: energy at high frequencies, little in the clumps
    assert out.std() == pytest.approx(1.0, rel=0.05)


def test_degrain_takes_the_grain_and_keeps_the_edge() -> None:
    plate = _smooth_plate()
    plate[:, 200:] += 0.5  # a hard edge the degrain must not blur away
    profile = _profile(0.03)
    noisy = grain.apply_grain(plate, profile, seed=8, frame=0)
    clean = grain.degrain(noisy, profile)
    assert np.abs(clean - plate)[:, 20:180].std() < 0.5 * np.abs(noisy - plate)[:, 20:180].std()
    step = clean[:, 202].mean() - clean[:, 197].mean()
    assert step == pytest.approx(0.5, abs=0.05)


def test_the_grain_match_figures_catch_wrong_grain() -> None:
    """The bench's QC figures: regraining with the plate's own profile passes, with doubled amplitude or white
    instead of fine grain it fails."""
    plate_profile = grain.measure_grain([grain.apply_grain(_smooth_plate(), _profile(0.02, [0.2] * 4 + [1.5] * 8),
                                                           seed=9, frame=0)])
    element = flat_element(plate_profile)

    def match(profile):
        return grain_match(plate_profile, grain.measure_grain([grain.apply_grain(element, profile, seed=1, frame=1)]))

    amplitude, spectrum = match(plate_profile)
    assert amplitude < 0.1 and spectrum < 0.15
    doubled = grain.GrainProfile(tuple(grain.ChannelGrain(c.intensity, tuple(2 * a for a in c.amplitude), c.spectrum)
                                       for c in plate_profile.channels), plate_profile.correlation)
    assert match(doubled)[0] > 0.5
    coarse = grain.GrainProfile(tuple(grain.ChannelGrain(c.intensity, c.amplitude, (3.0,) * 6 + (0.1,) * 6)
                                      for c in plate_profile.channels), plate_profile.correlation)
    assert match(coarse)[1] > 0.3
