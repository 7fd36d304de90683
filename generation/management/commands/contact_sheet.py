"""Tile variations' in-context proxies into one labelled PNG.

    python manage.py contact_sheet --request 12 --frame 1001 --out sheet.png
    python manage.py contact_sheet --variations-dir var/work/somewhere --frame 1001 --out sheet.png
    python manage.py contact_sheet --demo --model deploy/demo-model/demo-sky --count 12 \\
        --out docs/demo-contact-before.png   # --upscaler DIR: after the finishing stage

``--demo`` needs no database: it renders the demo plate, generates ``--count`` variations of it with
seeds 1..count through the engine, and tiles them.
"""

import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.engine.contact_sheet import make_contact_sheet, variation_tiles
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, VariationStatus


class Command(BaseCommand):
    help = "Tile the in-context proxies of a request's variations (or of variation folders) into a PNG."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--request", type=int, help="a generation request's id")
        source.add_argument("--variations-dir", help="a folder of variation folders (engine output)")
        source.add_argument("--demo", action="store_true", help="generate variations of the demo plate first")
        parser.add_argument("--frame", type=int, help="which frame (default: the first)")
        parser.add_argument("--out", required=True, help="the PNG to write")
        parser.add_argument("--columns", type=int, default=4)
        parser.add_argument("--tile-width", type=int, default=480)
        parser.add_argument("--model", default="deploy/demo-model/demo-sky", help="--demo: the model directory")
        parser.add_argument("--count", type=int, default=12, help="--demo: how many variations")
        parser.add_argument("--steps", type=int, default=25, help="--demo: denoising steps")
        parser.add_argument("--frames", type=int, default=2, help="--demo: plate frames per variation")
        parser.add_argument("--size", default="1920x1080", help="--demo: plate WIDTHxHEIGHT")
        parser.add_argument("--upscaler", default="",
                            help="--demo: an upscaler directory: the finishing stage on (card upscaled, carried, "
                                 "regrained with the demo plate's measured grain)")
        parser.add_argument("--work", default="", help="--demo: keep the plate and variations here")

    def handle(self, *args, **opts):
        if opts["request"] is not None:
            tiles, title = self._request_tiles(opts["request"], opts["frame"])
        elif opts["variations_dir"]:
            tiles = variation_tiles(opts["variations_dir"], opts["frame"] if opts["frame"] is not None else 1001)
            title = f"{opts['variations_dir']} frame {opts['frame'] or 1001}"
        else:
            return self._demo(opts)
        if not tiles:
            raise CommandError("no variation has a proxy for that frame")
        path = make_contact_sheet(tiles, opts["out"], columns=opts["columns"], tile_width=opts["tile_width"],
                                  title=title)
        self.stdout.write(f"{len(tiles)} variation(s) -> {path}")

    def _request_tiles(self, request_id: int, frame: int | None) -> tuple[list[tuple[str, str]], str]:
        request = GenerationRequest.objects.select_related("shot", "model").filter(pk=request_id).first()
        if request is None:
            raise CommandError(f"no request {request_id}")
        frame = request.first_frame if frame is None else frame
        if not request.first_frame <= frame <= request.last_frame:
            raise CommandError(f"frame {frame} is outside the request's {request.first_frame}-{request.last_frame}")
        tiles = []
        for variation in request.variations.filter(status=VariationStatus.DONE).exclude(proxy_pattern=""):
            path = frame_path(variation.proxy_pattern, frame)
            if Path(path).is_file():
                tiles.append((f"{variation.label}  seed {variation.seed}", path))
        return tiles, f"request {request.pk} · {request.shot.code} · {request.model.name} · frame {frame}"

    def _demo(self, opts) -> None:
        from generation.engine.demo_plate import render_demo_plate
        from generation.engine.registry import read_model_card
        from generation.engine.variation import VariationSpec, generate_variation

        try:
            width, height = (int(v) for v in opts["size"].lower().split("x"))
            card = read_model_card(opts["model"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        with tempfile.TemporaryDirectory(prefix="pt-contact-") as scratch:
            work = Path(opts["work"] or scratch)
            first, last = 1001, 1000 + max(1, opts["frames"])
            plate = render_demo_plate(work / "plate", first=first, last=last, width=width, height=height)
            finishing = self._finishing(opts["upscaler"], plate["plate"], first, last)
            tiles, seconds = [], []
            for seed in range(1, opts["count"] + 1):
                out = work / "variations" / f"v{seed:02d}"
                started = time.perf_counter()
                result = generate_variation(VariationSpec(
                    plate_pattern=plate["plate"], matte_pattern=plate["matte"], rect=None, first=first, last=last,
                    model_path=card.path, seed=seed, steps=opts["steps"], out_dir=str(out), device="cpu", **finishing))
                seconds.append(time.perf_counter() - started)
                tiles.append((f"v{seed:02d}  seed {seed}", frame_path(result.proxy_pattern, first)))
                self.stdout.write(f"v{seed:02d}: {seconds[-1]:.1f} s (denoise {result.timings['denoise']:.2f} s)")
            title = (f"{card.name} · demo plate {width}x{height} · {opts['count']} variations, "
                     f"{opts['steps']} DDIM steps · frame {first}")
            if finishing:
                title += f" · finished: {Path(opts['upscaler']).name} x4 + plate grain"
            path = make_contact_sheet(tiles, opts["out"], columns=opts["columns"], tile_width=opts["tile_width"],
                                      title=title)
        self.stdout.write(f"{len(tiles)} variation(s) -> {path}; {sum(seconds) / len(seconds):.1f} s each")

    def _finishing(self, upscaler: str, plate_pattern: str, first: int, last: int) -> dict:
        """The finishing stage's VariationSpec fields for --upscaler (none without it)."""
        if not upscaler:
            return {}
        from generation.engine.grain import measure_plate
        from generation.engine.upscale import UpscaleError, read_upscaler_card

        try:
            read_upscaler_card(upscaler)
        except UpscaleError as exc:
            raise CommandError(str(exc)) from exc
        return {"upscaler_path": upscaler, "grain_profile": measure_plate(plate_pattern, first, last).to_dict()}
