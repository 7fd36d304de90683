"""portal-client against a live portal: a whole loop from the shell, and the API's errors on stderr."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generation.engine.sequence import frame_path
from tests.conftest import REPO

pytestmark = pytest.mark.django_db(transaction=True)


def portal_client(server, token: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the CLI as a user would: the installed console script when there is one, else ``-m``."""
    script = Path(sys.executable).parent / "portal-client"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "portal.client"]
    env = dict(os.environ, PT_SERVER=server.url, PT_TOKEN=token)
    return subprocess.run([*command, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def test_submit_watch_pick_signoff_and_the_released_paths(live_portal, token_for, compositor, director, shot,
                                                          show_model):
    cora, dana = token_for(compositor), token_for(director)

    created = json.loads(ok(portal_client(live_portal, cora, "submit", shot.code, "--show", "tst", "--frames",
                                          "1001-1003", "--count", "2", "--steps", "2", "--prompt", "dusk", "--json")))
    request_id = created["id"]
    assert (created["count"], created["first_frame"], created["last_frame"]) == (2, 1001, 1003)

    watched = portal_client(live_portal, cora, "watch", str(request_id))
    assert "100%" in ok(watched) + watched.stderr and f"request {request_id}" in watched.stdout
    status = json.loads(ok(portal_client(live_portal, cora, "status", str(request_id), "--json")))
    assert status["status"] == "review"
    assert all(v["status"] == "done" and v["exr_pattern"] for v in status["variations"])

    picked = json.loads(ok(portal_client(live_portal, dana, "pick", str(request_id), "v02", "--json")))
    assert picked["variation"] == status["variations"][1]["id"]
    signed = json.loads(ok(portal_client(live_portal, cora, "signoff", str(request_id), "--note", "lovely",
                                         "--json")))
    assert signed["decision"] == "approved"
    ok(portal_client(live_portal, cora, "watch", str(request_id), "--until", "released", "--json"))

    releases = json.loads(ok(portal_client(live_portal, cora, "releases", "--request", str(request_id), "--json")))
    assert [(r["version"], r["status"]) for r in releases] == [(1, "done")]
    pattern = releases[0]["path_pattern"]
    assert Path(pattern).parent.name == "v001"
    assert all(Path(frame_path(pattern, f)).is_file() for f in (1001, 1002, 1003))
    listed = ok(portal_client(live_portal, cora, "releases", "--shot", str(shot.pk)))
    assert "v001" in listed and pattern in listed


def test_watch_json_streams_events_in_order_and_polling_reaches_the_same_end(live_portal, token_for, compositor,
                                                                          shot, show_model):
    cora = token_for(compositor)
    out = ok(portal_client(live_portal, cora, "submit", str(shot.pk), "--frames", "1001-1003", "--count", "1",
                           "--steps", "2", "--rect", "0,0,320,90", "--watch", "--json"))
    created, *lines = [json.loads(line) for line in out.splitlines()]
    seqs = [e["seq"] for e in lines if "seq" in e]
    assert seqs == list(range(1, len(seqs) + 1)) and lines[0]["type"] == "request.created"
    assert {"variation.progress", "variation.done", "request.settled"} <= {e["type"] for e in lines}
    assert lines[-1]["type"] == "final" and lines[-1]["request"]["status"] == "review"
    polled = json.loads(ok(portal_client(live_portal, cora, "watch", str(created["id"]), "--poll", "--json")))
    assert polled["request"]["status"] == "review"


def test_errors_print_the_apis_message_and_exit_non_zero(live_portal, token_for, compositor, outsider, shot,
                                                         show_model):
    cora = token_for(compositor)
    refused = portal_client(live_portal, cora, "pick", "999999")
    assert refused.returncode == 1 and "no such variation" in refused.stderr
    outside = portal_client(live_portal, token_for(outsider), "submit", str(shot.pk), "--count", "1")
    assert outside.returncode == 1 and "not found" in outside.stderr
    bad = portal_client(live_portal, cora, "submit", str(shot.pk), "--frames", "1-2", "--json")
    assert bad.returncode == 1 and json.loads(bad.stderr)["error"]["code"] == "frame_range"
    assert portal_client(live_portal, "not-a-token", "releases").returncode == 1
    unreachable = portal_client(type("S", (), {"url": "http://127.0.0.1:9"})(), cora, "status", "1")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_submit_takes_a_task_and_strength_and_chooses_a_model_that_can_do_it(live_portal, token_for, compositor,
                                                                             shot, show_model):
    cora = token_for(compositor)
    created = json.loads(ok(portal_client(live_portal, cora, "submit", str(shot.pk), "--frames", "1001-1001",
                                          "--count", "1", "--steps", "2", "--task", "atmosphere", "--strength",
                                          "0.3", "--json")))
    assert created["task"] == "atmosphere" and created["strength"] == 0.3 and created["model"] == show_model.pk
    # the tiny show model cannot do a time of day (it ignores prompts): the client says so and exits 1
    refused = portal_client(live_portal, cora, "submit", str(shot.pk), "--count", "1", "--task", "time_of_day")
    assert refused.returncode == 1 and "can do time_of_day" in refused.stderr
    out_of_range = portal_client(live_portal, cora, "submit", str(shot.pk), "--count", "1", "--task",
                                 "atmosphere", "--strength", "0.99")
    assert out_of_range.returncode == 1 and "must be 0.1–0.9" in out_of_range.stderr
