"""Recovery on start, embedded default: a portal SIGKILLed while a request runs finishes that request after it
is restarted. Real processes: ``manage.py serve`` on its own SQLite database and storage, killed with SIGKILL
(no shutdown code runs), then served again; the database says what was queued or running, the worker thread
requeues it (``variation.requeued``) and runs it, each variation's output moved into place exactly once."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.production.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def _env(var: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PT_SQLITE", "DATABASE_URL", "REDIS_URL", "PT_PRODUCTION"))}
    env.update(PT_VAR_DIR=str(var), PT_SQLITE_PATH=str(var / "portal.sqlite3"), DJANGO_SETTINGS_MODULE="portal.settings",
               PT_EMBEDDED_WORKER="True", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               PT_FAULT_FRAME_DELAY_S="0.4")  # a slow work area: the kill lands part-way through the frames
    return env


def _manage(env: dict, *args: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=REPO, env=env, stdout=out,
                            stderr=subprocess.STDOUT)


def _rows(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, args).fetchall()


def _wait(condition, what: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the portal exited ({proc.returncode}) while waiting for {what}:\n"
                                 + (log.read_text(errors="replace")[-3000:] if log else ""))
        try:
            if condition():
                return
        except (sqlite3.OperationalError, urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout:.0f} s" + (
        ":\n" + log.read_text(errors="replace")[-3000:] if log else ""))


def _post(url: str, token: str, data: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST", headers={
        "Authorization": f"Token {token}", "Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/login/", timeout=2) as response:
        return response.status == 200


def test_an_embedded_portal_killed_mid_request_finishes_it_after_restart(tmp_path):
    var = tmp_path / "var"
    env, db, log = _env(var), var / "portal.sqlite3", tmp_path / "portal.log"
    seed = _manage(env, "migrate", "--noinput", log=log)
    assert seed.wait(timeout=300) == 0, log.read_text(errors="replace")[-3000:]
    seed = _manage(env, "seed_demo", "--frames", "4", "--width", "320", "--height", "180", log=log)
    assert seed.wait(timeout=300) == 0, log.read_text(errors="replace")[-3000:]
    (shot,), = _rows(db, "SELECT id FROM portal_shot")
    (model,), = _rows(db, "SELECT id FROM generation_generationmodel")
    issued = subprocess.run([sys.executable, "manage.py", "issue_token", "--user", "cora", "--name", "recovery test"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True)
    token = issued.stdout.strip().splitlines()[-1]  # the key, printed once (only its hash is stored)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    portal = _manage(env, "serve", "--port", str(port), log=log)
    try:
        _wait(lambda: _answers(url), "answer", 120, portal, log)
        request_id = _post(f"{url}/api/requests/", token, {
            "shot": shot, "model": model, "first_frame": 1001, "last_frame": 1004, "count": 2, "steps": 12,
            "seed": 5})["id"]

        def mid_variation() -> bool:
            return bool(_rows(db, "SELECT 1 FROM generation_variation WHERE request_id = ? AND status = 'running' "
                                  "AND frames_done >= 1", request_id))

        _wait(mid_variation, "variation part-way through its frames", 300, portal, log)
        os.kill(portal.pid, signal.SIGKILL)
        assert portal.wait(timeout=10) == -signal.SIGKILL
        before = dict(_rows(db, "SELECT id, status FROM generation_variation WHERE request_id = ?", request_id))
        assert "running" in before.values() and "done" not in before.values(), before

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        portal = _manage(env, "serve", "--port", str(port), log=log)
        _wait(lambda: _rows(db, "SELECT status FROM generation_generationrequest WHERE id = ?",
                            request_id)[0][0] not in ("queued", "running"),
              "settled request after the restart", 400, portal, log)
    finally:
        if portal.poll() is None:
            portal.terminate()
            portal.wait(timeout=20)

    (status,), = _rows(db, "SELECT status FROM generation_generationrequest WHERE id = ?", request_id)
    assert status == "review"
    variations = _rows(db, "SELECT status, attempts, output_attempts, lease_owner, work_dir, exr_pattern "
                           "FROM generation_variation WHERE request_id = ? ORDER BY \"index\"", request_id)
    for done, _attempts, output_attempts, owner, work_dir, exr_pattern in variations:
        assert done == "done" and output_attempts == 1 and owner == "", variations
        assert exr_pattern.startswith(work_dir + "/")
        assert sorted(p.name for p in (Path(work_dir) / "exr").glob("*.exr")) == [
            f"element.{f}.exr" for f in range(1001, 1005)]
        assert not list(Path(work_dir).parent.glob(".*attempt-*")), "a dead attempt's folder was left"
    assert sum(row[1] for row in variations) >= 3  # the killed one ran twice; it moved output once
    types = [t for (t,) in _rows(db, "SELECT type FROM generation_requestevent WHERE request_id = ? ORDER BY seq",
                                 request_id)]
    seqs = [s for (s,) in _rows(db, "SELECT seq FROM generation_requestevent WHERE request_id = ? ORDER BY seq",
                                request_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "variation.requeued" in types and types.count("variation.done") == 2
    assert types.count("request.settled") == 1 and types[-1] == "request.settled"
