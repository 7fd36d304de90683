"""The Nuke integration's client code against a live portal, with a stand-in ``nuke`` module."""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generation.engine.sequence import frame_path, to_hashes
from portal.client.api import Client
from tests.client import fake_nuke
from tests.conftest import REPO

NUKE_MODULE = REPO / "nuke" / "parallel_track_nuke.py"


@pytest.fixture
def ptn(monkeypatch):
    """parallel_track_nuke, imported with the stand-in as ``nuke``."""
    fake_nuke.reset()
    monkeypatch.setitem(sys.modules, "nuke", fake_nuke)
    spec = importlib.util.spec_from_file_location("parallel_track_nuke", NUKE_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reads() -> list:
    return [n for n in fake_nuke.created if n.Class() == "Read" and n.name().startswith("PT_")]


def wait_for(predicate, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout:.0f} s; messages: {fake_nuke.messages}")


def test_the_client_side_needs_only_the_standard_library():
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'tests' / 'client')!r}); import fake_nuke; "
            "sys.modules['nuke'] = fake_nuke; import importlib.util as u; "
            f"s = u.spec_from_file_location('ptn', {str(NUKE_MODULE)!r}); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); m.install(); "
            "assert not {'django', 'portal', 'websockets', 'requests'} & set(sys.modules), sorted(sys.modules)")
    # -S: no site-packages at all, as in a Nuke that has none of the portal's dependencies.
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(transaction=True)
def test_send_selected_renders_submits_and_reads_back_the_variations_and_the_release(
    ptn, live_portal, token_for, compositor, director, shot, show_model, small_plate, storage, monkeypatch
):
    monkeypatch.setenv("PT_SERVER", live_portal.url)
    monkeypatch.setenv("PT_TOKEN", token_for(compositor))
    monkeypatch.setenv("PT_NUKE_RENDER_ROOT", str(storage / "plates" / "nuke"))
    monkeypatch.delenv("PT_SHOT", raising=False)
    ptn.install()
    assert "Send selected for variations..." in fake_nuke.menus["Nuke"].items["Parallel Track"].items

    plate = fake_nuke.nodes.Read(file=to_hashes(shot.plates.get().path_pattern), name="Read_plate")
    matte = fake_nuke.nodes.Read(file=to_hashes(small_plate["matte"]), name="Read1", label="sky matte")
    fake_nuke.selected[:] = [matte, plate]
    fake_nuke.inputs[:] = ["1001-1003", "2", "stormy dusk", "2"]
    follower = ptn.send_selected_command()
    assert follower is not None, fake_nuke.messages

    writes = [n for n in fake_nuke.deleted if n.Class() == "Write"]
    assert [(w.input(0), w.value("file_type"), w.value("datatype")) for w in writes] == [
        (plate, "exr", "16 bit half"), (matte, "exr", "16 bit half")]
    assert [(first, last) for _, first, last in fake_nuke.executed] == [(1001, 1003), (1001, 1003)]
    matte_render = writes[1].value("file")
    assert matte_render.endswith("matte.####.exr") and Path(frame_path(matte_render, 1003)).is_file()

    wait_for(lambda: len(reads()) == 2, "two variation Reads", timeout=60)
    cora = Client(live_portal.url, token_for(compositor))
    request = cora.get("/api/requests/")["results"][0]
    assert request["matte_pattern"] == matte_render and request["status"] == "review"
    for read, variation in zip(reads(), request["variations"], strict=True):
        assert read.value("file") == to_hashes(variation["exr_pattern"]) and "#" in read.value("file")
        assert (read.value("first"), read.value("last"), read.value("origfirst"), read.value("origlast")) == (
            1001, 1003, 1001, 1003)
        assert read.value("colorspace") == "ACEScg" and read.value("premultiplied") is True
        assert read.name() == f"PT_{shot.code}_r{request['id']}_{variation['label']}"

    Client(live_portal.url, token_for(director)).pick(request["variations"][0]["id"])
    cora.signoff(request["id"])
    follower.join(timeout=45)
    assert not follower.is_alive(), "the follower did not see the release"
    release = cora.releases(request=request["id"])[0]
    released = reads()[2]
    assert released.value("file") == to_hashes(release["path_pattern"])
    assert released.name() == f"PT_{shot.code}_sky_replacement_v001"
    assert (released.value("first"), released.value("last")) == (1001, 1003)
    assert Path(frame_path(release["path_pattern"], 1001)).is_file()

    fake_nuke.inputs[:] = [str(request["id"])]
    ptn.load_release_command()
    assert reads()[3].value("file") == released.value("file") and not fake_nuke.messages[1:]
