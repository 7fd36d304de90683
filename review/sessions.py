"""Dailies sessions: a playlist across the shots of one show, one driver, everyone else following.

The session has its own append-only event log with the request log's protocol (``seq`` per session, catch-up
from the database, announced after commit); a driver's action is one ``session.state`` event carrying the whole
state, so a follower, a late joiner and a reconnecting socket all land on the same view by applying the newest.
Supervisors and directors make sessions and drive; every member of the show may join and watch; outsiders get
the same 404 as a missing session.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F

from generation import events, proxies
from generation.models import GenerationRequest, RequestStatus, Variation, VariationStatus
from portal.access import require_member, require_role
from portal.colour import show_colour
from portal.errors import Forbidden, NotFound, PortalError
from portal.models import Membership, Role, Show
from portal.selectors import member_role
from review import services
from review.models import (
    Note,
    Pick,
    Release,
    ReleaseStatus,
    ReviewSession,
    SessionAttendee,
    SessionEvent,
    SessionItem,
    SessionItemKind,
    SessionMark,
)

CAN_DRIVE = {Role.DIRECTOR, Role.SUPERVISOR}
MODES = ("grid", "incontext", "wipe", "single")
CHANNELS = ("rgb", "alpha")
EXPOSURE_RANGE = (-10.0, 10.0)  # stops
GAMMA_RANGE = (0.2, 5.0)
# "Everything in review": settled requests nobody has signed off yet.
IN_REVIEW = (RequestStatus.REVIEW, RequestStatus.PICKED)


def session_group(session_id: int) -> str:
    return f"session-{session_id}"


# ---- reads -------------------------------------------------------------------------------------------------------

def session_for_member(user, session_id: int) -> tuple[ReviewSession, Role]:
    found = ReviewSession.objects.select_related("show", "driver", "created_by").filter(pk=session_id).first()
    if found is None:
        raise NotFound("no such session")
    return found, member_role(user, found.show_id)


def session_items(session: ReviewSession) -> list[SessionItem]:
    return list(session.items.select_related("request__shot__sequence", "request__plate", "variation",
                                             "release__signoff__variation"))


def item_variations(item: SessionItem) -> list[Variation]:
    """The tiles an item shows: every variation of a request, or the one variation (a release's is its sign-off's)."""
    if item.kind == SessionItemKind.VARIATION:
        return [item.variation]
    if item.kind == SessionItemKind.RELEASE:
        return [item.release.signoff.variation]
    return list(item.request.variations.all())


def item_label(item: SessionItem) -> str:
    request = item.request
    where = f"{request.shot.sequence.code}/{request.shot.code}"
    task = "roto pass" if request.task == "roto" else request.task_label.lower()
    if item.kind == SessionItemKind.VARIATION:
        return f"{where} · {task} · request {request.pk} {item.variation.label}"
    if item.kind == SessionItemKind.RELEASE:
        return f"{where} · {task} · released v{item.release.version:03d}"
    return f"{where} · {task} · request {request.pk}"


def browser_display_views(show: Show) -> list[proxies.DisplayView]:
    """The display/views a browser shows correctly: proxies are 8-bit JPEGs tagged sRGB, so only the sRGB
    display's views (a P3 or PQ encoding shown as sRGB would be wrong on every screen)."""
    return [dv for dv in proxies.display_views(show_colour(show)) if dv.display.lower().startswith("srgb")]


def default_state(show: Show, items: list[SessionItem]) -> dict:
    colour_settings = show_colour(show)
    offered = browser_display_views(show)
    dv = next((d for d in offered if (d.display, d.view) == (colour_settings.display, colour_settings.view)),
              offered[0] if offered else proxies.DisplayView(colour_settings.display, colour_settings.view))
    first = items[0] if items else None
    tiles = item_variations(first) if first else []
    return {"item": first.pk if first else None, "frame": first.request.first_frame if first else 0,
            "playing": False, "tile": tiles[0].pk if tiles else None, "mode": "grid",
            "display": dv.display, "view": dv.view, "exposure": 0.0, "gamma": 1.0, "channels": "rgb"}


# ---- making a playlist -----------------------------------------------------------------------------------------

def requests_by_filter(show: Show, *, sequence: str = "", shot: str = "", task: str = "",
                       statuses: tuple[str, ...] = IN_REVIEW) -> list[GenerationRequest]:
    """Requests of the show matching a filter ("everything in review on sq010"), in shot order, oldest first."""
    found = GenerationRequest.objects.filter(shot__sequence__show=show, status__in=statuses)
    if sequence:
        found = found.filter(shot__sequence__code=sequence)
    if shot:
        found = found.filter(shot__code=shot)
    if task:
        found = found.filter(task=task)
    return list(found.select_related("shot__sequence").order_by("shot__sequence__code", "shot__code", "created_at"))


