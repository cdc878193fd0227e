"""Round trips from fills, checked against trades worked by hand."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from services.backtest.report import EquityPoint, summarize
from services.backtest.trades import FillRecord, round_trips

T0 = datetime(2013, 2, 1, tzinfo=timezone.utc)


def fill(minute, side, qty, price, commission="0"):
    return FillRecord(time=T0 + timedelta(minutes=minute), strategy="s", instrument="USD_JPY", side=side,
                      quantity=D(qty), price=D(price), commission=D(commission))


def test_open_add_partial_close_flip_and_close():
    trades, still_open = round_trips([
        fill(0, "buy", "1000", "100.00", "1"),   # long 1000 @ 100
        fill(1, "buy", "1000", "101.00", "1"),   # long 2000 @ 100.50
        fill(2, "sell", "500", "102.00", "1"),   # +1.50 * 500 = 750 realized, long 1500
        fill(3, "sell", "2500", "99.00", "5"),   # close 1500: -1.50 * 1500 = -2250; flip short 1000 @ 99
        fill(4, "buy", "1000", "98.00", "2"),    # short closed: +1.00 * 1000 = 1000
    ])
    assert still_open == {}
    first, second = trades
    assert (first.direction, first.size, first.entry_price) == ("long", D("2000"), D("100.50"))
    assert first.gross_pnl == D("750") + D("-2250")
    # commission: 1 + 1 + 1 + the closing 1500/2500 share of 5 = 3 + 3 = 6
    assert first.commission == D("6")
    assert first.exit_price == (D("102.00") * 500 + D("99.00") * 1500) / 2000
    assert (second.direction, second.entry_price, second.exit_price) == ("short", D("99.00"), D("98.00"))
    assert second.gross_pnl == D("1000") and second.commission == D("2") + D("2")  # 2 of the flip fill + 2


def test_open_position_at_the_end_is_reported_not_traded():
    trades, still_open = round_trips([fill(0, "sell", "10000", "90.000")])
    assert trades == [] and still_open == {("s", "USD_JPY"): D("-10000")}


def test_summary_figures():
    trades, _ = round_trips([fill(0, "buy", "100", "10"), fill(1, "sell", "100", "11"),
                             fill(2, "buy", "100", "11"), fill(3, "sell", "100", "10.5")])
    curve = [EquityPoint(time=T0 + timedelta(days=i), equity=D(e), exposed=i % 2 == 0)
             for i, e in enumerate(["1000", "1100", "1050", "1150"])]
    s = summarize(trades, curve, D("1000"))
    assert (s.trades, s.wins, s.net_pnl) == (2, 1, D("50.0"))
    assert s.return_pct == 15.0
    assert abs(s.max_drawdown_pct - 100 * 50 / 1100) < 1e-9
    assert s.exposure_pct == 50.0
