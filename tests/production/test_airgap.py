"""The air gap, proven: the demo loop (seed, generate, pick, sign-off, release) in real processes (the seed
command, a uvicorn server, a Celery worker) attempts no connection outside loopback and looks up no name that is
not local.

Two witnesses. Every Python process runs the audit hook of ``airgap/sitecustomize.py`` (PYTHONPATH, PT_AIRGAP_LOG),
which records each socket connect, datagram send and name lookup before it happens, the denied ones included.
libpq (PostgreSQL's client) opens its sockets in C, out of the hook's sight, so the test also samples every TCP
and UDP socket the server and worker processes hold, from /proc, while the loop runs.
"""

import ipaddress
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from generation.models import GenerationModel, Variation
from portal.models import Shot
from review.models import Release
from tests.production.conftest import REPO, Api, AsgiServer
from tests.production.test_production_loop import ask, collect, follow

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

PROBE_DIR = Path(__file__).parent / "airgap"


def _address(hex_address: str, six: bool) -> str:
    ip_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(ip_hex)
    if six:
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    else:
        ip = ipaddress.IPv4Address(raw[::-1])
    return f"{ip}:{int(port_hex, 16)}"


def _family(pid: int) -> list[int]:
    """The process and its children (a prefork pool, a reloader)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def open_peers(pid: int) -> set[tuple[str, bool]]:
    """(peer address, is loopback) of every connected TCP/UDP socket the process holds."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
    except OSError:
        return set()  # the process ended between two reads
    peers = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            peer = _address(fields[2], table.endswith("6"))
            host = peer.rsplit(":", 1)[0]
            if ipaddress.ip_address(host).is_unspecified:
                continue  # listening or unconnected
            ip = ipaddress.ip_address(host)
            local = ip.is_loopback or (getattr(ip, "ipv4_mapped", None) is not None and ip.ipv4_mapped.is_loopback)
            peers.add((peer, local))
    return peers


class SocketSampler:
    """Reads the processes' sockets every 50 ms until stopped."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.peers: set[tuple[str, bool]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for root in self.pids:
                for pid in _family(root):
                    self.peers |= open_peers(pid)
            self._stop.wait(0.05)

    def stop(self) -> set[tuple[str, bool]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peers


def probed_env(service_env: dict, log: Path) -> dict:
    path = os.pathsep.join(p for p in (str(PROBE_DIR), service_env.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PT_AIRGAP_LOG": str(log)}


def token_api(server, api_for, username: str) -> Api:
    """The token api_for issues to a seeded user, sent to this test's own server."""
    return Api(server.url, api_for(get_user_model().objects.get(username=username)).token)


def test_the_demo_loop_connects_to_nothing_outside_loopback(service_env, workers, api_for, tmp_path):
    log = tmp_path / "connections.jsonl"
    probe = probed_env(service_env, log)
    env = dict(service_env, **probe)

    seed = subprocess.run([sys.executable, "manage.py", "seed_demo", "--frames", "6", "--width", "320",
                           "--height", "180"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert seed.returncode == 0, seed.stderr
    server = AsgiServer(env)
    worker = workers.ensure(**probe)
    sampler = SocketSampler([server.proc.pid, worker.proc.pid])
    try:
        cora, dana = token_api(server, api_for, "cora"), token_api(server, api_for, "dana")
        shot = Shot.objects.get(code="sq010_sh0040")
        request_id = ask(cora, shot, GenerationModel.objects.get(name="demo-sky"), count=1, steps=2)["id"]
        with follow(server, cora, request_id, after=0) as ws:
            collect(ws, until="request.settled", timeout=240)
            variation = Variation.objects.get(request_id=request_id)
            assert variation.status == "done", variation.error
            dana.post(f"/api/variations/{variation.pk}/pick/", {"note": "air-gapped sky"})
            cora.post(f"/api/requests/{request_id}/signoff/", {})
            released = collect(ws, until="release.done", timeout=180)
    finally:
        peers = sampler.stop()
        server.stop()
    assert released[-1]["payload"]["version"] == 1
    assert Release.objects.get(signoff__variation=variation).status == "done"

    records = [json.loads(line) for line in log.read_text().splitlines()]
    installed = {r["pid"]: r["target"] for r in records if r["event"] == "probe.installed"}
    assert any("seed_demo" in argv for argv in installed.values()), installed
    assert server.proc.pid in installed and worker.proc.pid in installed, (installed, server.proc.pid)
    # The probe saw each process talk (Redis: the broker, the channels layer, heartbeats), so silence means
    # something: both reached loopback through the socket module.
    for pid in (server.proc.pid, worker.proc.pid):
        assert any(r["pid"] == pid and r["event"] == "socket.connect" and r["local"] for r in records), pid
    outside = [r for r in records if not r["local"]]
    assert outside == [], f"connections or lookups outside loopback: {outside[:20]}"
    # libpq's connections, seen from /proc: PostgreSQL on loopback, and nothing else anywhere.
    assert any(peer.endswith(":5432") for peer, _ in peers), peers
    assert [peer for peer, local in peers if not local] == [], peers
