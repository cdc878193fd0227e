"""The in-process backtest keeps money by the position plane's rules: EUR_USD on a JPY account
through a USD_JPY quote, worked by hand, the report in yen; the same risk rules refuse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.backtest.report import format_summary, summarize
from services.backtest.trades import round_trips
from services.market_data.feeds.base import FeedTick
from services.order.brokers.paper import PaperSettings
from services.order.risk import RiskLimits
from services.position.ledger import Mark
from services.strategies.params import BaseParams
from services.strategies.sdk import EntrySignal, ExitSignal, Strategy

T0 = datetime(2024, 1, 9, 9, 0, tzinfo=timezone.utc)  # a Tuesday morning: no rollover in the run


@dataclass(frozen=True, slots=True, kw_only=True)
class _Params(BaseParams):
    instrument: str = "EUR_USD"
    stop_loss_pips: D = D(10**6)
    take_profit_pips: D = D(10**6)
    max_hold_minutes: int = 10**6
    warmup_bars: int = 1


class BuyOnceThenSell(Strategy):
    """Buys 10,000 at the first decision, sells at the next; then buys again whenever flat."""

    slug = "buy_once"
    Params = _Params
    timeframes = ("M1",)

    def decide_entry(self, view):
        return EntrySignal(side="buy", quantity=D(10000), reason="test")

    def exit_signal(self, view, position):
        return ExitSignal(reason="test", rule="signal")


def tick(seconds: int, bid: str, ask: str) -> FeedTick:
    return FeedTick(instrument="EUR_USD", time=T0 + timedelta(seconds=seconds), bid=D(bid), ask=D(ask))


async def ticks(items):
    for item in items:
        yield item


TICKS = [tick(0, "1.0850", "1.0852"),
         tick(60, "1.0850", "1.0852"),   # closes 09:00: decision 1, buy
         tick(70, "1.0860", "1.0862"),   # the buy fills at the ask 1.0862
         tick(120, "1.0900", "1.0902"),  # closes 09:01: decision 2, sell (the exit)
         tick(130, "1.0910", "1.0912")]  # the sell fills at the bid 1.0910

SETTINGS = dict(starting_cash=D(10_000_000), currency="JPY",
                conversion_quotes=(Mark("USD_JPY", D("150.00"), D("150.04"), T0),),
                paper=PaperSettings(commission_per_unit=D("0.0001")))  # 1 USD a fill of 10,000


async def test_eur_usd_on_a_jpy_account_by_hand():
    result = await InProcessBacktest(BuyOnceThenSell(_Params()), BacktestSettings(**SETTINGS)).run(ticks(TICKS))
    assert [(f.side, f.price) for f in result.fills] == [("buy", D("1.0862")), ("sell", D("1.0910"))]
    # realized (1.0910 - 1.0862) x 10,000 = 48 USD, a gain at the USD_JPY bid: 48 x 150.00 = 7,200 JPY;
    # commission 2 USD, a cost at the ask: 2 x 150.04 = 300.08 JPY; net 6,899.92 JPY
    account = result.account
    assert (result.currency, account.realized_pnl, account.commission) == ("JPY", D(7200), D("300.08"))
    assert account.balance == D("10006899.92") and account.unconverted == ()
    trades, _ = round_trips(result.fills)
    summary = summarize(trades, result.curve, D(10_000_000), account=account, currency=result.currency)
    assert (summary.net_pnl, summary.commission) == (D("6899.92"), D("300.08"))
    assert trades[0].net_pnl == D(46)  # the trade itself stays in USD: 48 - 2
    text = format_summary(summary, title="t")
    assert "net PnL                     6,899.92 JPY" in text and "commission                  300.08 JPY" in text


async def test_without_a_conversion_quote_the_money_stays_unconverted_and_entries_stop():
    settings = BacktestSettings(**{**SETTINGS, "conversion_quotes": ()})
    more = TICKS + [tick(180, "1.0910", "1.0912"), tick(240, "1.0910", "1.0912")]  # decisions 3 and 4 buy again
    result = await InProcessBacktest(BuyOnceThenSell(_Params()), settings).run(ticks(more))
    assert result.account.balance == D(10_000_000)
    assert result.account.unconverted == (("USD", D(46)),)
    assert [reason.split(":")[0] for _, reason in result.rejected] == ["risk.unconverted_pnl"] * 2
    summary = summarize([], result.curve, D(10_000_000), account=result.account, currency="JPY")
    assert "NOT converted" in format_summary(summary, title="t")


async def test_the_daily_loss_limit_refuses_in_the_backtest_too():
    # sell lower than bought: (1.0850 - 1.0862) x 10,000 = -12 USD -> x 150.04 = -1,800.48 JPY, plus 300.08
    losing = [tick(0, "1.0850", "1.0852"), tick(60, "1.0850", "1.0852"), tick(70, "1.0860", "1.0862"),
              tick(120, "1.0850", "1.0852"), tick(130, "1.0850", "1.0852"),
              tick(180, "1.0850", "1.0852"), tick(240, "1.0850", "1.0852")]
    settings = BacktestSettings(**SETTINGS, limits=RiskLimits(max_daily_loss=D(2000)))
    result = await InProcessBacktest(BuyOnceThenSell(_Params()), settings).run(ticks(losing))
    assert result.account.balance == D("9997899.44")  # 10,000,000 - 1,800.48 - 300.08
    (_, reason), _ = result.rejected  # decisions 3 and 4
    assert reason.startswith("risk.daily_loss_limit: realized loss today 2100.56 JPY (trading day 2024-01-09")
