"""Dailies sessions: who may make, drive and join them, the session's event stream (seq, catch-up, presence,
control), notes and picks taken in a session, and its summary as CSV, OpenTimelineIO and CMX 3600 EDL."""

import csv
import io

import opentimelineio as otio
import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path
from django.utils import timezone

from generation.models import Variation
from portal.errors import Forbidden, NotFound, PortalError
from portal.services import plate_ingest
from review import otio_export, services, sessions
from review.models import Release, ReleaseStatus, ReviewSession, SessionEvent, SignOff, SignOffDecision
from review.session_consumer import SessionConsumer
from tests.factories import request_with_done_variations

app = URLRouter([path("ws/sessions/<int:session_id>/", SessionConsumer.as_asgi())])


@pytest.fixture
def second_shot(show, small_plate):
    return plate_ingest(show=show, sequence_code="sq020", shot_code="sh200", pattern=small_plate["plate"],
                        matte_pattern=small_plate["matte"]).shot


@pytest.fixture
def playlist(supervisor, director, compositor, shot, second_shot, show_model):
    """Two requests in review on sq010 and sq020, a third released on sq010 (its release row done)."""
    first = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=3)
    second = request_with_done_variations(user=compositor, shot=second_shot, model=show_model, count=2)
    released = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=2)
    released.status = "released"
    released.save(update_fields=["status"])
    v = released.variations.first()
    signoff = SignOff.objects.create(variation=v, decision=SignOffDecision.APPROVED, signed_by=compositor)
    release = Release.objects.create(signoff=signoff, shot=shot, task=released.task, version=3,
                                     status=ReleaseStatus.DONE, released_at=timezone.now(),
                                     path_pattern="/publish/tst/sq010/sh010/elements/sky/v003/sh010_sky_v003.####.exr")
    for request in (first, second):
        for variation in request.variations.all():
            variation.proxy_pattern = f"/work/tst/{request.pk}/{variation.index}/proxy/incontext.####.jpg"
            variation.save(update_fields=["proxy_pattern"])
    return {"first": first, "second": second, "released": released, "release": release}


def _session(user, show, playlist) -> ReviewSession:
    return sessions.session_create(user=user, show=show, name="dailies", items=[
        ("request", playlist["first"].pk), ("request", playlist["second"].pk), ("release", playlist["release"].pk)])


@pytest.mark.django_db
def test_supervisors_and_directors_make_sessions_compositors_and_outsiders_cannot(
        supervisor, director, compositor, outsider, show, playlist):
    made = _session(supervisor, show, playlist)
    assert [i.kind for i in made.items.all()] == ["request", "request", "release"]
    assert made.driver == supervisor and made.state["item"] == made.items.first().pk
    assert sessions.session_create(user=director, show=show, name="d", items=[("request", playlist["first"].pk)])
    with pytest.raises(Forbidden):
        sessions.session_create(user=compositor, show=show, name="c", items=[("request", playlist["first"].pk)])
    with pytest.raises(NotFound):
        sessions.session_create(user=outsider, show=show, name="o", items=[("request", playlist["first"].pk)])
    with pytest.raises(NotFound):
        sessions.session_for_member(outsider, made.pk)
    with pytest.raises(PortalError):  # nothing in the playlist
        sessions.session_create(user=supervisor, show=show, name="empty", items=[])


@pytest.mark.django_db
def test_a_filter_takes_everything_in_review_on_a_sequence(supervisor, show, playlist):
    on_sq010 = sessions.requests_by_filter(show, sequence="sq010")
    assert [r.pk for r in on_sq010] == [playlist["first"].pk]  # the released one is not in review
    assert {r.pk for r in sessions.requests_by_filter(show)} == {playlist["first"].pk, playlist["second"].pk}


