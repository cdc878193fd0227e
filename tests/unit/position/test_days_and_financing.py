"""Trading days and financing at the rollover, worked by hand (January: New York is on EST,
so the 17:00 boundary is 22:00 UTC)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal as D

from services.position.financing import FinancingCharge, FinancingRates
from services.position.ledger import Ledger, LedgerFill, Mark

RATES = FinancingRates(long=(("USD_JPY", D("0.0365")),), short=(("USD_JPY", D("-0.073")),))


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=timezone.utc)


def fill(n: int, side: str, price: str, time: datetime, qty: str = "10000", instrument="USD_JPY") -> LedgerFill:
    return LedgerFill(fill_id=f"f{n}", account="paper", instrument=instrument, strategy="s1", side=side,
                      quantity=D(qty), price=D(price), commission=D(0), time=time)


def mark(bid: str, ask: str, time: datetime, instrument="USD_JPY") -> Mark:
    return Mark(instrument=instrument, bid=D(bid), ask=D(ask), time=time)


def test_each_trading_day_keeps_its_opening_equity_peak_and_realized_pnl():
    ledger = Ledger(starting_cash=D("10000000"))
    # Tuesday 9 January (the day from Monday 22:00 UTC): a 5,000 JPY loss
    ledger.apply_fill(fill(1, "buy", "150.00", utc(9, 10)))
    ledger.apply_fill(fill(2, "sell", "149.50", utc(9, 11)))
    # Wednesday 10 January begins at 22:00 UTC on the 9th: marked up to 10,005,000, then 8,000 realized
    ledger.apply_fill(fill(3, "buy", "150.00", utc(9, 23)))
    ledger.apply_mark(mark("151.00", "151.02", utc(9, 23, 30)))  # 9,995,000 + 10,000 unrealized
    ledger.apply_fill(fill(4, "sell", "150.80", utc(10, 1)))
    tuesday, wednesday = ledger.trading_days("paper")
    assert (tuesday.day.date, tuesday.opening_equity, tuesday.peak_equity, tuesday.realized_pnl) == (
        date(2024, 1, 9), D(10_000_000), D(10_000_000), D(-5000))
    assert (wednesday.day.date, wednesday.opening_equity, wednesday.peak_equity, wednesday.realized_pnl) == (
        date(2024, 1, 10), D(9_995_000), D(10_005_000), D(8000))
    # a quote on Thursday's trading day, nothing held: Thursday stands at the last equity, 0 realized
    ledger.apply_mark(mark("151.00", "151.02", utc(10, 22, 5)))
    *_, thursday = ledger.trading_days("paper")
    assert (thursday.day.date, thursday.opening_equity, thursday.peak_equity, thursday.realized_pnl) == (
        date(2024, 1, 11), D(10_003_000), D(10_003_000), D(0))
    assert len(ledger.trading_days("paper")) == 3


def test_a_position_held_over_the_rollover_is_charged_its_rate_at_the_close_out_price():
    ledger = Ledger(starting_cash=D("10000000"), financing=RATES)
    ledger.apply_fill(fill(1, "buy", "149.90", utc(9, 15)))
    ledger.apply_mark(mark("150.00", "150.02", utc(9, 21)))
    assert ledger.take_bookkeeping().financing == []
    # the first quote after 22:00: the long earns 10,000 x 150.00 (its bid) x 0.0365 / 365 = 150 JPY
    [figures] = ledger.apply_mark(mark("150.00", "150.02", utc(10, 1)))
    [(charge, booking)] = ledger.take_bookkeeping().financing
    assert (charge.charge_id, charge.time, charge.price, charge.amount) == (
        "rollover:paper:USD_JPY:s1:2024-01-09T22:00:00+00:00", utc(9, 22), D("150.00"), D(150))
    assert booking.pnl_account == D(150)
    assert figures.financing == D(150)
    # balance 10,000,000 + 150; unrealized (150.00 - 149.90) x 10,000 = 1,000
    assert (figures.balance, figures.equity) == (D(10_000_150), D(10_001_150))
    assert ledger.position("paper", "USD_JPY", "s1").financing == D(150)
    assert ledger.strategy_figures("paper", "s1").realized_pnl_net == D(150)
    assert ledger.trading_days("paper")[-1].realized_pnl == D(150)  # counted in Wednesday's day

    # flip short at 150.00: from Friday 21:00 to Monday 01:00 three rollovers (Fri, Sat, Sun), the short
    # paying 10,000 x 150.02 (its ask) x -0.073 / 365 = -300.04 JPY each
    ledger.apply_fill(fill(2, "sell", "150.00", utc(12, 20), qty="20000"))
    ledger.take_bookkeeping()
    ledger.apply_mark(mark("150.00", "150.02", utc(12, 21)))
    ledger.apply_mark(mark("150.00", "150.02", utc(15, 1)))
    charges = [c for c, _ in ledger.take_bookkeeping().financing]
    assert [c.time for c in charges] == [utc(12, 22), utc(13, 22), utc(14, 22)]
    assert [c.amount for c in charges] == [D("-300.04")] * 3
    # financing between: Wednesday 150 earned, Wednesday 22:00 and Thursday 22:00 rollovers too
    assert ledger.account_figures("paper").financing == D(150) * 3 - D("300.04") * 3


def test_no_rates_no_charges_and_a_venue_charge_is_booked_as_reported():
    ledger = Ledger(starting_cash=D("10000000"))
    ledger.apply_fill(fill(1, "buy", "149.90", utc(9, 15)))
    ledger.apply_mark(mark("150.00", "150.02", utc(10, 1)))
    assert ledger.take_bookkeeping().financing == []
    # OANDA's DAILY_FINANCING in the home currency (the port QUANTMESH_FINANCING_SOURCE=venue uses)
    booking = ledger.apply_financing(FinancingCharge(
        charge_id="oanda:12345", account="paper", instrument="USD_JPY", strategy="s1", time=utc(10, 2),
        amount=D("-123.4567"), currency="JPY", quantity=D(10000), source="venue"))
    assert booking.pnl_account == D("-123.4567") and booking.rate.instrument == ""
    assert ledger.account_figures("paper").balance == D("9999876.5433")


def test_a_rollover_is_charged_at_the_quote_before_it_not_the_one_that_crosses_it():
    ledger = Ledger(starting_cash=D("10000000"), financing=RATES)
    ledger.apply_fill(fill(1, "buy", "149.90", utc(9, 15)))
    ledger.apply_mark(mark("150.00", "150.02", utc(9, 21)))
    ledger.apply_mark(mark("160.00", "160.02", utc(10, 1)))  # the first quote after 22:00 jumped
    [(charge, _)] = ledger.take_bookkeeping().financing
    assert (charge.price, charge.amount) == (D("150.00"), D(150))
