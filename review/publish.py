"""Writing a released element into the publish area, atomically, and verifying it later.

Pure Python over OpenImageIO (no Django): paths and dictionaries in, files out. A version folder appears
under its final name only when every frame, the checksum manifest, the provenance sidecar and the Nuke
snippet are complete; until then everything lives in a hidden sibling folder on the same filesystem. Every
file's data is on disk (fdatasync) before that rename, and the rename itself before `publish` returns.

Every frame's header carries what the pipeline reads, beside the provenance: the working space's
`chromaticities` (AP1 for ACEScg), `framesPerSecond` (the show's fps as a rational), the plate's `timeCode`
(its own frame's, else the first frame's advanced), its `pixelAspectRatio`, the OCIO config and working space.
"""

import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import OpenImageIO as oiio

from generation.engine import colour, frames
from generation.engine.sequence import frame_path
from review.exrheader import (
    Typed,
    UnsupportedExr,
    advance_timecode,
    chromaticities,
    copy_with_attributes,
    fps_fraction,
    rational,
    sha256_of,
)

MANIFEST = "manifest.sha256"
PROVENANCE = "provenance.json"


class PublishError(RuntimeError):
    pass


@dataclass(frozen=True)
class PublishPlan:
    source_pattern: str  # the variation's element frames
    target_pattern: str  # inside the final version folder (absolute)
    frames: list[int]
    attributes: dict[str, str]  # provenance written into every frame's header
    colourspace: str  # the working space the element is in
    release_id: int
    ocio_config: str = ""  # the show's pinned config ("": none recorded, no chromaticities)
    fps: Decimal | float | None = None  # the show's
    plate_pattern: str = ""  # the plate the element was made on: its timeCode, pixel aspect and display window
    threads: int = 0  # frames written at a time (0: one per core, at most 4)
    attempt: int = 0  # the release's attempt (its lease's count): each writes its own staging folder

    @property
    def version_dir(self) -> Path:
        folder = Path(self.target_pattern).parent
        if not folder.is_absolute() or len(folder.parts) < 3:
            raise PublishError(f"{self.target_pattern}: a publish path must be absolute and inside a publish root")
        return folder

    @property
    def staging_dir(self) -> Path:
        base = f".{self.version_dir.name}.partial-{self.release_id}"
        return self.version_dir.parent / (f"{base}.{self.attempt}" if self.attempt else base)

    def dead_attempts(self) -> list[Path]:
        """Staging folders of this release's other attempts (the caller holds the release's lease: theirs died)."""
        base = f".{self.version_dir.name}.partial-{self.release_id}"
        parent = self.version_dir.parent
        found = [parent / base, *parent.glob(f"{base}.*")] if parent.is_dir() else []
        return [f for f in found if f.exists() and f != self.staging_dir]


def publish_threads(threads: int = 0) -> int:
    """Frames written or checked at a time: ``threads``, or one per core (at most 4) when 0."""
    return max(1, threads or min(4, os.cpu_count() or 1))


def publish(plan: PublishPlan, *, on_frame: Callable[[int, int], None] | None = None,
            before_rename: Callable[[], None] | None = None) -> Path:
    """Write the element into its version folder; return the folder. Idempotent for the same release.

    ``before_rename``: called just before the staging folder becomes the version; it raises to stop the move
    (the release's lease was lost: another attempt owns the version now)."""
    final = plan.version_dir
    if final.exists():
        if _provenance_release(final) == plan.release_id and not verify(final):
            return final  # this release already completed
        raise PublishError(f"{final} already exists and belongs to another release")
    staging = plan.staging_dir
    for dead in [staging, *plan.dead_attempts()]:  # killed earlier attempts of this release
        shutil.rmtree(dead, ignore_errors=True)
    new_folders = [f for f in staging.parents if not f.exists()]  # a first version of its shot or task
    try:
        staging.mkdir(parents=True)
        names = [Path(frame_path(plan.target_pattern, frame)).name for frame in plan.frames]
        header = _PipelineHeader(plan)

        def write(index: int) -> str:
            source = frame_path(plan.source_pattern, plan.frames[index])
            return _write_frame(source, staging / names[index], header.attributes(plan.frames[index]),
                                header.display_window)

        lines = []
        # The kernel copy and the hashing release the GIL: a frame per core keeps the cores busy.
        with ThreadPoolExecutor(max_workers=publish_threads(plan.threads), thread_name_prefix="publish") as pool:
            try:
                for done, digest in enumerate(pool.map(write, range(len(names))), start=1):
                    lines.append(f"{digest}  {names[done - 1]}\n")
                    if on_frame:
                        on_frame(done, len(names))
                # Every frame's data on disk before the rename. Its writeback started as it was written,
                # so this mostly waits for the last frames and commits the journal.
                list(pool.map(lambda name: _fsync(staging / name, os.fdatasync), names))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # no frame lands after the cleanup below
                raise
        _write_text(staging / MANIFEST, "".join(lines))
        _write_text(staging / PROVENANCE, json.dumps(
            {**{k: v for k, v in header.common.items() if isinstance(v, str)}, "release_id": plan.release_id,
             "frames": [plan.frames[0], plan.frames[-1]], "path": plan.target_pattern}, indent=2, sort_keys=True))
        _write_text(staging / f"{Path(plan.target_pattern).name.split('.')[0]}.nk", nuke_read_snippet(plan))
        _fsync(staging)
        if before_rename is not None:
            before_rename()
        os.rename(staging, final)
        for folder in [final.parent, *(f.parent for f in new_folders)]:  # every new name, durable
            _fsync(folder)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise PublishError(f"could not write release into {final.parent}: {exc.strerror or exc}") from exc
        raise
    return final


