"""The portal as a live subprocess for pipeline-client tests: ``manage.py serve`` in embedded mode on the
test database file (the browser tier's set-up, without Chromium). Tests that use it need
``@pytest.mark.django_db(transaction=True)`` so their rows are committed and visible to the server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import REPO, PortalServer, _wait_until_serving, free_port


def start_portal(name: str) -> PortalServer:
    from django.conf import settings
    from django.db import connection

    test_db = connection.settings_dict["NAME"]
    assert Path(test_db).is_file(), f"the test database should be a file the server can open: {test_db!r}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(PT_SQLITE_PATH=str(test_db), PT_VAR_DIR=str(settings.VAR_DIR), PT_EMBEDDED_WORKER="1",
               DJANGO_SETTINGS_MODULE="portal.settings", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               LOG_LEVEL="WARNING", PT_API_RATE_USER="100000/min")  # fuzzing and loops are not throttle tests
    port = free_port()
    log_dir = Path(settings.VAR_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    server = PortalServer(proc, f"http://127.0.0.1:{port}", log_path)
    _wait_until_serving(server)
    return server


def embedded_only() -> None:
    from django.conf import settings

    if settings.PRODUCTION_MODE or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("runs on the embedded default (SQLite, in-process worker); unset DATABASE_URL and REDIS_URL")


@pytest.fixture(scope="session")
def live_portal(django_db_setup, storage):
    embedded_only()
    server = start_portal(f"client-portal-{os.getpid()}")
    yield server
    server.stop()


@pytest.fixture
def token_for():
    """`token_for(user)`: an API token key of that user (one per user and test)."""
    from portal.tokens import token_issue

    keys: dict[int, str] = {}

    def key_of(user) -> str:
        if user.pk not in keys:
            keys[user.pk] = token_issue(user=user, name="tests")[1]
        return keys[user.pk]

    return key_of
