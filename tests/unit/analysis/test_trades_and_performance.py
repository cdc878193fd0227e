"""Trades and performance figures against an independent recomputation with pandas.

The analysis builds trades fill by fill (services/analysis/trades.py); here the same fills are
cut into trades by the running position's sign with pandas, each trade's net PnL is its cash
flow (what the sells brought in minus what the buys cost, minus commission), and the figures
come from numpy. Reversals (a fill through flat) are split by hand, the commission pro rata.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from services.analysis.performance import figures
from services.analysis.trades import FillRecord, TradeBook

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def random_fills(seed: int, count: int, strategy: str = "s") -> list[FillRecord]:
    """Entries, adds, partial and full exits and reversals of one strategy in one instrument."""
    rng = random.Random(seed)
    fills, position = [], Decimal(0)
    for seq in range(1, count + 1):
        if position == 0:
            signed = Decimal(rng.choice([1, -1]) * rng.choice([1000, 2000, 3000]))
        else:
            roll = rng.random()
            if roll < 0.2:  # add
                signed = Decimal(int(position / abs(position)) * 1000)
            elif roll < 0.5:  # partial exit
                signed = -position / 2 if abs(position) >= 2000 else -position
            elif roll < 0.85:  # full exit
                signed = -position
            else:  # through flat
                signed = -position - Decimal(int(position / abs(position)) * 1000)
        position += signed
        price = Decimal("150") + Decimal(rng.randint(-500, 500)) / 1000
        fills.append(FillRecord(seq=seq, fill_id=f"f{seq}", client_order_id=f"c{seq}", strategy=strategy,
                                account="paper", instrument="USD_JPY", side="buy" if signed > 0 else "sell",
                                quantity=abs(signed), price=price, commission=Decimal(rng.randint(0, 30)) / 10,
                                time=START + timedelta(minutes=seq)))
    return fills


def split_at_flat(fills: list[FillRecord]) -> pd.DataFrame:
    """One row per piece of fill, a fill through flat cut in two, with the trade number of each piece."""
    rows, position, trade = [], Decimal(0), 0
    for f in fills:
        signed = f.quantity if f.side == "buy" else -f.quantity
        pieces = [signed]
        if position != 0 and (position > 0) != (signed > 0) and abs(signed) > abs(position):
            pieces = [-position, signed + position]
        # The closing piece's commission, rounded to the commission's precision; the rest to the next.
        quantum = Decimal(1).scaleb(min(f.commission.as_tuple().exponent, 0))
        first = (f.commission * abs(pieces[0]) / f.quantity).quantize(quantum) if len(pieces) == 2 else f.commission
        for piece, commission in zip(pieces, (first, f.commission - first)):
            if position == 0:
                trade += 1
            rows.append({"trade": trade, "signed": piece, "price": f.price, "commission": commission})
            position += piece
    frame = pd.DataFrame(rows)
    closed = frame.groupby("trade")["signed"].apply(lambda s: sum(s, Decimal(0)) == 0)
    return frame[frame["trade"].isin(closed[closed].index)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trades_and_figures_equal_a_recomputation_from_the_fills(seed):
    fills = random_fills(seed, 300)
    book = TradeBook()
    book.apply_all(fills)

    pieces = split_at_flat(fills)
    pieces["cash"] = [-s * p - c for s, p, c in zip(pieces["signed"], pieces["price"], pieces["commission"])]
    expected = [sum(group, Decimal(0)) for _, group in pieces.groupby("trade")["cash"]]
    assert [t.net_pnl for t in book.closed] == expected
    assert len(expected) > 50

    got = figures(book.closed)
    nets = np.array([float(x) for x in expected])
    wins, losses = nets[nets > 0], nets[nets < 0]
    assert got.trades == len(nets) and got.wins == len(wins) and got.losses == len(losses)
    assert got.net_pnl == sum(expected, Decimal(0))
    assert got.win_rate == pytest.approx(len(wins) / len(nets))
    assert got.expectancy == pytest.approx(nets.mean())
    assert got.profit_factor == pytest.approx(wins.sum() / -losses.sum())
    assert got.sharpe == pytest.approx(nets.mean() / nets.std(ddof=1))
    equity = np.concatenate(([0.0], np.cumsum(nets)))
    assert float(got.max_drawdown) == pytest.approx((np.maximum.accumulate(equity) - equity).max())


def test_a_replayed_fill_is_not_booked_twice_and_open_trades_are_not_figures():
    fills = random_fills(7, 40)
    once, twice = TradeBook(), TradeBook()
    once.apply_all(fills)
    twice.apply_all(fills[:25])
    twice.apply_all(fills[10:])  # a resume that overlaps what was booked
    assert twice.closed == once.closed
    assert once.open_quantity("s", "USD_JPY") == sum((f.signed_quantity for f in fills), Decimal(0))


def test_figures_without_losses_or_trades_leave_the_ratios_unset():
    assert figures([]).profit_factor is None and figures([]).sharpe is None and figures([]).win_rate == 0
    fills = [FillRecord(seq=i + 1, fill_id=str(i), client_order_id=str(i), strategy="s", account="a",
                        instrument="USD_JPY", side=side, quantity=Decimal(1000), price=Decimal(price),
                        commission=Decimal(0), time=START) for i, (side, price) in
             enumerate([("buy", "150"), ("sell", "151"), ("sell", "152"), ("buy", "151")])]
    book = TradeBook()
    book.apply_all(fills)
    got = figures(book.closed)
    assert [t.net_pnl for t in book.closed] == [Decimal(1000), Decimal(1000)]
    assert got.profit_factor is None and got.sharpe is None and got.max_drawdown == 0
    assert [t.side for t in book.closed] == ["buy", "sell"]
    assert book.closed[1].entry_price == Decimal(152) and book.closed[1].exit_price == Decimal(151)