def _item_for(show: Show, kind: str, pk: int) -> dict:
    """One playlist entry by kind and id, of this show only (another show's id reads as missing)."""
    if kind == SessionItemKind.REQUEST:
        request = GenerationRequest.objects.filter(pk=pk, shot__sequence__show=show).first()
        if request:
            return {"kind": kind, "request": request}
    elif kind == SessionItemKind.VARIATION:
        variation = Variation.objects.select_related("request").filter(pk=pk, request__shot__sequence__show=show).first()
        if variation:
            return {"kind": kind, "request": variation.request, "variation": variation}
    elif kind == SessionItemKind.RELEASE:
        release = (Release.objects.select_related("signoff__variation__request")
                   .filter(pk=pk, shot__sequence__show=show, status=ReleaseStatus.DONE).first())
        if release:
            return {"kind": kind, "request": release.signoff.variation.request, "release": release}
    else:
        raise PortalError(f"an item is a request, a variation or a release, not {kind!r}", code="item_kind")
    raise PortalError(f"no {kind} {pk} on this show", code="item")


@transaction.atomic
def session_create(*, user: User, show: Show, name: str, items: list[tuple[str, int]] = (),
                   made_from: dict | None = None) -> ReviewSession:
    """A session over ``items`` ((kind, id) pairs, in order); the maker drives first."""
    require_role(user, show.pk, CAN_DRIVE, "run a review session")
    if not name.strip():
        raise PortalError("name the session", code="name")
    entries = [_item_for(show, kind, pk) for kind, pk in items]
    if not entries:
        raise PortalError("a session needs at least one item; nothing matched", code="empty")
    session = ReviewSession.objects.create(show=show, name=name.strip()[:200], created_by=user, driver=user,
                                           made_from=made_from or {})
    made = SessionItem.objects.bulk_create(SessionItem(session=session, position=i, **entry)
                                           for i, entry in enumerate(entries))
    made = list(SessionItem.objects.filter(pk__in=[m.pk for m in made]).select_related("request", "variation",
                                                                                       "release__signoff__variation"))
    session.state = default_state(show, sorted(made, key=lambda m: m.position))
    session.save(update_fields=["state"])
    event_append(session.pk, "session.created", {"by": user.username, "items": len(made)}, actor=user)
    return session


@transaction.atomic
def session_reorder(*, user: User, session: ReviewSession, order: list[int]) -> None:
    """Put the playlist in ``order`` (every item id of the session, once)."""
    require_role(user, session.show_id, CAN_DRIVE, "reorder a review session")
    current = set(session.items.values_list("pk", flat=True))
    if sorted(order) != sorted(current):
        raise PortalError("the order must name every item of the session once", code="order")
    for position, pk in enumerate(order):
        SessionItem.objects.filter(pk=pk).update(position=position)
    event_append(session.pk, "session.reordered", {"order": order, "by": user.username}, actor=user)


# ---- the event log --------------------------------------------------------------------------------------------

def event_append(session_id: int, type: str, payload: dict, *, actor=None, state: dict | None = None,
                 announce: bool = True) -> dict:
    """Append a session event with the next seq (and the new state, if it changes); announced after commit
    unless ``announce`` is False (a consumer sends it itself, on its own loop)."""
    with transaction.atomic():
        changes = {"last_seq": F("last_seq") + 1} | ({"state": state} if state is not None else {})
        ReviewSession.objects.filter(pk=session_id).update(**changes)
        seq = ReviewSession.objects.filter(pk=session_id).values_list("last_seq", flat=True).get()
        message = SessionEvent.objects.create(session_id=session_id, seq=seq, type=type, payload=payload,
                                              actor=actor).as_message()
        if announce:
            transaction.on_commit(lambda: events.announce(session_group(session_id),
                                                          {"type": "session.event", "event": message}))
    return message


def session_events_after(session_id: int, seq: int, limit: int = 5000) -> list[dict]:
    rows = SessionEvent.objects.filter(session_id=session_id, seq__gt=seq).order_by("seq")[:limit]
    return [e.as_message() for e in rows]


# ---- driving --------------------------------------------------------------------------------------------------