@pytest.mark.django_db
def test_pages_are_for_members_only(client, supervisor, outsider, compositor, show, playlist):
    made = _session(supervisor, show, playlist)
    client.force_login(outsider)
    for url in (f"/sessions/{made.pk}/", f"/sessions/{made.pk}/summary/", f"/sessions/{made.pk}/summary.csv",
                f"/sessions/{made.pk}/playlist.otio", f"/sessions/{made.pk}/playlist.edl", "/shows/tst/sessions/"):
        assert client.get(url).status_code == 404, url
    client.force_login(compositor)
    page = client.get(f"/sessions/{made.pk}/")
    assert page.status_code == 200 and b"session-data" in page.content
    assert client.post("/shows/tst/sessions/new", {"name": "x", "by": "filter"}).status_code == 403
    client.force_login(supervisor)
    listing = client.get("/shows/tst/sessions/").content.decode()
    assert f"/sessions/{made.pk}/" in listing and f'value="request:{playlist["first"].pk}"' in listing
    assert f'value="release:{playlist["release"].pk}"' in listing
    summary = client.get(f"/sessions/{made.pk}/summary/").content.decode()
    assert "released v003" in summary and summary.count("<tr>") == 4  # a header and three items


@pytest.mark.django_db
def test_the_filter_form_opens_a_session(client, supervisor, show, playlist):
    client.force_login(supervisor)
    response = client.post("/shows/tst/sessions/new", {"name": "sq010 dailies", "by": "filter", "sequence": "sq010"})
    assert response.status_code == 302
    made = ReviewSession.objects.get(name="sq010 dailies")
    assert [i.request_id for i in made.items.all()] == [playlist["first"].pk]
    assert made.made_from["sequence"] == "sq010"


@pytest.mark.django_db
def test_only_the_driver_drives_and_every_field_is_checked(supervisor, director, compositor, producer, outsider, show,
                                                            playlist):
    made = _session(supervisor, show, playlist)
    second = made.items.all()[1]
    tile = second.request.variations.last()
    message = sessions.drive(user=supervisor, session_id=made.pk, state={
        "item": second.pk, "frame": 1003, "tile": tile.pk, "mode": "wipe", "exposure": 1.5})
    assert message["type"] == "session.state" and message["seq"] == 2  # after session.created
    made.refresh_from_db()
    assert (made.state["item"], made.state["frame"], made.state["tile"], made.state["mode"]) == (
        second.pk, 1003, tile.pk, "wipe")
    with pytest.raises(Forbidden):
        sessions.drive(user=director, session_id=made.pk, state={"frame": 1002})
    bad = [{"item": 999999}, {"frame": "1002"}, {"tile": playlist["first"].variations.first().pk},
           {"mode": "fullscreen"}, {"display": "Display P3", "view": "ACES 1.0 - SDR Video"}, {"exposure": "a lot"},
           {"channels": "luma"}]
    for state in bad:
        with pytest.raises(PortalError):
            sessions.drive(user=supervisor, session_id=made.pk, state=state)
    assert sessions.drive(user=supervisor, session_id=made.pk, state={"frame": 5000})["payload"]["frame"] == 1006
    sessions.hand_control(user=supervisor, session_id=made.pk, to="cora")
    assert sessions.drive(user=compositor, session_id=made.pk, state={"frame": 1002})["payload"]["by"] == "cora"
    with pytest.raises(Forbidden):  # a producer who is not driving cannot take control
        sessions.hand_control(user=producer, session_id=made.pk, to="pete")
    with pytest.raises(PortalError):  # control goes to members of the show only
        sessions.hand_control(user=compositor, session_id=made.pk, to="otto")
    sessions.hand_control(user=director, session_id=made.pk, to="dana")  # a director takes it
    made.refresh_from_db()
    assert made.driver == director


def test_browser_views_are_the_srgb_display_only(db, show):
    offered = sessions.browser_display_views(show)
    assert offered and all(dv.display.startswith("sRGB") for dv in offered)
    assert not any("P3" in dv.display or "2100" in dv.display for dv in offered)


