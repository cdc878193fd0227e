"""The ledger keeps the figures it built until something they are made of changes, and copies its
records field by field: both must give exactly what building the figures again and copy.copy give."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from services.position.financing import FinancingCharge
from services.position.ledger import Ledger, LedgerFill, Mark

T0 = datetime(2024, 3, 5, 9, 0, tzinfo=timezone.utc)  # a Tuesday, far from the 17:00 New York rollover


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def fill(n: int, side: str, qty: str, price: str, commission: str, instrument: str, minute: int) -> LedgerFill:
    return LedgerFill(fill_id=f"f{n}", account="paper", instrument=instrument, strategy="s1", side=side,
                      quantity=D(qty), price=D(price), commission=D(commission), time=at(minute))


def mark(instrument: str, bid: str, ask: str, minute: int) -> Mark:
    return Mark(instrument=instrument, bid=D(bid), ask=D(ask), time=at(minute))


def rebuilt(ledger: Ledger, account: str):
    """The figures built from nothing kept: what every read returned before they were kept."""
    book = ledger._accounts[account]
    book.figures = book.balance = None
    return ledger.account_figures(account)


def same(a, b) -> bool:
    return a == b and repr(a) == repr(b)  # equal, and every Decimal written the same way


def test_kept_figures_are_the_figures_built_again_after_every_kind_of_change():
    ledger = Ledger(starting_cash=D("10000000"), currency="JPY")
    # EUR_USD before any USD_JPY quote: its commission is pending, its unrealized unconverted
    steps = [
        lambda: ledger.apply_fill(fill(1, "buy", "10000", "1.0850", "2", "EUR_USD", 1)).figures,
        lambda: ledger.apply_mark(mark("EUR_USD", "1.0900", "1.0902", 2)),
        lambda: ledger.apply_mark(mark("USD_JPY", "150.00", "150.04", 3)),  # converts the pending money
        lambda: ledger.apply_fill(fill(2, "sell", "3000", "150.010", "0.3", "USD_JPY", 4)).figures,
        lambda: ledger.apply_fill(fill(3, "sell", "4000", "150.020", "0.4", "USD_JPY", 5)).figures,
        lambda: ledger.apply_mark(mark("USD_JPY", "149.50", "149.53", 6)),  # moves both instruments
        lambda: ledger.apply_mark(mark("USD_JPY", "151.25", "151.29", 7)),  # a new peak
        lambda: ledger.apply_mark(mark("EUR_USD", "1.0700", "1.0702", 8)),  # a drawdown
        lambda: ledger.apply_fill(fill(4, "buy", "10000", "149.900", "1", "USD_JPY", 9)).figures,  # flips
        lambda: ledger.apply_financing(FinancingCharge(
            charge_id="venue:1", account="paper", instrument="USD_JPY", strategy="s1", time=at(10),
            amount=D("-12.345"), currency="JPY", quantity=D(3000), source="venue")),
        lambda: ledger.apply_mark(mark("USD_JPY", "150.75", "150.79", 11)),
        lambda: ledger.apply_fill(fill(5, "sell", "10000", "1.0710", "2", "EUR_USD", 12)).figures,  # flat
        lambda: ledger.apply_mark(mark("EUR_USD", "1.0800", "1.0802", 13)),  # moves nothing held
    ]
    for step in steps:
        result = step()
        kept = ledger.account_figures("paper")
        assert ledger.account_figures("paper") is kept  # nothing changed: the same figures, not built again
        if isinstance(result, list):
            assert all(figures is kept for figures in result)
        elif not hasattr(result, "kind"):  # a fill's figures (a financing step returns its booking)
            assert result is kept
        assert same(kept, rebuilt(ledger, "paper"))
    final = ledger.account_figures("paper")
    assert final.max_drawdown > 0 and final.peak_equity > D("10000000") and final.financing == D("-12.345")


def test_a_fills_copies_are_what_copy_copy_makes_and_do_not_move_with_the_ledger():
    ledger = Ledger(starting_cash=D("10000000"), currency="JPY")
    ledger.apply_fill(fill(1, "buy", "10000", "150.000", "1", "USD_JPY", 1))
    out = ledger.apply_fill(fill(2, "sell", "4000", "150.100", "0.4", "USD_JPY", 2))
    position = ledger.position("paper", "USD_JPY", "s1")
    assert same(out.position, copy.copy(position)) and out.position is not position
    assert same(out.account, copy.copy(ledger.account_record("paper")))
    assert same(out.strategy, copy.copy(ledger.strategy_records()[0]))
    assert ledger.account_record("paper") is not ledger.account_record("paper")
    ledger.apply_fill(fill(3, "sell", "6000", "149.000", "0.6", "USD_JPY", 3))  # closes: a losing trip
    assert out.position.quantity == D(6000) and position.quantity == 0
    assert out.strategy.losses == 0 and ledger.strategy_records()[0].losses == 1
    assert out.account.realized_pnl == D("400.000") != ledger.account_record("paper").realized_pnl
