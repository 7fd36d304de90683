"""The release's files without the database: the header patch, a full disk, a publish area that refuses writes."""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from generation.engine.frames import Window, read_rgba, write_exr
from generation.engine.sequence import frame_path
from review.exrheader import advance_timecode, copy_with_attributes, fps_fraction, sha256_of
from review.publish import PublishError, PublishPlan, frame_attributes, publish, verify

REPO = Path(__file__).resolve().parents[2]


def _element(path: Path, attributes: dict | None = None) -> Path:
    rng = np.random.default_rng(3)
    rgba = np.concatenate([rng.normal(0.5, 0.1, (64, 96, 3)), np.ones((64, 96, 1))], axis=2).astype(np.float32)
    rgba[40:] = 0.0
    write_exr(path, rgba, display_window=Window(0, 0, 96, 64), data_window=Window(0, 0, 96, 40),
              attributes=attributes)
    return path


@pytest.mark.parametrize("big_header", [False, True])
def test_provenance_is_patched_into_the_header_and_the_chunks_are_copied_verbatim(tmp_path, big_header):
    # A header beyond the first read (64 KB) is read again, larger.
    source = _element(tmp_path / "e.1001.exr", {"notes": "n" * 100_000} if big_header else {"parallel_track:seed": "1"})
    target = tmp_path / "out.1001.exr"
    long_name = "parallel_track:model_manifest_sha256"  # longer than 31 characters: the long-names flag
    digest = copy_with_attributes(source, target, {"parallel_track:seed": "42", long_name: "ab" * 32},
                                  writeback=True)

    assert digest == hashlib.sha256(target.read_bytes()).hexdigest() == sha256_of(target)
    header = frame_attributes(str(target))
    assert header["parallel_track:seed"] == "42" and header[long_name] == "ab" * 32
    assert target.read_bytes().count(b"parallel_track:seed\x00") == 1  # replaced, not added twice
    released, spec = read_rgba(str(target))
    original, original_spec = read_rgba(str(source))
    assert np.array_equal(released, original)
    assert spec.data_window == original_spec.data_window and spec.display_window == original_spec.display_window
    # Same chunk bytes, shifted by the header's growth: the pixels were not decoded and encoded again.
    grown = target.stat().st_size - source.stat().st_size
    assert grown > 0 and target.read_bytes()[-1000:] == source.read_bytes()[-1000:]
    with pytest.raises(FileExistsError):  # never over an existing file
        copy_with_attributes(source, target, {"parallel_track:seed": "43"})


def test_verify_lists_missing_changed_and_unlisted_frames(tmp_path):
    sources = [_element(tmp_path / f"e.{f}.exr") for f in (1001, 1002, 1003)]
    folder = publish(PublishPlan(source_pattern=str(tmp_path / "e.####.exr"),
                                 target_pattern=str(tmp_path / "pub" / "v001" / "x.####.exr"),
                                 frames=[1001, 1002, 1003], attributes={"parallel_track:request": "1"},
                                 colourspace="ACEScg", release_id=1))
    assert verify(folder) == []
    (folder / "x.1001.exr").unlink()
    with open(folder / "x.1002.exr", "r+b") as handle:
        handle.seek(-3, os.SEEK_END)
        handle.write(b"\x00\x01\x02")
    shutil.copyfile(sources[0], folder / "x.1004.exr")
    with open(folder / "manifest.sha256", "a") as manifest:
        manifest.write(f"{'0' * 64}  ../e.1001.exr\n")  # a manifest does not lead outside its folder
    assert verify(folder) == ["x.1001.exr: missing", "x.1002.exr: checksum does not match the manifest",
                              f"{'0' * 64} ../e.1001.exr: not a manifest line", "x.1004.exr: not in the manifest"]


@contextlib.contextmanager
def unwritable(folder: Path):
    """`folder` refuses new entries, also to root (who ignores permission bits): the immutable attribute."""
    os.chmod(folder, 0o500)
    immutable = False
    try:
        if os.access(folder, os.W_OK):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("running as a user that ignores directory permissions, without chattr")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        os.chmod(folder, 0o700)


