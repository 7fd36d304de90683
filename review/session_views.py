"""Dailies session pages: the show's sessions (make one by hand or by a filter), the session player, its notes and
picks, and its summary as a page, CSV, OpenTimelineIO and CMX 3600 EDL."""

import csv
import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from generation.models import GenerationRequest, RequestStatus
from generation.selectors import variation_for_member
from generation.views import csv_cell
from portal.colour import show_colour
from portal.errors import PortalError
from portal.pages import action, page
from portal.selectors import show_for_member
from review import otio_export, sessions
from review.models import Release, ReleaseStatus, SessionItemKind
from review.views import _frame


@page
def session_list(request: HttpRequest, show_code: str) -> HttpResponse:
    show, role = show_for_member(request.user, show_code)
    candidates = (GenerationRequest.objects.filter(shot__sequence__show=show)
                  .exclude(status__in=[RequestStatus.CANCELLED, RequestStatus.FAILED])
                  .select_related("shot__sequence").order_by("shot__sequence__code", "shot__code", "created_at"))
    releases = (Release.objects.filter(shot__sequence__show=show, status=ReleaseStatus.DONE)
                .select_related("shot__sequence").order_by("shot__code", "version"))
    return render(request, "review/session_list.html", {
        "show": show, "role": role, "can_drive": role in sessions.CAN_DRIVE,
        "sessions": show.review_sessions.select_related("created_by", "driver"),
        "candidates": candidates, "releases": releases,
        "sequences": show.sequences.order_by("code").values_list("code", flat=True)})


def _picked_items(post) -> list[tuple[str, int]]:
    """Items ticked by hand: ``item`` values ``kind:id``, in the order the form lists them."""
    items = []
    for value in post.getlist("item"):
        kind, _, pk = value.partition(":")
        if not pk.isdigit():
            raise PortalError(f"an item is kind:id, not {value[:40]!r}", code="item")
        items.append((kind, int(pk)))
    return items


@action
def session_new(request: HttpRequest, show_code: str) -> HttpResponse:
    show, _ = show_for_member(request.user, show_code)
    post = request.POST
    made_from = {}
    if post.get("by") == "filter":
        made_from = {k: post.get(k, "").strip() for k in ("sequence", "shot", "task")}
        found = sessions.requests_by_filter(show, **made_from)
        items = [(SessionItemKind.REQUEST.value, r.pk) for r in found]
        made_from["status"] = "in review"
    else:
        items = _picked_items(post)
    session = sessions.session_create(user=request.user, show=show, name=post.get("name", ""), items=items,
                                      made_from=made_from)
    return redirect("session-detail", session_id=session.pk)


def _item_data(item) -> dict:
    request = item.request
    window = request.plate.display_window
    return {"id": item.pk, "position": item.position, "kind": item.kind, "label": sessions.item_label(item),
            "request": request.pk, "first": request.first_frame, "last": request.last_frame,
            "width": window["width"], "height": window["height"], "aspect": round(request.plate.display_aspect, 6),
            "element": "matte" if request.task == "roto" else "rgba",
            "variations": [{"id": v.pk, "label": v.label, "index": v.index, "status": v.status}
                           for v in sessions.item_variations(item)]}


def _mark_data(mark) -> dict:
    if mark.note_id:
        note = mark.note
        return {"kind": "note", "item": mark.item_id, "variation": note.variation_id, "label": note.variation.label,
                "frame": note.frame, "text": note.text, "by": note.author.username}
    pick = mark.pick
    return {"kind": "pick", "item": mark.item_id, "variation": pick.variation_id,
            "label": pick.variation.label if pick.variation_id else "", "by": pick.picked_by.username,
            "text": pick.note, "frame": None}


