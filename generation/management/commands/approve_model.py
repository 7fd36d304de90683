"""A supervisor approves a registered model for a show: `manage.py approve_model --model demo-sky --show demo --by sam`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from generation import services
from generation.models import GenerationModel
from portal.errors import PortalError
from portal.models import Show


class Command(BaseCommand):
    help = "Approve a generation model for use on a show (the approving user must supervise the show)."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="the model's name")
        parser.add_argument("--show", required=True, help="the show's code")
        parser.add_argument("--by", required=True, help="username of a supervisor of the show")

    def handle(self, *args, **opts):
        model = GenerationModel.objects.filter(name=opts["model"]).first()
        show = Show.objects.filter(code=opts["show"]).first()
        user = get_user_model().objects.filter(username=opts["by"]).first()
        for value, what, given in ((model, "model", opts["model"]), (show, "show", opts["show"]),
                                   (user, "user", opts["by"])):
            if value is None:
                raise CommandError(f"no {what} {given!r}")
        try:
            services.model_approve(user=user, model=model, show_id=show.pk)
        except PortalError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"model {model.name} approved for {show.code} by {user.username} "
                          f"(manifest sha256 {model.manifest_hash or 'none'})")