async def _join(user, session_id: int, after: int):
    communicator = WebsocketCommunicator(app, f"/ws/sessions/{session_id}/?after={after}")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _until(communicator, wanted: str, timeout: float = 5.0, **payload) -> dict:
    """The next message of type ``wanted`` (whose payload has ``payload``'s values), skipping the others."""
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message.get("type") == wanted and all(message["payload"].get(k) == v for k, v in payload.items()):
            return message


@pytest.mark.django_db(transaction=True)
def test_the_stream_syncs_followers_hands_control_and_late_joiners_catch_up(
        supervisor, director, producer, outsider, show, playlist):
    made = _session(supervisor, show, playlist)
    items = list(made.items.all())
    async_to_sync(_stream_scenario)(made, items, supervisor, director, producer, outsider)
    rows = list(SessionEvent.objects.filter(session=made).values_list("seq", flat=True))
    assert rows == list(range(1, len(rows) + 1))


async def _stream_scenario(made, items, supervisor, director, producer, outsider):
    driver = await _join(supervisor, made.pk, made.last_seq)
    assert (await _until(driver, "session.presence"))["payload"]["present"] == ["sam"]
    follower = await _join(director, made.pk, made.last_seq)
    joined = await _until(driver, "session.presence")
    assert joined["payload"]["present"] == ["sam", "dana"]
    await driver.send_json_to({"type": "drive", "state": {"item": items[1].pk, "frame": 1004}})
    seen = await _until(follower, "session.state")
    assert (seen["payload"]["item"], seen["payload"]["frame"]) == (items[1].pk, 1004)
    # the follower may not drive: answered, socket open
    await follower.send_json_to({"type": "drive", "state": {"frame": 1001}})
    assert (await _until(follower, "error"))["code"] == "not_driver"
    await driver.send_json_to({"type": "hand", "to": "dana"})
    assert (await _until(follower, "session.control"))["payload"]["driver"] == "dana"
    await follower.send_json_to({"type": "drive", "state": {"mode": "single"}})
    assert (await _until(driver, "session.state", mode="single"))["payload"]["by"] == "dana"
    # a reconnect from the seq it had gets everything it missed, in order
    last = seen["seq"]
    await follower.disconnect()
    late = await _join(producer, made.pk, last)
    replay = [await late.receive_json_from(timeout=5) for _ in range(4)]
    assert [m["seq"] for m in replay] == list(range(last + 1, last + 5))
    state_events = [m for m in replay if m["type"] == "session.state"]
    assert state_events[-1]["payload"]["mode"] == "single"
    refused = WebsocketCommunicator(app, f"/ws/sessions/{made.pk}/?after=0")
    refused.scope["user"] = outsider
    await refused.connect()
    assert (await refused.receive_output(timeout=5))["code"] == 4403
    await driver.disconnect()
    await late.disconnect()


@pytest.mark.django_db
def test_notes_and_picks_in_a_session_are_the_usual_ones_and_listed(supervisor, director, compositor, show, playlist):
    made = _session(supervisor, show, playlist)
    first_item = made.items.first()
    v = playlist["first"].variations.order_by("index")[1]
    note = sessions.note_in_session(user=compositor, session=made, item_id=first_item.pk, variation=v,
                                    text="=edge flickers", frame=1004)
    assert v.notes.get() == note  # on its variation, as usual, with the request's note.added event
    assert playlist["first"].events.filter(type="note.added").exists()
    pick = sessions.pick_in_session(user=director, session=made, item_id=first_item.pk, variation=v, note="this one")
    assert services.current_pick(playlist["first"].pk) == pick
    other = playlist["second"].variations.first()
    with pytest.raises(PortalError):  # a variation that is not on that item
        sessions.note_in_session(user=compositor, session=made, item_id=first_item.pk, variation=other, text="x",
                                 frame=None)
    summary = sessions.session_summary(made)
    assert summary["notes"] == 1 and summary["picks"] == 1
    assert [(m["kind"], m["frame"], m["text"]) for m in summary["items"][0]["marks"]] == [
        ("note", 1004, "=edge flickers"), ("pick", None, "this one")]


