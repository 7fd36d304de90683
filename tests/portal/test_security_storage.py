"""Storage isolation: every file the portal serves or reads for a request is resolved fully (symlinks followed,
the file too) and must lie in the plate roots or the request's own show's work/publish subtree. Missing and
"not yours" answer the same; messages name paths relative to their root."""

import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from generation import services
from generation.engine.sequence import frame_path
from portal.errors import PortalError
from portal.models import Membership, Show
from portal.paths import shown
from tests.conftest import PLATE_FIRST, PLATE_LAST, inside
from tests.factories import request_with_done_variations

SECRET = b"\xff\xd8 secret from outside every root"


@pytest.fixture
def scratch(storage):
    """Folders of this test under the plate and work roots, removed afterwards."""
    made = []

    def make(root: Path) -> Path:
        folder = root / f"sec-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        made.append((folder, root))
        return folder

    yield make
    for folder, root in made:
        shutil.rmtree(inside(folder, root), ignore_errors=True)


@pytest.fixture
def outside_file(tmp_path) -> Path:
    target = tmp_path / "secret.jpg"
    target.write_bytes(SECRET)
    return target


def _variation_with_proxies(compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=1)
    variation = request.variations.get()
    work_dir = Path(settings.WORK_ROOT) / shot.show.code / shot.code / f"request-{request.pk}-{uuid.uuid4().hex[:6]}"
    (work_dir / "proxy").mkdir(parents=True)
    variation.work_dir = str(work_dir / "v01")
    variation.save(update_fields=["work_dir"])
    proxy_dir = work_dir / "v01" / "proxy"
    proxy_dir.mkdir(parents=True)
    return variation, proxy_dir


def _proxy(client, variation, frame):
    return client.get(f"/media/variations/{variation.pk}/proxy/{frame}.jpg")


def test_a_proxy_replaced_by_a_symlink_to_outside_every_root_is_not_served(client, producer, compositor, shot,
                                                                           show_model, outside_file):
    variation, proxy_dir = _variation_with_proxies(compositor, shot, show_model)
    try:
        (proxy_dir / f"incontext.{PLATE_FIRST:04d}.jpg").write_bytes(b"\xff\xd8 a real proxy")
        (proxy_dir / f"incontext.{PLATE_FIRST + 1:04d}.jpg").symlink_to(outside_file)
        client.force_login(producer)
        assert b"".join(_proxy(client, variation, PLATE_FIRST).streaming_content) == b"\xff\xd8 a real proxy"
        escaped = _proxy(client, variation, PLATE_FIRST + 1)
        missing = _proxy(client, variation, PLATE_FIRST + 2)
        assert escaped.status_code == missing.status_code == 404
        assert escaped.content == missing.content  # no existence oracle
        assert SECRET not in escaped.content
    finally:
        shutil.rmtree(inside(proxy_dir.parent.parent, settings.WORK_ROOT))


def test_a_proxy_of_another_shows_work_folder_is_not_served(client, producer, compositor, shot, show_model):
    variation, proxy_dir = _variation_with_proxies(compositor, shot, show_model)
    other = Path(settings.WORK_ROOT) / "othershow" / f"sec-{uuid.uuid4().hex[:8]}"
    try:
        (other / "proxy").mkdir(parents=True)
        (other / "proxy" / f"incontext.{PLATE_FIRST:04d}.jpg").write_bytes(b"\xff\xd8 other show")
        variation.work_dir = str(other)
        variation.save(update_fields=["work_dir"])
        client.force_login(producer)
        assert _proxy(client, variation, PLATE_FIRST).status_code == 404
    finally:
        shutil.rmtree(inside(other, settings.WORK_ROOT))
        shutil.rmtree(inside(proxy_dir.parent.parent, settings.WORK_ROOT))


def _copy_matte(small_plate, folder: Path, link_to: Path | None = None) -> str:
    """The demo plate's matte frames in ``folder`` (as symlinks to copies in ``link_to`` when given)."""
    pattern = str(folder / "matte.####.png")
    for frame in range(PLATE_FIRST, PLATE_LAST + 1):
        source = Path(frame_path(small_plate["matte"], frame))
        name = Path(frame_path(pattern, frame)).name
        if link_to is None:
            shutil.copy(source, folder / name)
        else:
            shutil.copy(source, link_to / name)
            (folder / name).symlink_to(link_to / name)
    return pattern


def _ask(user, shot, model, matte_pattern):
    return services.request_create(user=user, shot=shot, model=model, first_frame=PLATE_FIRST,
                                   last_frame=PLATE_LAST, count=1, matte_pattern=matte_pattern, steps=2)


def _refusal(user, shot, model, matte_pattern) -> PortalError:
    with pytest.raises(PortalError) as caught:
        _ask(user, shot, model, matte_pattern)
    assert caught.value.status == 400
    for server_path in (settings.VAR_DIR, settings.WORK_ROOT, *settings.PLATE_ROOTS):
        assert str(Path(server_path).resolve()) not in caught.value.message
        assert str(server_path) not in caught.value.message
    return caught.value


