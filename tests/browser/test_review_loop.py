"""The review loop through the real pages, in headless Chromium, against the portal running as a subprocess."""

import time
from pathlib import Path

import pytest

from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RequestEvent, Variation
from review.models import Release

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records what every websocket of the page receives, and can point new sockets at a path nothing answers ("the
# network is down") so the page's reconnect loop keeps failing until the test lets it through again.
SOCKET_SPY = """
(() => {
  const Real = window.WebSocket;
  const spy = window.__ptSpy = {urls: [], raw: [], block: false};
  window.WebSocket = class extends Real {
    constructor(url, protocols) {
      const blocked = spy.block;
      // A cut socket goes to a path the portal does not serve (same origin: the CSP allows no other port).
      super(blocked ? url.replace("/ws/", "/ws-cut/") : url, protocols);
      spy.urls.push({url, blocked});
      if (!blocked) this.addEventListener("message", (m) => {
        const ev = JSON.parse(m.data);
        if (ev.seq !== undefined && ev.type !== "pong") spy.raw.push(ev.seq);
      });
    }
  };
})();
"""


def ask_for_variations(page, shot, *, count: int, steps: int) -> int:
    """Submit the shot page's "Ask for variations" form; returns the new request's id."""
    page.goto(f"/shots/{shot.pk}/")
    form = page.locator("#new-request")
    form.locator("input[name=count]").fill(str(count))
    form.locator("input[name=steps]").fill(str(steps))
    with page.expect_navigation(url="**/requests/*/"):
        form.locator("button[type=submit]").click()
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def page_state(page) -> dict:
    return page.evaluate("() => ({seen: [...window.ptReview.seen], lastSeq: window.ptReview.lastSeq})")


def db_seqs(request_id: int) -> list[int]:
    return list(RequestEvent.objects.filter(request_id=request_id).order_by("seq").values_list("seq", flat=True))


def last_seq(request_id: int) -> int:
    return GenerationRequest.objects.values_list("last_seq", flat=True).get(pk=request_id)


def wait_caught_up(page, request_id: int, timeout: float = 15.0) -> list[int]:
    """Wait until the page has applied every event the database holds for the request."""
    deadline = time.monotonic() + timeout
    while True:
        target = last_seq(request_id)
        if page_state(page)["lastSeq"] >= target or time.monotonic() > deadline:
            return page_state(page)["seen"]
        page.wait_for_timeout(100)


def wait_for_status(page, text: str, timeout: float = 90_000) -> None:
    page.wait_for_function(
        "(t) => document.getElementById('request-status').textContent.trim() === t", arg=text, timeout=timeout
    )


FIRST_PROXY_SHOWN = """() => {
  const img = [...document.querySelectorAll("#grid .tile img")].find((i) => !i.hidden && i.complete && i.naturalWidth > 0);
  return img ? {status: document.getElementById("request-status").textContent.trim(), src: img.getAttribute("src"),
                seen: window.ptReview.seen.length} : null;
}"""


def test_a_compositor_asks_a_director_picks_and_the_sign_off_releases_v001(
    open_page, compositor, director, shot, show_model, screenshots
):
    cora = open_page("cora", "cora-pw")
    request_id = ask_for_variations(cora, shot, count=2, steps=3)

    # Tiles fill while the jobs run: a proxy is on screen before the request settles into review.
    first = cora.wait_for_function(FIRST_PROXY_SHOWN, polling=50, timeout=60_000).json_value()
    assert first["status"] != "In review", f"the first proxy only showed once the request had settled: {first}"
    assert "/media/variations/" in first["src"]
    assert cora.evaluate(
        "() => [...document.querySelectorAll('#grid .tile img[hidden]')]"
        ".every((i) => getComputedStyle(i).display === 'none')"
    ), "a waiting tile shows a broken image"
    cora.locator("#grid").screenshot(path=str(screenshots / "loop-1-filling.png"))

    dana = open_page("dana", "dana-pw")
    dana.goto(f"/requests/{request_id}/")
    wait_for_status(cora, "In review")
    wait_for_status(dana, "In review", timeout=15_000)
    cora.locator("#grid").screenshot(path=str(screenshots / "loop-2-in-review.png"))

    pick = dana.locator('.tile[data-index="1"] .pick')
    pick.wait_for(state="visible")
    dana.wait_for_function("() => !document.querySelector('.tile[data-index=\"1\"] .pick').disabled")
    started = time.monotonic()
    pick.click()
    cora.wait_for_function(
        "() => document.getElementById('pick-line').textContent.includes('Picked: v02 by dana')"
        " && document.querySelector('.tile[data-index=\"1\"]').classList.contains('picked')",
        polling=20,
        timeout=2_000,
    )
    shown_after = time.monotonic() - started
    assert shown_after < 1.0, f"the compositor saw the pick {shown_after:.2f} s after the director's click"
    assert cora.locator("#request-status").inner_text().strip() == "Picked"

    with cora.expect_navigation():
        cora.click("#signoff")
    for page in (cora, dana):
        page.wait_for_function(
            "() => document.getElementById('release-line').textContent.startsWith('Released v001')", timeout=60_000
        )
        wait_for_status(page, "Released", timeout=5_000)
    cora.screenshot(path=str(screenshots / "loop-3-released.png"), full_page=True)

    release = Release.objects.get(signoff__variation__request_id=request_id)
    assert release.status == "done" and release.version == 1, release.error
    assert release.signoff.variation.index == 1
    folder = Path(release.path_pattern).parent
    assert folder.is_dir() and folder.name == "v001"
    assert len(list(folder.glob("*.exr"))) == 6 and (folder / "manifest.sha256").is_file()
    everything = db_seqs(request_id)
    assert everything == list(range(1, len(everything) + 1))
    for page in (cora, dana):
        assert wait_caught_up(page, request_id)[-1] == everything[-1]


def test_a_viewer_whose_socket_is_cut_catches_up_in_order_without_duplicates(open_page, compositor, shot, show_model):
    cora = open_page("cora", "cora-pw", init_script=SOCKET_SPY)
    request_id = ask_for_variations(cora, shot, count=2, steps=3)
    cora.wait_for_function("() => window.ptReview.seen.length >= 3", timeout=30_000)

    # A long cut: new sockets fail until enough events have been written that the page cannot have seen.
    cut_at = cora.evaluate(
        "() => { window.__ptSpy.block = true; window.ptReview.socket.close(); return window.ptReview.lastSeq; }"
    )
    deadline = time.monotonic() + 30
    while last_seq(request_id) < cut_at + 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    missed_until = last_seq(request_id)
    assert missed_until > cut_at, "no events were written during the cut; the test proves nothing"
    assert page_state(cora)["lastSeq"] == cut_at, "the page got events while its socket was cut"
    # At least one reconnect must have failed while cut (the page retries after 0.5 s, 1 s, 2 s …).
    cora.wait_for_function("() => window.__ptSpy.urls.some((u) => u.blocked)", timeout=15_000)
    cora.evaluate("() => { window.__ptSpy.block = false; }")
    cora.wait_for_function("(s) => window.ptReview.lastSeq >= s", arg=missed_until, timeout=15_000)

    # Short cuts while the variations are still being produced: the page reconnects on its own.
    for _ in range(3):
        if GenerationRequest.objects.get(pk=request_id).status != "running":
            break
        cora.evaluate("() => window.ptReview.socket.close()")
        cora.wait_for_timeout(1_200)
    wait_for_status(cora, "In review")

    seen = wait_caught_up(cora, request_id)
    expected = db_seqs(request_id)
    assert expected == list(range(1, len(expected) + 1))
    assert seen == expected
    spy = cora.evaluate("() => window.__ptSpy")
    assert spy["raw"] == expected, "the server sent an event twice or out of order"
    reconnects = [u for u in spy["urls"] if not u["blocked"]][1:]
    assert reconnects and reconnects[0]["url"].endswith(f"?after={cut_at}")
    assert len([u for u in spy["urls"] if u["blocked"]]) >= 1


def test_the_flipbook_shows_each_proxy_at_its_own_frame(open_page, compositor, shot, show_model, screenshots):
    cora = open_page("cora", "cora-pw")
    request_id = ask_for_variations(cora, shot, count=2, steps=1)
    wait_for_status(cora, "In review")
    variations = {str(v.pk): v for v in Variation.objects.filter(request_id=request_id)}
    assert all(v.status == "done" for v in variations.values())
    cora.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the page

    def check(frame: int) -> None:
        assert cora.locator("#frame-number").inner_text() == str(frame)
        cora.wait_for_function(
            "() => [...document.querySelectorAll('#grid .tile img')]"
            ".every((i) => !i.hidden && i.complete && i.naturalWidth > 0)"
        )
        tiles = cora.evaluate(
            "() => [...document.querySelectorAll('#grid .tile')].map((t) => ({id: t.dataset.variation,"
            " frame: t.querySelector('img').dataset.frame, src: t.querySelector('img').getAttribute('src')}))"
        )
        assert len(tiles) == 2
        for tile in tiles:
            assert tile["frame"] == str(frame)
            assert tile["src"] == f"/media/variations/{tile['id']}/proxy/{frame}.jpg"
            served = cora.request.get(tile["src"]).body()
            on_disk = (
                Path(variations[tile["id"]].work_dir) / "proxy" / Path(frame_path("incontext.####.jpg", frame)).name
            )
            assert served == on_disk.read_bytes(), f"{tile['src']} is not frame {frame}'s proxy"

    check(1001)
    for frame in range(1002, 1007):
        cora.keyboard.press("ArrowRight")
        check(frame)
    cora.locator("#grid").screenshot(path=str(screenshots / "flipbook-1006.png"))
    cora.keyboard.press("ArrowRight")  # clamps at the last frame
    check(1006)
    for frame in range(1005, 1000, -1):
        cora.click("#step-back")
        check(frame)
    cora.click("#step-fwd")
    check(1002)
    cora.keyboard.press("ArrowLeft")
    check(1001)
    cora.locator("#grid").screenshot(path=str(screenshots / "flipbook-1001.png"))