class _PipelineHeader:
    """The header attributes of each released frame: the provenance plus what the pipeline reads."""

    def __init__(self, plan: PublishPlan) -> None:
        self.plan = plan
        self.common: dict[str, str | Typed] = dict(plan.attributes)
        self.common["parallel_track:working_space"] = plan.colourspace
        if plan.ocio_config:
            self.common["parallel_track:ocio_config"] = plan.ocio_config
            try:
                xy = colour.chromaticities(plan.colourspace, plan.ocio_config)
            except colour.ColourError as exc:
                raise PublishError(f"working space: {exc}") from exc
            if xy is not None:
                self.common["chromaticities"] = chromaticities(xy)
        self.rate = None
        if plan.fps is not None:
            fps = fps_fraction(plan.fps)
            self.common["framesPerSecond"] = rational(fps)
            self.rate = max(1, round(fps))
        self.first = self._plate(plan.frames[0]) if plan.plate_pattern else None
        if plan.plate_pattern and self.first is None:
            raise PublishError(f"{frame_path(plan.plate_pattern, plan.frames[0])}: the plate frame is missing")
        # Windows and pixel aspect are the same on every frame (checked at ingest); timecodes need not be.
        self.display_window = self.first.display_window if self.first is not None else None

    def _plate(self, frame: int) -> frames.FrameHeader | None:
        path = frame_path(self.plan.plate_pattern, frame)
        try:
            return frames.read_header(path, frame=frame, verify_pixels=False) if os.path.isfile(path) else None
        except frames.FrameError as exc:
            raise PublishError(f"plate: {exc}") from exc

    def attributes(self, frame: int) -> dict[str, str | Typed]:
        out = dict(self.common)
        if self.first is None:
            return out
        out["pixelAspectRatio"] = Typed("float", (self.first.pixel_aspect,))
        # Only a plate that has a timecode is read again per frame, for that frame's own.
        plate = (self._plate(frame) if frame != self.first.frame else self.first) if self.first.timecode else None
        timecode = self._timecode(frame, plate)
        if timecode is not None:
            out["timeCode"] = Typed("timecode", timecode)
        return out

    def _timecode(self, frame: int, plate: frames.FrameHeader | None) -> tuple[int, int] | None:
        """The plate frame's own timecode; else the first frame's, advanced (a plate that carries one only there)."""
        if plate is not None and plate.timecode is not None:
            return plate.timecode
        first = self.first.timecode if self.first is not None else None
        if first is None or self.rate is None:
            return first
        return advance_timecode(first[0], frame - self.plan.frames[0], self.rate), first[1]


def _write_frame(source: str, target: Path, attributes: dict[str, str | Typed],
                 display_window: frames.Window | None = None) -> str:
    """The element frame with the provenance in its header (pixels copied, not re-encoded); its sha256."""
    _check_element(source, display_window)
    try:
        return copy_with_attributes(source, target, attributes, writeback=True)
    except UnsupportedExr:
        _rewrite_frame(source, target, attributes)
        return sha256_of(target)


