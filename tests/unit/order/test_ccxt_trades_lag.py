"""ccxt_orders.ack_of: an order the exchange ended is finished only once its trades cover its filled amount.

ccxt hands amounts over as floats, so "cover" allows what floats lose (0.1 + 0.2 is not 0.3) and no
more: a missing trade is at least one amount step of the market.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from services.order.brokers.ccxt_orders import ack_of


class Exchange:
    """A ccxt exchange as ack_of reads it: its capabilities, markets, and the order's listed trades."""

    id = "stub"

    def __init__(self, trades: list[dict], *, step: float | None = 1e-05, lists_trades: bool = True) -> None:
        self.trades = trades
        self.has = {"fetchOrderTrades": lists_trades}
        self.precisionMode = ccxt.TICK_SIZE
        self.markets = {"BTC/USDT": {"precision": {"amount": step}}}

    async def fetch_order_trades(self, order_id, symbol):
        return self.trades


def trade(n: int, amount: float) -> dict:
    return {"id": str(n), "amount": amount, "price": 60000.0, "fee": {"cost": 0.0}, "timestamp": 1_700_000_000_000}


def closed(status: str, filled: float) -> dict:
    return {"id": "42", "status": status, "filled": filled, "amount": 0.5, "timestamp": 1_700_000_000_000}


async def ack(exchange: Exchange, found: dict):
    return await ack_of(exchange, "ccxt:stub", "c-1", found, "BTC_USDT")


@pytest.mark.parametrize("step", [1e-05, None])  # half a step, or a billionth of the amount without one
async def test_trades_that_miss_filled_only_by_float_rounding_cover_it(step):
    got = await ack(Exchange([trade(1, 0.1), trade(2, 0.2)], step=step), closed("closed", 0.1 + 0.2))
    assert got.state == "filled" and got.filled_quantity == Decimal("0.3")


@pytest.mark.parametrize("status, listed, state", [
    ("closed", [trade(1, 0.1)], "partially_filled"),
    ("closed", [], "new"),
    ("canceled", [trade(1, 0.1)], "partially_filled"),
    ("expired", [], "new"),
])
async def test_an_ended_order_missing_one_step_of_trades_is_not_finished(status, listed, state):
    got = await ack(Exchange(listed), closed(status, 0.10001))
    assert got.state == state and got.filled_quantity == sum((Decimal(str(t["amount"])) for t in listed), Decimal(0))


async def test_an_exchange_that_cannot_list_trades_books_the_filled_amount_once_the_order_ended():
    got = await ack(Exchange([], lists_trades=False), {**closed("canceled", 0.1), "average": 60000.0})
    assert got.state == "canceled" and [(f.broker_fill_id, f.quantity) for f in got.fills] == [
        ("ccxt:stub-42-all", Decimal("0.1"))]
