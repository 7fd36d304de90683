"""portal-client: the review loop from a shell or a pipeline script.

    export PT_SERVER=http://portal:8000 PT_TOKEN=<your API token>
    portal-client submit sq010_sh0040 --frames 1001-1024 --count 4 --prompt "stormy dusk"
    portal-client watch 42                 # a progress bar; exit 0 in review, 1 if failed or cancelled
    portal-client pick 42 v02              # (a director)
    portal-client signoff 42               # or: signoff 42 --send-back "too warm"
    portal-client releases --request 42 --json

Exit status: 0 done, 1 the API said no (its message on stderr) or the request failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from portal.client.api import UNSUCCESSFUL, ApiError, Client


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        client = Client.from_env(args.server, args.token)
        return args.run(client, args)
    except ApiError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": exc.as_dict()}), file=sys.stderr)
        else:
            print(f"portal-client: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _submit(client: Client, args) -> int:
    shot = client.find_shot(args.shot, show=args.show)
    first, last = _frames(args.frames, shot)
    created = client.submit(shot=shot["id"], first_frame=first, last_frame=last, count=args.count,
                            model=args.model, matte_pattern=args.matte or "", rect=_rect(args.rect),
                            prompt=args.prompt, steps=args.steps, seed=args.seed, show=shot["show"],
                            task=args.task, strength=args.strength)
    if args.json:
        _print_json(created)
    else:
        print(f"request {created['id']}: {created['count']} variations of {created['shot_code']} "
              f"{created['first_frame']}-{created['last_frame']} ({created['status']})")
    if args.watch:
        return _follow(client, created["id"], args)
    return 0


def _watch(client: Client, args) -> int:
    return _follow(client, args.request, args)


def _follow(client: Client, request_id: int, args) -> int:
    bar = None if args.json else _Bar(sys.stderr)
    final = client.follow(request_id, until=args.until, timeout=args.timeout, poll=args.poll or None,
                          on_event=_print_json if args.json else None,
                          on_progress=bar.show if bar else None)
    if bar:
        bar.finish()
    if args.json:
        _print_json({"type": "final", "request": final})
    else:
        _print_request(final)
    return 1 if final["status"] in UNSUCCESSFUL else 0


def _status(client: Client, args) -> int:
    request = client.request(args.request)
    _print_json(request) if args.json else _print_request(request)
    return 0


def _pick(client: Client, args) -> int:
    if args.variation is None:
        variation_id = args.target  # one number: a variation id
    else:
        variation_id = _variation_id(client.request(args.target), args.variation)
    pick = client.pick(variation_id, note=args.note)
    _print_json(pick) if args.json else print(f"picked variation {pick['variation']} on request {pick['request']}")
    return 0


def _signoff(client: Client, args) -> int:
    if args.send_back is not None:
        signoff = client.send_back(args.request, note=args.send_back)
    else:
        signoff = client.signoff(args.request, note=args.note)
    if args.json:
        _print_json(signoff)
    elif signoff["decision"] == "approved":
        print(f"signed off request {args.request}: its release is queued (portal-client watch {args.request} "
              "--until released)")
    else:
        print(f"sent request {args.request} back to review")
    return 0


def _releases(client: Client, args) -> int:
    shot = client.find_shot(args.shot, show=args.show)["id"] if args.shot else None
    rows = client.releases(request=args.request, shot=shot)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['shot_code']} {r['task']} v{r['version']:03d} {r['status']:8} request {r['request']} "
              f"{r['path_pattern'] or r['error'] or '-'}")
    if not rows:
        print("no releases")
    return 0


# -- helpers --------------------------------------------------------------------------------------------


def _frames(text: str | None, shot: dict) -> tuple[int, int]:
    if not text:
        return shot["first_frame"], shot["last_frame"]
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise ApiError(0, "usage", f"--frames takes FIRST-LAST, e.g. 1001-1024, not {text!r}") from None


def _rect(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        values = [int(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ApiError(0, "usage", f"--rect takes X,Y,WIDTH,HEIGHT in pixels, not {text!r}")
    return values


def _variation_id(request: dict, label: str) -> int:
    """``v02`` or ``2`` (the label's number) → the variation's id."""
    wanted = label.lower().lstrip("v")
    for v in request["variations"]:
        if wanted.isdigit() and int(wanted) == v["index"] + 1:
            return v["id"]
    labels = ", ".join(v["label"] for v in request["variations"])
    raise ApiError(0, "usage", f"request {request['id']} has no variation {label!r}; it has {labels}")


def _print_json(value) -> None:
    print(json.dumps(value), flush=True)


def _print_request(r: dict) -> None:
    print(f"request {r['id']} {r['shot_code']} {r['first_frame']}-{r['last_frame']}: {r['status']}")
    for v in r["variations"]:
        print(f"  {v['label']} (id {v['id']}) {v['status']:9} {round(100 * (v['progress'] or 0)):3d}%  "
              f"{v['exr_pattern'] or v['error'] or ''}")


class _Bar:
    """A one-line progress bar on a terminal; a line per 10 % otherwise (logs stay readable)."""

    def __init__(self, stream, width: int = 30):
        self.stream, self.width, self.last = stream, width, None
        self.tty = stream.isatty()

    def show(self, fraction: float, request: dict) -> None:
        percent = int(100 * fraction)
        key = (percent if self.tty else percent // 10, request["status"])
        if key == self.last:
            return
        self.last = key
        filled = int(self.width * fraction)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {percent:3d}%  request {request['id']} {request['status']}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.last is not None:
            self.stream.write("\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="the portal's URL (default $PT_SERVER)")
    common.add_argument("--token", help="your API token (default $PT_TOKEN)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    following = argparse.ArgumentParser(add_help=False)
    following.add_argument("--until", choices=["review", "released"], default="review",
                           help="review: stop once every variation settled (default); released: once released")
    following.add_argument("--timeout", type=float, help="give up after this many seconds")
    following.add_argument("--poll", action="store_true", help="poll the API instead of the websocket")

    parser = argparse.ArgumentParser(prog="portal-client", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("submit", parents=[common, following], help="ask for variations of a shot region")
    p.add_argument("shot", help="shot id, code or <sequence>_<code>")
    p.add_argument("--show", help="the show's code, when a shot code is on several shows")
    p.add_argument("--frames", help="FIRST-LAST (default: the shot's range)")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--steps", type=int, default=25)
    region = p.add_mutually_exclusive_group()
    region.add_argument("--matte", help="matte sequence on shared storage (default: the plate's matte)")
    region.add_argument("--rect", help="X,Y,WIDTH,HEIGHT in display-window pixels")
    p.add_argument("--prompt", default="")
    # The server knows the tasks (the engine's table) and refuses an unknown one with a clear message.
    p.add_argument("--task", default="sky_replacement", help="sky_replacement, atmosphere, time_of_day, ...")
    p.add_argument("--strength", type=float, help="atmosphere / time of day: 0.1-0.9 (default: the task's)")
    p.add_argument("--model", type=int, help="generation model id (default: the first approved on the show)")
    p.add_argument("--seed", type=int)
    p.add_argument("--watch", action="store_true", help="follow the request once submitted")
    p.set_defaults(run=_submit)

    p = commands.add_parser("watch", parents=[common, following], help="follow a request until it settles")
    p.add_argument("request", type=int)
    p.set_defaults(run=_watch)

    p = commands.add_parser("status", parents=[common], help="a request and its variations")
    p.add_argument("request", type=int)
    p.set_defaults(run=_status)

    p = commands.add_parser("pick", parents=[common], help="pick a variation (directors, supervisors)")
    p.add_argument("target", type=int, help="a request id (with a variation label) or a variation id")
    p.add_argument("variation", nargs="?", help="the variation's label on the request: v02 or 2")
    p.add_argument("--note", default="")
    p.set_defaults(run=_pick)

    p = commands.add_parser("signoff", parents=[common], help="sign off the pick, releasing it (compositors)")
    p.add_argument("request", type=int)
    p.add_argument("--note", default="")
    p.add_argument("--send-back", metavar="NOTE", help="send the pick back to review with this note instead")
    p.set_defaults(run=_signoff)

    p = commands.add_parser("releases", parents=[common], help="released elements and their paths")
    p.add_argument("--request", type=int)
    p.add_argument("--shot", help="shot id, code or <sequence>_<code>")
    p.add_argument("--show")
    p.set_defaults(run=_releases)
    return parser


if __name__ == "__main__":
    sys.exit(main())
