"""The console's HTTP JSON API against a real mesh: who may call it, and what it refuses.

Every refusal is a 4xx with a sentence, and none of them reaches a plane: the control plane's
audit trail is the same before and after the bad requests.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import grpc
import pytest

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from quantmesh.control.v1 import control_pb2
from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2
from tests.console.harness import DESK, INSTRUMENT, OPERATOR, STRATEGY, VIEWER, eventually, manual_intent

pytestmark = pytest.mark.e2e

CONTROL = "/api/strategy-control"


@pytest.fixture
async def http(console_mesh):
    # unsafe: keep cookies of an IP address (127.0.0.1), as browsers do.
    async with aiohttp.ClientSession(console_mesh.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def basic(credentials: tuple[str, str]) -> dict[str, str]:
    """What `curl -u name:secret` sends."""
    return {"Authorization": aiohttp.encode_basic_auth(*credentials)}


async def answer(response: aiohttp.ClientResponse) -> tuple[int, dict]:
    return response.status, await response.json()


async def audit_ids(planes) -> list[int]:
    reply = await planes.control.ListAudit(control_pb2.ListAuditRequest(limit=1000), metadata=DESK)
    return [entry.id for entry in reply.entries]


async def console_ready(http) -> None:
    """The console has asked the planes and the workers at least once."""
    async def overview():
        async with http.get("/api/overview", headers=basic(OPERATOR)) as response:
            if response.status != 200:
                return None
            body = await response.json()
            return body if any(w.get("strategy") == STRATEGY.slug for w in body["workers"]) else None

    return await eventually(overview, timeout=60, what="the console's first overview with the workers")


async def test_without_credentials_every_api_call_is_refused_with_a_sentence(http):
    for method, path in (("GET", "/api/flags"), ("GET", "/api/orders"), ("GET", "/api/events"),
                         ("POST", CONTROL)):
        async with http.request(method, path, json={"global_lock": True, "reason": "x"}) as response:
            status, body = await answer(response)
        assert status == 401, (method, path)
        assert "sign in" in body["error"]
    async with http.get("/", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/login"
    async with http.get("/api/flags", headers=basic(("alice", "wrong"))) as response:
        status, body = await answer(response)
    assert status == 401 and "wrong" in body["error"]


async def test_a_viewer_reads_but_may_not_change_anything(http, planes):
    before = await audit_ids(planes)
    async with http.get("/api/flags", headers=basic(VIEWER)) as response:
        status, flags = await answer(response)
    assert status == 200 and flags["state"] in ("ACTIVE", "REDUCING", "HALTED")
    async with http.post(CONTROL, json={"global_lock": True, "reason": "viewer tries"}, headers=basic(VIEWER)) as response:
        status, body = await answer(response)
    assert status == 403
    assert body["error"] == "bob has the viewer role; changes need the operator role"
    assert await audit_ids(planes) == before


BAD_BODIES = [
    ({"global_lock": True}, 400, "reason is required"),
    ({"global_lock": True, "reason": "   "}, 400, "reason is required"),
    ({"global_lock": "yes", "reason": "drill"}, 400, "global_lock must be true or false"),
    ({"reason": "nothing to switch"}, 400, "say what to switch"),
    ({"global_lock": True, "reason": "drill", "force": True}, 400, "unknown field(s) 'force'"),
    ({"slug": "Not A Slug", "entry_enabled": False, "reason": "x"}, 400, "is not a strategy slug"),
    ({"slug": STRATEGY.slug, "global_lock": True, "reason": "x"}, 400, "unknown field(s) 'global_lock'"),
    ({"slug": STRATEGY.slug, "entry_enabled": False, "reason": "line\nbreak"}, 400, "unprintable character U+000A"),
    ({"global_lock": True, "reason": "x" * 401}, 400, "at most 400"),
    ({"global_lock": True, "reason": "drill", "expected_version": -1}, 400, "expected_version must be a whole number"),
    ([1, 2, 3], 400, "must be a JSON object"),
    ({"slug": "no_such_strategy", "entry_enabled": False, "reason": "x"}, 404, "no strategy 'no_such_strategy'"),
]


@pytest.mark.parametrize(("body", "status", "sentence"), BAD_BODIES, ids=[s for _, _, s in BAD_BODIES])
async def test_bad_input_gets_a_4xx_with_a_sentence_and_never_reaches_a_plane(http, planes, body, status, sentence):
    before = await audit_ids(planes)
    async with http.post(CONTROL, json=body, headers=basic(OPERATOR)) as response:
        got, answered = await answer(response)
    assert got == status, answered
    assert sentence in answered["error"]
    assert await audit_ids(planes) == before


async def test_a_body_that_is_not_json_is_refused(http, planes):
    before = await audit_ids(planes)
    async with http.post(CONTROL, data="global_lock=true&reason=x",
                         headers={**basic(OPERATOR), "Content-Type": "application/x-www-form-urlencoded"}) as response:
        status, body = await answer(response)
    assert status == 415 and "JSON" in body["error"]
    async with http.post(CONTROL, data="{not json",
                         headers={**basic(OPERATOR), "Content-Type": "application/json"}) as response:
        status, body = await answer(response)
    assert status == 400 and "not JSON" in body["error"]
    assert await audit_ids(planes) == before


@pytest.mark.parametrize(("path", "sentence"), [
    ("/api/orders?state=BOGUS", "state 'BOGUS' is not one of"),
    ("/api/orders?limit=0", "limit '0' is not a whole number from 1 to 1000"),
    ("/api/orders?strategy=Bad%20Slug", "is not a strategy slug"),
    ("/api/orders?colour=red", "unknown filter(s) 'colour'"),
    ("/api/orders/ord-12x", "is not the digits of an order id"),
    ("/api/fills?instrument=usdjpy", "is not a symbol like USD_JPY"),
    ("/api/audit?since=yesterday", "since 'yesterday' is not a time"),
    ("/api/audit?since=2026-01-05T09:00:00", "has no time zone"),
    ("/api/audit?since=2026-01-06T00:00:00Z&until=2026-01-05T00:00:00Z", "must be before until"),
    ("/api/audit?flag=lock", "flag 'lock' is not one of"),
    ("/api/equity?limit=20000", "from 1 to 10000"),
])
async def test_bad_filters_get_400_with_a_sentence(http, path, sentence):
    async with http.get(path, headers=basic(VIEWER)) as response:
        status, body = await answer(response)
    assert status == 400, body
    assert sentence in body["error"]


async def test_a_change_from_another_site_or_without_the_csrf_token_is_refused(http, planes):
    before = await audit_ids(planes)
    async with http.post(CONTROL, json={"global_lock": True, "reason": "csrf"},
                         headers={**basic(OPERATOR), "Origin": "http://evil.example"}) as response:
        status, body = await answer(response)
    assert status == 403 and "another site" in body["error"]
    # A browser session: the cookie alone does not let a change through, the session's token must come too.
    async with http.post("/login", data={"name": OPERATOR[0], "password": OPERATOR[1]},
                         allow_redirects=False) as response:
        assert response.status == 303
        assert "SameSite=Strict" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    async with http.post(CONTROL, json={"global_lock": True, "reason": "csrf"}) as response:
        status, body = await answer(response)
    assert status == 403 and "X-CSRF-Token" in body["error"]
    async with http.post(CONTROL, json={"global_lock": True, "reason": "csrf"},
                         headers={"X-CSRF-Token": "guessed"}) as response:
        assert response.status == 403
    assert await audit_ids(planes) == before
    async with http.get("/api/session") as response:
        status, session = await answer(response)
    assert status == 200 and session["operator"] == "alice" and session["may_act"] is True
    async with http.post("/logout", json={}, headers={"X-CSRF-Token": session["csrf_token"]}) as response:
        assert response.status == 200
    async with http.get("/api/session") as response:
        assert response.status == 401


async def test_sign_in_with_a_wrong_password_is_refused(http):
    async with http.post("/login", data={"name": OPERATOR[0], "password": "guess"}) as response:
        assert response.status == 401
        assert "do not match" in await response.text()


async def test_an_operator_switches_a_strategy_and_control_records_who(http, planes):
    await console_ready(http)
    body = {"slug": STRATEGY.slug, "exit_enabled": False, "reason": "api test: hold exits"}
    async with http.post(CONTROL, json=body, headers=basic(OPERATOR)) as response:
        status, answered = await answer(response)
    assert status == 200, answered
    flags = {s["slug"]: s for s in answered["flags"]["strategies"]}
    assert flags[STRATEGY.slug]["exit_enabled"] is False
    reply = await planes.control.ListAudit(control_pb2.ListAuditRequest(slug=STRATEGY.slug, flag="exit_enabled"),
                                           metadata=DESK)
    newest = reply.entries[0]
    # The control plane knows the console by its own token; the reason names the operator.
    assert (newest.actor, newest.reason, newest.new_value) == ("console", "alice@console: api test: hold exits",
                                                              "false")
    stale = {**body, "exit_enabled": True, "expected_version": 1}
    async with http.post(CONTROL, json=stale, headers=basic(OPERATOR)) as response:
        status, answered = await answer(response)
    assert status == 409 and "ABORTED" in answered["error"]
    async with http.post(CONTROL, json={**body, "exit_enabled": True, "reason": "api test: done"},
                         headers=basic(OPERATOR)) as response:
        assert response.status == 200
    async with http.get("/api/audit", params={"actor": "alice", "strategy": STRATEGY.slug},
                        headers=basic(VIEWER)) as response:
        status, audit = await answer(response)
    assert status == 200
    assert [(e["flag"], e["new_value"], e["operator"]) for e in audit["entries"][:2]] == [
        ("exit_enabled", "true", "alice"), ("exit_enabled", "false", "alice")]


async def test_cancel_open_and_flatten_reach_the_order_plane_with_the_operators_name(http, planes, console_mesh):
    overview = await console_ready(http)
    assert overview["capabilities"] == ["cancel-open", "flatten"], "the order plane's reflection lists both"
    async with http.post("/api/cancel-open", json={"reason": "viewer tries"}, headers=basic(VIEWER)) as response:
        assert response.status == 403
    for body, sentence in (({}, "reason is required"), ({"reason": "x", "strategy": "Bad"}, "not a strategy slug"),
                           ({"reason": "x", "account": "paper"}, "unknown field(s) 'account'")):
        async with http.post("/api/flatten", json=body, headers=basic(OPERATOR)) as response:
            status, answered = await answer(response)
        assert status == 400 and sentence in answered["error"]

    # A live order rests: its quote is in the future of the pushed market.
    resting = await planes.order.Submit(order_pb2.SubmitRequest(intent=manual_intent(
        "api-resting-1", decision_time=datetime.now(timezone.utc))), metadata=DESK)
    async with http.post("/api/cancel-open", json={"reason": "api test: clear the book", "strategy": "manual"},
                         headers=basic(OPERATOR)) as response:
        status, answered = await answer(response)
    assert status == 200, answered
    canceled = {o["order_id"]: o for o in answered["canceled"]}
    assert canceled[resting.order.order_id]["state"] == "CANCELED"
    assert canceled[resting.order.order_id]["reason"].startswith("alice@console: api test: clear the book")
    assert answered["failures"] == []

    await planes.order.Submit(order_pb2.SubmitRequest(intent=manual_intent("api-flatten-1")), metadata=DESK)
    await eventually(lambda: manual_position(planes, console_mesh), timeout=60, what="a manual position")
    async with http.post("/api/flatten", json={"reason": "api test: flat", "strategy": "manual"},
                         headers=basic(OPERATOR)) as response:
        status, answered = await answer(response)
    assert status == 200, answered
    [closing] = answered["orders"]
    assert (closing["strategy"], closing["role"], closing["side"]) == ("manual", "EXIT", "SELL")

    async def flat():
        return not await manual_position(planes, console_mesh)

    await eventually(flat, timeout=60, what="the position to be flat")


async def manual_position(planes, console_mesh):
    await planes.ticks.step()  # market orders fill at the next quote
    snapshot = await planes.position.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["manual"]))
    return [p for p in snapshot.positions if p.quantity != "0"]


async def test_reads_answer_json_in_the_traders_words(http):
    await console_ready(http)
    for path in ("/api/flags", "/api/positions", "/api/orders?limit=5", "/api/fills", "/api/equity",
                 "/api/audit?limit=5", "/api/overview", "/api/analysis"):
        async with http.get(path, headers=basic(VIEWER)) as response:
            assert response.status == 200, path
            assert response.headers["Cache-Control"] == "no-store"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            await response.json()
    async with http.get("/api/overview", headers=basic(VIEWER)) as response:
        overview = await response.json()
    assert {p["plane"]: p["status"] for p in overview["planes"]} == {
        "market_data": "SERVING", "control": "SERVING", "order": "SERVING", "position": "SERVING",
        "analysis": "SERVING"}
    assert {w["name"] for w in overview["workers"]} == {f"{STRATEGY.slug}.entry", f"{STRATEGY.slug}.exit"}


async def test_analysis_shows_each_strategys_trades_as_the_ledger_counts_them(http, planes, console_mesh):
    """A round trip of "manual" (bought, then flattened through the console) shows in /api/analysis with the
    trades, wins and net PnL the position plane's ledger counts for it: two different computations from the
    same fills. The figures are Analysis.GetPerformance's own, and the viewer may read them."""
    await console_ready(http)
    await planes.order.Submit(order_pb2.SubmitRequest(intent=manual_intent("api-analysis-1")), metadata=DESK)
    await eventually(lambda: manual_position(planes, console_mesh), timeout=60, what="a manual position")
    planes.ticks.bid += Decimal("0.020")  # 2 pips up before the close: a winning trade
    async with http.post("/api/flatten", json={"reason": "api test: close for analysis", "strategy": "manual"},
                         headers=basic(OPERATOR)) as response:
        status, answered = await answer(response)
    assert status == 200, answered

    async def flat():
        return not await manual_position(planes, console_mesh)

    await eventually(flat, timeout=60, what="the position to be flat")
    books = await planes.position.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["manual"], include_flat=True))
    ledger = next(s for s in books.strategies if s.slug == "manual")
    assert ledger.wins >= 1

    async def caught_up():
        async with http.get("/api/analysis", headers=basic(VIEWER)) as response:
            assert response.status == 200
            body = await response.json()
        row = next((r for r in body["strategies"] if (r["strategy"], r["instrument"]) == ("manual", INSTRUMENT)), None)
        return (body, row) if row and row["overall"]["trades"] == ledger.wins + ledger.losses else None

    body, row = await eventually(caught_up, timeout=60, what="analysis to count the ledger's round trips",
                                 mesh=console_mesh)
    assert body["configured"] is True and body["policy"] in ("apply", "recommend")
    assert row["overall"]["wins"] == ledger.wins
    assert Decimal(row["overall"]["net_pnl"]) == Decimal(ledger.realized_pnl), (row["overall"], ledger)
    assert row["open_quantity"] in ("0", "")
    async with grpc.aio.insecure_channel(console_mesh.analysis_address) as channel:
        performance = await analysis_pb2_grpc.AnalysisStub(channel).GetPerformance(
            analysis_pb2.GetPerformanceRequest(strategy_slug="manual", instrument=INSTRUMENT), metadata=DESK)
    [contract] = performance.performance
    assert (contract.overall.trades, contract.overall.net_pnl, contract.overall.max_drawdown) == (
        row["overall"]["trades"], row["overall"]["net_pnl"], row["overall"]["max_drawdown"])


