"""Train the show upscaler on the show's own plates and register it, pending a supervisor's approval.

    python manage.py train_upscaler --plates /shows/demo/plates --out var/models/demo-upscaler \\
        --name demo-upscaler --show demo --steps 2000 --threads 1

``--plates`` is a folder (every frame in it and below; each folder is one plate), a ``####`` pattern or a glob,
and may be given more than once. Interrupt it (Ctrl-C) and run the same command again: it resumes from the newest
checkpoint.
"""

import signal
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from generation import services
from generation.engine.training import TrainingError, TrainingStopped
from generation.engine.upscale import UpscaleError
from generation.engine.upscale_training import UpscalerConfig, train_upscaler
from generation.models import ModelKind
from portal.models import Show

TUNABLE = ("steps", "batch_size", "patch", "features", "layers", "lr", "seed", "checkpoint_every", "loss",
           "detail_share", "x2_share", "ema_decay", "clip_grad")


class Command(BaseCommand):
    help = "Train a show upscaler (×2, ×4) on a show's plates and register it as pending approval."

    def add_arguments(self, parser):
        defaults = UpscalerConfig(plates=[], out_dir="")
        parser.add_argument("--plates", required=True, action="append",
                            help="folder, #### pattern or glob of plate frames (repeatable)")
        parser.add_argument("--out", required=True, help="model directory to write (checkpoints inside)")
        parser.add_argument("--name", required=True, help="the upscaler's name in the portal")
        parser.add_argument("--show", required=True, help="code of the show the plates belong to")
        for option in TUNABLE:
            default = getattr(defaults, option)
            parser.add_argument(f"--{option.replace('_', '-')}", type=type(default), default=default)
        parser.add_argument("--device", default=defaults.device, help="'' for CUDA when present, 'cpu', 'cuda:N'")
        parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
        parser.add_argument("--licence", default="",
                            help="licence or approval reference of the plates (default: plate of show CODE)")
        parser.add_argument("--no-resume", dest="resume", action="store_false",
                            help="discard the checkpoints in --out and start over")

    def handle(self, *args, **opts):
        show = Show.objects.filter(code=opts["show"]).first()
        if not show:
            raise CommandError(f"no show {opts['show']!r}")
        tuned = {option: opts[option] for option in (*TUNABLE, "name", "device", "threads", "resume")}
        licence = opts["licence"] or f"plate of show {show.code}"
        config = UpscalerConfig(plates=opts["plates"], out_dir=opts["out"], licence=licence,
                                extra={"show": show.code}, **tuned)
        card = self._train(config)
        model = services.model_register(name=card.name, kind=ModelKind.UPSCALER, path=card.path,
                                         manifest_hash=card.manifest_hash)
        self.stdout.write(f"upscaler {model.name} registered, pending approval: {card.path}")
        self.stdout.write(f"  trained on {len(card.manifest['files'])} plate frame(s), "
                          f"manifest sha256 {card.manifest_hash}")
        self.stdout.write("a supervisor of the show approves it before anyone can use it:")
        self.stdout.write(f"  python manage.py approve_model --model {model.name} --show {show.code} "
                          "--by <supervisor username>")

    def _train(self, config: UpscalerConfig):
        with _stop_on_ctrl_c() as stop_asked, tqdm(total=config.steps, unit="step", desc=config.name,
                                                   dynamic_ncols=True) as bar:

            def progress(step: int, total: int, loss: float) -> None:
                bar.update(step - bar.n)  # a resumed run starts at its checkpoint's step
                bar.set_postfix(loss=f"{loss:.4f}")

            def loading(done: int, total: int) -> None:
                bar.set_description(config.name if done == total else f"{config.name}: reading plates {done}/{total}")

            try:
                card = train_upscaler(config, on_progress=progress, on_frame=loading, should_stop=stop_asked)
            except TrainingStopped as stopped:
                raise CommandError(f"stopped at step {stopped.step}; run the same command again to resume") from None
            except (TrainingError, UpscaleError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            bar.update(config.steps - bar.n)
            return card


@contextmanager
def _stop_on_ctrl_c():
    """Yields ``stop_asked()``: Ctrl-C during the block asks training to checkpoint and stop, not to die."""
    asked: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: asked.append(signum))
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)
