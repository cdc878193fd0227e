"""The supervisor's health check proves that the process it started answers: an older server
answering SERVING on the same port no longer passes for a new process that died on the bind."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.cli.supervisor import ProcessSpec, Supervisor
from tests.support.ports import free_port


async def test_a_process_that_cannot_bind_is_not_taken_for_the_server_already_there(database_url, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    impostor = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, impostor)
    impostor.add_insecure_port(address)
    await impostor.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    supervisor = Supervisor(tmp_path / "logs", {"DATABASE_URL": database_url})
    try:
        with pytest.raises(RuntimeError, match=rf"control exited with code \d+ instead of serving at {address}"):
            await supervisor.start(ProcessSpec(name="control", module="services.control", address=address,
                                               env={"QUANTMESH_LISTEN": address}), health_timeout=90)
    finally:
        await supervisor.stop()
        await impostor.stop(0)


async def test_stop_stops_each_group_at_once_the_first_group_first(tmp_path):
    supervisor = Supervisor(tmp_path / "logs", {})
    names = ("worker-a", "worker-b", "plane-a", "plane-b")
    for name in names:
        await supervisor.start(ProcessSpec(name=name, module="tests.support.slow_stop",
                                           args=(str(tmp_path / f"{name}.asked"), "2")))
    await asyncio.sleep(1)  # each process has installed its SIGTERM handler
    began = time.monotonic()
    await supervisor.stop(first=lambda spec: spec.name.startswith("worker"))
    took = time.monotonic() - began
    asked = {name: float((tmp_path / f"{name}.asked").read_text()) for name in names}
    assert took < 6.5, f"stopping 4 processes that take 2 s each took {took:.1f} s: not two groups at once"
    assert abs(asked["worker-a"] - asked["worker-b"]) < 1 and abs(asked["plane-a"] - asked["plane-b"]) < 1
    assert min(asked["plane-a"], asked["plane-b"]) >= max(asked["worker-a"], asked["worker-b"]) + 1.5
