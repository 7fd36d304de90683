"""The one owner of request and variation state.

Every change of ``status`` is a move in a table below: a conditional ``UPDATE … WHERE status IN (sources)``
whose row count says whether it happened, and the move's event appended in the same transaction. Two
writers racing for one request cannot both win: the loser's UPDATE matches no row and it gets a 409
(``Conflict``), never a silent overwrite. Services decide *who* may move a request; this module decides
*whether* the request may move, and records that it did.

A task whose ``TaskInfo.needs_pick`` is False (roto: a compositor signs off a variation directly) signs off
from review; which table row applies is read from the task's info, never from its name.

The main path of a request (REQUEST_MOVES has every source of every move)::

    queued ─start─▶ running ─settle─▶ review ─pick─▶ picked ─sign_off─▶ signed_off ─release─▶ released
                       └─fail─▶ failed   ▲              │ (pick again: picked ─pick─▶ picked)
                                         └─reject_all, send_back─┘
    needs_pick False:                 review ─sign_off_unpicked─▶ signed_off
    cancel: from queued, running, review, picked or failed ─▶ cancelled (nothing is released before sign-off)

A variation: queued ─claim─▶ running ─finish─▶ done; queued/running ─fail─▶ failed, ─cancel─▶ cancelled;
running ─requeue─▶ queued (its owner died: recovery). A worker's moves carry ``where`` (its lease) as well.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from generation import events
from generation.engine.task_kinds import task_info
from generation.models import GenerationRequest, RequestStatus, Variation, VariationStatus
from portal.errors import Conflict


@dataclass(frozen=True)
class Move:
    """From any of ``sources`` to ``target``, recorded as one ``event``."""

    sources: frozenset[str]
    target: str
    event: str
    refusal: str  # what the loser is told, after "the request is <status>; "
    code: str = "state"  # the 409's code, as clients know it


def _move(sources, target, event, refusal, code="state") -> Move:
    return Move(frozenset(sources), target, event, refusal, code)


R = RequestStatus
REQUEST_MOVES: dict[str, Move] = {
    "start": _move([R.QUEUED], R.RUNNING, "request.started", "it has started already"),
    "settle": _move([R.QUEUED, R.RUNNING], R.REVIEW, "request.settled", "it has settled already"),
    "fail": _move([R.QUEUED, R.RUNNING], R.FAILED, "request.settled", "it has settled already"),
    # A pick may land while other variations still run; a change of pick is a move from picked to picked.
    "pick": _move([R.RUNNING, R.REVIEW, R.PICKED], R.PICKED, "pick.made", "picks are closed", "closed"),
    "reject_all": _move([R.REVIEW, R.PICKED], R.REVIEW, "pick.rejected_all",
                        "only a request in review can have every variation rejected"),
    "sign_off": _move([R.PICKED], R.SIGNED_OFF, "signoff.approved", "only a picked request can be signed off",
                      "not_picked"),
    "send_back": _move([R.PICKED], R.REVIEW, "signoff.sent_back", "only a picked request can be sent back",
                       "not_picked"),
    # Tasks without a pick (TaskInfo.needs_pick False): the compositor decides on a variation in review.
    "sign_off_unpicked": _move([R.REVIEW], R.SIGNED_OFF, "signoff.approved",
                               "only a request in review can be signed off"),
    "send_back_unpicked": _move([R.REVIEW], R.REVIEW, "signoff.sent_back",
                                "only a request in review can be sent back"),
    "release": _move([R.SIGNED_OFF], R.RELEASED, "release.done", "only a signed-off request is released"),
    # Nothing has gone into the pipeline before sign-off, so until then a request can be abandoned.
    "cancel": _move([R.QUEUED, R.RUNNING, R.REVIEW, R.PICKED, R.FAILED], R.CANCELLED, "request.cancelled",
                    "it can no longer be cancelled"),
}

V = VariationStatus
VARIATION_MOVES: dict[str, Move] = {
    # A running variation whose worker died is claimed again by the retry, once its lease has expired (the claim's
    # ``where``, generation/leases.py): a second delivery while the lease lives matches no row.
    "claim": _move([V.QUEUED, V.RUNNING], V.RUNNING, "variation.started", "it has settled already"),
    "finish": _move([V.RUNNING], V.DONE, "variation.done", "it is not running"),
    "fail": _move([V.QUEUED, V.RUNNING], V.FAILED, "variation.failed", "it has settled already"),
    "cancel": _move([V.QUEUED, V.RUNNING], V.CANCELLED, "variation.cancelled", "it has already finished", "settled"),
    # Recovery (generation/recovery.py): a running variation whose owner is dead goes back to the queue.
    "requeue": _move([V.RUNNING], V.QUEUED, "variation.requeued", "it is not running"),
}
SETTLED = frozenset({V.DONE, V.FAILED, V.CANCELLED})
del R, V


def decision_move(request: GenerationRequest, decision: str) -> str:
    """The table row for a sign-off decision ("sign_off" or "send_back") on this request's task."""
    return decision if task_info(request.task).needs_pick else f"{decision}_unpicked"


