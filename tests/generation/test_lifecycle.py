"""The lifecycle table, walked: every allowed move writes exactly one event, every other one is refused."""

import re
from pathlib import Path

import pytest

from generation import lifecycle
from generation.models import GenerationRequest, RequestEvent, RequestStatus, Variation, VariationStatus
from portal.errors import Conflict
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_request(compositor, shot, show_model):
    def make(status: str) -> GenerationRequest:
        request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=1)
        GenerationRequest.objects.filter(pk=request.pk).update(status=status)
        request.refresh_from_db()
        return request

    return make


def _events(request_id: int) -> list[str]:
    return list(RequestEvent.objects.filter(request_id=request_id).order_by("seq").values_list("type", flat=True))


@pytest.mark.parametrize("name", sorted(lifecycle.REQUEST_MOVES))
def test_every_request_move_is_allowed_exactly_from_its_sources(make_request, name):
    move = lifecycle.REQUEST_MOVES[name]
    for status in RequestStatus.values:
        request = make_request(status)
        before = _events(request.pk)
        if status in move.sources:
            lifecycle.request_move(request, name, payload={"why": "walk"})
            assert GenerationRequest.objects.get(pk=request.pk).status == move.target
            assert _events(request.pk) == [*before, move.event], (name, status)
            assert RequestEvent.objects.filter(request=request).last().payload == {"why": "walk"}
        else:
            with pytest.raises(Conflict) as refused:
                lifecycle.request_move(request, name)
            assert refused.value.status == 409 and refused.value.message.startswith("the request is ")
            assert GenerationRequest.objects.get(pk=request.pk).status == status, (name, status)
            assert _events(request.pk) == before, (name, status)


@pytest.mark.parametrize("name", sorted(lifecycle.VARIATION_MOVES))
def test_every_variation_move_is_allowed_exactly_from_its_sources(make_request, name):
    move = lifecycle.VARIATION_MOVES[name]
    for status in VariationStatus.values:
        variation = make_request(RequestStatus.RUNNING).variations.get()
        Variation.objects.filter(pk=variation.pk).update(status=status)
        variation.refresh_from_db()
        before = _events(variation.request_id)
        if status in move.sources:
            assert lifecycle.variation_move(variation, name)
            assert Variation.objects.get(pk=variation.pk).status == move.target
            assert _events(variation.request_id) == [*before, move.event], (name, status)
        else:
            with pytest.raises(Conflict):
                lifecycle.variation_move(variation, name)
            assert not lifecycle.variation_move(variation, name, quiet=True)
            assert Variation.objects.get(pk=variation.pk).status == status, (name, status)
            assert _events(variation.request_id) == before, (name, status)


def test_a_refused_move_rolls_back_what_was_written_beside_it(make_request):
    request = make_request(RequestStatus.SIGNED_OFF)
    with pytest.raises(Conflict):
        with lifecycle.request_moving(request, "pick"):
            RequestEvent.objects.create(request=request, seq=99, type="written.beside")
    assert not RequestEvent.objects.filter(request=request, type="written.beside").exists()


def test_a_failure_inside_a_move_undoes_the_move_and_its_event(make_request):
    request = make_request(RequestStatus.REVIEW)
    before = _events(request.pk)
    with pytest.raises(RuntimeError):
        with lifecycle.request_moving(request, "cancel"):
            raise RuntimeError("disk full")
    assert GenerationRequest.objects.get(pk=request.pk).status == "review" and _events(request.pk) == before


def test_only_the_lifecycle_writes_a_status():
    """Services and views move requests through the table; none writes ``status`` itself."""
    writes = re.compile(r"\.update\([^)]*\bstatus=|\.status\s*=[^=]")
    for folder in ("generation", "review"):
        for path in (REPO / folder).glob("*.py"):
            if path.name in ("lifecycle.py", "models.py"):
                continue
            lines = [line for line in path.read_text().splitlines() if writes.search(line)
                     and not re.search(r"(Release|GenerationModel)\.objects|ReleaseStatus|ModelStatus", line)]
            assert not lines, f"{path.name} writes a status: {lines}"