def _same_answer(a: PortalError, a_pattern: str, b: PortalError, b_pattern: str) -> None:
    assert a.code == b.code
    assert a.message.replace(shown(a_pattern), "X") == b.message.replace(shown(b_pattern), "X")


def test_a_matte_of_symlinked_frames_outside_the_roots_is_refused_like_a_missing_one(
        compositor, shot, show_model, small_plate, scratch, tmp_path):
    linked = _copy_matte(small_plate, scratch(Path(settings.PLATE_ROOTS[0])), link_to=tmp_path)
    absent = str(scratch(Path(settings.PLATE_ROOTS[0])) / "matte.####.png")
    escaped = _refusal(compositor, shot, show_model, linked)
    _same_answer(escaped, linked, _refusal(compositor, shot, show_model, absent), absent)
    assert str(tmp_path) not in escaped.message
    assert escaped.message.startswith("matte plates:")


def test_a_matte_in_another_shows_work_folder_is_refused_like_a_missing_one(compositor, shot, show_model,
                                                                             small_plate, scratch):
    other = Show.objects.create(code="oth", name="Other Show")
    Membership.objects.create(user=compositor, show=other, role="compositor")  # even a member of both shows
    theirs = _copy_matte(small_plate, scratch(Path(settings.WORK_ROOT) / other.code))
    loose = _copy_matte(small_plate, scratch(Path(settings.WORK_ROOT)))  # in no show's subtree
    absent = str(scratch(Path(settings.WORK_ROOT) / shot.show.code) / "matte.####.png")
    missing = _refusal(compositor, shot, show_model, absent)
    _same_answer(_refusal(compositor, shot, show_model, theirs), theirs, missing, absent)
    _same_answer(_refusal(compositor, shot, show_model, loose), loose, missing, absent)


def test_a_matte_in_the_shows_own_work_folder_or_the_plate_roots_is_accepted(compositor, shot, show_model,
                                                                             small_plate, scratch):
    ours = _copy_matte(small_plate, scratch(Path(settings.WORK_ROOT) / shot.show.code))
    assert _ask(compositor, shot, show_model, ours).matte_pattern == str(Path(ours).resolve())
    assert _ask(compositor, shot, show_model, small_plate["matte"]).matte_pattern


@pytest.mark.parametrize("pattern", ["matte.png", "matte.####.####.png", "m####/matte.png"])
def test_a_malformed_matte_pattern_is_refused_at_request_time(client, compositor, shot, show_model, pattern,
                                                              scratch):
    client.force_login(compositor)
    folder = scratch(Path(settings.PLATE_ROOTS[0]))
    response = client.post("/api/requests/", {
        "shot": shot.pk, "model": show_model.pk, "first_frame": PLATE_FIRST, "last_frame": PLATE_LAST,
        "count": 1, "steps": 2, "matte_pattern": str(folder / pattern)}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_pattern"
    assert str(folder) not in response.json()["message"]


def test_a_matte_missing_a_frame_of_the_range_is_refused(compositor, shot, show_model, small_plate, scratch):
    pattern = _copy_matte(small_plate, scratch(Path(settings.WORK_ROOT) / shot.show.code))
    Path(frame_path(pattern, PLATE_LAST)).unlink()
    assert _refusal(compositor, shot, show_model, pattern).code == "matte_missing"


def test_a_plate_frame_replaced_by_a_symlink_to_outside_the_roots_is_not_read(client, producer, compositor, shot,
                                                                             show_model, small_plate, scratch,
                                                                             tmp_path):
    variation, proxy_dir = _variation_with_proxies(compositor, shot, show_model)
    try:
        folder = scratch(Path(settings.PLATE_ROOTS[0]))
        pattern = str(folder / "plate.####.exr")
        for frame in (PLATE_FIRST, PLATE_FIRST + 1):
            shutil.copy(frame_path(small_plate["plate"], frame), tmp_path / f"{frame}.exr")
        shutil.copy(tmp_path / f"{PLATE_FIRST}.exr", frame_path(pattern, PLATE_FIRST))
        Path(frame_path(pattern, PLATE_FIRST + 1)).symlink_to(tmp_path / f"{PLATE_FIRST + 1}.exr")
        plate = variation.request.plate
        plate.path_pattern = pattern
        plate.save(update_fields=["path_pattern"])
        client.force_login(producer)
        url = f"/media/requests/{variation.request_id}/plate/{{}}.jpg"
        assert client.get(url.format(PLATE_FIRST)).status_code == 200
        escaped, missing = client.get(url.format(PLATE_FIRST + 1)), client.get(url.format(PLATE_FIRST + 2))
        assert escaped.status_code == missing.status_code == 404
        assert escaped.content == missing.content
    finally:
        shutil.rmtree(inside(proxy_dir.parent.parent, settings.WORK_ROOT))