@pytest.mark.django_db
def test_csv_otio_and_edl_carry_every_item_note_frame_and_media(client, supervisor, compositor, director, show,
                                                                playlist):
    made = _session(supervisor, show, playlist)
    items = list(made.items.all())
    for i, (frame, text) in enumerate([(1002, "sky too warm"), (1006, "roll the horizon")]):
        v = items[i].request.variations.first()
        sessions.note_in_session(user=compositor, session=made, item_id=items[i].pk, variation=v, text=text,
                                 frame=frame)
    sessions.presence(user=director, session_id=made.pk, joined=True)
    client.force_login(director)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/sessions/{made.pk}/summary.csv").content.decode())))
    notes = [(r["frame"], r["text"]) for r in rows if r["kind"] == "note"]
    assert notes == [("1002", "sky too warm"), ("1006", "roll the horizon")]
    assert [r["by"] for r in rows if r["kind"] == "attendee"] == ["dana"]
    assert sum(r["kind"] == "item" for r in rows) == 3

    timeline = otio.adapters.read_from_string(client.get(f"/sessions/{made.pk}/playlist.otio").content.decode(),
                                              "otio_json")
    clips = list(timeline.find_clips())
    assert len(clips) == 3
    first = playlist["first"]
    pick_proxy = first.variations.order_by("index").first()
    ref = clips[0].media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference)
    assert ref.abstract_target_url("#" * 4) == "file://" + pick_proxy.proxy_pattern
    assert ref.target_url_for_image_number(0) == "file://" + pick_proxy.proxy_pattern.replace("####", "1001")
    assert clips[0].source_range.start_time.to_frames() == first.first_frame
    assert clips[0].source_range.duration.to_frames() == first.last_frame - first.first_frame + 1
    assert clips[0].source_range.start_time.rate == 24
    released = clips[2].media_reference  # the released EXRs, not the proxies
    assert released.abstract_target_url("####") == "file://" + playlist["release"].path_pattern
    assert released.name_suffix == ".exr" and released.frame_zero_padding == 4

    edl = client.get(f"/sessions/{made.pk}/playlist.edl").content.decode()
    parsed = otio.adapters.read_from_string(edl, "cmx_3600", rate=24)
    assert len(list(parsed.find_clips())) == 3
    assert [c.source_range.duration.to_frames() for c in parsed.find_clips()] == [6, 6, 6]


@pytest.mark.django_db
def test_the_rate_is_ntsc_for_23976(supervisor, show, playlist):
    show.fps = "23.976"
    show.save(update_fields=["fps"])
    made = _session(supervisor, show, playlist)
    clip = otio_export.playlist_timeline(ReviewSession.objects.get(pk=made.pk)).find_clips()[0]
    assert clip.source_range.start_time.rate == pytest.approx(24000 / 1001)


@pytest.mark.django_db
def test_a_variation_item_uses_its_own_proxies(supervisor, show, playlist):
    v = Variation.objects.filter(request=playlist["second"]).last()
    made = sessions.session_create(user=supervisor, show=show, name="one", items=[("variation", v.pk)])
    media = sessions.item_media(made.items.get())
    assert media["pattern"] == v.proxy_pattern and media["what"] == "proxy"


@pytest.mark.django_db
def test_the_review_room_marks_the_views_a_browser_cannot_show(client, director, compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    client.force_login(director)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    options = [line for line in page.splitlines() if "<option value=" in line and "data-display=" in line]
    marked = [o for o in options if "not for browser viewing" in o]
    assert marked and all('data-display="sRGB' not in o for o in marked)
    assert any('data-display="sRGB' in o and "not for browser" not in o for o in options)
