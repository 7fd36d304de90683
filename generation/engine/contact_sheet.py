"""Contact sheets: the in-context proxies of several variations tiled into one labelled PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from generation.engine.sequence import frame_path

PROXY_PATTERN = os.path.join("proxy", "incontext.####.jpg")
_BACKGROUND = (24, 24, 26)
_TEXT = (230, 230, 230)
_GAP = 6


def variation_tiles(variations_dir: str | os.PathLike, frame: int) -> list[tuple[str, str]]:
    """(label, proxy path) of frame ``frame`` for every variation folder in ``variations_dir`` that has
    one (``<variation>/proxy/incontext.####.jpg``, as ``variation.generate_variation`` writes), by name."""
    root = Path(variations_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    tiles = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        path = frame_path(str(sub / PROXY_PATTERN), frame)
        if os.path.isfile(path):
            tiles.append((sub.name, path))
    return tiles


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def make_contact_sheet(
    tiles: list[tuple[str, str | np.ndarray]],
    out_path: str | os.PathLike,
    *,
    columns: int = 4,
    tile_width: int = 480,
    title: str = "",
) -> str:
    """Tile ``tiles`` -- (label, JPEG/PNG path or uint8 (h, w, 3) array) -- into a PNG at ``out_path``.

    Every tile is scaled to ``tile_width`` (aspect kept) with its label beneath; an optional title runs
    across the top. The PNG is written beside its final name and renamed into place. Returns the path.
    """
    if not tiles:
        raise ValueError("a contact sheet needs at least one image")
    if columns < 1 or tile_width < 16:
        raise ValueError(f"columns must be >= 1 and tile_width >= 16, got {columns} and {tile_width}")
    images = [Image.fromarray(src) if isinstance(src, np.ndarray) else Image.open(src).convert("RGB")
              for _, src in tiles]
    tile_h = max(round(im.height * tile_width / im.width) for im in images)
    font = _font(max(12, tile_width // 28))
    label_h = font.getbbox("Ag")[3] + 8
    title_h = label_h + 6 if title else 0
    rows = -(-len(tiles) // columns)
    cols = min(columns, len(tiles))
    sheet = Image.new("RGB", (_GAP + cols * (tile_width + _GAP), title_h + _GAP + rows * (tile_h + label_h + _GAP)),
                      _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((_GAP, _GAP), title, fill=_TEXT, font=font)
    for k, ((label, _), image) in enumerate(zip(tiles, images, strict=True)):
        x = _GAP + (k % columns) * (tile_width + _GAP)
        y = title_h + _GAP + (k // columns) * (tile_h + label_h + _GAP)
        sheet.paste(image.resize((tile_width, round(image.height * tile_width / image.width)),
                                 Image.Resampling.LANCZOS), (x, y))
        draw.text((x + 2, y + tile_h + 3), label, fill=_TEXT, font=font)
    out_path = os.fspath(out_path)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = f"{out_path}.tmp-{os.getpid()}.png"
    try:
        sheet.save(tmp, format="PNG", optimize=True)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out_path
