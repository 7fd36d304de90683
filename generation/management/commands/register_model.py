"""Register a local model directory as pending approval: `manage.py register_model /models/show-inpaint-v3`.

The directory is a show model (``train_show_model`` writes those and registers them itself) or a
Stable-Diffusion-style inpainting / img2img pipeline directory (``save_pretrained`` layout) with our
``parallel_track.json`` card beside ``model_index.json``. ``--load`` also loads it offline on the CPU,
proving nothing would be fetched. ``--build-tiny-sd`` first writes a tiny, randomly initialised SD
inpainting pipeline there (development and tests: it makes noise).
"""

import json
from pathlib import Path

import torch
from django.core.management.base import BaseCommand, CommandError

from generation import services
from generation.engine.registry import ModelError, load_show_model, read_model_card
from portal.errors import PortalError


class Command(BaseCommand):
    help = "Register a local model directory (show model, SD inpainting or img2img) as pending approval."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the model directory (with parallel_track.json)")
        parser.add_argument("--load", action="store_true", help="load it offline on the CPU before registering")
        parser.add_argument("--build-tiny-sd", action="store_true",
                            help="first write a tiny SD inpainting pipeline to PATH (development only)")
        parser.add_argument("--name", default="tiny-sd-inpainting", help="with --build-tiny-sd: the model's name")

    def handle(self, *args, **opts):
        path = Path(opts["path"])
        try:
            if opts["build_tiny_sd"]:
                from generation.engine.sd_pipeline import build_tiny_sd_pipeline

                if path.exists() and any(path.iterdir()):
                    raise CommandError(f"{path} is not empty; --build-tiny-sd writes a new directory")
                build_tiny_sd_pipeline(path, name=opts["name"], created_by="register_model --build-tiny-sd")
            card = read_model_card(path)
            if card.kind in ("inpainting", "img2img"):
                from generation.engine.sd_pipeline import check_local, load_sd_pipeline

                check_local(Path(card.path))
                if opts["load"]:
                    load_sd_pipeline(card.path, torch.device("cpu"), torch.float32)
            elif opts["load"] and card.kind == "show_model":
                load_show_model(card.path, torch.device("cpu"), torch.float32)
        except (ModelError, json.JSONDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        try:
            model = services.model_register(name=card.name, kind=card.kind, path=card.path,
                                            manifest_hash=card.manifest_hash)
        except PortalError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"registered {card.kind} model {model.name} from {card.path}, pending approval "
                          f"(manifest sha256 {card.manifest_hash}, {len(card.manifest['files'])} files)")
