"""Run the portal: `manage.py serve --demo` migrates, seeds the demo show if absent and serves on one port."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal import worker
from portal.models import Show


class Command(BaseCommand):
    help = "Serve HTTP and websockets (uvicorn); on the embedded default the generation worker runs inside."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--demo", action="store_true", help="migrate and seed the demo show first")

    def handle(self, *args, **opts):
        import uvicorn

        if opts["demo"]:
            call_command("migrate", verbosity=0, interactive=False)
            if not Show.objects.filter(code="demo").exists():
                call_command("seed_demo")
        if settings.PT_EMBEDDED_WORKER:
            # The work a killed portal left: the database says what was queued or running; the worker thread
            # requeues and finishes it before anything new (recovery, generation/recovery.py).
            worker.send_now("generation.tasks.recover_stranded", True)
            worker.send_now("review.tasks.recover_releases", True)
            worker.send_now("generation.tasks.warm_engine")  # the first Generate need not import diffusers
        self.stdout.write(f"Parallel Track on http://{opts['host']}:{opts['port']}/  (Ctrl-C stops it)")
        self.stdout.flush()
        uvicorn.run("portal.asgi:application", host=opts["host"], port=opts["port"], lifespan="off",
                    log_level="warning", ws_ping_interval=20)