def test_a_permission_error_leaves_no_partial_version_and_says_so(tmp_path, small_plate):
    root = tmp_path / "publish"
    (root / "sh010").mkdir(parents=True)
    plan = PublishPlan(source_pattern=small_plate["plate"], target_pattern=str(root / "sh010" / "v001" / "x.####.exr"),
                       frames=[1001, 1002], attributes={"parallel_track:request": "1"}, colourspace="ACEScg",
                       release_id=1)
    with unwritable(root / "sh010"):
        with pytest.raises(PublishError, match=r"could not write release into .*/sh010: "
                                               r"(Permission denied|Operation not permitted)"):
            publish(plan)
        assert list((root / "sh010").iterdir()) == []


_FULL_DISK_CHILD = """
import json, os, shutil, subprocess, sys
root, size, source = sys.argv[1:]
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "pt-full", root], check=True)
from review.publish import PublishError, PublishPlan, publish
plan = PublishPlan(source_pattern=source, target_pattern=os.path.join(root, "sh010", "v001", "x.####.exr"),
                   frames=list(range(1001, 1007)), attributes={"parallel_track:request": "1"},
                   colourspace="ACEScg", release_id=1)
try:
    publish(plan)
    error = None
except PublishError as exc:
    error = str(exc)
print(json.dumps({"error": error, "left": sorted(os.listdir(os.path.join(root, "sh010"))),
                  "used": shutil.disk_usage(root).used}))
"""