def _number(value, low: float, high: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise PortalError(f"{name} is a number", code="state")
    return round(min(max(float(value), low), high), 3)


@dataclass(frozen=True)
class SessionFacts:
    """What a driver's state is checked against; fixed for a session's life (a reorder moves only positions), so a
    consumer reads it once and every drive after costs one short transaction."""

    items: dict  # item id -> (first frame, last frame, [tile variation ids])
    display_views: frozenset  # (display, view) pairs a browser shows correctly


def session_facts(session_id: int) -> SessionFacts:
    session = ReviewSession.objects.select_related("show").get(pk=session_id)
    items = {item.pk: (item.request.first_frame, item.request.last_frame, [v.pk for v in item_variations(item)])
             for item in session_items(session)}
    return SessionFacts(items=items, display_views=frozenset((dv.display, dv.view)
                                                             for dv in browser_display_views(session.show)))


_FIELDS = ("item", "frame", "playing", "tile", "mode", "display", "view", "exposure", "gamma", "channels")


def state_checked(facts: SessionFacts, current: dict, wanted: dict) -> dict:
    """The driver's state (``wanted`` over the ``current`` one), every field checked against the session: the item
    is one of its items, the frame in that item's range, the tile one of the item's variations, the display/view
    one the browser can show."""
    if not isinstance(wanted, dict):
        raise PortalError("a state is a JSON object", code="state")
    state = dict(current) | {k: v for k, v in wanted.items() if k in _FIELDS}
    item = facts.items.get(state.get("item")) if isinstance(state.get("item"), int) else None
    if item is None:
        raise PortalError("that item is not in this session", code="item")
    first, last, tiles = item
    frame = state.get("frame")
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise PortalError("the frame is a whole number", code="frame")
    state["frame"] = min(max(frame, first), last)
    if state.get("tile") not in tiles:
        if wanted.get("tile") is not None:
            raise PortalError("that tile is not a variation of the item", code="tile")
        state["tile"] = tiles[0] if tiles else None  # another item: its first tile
    if state.get("mode") not in MODES:
        raise PortalError(f"the view mode is one of {', '.join(MODES)}", code="mode")
    if state.get("channels") not in CHANNELS:
        raise PortalError("channels are rgb or alpha", code="channels")
    if (state.get("display"), state.get("view")) not in facts.display_views:
        raise PortalError("that display/view is not offered for browser viewing", code="display_view")
    state["playing"] = bool(state.get("playing"))
    state["exposure"] = _number(state.get("exposure", 0.0), *EXPOSURE_RANGE, "exposure")
    state["gamma"] = _number(state.get("gamma", 1.0), *GAMMA_RANGE, "gamma")
    return {k: state[k] for k in _FIELDS}


def drive(*, user: User, session_id: int, state: dict, facts: SessionFacts | None = None,
          announce: bool = True) -> dict:
    """The driver's new state, for every follower; anyone else is refused (403). One transaction: the session row
    locked, membership, the state and the next seq written, the event appended."""
    with transaction.atomic():
        row = (ReviewSession.objects.select_for_update().filter(pk=session_id)
               .values("driver_id", "state", "last_seq", "show_id").first())
        if row is None:
            raise NotFound("no such session")
        require_member(user, row["show_id"])
        if row["driver_id"] != user.pk:
            raise Forbidden("only the driver changes the session's view; ask for control", code="not_driver")
        checked = state_checked(facts or session_facts(session_id), row["state"], state)
        seq = row["last_seq"] + 1
        ReviewSession.objects.filter(pk=session_id).update(last_seq=seq, state=checked)
        message = SessionEvent.objects.create(session_id=session_id, seq=seq, type="session.state",
                                              payload=checked | {"by": user.username}, actor=user).as_message()
        if announce:
            transaction.on_commit(lambda: events.announce(session_group(session_id),
                                                          {"type": "session.event", "event": message}))
    return message


@transaction.atomic
def hand_control(*, user: User, session_id: int, to: str, announce: bool = True) -> dict:
    """The driver hands control to another member of the show; a supervisor or director may also take it."""
    session = ReviewSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("no such session")
    role = require_member(user, session.show_id)
    target = get_user_model().objects.filter(username=to, is_active=True).first()
    if target is None or not Membership.objects.filter(user=target, show_id=session.show_id).exists():
        raise PortalError(f"{to!r} is not a member of the show", code="participant")
    taking = target.pk == user.pk
    if session.driver_id != user.pk and not (taking and role in CAN_DRIVE):
        raise Forbidden("only the driver hands control on (a supervisor or director may take it)", code="not_driver")
    ReviewSession.objects.filter(pk=session_id).update(driver=target)
    return event_append(session_id, "session.control", {"driver": target.username, "by": user.username},
                        actor=user, announce=announce)


@transaction.atomic
def presence(*, user: User, session_id: int, joined: bool, announce: bool = True) -> dict:
    """A socket of ``user`` opened (``joined``) or closed: who is watching now, as an event."""
    attendee, _ = SessionAttendee.objects.get_or_create(session_id=session_id, user=user)
    SessionAttendee.objects.filter(pk=attendee.pk).update(sockets=F("sockets") + (1 if joined else -1))
    watching = list(SessionAttendee.objects.filter(session_id=session_id, sockets__gt=0)
                    .order_by("first_joined", "pk").values_list("user__username", flat=True))
    return event_append(session_id, "session.presence",
                        {"present": watching, "joined" if joined else "left": user.username}, actor=user,
                        announce=announce)


def present_now(session_id: int) -> list[str]:
    return list(SessionAttendee.objects.filter(session_id=session_id, sockets__gt=0)
                .order_by("first_joined", "pk").values_list("user__username", flat=True))


# ---- notes and picks taken in a session -----------------------------------------------------------------------

def _item_of(session: ReviewSession, item_id: int, variation: Variation) -> SessionItem:
    item = SessionItem.objects.filter(pk=item_id, session=session).select_related("variation", "release__signoff").first()
    if item is None or variation.pk not in [v.pk for v in item_variations(item)]:
        raise PortalError("that variation is not on this item of the session", code="item")
    return item


def note_in_session(*, user: User, session: ReviewSession, item_id: int, variation: Variation, text: str,
                    frame: int | None, shape=None) -> Note:
    """A note on the variation as usual (its request's stream has it), listed in the session too."""
    with transaction.atomic():
        item = _item_of(session, item_id, variation)
        note = services.note_add(user=user, variation=variation, text=text, frame=frame, shape=shape)
        SessionMark.objects.create(session=session, item=item, note=note)
        event_append(session.pk, "session.note", {"note": note.pk, "item": item.pk, "variation": variation.pk,
                                                  "label": variation.label, "frame": frame, "text": note.text,
                                                  "by": user.username}, actor=user)
    return note


def pick_in_session(*, user: User, session: ReviewSession, item_id: int, variation: Variation,
                    note: str = "", override: bool = False) -> Pick:
    item = _item_of(session, item_id, variation)
    pick = services.pick_make(user=user, variation=variation, note=note, override=override)
    with transaction.atomic():
        SessionMark.objects.create(session=session, item=item, pick=pick)
        event_append(session.pk, "session.pick", {"pick": pick.pk, "item": item.pk, "variation": variation.pk,
                                                  "label": variation.label, "by": user.username, "note": note},
                     actor=user)
    return pick


def session_marks(session: ReviewSession) -> list[SessionMark]:
    return list(session.marks.select_related("item__request__shot", "note__variation", "note__author",
                                             "pick__variation", "pick__picked_by"))


def done_variations(request: GenerationRequest) -> list[Variation]:
    return list(request.variations.filter(status=VariationStatus.DONE))


# ---- what the session leaves behind ----------------------------------------------------------------------------

def _release_of(variation: Variation) -> Release | None:
    return (Release.objects.filter(signoff__variation=variation, status=ReleaseStatus.DONE)
            .exclude(path_pattern="").order_by("-version").first())


def item_media(item: SessionItem) -> dict:
    """What editorial gets for an item: the released EXR sequence when there is one, else the proxy sequence of
    the item's variation (a request's: its pick, else its first finished variation). Frames: the request's."""
    request = item.request
    if item.kind == SessionItemKind.RELEASE:
        variation, release = item.release.signoff.variation, item.release
    else:
        if item.kind == SessionItemKind.VARIATION:
            variation = item.variation
        else:
            pick = services.current_pick(request.pk)
            variation = pick.variation if pick and pick.variation_id else next(iter(done_variations(request)), None)
        release = _release_of(variation) if variation else None
    if release is not None:
        pattern, what = release.path_pattern, f"released v{release.version:03d}"
    else:
        pattern, what = (variation.proxy_pattern if variation else ""), "proxy"
    return {"pattern": pattern, "what": what, "variation": variation, "first": request.first_frame,
            "last": request.last_frame, "label": f"{variation.label} {what}" if variation else "no media"}


def session_summary(session: ReviewSession) -> dict:
    """Items in playlist order, each with its media and the picks and notes taken on it; who attended."""
    marks: dict[int | None, list[dict]] = {}
    for mark in session_marks(session):
        if mark.note_id:
            row = {"kind": "note", "label": mark.note.variation.label, "frame": mark.note.frame,
                   "text": mark.note.text, "by": mark.note.author.username}
        else:
            row = {"kind": "pick", "label": mark.pick.variation.label if mark.pick.variation_id else "",
                   "frame": None, "text": mark.pick.note, "by": mark.pick.picked_by.username}
        marks.setdefault(mark.item_id, []).append(row | {"time": mark.created_at.isoformat()})
    items = []
    for item in session_items(session):
        media = item_media(item)
        items.append({"position": item.position + 1, "id": item.pk, "label": item_label(item),
                      "shot": item.request.shot.code, "media": media, "media_label": media["label"],
                      "marks": marks.get(item.pk, [])})
    attendees = [{"user": a.user.username, "joined": a.first_joined.isoformat()}
                 for a in session.attendees.select_related("user")]
    return {"items": items, "attendees": attendees,
            "notes": sum(1 for rows in marks.values() for r in rows if r["kind"] == "note"),
            "picks": sum(1 for rows in marks.values() for r in rows if r["kind"] == "pick")}
