"""The member-scoped selectors: a member gets the row, an outsider and a missing id a 404."""

import pytest

from generation.selectors import request_for_member, variation_for_member
from portal.errors import NotFound
from portal.selectors import shot_for_member, show_for_member
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db


def test_members_get_the_row_and_outsiders_and_missing_ids_a_404(director, outsider, compositor, shot,
                                                                      show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=1)
    variation = request.variations.get()
    lookups = [(show_for_member, shot.sequence.show.code, "zzz"), (shot_for_member, shot.pk, 10**9),
               (request_for_member, request.pk, 10**9), (variation_for_member, variation.pk, 10**9)]
    for select, known, missing in lookups:
        found = select(director, known)
        assert (found[0] if isinstance(found, tuple) else found).pk is not None
        for user, key in ((outsider, known), (director, missing)):
            with pytest.raises(NotFound) as refused:
                select(user, key)
            assert refused.value.status == 404, select.__name__
            if user == outsider:  # nothing said about the show
                assert refused.value.message == "not found", select.__name__
    assert shot_for_member(director, shot.pk)[1] == "director"
