"""`manage.py verify_release PATH`: every frame against the manifest, the provenance against the database."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.engine.sequence import frame_path
from review.models import Release
from review.publish import frame_attributes, read_provenance, verify
from review.tasks import provenance


class Command(BaseCommand):
    help = "Verify a released version folder (or a frame in it); exits non-zero on any mismatch."

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, **opts):
        folder = Path(opts["path"])
        folder = folder if folder.is_dir() else folder.parent
        if not folder.is_dir():
            raise CommandError(f"{opts['path']}: no such release folder")
        problems = verify(folder, threads=settings.PT_PUBLISH_THREADS)
        try:
            recorded = read_provenance(folder)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{folder}: no readable provenance sidecar ({exc})") from exc
        release = Release.objects.select_related(
            "signoff__variation__request__shot__sequence__show", "signoff__variation__request__model",
            "signoff__pick__picked_by", "signoff__signed_by").filter(pk=recorded.get("release_id")).first()
        if release is None:
            problems.append(f"release {recorded.get('release_id')} is not in the database")
        else:
            expected = provenance(release)
            problems += [f"provenance.json: {key} is {recorded.get(key)!r}, the database says {value!r}"
                         for key, value in expected.items() if (recorded.get(key) or "") != value]
            first, last = recorded["frames"]
            for frame in range(first, last + 1):
                path = frame_path(release.path_pattern, frame)
                if Path(path).exists():
                    header = frame_attributes(path)
                    problems += [f"{Path(path).name}: header {key} is {header.get(key)!r}, the database says "
                                 f"{value!r}" for key, value in expected.items() if (header.get(key) or "") != value]
        if problems:
            raise CommandError(f"{folder}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
        self.stdout.write(f"{folder}: OK ({len(list(folder.glob('*.exr')))} frames match the manifest and the "
                          "database)")
