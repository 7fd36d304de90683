import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine.frames import (
    FrameError,
    Window,
    alpha_bbox,
    read_channels,
    read_header,
    read_matte,
    read_rgba,
    resize,
    scan_sequence,
    write_exr,
    write_jpeg,
)

_LOCAL = Path(__file__).resolve().parents[2] / "data" / "openexr-images"
IMAGES = _LOCAL if _LOCAL.is_dir() else Path("/work/shared/testdata/openexr-images")
BEACHBALL = IMAGES / "Beachball"
BEACHBALL_PATTERN = str(BEACHBALL / "singlepart.####.exr")
DAMAGED = sorted(p for p in (IMAGES / "Damaged").iterdir() if p.suffix != ".rst")
OIIOTOOL = Path(sys.executable).parent / "oiiotool"


def _oiiotool_windows(path: Path) -> tuple[Window, Window]:
    info = subprocess.run([OIIOTOOL, "--info", "-v", path], capture_output=True, text=True, check=True).stdout
    w, h = map(int, re.search(r":\s+(\d+) x\s+(\d+),", info).groups())
    x, y = map(int, re.search(r"pixel data origin: x=(-?\d+), y=(-?\d+)", info).groups())
    fw, fh = map(int, re.search(r"full/display size: (\d+) x (\d+)", info).groups())
    fx, fy = map(int, re.search(r"full/display origin: (-?\d+), (-?\d+)", info).groups())
    return Window(fx, fy, fw, fh), Window(x, y, w, h)


def test_window_geometry() -> None:
    a, b = Window(0, 0, 10, 10), Window(5, 8, 10, 10)
    assert (a.xmax, a.ymax) == (9, 9)
    assert a.intersect(b) == Window(5, 8, 5, 2)
    assert a.intersect(Window(10, 0, 1, 1)) is None
    assert a.union(b) == Window(0, 0, 15, 18)
    assert a.contains(Window(2, 2, 8, 8)) and not a.contains(b)
    assert Window.from_roi(b.to_roi()) == b
    assert b.as_dict() == {"x": 5, "y": 8, "width": 10, "height": 10}


def test_it_refuses_the_whole_damaged_set() -> None:
    assert len(DAMAGED) == 14
    for path in DAMAGED:
        with pytest.raises(FrameError) as caught:
            read_header(path)
        message = str(caught.value)
        assert message.startswith(f"{path.name}: ") and "\n" not in message
        assert caught.value.path == str(path)


def test_it_refuses_damaged_files_named_like_plates(tmp_path: Path) -> None:
    for path in DAMAGED:
        plate = tmp_path / "plate.1001.exr"
        shutil.copyfile(path, plate)
        with pytest.raises(FrameError, match=r"^plate\.1001\.exr: [^\n]+$"):
            read_header(plate)


def test_it_refuses_deep_files_before_openexr_reads_them(tmp_path: Path) -> None:
    deep = tmp_path / "deep.exr"
    deep.write_bytes(b"\x76\x2f\x31\x01\x02\x08\x00\x00" + b"\xff" * 64)
    with pytest.raises(FrameError, match="deep data is not supported for plates"):
        read_header(deep)


def test_it_refuses_files_that_are_not_exr(tmp_path: Path) -> None:
    jpeg = tmp_path / "plate.1001.exr"
    write_jpeg(tmp_path / "x.jpg", np.zeros((4, 4, 3), np.uint8))
    shutil.copyfile(tmp_path / "x.jpg", jpeg)
    with pytest.raises(FrameError, match="not an OpenEXR file"):
        read_header(jpeg)


