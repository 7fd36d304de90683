"""Parallel Track in Nuke: send the selected plate and matte for variations, get them back as Read nodes.

Select the plate node and the matte node (a node whose name or label says "matte"), then
*Parallel Track > Send selected for variations…*: both are rendered for the frame range through Writes
to shared storage (EXR half, ``####``), the request is submitted, and when every variation has settled
a Read node appears per variation; after a compositor's sign-off, a Read of the released element.

Only the Python standard library is used besides ``nuke``: the client is ``portal/client/api.py``, loaded
by path from this checkout (or from ``$PT_CLIENT_API``), so neither Django nor the portal's own
dependencies need to be importable inside Nuke.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import sys
import threading
import time

import nuke

_HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_API = os.getenv("PT_CLIENT_API") or os.path.join(os.path.dirname(_HERE), "portal", "client", "api.py")
MENU = "Parallel Track"


def _load_client_api():
    """``portal/client/api.py`` as the module ``parallel_track_client`` (the ``portal`` package itself would
    import Celery)."""
    if "parallel_track_client" in sys.modules:
        return sys.modules["parallel_track_client"]
    spec = importlib.util.spec_from_file_location("parallel_track_client", CLIENT_API)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


api = _load_client_api()


def client(server: str | None = None, token: str | None = None):
    """A client from ``$PT_SERVER`` and ``$PT_TOKEN`` (or the arguments)."""
    return api.Client.from_env(server, token)


# -- plate and matte out --------------------------------------------------------------------------------


def plate_and_matte(nodes) -> tuple:
    """(plate, matte) among two selected nodes: the matte is the one whose name or label says "matte"."""
    if len(nodes) != 2:
        raise ValueError("select exactly two nodes: the plate and the matte")
    mattes = [n for n in nodes if "matte" in (n.name() + " " + _label(n)).lower()]
    if len(mattes) != 1:
        raise ValueError('name or label one of the two selected nodes "matte" (it marks the region to replace)')
    plate = nodes[0] if nodes[1] is mattes[0] else nodes[1]
    return plate, mattes[0]


def _label(node) -> str:
    knob = node.knob("label")
    return str(knob.value()) if knob is not None else ""


def render(node, pattern: str, first: int, last: int):
    """Render ``node`` for ``first``–``last`` through a temporary Write: half-float RGBA EXRs at ``pattern``."""
    os.makedirs(os.path.dirname(pattern), exist_ok=True)
    write = nuke.nodes.Write(file=pattern, file_type="exr", datatype="16 bit half", channels="rgba",
                             create_directories=True)
    write.setInput(0, node)
    try:
        nuke.execute(write, first, last)
    finally:
        nuke.delete(write)
    return pattern


def render_selected(plate, matte, first: int, last: int, folder: str) -> dict:
    """Render plate and matte into ``folder`` (on shared storage the portal reads); their ``####`` patterns."""
    return {"plate": render(plate, os.path.join(folder, "plate", "plate.####.exr"), first, last),
            "matte": render(matte, os.path.join(folder, "matte", "matte.####.exr"), first, last)}


def shot_for(pt, plate, shot: str | None = None) -> dict:
    """The shot to generate on: ``shot`` (id or code), ``$PT_SHOT``, or the catalogued plate the Read reads."""
    shot = shot or os.getenv("PT_SHOT")
    if shot:
        return pt.find_shot(shot)
    knob = plate.knob("file")
    path = str(knob.value()) if knob is not None else ""
    for show in pt.shows():
        for candidate in pt.shots(show["code"]):
            if any(api.to_nuke_pattern(p["path_pattern"]) == api.to_nuke_pattern(path) for p in candidate["plates"]):
                return candidate
    raise ValueError("which shot is this? the plate is not a Read of a catalogued plate; set PT_SHOT")


def send(pt, *, plate, matte, first: int, last: int, count: int = 4, prompt: str = "", steps: int = 25,
         shot: str | None = None, render_root: str | None = None) -> dict:
    """Render the plate and matte, submit the request; returns the request as the API created it."""
    found = shot_for(pt, plate, shot)
    root = render_root or os.getenv("PT_NUKE_RENDER_ROOT")
    if not root:
        raise ValueError("set PT_NUKE_RENDER_ROOT to a folder on shared storage the portal reads")
    folder = os.path.join(root, found["show"], found["code"], f"{time.strftime('%Y%m%d-%H%M%S')}-{getpass.getuser()}")
    rendered = render_selected(plate, matte, first, last, folder)
    return pt.submit(shot=found["id"], first_frame=first, last_frame=last, count=count, prompt=prompt, steps=steps,
                     matte_pattern=rendered["matte"], show=found["show"])


# -- elements back in ------------------------------------------------------------------------------------


def read_node(pattern: str, first: int, last: int, *, colorspace: str, name: str):
    """A Read of a premultiplied scene-linear EXR sequence."""
    return nuke.nodes.Read(file=api.to_nuke_pattern(pattern), first=first, last=last, origfirst=first,
                           origlast=last, colorspace=colorspace, premultiplied=True, on_error="black", name=name)


