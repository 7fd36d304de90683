import re
import shutil
import subprocess

import numpy as np
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


# --- paths inside the plate roots, slug codes ---------------------------------------------------------------------

def _plate_copy(folder, frames=(1, 2)):
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        shutil.copy(SHARED_TESTDATA / "Beachball" / f"singlepart.000{frame}.exr", folder / f"bb.000{frame}.exr")
    return folder / "bb.####.exr"


def _ingest(show, pattern, **options):
    options = {"sequence": "bb", "shot": "bb010", **options}
    args = ["ingest_plate", str(pattern), "--show", show.code] + [f"--{key}={value}" for key, value in options.items()]
    call_command(*args)
    return Plate.objects.get()


def test_a_relative_pattern_is_stored_absolute_under_the_root_that_holds_it(show, tmp_path):
    _plate_copy(tmp_path / "shots" / "bb010")
    plate = _ingest(show, "shots/bb010/bb.####.exr")
    assert plate.path_pattern == str(tmp_path.resolve() / "shots" / "bb010" / "bb.####.exr")


def test_dot_dot_inside_a_root_is_normalised_and_symlinks_are_resolved(show, tmp_path):
    real = _plate_copy(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    plate = _ingest(show, tmp_path / "other" / ".." / "link" / "bb.####.exr")
    assert plate.path_pattern == str(real.resolve()) and ".." not in plate.path_pattern


@pytest.mark.parametrize("pattern, message", [
    ("../escape/bb.####.exr", r"^\.\./escape/bb\.####\.exr: leaves the plate root "),
    ("/etc/bb.####.exr", r"^/etc/bb\.####\.exr: outside the plate roots \("),
    ("nowhere/bb.####.exr", r"frames in exactly one plate root; none of .* has them"),
])
def test_patterns_outside_the_roots_or_found_nowhere_are_refused(show, tmp_path, pattern, message):
    before = _catalogue()
    with pytest.raises(CommandError, match=message):
        _ingest(show, pattern)
    assert _catalogue() == before


def test_a_symlink_out_of_the_roots_is_refused_naming_the_path_under_its_root(show, tmp_path, tmp_path_factory):
    outside = _plate_copy(tmp_path_factory.mktemp("outside") / "plates")
    (tmp_path / "sneaky").symlink_to(outside.parent)
    with pytest.raises(CommandError, match=rf"^sneaky/bb\.####\.exr under {tmp_path.resolve()}: its folder resolves "
                                           rf"to {outside.parent.resolve()}, outside the plate roots$"):
        _ingest(show, tmp_path / "sneaky" / "bb.####.exr")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "bb.0001.exr").symlink_to(outside.parent / "bb.0001.exr")
    with pytest.raises(CommandError, match=r"^frames/bb\.0001\.exr under .*: a symlink to .*, outside the plate roots"):
        _ingest(show, "frames/bb.####.exr")
    assert not Plate.objects.exists()


@pytest.mark.parametrize("option, code", [("sequence", "../bb"), ("shot", "bb/010"), ("shot", ".."),
                                          ("sequence", "bb 01"), ("name", "-main"), ("shot", "x" * 65)])
def test_codes_that_are_not_slugs_are_refused(show, tmp_path, option, code):
    pattern = _plate_copy(tmp_path / "p")
    with pytest.raises(CommandError, match=r"use up to \d+ letters, digits, '_' and '-'"):
        _ingest(show, pattern, **{option: code})
    assert _catalogue() == ([], [], [])


# --- the plate's colour space ---------------------------------------------------------------------------------

def test_an_unknown_colour_space_is_refused_listing_the_configs(show, tmp_path):
    pattern = _plate_copy(tmp_path / "p")
    with pytest.raises(CommandError) as caught:
        _ingest(show, pattern, colourspace="LogC9")
    message = str(caught.value)
    assert message.startswith("plate colour space: unknown colour space 'LogC9'; valid: ACES2065-1, ")
    assert "ARRI LogC4" in message and "sRGB - Texture" in message and show.ocio_config in message
    assert not Plate.objects.exists()


def test_a_sintel_sequence_in_srgb_is_ingested_with_its_colour_space_and_read_converted(show, tmp_path):
    from generation.engine import frames
    from generation.engine.sequence import frame_path
    from tests.camera_plates import SRGB, ocio_convert, sintel_rgb, write_plate

    pattern = write_plate(tmp_path / "sintel", frames=2, colourspace=SRGB)
    plate = _ingest(show, pattern, colourspace="srgb_tx")  # an alias: stored as the config names the space
    assert plate.colourspace == SRGB and plate.display_window == {"x": 0, "y": 0, "width": 1024, "height": 436}
    read = frames.read_channels(frame_path(plate.path_pattern, 1002), ("R", "G", "B"), colourspace=plate.colourspace,
                                working_space=show.working_space, config_name=show.ocio_config)
    stored = frames.read_channels(frame_path(plate.path_pattern, 1002), ("R", "G", "B"))
    np.testing.assert_array_equal(read, ocio_convert(stored, SRGB, "ACEScg"))
    assert np.abs(stored - sintel_rgb(1)).max() < 2e-3  # the frame is Sintel's own (half precision)


def test_the_ingested_plate_records_its_pixel_aspect(show, tmp_path):
    from tests.camera_plates import write_plate

    plate = _ingest(show, write_plate(tmp_path / "ana", frames=1, pixel_aspect=2.0), colourspace="sRGB - Texture")
    assert plate.pixel_aspect == 2.0 and plate.width == 512


def test_the_colour_space_defaults_to_the_shows_working_space(show, tmp_path):
    assert _ingest(show, _plate_copy(tmp_path / "p")).colourspace == show.working_space == "ACEScg"
