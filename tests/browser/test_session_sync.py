"""A dailies session in headless Chromium with three participants: the driver changes item, frame, tile, view
mode and display/view and the others follow; control is handed over; a participant who steps away and comes back
lands on the driver's state; a participant whose socket drops catches up on reconnect; an outsider cannot join."""

import pytest

from generation.models import Variation
from review import sessions
from review.models import SessionAttendee
from tests.browser.test_review_loop import ask_for_variations, wait_for_status
from tests.browser.test_review_views import shots_dir, sky_model  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# New sockets can be pointed at a closed port ("the network is down") until the test lets them through again.
BLOCKABLE = """
(() => {
  const Real = window.WebSocket;
  const ctl = window.__ptNet = {block: false, opened: 0};
  window.WebSocket = class extends Real {
    constructor(url, protocols) {
      // While blocked a new socket goes to a path the portal does not serve (same origin: the CSP allows no other port).
      super(ctl.block ? url.replace("/ws/", "/ws-cut/") : url, protocols);
      if (!ctl.block) this.addEventListener("open", () => { ctl.opened += 1; });
    }
  };
})();
"""

STATE = "() => ({item: ptSession.view.item, frame: ptSession.view.frame, tile: ptSession.view.tile, " \
        "mode: ptSession.view.mode, display: ptSession.view.display, view: ptSession.view.view, " \
        "driver: ptSession.driver, following: ptSession.following})"
IMAGES_READY = """(ids) => ids.every((id) => { const i = document.getElementById(id);
  return i && !i.hidden && i.complete && i.naturalWidth > 0; })"""
LIVE = "() => document.getElementById('session').dataset.live === '1'"


def state(page) -> dict:
    return page.evaluate(STATE)


def wait_for(page, **wanted) -> None:
    """Until the page's view has every ``wanted`` field."""
    check = f"(w) => {{ const s = ({STATE})(); return Object.keys(w).every((k) => s[k] === w[k]); }}"
    page.wait_for_function(check, arg=wanted, timeout=10_000)


def shown_src(page, selector: str) -> str:
    return page.locator(selector).first.get_attribute("src") or ""


@pytest.fixture
def two_requests(open_page, compositor, shot, sky_model):  # noqa: F811 - the imported fixture
    cora = open_page("cora", "cora-pw")
    ids = []
    for _ in range(2):
        ids.append(ask_for_variations(cora, shot, count=2, steps=2))
        wait_for_status(cora, "In review")
    cora.context.close()
    return ids


