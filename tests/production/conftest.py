"""The production tier: PostgreSQL, Redis, real Celery worker processes and an ASGI server (channels-redis).

deploy/test runs it with DATABASE_URL and REDIS_URL set (PT_PRODUCTION_TESTS=1). pytest-django creates the
test database (``test_<name>``) on PostgreSQL; the worker and the server are subprocesses pointed at that
test database, at Redis and at the test run's storage. Tests use ``@pytest.mark.django_db(transaction=True)``
so their rows are committed and visible to the subprocesses.

Without PostgreSQL or Redis these tests skip loudly; with PT_REQUIRE_PRODUCTION=1 (CI) they fail instead.
"""

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_SECRET_KEY = "pt-production-tests-" + "k3y" * 20  # not the embedded default, which production refuses
_names = itertools.count(1)


def _unavailable(reason: str):
    message = f"!!! PRODUCTION TIER NOT RUN: {reason} !!!"
    if os.getenv("PT_REQUIRE_PRODUCTION", "0") == "1":
        pytest.fail(message + " (PT_REQUIRE_PRODUCTION=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def production_services():
    """Check PostgreSQL and Redis before pytest-django tries to create the test database; empty Redis."""
    from django.conf import settings

    if not settings.PRODUCTION_MODE or not settings.DATABASE_URL:
        _unavailable(
            "production mode is off; set DATABASE_URL and REDIS_URL (./deploy/test does with PT_PRODUCTION_TESTS=1)"
        )
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        _unavailable(f"DATABASE_URL is not PostgreSQL: {settings.DATABASES['default']['ENGINE']}")
    import psycopg
    import redis

    try:
        psycopg.connect(settings.DATABASE_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        _unavailable(f"PostgreSQL at {_safe(settings.DATABASE_URL)} is unreachable: {exc}")
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {settings.REDIS_URL} is unreachable: {exc}")
    client.flushdb()  # a previous run's queued tasks and channel groups must not leak into this one
    client.close()


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def service_env(production_services, django_db_setup, storage) -> dict:
    """The environment of the worker and server subprocesses: the TEST database, Redis, the test storage."""
    from django.conf import settings
    from django.db import connection

    test_db = connection.settings_dict["NAME"]
    database_url = urlsplit(settings.DATABASE_URL)._replace(path=f"/{test_db}").geturl()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PT_SQLITE")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=settings.REDIS_URL,
        PT_VAR_DIR=str(settings.VAR_DIR),
        DJANGO_SETTINGS_MODULE="portal.settings",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        # Production mode refuses the public embedded key: the test servers share one of their own.
        SECRET_KEY=os.environ.get("SECRET_KEY") or TEST_SECRET_KEY,
    )
    return env


class Service:
    """A subprocess with its output in var/test/logs/<name>.log."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, as when a machine or an OOM killer takes the process."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_until(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except BaseException:
                self.stop()  # never left running untracked (it would take the next test's work)
                raise
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} was not {what} within {timeout:.0f} s:\n{self.log_tail()}")


def _log_dir() -> Path:
    from django.conf import settings

    folder = Path(settings.VAR_DIR) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class AsgiServer(Service):
    def __init__(self, env: dict, port: int | None = None):
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        super().__init__(
            f"production-asgi-{os.getpid()}",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "portal.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                "--log-level",
                "warning",
            ],
            env,
            _log_dir(),
        )
        self.wait_until(self._answers, "answering HTTP", timeout=90)

    def again(self) -> "AsgiServer":
        """A new server on this one's port (this one stopped or killed first): its viewers reconnect to the same
        address."""
        self.stop()
        return AsgiServer(self.env, port=self.port)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/login/", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


class CeleryWorker(Service):
    """`celery -A portal worker -Q gpu,publish -c 1 --pool=solo`, ready once it answers a ping."""

    def __init__(self, env: dict, *, wait: bool = True, **extra_env: str):
        self.nodename = f"pt-test-{os.getpid()}-{next(_names)}@localhost"
        self.extra_env = extra_env
        super().__init__(
            self.nodename.split("@")[0],
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                "gpu,publish",
                "-c",
                "1",
                "--pool=solo",
                "-l",
                "warning",
                "-n",
                self.nodename,
                "--without-mingle",
                "--without-gossip",
            ],
            dict(env, **extra_env),
            _log_dir(),
        )
        if wait:
            self.wait_until(self._answers, "answering a ping", timeout=90)

    def _answers(self) -> bool:
        from kombu.exceptions import OperationalError
        from redis.exceptions import ConnectionError as RedisConnectionError

        from portal.celery import app

        try:
            return bool(app.control.ping(destination=[self.nodename], timeout=0.5))
        except (OSError, OperationalError, RedisConnectionError):
            return False  # this process's connection died with a Redis restart: kombu makes a new one next time


class Workers:
    """The Celery workers of the run: one at a time, restartable, each stopped at the end."""

    def __init__(self, env: dict):
        self.env = env
        self.started: list[CeleryWorker] = []

    @property
    def current(self) -> CeleryWorker | None:
        return self.started[-1] if self.started and self.started[-1].alive else None

    def start(self, *, wait: bool = True, **extra_env: str) -> CeleryWorker:
        """Start a worker; wait=False when it may take a task at once (a busy solo worker answers no ping)."""
        worker = CeleryWorker(self.env, wait=wait, **extra_env)
        self.started.append(worker)
        return worker

    def ensure(self, **extra_env: str) -> CeleryWorker:
        """A live worker started with exactly this extra environment."""
        current = self.current
        if current is not None and current.extra_env == extra_env:
            return current
        if current is not None:
            current.stop()
        return self.start(**extra_env)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture(scope="session")
def workers(service_env):
    pool = Workers(service_env)
    yield pool
    pool.stop_all()


@pytest.fixture
def celery_worker(workers) -> CeleryWorker:
    """A worker with the production defaults (an hour's visibility timeout)."""
    return workers.ensure()


@pytest.fixture(scope="session")
def asgi_server(service_env):
    server = AsgiServer(service_env)
    yield server
    server.stop()


class Api:
    """JSON over HTTP to the ASGI server, authenticated by a user's API token."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict]:
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=body,
            method=method,
            headers={
                "Authorization": f"Token {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def post(self, path: str, data: dict | None = None) -> dict:
        status, payload = self.call("POST", path, data or {})
        assert status in (200, 201), f"POST {path} -> {status}: {payload}"
        return payload

    def get(self, path: str) -> dict:
        status, payload = self.call("GET", path)
        assert status == 200, f"GET {path} -> {status}: {payload}"
        return payload


@pytest.fixture
def api_for(asgi_server):
    """`api_for(user)`: an API client holding that user's token."""
    from portal.tokens import token_issue

    def _api(user) -> Api:
        return Api(asgi_server.url, token_issue(user=user, name="production tests")[1])

    return _api


@pytest.fixture
def watch(asgi_server, compositor):
    """``watch(request)``: websocket viewers of the request (``tests.production.viewers``) on the run's ASGI server,
    or on ``server=``, connected before it returns; stopped after the test."""
    from portal.tokens import token_issue
    from tests.production.test_production_loop import wait_for
    from tests.production.viewers import VIEWERS, Viewers

    token = token_issue(user=compositor, name="fault viewers")[1]
    started = []

    def _watch(request, server=None) -> Viewers:
        viewers = Viewers((server or asgi_server).ws_url, request.pk, token, count=VIEWERS).start()
        started.append(viewers)
        wait_for(lambda: viewers.connected, "the viewers to connect", timeout=60)
        return viewers

    yield _watch
    for viewers in started:
        viewers.stop()
