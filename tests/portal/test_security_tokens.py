"""API tokens: stored hashed, named, expiring, listed and revoked by their owner, revoked by a password change;
the migration turns the old plaintext tokens into hashed ones that keep working."""

import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from portal.models import ApiToken
from portal.tokens import key_hash, token_issue, token_user

pytestmark = pytest.mark.django_db


def _api(client, key: str):
    return client.get("/api/shows/", HTTP_AUTHORIZATION=f"Token {key}")


def test_a_token_is_stored_as_a_hash_and_authenticates_until_revoked(client, compositor) -> None:
    token, key = token_issue(user=compositor, name="nuke ws-042")
    assert key.startswith("pt_") and len(key) > 40
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in [str(v) for v in stored.values()] and stored["key_hash"] == key_hash(key)
    assert _api(client, key).status_code == 200
    assert _api(client, key[:-1] + ("A" if key[-1] != "A" else "B")).status_code == 401

    client.force_login(compositor)
    page = client.get("/account/tokens/").content.decode()
    assert "nuke ws-042" in page and key not in page and token.prefix in page
    assert client.post(f"/account/tokens/{token.pk}/revoke").status_code == 302
    client.logout()
    answer = _api(client, key)
    assert answer.status_code == 401 and answer.json()["code"] == "authentication_failed"


def test_an_expired_token_is_refused(client, compositor) -> None:
    token, key = token_issue(user=compositor, name="short", days=1)
    assert _api(client, key).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _api(client, key).status_code == 401
    assert token_user(key) is None


def test_the_owner_makes_a_token_on_the_page_and_sees_its_key_once(client, compositor, director) -> None:
    client.force_login(compositor)
    made = client.post("/account/tokens/", {"name": "cli laptop", "days": "30"})
    assert made.status_code == 200
    token = ApiToken.objects.get(user=compositor, name="cli laptop")
    key = made.content.decode().split('id="new-token-key">')[1].split("<")[0]
    assert key_hash(key) == token.key_hash and _api(client, key).status_code == 200
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert key not in client.get("/account/tokens/").content.decode()  # shown once
    for bad in ({"name": "", "days": "30"}, {"name": "x", "days": "0"}, {"name": "x", "days": "10000"},
                {"name": "x", "days": "-3"}, {"name": "x" * 101}):
        assert client.post("/account/tokens/", bad).status_code == 400, bad

    # Someone else's token is the same 404 as a missing one, and stays live.
    client.force_login(director)
    assert "cli laptop" not in client.get("/account/tokens/").content.decode()
    assert client.post(f"/account/tokens/{token.pk}/revoke").status_code == 404
    assert client.post("/account/tokens/999999/revoke").status_code == 404
    assert token_user(key) == compositor


def test_a_password_change_revokes_every_token(client, compositor, director) -> None:
    _, on_page = token_issue(user=compositor, name="a")
    _, other = token_issue(user=director, name="b")
    client.force_login(compositor)
    changed = client.post("/account/password/", {"old_password": "cora-pw", "new_password1": "tall-grey-heron-41",
                                                  "new_password2": "tall-grey-heron-41"})
    assert changed.status_code == 302, changed.content
    assert token_user(on_page) is None and token_user(other) == director

    _, by_operator = token_issue(user=director, name="c")
    director.set_password("another-long-phrase-7")
    director.save()
    assert token_user(other) is None and token_user(by_operator) is None


@pytest.mark.django_db(transaction=True)
def test_a_websocket_with_a_revoked_token_is_anonymous(compositor) -> None:
    from portal.ws_auth import _user_for_token

    token, key = token_issue(user=compositor, name="ws")
    assert async_to_sync(_user_for_token)(key) == compositor
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert not async_to_sync(_user_for_token)(key).is_authenticated


def test_issue_token_prints_a_working_key_once(compositor, capsys) -> None:
    call_command("issue_token", user="cora", name="render farm", days=7)
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert token_user(key) == compositor
    assert ApiToken.objects.get(user=compositor).name == "render farm"


def test_the_migration_hashes_the_old_plaintext_tokens_and_deletes_them(compositor) -> None:
    migration = importlib.import_module("portal.migrations.0005_api_token_hashed")
    legacy = "a" * 40
    with connection.cursor() as cursor:
        cursor.execute('CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, user_id integer, created '
                       'datetime)')
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [legacy, compositor.pk, timezone.now()])
    try:
        # What the migration uses of its schema editor (SQLite's cannot open inside the test's transaction).
        editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
        migration.hash_legacy_tokens(apps, editor)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0  # no plaintext left
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
    assert ApiToken.objects.get(user=compositor).name == "migrated"
    assert token_user(legacy) == compositor  # the key the client holds goes on working
