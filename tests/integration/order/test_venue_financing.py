"""Financing the venue reports (OANDA's DAILY_FINANCING), through real processes: the order plane
reads it from the venue's transaction log and books it to the strategy whose entry opened the
trade; the position plane (QUANTMESH_FINANCING_SOURCE=venue) books each charge once, also
across its own restart. The venue is the loopback OANDA that keeps OANDA's documented rules."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import grpc

from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.integration.order.conftest import LOG_DIR, OrderPlane, intent, order_stub
from tests.integration.venues.fakes.loopback import serving
from tests.integration.venues.fakes.oanda_server import FILL_PRICE, FakeOanda
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

S = order_pb2
TOKEN, ACCOUNT = "oanda-token-financing-1", "101-001-7654321-001"


async def position_financing(ledger, slug: str) -> Decimal:
    """The account's financing (this module's database holds only this test's strategy)."""
    snapshot = await ledger.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=[slug], include_flat=True))
    return Decimal(snapshot.account.financing or "0")


async def until_financing(ledger, slug: str, expected: Decimal, timeout: float = 30.0) -> Decimal:
    deadline = time.monotonic() + timeout
    while (seen := await position_financing(ledger, slug)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return seen


async def test_oanda_daily_financing_reaches_the_ledger_once_per_trade_and_rollover(order_env, database_url):
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with serving(fake.app()) as url:
        order = OrderPlane({**order_env, "QUANTMESH_BROKER": "oanda", "OANDA_API_TOKEN": TOKEN,
                            "OANDA_ACCOUNT_ID": ACCOUNT, "QUANTMESH_OANDA_REST_URL": url,
                            "QUANTMESH_OANDA_STREAM_URL": url, "QUANTMESH_VENUE_POLL_SECONDS": "0.1"})
        position_addr = f"127.0.0.1:{free_port()}"
        position = PlaneProcess("services.position", {
            "DATABASE_URL": database_url, "QUANTMESH_LISTEN": position_addr, "QUANTMESH_ORDER_ADDR": order.address,
            "QUANTMESH_MARKET_DATA_ADDR": order_env["QUANTMESH_MARKET_DATA_ADDR"],
            "QUANTMESH_FINANCING_SOURCE": "venue", "QUANTMESH_FINANCING_POLL_SECONDS": "0.2"}, LOG_DIR)
        # Started from threads: the fake venue answers from this event loop meanwhile.
        await asyncio.to_thread(order.start)
        try:
            await asyncio.to_thread(lambda: position.start().wait_healthy(position_addr))
            async with grpc.aio.insecure_channel(order.address) as channel, \
                    grpc.aio.insecure_channel(position_addr) as ledger_channel:
                stub, ledger = order_stub(channel), position_pb2_grpc.PositionStub(ledger_channel)
                entry = await stub.Submit(S.SubmitRequest(intent=intent("swap-1", strategy_slug="swap_holder",
                                                                        quantity="10000")))
                assert (entry.order.state, entry.order.average_fill_price) == (S.ORDER_STATE_FILLED, FILL_PRICE)
                (trade,) = fake.trades
                fake.daily_financing({trade["id"]: "-42.1234"})  # the rollover: OANDA charges the long

                assert await until_financing(ledger, "swap_holder", Decimal("-42.1234")) == Decimal("-42.1234")
                listed = await stub.ListFinancing(S.ListFinancingRequest())
                (charge,) = listed.charges
                assert (charge.strategy_slug, charge.instrument, charge.amount, charge.currency, charge.account,
                        charge.broker_fill_id) == ("swap_holder", "USD_JPY", "-42.1234", "JPY", "paper",
                                                   f"oanda-{trade['id']}-open-{trade['id']}")
                assert listed.last_seq == charge.seq

                position.terminate()  # a restart asks for every charge again: each is booked once
                await asyncio.to_thread(lambda: position.start().wait_healthy(position_addr))
                fake.daily_financing({trade["id"]: "-40.0000"})  # the next rollover
                assert await until_financing(ledger, "swap_holder", Decimal("-82.1234")) == Decimal("-82.1234")
                await asyncio.sleep(1.0)  # several more polls: nothing is booked twice
                assert await position_financing(ledger, "swap_holder") == Decimal("-82.1234")
                assert len((await stub.ListFinancing(S.ListFinancingRequest())).charges) == 2
        finally:
            position.terminate()
            await asyncio.to_thread(order.stop)
