"""Review proxies in any display/view of the show's config, rendered from the EXRs on demand and cached."""

import re
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import OpenImageIO as oiio
import pytest

from generation import proxies, services
from generation.engine import colour, frames
from generation.engine.sequence import frame_path
from portal import worker
from portal.colour import show_colour

P3 = {"display": "Display P3 - Display", "view": "ACES 1.0 - SDR Video"}
UNTONEMAPPED = {"display": "sRGB - Display", "view": "Un-tone-mapped"}


def jpeg(data: bytes, tmp_path: Path, name: str = "x.jpg") -> np.ndarray:
    path = tmp_path / name
    path.write_bytes(data)
    buf = oiio.ImageBuf(str(path))
    return np.asarray(buf.get_pixels(oiio.FLOAT)) * 255.0


@pytest.fixture
def variation(compositor, shot, show_model):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1002, count=1, steps=1, base_seed=5)
    worker.drain_embedded()
    found = request.variations.get()
    assert found.status == "done", found.error
    return found


def test_display_views_are_the_configs_own_with_path_safe_distinct_slugs(show):
    pairs = proxies.display_views(show_colour(show))
    assert proxies.DisplayView(**P3) in pairs and proxies.DisplayView(**UNTONEMAPPED) in pairs
    slugs = [dv.slug for dv in pairs]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug) for slug in slugs)
    with pytest.raises(proxies.PortalError):
        proxies.checked_display_view(show_colour(show), "sRGB - Display", "../../etc")


@pytest.mark.django_db(transaction=True)
def test_a_view_switch_renders_from_the_exrs_caches_and_differs_from_srgb(client, variation, tmp_path):
    client.login(username="cora", password="cora-pw")
    base = f"/media/variations/{variation.pk}/proxy/1001.jpg"
    engine_file = Path(variation.work_dir) / "proxy" / "incontext.1001.jpg"
    assert client.get(base).getvalue() == engine_file.read_bytes()

    srgb = jpeg(client.get(f"{base}?{urlencode(UNTONEMAPPED)}").getvalue(), tmp_path, "srgb.jpg")
    response = client.get(f"{base}?{urlencode(P3)}")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    p3 = jpeg(response.getvalue(), tmp_path, "p3.jpg")
    assert p3.shape == srgb.shape == (540, 960, 3)
    assert np.abs(p3 - srgb).mean() > 3, "another display/view should change the pixels"

    cached = Path(variation.work_dir) / "proxy" / "display-p3-display--aces-1-0-sdr-video" / "incontext.1001.jpg"
    assert cached.is_file()
    made = cached.stat().st_mtime_ns
    assert client.get(f"{base}?{urlencode(P3)}").getvalue() == cached.read_bytes()
    assert cached.stat().st_mtime_ns == made, "a cached proxy was rendered again"

    # The in-context render is the element over the plate: the engine's own proxy, to JPEG precision.
    show = show_colour(variation.request.shot.sequence.show)
    element, _ = frames.read_rgba(Path(variation.work_dir) / "exr" / "element.1001.exr")
    plate = frames.read_channels(frame_path(variation.request.plate.path_pattern, 1001), ("R", "G", "B"))
    ours = colour.make_proxy(element[..., :3] + plate * (1 - element[..., 3:]), width=960, src=show.working_space,
                             display=show.display, view=show.view, config_name=show.config)
    frames.write_jpeg(tmp_path / "ours.jpg", ours)
    assert (tmp_path / "ours.jpg").read_bytes() == engine_file.read_bytes()


@pytest.mark.django_db(transaction=True)
def test_the_element_alone_and_the_plate_frame_line_up_with_the_in_context_proxy(client, variation, tmp_path):
    client.login(username="cora", password="cora-pw")
    comp = jpeg(client.get(f"/media/variations/{variation.pk}/proxy/1002.jpg").getvalue(), tmp_path, "c.jpg")
    element = jpeg(client.get(f"/media/variations/{variation.pk}/proxy/1002.jpg?kind=element").getvalue(),
                   tmp_path, "e.jpg")
    response = client.get(f"/media/requests/{variation.request_id}/plate/1002.jpg")
    assert response.status_code == 200
    plate = jpeg(response.getvalue(), tmp_path, "p.jpg")
    assert comp.shape == element.shape == plate.shape
    matte = frames.read_matte(frame_path(variation.request.matte_pattern, 1002))
    outside = frames.resize(matte, 960, 540) == 0
    inside = frames.resize(matte, 960, 540) == 1
    assert outside.any() and inside.any()
    assert element[outside].mean() < 2, "outside the matte the element is empty (black)"
    assert np.abs(plate[outside] - comp[outside]).mean() < 2, "outside the matte the comp is the plate"
    assert np.abs(plate[inside] - comp[inside]).mean() > 5, "inside the matte the comp is the variation"
    assert np.abs(element[inside] - comp[inside]).mean() < 2
    shows_dir = Path(variation.work_dir).parent / "plate-proxy"
    assert (shows_dir / next(p.name for p in shows_dir.iterdir()) / "plate.1002.jpg").is_file()


@pytest.mark.django_db(transaction=True)
def test_it_refuses_foreign_display_views_kinds_frames_and_outsiders(client, variation, outsider):
    client.login(username="cora", password="cora-pw")
    base = f"/media/variations/{variation.pk}/proxy"
    before = sorted(p.name for p in (Path(variation.work_dir) / "proxy").iterdir())
    bad = [f"{base}/1001.jpg?" + urlencode({"display": "../../..", "view": "x"}),
           f"{base}/1001.jpg?" + urlencode({"display": "sRGB - Display", "view": "../x"}),
           f"{base}/1001.jpg?kind=../../secret", f"/media/requests/{variation.request_id}/plate/1001.jpg?"
           + urlencode({"display": "nope", "view": "Raw"})]
    for address in bad:
        assert client.get(address).status_code == 400, address
    assert client.get(f"{base}/1003.jpg").status_code == 404
    assert client.get(f"/media/requests/{variation.request_id}/plate/999.jpg").status_code == 404
    assert sorted(p.name for p in (Path(variation.work_dir) / "proxy").iterdir()) == before
    client.logout()
    client.login(username="otto", password="otto-pw")
    assert client.get(f"{base}/1001.jpg?{urlencode(P3)}").status_code == 404
    assert client.get(f"/media/requests/{variation.request_id}/plate/1001.jpg").status_code == 404


def test_the_whole_factor_shrink_matches_the_engines_box_resize():
    pixels = np.random.default_rng(0).random((1080, 1920, 3), dtype=np.float32) * 4
    assert np.allclose(proxies._shrink(pixels, 960), frames.resize(pixels, 960, 540), rtol=0, atol=1e-6)
    odd = pixels[:1079]
    assert proxies._shrink(odd, 960) is odd  # not a whole factor: left to make_proxy
