from pathlib import Path

import pytest

from generation.engine.sequence import (
    MAX_FRAMES,
    frame_path,
    glob_frames,
    parse_frame_range,
    to_hashes,
    to_printf,
)


@pytest.mark.parametrize(
    ("pattern", "frame", "expected"),
    [
        ("plate.####.exr", 7, "plate.0007.exr"),
        ("plate.#.exr", 7, "plate.7.exr"),
        ("plate.%04d.exr", 1001, "plate.1001.exr"),
        ("plate.%d.exr", 12, "plate.12.exr"),
        ("plate.##.exr", 12345, "plate.12345.exr"),
    ],
)
def test_it_expands_hash_and_printf_tokens(pattern: str, frame: int, expected: str) -> None:
    assert frame_path(pattern, frame) == expected


def test_it_rejects_negative_frames() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        frame_path("plate.####.exr", -1)


def test_it_rejects_patterns_without_a_token() -> None:
    with pytest.raises(ValueError, match=r"has no frame number token \(#### or %04d\)"):
        frame_path("plate.exr", 1)


def test_it_rejects_patterns_with_two_tokens() -> None:
    with pytest.raises(ValueError, match="2 frame number tokens"):
        frame_path("shot_####/plate.%04d.exr", 1)


def test_it_converts_between_hashes_and_printf() -> None:
    assert to_printf("a/plate.####.exr") == "a/plate.%04d.exr"
    assert to_printf("plate.#.exr") == "plate.%d.exr"
    assert to_hashes("plate.%04d.exr") == "plate.####.exr"
    assert to_hashes("plate.%d.exr") == "plate.#.exr"


def test_it_globs_only_names_frame_path_would_produce(tmp_path: Path) -> None:
    for name in ["p.1001.exr", "p.0999.exr", "p.12.exr", "p.10000.exr", "p.1002.exr.tmp", "q.1003.exr"]:
        (tmp_path / name).touch()
    assert glob_frames(str(tmp_path / "p.####.exr")) == [999, 1001, 10000]
    assert glob_frames(str(tmp_path / "p.#.exr")) == [12, 1001, 10000]
    assert glob_frames(str(tmp_path / "missing" / "p.####.exr")) == []


@pytest.mark.parametrize(
    ("text", "expected"), [("1001-1024", (1001, 1024)), ("1001", (1001, 1001)), (" 1 - 3 ", (1, 3))]
)
def test_it_parses_frame_ranges(text: str, expected: tuple[int, int]) -> None:
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1024-1001", "after last frame"),
        ("-5", "non-negative"),
        ("-5-3", "non-negative"),
        ("1001-", "FIRST-LAST"),
        ("abc", "FIRST-LAST"),
        ("", "FIRST-LAST"),
        ("1.5", "FIRST-LAST"),
        (f"1-{MAX_FRAMES + 1}", "limit is 10000"),
    ],
)
def test_it_rejects_bad_frame_ranges(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_frame_range(text)


def test_it_accepts_exactly_max_frames() -> None:
    assert parse_frame_range(f"1-{MAX_FRAMES}") == (1, MAX_FRAMES)
