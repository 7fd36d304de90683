"""The browser tier: the portal as a real subprocess (uvicorn, embedded mode) and headless Chromium.

The server shares pytest-django's test database: on the embedded default the test database is a SQLite
file (settings DATABASES.default.TEST.NAME), so the subprocess opens that same file through PT_SQLITE_PATH.
Tests that drive the server use ``@pytest.mark.django_db(transaction=True)`` so their rows are committed
and visible to it. The server runs its own in-process worker thread and in-memory channel layer.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import inside

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REPO = Path(__file__).resolve().parents[2]


def _required() -> bool:
    return os.getenv("PT_REQUIRE_PRODUCTION", "0") == "1"


def _unavailable(reason: str):
    """Skip loudly; CI (PT_REQUIRE_PRODUCTION=1) must not skip the browser tier, so it fails instead."""
    message = f"!!! BROWSER TIER NOT RUN: {reason} !!!"
    if _required():
        pytest.fail(message + " (PT_REQUIRE_PRODUCTION=1)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _browser_tier_available():
    from django.conf import settings

    if not Path(CHROMIUM).is_file():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    if settings.PRODUCTION_MODE or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip(
            "the browser tier runs on the embedded default (SQLite, in-process worker); "
            "unset DATABASE_URL and REDIS_URL"
        )


class PortalServer:
    def __init__(self, proc: subprocess.Popen, url: str, log_path: Path):
        self.proc = proc
        self.url = url
        self.log_path = log_path

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _wait_until_serving(server: PortalServer, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the portal exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the portal did not answer on {server.url} within {timeout:.0f} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def portal_server(_browser_tier_available, django_db_setup, storage):
    """`manage.py serve` on a free port, on the test database file and the test run's storage."""
    from django.conf import settings
    from django.db import connection

    test_db = connection.settings_dict["NAME"]
    assert Path(test_db).is_file(), f"the test database should be a file the server can open: {test_db!r}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(
        PT_SQLITE_PATH=str(test_db),
        PT_VAR_DIR=str(settings.VAR_DIR),
        PT_EMBEDDED_WORKER="1",
        DJANGO_SETTINGS_MODULE="portal.settings",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    port = free_port()
    log_dir = Path(settings.VAR_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "browser-portal.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PortalServer(proc, f"http://127.0.0.1:{port}", log_path)
    _wait_until_serving(server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium(_browser_tier_available):
    from playwright.sync_api import sync_playwright

    # Sync Playwright keeps an event loop running in this thread, which makes Django refuse ORM calls; the
    # tests' ORM calls are plain sync code, so allow them, and only while this module's browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_page(chromium, portal_server):
    """`open_page(username, password)`: a logged-in page in its own browser context (its own session)."""
    contexts = []

    def _open(username: str, password: str, *, init_script: str | None = None):
        context = chromium.new_context(base_url=portal_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        if init_script:
            context.add_init_script(init_script)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("form button[type=submit]")
        assert "/login/" not in page.url, f"{username} could not log in"
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots(storage) -> Path:
    folder = Path(storage) / "screenshots"
    shutil.rmtree(inside(folder, storage), ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
