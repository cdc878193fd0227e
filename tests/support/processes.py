"""Real plane processes for integration and end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.postgres import PROJECT_ROOT


class PlaneProcess:
    """`python -m services.<plane>` with the given environment; logs go to a file."""

    def __init__(self, module: str, env: Mapping[str, str], log_dir: Path, *, args: tuple[str, ...] = ()) -> None:
        self.module = module
        self.env = {**os.environ, **env}
        self.args = args
        self.log_path = log_dir / f"{module.replace('.', '_')}-{int(time.time() * 1000)}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PlaneProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args], env=self.env,
                                     cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_healthy(self, address: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}; log:\n{self.tail()}")
            try:
                with grpc.insecure_channel(address) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            except grpc.RpcError as exc:
                last_error = exc
            time.sleep(0.2)
        raise TimeoutError(f"{self.module} not healthy at {address} after {timeout}s ({last_error}); log:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self, timeout: float = 20.0) -> int | None:
        self.ask_to_stop()
        return self.wait_stopped(timeout)

    def ask_to_stop(self) -> None:
        """SIGTERM: the process drains and stops."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 20.0) -> int | None:
        """Its exit code; killed when it has not stopped within `timeout` seconds."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
