#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the project into it. Sourced by deploy/up and deploy/test.
# With a wheelhouse (deploy/wheels/, or PT_WHEELHOUSE; made by deploy/wheelhouse) the install asks no index: every
# package comes from that folder, checked against deploy/requirements.lock's hashes (the air-gapped LAN).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.pt-installed
wheelhouse=${PT_WHEELHOUSE:-deploy/wheels}
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "${PT_REINSTALL:-0}" = 1 ]; then
  if compgen -G "$wheelhouse/*.whl" >/dev/null; then
    echo "bootstrap: installing from $wheelhouse with no index" >&2
    # No pip configuration either: a configured find-links or index must not stand in for the folder.
    offline() { env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
      .venv/bin/python -m pip install -q --disable-pip-version-check --no-index --find-links "$wheelhouse" "$@"; }
    offline --require-hashes --only-binary=:all: -r deploy/requirements.lock
    offline --no-deps --no-build-isolation -e ".[test]"
    .venv/bin/python -m pip check || { echo "bootstrap: deploy/requirements.lock is stale: run deploy/lock.py" >&2; exit 1; }
  else
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[test]"
  fi
  touch "$stamp"
fi
