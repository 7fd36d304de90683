"""Look-dev skies cut from the real sky HDRIs (../shared/testdata/lookdev-skies, Poly Haven, CC0)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from generation.engine import frames, lookdev_hdri
from generation.engine.training import collect_lookdev
from tests import realdata


def _digests(paths: list[str]) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def test_sky_windows_of_the_real_hdris_are_licensed_normalised_and_reproducible(tmp_path: Path) -> None:
    skies = realdata.testdata("lookdev-skies")
    paths = lookdev_hdri.render_hdri_skies(skies, tmp_path / "a", size=(16, 32), yaws=2)
    assert len(paths) == len(lookdev_hdri.OPEN_SKIES) * len(lookdev_hdri.HEIGHTS) * 2
    assert not any("lebombo" in p or "forest_slope" in p or "adams_place" in p for p in paths)  # not skies
    images = collect_lookdev(tmp_path / "a")  # the training command's own check: every file has a licence
    assert all(img.licence.startswith("CC0") for img in images)
    weights = np.array([0.2722, 0.6741, 0.0537], np.float32)
    medians = [float(np.median(frames.read_rgba(p)[0][..., :3] @ weights)) for p in paths]
    assert np.allclose(np.median(medians), lookdev_hdri.MEDIAN_LEVEL, rtol=0.35)
    assert max(medians) / min(medians) < 2 ** 0.9  # a night sky and a sun are brought to the same level
    again = lookdev_hdri.render_hdri_skies(skies, tmp_path / "b", size=(16, 32), yaws=2)
    assert _digests(paths) == _digests(again)


def test_it_merges_into_an_existing_approvals_file_and_refuses_a_folder_without_hdris(tmp_path: Path) -> None:
    (tmp_path / "approvals.json").write_text(json.dumps({"procedural.exr": "approved"}))
    lookdev_hdri.render_hdri_skies(realdata.testdata("lookdev-skies"), tmp_path, size=(8, 16), yaws=1,
                                   names=("rooitou_park_1k",))
    approvals = json.loads((tmp_path / "approvals.json").read_text())
    assert approvals["procedural.exr"] == "approved" and len(approvals) == 1 + len(lookdev_hdri.HEIGHTS)
    (tmp_path / "no-hdris").mkdir()
    with pytest.raises(lookdev_hdri.LookdevError, match="no .hdr"):
        lookdev_hdri.render_hdri_skies(tmp_path / "no-hdris", tmp_path / "out")