async def test_an_operator_freezes_a_strategys_settings_and_analysis_records_who(http, planes, console_mesh):
    """POST /api/analysis/freeze reaches Analysis.FreezeStrategy with the operator in the reason; a viewer and
    bad input are refused before it; the change is in control's audit trail, as every analysis change."""
    body = {"strategy": "manual", "frozen": True, "reason": "api test: hold still"}
    async with http.post("/api/analysis/freeze", json=body, headers=basic(VIEWER)) as response:
        assert response.status == 403
    async with http.post("/api/analysis/freeze", json={**body, "frozen": "yes"}, headers=basic(OPERATOR)) as response:
        status, answered = await answer(response)
    assert status == 400 and "frozen must be true or false" in answered["error"]

    async with grpc.aio.insecure_channel(console_mesh.analysis_address) as channel:
        analysis = analysis_pb2_grpc.AnalysisStub(channel)

        async def frozen() -> bool:
            reply = await analysis.GetStrategySettings(analysis_pb2.GetStrategySettingsRequest(strategy_slug="manual"),
                                                       metadata=DESK)
            return bool(reply.settings) and reply.settings[0].frozen

        was_frozen = await frozen()
        async with http.post("/api/analysis/freeze", json=body, headers=basic(OPERATOR)) as response:
            status, answered = await answer(response)
        assert status == 200, answered
        assert answered["settings"]["frozen"] is True and answered["settings"]["strategy"] == "manual"
        assert answered["settings"]["reason"] == "alice@console: api test: hold still"
        assert await frozen()
        async with http.post("/api/analysis/freeze", json={**body, "frozen": was_frozen, "reason": "api test: done"},
                             headers=basic(OPERATOR)) as response:
            assert response.status == 200
        assert await frozen() == was_frozen

    async def audited():
        reply = await planes.control.ListAudit(control_pb2.ListAuditRequest(plane="analysis", limit=100), metadata=DESK)
        return [e for e in reply.entries if e.reason == "alice@console: api test: hold still"]

    [entry] = await eventually(audited, timeout=30, what="the freeze in control's audit trail", mesh=console_mesh)
    assert entry.slug == "manual"
