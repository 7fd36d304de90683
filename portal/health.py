"""``/health/``: is this portal able to do its work? (django-health-check)

Production: the database, Redis, the Celery broker, a worker seen recently for every queue, free space on the
work and publish roots. Embedded default: the database, the in-process worker, free space. 200 when all hold,
500 with the failing checks named otherwise; ``?format=json`` (or ``Accept: application/json``) for scripts.
The answers name checks and roots by role ("work", "publish"), never server paths or URLs with credentials.
"""

import dataclasses
import datetime
import shutil
from pathlib import Path

from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from portal import heartbeat, worker


@dataclasses.dataclass
class Redis(HealthCheck):
    """Redis answers a PING (the channels layer and the broker live there)."""

    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
        except redis.RedisError as error:
            raise ServiceUnavailable(f"Redis does not answer ({type(error).__name__})") from None


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker takes a connection (through kombu, as the portal sends tasks); embedded: the
    in-process worker accepts tasks."""

    timeout = datetime.timedelta(seconds=4)

    def run(self) -> None:
        if settings.PT_EMBEDDED_WORKER:
            if not worker.embedded_usable():
                raise ServiceUnavailable("the embedded worker is shut down")
            return
        from portal.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
        except Exception as error:  # noqa: BLE001 - kombu raises many kinds; each means "no broker"
            raise ServiceUnavailable(f"the broker does not answer ({type(error).__name__})") from None


@dataclasses.dataclass
class Workers(HealthCheck):
    """A worker was seen within PT_WORKER_SEEN_SECONDS for every queue tasks go to (its heartbeat); embedded:
    the worker is the portal process itself."""

    timeout = datetime.timedelta(seconds=4)

    def run(self) -> None:
        if settings.PT_EMBEDDED_WORKER:
            return
        seen = heartbeat.workers_seen()
        if not seen:
            raise ServiceUnavailable("no worker seen recently")
        served = {queue for record in seen for queue in record.get("queues", [])}
        unserved = [queue for queue in heartbeat.queue_names() if queue not in served]
        if unserved:
            raise ServiceUnavailable(f"no worker seen recently for queue {', '.join(unserved)}")


@dataclasses.dataclass
class FreeSpace(HealthCheck):
    """At least PT_HEALTH_MIN_FREE_GB free on a storage root (the work area, the publish root)."""

    root: str = "work"

    def _path(self) -> Path:
        return Path(settings.WORK_ROOT if self.root == "work" else settings.PUBLISH_ROOT)

    def run(self) -> None:
        path = self._path()
        if not path.is_dir() and not settings.PRODUCTION_MODE:
            # The embedded default makes its roots under PT_VAR_DIR on first use: measure where they will be.
            path = next(parent for parent in path.parents if parent.is_dir())
        if not path.is_dir():
            raise ServiceUnavailable(f"the {self.root} root is missing")  # production: a share not mounted
        free = shutil.disk_usage(path).free / 1e9
        wanted = settings.PT_HEALTH_MIN_FREE_GB
        if free < wanted:
            raise ServiceUnavailable(f"{free:.1f} GB free on the {self.root} root, under {wanted:g} GB")


def checks() -> list:
    found = [Database, Broker, Workers, (FreeSpace, {"root": "work"}), (FreeSpace, {"root": "publish"})]
    if settings.REDIS_URL:
        found.insert(1, Redis)
    return found


class PortalHealth(HealthCheckView):
    def get_checks(self):
        for check in checks():
            cls, options = check if isinstance(check, tuple) else (check, {})
            yield cls(**options)


view = PortalHealth.as_view()
