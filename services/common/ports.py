"""Free loopback ports for servers started by tests and by `quantmesh backtest --mesh`.

A port is handed out *below* the kernel's ephemeral range (net.ipv4.ip_local_port_range,
usually 32768-60999). The kernel picks the source port of every outgoing connection from
that range, so a port found free there can be taken by one of the mesh's own gRPC client
connections between this check and the moment a plane process binds it: a plane then dies
on "Failed to bind" (seen in CI). Ports below the range are only ever taken by a bind.
Within one test process a port is never handed out twice.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

_LOWEST = 20_000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    top = _ephemeral_start()
    if top - _LOWEST < 1_000:  # an unusual range: fall back to asking the kernel
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    chooser = random.Random(os.getpid() ^ random.getrandbits(32))
    for _ in range(500):
        port = chooser.randrange(_LOWEST, top)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port between {_LOWEST} and {top}")
