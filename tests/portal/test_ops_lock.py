"""The offline install's lock (deploy/requirements.lock) covers pyproject.toml: every dependency, the test extra
and the build backend pinned to a version the project accepts, each with the sha256 of its wheel."""

import re
import tomllib
from pathlib import Path

from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(settings.BASE_DIR)


def locked() -> dict[str, tuple[str, list[str]]]:
    text = (REPO / "deploy" / "requirements.lock").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            pin, *hashes = line.split()
            name, version = pin.split("==")
            pins[canonicalize_name(name)] = (version, [h for h in hashes if h.startswith("--hash=sha256:")])
    return pins


def test_every_project_requirement_is_locked_with_a_version_it_accepts_and_a_hash():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = (project["project"]["dependencies"] + project["project"]["optional-dependencies"]["test"]
              + project["build-system"]["requires"])
    pins = locked()
    stale = []
    for text in wanted:
        requirement = Requirement(text)
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None or not requirement.specifier.contains(pin[0], prereleases=True):
            stale.append(f"{text} (locked: {pin[0] if pin else 'missing'})")
    assert not stale, "deploy/requirements.lock is stale, run deploy/lock.py: " + "; ".join(stale)
    assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for _, hashes in pins.values() for h in hashes)
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []
