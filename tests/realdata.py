"""Where the real footage lives (../shared/testdata: DAVIS, Sintel, Beachball, sky HDRIs; licences in its README).

None of it is copied into the repository (DAVIS is CC BY-NC: internal testing and benchmarks only). Tests and
benches find it through :func:`testdata`, which looks at ``$PT_TESTDATA`` first, then beside the checkout.
A test that needs it skips when it is absent, unless ``PT_REQUIRE_REALDATA=1`` (CI sets it): then it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = (REPO.parent / "shared" / "testdata", Path("/work/shared/testdata"))


def find_testdata() -> Path | None:
    """The real-footage folder, or None when this machine has none."""
    named = os.environ.get("PT_TESTDATA")
    for candidate in ([Path(named)] if named else []) + list(_CANDIDATES):
        if (candidate / "README.md").is_file():
            return candidate.resolve()
    return None


def testdata(*parts: str) -> Path:
    """A path inside the real-footage folder; skips (or fails, with PT_REQUIRE_REALDATA=1) when it is missing."""
    import pytest

    root = find_testdata()
    path = root.joinpath(*parts) if root else None
    if path is None or not path.exists():
        message = f"real footage {'/'.join(parts) or '.'} not found (set PT_TESTDATA to ../shared/testdata)"
        if os.environ.get("PT_REQUIRE_REALDATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


DAVIS_SEQUENCES = ("blackswan", "car-shadow", "dog", "horsejump-high", "camel", "kite-surf")
