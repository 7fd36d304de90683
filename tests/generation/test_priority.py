"""A request's priority on the GPU queue, from the API and the shot form: one of low, normal, high, urgent; above
normal only for a supervisor (it goes ahead of everyone's work). The queue's order itself: test_leases.py."""

import pytest

from generation import services
from generation.models import GenerationRequest
from portal.errors import Forbidden, PortalError

pytestmark = pytest.mark.django_db  # nothing runs: the tickets are sent on a commit these tests never make


def _ask(user, shot, model, priority):
    return services.request_create(user=user, shot=shot, model=model, first_frame=1001, last_frame=1002, count=1,
                                   steps=1, base_seed=1, priority=priority)


def test_the_service_takes_the_named_levels_and_limits_raising_to_supervisors(compositor, supervisor, shot,
                                                                             show_model):
    assert _ask(compositor, shot, show_model, -1).priority == -1
    assert _ask(compositor, shot, show_model, 0).priority == 0
    assert _ask(supervisor, shot, show_model, 2).priority == 2
    with pytest.raises(Forbidden, match="a compositor cannot ask for high priority"):
        _ask(compositor, shot, show_model, 1)
    for bad in (3, -2, True, "1", 1.0 + 0.5):
        with pytest.raises(PortalError, match="priority is one of -1 \\(low\\), 0 \\(normal\\)"):
            _ask(supervisor, shot, show_model, bad)
    assert sorted(GenerationRequest.objects.values_list("priority", flat=True)) == [-1, 0, 2]


def _post(client, shot, model, **extra):
    return client.post("/api/requests/", {"shot": shot.pk, "model": model.pk, "first_frame": 1001,
                                          "last_frame": 1002, "count": 1, "steps": 1, **extra},
                       content_type="application/json")


def test_the_api_takes_a_priority_and_shows_it(client, compositor, supervisor, shot, show_model):
    client.force_login(supervisor)
    urgent = _post(client, shot, show_model, priority=2)
    assert urgent.status_code == 201 and urgent.json()["priority"] == 2
    assert client.get(f"/api/requests/{urgent.json()['id']}/").json()["priority"] == 2
    assert _post(client, shot, show_model).json()["priority"] == 0  # normal when not given
    out_of_range = _post(client, shot, show_model, priority=5)
    assert out_of_range.status_code == 400 and "priority" in out_of_range.content.decode()
    client.force_login(compositor)
    refused = _post(client, shot, show_model, priority=1)
    assert refused.status_code == 403 and "cannot ask for high priority" in refused.content.decode()
    assert _post(client, shot, show_model, priority=-1).json()["priority"] == -1
    assert sorted(GenerationRequest.objects.values_list("priority", flat=True)) == [-1, 0, 2]


def test_the_shot_form_offers_what_the_role_may_ask_for(client, compositor, supervisor, shot, show_model):
    client.force_login(compositor)
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert '<select name="priority"><option value="-1">low</option><option value="0" selected>normal</option>' \
           "</select>" in page
    made = client.post(f"/shots/{shot.pk}/requests/new", {"model": show_model.pk, "first_frame": 1001,
                                                           "last_frame": 1002, "count": 1, "priority": "-1"})
    assert made.status_code == 302 and GenerationRequest.objects.get().priority == -1
    refused = client.post(f"/shots/{shot.pk}/requests/new", {"model": show_model.pk, "first_frame": 1001,
                                                              "last_frame": 1002, "count": 1, "priority": "2"})
    assert refused.status_code == 403 and GenerationRequest.objects.count() == 1
    client.force_login(supervisor)
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert '<option value="1">high</option><option value="2">urgent</option>' in page
    client.post(f"/shots/{shot.pk}/requests/new", {"model": show_model.pk, "first_frame": 1001,
                                                   "last_frame": 1002, "count": 1, "priority": "2"})
    assert GenerationRequest.objects.order_by("-pk").first().priority == 2
    nonsense = client.post(f"/shots/{shot.pk}/requests/new", {"model": show_model.pk, "first_frame": 1001,
                                                               "last_frame": 1002, "count": 1, "priority": "top"})
    assert nonsense.status_code == 400 and "priority must be a whole number" in nonsense.content.decode()
