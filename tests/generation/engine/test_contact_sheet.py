"""Contact sheets: variation proxies tiled into one labelled PNG (no Django)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.engine.contact_sheet import make_contact_sheet, variation_tiles
from generation.engine.frames import write_jpeg


def _proxy(root: Path, name: str, frame: int, value: int) -> None:
    path = root / name / "proxy" / f"incontext.{frame:04d}.jpg"
    path.parent.mkdir(parents=True)
    write_jpeg(str(path), np.full((36, 64, 3), value, np.uint8))


def test_it_tiles_every_variation_that_has_the_frame_with_its_label(tmp_path: Path) -> None:
    for k, value in enumerate((40, 120, 200)):
        _proxy(tmp_path / "vars", f"v{k + 1:02d}", 1001, value)
    _proxy(tmp_path / "vars", "v04", 1002, 255)  # another frame only: left out
    tiles = variation_tiles(tmp_path / "vars", 1001)
    assert [label for label, _ in tiles] == ["v01", "v02", "v03"]

    out = make_contact_sheet(tiles, tmp_path / "sheet.png", columns=2, tile_width=128, title="request 7")
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape[1] == 6 + 2 * (128 + 6)  # two columns of 128 px with 6 px gaps
    assert sheet.shape[0] > 2 * 72  # two rows of 72 px tiles, labels and a title
    first_tile = sheet[sheet.shape[0] // 4, 6 + 64]
    assert abs(int(first_tile.mean()) - 40) < 8
    assert not list(tmp_path.glob("*.tmp-*"))


def test_it_refuses_an_empty_sheet(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one image"):
        make_contact_sheet([], tmp_path / "sheet.png")
