"""Money in the account's currency, worked by hand: EUR_USD on a JPY account through USD_JPY."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from services.position.currency import SAME_CURRENCY, Converter, Rate
from services.position.ledger import Ledger, LedgerFill, Mark

T0 = datetime(2024, 3, 5, 9, 0, tzinfo=timezone.utc)  # a Tuesday, far from the 17:00 New York rollover


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def fill(n: int, side: str, qty: str, price: str, commission: str, *, instrument="EUR_USD", strategy="s1",
         minute: int | None = None) -> LedgerFill:
    return LedgerFill(fill_id=f"f{n}", account="paper", instrument=instrument, strategy=strategy, side=side,
                      quantity=D(qty), price=D(price), commission=D(commission), time=at(minute or n))


def mark(instrument: str, bid: str, ask: str, minute: int) -> Mark:
    return Mark(instrument=instrument, bid=D(bid), ask=D(ask), time=at(minute))


def test_eur_usd_on_a_jpy_account_converts_through_usd_jpy_by_hand():
    ledger = Ledger(starting_cash=D("10000000"), currency="JPY")
    ledger.apply_mark(mark("USD_JPY", "150.00", "150.04", 1))

    # buy 10,000 EUR_USD @ 1.0850, commission 2 USD: nothing realized; the commission is a cost,
    # bought USD at the ask: 2 x 150.04 = 300.08 JPY
    out = ledger.apply_fill(fill(2, "buy", "10000", "1.0850", "2"))
    assert out.booking.rate == Rate("USD_JPY", D("150.00"), D("150.04"), at(1), inverse=False)
    assert (out.booking.pnl_account, out.booking.commission_account) == (D(0), D("300.08"))
    assert out.figures.balance == D("9999699.92")  # 10,000,000 - 300.08

    # EUR_USD marked 1.0900 / 1.0902: the long at the bid, (1.0900 - 1.0850) x 10,000 = 50 USD,
    # a gain, sold at the USD_JPY bid: 50 x 150.00 = 7,500 JPY
    [figures] = ledger.apply_mark(mark("EUR_USD", "1.0900", "1.0902", 3))
    assert figures.unrealized_pnl == D("7500")
    assert figures.equity == D("10007199.92")  # 9,999,699.92 + 7,500

    # USD_JPY moves to 151.00 / 151.04 and with it the unrealized: 50 x 151.00 = 7,550 JPY
    [figures] = ledger.apply_mark(mark("USD_JPY", "151.00", "151.04", 4))
    assert figures.unrealized_pnl == D("7550")
    assert figures.equity == D("10007249.92")

    # sell 10,000 @ 1.0920, commission 2 USD, at the rate of this fill (151.00 / 151.04):
    # realized (1.0920 - 1.0850) x 10,000 = 70 USD -> 70 x 151.00 = 10,570 JPY;
    # commission 2 x 151.04 = 302.08 JPY
    out = ledger.apply_fill(fill(5, "sell", "10000", "1.0920", "2"))
    assert (out.realized_pnl, out.booking.currency) == (D(70), "USD")
    assert (out.booking.pnl_account, out.booking.commission_account) == (D("10570"), D("302.08"))
    assert out.booking.rate.bid == D("151.00") and out.booking.rate.time == at(4)
    # balance = 10,000,000 + 10,570 - 300.08 - 302.08 = 10,009,967.84; flat, so equity too
    assert out.figures.balance == out.figures.equity == D("10009967.84")
    assert (out.figures.realized_pnl, out.figures.commission) == (D("10570"), D("602.16"))
    # the position keeps its own currency; the strategy's figures are the account's
    assert (out.position.realized_pnl, out.position.commission) == (D(70), D(4))
    assert ledger.strategy_figures("paper", "s1").realized_pnl_net == D("9967.84")

    # a losing short: sell 10,000 @ 1.0900, buy back @ 1.0950: -50 USD, a loss bought at the ask
    # 151.04: -7,552 JPY
    ledger.apply_fill(fill(6, "sell", "10000", "1.0900", "0"))
    out = ledger.apply_fill(fill(7, "buy", "10000", "1.0950", "0"))
    assert (out.realized_pnl, out.booking.pnl_account) == (D(-50), D("-7552"))
    assert out.figures.balance == D("10002415.84")  # 10,009,967.84 - 7,552


def test_usd_jpy_on_a_usd_account_divides_gain_by_the_ask_and_loss_by_the_bid():
    ledger = Ledger(starting_cash=D("100000"), currency="USD")
    ledger.apply_mark(mark("USD_JPY", "149.95", "150.00", 1))
    ledger.apply_fill(fill(2, "buy", "10000", "148.00", "0", instrument="USD_JPY"))
    # +1.5 JPY x 10,000 = 15,000 JPY gain: buying USD with it costs the ask: 15,000 / 150.00 = 100 USD
    out = ledger.apply_fill(fill(3, "sell", "10000", "149.50", "0", instrument="USD_JPY"))
    assert (out.realized_pnl, out.booking.pnl_account) == (D(15000), D(100))
    assert out.booking.rate.inverse
    # -14,995 JPY loss: selling USD for it gets the bid: -14,995 / 149.95 = -100 USD
    ledger.apply_fill(fill(4, "buy", "10000", "150.00", "0", instrument="USD_JPY"))
    out = ledger.apply_fill(fill(5, "sell", "10000", "148.5005", "0", instrument="USD_JPY"))
    assert (out.realized_pnl, out.booking.pnl_account) == (D("-14995"), D(-100))
    assert out.figures.balance == D(100000)


def test_money_without_a_rate_is_held_in_its_own_currency_and_converted_at_the_first_quote():
    ledger = Ledger(starting_cash=D("10000000"), currency="JPY")
    out = ledger.apply_fill(fill(1, "buy", "10000", "1.0850", "2"))
    assert out.booking.pending and out.booking.rate is None and out.booking.commission_account is None
    # never added in the wrong currency: the balance is untouched, the 2 USD listed as unconverted
    assert out.figures.balance == D("10000000")
    assert out.figures.unconverted == (("USD", D(-2)),)
    # a mark of EUR_USD: 30 USD of unrealized that cannot be converted either
    [figures] = ledger.apply_mark(mark("EUR_USD", "1.0880", "1.0882", 2))
    assert figures.unrealized_pnl == 0 and figures.unconverted == (("USD", D(28)),)  # -2 + 30
    assert ledger.take_bookkeeping().conversions == []

    # the first USD_JPY quote converts both: the commission at its ask, the gain at its bid
    [figures] = ledger.apply_mark(mark("USD_JPY", "150.00", "150.04", 3))
    assert figures.unconverted == ()
    assert figures.balance == D("9999699.92")  # 10,000,000 - 2 x 150.04
    assert figures.unrealized_pnl == D(4500)   # 30 x 150.00
    [converted] = ledger.take_bookkeeping().conversions
    assert (converted.key, converted.pending, converted.commission_account) == ("f1", False, D("300.08"))
    assert converted.rate.time == at(3)  # the quote it was converted at, recorded
    assert ledger.pending() == []


def test_the_rate_rules():
    jpy = Converter("JPY")
    quotes = {"USD_JPY": Mark("USD_JPY", D("150"), D("150.1"), T0)}
    assert jpy.rate("JPY", quotes) is SAME_CURRENCY and SAME_CURRENCY.convert(D("-3.5")) == D("-3.5")
    assert jpy.rate("EUR", quotes) is None and jpy.missing_pair("EUR") == "EUR_JPY"
    assert (jpy.converts("USD_JPY"), jpy.converts("EUR_USD"), jpy.converts("JPY_KRW")) == ("USD", None, "KRW")
    rate = jpy.rate("USD", quotes)
    assert (rate.convert(D(2)), rate.convert(D(-2)), rate.convert_cost(D(2))) == (D("300"), D("-300.2"), D("300.2"))
