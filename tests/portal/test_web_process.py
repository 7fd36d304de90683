"""A web process stays light: serving pages and queueing a generation never loads the engine's torch."""

import subprocess
import sys

from django.conf import settings

_PROBE = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
import django
django.setup()
import portal.urls, portal.asgi, generation.services, generation.proxies, review.services  # noqa
print("torch" in sys.modules)
"""


def test_the_web_process_does_not_import_torch():
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                           cwd=settings.BASE_DIR)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"
