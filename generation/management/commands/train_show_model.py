"""Train a show model on approved look-dev images and register it, pending a supervisor's approval.

    python manage.py train_show_model --lookdev var/lookdev/demo --out var/models/demo-sky \\
        --name demo-sky --show demo --steps 3000

Interrupt it (Ctrl-C) and run the same command again: it resumes from the newest checkpoint.
"""

import signal

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from generation import services
from generation.engine.training import TrainingConfig, TrainingError, TrainingStopped, train_show_model
from generation.models import ModelKind
from portal.models import Show


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--sample-size is HEIGHTxWIDTH, e.g. 48x96, not {text!r}") from None
    return h, w


class Command(BaseCommand):
    help = "Train a show model on a folder of approved look-dev EXRs and register it as pending approval."

    def add_arguments(self, parser):
        defaults = TrainingConfig(lookdev_dir="", out_dir="")
        parser.add_argument("--lookdev", required=True, help="folder of look-dev EXRs with approvals.json")
        parser.add_argument("--out", required=True, help="model directory to write (checkpoints inside)")
        parser.add_argument("--name", required=True, help="the model's name in the portal")
        parser.add_argument("--show", required=True, help="code of the show the look-dev belongs to")
        parser.add_argument("--steps", type=int, default=defaults.steps)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--sample-size", default="{}x{}".format(*defaults.sample_size))
        parser.add_argument("--lr", type=float, default=defaults.lr)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
        parser.add_argument("--device", default=defaults.device)
        parser.add_argument("--threads", type=int, default=0,
                            help="torch CPU threads (0: torch's default; 1 is faster on a busy machine)")
        parser.add_argument("--fp16", action="store_true", help="store the final weights as float16")
        parser.add_argument("--resume", action="store_true", default=True,
                            help="resume from the newest checkpoint in --out (the default)")
        parser.add_argument("--init-from", default="",
                            help="a show model directory to start from (fine-tune) instead of random weights")
        parser.add_argument("--no-resume", dest="resume", action="store_false",
                            help="discard the checkpoints in --out and start over")

    def handle(self, *args, **opts):
        show = Show.objects.filter(code=opts["show"]).first()
        if show is None:
            raise CommandError(f"no show {opts['show']!r}")
        config = TrainingConfig(
            lookdev_dir=opts["lookdev"], out_dir=opts["out"], name=opts["name"], steps=opts["steps"],
            batch_size=opts["batch_size"], sample_size=_size(opts["sample_size"]), lr=opts["lr"],
            seed=opts["seed"], checkpoint_every=opts["checkpoint_every"], device=opts["device"],
            threads=opts["threads"], save_fp16=opts["fp16"], resume=opts["resume"], init_from=opts["init_from"],
            extra={"show": show.code})
        card = self._train(config)
        model = services.model_register(name=card.name, kind=ModelKind.SHOW_MODEL, path=card.path,
                                         manifest_hash=card.manifest_hash)
        files = len(card.manifest["files"])
        self.stdout.write(f"model {model.name} registered, pending approval: {card.path}")
        self.stdout.write(f"  trained on {files} look-dev file(s), manifest sha256 {card.manifest_hash}")
        self.stdout.write("a supervisor of the show approves it before anyone can use it:")
        self.stdout.write(f"  python manage.py approve_model --model {model.name} --show {show.code} "
                          "--by <supervisor username>")

    def _train(self, config: TrainingConfig):
        stop = {"asked": False}

        def ask_to_stop(signum, frame):
            stop["asked"] = True

        previous = signal.signal(signal.SIGINT, ask_to_stop)
        bar = tqdm(total=config.steps, unit="step", desc=config.name, dynamic_ncols=True)

        def progress(step: int, total: int, loss: float) -> None:
            if bar.n == 0 and step > 1:  # resumed from a checkpoint
                bar.update(step - 1)
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}")

        try:
            card = train_show_model(config, on_progress=progress, should_stop=lambda: stop["asked"])
            bar.update(config.steps - bar.n)  # a run resumed at its last step reports no progress
            return card
        except TrainingStopped as stopped:
            raise CommandError(f"stopped at step {stopped.step}; run the same command again to resume") from None
        except (TrainingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
            signal.signal(signal.SIGINT, previous)