@page
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session, role = sessions.session_for_member(request.user, session_id)
    colour_settings = show_colour(session.show)
    data = {"session": session.pk, "me": request.user.username, "can_drive": role in sessions.CAN_DRIVE,
            "driver": session.driver.username, "last_seq": session.last_seq, "state": session.state,
            "fps": float(session.show.fps), "present": sessions.present_now(session.pk),
            "show_display": colour_settings.display, "show_view": colour_settings.view,
            "items": [_item_data(item) for item in sessions.session_items(session)],
            "marks": [_mark_data(m) for m in sessions.session_marks(session)],
            "members": sorted(session.show.memberships.values_list("user__username", flat=True))}
    return render(request, "review/session.html", {
        "session": session, "show": session.show, "role": role, "data": data,
        "display_views": [dv.as_dict() for dv in sessions.browser_display_views(session.show)]})


def _session_variation(request: HttpRequest, session_id: int):
    session, _ = sessions.session_for_member(request.user, session_id)
    text = request.POST.get("variation", "")
    variation = variation_for_member(request.user, int(text) if text.isdigit() else 0)
    item = request.POST.get("item", "")
    if not item.isdigit():
        raise PortalError("name the session item", code="item")
    return session, variation, int(item)


@action
def session_note(request: HttpRequest, session_id: int) -> HttpResponse:
    session, variation, item = _session_variation(request, session_id)
    try:
        shape = json.loads(request.POST.get("shape") or "null")
    except (ValueError, RecursionError):
        raise PortalError("the shape is not JSON", code="shape") from None
    sessions.note_in_session(user=request.user, session=session, item_id=item, variation=variation,
                             text=request.POST.get("text", ""), frame=_frame(request.POST.get("frame", "")),
                             shape=shape)
    return HttpResponse(status=204)


@action
def session_pick(request: HttpRequest, session_id: int) -> HttpResponse:
    session, variation, item = _session_variation(request, session_id)
    sessions.pick_in_session(user=request.user, session=session, item_id=item, variation=variation,
                             note=request.POST.get("note", ""), override=request.POST.get("override_coverage") == "1")
    return HttpResponse(status=204)


@action
def session_order(request: HttpRequest, session_id: int) -> HttpResponse:
    session, _ = sessions.session_for_member(request.user, session_id)
    text = request.POST.get("order", "")
    if not all(part.strip().isdigit() for part in text.split(",")):
        raise PortalError("the order is item ids separated by commas", code="order")
    sessions.session_reorder(user=request.user, session=session, order=[int(p) for p in text.split(",")])
    return redirect("session-detail", session_id=session.pk)


@page
def session_summary(request: HttpRequest, session_id: int) -> HttpResponse:
    session, _ = sessions.session_for_member(request.user, session_id)
    return render(request, "review/session_summary.html", {"session": session, "show": session.show,
                                                           **sessions.session_summary(session)})


SUMMARY_COLUMNS = ["position", "shot", "item", "kind", "variation", "frame", "text", "by", "time"]


@page
def session_summary_csv(request: HttpRequest, session_id: int) -> HttpResponse:
    """Every item (a row of its own), every pick and note with its frame, and who attended."""
    session, _ = sessions.session_for_member(request.user, session_id)
    summary = sessions.session_summary(session)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(SUMMARY_COLUMNS)
    for row in summary["items"]:
        writer.writerow([row["position"], row["shot"], row["label"], "item", row["media_label"], "", "", "", ""])
        for mark in row["marks"]:
            writer.writerow([row["position"], row["shot"], row["label"], mark["kind"], mark["label"],
                             "" if mark["frame"] is None else mark["frame"], csv_cell(mark["text"]), mark["by"],
                             mark["time"]])
    for person in summary["attendees"]:
        writer.writerow(["", "", "", "attendee", "", "", "", person["user"], person["joined"]])
    return response


def _playlist_file(request: HttpRequest, session_id: int, write, extension: str, content_type: str) -> HttpResponse:
    session, _ = sessions.session_for_member(request.user, session_id)
    response = HttpResponse(write(session), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}.{extension}"'
    return response


@page
def session_otio(request: HttpRequest, session_id: int) -> HttpResponse:
    return _playlist_file(request, session_id, otio_export.playlist_otio, "otio", "application/json")


@page
def session_edl(request: HttpRequest, session_id: int) -> HttpResponse:
    return _playlist_file(request, session_id, otio_export.playlist_edl, "edl", "text/plain")
