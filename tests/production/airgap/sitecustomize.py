"""The air-gap probe: put this folder on PYTHONPATH and set PT_AIRGAP_LOG, and every Python process started so
(and every process it forks) records each socket connect, datagram send and name lookup it attempts, as one
JSON line, before it happens. ``local`` says whether the target is this machine's loopback (127.0.0.0/8, ::1,
``localhost``) or a Unix socket. tests/production/test_airgap.py reads the lines.

An audit hook (PEP 578) sees what Python code does through the socket module; a C library opening its own
sockets (libpq, PostgreSQL's client) is not seen here, which is why the test also reads the processes' open
TCP sockets from /proc.
"""

import ipaddress
import json
import os
import socket
import sys

_LOG = os.environ.get("PT_AIRGAP_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _local_host(host) -> bool:
    if host in (None, "", b""):
        return True  # getaddrinfo(None, port): the wildcard or loopback, never a lookup
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that would go to a resolver


def _target(event: str, args: tuple) -> tuple[str, bool]:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) == getattr(socket, "AF_UNIX", None) or isinstance(address, (str, bytes)):
            return f"unix:{address!r}", True
        if not isinstance(address, tuple):
            return repr(address), False
        return f"{address[0]}:{address[1]}", _local_host(address[0])
    host = args[0][0] if isinstance(args[0], tuple) else args[0]  # getnameinfo takes a sockaddr
    return str(host), _local_host(host)


def _write(record: dict) -> None:
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


_WATCHED = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
            "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo"}


def _hook(event: str, args: tuple) -> None:
    if event not in _WATCHED:
        return
    if event == "socket.sendto" and args[1] is None:
        return  # send on a connected socket: its connect was recorded
    try:
        target, local = _target(event, args)
        _write({"pid": os.getpid(), "event": event, "target": target, "local": local})
    except Exception as error:  # noqa: BLE001 - never break the process being watched; say so instead
        _write({"pid": os.getpid(), "event": "probe.error", "target": repr(error), "local": False})


if _LOG:
    sys.addaudithook(_hook)
    _write({"pid": os.getpid(), "event": "probe.installed", "target": " ".join(sys.argv[:4]), "local": True})
