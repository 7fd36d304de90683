"""Write deploy/requirements.lock: every dependency of the project (pyproject.toml's, with the test extra and the
build backend), pinned to the version installed in this interpreter's environment, transitively.

    .venv/bin/python deploy/lock.py                  # pins from the installed environment
    .venv/bin/python deploy/lock.py --hashes DIR     # the same, with the sha256 of each wheel found in DIR

deploy/wheelhouse downloads the lock into a folder; deploy/bootstrap.sh installs from that folder with no index.
Run it again after changing pyproject.toml's dependencies (tests/portal/test_ops_lock.py says when it is stale).
"""

import argparse
import hashlib
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "deploy" / "requirements.lock"


def roots() -> list[tuple[Requirement, set[str]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]
    wanted += project["build-system"]["requires"]  # an editable install builds with it, offline too
    return [(Requirement(text), set()) for text in wanted]


def closure() -> dict[str, str]:
    """name → installed version of every distribution the roots need here (markers evaluated, extras followed)."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, frozenset]] = set()
    todo = roots()
    while todo:
        requirement, _ = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is required but not installed here: install it, then lock")
        if not requirement.specifier.contains(dist.version, prereleases=True):
            sys.exit(f"{requirement.name} {dist.version} is installed but {requirement} is required")
        pinned[name] = dist.version
        for text in dist.requires or []:
            child = Requirement(text)
            for extra in requirement.extras or {""}:
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    todo.append((child, set()))
                    break
    return dict(sorted(pinned.items()))


def wheel_hashes(folder: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        found.setdefault(f"{name}=={version}", []).append(digest)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=Path, help="a folder of the locked wheels (deploy/wheelhouse made it)")
    args = parser.parse_args()
    pins = closure()
    hashes = wheel_hashes(args.hashes) if args.hashes else {}
    lines = ["# Every dependency of parallel-track[test], pinned: written by deploy/lock.py from an installed",
             f"# environment (Python {sys.version_info.major}.{sys.version_info.minor}, this platform's wheels). "
             "Do not edit by hand.", ""]
    missing = []
    for name, version in pins.items():
        key = f"{name}=={version}"
        digests = hashes.get(f"{name}=={_normal(version)}", [])
        if args.hashes and not digests:
            missing.append(key)
        lines.append(key + "".join(f" \\\n    --hash=sha256:{d}" for d in digests))
    if missing:
        sys.exit(f"no wheel in {args.hashes} for: {', '.join(missing)}")
    LOCK.write_text("\n".join(lines) + "\n")
    print(f"{LOCK.relative_to(REPO)}: {len(pins)} pins" + (", with hashes" if hashes else ""))


def _normal(version: str) -> str:
    from packaging.version import Version

    return str(Version(version))


if __name__ == "__main__" and re.match(r"3\.11", sys.version):
    main()
elif __name__ == "__main__":
    sys.exit("lock with the project's Python 3.11 (.venv/bin/python)")
