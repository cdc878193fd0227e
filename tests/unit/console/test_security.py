"""The console's gate (services/console/security.py) in front of a stand-in route, on loopback."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.console.operators import LOCAL_OPERATOR, MIN_ITERATIONS, Gatekeeper, OperatorTable, hash_secret
from services.console.security import caller_of, security_middleware
from services.console.sessions import COOKIE, Sessions


async def whoami(request: web.Request) -> web.Response:
    caller = caller_of(request)
    return web.json_response({"operator": caller.operator.name, "session": caller.session is not None})


def app_with(table: OperatorTable, sessions: Sessions) -> web.Application:
    app = web.Application(middlewares=[security_middleware(Gatekeeper(table), sessions,
                                                           hosts=("127.0.0.1", "localhost", "::1"))])
    app.router.add_get("/api/whoami", whoami)
    app.router.add_post("/api/change", whoami)
    app.router.add_get("/", whoami)
    return app


@pytest.fixture
async def local():
    """No operators configured: the loopback console of `quantmesh up`."""
    sessions = Sessions(lifetime_seconds=60)
    server = TestServer(app_with(OperatorTable(), sessions), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
        yield http, sessions, f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_without_sign_in_only_the_known_host_names_are_answered(local):
    http, _, _ = local
    async with http.get("/api/whoami") as response:
        assert response.status == 200 and (await response.json())["operator"] == "local"
    # A page on attacker.example that rebinds its name to 127.0.0.1 arrives with its own Host.
    async with http.get("/api/whoami", headers={"Host": "attacker.example:8470"}) as response:
        assert response.status == 421
        assert "does not answer to the host 'attacker.example:8470'" in (await response.json())["error"]


async def test_a_change_must_be_json_from_this_origin_and_carry_the_sessions_token(local):
    http, sessions, origin = local
    async with http.post("/api/change", data="a=1") as response:
        assert response.status == 415
    async with http.post("/api/change", json={}, headers={"Origin": "http://evil.example"}) as response:
        assert response.status == 403
    async with http.post("/api/change", json={}, headers={"Origin": "null"}) as response:
        assert response.status == 403
    async with http.post("/api/change", json={}, headers={"Origin": origin}) as response:
        assert response.status == 200
    session = sessions.start(LOCAL_OPERATOR)  # what GET /api/session hands the page
    cookies = {COOKIE: session.id}
    async with http.post("/api/change", json={}, cookies=cookies) as response:
        assert response.status == 403 and "X-CSRF-Token" in (await response.json())["error"]
    async with http.post("/api/change", json={}, cookies=cookies,
                         headers={"X-CSRF-Token": session.csrf_token}) as response:
        assert response.status == 200 and (await response.json())["session"] is True


async def test_every_answer_is_hardened(local):
    http, _, _ = local
    async with http.get("/api/whoami") as response:
        headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


async def test_with_operators_a_page_goes_to_sign_in_and_basic_credentials_work_for_the_api():
    table = OperatorTable.parse(f"carol:viewer:{hash_secret('carol-secret', iterations=MIN_ITERATIONS)}")
    server = TestServer(app_with(table, Sessions(lifetime_seconds=60)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            async with http.get("/", allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/login"
            basic = {"Authorization": aiohttp.encode_basic_auth("carol", "carol-secret")}
            async with http.get("/api/whoami", headers=basic) as response:
                assert (await response.json()) == {"operator": "carol", "session": False}
            async with http.post("/api/change", json={}, headers=basic) as response:
                assert response.status == 403
                assert (await response.json())["error"] == "carol has the viewer role; changes need the operator role"
            async with http.get("/api/whoami", headers={"Authorization": "Bearer carol-secret"}) as response:
                assert response.status == 401 and "must be Basic" in (await response.json())["error"]
            # With sign-in required the Host is not checked: a name the operator reaches it by is fine.
            async with http.get("/api/whoami", headers={**basic, "Host": "console.desk.example"}) as response:
                assert response.status == 200
    finally:
        await server.close()
