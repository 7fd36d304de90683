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
