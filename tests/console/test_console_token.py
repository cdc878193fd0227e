"""The console calls the planes with a bearer token of its own, and says so when a plane refuses it.

A control plane that requires tokens, and two consoles in front of it: one with a token the
plane knows (actor "console", operator role), one with a token it does not. The other planes'
addresses lead nowhere, so the consoles also show what an operator sees with planes down.
"""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.config import DEFAULT_PORTS
from tests.console.harness import DESK, OPERATOR, TOKEN_TABLE, console_env, eventually, operators
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def guarded_control(database_url, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("token-mesh")
    address = f"127.0.0.1:{free_port()}"
    control = PlaneProcess("services.control", {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": address,
                                                "QUANTMESH_TOKENS": TOKEN_TABLE, "QUANTMESH_DATA_DIR": str(log_dir),
                                                "OTEL_EXPORTER_OTLP_ENDPOINT": ""}, log_dir / "control").start()
    consoles = []

    def start_console(token: str) -> str:
        addresses = {plane: f"127.0.0.1:{free_port()}" for plane in DEFAULT_PORTS}  # nobody listens there
        addresses["control"] = address
        http = f"127.0.0.1:{free_port()}"
        grpc_address = f"127.0.0.1:{free_port()}"
        env = console_env(addresses=addresses, database_url=database_url, log_dir=log_dir, grpc=grpc_address,
                          http=http, users=operators(), QUANTMESH_TOKEN=token)
        console = PlaneProcess("services.console", env, log_dir / f"console-{token}").start()
        consoles.append(console)
        console.wait_healthy(grpc_address, timeout=60)
        return f"http://{http}"

    try:
        await asyncio.to_thread(control.wait_healthy, address, 60)
        yield address, start_console
    finally:
        for process in [*consoles, control]:
            await asyncio.to_thread(process.terminate)


def basic(credentials: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(*credentials)}


async def test_control_records_the_console_token_actor_and_the_operator_in_the_reason(guarded_control):
    address, start_console = guarded_control
    url = await asyncio.to_thread(start_console, "console-token")
    async with aiohttp.ClientSession(url) as http:
        async with http.post("/api/strategy-control", json={"global_lock": True, "reason": "token drill"},
                             headers=basic(OPERATOR)) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["flags"]["state"] == "HALTED"
        async with http.post("/api/strategy-control", json={"global_lock": False, "reason": "token drill over"},
                             headers=basic(OPERATOR)) as response:
            assert response.status == 200

        async def planes_down():
            async with http.get("/api/overview", headers=basic(OPERATOR)) as response:
                if response.status != 200:
                    return None
                planes = {p["plane"]: p["serving"] for p in (await response.json())["planes"]}
                return planes if planes.get("control") else None

        planes = await eventually(planes_down, timeout=30, what="the console's overview")
        assert planes == {"market_data": False, "control": True, "order": False, "position": False, "analysis": False}
        async with http.get("/api/positions", headers=basic(OPERATOR)) as response:
            assert response.status == 503
            assert "position at 127.0.0.1:" in (await response.json())["error"]
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await control_pb2_grpc.ControlStub(channel).ListAudit(
            control_pb2.ListAuditRequest(flag="global_lock", limit=2), metadata=DESK)
    assert [(e.actor, e.role, e.reason, e.new_value) for e in reply.entries] == [
        ("console", "operator", "alice@console: token drill over", "false"),
        ("console", "operator", "alice@console: token drill", "true")]


async def test_a_token_the_plane_does_not_know_is_reported_as_the_consoles_own(guarded_control):
    _, start_console = guarded_control
    url = await asyncio.to_thread(start_console, "not-a-known-token")
    async with aiohttp.ClientSession(url) as http:
        async with http.post("/api/strategy-control", json={"global_lock": True, "reason": "should not pass"},
                             headers=basic(OPERATOR)) as response:
            body = await response.json()
    assert response.status == 502
    assert "refused the console's own token (QUANTMESH_TOKEN)" in body["error"]
    assert "the bearer token is not known to this server" in body["error"]
