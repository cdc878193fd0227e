"""Runs plane processes, restarts the ones that crash, and stops them.

A crashed plane is restarted with a growing delay (1 s, 2 s, 4 s ... capped at
30 s; reset after a minute of healthy running), and every restart is logged with
the exit code and the tail of the plane's log, so a crash loop is visible
instead of silent. `stop` stops them in groups, each group at once.

A plane counts as started only when the process this supervisor spawned answers: it writes the
port it bound to its own port file (QUANTMESH_PORT_FILE, fresh for every spawn) and health says
SERVING there. An older process still answering on the same port never passes for a new one that
died on "address already in use".
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import open_channel
from services.common.config import PeerConfig

log = logging.getLogger("quantmesh.up")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    name: str
    module: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    address: str = ""


@dataclass(slots=True)
class Supervised:
    spec: ProcessSpec
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0

    @property
    def port_file(self) -> Path:
        return self.log_path.with_suffix(".port")


Dial = Callable[[str], grpc.aio.Channel]


def plaintext(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address)


def dial_like_the_planes(peers: PeerConfig) -> Dial:
    """Health checks dial as the planes do: over TLS when the environment configures it."""
    return lambda address: open_channel(peers.reach(address), traced=False)


async def wait_healthy(address: str, timeout: float, proc: asyncio.subprocess.Process | None = None, *,
                       port_file: Path | None = None, dial: Dial = plaintext) -> bool:
    """SERVING at `address`; with `port_file`, only once `proc` has written there the port of `address`,
    which proves the answer comes from `proc` (no second process can hold that port)."""
    deadline = time.monotonic() + timeout
    port = address.rpartition(":")[2]
    async with dial(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and proc.returncode is not None:
                return False
            if port_file is not None and _read(port_file) != port:
                await asyncio.sleep(0.2)
                continue
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    return False


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Supervisor:
    def __init__(self, log_dir: Path, base_env: Mapping[str, str], *, dial: Dial = plaintext) -> None:
        self._log_dir = log_dir
        self._base_env = dict(base_env)
        self._dial = dial
        self._children: list[Supervised] = []
        self._watchers: list[asyncio.Task] = []
        self._stopping = False

    @property
    def children(self) -> Sequence[Supervised]:
        return tuple(self._children)

    async def _spawn(self, child: Supervised) -> None:
        spec = child.spec
        self._log_dir.mkdir(parents=True, exist_ok=True)
        out = child.log_path.open("ab")
        child.port_file.unlink(missing_ok=True)  # only this spawn's own bind may write it again
        child.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", spec.module, *spec.args,
            env={**os.environ, **self._base_env, **spec.env, "QUANTMESH_PORT_FILE": str(child.port_file)},
            stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        out.close()
        child.started_at = time.monotonic()

    async def start(self, spec: ProcessSpec, *, health_timeout: float = 60.0) -> Supervised:
        child = Supervised(spec=spec, log_path=self._log_dir / f"{spec.name}.log")
        self._children.append(child)
        await self._spawn(child)
        if spec.address and not await wait_healthy(spec.address, health_timeout, child.proc,
                                                   port_file=child.port_file, dial=self._dial):
            code = child.proc.returncode
            how = f"exited with code {code}" if code is not None else "did not answer in time"
            raise RuntimeError(f"{spec.name} {how} instead of serving at {spec.address}; its log "
                               f"({child.log_path}) ends with:\n{tail(child.log_path)}")
        self._watchers.append(asyncio.create_task(self._watch(child)))
        return child

    async def _watch(self, child: Supervised) -> None:
        delay = 1.0
        while not self._stopping:
            code = await child.proc.wait()
            if self._stopping:
                return
            if time.monotonic() - child.started_at > 60:
                delay = 1.0
            child.restarts += 1
            log.warning("%s exited with code %s; restart #%d in %.0f s. Last log lines:\n%s",
                        child.spec.name, code, child.restarts, delay, tail(child.log_path, 8))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            if self._stopping:
                return
            await self._spawn(child)
            log.warning("%s restarted (pid %s)", child.spec.name, child.proc.pid)

    async def stop(self, grace: float = 15.0, *, first: Callable[[ProcessSpec], bool] = lambda spec: False) -> None:
        """Stops every process in two groups, each all at once: those `first` picks (the strategy workers
        and the console, so no decision loses its order plane mid-call), then the rest (the planes,
        which drain together: one after another, each waited out its neighbours' streams, about
        12 s). SIGTERM, then SIGKILL for a process still running after `grace` seconds."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        leading = [child for child in self._children if first(child.spec)]
        await self._stop_together(leading, grace)
        await self._stop_together([child for child in self._children if child not in leading], grace)

    async def _stop_together(self, children: Sequence[Supervised], grace: float) -> None:
        running = [child for child in children if child.proc is not None and child.proc.returncode is None]
        for child in running:
            child.proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*(self._wait_or_kill(child, grace) for child in running))

    async def _wait_or_kill(self, child: Supervised, grace: float) -> None:
        try:
            await asyncio.wait_for(child.proc.wait(), grace)
        except asyncio.TimeoutError:
            log.warning("%s did not stop in %.0f s; killing it", child.spec.name, grace)
            child.proc.kill()
            await child.proc.wait()
