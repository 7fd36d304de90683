"""A model card's own facts, read without torch (the web process reads them): its manifest hash and the shows it
names. ``registry`` reads and validates the rest."""

import hashlib
import json
import os
from pathlib import Path

CARD_NAME = "parallel_track.json"


def manifest_hash(manifest: dict) -> str:
    """sha256 (hex) of the manifest as canonical JSON (sorted keys, no whitespace, UTF-8)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def card_shows(path: str | os.PathLike) -> tuple[str, ...]:
    """The show codes a model's card names (``"shows": [...]``, or the show its training recorded, which
    ``train_show_model`` and ``train_upscaler`` write as ``training.show``); () when unreadable or none.

    A model may be approved only for these: a model trained on one show's look-dev is that show's."""
    try:
        raw = json.loads((Path(path) / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    if not isinstance(raw, dict):
        return ()
    shows = raw.get("shows")
    if not isinstance(shows, list):
        training = raw.get("training") if isinstance(raw.get("training"), dict) else {}
        shows = [training.get("show")]
    return tuple(code for code in shows if isinstance(code, str) and code)


def card_manifest_hash(path: str | os.PathLike) -> str | None:
    """sha256 of the training manifest in the card on disk now (None when unreadable): what would run."""
    try:
        raw = json.loads((Path(path) / CARD_NAME).read_text(encoding="utf-8"))
        return manifest_hash(raw["training_manifest"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