def test_a_full_disk_midway_leaves_no_partial_version_and_says_so(tmp_path, small_plate):
    """A real full file system: a tmpfs smaller than the release, mounted in a private mount namespace."""
    frame = Path(frame_path(small_plate["plate"], 1001)).stat().st_size
    root = tmp_path / "publish"
    root.mkdir()
    size = (int(frame * 2.5) // 4096 + 1) * 4096  # two frames fit, the third does not
    done = subprocess.run(["unshare", "--mount", "--map-root-user", sys.executable, "-c", _FULL_DISK_CHILD, str(root),
                           str(size), small_plate["plate"]], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    if done.returncode and ("unshare:" in done.stderr or "mount:" in done.stderr):
        pytest.skip(f"no private mount namespace with a tmpfs here: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["error"] is not None and "No space left on device" in outcome["error"], outcome
    assert "could not write release into" in outcome["error"]
    assert outcome["left"] == [], "no version folder and no staging folder may remain"
    assert outcome["used"] < frame, "the partial frames were removed"
    assert list(root.iterdir()) == []  # the tmpfs lived only in the child's namespace


# --- what the pipeline reads from a released header ---------------------------------------------------------------

def _info(path) -> str:
    oiiotool = str(Path(sys.executable).parent / "oiiotool")
    return subprocess.run([oiiotool, "--info", "-v", str(path)], capture_output=True, text=True, check=True).stdout


def _anamorphic_plate(folder: Path, frames, timecode_on_first: int | None) -> str:
    """A 2:1 anamorphic plate (96x64, PixelAspectRatio 2) whose first frame carries a SMPTE timecode."""
    import OpenImageIO as oiio

    folder.mkdir(parents=True)
    for frame in frames:
        spec = oiio.ImageSpec(96, 64, 4, "half")
        spec.attribute("PixelAspectRatio", 2.0)
        if timecode_on_first is not None and frame == frames[0]:
            spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (timecode_on_first, 0))
        out = oiio.ImageOutput.create(str(folder / f"plate.{frame}.exr"))
        assert out.open(str(folder / f"plate.{frame}.exr"), spec) and out.write_image(np.ones((64, 96, 4), np.float32))
        out.close()
    return str(folder / "plate.####.exr")


def _pipeline_plan(tmp_path, frames, **changes) -> PublishPlan:
    for frame in frames:
        _element(tmp_path / f"e.{frame}.exr")
    plan = dict(source_pattern=str(tmp_path / "e.####.exr"),
                target_pattern=str(tmp_path / "pub" / "v001" / "x.####.exr"),
                frames=list(frames), attributes={"parallel_track:request": "1"}, colourspace="ACEScg", release_id=1,
                ocio_config="ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3", fps=Decimal("23.976"),
                plate_pattern=_anamorphic_plate(tmp_path / "plate", frames, 0x23595922))  # 23:59:59:22
    return PublishPlan(**{**plan, **changes})


def test_released_frames_carry_chromaticities_fps_timecode_pixel_aspect_and_the_config(tmp_path):
    folder = publish(_pipeline_plan(tmp_path, [1001, 1002, 1003]))
    for frame, timecode in ((1001, "23:59:59:22"), (1002, "23:59:59:23"), (1003, "00:00:00:00")):
        info = _info(folder / f"x.{frame}.exr")
        assert "chromaticities: 0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767" in info, info  # AP1
        assert "framesPerSecond: 24000/1001 (23.976)" in info
        assert f"smpte:TimeCode: {timecode}" in info  # the plate's, advanced per frame (and wrapping at 24 h)
        assert "PixelAspectRatio: 2\n" in info and "full/display size: 96 x 64" in info
        assert "pixel data origin" not in info or "pixel data origin: x=0, y=0" in info
        assert 'parallel_track:ocio_config: "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3"' in info
        assert 'parallel_track:working_space: "ACEScg"' in info
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["parallel_track:ocio_config"] == "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3"
    assert verify(folder) == []


def test_the_fallback_rewrite_writes_the_same_pipeline_header(tmp_path, monkeypatch):
    import review.publish as publish_module

    def unsupported(*args, **kwargs):
        raise publish_module.UnsupportedExr("as for a multi-part element")

    monkeypatch.setattr(publish_module, "copy_with_attributes", unsupported)
    folder = publish(_pipeline_plan(tmp_path, [1001, 1002]))
    info = _info(folder / "x.1002.exr")
    for line in ("chromaticities: 0.713, 0.293", "framesPerSecond: 24000/1001", "smpte:TimeCode: 23:59:59:23",
                 "PixelAspectRatio: 2\n", 'parallel_track:ocio_config: "ocio://studio-config-v2.1.0'):
        assert line in info, line


def test_an_element_whose_display_window_is_not_the_plates_is_refused(tmp_path):
    plan = _pipeline_plan(tmp_path, [1001])
    write_exr(tmp_path / "e.1001.exr", np.zeros((10, 10, 4), np.float32), display_window=Window(0, 0, 10, 10))
    with pytest.raises(PublishError, match=r"e\.1001\.exr: display window .*'width': 10.* is not the plate's"):
        publish(plan)
    assert not (tmp_path / "pub" / "v001").exists()


@pytest.mark.parametrize("fps, expected", [(24, (24, 1)), (25, (25, 1)), (Decimal("23.976"), (24000, 1001)),
                                           (Decimal("29.97"), (30000, 1001)), (Decimal("59.94"), (60000, 1001)),
                                           (Decimal("47.952"), (48000, 1001)), (Decimal("12.5"), (25, 2))])
def test_fps_becomes_the_rational_a_pipeline_expects(fps, expected):
    value = fps_fraction(fps)
    assert (value.numerator, value.denominator) == expected


def _tc(text: str, drop: bool = False) -> int:
    h, m, s, f = (int(part) for part in text.replace(";", ":").split(":"))
    return (0x40 if drop else 0) | _bcd(h) << 24 | _bcd(m) << 16 | _bcd(s) << 8 | _bcd(f)


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


@pytest.mark.parametrize("start, frames, rate, drop, expected", [
    ("01:00:00:00", 1, 24, False, "01:00:00:01"), ("00:59:59:23", 1, 24, False, "01:00:00:00"),
    ("23:59:59:24", 1, 25, False, "00:00:00:00"), ("01:00:00:00", 24 * 3600, 24, False, "02:00:00:00"),
    ("00:00:59;29", 1, 30, True, "00:01:00;02"), ("00:09:59;29", 1, 30, True, "00:10:00;00"),
    ("00:00:00;00", 17982, 30, True, "00:10:00;00"), ("00:01:00;02", -1, 30, True, "00:00:59;29"),
])
def test_timecodes_advance_per_frame_with_drop_frame_counting(start, frames, rate, drop, expected):
    flags = 0x80 | 0x8000  # colour frame and field flags are kept
    assert advance_timecode(_tc(start, drop) | flags, frames, rate) == _tc(expected, drop) | flags