def test_beachball_windows_match_oiiotool() -> None:
    scan = scan_sequence(BEACHBALL_PATTERN)
    assert (scan.first, scan.last, scan.missing) == (1, 8, [])
    for header in scan.frames:
        assert (header.display_window, header.data_window) == _oiiotool_windows(Path(header.path))
        assert len(header.channels) == 20 and set(header.channel_formats) == {"half"}
    assert scan.frames[6].data_window.xmax > scan.display_window.xmax
    assert scan.display_window == Window(0, 0, 2048, 1556)
    union = scan.frames[0].data_window
    for header in scan.frames[1:]:
        union = union.union(header.data_window)
    assert scan.data_window == union


def test_scan_lists_missing_frames_and_names_the_first_mismatch(tmp_path: Path) -> None:
    pattern = str(tmp_path / "plate.####.exr")
    rgba = np.ones((8, 8, 4), np.float32)
    for frame in (1001, 1003):
        write_exr(pattern.replace("####", str(frame)), rgba, display_window=Window(0, 0, 8, 8))
    assert scan_sequence(pattern).missing == [1002]
    write_exr(pattern.replace("####", "1004"), rgba[:4], display_window=Window(0, 0, 8, 4))
    with pytest.raises(FrameError, match=r"^plate\.1004\.exr: display window"):
        scan_sequence(pattern)
    with pytest.raises(FrameError, match="no frames exist"):
        scan_sequence(pattern, 1, 2)


def test_read_rgba_covers_the_display_window_and_crops_overscan() -> None:
    path = BEACHBALL / "singlepart.0007.exr"
    rgba, header = read_rgba(path)
    assert rgba.shape == (1556, 2048, 4) and rgba.dtype == np.float32
    data = header.data_window
    assert not rgba[: data.y].any() and not rgba[:, : data.x].any()
    raw = oiio.ImageInput.open(str(path))
    pixels = raw.read_image(0, 0, 0, 4, "float")
    raw.close()
    np.testing.assert_array_equal(rgba[data.y : data.ymax + 1, data.x :], pixels[:, : 2048 - data.x])
    bbox = alpha_bbox(rgba[..., 3], header.display_window)
    assert bbox is not None and header.data_window.contains(bbox) and bbox.xmax <= 2047


def test_read_rgba_fills_alpha_inside_the_data_window_only(tmp_path: Path) -> None:
    path = tmp_path / "rgb.exr"
    write_exr(
        path,
        np.full((6, 8, 3), 0.5, np.float32),
        display_window=Window(0, 0, 8, 6),
        data_window=Window(2, 1, 4, 3),
        channel_names=("R", "G", "B"),
    )
    rgba, _ = read_rgba(path, fill_alpha=0.25)
    assert rgba[1:4, 2:6, 3].min() == 0.25 and rgba[..., 3].sum() == 0.25 * 12
    with pytest.raises(FrameError, match=r"rgb\.exr: no A channel.*present: R, G, B"):
        read_channels(path, ["A"])
    write_exr(
        tmp_path / "ry.exr",
        np.zeros((2, 2, 2), np.float32),
        display_window=Window(0, 0, 2, 2),
        channel_names=("R", "Y"),
    )
    with pytest.raises(FrameError, match=r"no G, B channel\(s\); present: R, Y"):
        read_rgba(tmp_path / "ry.exr")
    assert read_matte(tmp_path / "ry.exr").shape == (2, 2)