def variation_reads(request: dict, *, colorspace: str) -> list:
    """One Read per finished variation of the request."""
    return [read_node(v["exr_pattern"], request["first_frame"], request["last_frame"], colorspace=colorspace,
                      name=f"PT_{request['shot_code']}_r{request['id']}_{v['label']}")
            for v in request["variations"] if v["status"] == "done" and v["exr_pattern"]]


def release_read(release: dict, request: dict, *, colorspace: str):
    return read_node(release["path_pattern"], request["first_frame"], request["last_frame"], colorspace=colorspace,
                     name=f"PT_{release['shot_code']}_{release['task']}_v{release['version']:03d}")


def _colorspace(pt, request: dict) -> str:
    show = pt.shot(request["shot"])["show"]
    return pt.show(show)["working_space"]


def load_variations(pt, request_id: int, *, timeout: float | None = None) -> tuple[dict, list]:
    """Follow the request until it settles; then its variations as Read nodes."""
    request = pt.follow(request_id, until="review", timeout=timeout)
    if request["status"] in api.UNSUCCESSFUL:
        raise RuntimeError(f"request {request_id} {request['status']}: nothing to load")
    return request, variation_reads(request, colorspace=_colorspace(pt, request))


def load_release(pt, request_id: int, *, wait: bool = True, timeout: float | None = None):
    """A Read of the request's released element, waiting for the release when ``wait``; None if there is none."""
    request = pt.follow(request_id, until="released", timeout=timeout) if wait else pt.request(request_id)
    done = [r for r in pt.releases(request=request_id) if r["status"] == "done"]
    if not done:
        return None
    return release_read(done[0], request, colorspace=_colorspace(pt, request))


# -- the menu --------------------------------------------------------------------------------------------


def install() -> None:
    """Add the Parallel Track menu (call from menu.py)."""
    menu = nuke.menu("Nuke").addMenu(MENU)
    menu.addCommand("Send selected for variations...", send_selected_command)
    menu.addCommand("Load variations of a request...", load_variations_command)
    menu.addCommand("Load release of a request...", load_release_command)


def send_selected_command() -> threading.Thread | None:
    """Menu: render and send the selected plate and matte; Reads appear as the request moves on."""
    try:
        plate, matte = plate_and_matte(nuke.selectedNodes())
    except ValueError as exc:
        nuke.message(str(exc))
        return None
    root = nuke.root()
    frames = nuke.getInput("Frames (first-last)", f"{int(root['first_frame'].value())}-{int(root['last_frame'].value())}")
    count = nuke.getInput("How many variations?", "4")
    prompt = nuke.getInput("Prompt (optional)", "")
    steps = nuke.getInput("Denoising steps", "25")
    if not frames or not count or not steps:
        return None
    first, _, last = frames.partition("-")
    try:
        pt = client()
        request = send(pt, plate=plate, matte=matte, first=int(first), last=int(last or first), count=int(count),
                       prompt=prompt or "", steps=int(steps))
    except (api.ApiError, ValueError) as exc:
        nuke.message(f"Parallel Track: {exc}")
        return None
    nuke.message(f"Parallel Track: request {request['id']} submitted; Read nodes follow when it settles.")
    return _in_background(_follow_to_the_end, pt, request["id"])


def load_variations_command() -> None:
    request_id = nuke.getInput("Request id", "")
    if request_id:
        _in_background(_variations_when_settled, client(), int(request_id))


def load_release_command() -> None:
    request_id = nuke.getInput("Request id", "")
    if not request_id:
        return
    try:
        read = load_release(client(), int(request_id), wait=False)
    except api.ApiError as exc:
        nuke.message(f"Parallel Track: {exc}")
        return
    if read is None:
        nuke.message(f"Parallel Track: request {request_id} has no release yet")


def _follow_to_the_end(pt, request_id: int) -> None:
    """Variations as Reads once settled; then, whenever it is signed off, the released element."""
    if not _variations_when_settled(pt, request_id):
        return
    request = pt.follow(request_id, until="released")
    if request["status"] == "released":
        nuke.executeInMainThread(load_release, (pt, request_id), {"wait": False})


def _variations_when_settled(pt, request_id: int) -> bool:
    """Wait in this (background) thread; create the Reads in Nuke's main thread."""
    request = pt.follow(request_id, until="review")
    if request["status"] in api.UNSUCCESSFUL:
        nuke.executeInMainThread(nuke.message, (f"Parallel Track: request {request_id} {request['status']}",))
        return False
    nuke.executeInMainThread(variation_reads, (request,), {"colorspace": _colorspace(pt, request)})
    return True


def _in_background(fn, *args) -> threading.Thread:
    def run():
        try:
            fn(*args)
        except Exception as exc:  # a thread's error would otherwise vanish into the script editor
            nuke.executeInMainThread(nuke.message, (f"Parallel Track: {exc}",))

    thread = threading.Thread(target=run, name="parallel-track", daemon=True)
    thread.start()
    return thread
