import re
import shutil
import subprocess

import pytest
from django.core.management import CommandError, call_command

from portal.models import Plate, Sequence, Shot
from tests.conftest import OIIOTOOL, SHARED_TESTDATA

BEACHBALL = SHARED_TESTDATA / "Beachball" / "singlepart.####.exr"
DAMAGED = sorted(p for p in (SHARED_TESTDATA / "Damaged").iterdir() if p.suffix != ".rst")


@pytest.fixture(autouse=True)
def plate_roots(settings, tmp_path):
    """The plates these tests ingest live in the repository's test data and in the test's own folder."""
    settings.PLATE_ROOTS = [SHARED_TESTDATA, tmp_path]
    return settings.PLATE_ROOTS


def _catalogue():
    return (list(Sequence.objects.values_list("pk", "code")), list(Shot.objects.values_list("pk", "code")),
            list(Plate.objects.values_list("pk", "path_pattern")))


def test_it_ingests_the_beachball_sequence_with_its_windows_and_channels(show):
    call_command("ingest_plate", str(BEACHBALL), "--show", show.code, "--sequence", "bb", "--shot", "bb010")
    plate = Plate.objects.get()
    assert (plate.first_frame, plate.last_frame) == (1, 8)
    assert plate.display_window == {"x": 0, "y": 0, "width": 2048, "height": 1556}
    dw = plate.data_window
    assert dw["x"] > 0 and dw["y"] > 0 and dw["height"] < 1556
    assert len(plate.channels) == 20 and {"R", "G", "B", "A"} <= set(plate.channels)
    assert plate.missing_frames == []
    assert (plate.shot.first_frame, plate.shot.last_frame) == (1, 8)


def test_the_recorded_windows_agree_with_oiiotool(show):
    call_command("ingest_plate", str(BEACHBALL), "--show", show.code, "--sequence", "bb", "--shot", "bb010")
    plate = Plate.objects.get()
    info = subprocess.run([OIIOTOOL, "--info", "-v", str(SHARED_TESTDATA / "Beachball" / "singlepart.0001.exr")],
                          capture_output=True, text=True, check=True).stdout
    width, height = map(int, re.search(r":\s+(\d+) x\s+(\d+), 20 channel", info).groups())
    x, y = map(int, re.search(r"pixel data origin: x=(\d+), y=(\d+)", info).groups())
    assert f"full/display size: {plate.width} x {plate.height}" in info
    # The plate's data window is the union over its frames, so it holds frame 1's.
    dw = plate.data_window
    assert dw["x"] <= x and dw["y"] <= y
    assert x + width <= dw["x"] + dw["width"] and y + height <= dw["y"] + dw["height"]


@pytest.mark.parametrize("damaged", DAMAGED, ids=lambda p: p.name[:40])
def test_it_refuses_every_damaged_file_and_leaves_the_catalogue_unchanged(show, tmp_path, damaged):
    # Give each damaged file a frame-numbered name so it is read as a one-frame sequence.
    shutil.copy(damaged, tmp_path / "damaged.0001.exr")
    before = _catalogue()
    with pytest.raises(CommandError) as caught:
        call_command("ingest_plate", str(tmp_path / "damaged.####.exr"), "--show", show.code, "--sequence",
                     "bad", "--shot", "bad010")
    message = str(caught.value)
    assert "damaged.0001.exr" in message and "\n" not in message
    assert _catalogue() == before


def test_it_reports_missing_frames_instead_of_skipping_them(show, tmp_path):
    for frame in (1, 2, 5):
        shutil.copy(SHARED_TESTDATA / "Beachball" / f"singlepart.000{frame}.exr", tmp_path / f"bb.000{frame}.exr")
    with pytest.raises(CommandError, match=r"frames missing: 3-4"):
        call_command("ingest_plate", str(tmp_path / "bb.####.exr"), "--show", show.code, "--sequence", "bb",
                     "--shot", "bb010")
    assert not Plate.objects.exists()
    call_command("ingest_plate", str(tmp_path / "bb.####.exr"), "--show", show.code, "--sequence", "bb",
                 "--shot", "bb010", "--allow-missing")
    assert Plate.objects.get().missing_frames == [3, 4]