def test_write_read_round_trip_is_bit_exact_with_attributes_and_crop(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.normal(0, 4, (20, 30, 4)).astype(np.float16)
    pixels[0, 0] = [-0.0, np.inf, 65504, 6e-8]
    display, data = Window(0, 0, 30, 20), Window(3, 2, 25, 17)
    path = tmp_path / "plate.1001.exr"
    attributes = {"parallel_track:request": "req-42", "parallel_track:seed": 2**31 - 1, "gain": 1.5}
    write_exr(path, pixels, display_window=display, data_window=data, attributes=attributes, compression="zips")
    header = read_header(path)
    assert (header.display_window, header.data_window, header.compression) == (display, data, "zips")
    raw = oiio.ImageInput.open(str(path))
    spec = raw.spec()
    stored = raw.read_image(0, 0, 0, 4, "half")
    raw.close()
    assert {k: spec.getattribute(k) for k in attributes} == attributes
    expected = pixels[2:19, 3:28]
    np.testing.assert_array_equal(stored.view(np.uint16), expected.view(np.uint16))
    back = read_channels(path, ["R", "G", "B", "A"])
    np.testing.assert_array_equal(back[2:19, 3:28].astype(np.float16).view(np.uint16), expected.view(np.uint16))
    assert not back[:2].any() and not back[:, :3].any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression": "zipz"}, "unknown EXR compression"),
        ({"attributes": {"n": 2**40}}, "32 bits"),
        ({"data_window": Window(2, 2, 8, 8)}, "not inside display window"),
        ({"channel_names": ("R", "G", "B")}, "display window needs"),
    ],
)
def test_atomic_write_leaves_nothing_on_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_exr(tmp_path / "p.exr", np.zeros((8, 8, 4), np.float32), display_window=Window(0, 0, 8, 8), **kwargs)
    assert os.listdir(tmp_path) == []


def test_atomic_write_removes_its_temp_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "exists_as_dir.exr"
    target.mkdir()
    with pytest.raises(OSError):
        write_exr(target, np.zeros((4, 4, 4), np.float32), display_window=Window(0, 0, 4, 4))
    assert os.listdir(tmp_path) == ["exists_as_dir.exr"] and os.listdir(target) == []


def test_resize_area_filters_any_channel_count() -> None:
    pixels = np.zeros((4, 4, 5), np.float32)
    pixels[:2, :2] = 1.0
    small = resize(pixels, 2, 2)
    assert small.shape == (2, 2, 5) and small.dtype == np.float32
    np.testing.assert_allclose(small[..., 0], [[1, 0], [0, 0]], atol=1e-6)
    assert resize(np.ones((6, 6), np.float32), 3, 3).shape == (3, 3)


