"""Average-cost PnL worked by hand: open, add, partial close, flip through zero, close."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from services.position.ledger import Ledger, LedgerFill, Mark

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def fill(n: int, side: str, qty: str, price: str, commission: str, *, strategy="s1", instrument="USD_JPY",
         account="paper") -> LedgerFill:
    return LedgerFill(fill_id=f"f{n}", account=account, instrument=instrument, strategy=strategy, side=side,
                      quantity=D(qty), price=D(price), commission=D(commission), time=T0 + timedelta(minutes=n))


def mark(bid: str, ask: str, minute: int, instrument="USD_JPY") -> Mark:
    return Mark(instrument=instrument, bid=D(bid), ask=D(ask), time=T0 + timedelta(minutes=minute))


def test_hand_worked_sequence():
    ledger = Ledger(starting_cash=D("10000000"))

    # 1. open long: buy 10000 @ 150.00, commission 20 -> qty 10000, avg 150.00
    out = ledger.apply_fill(fill(1, "buy", "10000", "150.00", "20"))
    assert (out.position.quantity, out.position.average_price) == (D(10000), D(150))
    assert out.position.opened_time == T0 + timedelta(minutes=1)
    assert out.round_trip is None

    # 2. add: buy 5000 @ 151.50, commission 10
    #    avg = (150 * 10000 + 151.5 * 5000) / 15000 = 2,257,500 / 15000 = 150.5
    out = ledger.apply_fill(fill(2, "buy", "5000", "151.50", "10"))
    assert (out.position.quantity, out.position.average_price) == (D(15000), D("150.5"))
    assert out.position.opened_time == T0 + timedelta(minutes=1)  # adding keeps the open time

    # mark: long at the bid -> (150.40 - 150.5) * 15000 = -1500
    # equity = 10,000,000 - 30 (commission) - 1500 = 9,998,470; peak stays 10,000,000
    [figures] = ledger.apply_mark(mark("150.40", "150.45", 2))
    assert ledger.unrealized_pnl(ledger.position("paper", "USD_JPY", "s1")) == D(-1500)
    assert figures.equity == D("9998470")
    assert figures.peak_equity == D("10000000")
    assert figures.drawdown == D("1530")
    assert figures.drawdown_fraction == D("0.000153")  # 1530 / 10,000,000

    # 3. partial close: sell 6000 @ 152.00, commission 12
    #    realized = (152 - 150.5) * 6000 = 9000; avg stays 150.5; qty 9000
    out = ledger.apply_fill(fill(3, "sell", "6000", "152.00", "12"))
    assert out.realized_pnl == D(9000)
    assert (out.position.quantity, out.position.average_price) == (D(9000), D("150.5"))
    # balance = 10,000,000 + 9000 - 42 = 10,008,958; unrealized (150.40 - 150.5) * 9000 = -900
    # equity = 10,008,058, a new peak
    assert out.figures.balance == D("10008958")
    assert out.figures.equity == D("10008058")
    assert out.figures.peak_equity == D("10008058")

    # 4. flip through zero: sell 12000 @ 149.50, commission 24
    #    closes 9000: (149.5 - 150.5) * 9000 = -9000; the trip: realized 9000 - 9000 = 0,
    #    commission 20 + 10 + 12 + 24 = 66 -> net -66: a LOSS (consecutive 1)
    #    opens short 3000 @ 149.50 at this fill's time
    out = ledger.apply_fill(fill(4, "sell", "12000", "149.50", "24"))
    assert out.realized_pnl == D(-9000)
    assert out.round_trip is not None and out.round_trip.net_pnl == D(-66) and not out.round_trip.won
    assert (out.position.quantity, out.position.average_price) == (D(-3000), D("149.5"))
    assert out.position.opened_time == T0 + timedelta(minutes=4)
    assert (out.strategy.wins, out.strategy.losses, out.strategy.consecutive_losses) == (0, 1, 1)
    # balance = 10,000,000 + 0 - 66 = 9,999,934; short at the ask: (149.5 - 150.45) * 3000 = -2850
    # equity = 9,997,084; drawdown = 10,008,058 - 9,997,084 = 10,974
    assert out.figures.equity == D("9997084")
    assert out.figures.drawdown == D("10974")
    assert out.figures.max_drawdown == D("10974")

    # mark: short at the ask -> (149.5 - 149.10) * 3000 = 1200; equity 10,001,134, drawdown 6,924
    [figures] = ledger.apply_mark(mark("149.00", "149.10", 5))
    assert figures.unrealized_pnl == D(1200)
    assert figures.drawdown == D("6924")
    assert figures.max_drawdown == D("10974")  # the worst stays

    # 5. close: buy 3000 @ 150.00, commission 6
    #    realized (149.5 - 150) * 3000 = -1500; trip net = -1500 - 6 = -1506: LOSS (consecutive 2)
    out = ledger.apply_fill(fill(6, "buy", "3000", "150.00", "6"))
    assert out.realized_pnl == D(-1500)
    assert out.round_trip.net_pnl == D(-1506)
    assert out.position.quantity == 0 and out.position.average_price is None and out.position.opened_time is None
    assert out.position.realized_pnl == D(-1500)  # 9000 - 9000 - 1500
    assert out.position.commission == D(72)  # 20 + 10 + 12 + 24 + 6
    assert (out.strategy.losses, out.strategy.consecutive_losses) == (2, 2)
    # balance = 10,000,000 - 1500 - 72 = 9,998,428 = equity (flat); drawdown 10,008,058 - 9,998,428 = 9,630
    assert out.figures.balance == out.figures.equity == D("9998428")
    assert out.figures.drawdown == D("9630")

    # 6. a winning trip resets consecutive losses: buy 1000 @ 150 (2), sell 1000 @ 151 (2): net 1000 - 4 = 996
    ledger.apply_fill(fill(7, "buy", "1000", "150", "2"))
    out = ledger.apply_fill(fill(8, "sell", "1000", "151", "2"))
    assert out.round_trip.net_pnl == D(996) and out.round_trip.won
    s1 = ledger.strategy_figures("paper", "s1")
    assert (s1.wins, s1.losses, s1.consecutive_losses) == (1, 2, 0)
    # realized net of commission: (-1500 + 1000) - (72 + 4) = -576
    assert s1.realized_pnl_net == D(-576)
    assert ledger.account_figures("paper").balance == D("9999424")


def test_a_trip_that_nets_exactly_zero_is_a_loss():
    ledger = Ledger(starting_cash=D("1000000"))
    ledger.apply_fill(fill(1, "buy", "100", "10", "5"))
    out = ledger.apply_fill(fill(2, "sell", "100", "10.10", "5"))  # realized 10, commission 10 -> net 0
    assert out.round_trip.net_pnl == 0 and not out.round_trip.won
    assert out.strategy.losses == 1


def test_strategies_and_accounts_are_kept_apart():
    ledger = Ledger(starting_cash=D("1000000"))
    ledger.apply_fill(fill(1, "buy", "100", "10", "0", strategy="a"))
    ledger.apply_fill(fill(2, "sell", "40", "10", "0", strategy="b"))
    ledger.apply_fill(fill(3, "buy", "7", "10", "0", strategy="a", account="other"))
    assert [p.strategy for p in ledger.positions("paper")] == ["a", "b"]
    assert ledger.net_quantities("paper") == {"USD_JPY": D(60)}
    assert ledger.net_quantities("other") == {"USD_JPY": D(7)}
    assert ledger.positions("nobody") == []
    assert ledger.account_figures("nobody").equity == D("1000000")


def test_decimals_stay_exact_where_floats_would_drift():
    ledger = Ledger(starting_cash=D("1000000"))
    for n in range(10):  # ten buys of 0.1 BTC: floats would give 0.9999999999999999
        ledger.apply_fill(fill(n, "buy", "0.1", "9000000.1", "0.01", instrument="BTC_JPY"))
    position = ledger.position("paper", "BTC_JPY", "s1")
    assert position.quantity == D("1.0")
    assert position.average_price == D("9000000.1")
    assert position.commission == D("0.10")


@pytest.mark.parametrize("kwargs, message", [
    ({"quantity": D("0")}, "quantity 0 must be a positive number"),
    ({"quantity": D("-1")}, "quantity -1 must be a positive number"),
    ({"price": D("NaN")}, "price NaN must be a positive number"),
    ({"commission": D("Infinity")}, "commission Infinity must be a finite number"),
    ({"side": "unspecified"}, "side 'unspecified' is not buy or sell"),
])
def test_a_malformed_fill_is_refused(kwargs, message):
    base = dict(fill_id="x", account="paper", instrument="USD_JPY", strategy="s1", side="buy",
                quantity=D(1), price=D(1), commission=D(0), time=T0)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        LedgerFill(**{**base, **kwargs})
