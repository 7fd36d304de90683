"""manage.py contact_sheet --request: the done variations' proxies of one frame, tiled and labelled."""

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generation.engine.frames import write_jpeg
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db


def test_it_tiles_the_request_s_variations(compositor, shot, show_model, tmp_path) -> None:
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=3)
    for variation in request.variations.all():
        pattern = str(tmp_path / variation.label / "incontext.####.jpg")
        (tmp_path / variation.label).mkdir()
        write_jpeg(pattern.replace("####", f"{request.first_frame:04d}"), np.zeros((18, 32, 3), np.uint8))
        variation.proxy_pattern = pattern
        variation.save(update_fields=["proxy_pattern"])
    out = tmp_path / "sheet.png"
    call_command("contact_sheet", request=request.pk, out=str(out), columns=3, tile_width=64)
    assert Image.open(out).size[0] == 6 + 3 * (64 + 6)
    with pytest.raises(CommandError, match="outside the request"):
        call_command("contact_sheet", request=request.pk, frame=request.last_frame + 1, out=str(out))


def test_the_demo_sheet_after_the_finishing_stage_names_the_upscaler(tmp_path) -> None:
    from generation.engine import upscale_training
    from generation.engine.registry import build_tiny_show_model
    from tests.generation.engine.test_upscale import write_sintel_plates

    model = build_tiny_show_model(tmp_path / "tiny", seed=5, sample_size=(32, 64), name="tiny-test").path
    plates = write_sintel_plates(tmp_path / "plates")
    upscaler = upscale_training.train_upscaler(upscale_training.UpscalerConfig(
        plates=[str(plates)], out_dir=str(tmp_path / "up"), steps=2, batch_size=2, patch=32, features=8, layers=1,
        threads=1)).path
    common = dict(demo=True, model=model, count=1, frames=1, steps=2, size="320x180", tile_width=64)
    work = tmp_path / "work"
    call_command("contact_sheet", out=str(tmp_path / "after.png"), upscaler=upscaler, work=str(work), **common)
    assert Image.open(tmp_path / "after.png").size[0] == 6 + 64 + 6
    import OpenImageIO as oiio

    header = oiio.ImageInput.open(str(next((work / "variations" / "v01").rglob("*.1001.exr")))).spec()
    assert header.getattribute("parallel_track:upscaler") == "show-upscaler"
    assert len(header.getattribute("parallel_track:grain_profile_sha256")) == 64  # the demo plate has grain
    with pytest.raises(CommandError, match="model card"):
        call_command("contact_sheet", out=str(tmp_path / "x.png"), upscaler=str(tmp_path), **common)