def test_three_participants_follow_the_driver_hand_over_step_away_and_catch_up(
        open_page, supervisor, director, compositor, outsider, show, shot, two_requests, shots_dir):  # noqa: F811
    session = sessions.session_create(user=supervisor, show=show, name="sq010 dailies",
                                      items=[("request", pk) for pk in two_requests])
    items = list(session.items.order_by("position"))
    url = f"/sessions/{session.pk}/"
    sam = open_page("sam", "sam-pw")
    dana = open_page("dana", "dana-pw")
    cora = open_page("cora", "cora-pw", init_script=BLOCKABLE)
    for page in (sam, dana, cora):
        page.goto(url)
        page.wait_for_function(LIVE)
    for page in (sam, dana, cora):
        page.wait_for_function("() => ptSession.present.length === 3")
    assert state(dana)["driver"] == "sam"
    assert sam.locator("#you-drive").is_visible() and not dana.locator("#you-drive").is_visible()

    # item, frame, tile, view mode, display/view: the driver's, on every page
    second = items[1]
    second_tiles = list(Variation.objects.filter(request=second.request).order_by("index"))
    sam.click(f"#playlist button[data-item='{second.pk}']")
    for page in (dana, cora):
        wait_for(page, item=second.pk, frame=second.request.first_frame, tile=second_tiles[0].pk)
    sam.click("#step-fwd")
    sam.click("#step-fwd")
    frame = second.request.first_frame + 2
    for page in (dana, cora):
        wait_for(page, frame=frame)
        page.wait_for_function("(f) => [...document.querySelectorAll('#grid .tile img')].every((i) => "
                               "i.getAttribute('src').includes(`/${f}.jpg`))", arg=frame)
    sam.click(f"#grid .tile[data-variation='{second_tiles[1].pk}']")
    sam.click(".mode[data-mode=incontext]")
    for page in (dana, cora):
        wait_for(page, tile=second_tiles[1].pk, mode="incontext")
        assert f"/variations/{second_tiles[1].pk}/proxy/{frame}.jpg" in shown_src(page, "#img-a")
        assert f"/requests/{second.request.pk}/plate/{frame}.jpg" in shown_src(page, "#img-b")
    options = sam.locator("#display-view option")
    assert options.count() >= 2
    assert all(o.startswith("sRGB") for o in options.evaluate_all("(os) => os.map((o) => o.dataset.display)"))
    other = options.nth(1).get_attribute("value")
    sam.select_option("#display-view", other)
    picked = sam.evaluate("() => ({display: ptSession.view.display, view: ptSession.view.view})")
    for page in (dana, cora):
        wait_for(page, **picked)
        src = shown_src(page, "#img-a")
        assert "display=" in src and "view=" in src, src
    for page in (sam, dana):  # the matte outline traced over the comp in context
        page.wait_for_function("() => !!document.getElementById('outline').dataset.src")
        page.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"])
    sam.screenshot(path=str(shots_dir / "session-driver.png"))
    dana.screenshot(path=str(shots_dir / "session-follower.png"))

    # exposure before the view, then the alpha: the followers' images are the server's looks, and they load
    sam.locator("#exposure").evaluate("(e) => { e.value = 2; e.dispatchEvent(new Event('change')); }")
    for page in (dana, cora):
        page.wait_for_function("() => ptSession.view.exposure === 2")
        page.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"])
        src = shown_src(page, "#img-a")
        assert f"/variations/{second_tiles[1].pk}/look/{frame}.jpg" in src and "exposure=2" in src, src
        assert "/look/" in shown_src(page, "#img-b")
    dana.screenshot(path=str(shots_dir / "session-exposure.png"))
    sam.select_option("#channels", "alpha")
    for page in (dana, cora):
        page.wait_for_function("() => ptSession.view.channels === 'alpha'")
        page.wait_for_function(IMAGES_READY, arg=["img-a"])
        assert "kind=alpha" in shown_src(page, "#img-a")
    dana.screenshot(path=str(shots_dir / "session-alpha.png"))
    sam.select_option("#channels", "rgb")
    sam.locator("#exposure").evaluate("(e) => { e.value = 0; e.dispatchEvent(new Event('change')); }")
    wait_for(dana, mode="incontext")
    dana.wait_for_function("() => ptSession.view.exposure === 0 && ptSession.view.channels === 'rgb'")

    # control handed over: dana drives, sam and cora follow
    sam.select_option("#hand-to", "dana")
    sam.click("#hand")
    for page in (sam, dana, cora):
        wait_for(page, driver="dana")
    dana.click(".mode[data-mode=wipe]")
    for page in (sam, cora):
        wait_for(page, mode="wipe")
    # sam is no longer the driver: a drive from sam is refused by the server, nobody moves
    sam.evaluate("() => ptSession.socket.send(JSON.stringify({type: 'drive', state: {mode: 'grid'}}))")
    sam.wait_for_function("() => ptSession.errors.some((e) => e.code === 'not_driver')")
    assert state(cora)["mode"] == "wipe"

    # cora steps away, looks at something else; the driver moves on; cora comes back to the driver's state
    cora.click("#follow")
    cora.click(f"#playlist button[data-item='{items[0].pk}']")
    assert state(cora)["following"] is False and state(cora)["item"] == items[0].pk
    dana.click(".mode[data-mode=single]")
    dana.click("#step-back")
    wait_for(sam, mode="single", frame=frame - 1)
    cora.wait_for_timeout(300)
    assert state(cora)["item"] == items[0].pk  # away: not moved
    cora.click("#follow")
    wait_for(cora, item=second.pk, mode="single", frame=frame - 1, tile=second_tiles[1].pk, following=True)

    # cora's network drops: the driver goes on; cora's reconnect (after=<last seq>) lands on the newest state
    cora.evaluate("() => { window.__ptNet.block = true; ptSession.socket.close(); }")
    cora.wait_for_function("() => document.getElementById('session').dataset.live === '0'")
    before = cora.evaluate("() => ptSession.lastSeq")
    dana.click(f"#playlist button[data-item='{items[0].pk}']")
    dana.click("#step-fwd")
    dana.click(".mode[data-mode=grid]")
    first_item = items[0].request.first_frame + 1
    wait_for(sam, item=items[0].pk, frame=first_item, mode="grid")
    cora.wait_for_timeout(500)
    assert state(cora)["mode"] == "single"  # nothing arrives while the network is down
    cora.evaluate("() => { window.__ptNet.block = false; }")
    wait_for(cora, item=items[0].pk, frame=first_item, mode="grid")
    seen = cora.evaluate("() => ptSession.seen")
    after = [s for s in seen if s > before]
    assert after == list(range(before + 1, before + 1 + len(after)))  # every missed event, in order, once
    assert SessionAttendee.objects.filter(session=session).count() == 3

    # a note and a pick taken in the session: on their variation as usual, and listed on every page
    cora.fill("#note-text", "horizon sits too low")
    cora.click("#note-add")
    dana.click("#pick-selected")
    for page in (sam, dana, cora):
        page.wait_for_function("(f) => [...document.querySelectorAll('#marks li')].map((li) => li.textContent)"
                               ".some((t) => t.includes('horizon sits too low') && t.includes(`@ ${f}`))",
                               arg=first_item)
        page.wait_for_function("() => !!document.querySelector('#marks li[data-kind=pick]')")
    tile = Variation.objects.get(pk=state(sam)["tile"])
    assert tile.notes.get().frame == first_item and tile.picks.get().picked_by == director

    # a supervisor moves the second item up: every playlist shows the new order
    sam.click("#playlist li:nth-child(2) button.up")
    for page in (sam, dana, cora):
        page.wait_for_function("(id) => document.querySelector('#playlist li:first-child button.item').dataset.item"
                               " === String(id)", arg=second.pk)
    assert [i.pk for i in session.items.order_by("position")] == [second.pk, items[0].pk]


def test_an_outsider_cannot_join(open_page, supervisor, outsider, show, shot, show_model, portal_server):
    from tests.factories import request_with_done_variations

    request = request_with_done_variations(user=supervisor, shot=shot, model=show_model)
    session = sessions.session_create(user=supervisor, show=show, name="closed", items=[("request", request.pk)])
    otto = open_page("otto", "otto-pw")
    response = otto.goto(f"/sessions/{session.pk}/")
    assert response.status == 404
    code = otto.evaluate("""(id) => new Promise((done) => {
        const s = new WebSocket(`ws://${location.host}/ws/sessions/${id}/?after=0`);
        s.onclose = (e) => done(e.code);
    })""", session.pk)
    assert code == 4403
    assert not SessionAttendee.objects.filter(session=session, user=outsider).exists()

