"""Plates ingested before the pixel aspect was recorded get their first frame's (an anamorphic plate's proxies are
desqueezed by it); a plate whose frames are not readable here keeps 1.0 and is left as it was."""

from django.db import migrations

from generation.engine import frames
from generation.engine.sequence import frame_path


def backfill_pixel_aspect(apps, schema_editor):
    Plate = apps.get_model("portal", "Plate")
    for plate in Plate.objects.filter(pixel_aspect=1.0).iterator():
        try:
            header = frames.read_header(frame_path(plate.path_pattern, plate.first_frame), verify_pixels=False)
        except (frames.FrameError, ValueError, OSError):
            continue
        if header.pixel_aspect != 1.0:
            Plate.objects.filter(pk=plate.pk).update(pixel_aspect=header.pixel_aspect)


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_pinned_colour")]

    operations = [migrations.RunPython(backfill_pixel_aspect, migrations.RunPython.noop)]
