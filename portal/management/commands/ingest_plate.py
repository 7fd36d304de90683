"""Register an EXR sequence as a shot's plate: `manage.py ingest_plate /plates/sh010.####.exr --show demo ...`."""

from django.core.management.base import BaseCommand, CommandError

from generation.engine.sequence import parse_frame_range
from portal.errors import PortalError
from portal.models import Show
from portal.services import plate_ingest


class Command(BaseCommand):
    help = "Read every frame's header through OpenImageIO and register the sequence as a plate."

    def add_arguments(self, parser):
        parser.add_argument("pattern", help="frame pattern, Nuke style (####) or printf (%%04d); absolute, or "
                                            "relative to the plate root that holds it")
        parser.add_argument("--show", required=True)
        parser.add_argument("--sequence", required=True)
        parser.add_argument("--shot", required=True)
        parser.add_argument("--frames", help="e.g. 1001-1024 (default: what is on disk)")
        parser.add_argument("--name", default="main")
        parser.add_argument("--colourspace", help="the plate's, as the show's OCIO config names it (default: the "
                                                  "show's working space); others are converted at read")
        parser.add_argument("--matte", default="", help="a matte sequence for the plate's default region")
        parser.add_argument("--allow-missing", action="store_true", help="register with missing frames recorded")

    def handle(self, *args, **opts):
        show = Show.objects.filter(code=opts["show"]).first()
        if show is None:
            raise CommandError(f"no show {opts['show']!r}")
        first = last = None
        try:
            if opts["frames"]:
                first, last = parse_frame_range(opts["frames"])
            plate = plate_ingest(show=show, sequence_code=opts["sequence"], shot_code=opts["shot"],
                                 pattern=opts["pattern"], first=first, last=last, name=opts["name"],
                                 colourspace=opts["colourspace"] or show.working_space, matte_pattern=opts["matte"],
                                 allow_missing=opts["allow_missing"])
        except (PortalError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        dw, data = plate.display_window, plate.data_window
        self.stdout.write(
            f"plate {plate.pk}: {plate.path_pattern} frames {plate.first_frame}-{plate.last_frame}, "
            f"display {dw['width']}x{dw['height']}, data {data['width']}x{data['height']}+{data['x']}+{data['y']}, "
            f"{len(plate.channels)} channels, {plate.colourspace}"
            + (f", pixel aspect {plate.pixel_aspect:g}" if plate.pixel_aspect != 1 else ""))
        if plate.missing_frames:
            self.stderr.write(f"warning: missing frames recorded: {plate.missing_frames}")
