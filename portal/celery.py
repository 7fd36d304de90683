"""The Celery app. Production: Redis broker, `celery -A portal worker -Q gpu,publish` per GPU."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["generation", "review"])

# Workers write a heartbeat to Redis, so /health/ sees a worker busy with a long task (portal/heartbeat.py).
from portal import heartbeat  # noqa: E402

heartbeat.connect(app)