@dataclass
class Moved:
    """A move in progress: set ``payload`` (and ``actor``) before the block ends; the event carries them."""

    request_id: int
    status: str
    payload: dict = field(default_factory=dict)
    actor: object = None


@contextmanager
def request_moving(request: GenerationRequest, name: str, *, actor=None, **fields) -> Iterator[Moved]:
    """Move ``request`` by the table row ``name``; inside the block, write what goes with the move (a pick, a
    sign-off) and fill in the event's payload. The move, the block's writes and the event commit together or
    not at all. Raises ``Conflict`` (409) when the request's status does not allow the move."""
    move = REQUEST_MOVES[name]
    with transaction.atomic():
        if not _update(GenerationRequest, request.pk, move, fields):
            raise _refused(GenerationRequest, request.pk, move, "the request")
        request.status = move.target
        moved = Moved(request_id=request.pk, status=move.target, actor=actor)
        yield moved
        events.event_append(request_id=request.pk, type=move.event, payload=moved.payload, actor=moved.actor)


def request_move(request: GenerationRequest, name: str, *, actor=None, payload: dict | None = None,
                 **fields) -> None:
    """A move with nothing written beside it but its event (see :func:`request_moving`)."""
    with request_moving(request, name, actor=actor, **fields) as moved:
        moved.payload = payload or {}


def request_try_move(request_id: int, name: str, *, payload: dict | None = None, **fields) -> bool:
    """A move a worker makes when it may already have happened (a settle, a start): False, not a 409."""
    move = REQUEST_MOVES[name]
    with transaction.atomic():
        if not _update(GenerationRequest, request_id, move, fields):
            return False
        events.event_append(request_id=request_id, type=move.event, payload=payload or {})
    return True


def variation_move(variation: Variation, name: str, *, actor=None, payload: dict | None = None,
                   quiet: bool = False, where: Q | None = None, **fields) -> bool:
    """Move a variation by the table row ``name`` and append its event (``payload`` plus the variation's id
    and index). A refused move raises ``Conflict``, or returns False when ``quiet`` (a worker's duplicate).
    ``where``: a further condition of the same UPDATE (a lease: only its holder, or only when it is free)."""
    move = VARIATION_MOVES[name]
    with transaction.atomic():
        if not _update(Variation, variation.pk, move, fields, where):
            if quiet:
                return False
            raise _refused(Variation, variation.pk, move, variation.label)
        variation.status = move.target
        events.event_append(request_id=variation.request_id, type=move.event, actor=actor,
                            payload={"variation": variation.pk, "index": variation.index, **(payload or {})})
    return True


def _update(model, pk: int, move: Move, fields: dict, where: Q | None = None) -> int:
    rows = model.objects.filter(pk=pk, status__in=move.sources)
    return (rows.filter(where) if where is not None else rows).update(status=move.target, **fields)


def _refused(model, pk: int, move: Move, what: str) -> Conflict:
    status = model.objects.filter(pk=pk).values_list("status", flat=True).first()
    shown = model._meta.get_field("status").choices
    label = dict(shown).get(status, status or "gone").lower()
    return Conflict(f"{what} is {label}; {move.refusal}", code=move.code)
