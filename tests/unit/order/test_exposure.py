"""The exposure pre-trade reads: the position plane's streamed money figures, parsed exactly,
plus this plane's own fills the view has not applied (sizes and the open-position count)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from quantmesh.position.v1 import position_pb2
from services.common.exposure import ExposureFollower, ExposureSnapshot
from services.common.timeutil import to_timestamp
from services.common.vocabulary import Side
from services.order.exposure import LedgerExposure, StreamedExposure
from services.order.positions import OwnBook
from services.order.records import FillRecord
from services.position.ledger import Ledger, LedgerFill, Mark

T = datetime(2024, 1, 10, 12, tzinfo=timezone.utc)


def view_message(*, days=True) -> position_pb2.WatchExposureResponse:
    message = position_pb2.WatchExposureResponse(
        last_fill_seq=7, as_of=to_timestamp(T),
        positions=[position_pb2.PositionRecord(account="paper", instrument="EUR_USD", strategy_slug="a",
                                               quantity="10000", average_price="1.085"),
                   position_pb2.PositionRecord(account="paper", instrument="USD_JPY", strategy_slug="b",
                                               quantity="-5000", average_price="150")],
        account=position_pb2.AccountSummary(
            account="paper", currency="JPY", equity="9950000.5", drawdown_fraction="0.005", open_positions=2,
            unconverted=[position_pb2.UnconvertedMoney(currency="USD", amount="-2",
                                                       conversion_instrument="USD_JPY")]),
        strategies=[position_pb2.StrategySummary(slug="a", consecutive_losses=2)])
    if days:
        message.days.append(position_pb2.TradingDay(
            start=to_timestamp(datetime(2024, 1, 9, 22, tzinfo=timezone.utc)),
            end=to_timestamp(datetime(2024, 1, 10, 22, tzinfo=timezone.utc)), date="2024-01-10",
            opening_equity="10000000", peak_equity="10001000", realized_pnl="-49999.5"))
    return message


def test_the_money_figures_are_parsed_exactly():
    view = ExposureSnapshot.from_proto(view_message(), received_at=0.0)
    assert (view.currency, view.equity, view.open_position_count) == ("JPY", D("9950000.5"), 2)
    assert [p.quantity for p in view.open_positions("a", "EUR_USD")] == [D(10000)]  # the method, not shadowed
    assert [str(u) for u in view.unconverted] == ["-2 USD (no USD_JPY quote yet)"]
    [today] = view.days
    assert (today.day.date.isoformat(), today.day.start.hour, today.opening_equity, today.realized_pnl) == (
        "2024-01-10", 22, D(10_000_000), D("-49999.5"))


def test_a_bad_day_is_refused_with_a_sentence():
    message = view_message()
    message.days[0].date = "10/01/2024"
    with pytest.raises(ValueError, match="trading day dated '10/01/2024'"):
        ExposureSnapshot.from_proto(message, received_at=0.0)


def fill(seq: int, slug: str, instrument: str, side: str, qty: str) -> FillRecord:
    return FillRecord(seq=seq, order_id="o", client_order_id="c", strategy_slug=slug, account="paper",
                      instrument=instrument, side=Side(side), quantity=D(qty), price=D(1), commission=D(0), time=T,
                      broker_fill_id=f"b{seq}")


async def test_own_fills_past_the_view_move_sizes_and_the_open_position_count():
    follower = ExposureFollower("127.0.0.1:9", monotonic=lambda: 0.0)
    follower.accept(ExposureSnapshot.from_proto(view_message(), received_at=0.0))
    exposure = StreamedExposure(follower, OwnBook(), catch_up_seconds=0.0)
    exposure.on_fill(fill(6, "a", "EUR_USD", "buy", "1"))       # already in the view: dropped
    exposure.on_fill(fill(8, "b", "USD_JPY", "buy", "5000"))    # closes b's short
    exposure.on_fill(fill(9, "c", "GBP_JPY", "sell", "1000"))   # opens c
    seen = await exposure.exposure("paper", "c", "GBP_JPY", recorded_fill_seq=9)
    assert (seen.strategy_position, seen.instrument_position, seen.open_positions) == (D(-1000), D(-1000), 2)
    assert seen.account.currency == "JPY" and seen.account.equity == D("9950000.5")
    assert seen.account.unconverted == ("-2 USD (no USD_JPY quote yet)",)
    assert seen.account.days[-1].realized_pnl == D("-49999.5")
    assert (await exposure.exposure("paper", "a", "EUR_USD", recorded_fill_seq=9)).consecutive_losses == 2


class _NeverWaits(ExposureFollower):
    async def wait_for_fill_seq(self, fill_seq, timeout):
        raise AssertionError(f"waited for fill seq {fill_seq}")


async def test_a_caller_reading_sizes_only_never_waits_and_still_gets_them_exactly():
    """recorded_fill_seq None (an order that reduces): no catch-up wait, however far behind the view is;
    the sizes still include this plane's own fills past the view."""
    follower = _NeverWaits("127.0.0.1:9", monotonic=lambda: 0.0)
    follower.accept(ExposureSnapshot.from_proto(view_message(), received_at=0.0))
    exposure = StreamedExposure(follower, OwnBook(), catch_up_seconds=30.0)
    exposure.on_fill(fill(8, "b", "USD_JPY", "buy", "2000"))
    seen = await exposure.exposure("paper", "b", "USD_JPY", recorded_fill_seq=None)
    assert (seen.strategy_position, seen.instrument_position, seen.stale_reason) == (D(-3000), D(-3000), "")
    with pytest.raises(AssertionError, match="waited for fill seq 8"):  # an entry's read does wait
        await exposure.exposure("paper", "b", "USD_JPY", recorded_fill_seq=8)


async def test_the_in_process_ledger_gives_the_same_figures():
    ledger = Ledger(starting_cash=D(10_000_000))
    ledger.apply_fill(LedgerFill(fill_id="f1", account="paper", instrument="EUR_USD", strategy="a", side="buy",
                                 quantity=D(10000), price=D("1.085"), commission=D(2), time=T))
    ledger.apply_mark(Mark("EUR_JPY", D(160), D("160.1"), T))
    seen = await LedgerExposure(ledger).exposure("paper", "a", "EUR_USD", recorded_fill_seq=1)
    assert (seen.strategy_position, seen.open_positions) == (D(10000), 1)
    assert seen.account.unconverted == ("-2 USD (no USD_JPY quote yet)",)
    assert seen.account.days[-1].day.date.isoformat() == "2024-01-10"
