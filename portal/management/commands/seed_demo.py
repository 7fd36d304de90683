"""A demo show: a synthetic plate and sky matte, a user for every role, and the demo sky model."""

import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from generation.engine.demo_plate import render_demo_plate
from generation.engine.registry import build_tiny_show_model, read_model_card
from generation.models import ModelKind
from generation.services import model_approve, model_register
from portal.models import Membership, Role, Show
from portal.services import plate_ingest
from portal.tokens import token_issue

DEMO_USERS = [
    ("dana", Role.DIRECTOR, "Dana Director"),
    ("sam", Role.SUPERVISOR, "Sam Supervisor"),
    ("cora", Role.COMPOSITOR, "Cora Compositor"),
    ("pete", Role.PRODUCER, "Pete Producer"),
    ("otto", None, "Otto Outsider"),
]
# Trained by our own train_show_model command on the demo show's look-dev set (deploy/demo-model/README.md).
DEMO_MODEL = Path(settings.BASE_DIR) / "deploy" / "demo-model" / "demo-sky"


class Command(BaseCommand):
    help = "Create the demo show with its plate, matte, users and generation model."

    def add_arguments(self, parser):
        parser.add_argument("--frames", type=int, default=24)
        parser.add_argument("--width", type=int, default=1920)
        parser.add_argument("--height", type=int, default=1080)

    def handle(self, *args, **opts):
        if Show.objects.filter(code="demo").exists():
            self.stdout.write("the demo show exists already")
            return
        plates = Path(settings.PLATE_ROOTS[0]) / "demo"
        first = 1001
        self.stdout.write(f"rendering the demo plate into {plates} …")
        rendered = render_demo_plate(str(plates), first=first, last=first + opts["frames"] - 1,
                                     width=opts["width"], height=opts["height"])
        card = self._model()
        with transaction.atomic():
            show = Show.objects.create(code="demo", name="Parallel Track Demo", working_space="ACEScg")
            plate = plate_ingest(show=show, sequence_code="sq010", shot_code="sq010_sh0040",
                                 pattern=rendered["plate"], matte_pattern=rendered["matte"])
            lines = self._users(show)
            # Registered pending like any trained model, then approved by the demo show's supervisor.
            model = model_register(name=card.name, kind=ModelKind.SHOW_MODEL, path=card.path,
                                   manifest_hash=card.manifest_hash)
            model_approve(user=get_user_model().objects.get(username="sam"), model=model, show_id=show.pk)
        self.stdout.write(f"demo show ready: shot {plate.shot.code}, plate {plate.path_pattern}, model {card.name}")
        self.stdout.write("demo users (user / password / role / API token):")
        for line in lines:
            self.stdout.write("  " + line)

    def _model(self):
        target = Path(settings.MODEL_ROOT) / "demo-sky"
        if (DEMO_MODEL / "parallel_track.json").exists():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(DEMO_MODEL, target)
            return read_model_card(str(target))
        self.stderr.write("warning: no trained demo model in deploy/demo-model; using random weights")
        return build_tiny_show_model(str(target), seed=1, name="demo-sky", shows=("demo",))

    def _users(self, show: Show) -> list[str]:
        User = get_user_model()
        lines = []
        for username, role, full_name in DEMO_USERS:
            password = f"{username}-demo"
            first, last = full_name.split()
            user = User.objects.create_user(username, password=password, first_name=first, last_name=last)
            if role:
                Membership.objects.create(user=user, show=show, role=role)
            _, key = token_issue(user=user, name="demo")
            lines.append(f"{username:6} {password:12} {role.value if role else 'outsider':11} {key}")
        return lines
