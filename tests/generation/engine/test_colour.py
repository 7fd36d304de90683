import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import PyOpenColorIO as ocio
import pytest

from generation.engine import colour
from generation.engine.demo_plate import render_demo_plate
from generation.engine.frames import read_rgba, resize
from tests import realdata

_LOCAL = Path(__file__).resolve().parents[2] / "data" / "openexr-images"
IMAGES = _LOCAL if _LOCAL.is_dir() else Path("/work/shared/testdata/openexr-images")
STUDIO_DEFAULT = ("sRGB - Display", "ACES 1.0 - SDR Video")


def test_it_resolves_the_config_explicit_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    assert colour.resolve_config_name("ocio://default") == "ocio://default"
    assert colour.resolve_config_name() == "ocio://cg-config-latest"
    monkeypatch.delenv("OCIO")
    assert colour.resolve_config_name() == colour.DEFAULT_CONFIG


def test_it_reports_a_bad_config_on_one_line() -> None:
    with pytest.raises(colour.ColourError, match=r"^cannot load OCIO config 'ocio://nope'[^\n]*$"):
        colour.load_config("ocio://nope")


def test_studio_config_defaults_to_aces2_sdr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCIO", raising=False)
    assert colour.default_display_view() == STUDIO_DEFAULT
    assert STUDIO_DEFAULT[1] in colour.displays_and_views()[STUDIO_DEFAULT[0]]


def test_convert_round_trips_and_passes_alpha_bit_exact() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.uniform(0, 4, (8, 8, 4)).astype(np.float32)
    pixels[..., 3] = rng.normal(size=(8, 8))
    there = colour.convert(pixels, "ACEScg", "ACES2065-1", config_name=colour.DEFAULT_CONFIG)
    back = colour.convert(there, "ACES2065-1", "ACEScg", config_name=colour.DEFAULT_CONFIG)
    np.testing.assert_allclose(back[..., :3], pixels[..., :3], rtol=1e-4, atol=1e-5)
    assert there[..., 3].tobytes() == pixels[..., 3].tobytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"src": "nope", "display": STUDIO_DEFAULT[0], "view": STUDIO_DEFAULT[1]},
            "unknown colour space 'nope'; valid: .*ACEScg",
        ),
        (
            {"src": "ACEScg", "display": "nope", "view": STUDIO_DEFAULT[1]},
            "unknown display 'nope'; valid: .*sRGB - Display",
        ),
        ({"src": "ACEScg", "display": STUDIO_DEFAULT[0], "view": "nope"}, "unknown view 'nope'.*valid: .*ACES 1.0"),
    ],
)
def test_it_lists_valid_names_for_bad_ones(kwargs: dict, message: str) -> None:
    with pytest.raises(colour.ColourError, match=message):
        colour.display_view(np.zeros((1, 1, 3), np.float32), config_name=colour.DEFAULT_CONFIG, **kwargs)


