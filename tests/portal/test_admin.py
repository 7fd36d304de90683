"""The Django admin: every catalogue page and the models page load for staff; a model's status changes only
through the approval service (an admin action), which checks the role and leaves a history entry."""

import pytest
from django.contrib.admin.models import LogEntry

from generation.models import GenerationModel
from portal.models import Membership

pytestmark = pytest.mark.django_db

PAGES = ["show", "sequence", "shot", "plate", "membership"]


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("olga", password="olga-pw")


@pytest.fixture
def pending_model(show, storage):
    """A registered show model, pending, whose card names the show (approval is scoped to the card's shows)."""
    from generation.engine.registry import build_tiny_show_model

    card = build_tiny_show_model(str(storage / "models" / "tiny-admin"), seed=3, name="tiny-admin",
                                 shows=(show.code,))
    return GenerationModel.objects.create(name=card.name, kind="show_model", path=card.path, status="pending",
                                          manifest_hash=card.manifest_hash)


def test_every_catalogue_page_and_the_models_page_load(client, operator, plate, show_model):
    client.force_login(operator)
    for name in PAGES:
        assert client.get(f"/admin/portal/{name}/").status_code == 200, name
    assert client.get(f"/admin/portal/plate/{plate.pk}/change/").status_code == 200  # a read-only view
    assert client.get(f"/admin/portal/show/{plate.shot.show.pk}/change/").status_code == 200
    page = client.get("/admin/generation/generationmodel/")
    assert page.status_code == 200 and show_model.name in page.content.decode()


def test_a_member_who_is_not_staff_gets_the_admin_login(client, compositor):
    client.force_login(compositor)
    response = client.get("/admin/portal/show/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_plates_are_ingested_not_typed_in(client, operator, plate):
    client.force_login(operator)
    assert client.get("/admin/portal/plate/add/").status_code == 403
    response = client.post(f"/admin/portal/plate/{plate.pk}/change/", {"path_pattern": "/etc/passwd.####.exr"})
    assert response.status_code == 403
    plate.refresh_from_db()
    assert plate.path_pattern != "/etc/passwd.####.exr"


def test_the_model_form_cannot_set_a_status(client, operator, pending_model):
    client.force_login(operator)
    form = client.get(f"/admin/generation/generationmodel/{pending_model.pk}/change/").content.decode()
    assert 'name="status"' not in form
    client.post(f"/admin/generation/generationmodel/{pending_model.pk}/change/",
                {"status": "approved", "name": "renamed", "_save": "Save"})
    pending_model.refresh_from_db()
    assert pending_model.status == "pending" and pending_model.name != "renamed"


def approve(client, model):
    return client.post("/admin/generation/generationmodel/", {
        "action": "approve_for_my_shows", "_selected_action": [model.pk], "index": 0}, follow=True)


def test_approval_goes_through_the_service_and_is_recorded(client, operator, pending_model, show):
    Membership.objects.create(user=operator, show=show, role="supervisor")
    client.force_login(operator)
    page = approve(client, pending_model).content.decode()
    assert f"{pending_model.name} approved for {show.code}" in page.lower()  # the admin capitalises messages
    pending_model.refresh_from_db()
    assert pending_model.status == "approved" and pending_model.approved_by == operator
    assert list(pending_model.approved_shows.all()) == [show]
    entry = LogEntry.objects.get(object_id=str(pending_model.pk))
    assert entry.user == operator and f"approved for show {show.code}" in entry.get_change_message()


def test_a_staff_user_who_supervises_no_show_approves_nothing(client, operator, pending_model, show):
    Membership.objects.create(user=operator, show=show, role="compositor")
    client.force_login(operator)
    page = approve(client, pending_model).content.decode()
    assert "you supervise no show" in page.lower()
    pending_model.refresh_from_db()
    assert pending_model.status == "pending" and not pending_model.approved_shows.exists()
    assert not LogEntry.objects.filter(object_id=str(pending_model.pk)).exists()
