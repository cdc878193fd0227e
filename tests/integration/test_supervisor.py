"""The supervisor's health check proves that the process it started answers: an older server
answering SERVING on the same port no longer passes for a new process that died on the bind."""

from __future__ import annotations

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
