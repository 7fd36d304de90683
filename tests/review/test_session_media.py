"""Colour-critical looks: proxies are 4:4:4 and tagged sRGB; exposure and gamma act on scene-linear pixels before
the display transform; the alpha view is the element's matte as it is."""

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import colour, frames
from review.session_media import alpha_image, graded

CONFIG = "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3"


def _written(tmp_path, rgb8) -> oiio.ImageSpec:
    path = tmp_path / "p.jpg"
    frames.write_jpeg(path, rgb8)
    found = oiio.ImageInput.open(str(path))
    spec = found.spec()
    found.close()
    return spec


def test_proxies_keep_full_chroma_and_say_srgb(tmp_path):
    rng = np.random.default_rng(1)
    spec = _written(tmp_path, (rng.random((64, 96, 3)) * 255).astype(np.uint8))
    assert spec.get_string_attribute("jpeg:subsampling") == "4:4:4"
    assert spec.get_int_attribute("Exif:ColorSpace") == 1  # sRGB


def test_a_red_edge_does_not_bleed_into_its_grey_neighbour(tmp_path):
    """4:2:0 averages chroma over 2×2: a one-pixel red column bleeds into the grey beside it. 4:4:4 does not."""
    rgb8 = np.full((32, 32, 3), 128, np.uint8)
    rgb8[:, 15] = (230, 20, 20)
    path = tmp_path / "edge.jpg"
    frames.write_jpeg(path, rgb8)
    back = np.asarray(oiio.ImageBuf(str(path)).get_pixels(oiio.UINT8)).astype(int)
    neighbour = back[8:24, 14]
    assert np.abs(neighbour[:, 0] - neighbour[:, 1]).max() < 25  # still grey-ish, not pink


def test_exposure_is_stops_on_linear_before_the_view():
    linear = np.full((4, 8, 3), 0.18, np.float32)
    assert np.allclose(graded(linear, 1.0, 1.0), 0.36)
    assert np.allclose(graded(linear, -2.0, 1.0), 0.045)
    assert np.allclose(graded(linear, 0.0, 2.0), 0.18 ** 0.5)
    up = colour.make_proxy(graded(linear, 1.0, 1.0), width=8, config_name=CONFIG)
    straight = colour.make_proxy(linear * 2.0, width=8, config_name=CONFIG)
    after_view = np.clip(colour.make_proxy(linear, width=8, config_name=CONFIG).astype(int) * 2, 0, 255)
    assert np.array_equal(up, straight)
    assert np.abs(up.astype(int) - after_view).max() > 10  # doubling the display code is not one stop


@pytest.mark.parametrize("aspect", [1.0, 2.0])
def test_the_alpha_view_is_the_matte_at_proxy_size(aspect):
    alpha = np.zeros((540, 960), np.float32)
    alpha[100:300, 200:500] = 1.0
    alpha[300:310, 200:500] = 0.5
    grey = alpha_image(alpha, aspect)
    assert grey.shape[1] == 960 and (grey[..., 0] == grey[..., 2]).all()
    if aspect == 1.0:
        assert grey[200, 300, 0] == 255 and grey[50, 50, 0] == 0 and grey[305, 300, 0] in (127, 128)