def _code_errors(image: np.ndarray) -> np.ndarray:
    lut = colour.make_proxy(image, width=480, config_name=colour.DEFAULT_CONFIG)
    d, v = STUDIO_DEFAULT
    small = resize(image[..., :3], lut.shape[1], lut.shape[0])
    exact = colour.display_view(small, src="ACEScg", display=d, view=v, config_name=colour.DEFAULT_CONFIG)
    expected = (np.clip(exact, 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(
        expected, colour.make_proxy(image, width=480, exact=True, config_name=colour.DEFAULT_CONFIG)
    )
    return np.abs(lut.astype(int) - expected.astype(int))


def test_make_proxy_lut_matches_exact_ocio_on_beachball() -> None:
    image, _ = read_rgba(IMAGES / "Beachball" / "singlepart.0004.exr")
    errors = _code_errors(image)
    assert errors.shape == (365, 480, 3)
    # The pinned config's ACES 1.0 SDR view clips a band of the ball's saturated greens (input G = 0.5) to the
    # display gamut with a kink the 65^3 LUT cannot follow: 27 of 525,600 values are off by up to 23 codes.
    assert np.percentile(errors, 99.9) <= 1 and (errors > 3).mean() <= 1e-4 and errors.max() <= 24


def test_make_proxy_lut_matches_exact_ocio_on_the_demo_plate(tmp_path: Path) -> None:
    plate = render_demo_plate(tmp_path, first=1, last=1, width=960, height=540)["plate"]
    image, _ = read_rgba(plate.replace("####", "0001"))
    proxy = colour.make_proxy(image, config_name=colour.DEFAULT_CONFIG)
    assert proxy.shape == (540, 960, 3) and proxy.dtype == np.uint8
    errors = _code_errors(image)
    assert np.percentile(errors, 99.9) <= 1 and errors.max() <= 3


def test_make_proxy_handles_extreme_values() -> None:
    values = np.array([-1.0, 0.0, 1e-6, 0.18, 1.0, 100.0, 6e4], np.float32)
    image = np.stack(np.meshgrid(values, values, values), -1).reshape(49, 7, 3)
    proxy = colour.make_proxy(image, width=7, config_name=colour.DEFAULT_CONFIG)
    exact = colour.make_proxy(image, width=7, exact=True, config_name=colour.DEFAULT_CONFIG)
    assert proxy.shape == (49, 7, 3) and np.abs(proxy.astype(int) - exact).max() <= 8


# --- the pinned config ----------------------------------------------------------------------------------------

OIIOTOOL = str(Path(sys.executable).parent / "oiiotool")


def _oiio_loads(config_name: str) -> bool:
    done = subprocess.run([OIIOTOOL, "--colorconfig", config_name, "--colorconfiginfo"], capture_output=True, text=True)
    return done.returncode == 0 and "ERROR" not in done.stdout + done.stderr


def test_the_default_config_is_versioned_and_both_ocio_builds_load_it() -> None:
    from django.conf import settings

    assert colour.is_pinned(colour.DEFAULT_CONFIG) and "latest" not in colour.DEFAULT_CONFIG
    assert colour.pinned_config_name(colour.DEFAULT_CONFIG) == colour.DEFAULT_CONFIG
    assert _oiio_loads(colour.DEFAULT_CONFIG), "OpenImageIO's bundled OCIO must load the pinned config"
    assert colour.load_config(colour.DEFAULT_CONFIG).getMinorVersion() <= 3, "loads in DCCs on OCIO 2.3"
    if "OCIO" not in os.environ:
        assert settings.PT_OCIO_CONFIG == colour.DEFAULT_CONFIG


def test_latest_names_are_pinned_to_the_versioned_config_they_mean(tmp_path, monkeypatch) -> None:
    for alias in ("ocio://studio-config-latest", "ocio://cg-config-latest", "ocio://default"):
        pinned = colour.pinned_config_name(alias)
        assert not colour.is_pinned(alias) and colour.is_pinned(pinned)
        assert re.fullmatch(r"ocio://(studio|cg)-config-v\d+\.\d+\.\d+_aces-v[\d.]+_ocio-v[\d.]+", pinned), pinned
        assert colour.load_config(pinned).getCacheID() == colour.load_config(alias).getCacheID()
    # The trap the pin avoids: what PyOpenColorIO 2.6 means by "latest" OpenImageIO's bundled OCIO 2.5 cannot load.
    if ocio.__version__ != oiio.get_string_attribute("opencolorio_version"):
        assert not _oiio_loads(colour.pinned_config_name("ocio://studio-config-latest"))
    config_file = tmp_path / "show.ocio"
    colour.load_config(colour.DEFAULT_CONFIG).serialize(str(config_file))
    monkeypatch.chdir(tmp_path)
    assert colour.pinned_config_name("show.ocio") == str(config_file)  # a config file: its absolute path


def _npm(xy: tuple[float, ...]) -> np.ndarray:
    """RGB -> XYZ of primaries and white ``xy`` (SMPTE RP 177)."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])

    primaries = np.stack([xyz(*xy[0:2]), xyz(*xy[2:4]), xyz(*xy[4:6])], axis=1)
    return primaries * np.linalg.solve(primaries, xyz(*xy[6:8]))


def _bradford(src_white: tuple[float, float], dst_white: tuple[float, float]) -> np.ndarray:
    m = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])

    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])

    return np.linalg.inv(m) @ np.diag((m @ xyz(*dst_white)) / (m @ xyz(*src_white))) @ m


@pytest.mark.parametrize("space", sorted(colour.GAMUTS))
def test_the_chromaticities_written_to_releases_are_those_the_config_converts_with(space) -> None:
    xy = colour.chromaticities(space, colour.DEFAULT_CONFIG)
    if space in ("ACEScc", "ACEScct"):  # log encodings of AP1: same primaries as ACEScg
        assert xy == colour.chromaticities("ACEScg", colour.DEFAULT_CONFIG)
        return
    # OCIO's own matrix from the space to ACES2065-1 (AP0, ACES white), applied to the unit primaries.
    to_ap0 = colour.convert(np.eye(3, dtype=np.float32).reshape(3, 1, 3), space, "ACES2065-1",
                            config_name=colour.DEFAULT_CONFIG).reshape(3, 3).T
    ours = _bradford(xy[6:8], colour.PRIMARIES["AP0"][6:8]) @ _npm(xy)
    np.testing.assert_allclose(_npm(colour.PRIMARIES["AP0"]) @ to_ap0, ours, atol=2e-4)


def test_chromaticities_are_ap1_for_acescg_and_absent_for_an_unknown_gamut() -> None:
    assert colour.chromaticities("ACEScg") == (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)
    assert colour.chromaticities("lin_ap1") == colour.chromaticities("ACEScg")  # an alias of the config
    assert colour.chromaticities("ARRI LogC4") is None
    # OpenImageIO knows them independently (from the spaces' colour interop IDs): the same numbers.
    config = oiio.ColorConfig(colour.DEFAULT_CONFIG)
    for space in colour.GAMUTS:
        if space not in ("ACEScc", "ACEScct"):
            np.testing.assert_allclose(config.get_chromaticities(space), colour.chromaticities(space), atol=1e-7)
    with pytest.raises(colour.ColourError, match="unknown colour space 'nope'"):
        colour.chromaticities("nope")


def test_a_sintel_frame_in_srgb_converts_as_openimageios_own_ocio_converts_it_with_the_pinned_config(tmp_path):
    from tests.camera_plates import SRGB, sintel_rgb

    rgb = sintel_rgb(0)
    ours = colour.to_working(rgb, SRGB, "ACEScg", config_name=colour.DEFAULT_CONFIG)
    out = tmp_path / "acescg.exr"
    png = realdata.testdata("sintel-demo") / "frame_0016.png"
    subprocess.run([OIIOTOOL, str(png), "--colorconfig", colour.DEFAULT_CONFIG,
                    "--ch", "R,G,B", "-d", "float", "--colorconvert", SRGB, "ACEScg", "-o", str(out)], check=True)
    theirs = np.asarray(oiio.ImageBuf(str(out)).get_pixels(oiio.FLOAT), np.float32)
    assert theirs.shape == ours.shape == (436, 1024, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)  # two OCIO builds, one pinned config
    assert np.abs(ours - rgb).mean() > 0.05, "the conversion did something"


def test_an_anamorphic_proxy_is_desqueezed() -> None:
    squeezed = np.full((540, 960, 3), 0.18, np.float32)  # 2:1 squeezed: shows as 1920x540
    assert colour.make_proxy(squeezed, width=960, pixel_aspect=2.0).shape == (270, 960, 3)
    assert colour.make_proxy(squeezed, width=960).shape == (540, 960, 3)
    with pytest.raises(ValueError, match="pixel_aspect must be positive"):
        colour.make_proxy(squeezed, width=960, pixel_aspect=0.0)
