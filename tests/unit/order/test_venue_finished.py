"""When the venue's "filled" finishes an order that filled less than it was recorded for.

OANDA's stop-loss, trailing stop and take-profit on a trade close what is left of the trade, so
after a partial close they fill less than the entry's quantity we recorded for them, and OANDA
calls them FILLED. Everywhere else "filled" means the whole quantity, and a shortfall means
fills still on their way (a poll gives each new fill the order's final state).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.order.brokers.base import BrokerAck, BrokerExecution, BrokerFill, BrokerRejected
from services.order.brokers.oanda import _executions
from services.order.intents import Intent
from services.order.states import OrderState as S

TIME = datetime(2013, 1, 1, 22, 0, tzinfo=timezone.utc)


def order_fill(tx_id: str, **trades) -> dict:
    """An ORDER_FILL transaction as OANDA writes it (OrderFillTransaction), units summed from its trades."""
    parts = [*trades.get("tradesClosed", []), *[trades[k] for k in ("tradeReduced", "tradeOpened") if k in trades]]
    return {"id": tx_id, "type": "ORDER_FILL", "orderID": "200", "clientOrderID": "exit-flat",
            "instrument": "USD_JPY", "units": str(sum(Decimal(p["units"]) for p in parts)),
            "time": "2024-05-01T10:00:00.123456789Z", "commission": "0.0000", "reason": "MARKET_ORDER", **trades}


def trade(trade_id: str, units: str, price: str = "150.100") -> dict:
    return {"tradeID": trade_id, "units": units, "price": price, "realizedPL": "0.0000", "financing": "0.0000"}


def test_an_order_fill_closing_two_trades_is_filled_only_at_its_last_fill():
    executions = _executions(order_fill("300", tradesClosed=[trade("101", "-600"), trade("150", "-400")]), "JPY")
    assert [(e.fill.broker_fill_id, e.fill.quantity, e.state) for e in executions] == [
        ("oanda-300-close-101", 600, "partially_filled"), ("oanda-300-close-150", 400, "filled")]


def test_an_order_fill_that_turns_a_position_is_filled_only_at_its_last_fill():
    executions = _executions(order_fill("301", tradesClosed=[trade("101", "-1000")],
                                        tradeOpened=trade("301", "-500")), "JPY")
    assert [e.state for e in executions] == ["partially_filled", "filled"]
    [one] = _executions(order_fill("302", tradeOpened=trade("302", "1000")), "JPY")
    assert one.state == "filled"


class TradeVenue:
    """A venue holding orders on trades, scripted by the test: every order is found, NEW; nothing
    is canceled (the venue has already closed it)."""

    name = "oanda"

    def __init__(self, protects_on_fill: bool) -> None:
        self.protects_on_fill = protects_on_fill

    async def submit(self, order):
        raise BrokerRejected("this venue takes no orders in these tests")

    async def cancel(self, client_order_id):
        raise BrokerRejected(f"the venue has no open order {client_order_id!r} to cancel")

    async def lookup(self, client_order_id):
        return BrokerAck(client_order_id=client_order_id, broker_order_id=f"v-{client_order_id}", state="new")

    async def positions(self, account):
        return []

    async def executions(self):
        while True:
            await asyncio.sleep(3600)
            yield None


def stop_loss(cid: str) -> Intent:
    return Intent(client_order_id=cid, strategy_slug="ma_cross", role="exit", instrument="USD_JPY", side="sell",
                  quantity=Decimal(1000), order_type="stop", stop_price=Decimal("85.80"), time_in_force="GTC",
                  reduce_only=True, account="paper")


def fill(cid: str, n: int, quantity: int) -> BrokerFill:
    return BrokerFill(broker_fill_id=f"f-{cid}-{n}", client_order_id=cid, quantity=Decimal(quantity),
                      price=Decimal("85.79"), commission=Decimal(0), time=TIME)


@pytest.mark.parametrize("cid, protects_on_fill, after", [
    ("ord-000000000001.f:sl", True, S.FILLED),  # bound to a trade the venue had partly closed
    ("exit-1", True, S.PARTIALLY_FILLED),  # an order of its own: 400 of its 1000 are still to come
    ("ord-000000000001.f:sl", False, S.PARTIALLY_FILLED),  # no venue that binds orders to trades
])
async def test_the_venues_filled_finishes_only_an_order_bound_to_a_trade(make_rig, cid, protects_on_fill, after):
    rig = await make_rig(broker=TradeVenue(protects_on_fill))
    recorded = await rig.engine.record_placed_by_venue(stop_loss(cid))
    assert recorded.state == S.NEW
    order = await rig.engine.venue.apply_execution(BrokerExecution(
        client_order_id=cid, broker_order_id=recorded.broker_order_id, state="filled", fill=fill(cid, 1, 600)))
    assert (order.state, order.filled_quantity) == (after, 600)  # never more than was filled
    if after == S.FILLED:
        assert order.reason == "the venue finished the order at 600 of 1000: the trade it was bound to had less left"
        return
    order = await rig.engine.venue.apply_execution(BrokerExecution(
        client_order_id=cid, broker_order_id=recorded.broker_order_id, state="filled", fill=fill(cid, 2, 400)))
    assert (order.state, order.filled_quantity) == (S.FILLED, 1000)  # the rest came, to an order still open