def _oiio_box(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w, c = pixels.shape
    buf = oiio.ImageBuf(oiio.ImageSpec(w, h, c, "float"))
    buf.set_pixels(oiio.ROI(0, w, 0, h, 0, 1, 0, c), np.ascontiguousarray(pixels))
    out = oiio.ImageBufAlgo.resize(buf, "box", 0.0, oiio.ROI(0, width, 0, height, 0, 1, 0, c))
    return np.asarray(out.get_pixels("float"), np.float32).reshape(height, width, c)


@pytest.mark.parametrize("shape", [(1080, 1920), (1556, 2048), (540, 960), (37, 50)])
@pytest.mark.parametrize("halve", [(2, 2), (1, 2), (2, 1)])
def test_resize_halving_rgb_gives_oiios_box_filter_to_the_bit(shape, halve) -> None:
    rng = np.random.default_rng(sum(shape) + 7 * halve[0] + halve[1])
    h, w = shape[0] * halve[0] // 2 * 2, shape[1] * halve[1] // 2 * 2  # even where halved
    scale = rng.choice(np.float32([1e-4, 1.0, 300.0, 6e4]), (h, w, 3))
    pixels = (rng.standard_normal((h, w, 3)) * scale).astype(np.float32)
    pixels[0, 0] = [np.inf, -np.inf, np.nan]
    size = (w // halve[1], h // halve[0])
    got, want = resize(pixels, *size), _oiio_box(pixels, *size)
    assert got.shape == want.shape == (size[1], size[0], 3) and got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_resize_other_ratios_stay_oiios_box_filter() -> None:
    pixels = np.random.default_rng(3).random((1556, 2048, 4), dtype=np.float32)
    assert np.array_equal(resize(pixels, 960, 730), _oiio_box(pixels, 960, 730))
    assert np.array_equal(resize(pixels[..., :3], 683, 519), _oiio_box(pixels[..., :3], 683, 519))


def test_the_engine_imports_without_django() -> None:
    code = (
        "import sys; import generation.engine.frames, generation.engine.colour, "
        "generation.engine.sequence, generation.engine.demo_plate; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, env={**os.environ, "PYTHONPATH": str(root)})


# --- plates in a camera colour space, anamorphic plates, timecode -----------------------------------------------

def _logc4_beachball(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Beachball frame 4 re-encoded as ARRI LogC4 (as a camera would record it), data window inside the display."""
    from tests.camera_plates import ocio_convert

    rgba, header = read_rgba(BEACHBALL / "singlepart.0004.exr")
    data = header.data_window
    inside = np.zeros(rgba.shape[:2], bool)
    inside[data.y : data.y + data.height, data.x : data.x + data.width] = True
    logc = rgba.copy()
    logc[..., :3] = ocio_convert(rgba[..., :3], "ACEScg", "ARRI LogC4")
    path = tmp_path / "logc4.0001.exr"
    write_exr(path, logc, display_window=header.display_window, data_window=data)
    return path, rgba, inside


def test_a_logc4_plate_is_converted_to_the_working_space_as_ocio_converts_it(tmp_path):
    from tests.camera_plates import ocio_convert

    path, original, inside = _logc4_beachball(tmp_path)
    stored, _ = read_rgba(path)  # the LogC4 code values, as written (half)
    pixels = read_channels(path, ("R", "G", "B", "A"), colourspace="ARRI LogC4", working_space="ACEScg")
    expected = ocio_convert(stored[..., :3][inside], "ARRI LogC4", "ACEScg")
    np.testing.assert_array_equal(pixels[..., :3][inside], expected)
    assert np.array_equal(pixels[..., 3], stored[..., 3]), "alpha is never converted"
    assert not pixels[~inside].any(), "outside the data window stays 0, not LogC4's black in linear"
    # And it is the picture the camera saw, within what half-float LogC4 code values keep (a 1/2048 step of
    # code is ~0.5% of linear: 14 stops over the code range).
    lit = original[..., :3][inside] > 0.01
    relative = np.abs(pixels[..., :3][inside][lit] / original[..., :3][inside][lit] - 1)
    assert relative.max() < 0.02 and relative.mean() < 0.002
    # Read as if it were ACEScg already, the plate would be wrong by far more (log code values are not linear).
    assert np.abs(stored[..., :3][inside][lit] / original[..., :3][inside][lit] - 1).mean() > 0.5
    rgba, _ = read_rgba(path, colourspace="ARRI LogC4", working_space="ACEScg")
    np.testing.assert_array_equal(rgba, pixels)


def test_a_plate_in_the_working_space_is_read_untouched(tmp_path):
    path, _, _ = _logc4_beachball(tmp_path)
    as_stored = read_channels(path, ("R", "G", "B"))
    assert np.array_equal(read_channels(path, ("R", "G", "B"), colourspace="ACEScg", working_space="ACEScg"),
                          as_stored)


def test_an_unknown_plate_colour_space_or_a_partial_rgb_read_is_a_frame_error(tmp_path):
    path, _, _ = _logc4_beachball(tmp_path)
    with pytest.raises(FrameError, match=r"^logc4\.0001\.exr: unknown colour space 'LogC9'; valid: .*ARRI LogC4"):
        read_channels(path, ("R", "G", "B"), colourspace="LogC9", working_space="ACEScg")
    with pytest.raises(FrameError, match=r"needs R, G and B"):
        read_channels(path, ("R", "A"), colourspace="ARRI LogC4", working_space="ACEScg")


def _anamorphic(path: Path, aspect: float, timecode: int | None = None) -> Path:
    spec = oiio.ImageSpec(96, 54, 3, "half")
    spec.attribute("PixelAspectRatio", aspect)
    if timecode is not None:
        spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (timecode, 7))
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(np.full((54, 96, 3), 0.18, np.float32))
    out.close()
    return path


def test_the_header_exposes_the_pixel_aspect_and_the_timecode(tmp_path):
    header = read_header(_anamorphic(tmp_path / "a.1001.exr", 2.0, 0x01000000))
    assert header.pixel_aspect == 2.0 and header.timecode == (0x01000000, 7)
    plain = read_header(BEACHBALL / "singlepart.0001.exr")
    assert plain.pixel_aspect == 1.0 and plain.timecode is None


def test_a_pixel_aspect_that_changes_within_the_sequence_is_refused(tmp_path):
    _anamorphic(tmp_path / "a.1001.exr", 2.0)
    _anamorphic(tmp_path / "a.1002.exr", 1.0)
    with pytest.raises(FrameError, match=r"^a\.1002\.exr: pixel aspect 1 differs from frame 1001's 2$"):
        scan_sequence(str(tmp_path / "a.####.exr"))
    _anamorphic(tmp_path / "a.1002.exr", 2.0)
    assert scan_sequence(str(tmp_path / "a.####.exr")).pixel_aspect == 2.0


def test_a_jpeg_is_the_bytes_oiio_would_write_itself(tmp_path: Path) -> None:
    rgb8 = (np.random.default_rng(3).random((40, 64, 3)) * 255).astype(np.uint8)
    write_jpeg(tmp_path / "ours.jpg", rgb8)
    spec = oiio.ImageSpec(64, 40, 3, "uint8")
    spec.attribute("compression", "jpeg:90")
    spec.attribute("jpeg:subsampling", "4:4:4")
    spec.attribute("oiio:ColorSpace", "sRGB")
    direct = str(tmp_path / "direct.jpg")
    out = oiio.ImageOutput.create(direct)
    assert out.open(direct, spec) and out.write_image(rgb8) and out.close()
    assert (tmp_path / "ours.jpg").read_bytes() == Path(direct).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["direct.jpg", "ours.jpg"]  # no temp file left


_WRITE_ON_A_FULL_DISK = """
import sys, numpy as np
from generation.engine.frames import write_jpeg
try:
    write_jpeg(sys.argv[1], (np.random.default_rng(1).random((512, 512, 3)) * 255).astype(np.uint8))
except OSError as exc:
    print("OSError", exc.errno)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs (a full disk) needs root")
def test_a_jpeg_on_a_full_disk_raises_oserror_and_the_process_lives(tmp_path: Path) -> None:
    """libjpeg exit()s the process on a short write ("out of disk space?"); write_jpeg must raise ENOSPC instead,
    so a worker meeting a full work area retries rather than dies (the fault suite's disk-full fault)."""
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full)], check=True)
    try:
        run = subprocess.run([sys.executable, "-c", _WRITE_ON_A_FULL_DISK, str(full / "proxy.1001.jpg")],
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3], timeout=120)
        assert (run.returncode, run.stdout.strip()) == (0, "OSError 28"), run.stderr
        assert list(full.iterdir()) == []  # nothing half-written left
    finally:
        subprocess.run(["umount", "-l", str(full)], capture_output=True)


def test_an_element_given_over_its_data_window_alone_writes_the_same_exr(tmp_path: Path) -> None:
    display, data = Window(0, 0, 64, 40), Window(10, 5, 30, 20)
    whole = np.zeros((40, 64, 4), np.float16)
    whole[5:25, 10:40] = np.random.default_rng(0).standard_normal((20, 30, 4)).astype(np.float16)
    attributes = {"DateTime": "2026:12:03 00:00:00"}
    write_exr(tmp_path / "a.exr", whole, display_window=display, data_window=data, attributes=attributes)
    write_exr(
        tmp_path / "b.exr", whole[5:25, 10:40], display_window=display, data_window=data, attributes=attributes,
        over_data_window=True,
    )
    assert (tmp_path / "a.exr").read_bytes() == (tmp_path / "b.exr").read_bytes()
    with pytest.raises(ValueError, match="data window needs"):
        write_exr(tmp_path / "c.exr", whole, display_window=display, data_window=data, over_data_window=True)
