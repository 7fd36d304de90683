"""Faults survived, measured: `python -m tests.bench.faults` (production mode: DATABASE_URL and REDIS_URL set).

Runs the production tier's fault suite (tests/production/test_faults.py and test_release_killed_worker.py: real
Celery worker processes, PostgreSQL, Redis, ASGI servers; a worker SIGKILLed during generation and during a release,
this run's Redis database flushed, its broker connections cut, the work area's disk full then freed, the portal
(an ASGI server) SIGKILLed and started again with viewers connected; PostgreSQL restarted only with
PT_FAULTS_RESTART_POSTGRES=1, as it hits every user of the server) and the fair-share load (8 concurrent requesters
× 3 requests on 2 worker processes), then prints one JSON object last:

    {"faults": [{"name", "completed", "expected", "duplicates", "partial_visible", "recover_s",
                 "viewers", "viewers_complete", "viewer_reconnects"}, …],
     "fair_share_max_over_mean_wait": …, "missing_faults": […], "load": "…", "suite_s": …, "pytest_exit": …}

``recover_s``: from the fault to the stranded work running again (the broker cut: to every request settled; the
portal restart: to every viewer reconnected and caught up with the log; a killed release: to its second attempt
taking the lease). ``viewers``: websocket viewers of each request during the fault; ``viewers_complete``: those whose
stream is the request's event log exactly (every event, in seq order, none twice). ``missing_faults``: the issue's
faults with no row (a test skipped or failed before it recorded one).
``fair_share_max_over_mean_wait``: the largest of the eight people's mean waits (request to its variation's start)
over the mean of them; goal ≤ 2.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = ("tests/production/test_faults.py", "tests/production/test_release_killed_worker.py")
FAULTS = ("postgres_restarted", "redis_restarted", "redis_flushed", "worker_sigkill_generation", "worker_sigkill_release",
          "broker_connection_cut", "work_disk_full", "portal_restarted_with_viewers")  # the issue's, in its order


def main() -> None:
    if not (os.getenv("DATABASE_URL") and os.getenv("REDIS_URL")):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the fault suite runs in production mode")
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl", delete=False) as results:
        path = results.name
    env = dict(os.environ, PT_PRODUCTION_TESTS="1", PT_FAULTS_RESULTS=path)
    started = time.monotonic()
    exit_code = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "production",
                                *SUITE, *sys.argv[1:]], cwd=REPO, env=env).returncode
    suite_s = time.monotonic() - started
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    os.unlink(path)
    fair = next((row for row in rows if row["name"] == "fair_share"), None)
    faults = [{key: row.get(key) for key in ("name", "completed", "expected", "duplicates", "partial_visible",
                                             "recover_s", "viewers", "viewers_complete", "viewer_reconnects")}
              for row in rows if row["name"] != "fair_share"]
    print(json.dumps({
        "faults": faults,
        "fair_share_max_over_mean_wait": fair["max_over_mean_wait"] if fair else None,
        "fair_share": fair,
        "missing_faults": [name for name in FAULTS if name not in {row["name"] for row in faults}],
        "load": " ".join(os.getloadavg().__repr__().strip("()").split(", ")),
        "suite_s": round(suite_s, 1),
        "pytest_exit": exit_code,
    }, indent=2))


if __name__ == "__main__":
    main()