def _check_element(source: str, display_window: frames.Window | None) -> None:
    """An RGBA half element, over ``display_window`` (the plate's) when given."""
    image = oiio.ImageInput.open(source)
    if image is None:
        raise PublishError(f"{source}: not a readable element ({oiio.geterror()})")
    try:
        spec = image.spec()
        # The two elements a task may make (TaskInfo.element): premultiplied RGBA, or a roto matte (A only).
        if list(spec.channelnames) not in (["R", "G", "B", "A"], ["A"]):
            raise PublishError(f"{source}: an element must be RGBA or a matte (A), found {', '.join(spec.channelnames)}")
        if spec.format != oiio.TypeDesc(oiio.HALF):
            raise PublishError(f"{source}: an element must be half float, found {spec.format}")
        found = frames.Window(spec.full_x, spec.full_y, spec.full_width, spec.full_height)
        if display_window is not None and found != display_window:
            raise PublishError(f"{os.path.basename(source)}: display window {found.as_dict()} "
                               f"is not the plate's {display_window.as_dict()}")
    finally:
        image.close()


# OpenImageIO's names and types for the typed EXR attributes (the fallback path writes through it).
_OIIO_ATTRIBUTES = {"chromaticities": ("chromaticities", oiio.TypeDesc("float[8]")),
                    "framesPerSecond": ("framesPerSecond", oiio.TypeRational),  # OpenEXR's name; OIIO's is not
                    "timeCode": ("smpte:TimeCode", oiio.TypeTimeCode),
                    "pixelAspectRatio": ("PixelAspectRatio", oiio.TypeFloat)}


def _rewrite_frame(source: str, target: Path, attributes: dict[str, str | Typed]) -> None:
    buf = oiio.ImageBuf(source)
    spec = buf.specmod()
    for key, value in attributes.items():
        if isinstance(value, Typed):
            name, kind = _OIIO_ATTRIBUTES[key]
            spec.attribute(name, kind, value.values if len(value.values) > 1 else value.values[0])
        else:
            spec.attribute(key, str(value))
    buf.set_write_format(oiio.HALF)
    if not buf.write(str(target)):
        err = buf.geterror()
        raise OSError(28 if "space" in err.lower() else 5, err)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path, sync: Callable[[int], None] = os.fsync) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        sync(fd)
    finally:
        os.close(fd)


def nuke_read_snippet(plan: PublishPlan) -> str:
    first, last = plan.frames[0], plan.frames[-1]
    name = Path(plan.target_pattern).name.split(".")[0]
    return (f'Read {{\n inputs 0\n file "{plan.target_pattern}"\n first {first}\n last {last}\n'
            f" origfirst {first}\n origlast {last}\n premultiplied true\n"
            f' colorspace "{plan.colourspace}"\n name Read_{name}\n}}\n')


def _provenance_release(folder: Path) -> int | None:
    try:
        return json.loads((folder / PROVENANCE).read_text()).get("release_id")
    except (OSError, ValueError):
        return None


def read_provenance(folder: Path) -> dict:
    return json.loads((Path(folder) / PROVENANCE).read_text())


def verify(folder: Path, *, threads: int = 0) -> list[str]:
    """Problems found checking every frame against the manifest (empty when the release is intact)."""
    folder = Path(folder)
    try:
        lines = (folder / MANIFEST).read_text().splitlines()
    except OSError as exc:
        return [f"{folder}: no readable manifest ({exc.strerror})"]
    entries = [line.partition("  ")[::2] for line in lines]

    def problem(digest: str, name: str) -> str | None:
        path = folder / name
        if not name or path.parent != folder:
            return f"{digest} {name}: not a manifest line"
        if not path.is_file():
            return f"{name}: missing"
        if sha256_of(path) != digest:
            return f"{name}: checksum does not match the manifest"
        return None

    with ThreadPoolExecutor(max_workers=publish_threads(threads), thread_name_prefix="verify") as pool:
        problems = [p for p in pool.map(problem, *zip(*entries, strict=True)) if p] if entries else []
    listed = {name for _, name in entries}
    problems += [f"{name}: not in the manifest" for name in sorted({p.name for p in folder.glob("*.exr")} - listed)]
    return problems


def frame_attributes(path: str) -> dict[str, str]:
    image = oiio.ImageInput.open(path)
    if image is None:
        raise PublishError(f"{path}: {oiio.geterror()}")
    try:
        return {a.name: str(a.value) for a in image.spec().extra_attribs}
    finally:
        image.close()
