from datetime import datetime, timedelta, timezone
from decimal import Decimal
from decimal import Decimal as D

import pytest

from services.common.clock import SimulatedClock
from services.common.config import ConfigError, Env
from services.common.tradingday import DayFigures, TradingCalendar
from services.order.risk import AccountRisk, Exposure, OrderRateLimiter, RiskLimits, check_order, reduces

from tests.unit.order.conftest import START, intent

LIMITS = RiskLimits(max_order_quantity=Decimal(1_000_000), max_position_per_instrument=Decimal(3_000_000),
                    max_position_per_strategy=Decimal(2_000_000), max_drawdown_fraction=Decimal("0.2"),
                    max_consecutive_losses=3, max_orders_per_second=Decimal(2))


def exposure(strategy=0, instrument=0, drawdown="0", losses=0) -> Exposure:
    return Exposure(strategy_position=Decimal(strategy), instrument_position=Decimal(instrument),
                    drawdown_fraction=Decimal(drawdown), consecutive_losses=losses)


def test_limits_come_from_env_and_bad_values_name_the_variable():
    limits = RiskLimits.from_env(Env({"QUANTMESH_RISK_MAX_ORDER_QUANTITY": "500",
                                      "QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "7",
                                      "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "0.5"}))
    assert limits.max_order_quantity == Decimal(500) and limits.max_consecutive_losses == 7
    assert limits.max_orders_per_second == Decimal("0.5")
    assert RiskLimits.from_env(Env({})) == RiskLimits()
    for name, value in (("QUANTMESH_RISK_MAX_ORDER_QUANTITY", "-1"), ("QUANTMESH_RISK_MAX_DRAWDOWN_FRACTION", "1.5"),
                        ("QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY", "lots")):
        with pytest.raises(ConfigError, match=name):
            RiskLimits.from_env(Env({name: value}))


def test_max_order_quantity_names_both_numbers():
    verdict = check_order(intent(quantity=Decimal(5_000_000)), exposure(), LIMITS, reducing=False)
    assert (verdict.allowed, verdict.rule) == (False, "risk.max_order_quantity")
    assert verdict.reason == "quantity 5000000 exceeds max_order_quantity 1000000"


def test_max_position_per_strategy():
    verdict = check_order(intent(quantity=Decimal(600_000)), exposure(strategy=1_500_000, instrument=1_500_000),
                          LIMITS, reducing=False)
    assert verdict.rule == "risk.max_position_per_strategy"
    assert "from 1500000 to 2100000" in verdict.reason and "2000000" in verdict.reason


def test_max_position_per_instrument():
    verdict = check_order(intent(quantity=Decimal(600_000)), exposure(strategy=0, instrument=2_500_000),
                          LIMITS, reducing=False)
    assert verdict.rule == "risk.max_position_per_instrument"
    assert "from 2500000 to 3100000" in verdict.reason


def test_an_order_towards_flat_passes_the_size_rules_even_above_the_limit():
    verdict = check_order(intent(side="sell", quantity=Decimal(500_000)),
                          exposure(strategy=2_500_000, instrument=4_000_000), LIMITS, reducing=True)
    assert verdict.allowed


def test_drawdown_blocks_entries_but_not_reducing_exits():
    blocked = check_order(intent(), exposure(drawdown="0.25"), LIMITS, reducing=False)
    assert blocked.rule == "risk.max_drawdown" and "0.25" in blocked.reason and "0.2" in blocked.reason
    assert check_order(intent(side="sell"), exposure(strategy=1000, drawdown="0.25"), LIMITS, reducing=True).allowed


def test_consecutive_losses_block_entries_but_not_reducing_exits():
    blocked = check_order(intent(), exposure(losses=3), LIMITS, reducing=False)
    assert blocked.rule == "risk.max_consecutive_losses" and "3 consecutive losses" in blocked.reason
    assert check_order(intent(side="sell"), exposure(strategy=1000, losses=9), LIMITS, reducing=True).allowed
    assert check_order(intent(), exposure(losses=2), LIMITS, reducing=False).allowed


def test_reduces_means_smaller_without_flipping():
    assert reduces(Decimal(1000), Decimal(-1000)) and reduces(Decimal(-500), Decimal(200))
    assert not reduces(Decimal(1000), Decimal(-1001))  # flips
    assert not reduces(Decimal(0), Decimal(-1))
    assert not reduces(Decimal(1000), Decimal(10))


def test_order_rate_is_a_token_bucket_per_strategy_on_the_injected_clock():
    clock = SimulatedClock(START)
    bucket = OrderRateLimiter(Decimal(2), clock)
    assert bucket.take("a").allowed and bucket.take("a").allowed
    refused = bucket.take("a")
    assert (refused.allowed, refused.rule) == (False, "risk.order_rate")
    assert "max_orders_per_second 2" in refused.reason
    assert bucket.take("b").allowed  # another strategy has its own bucket
    clock.advance_to(START + timedelta(seconds=0.5))
    assert bucket.take("a").allowed and not bucket.take("a").allowed


# ----------------------------------------------------------------- issue 16's rules

FX = TradingCalendar.fx()
TODAY = FX.day_of(datetime(2024, 1, 10, 12, tzinfo=timezone.utc))  # Wednesday 10 January, from 22:00 UTC on the 9th


def day(on: int, opening: str, peak: str, realized: str) -> DayFigures:
    return DayFigures(day=FX.day_of(datetime(2024, 1, on, 12, tzinfo=timezone.utc)), opening_equity=D(opening),
                      peak_equity=D(peak), realized_pnl=D(realized))


def money(equity="10000000", days=(), unconverted=()) -> AccountRisk:
    return AccountRisk(currency="JPY", equity=D(equity), days=tuple(days), unconverted=tuple(unconverted))


def test_new_limits_come_from_env_with_per_instrument_overrides():
    limits = RiskLimits.from_env(Env({
        "QUANTMESH_RISK_MAX_ORDER_QUANTITY_BY_INSTRUMENT": "BTC_JPY=0.5, USD_JPY=500000",
        "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY_BY_INSTRUMENT": "BTC_JPY=1",
        "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT_BY_INSTRUMENT": "BTC_JPY=2",
        "QUANTMESH_RISK_MAX_OPEN_POSITIONS": "3", "QUANTMESH_RISK_MAX_DAILY_LOSS": "50000",
        "QUANTMESH_RISK_MAX_DAILY_LOSS_FRACTION": "0.02", "QUANTMESH_RISK_RECENT_DRAWDOWN_DAYS": "10",
        "QUANTMESH_RISK_MAX_RECENT_DRAWDOWN_FRACTION": "0.08"}))
    assert limits.max_order_quantity_by_instrument == (("BTC_JPY", D("0.5")), ("USD_JPY", D(500000)))
    assert limits.order_limit("BTC_JPY") == (D("0.5"), " for BTC_JPY")
    assert limits.order_limit("EUR_USD") == (D(1_000_000), "")
    assert (limits.strategy_limit("BTC_JPY"), limits.instrument_limit("BTC_JPY")) == ((D(1), " for BTC_JPY"),
                                                                                        (D(2), " for BTC_JPY"))
    assert (limits.max_open_positions, limits.max_daily_loss, limits.max_daily_loss_fraction) == (3, D(50000),
                                                                                                D("0.02"))
    assert (limits.recent_drawdown_days, limits.max_recent_drawdown_fraction) == (10, D("0.08"))
    defaults = RiskLimits()
    assert (defaults.max_open_positions, defaults.max_daily_loss, defaults.max_daily_loss_fraction) == (
        50, None, D("0.05"))
    assert (defaults.recent_drawdown_days, defaults.max_recent_drawdown_fraction) == (5, D("0.1"))
    for name, value, message in (
            ("QUANTMESH_RISK_MAX_ORDER_QUANTITY_BY_INSTRUMENT", "BTC_JPY:0.5", "INSTRUMENT=VALUE"),
            ("QUANTMESH_RISK_MAX_ORDER_QUANTITY_BY_INSTRUMENT", "BTC_JPY=-1", "must be a positive number"),
            ("QUANTMESH_RISK_MAX_ORDER_QUANTITY_BY_INSTRUMENT", "BTC_JPY=1,BTC_JPY=2", "names BTC_JPY twice"),
            ("QUANTMESH_RISK_RECENT_DRAWDOWN_DAYS", "32", "above the maximum 31"),
            ("QUANTMESH_RISK_MAX_DAILY_LOSS", "0", "must be greater than zero"),
            ("QUANTMESH_RISK_MAX_RECENT_DRAWDOWN_FRACTION", "2", "between 0 and 1")):
        with pytest.raises(ConfigError, match=f"{name}.*{message}"):
            RiskLimits.from_env(Env({name: value}))


def test_per_instrument_order_and_position_limits_name_the_instrument():
    limits = RiskLimits(max_order_quantity_by_instrument=(("BTC_JPY", D("0.5")),),
                        max_position_per_strategy_by_instrument=(("BTC_JPY", D(1)),),
                        max_position_per_instrument_by_instrument=(("BTC_JPY", D(2)),))
    btc = dict(instrument="BTC_JPY")
    verdict = check_order(intent(quantity=D("0.6"), **btc), exposure(), limits, reducing=False)
    assert (verdict.rule, verdict.reason) == ("risk.max_order_quantity",
                                              "quantity 0.6 exceeds max_order_quantity 0.5 for BTC_JPY")
    verdict = check_order(intent(quantity=D("0.5"), **btc), exposure(strategy="0.8", instrument="0.8"), limits,
                          reducing=False)
    assert (verdict.rule, verdict.reason) == (
        "risk.max_position_per_strategy", "strategy ma_cross position in BTC_JPY would go from 0.8 to 1.3, beyond "
                                          "max_position_per_strategy 1 for BTC_JPY")
    verdict = check_order(intent(quantity=D("0.5"), **btc), exposure(strategy=0, instrument="1.8"), limits,
                          reducing=False)
    assert verdict.reason == ("account position in BTC_JPY would go from 1.8 to 2.3, beyond "
                              "max_position_per_instrument 2 for BTC_JPY")
    # other instruments keep the general limits
    assert check_order(intent(quantity=D(900_000)), exposure(), limits, reducing=False).allowed


def test_max_open_positions_refuses_opening_one_more_but_not_adding_or_exiting():
    limits = RiskLimits(max_open_positions=3)
    full = Exposure(strategy_position=D(0), instrument_position=D(0), drawdown_fraction=D(0),
                    consecutive_losses=0, open_positions=3)
    verdict = check_order(intent(), full, limits, reducing=False)
    assert (verdict.rule, verdict.reason) == (
        "risk.max_open_positions", "the account has 3 open positions, max_open_positions is 3: strategy ma_cross "
                                   "cannot open one in USD_JPY; orders on positions already open pass")
    adding = Exposure(strategy_position=D(1000), instrument_position=D(1000), drawdown_fraction=D(0),
                      consecutive_losses=0, open_positions=3)
    assert check_order(intent(), adding, limits, reducing=False).allowed
    assert check_order(intent(side="sell"), adding, limits, reducing=True).allowed
    two = Exposure(strategy_position=D(0), instrument_position=D(0), drawdown_fraction=D(0), consecutive_losses=0,
                   open_positions=2)
    assert check_order(intent(), two, limits, reducing=False).allowed


def with_money(account: AccountRisk, strategy=0) -> Exposure:
    return Exposure(strategy_position=D(strategy), instrument_position=D(strategy), drawdown_fraction=D(0),
                    consecutive_losses=0, account=account)


def test_the_daily_loss_limit_as_an_amount_names_the_loss_the_day_and_when_it_ends():
    limits = RiskLimits(max_daily_loss=D(50000))
    today = day(10, "10000000", "10000000", "-50000")
    verdict = check_order(intent(), with_money(money("9950000", [today])), limits, reducing=False)
    assert (verdict.rule, verdict.reason) == (
        "risk.daily_loss_limit",
        "realized loss today 50000 JPY (trading day 2024-01-10 (from 2024-01-09 22:00 UTC)) reaches max_daily_loss "
        "50000 JPY; only position-reducing orders pass until the day ends at 2024-01-10 22:00 UTC")
    assert check_order(intent(side="sell"), with_money(money("9950000", [today]), strategy=1000), limits,
                       reducing=True).allowed
    almost = day(10, "10000000", "10000000", "-49999.99")
    assert check_order(intent(), with_money(money("9950000", [almost])), limits, reducing=False).allowed
    # yesterday's loss is yesterday's: the current day is the last one streamed
    assert check_order(intent(), with_money(money("9950000", [today, day(11, "9950000", "9950000", "0")])),
                       limits, reducing=False).allowed


def test_the_daily_loss_limit_as_a_fraction_of_the_opening_equity():
    limits = RiskLimits(max_daily_loss_fraction=D("0.05"), max_recent_drawdown_fraction=D(1))
    # opened at 2,000,000: 5 % is 100,000; 100,000.00 lost reaches it, 99,999 does not
    verdict = check_order(intent(), with_money(money("1900000", [day(10, "2000000", "2000000", "-100000.00")])),
                          limits, reducing=False)
    assert (verdict.rule, verdict.reason) == (
        "risk.daily_loss_limit",
        "realized loss today 100000 JPY (trading day 2024-01-10 (from 2024-01-09 22:00 UTC)) reaches "
        "max_daily_loss_fraction 0.05 of the day's opening equity 2000000 (100000 JPY); only position-reducing "
        "orders pass until the day ends at 2024-01-10 22:00 UTC")
    assert check_order(intent(), with_money(money("1900001", [day(10, "2000000", "2000000", "-99999")])),
                       limits, reducing=False).allowed


def test_the_drawdown_over_the_last_n_days_counts_the_window_only():
    limits = RiskLimits(recent_drawdown_days=3, max_recent_drawdown_fraction=D("0.1"), max_daily_loss_fraction=D(1))
    days = [day(6, "13000000", "13000000", "0"),   # outside a 3-day window ending on the 10th
            day(8, "11000000", "11000000", "0"),   # 8, 9, 10: inside
            day(10, "10000000", "10000000", "0")]
    # peak 11,000,000 on the 8th; equity 9,900,000: (11,000,000 - 9,900,000) / 11,000,000 = 0.1
    verdict = check_order(intent(), with_money(money("9900000", days)), limits, reducing=False)
    assert (verdict.rule, verdict.reason) == (
        "risk.max_recent_drawdown",
        "account drawdown over the last 3 days 0.100000 (peak 11000000, equity 9900000 JPY) reaches "
        "max_recent_drawdown_fraction 0.1; only position-reducing orders pass")
    assert check_order(intent(), with_money(money("9900001", days)), limits, reducing=False).allowed
    assert check_order(intent(side="sell"), with_money(money("9900000", days), strategy=1000), limits,
                       reducing=True).allowed
    wider = RiskLimits(recent_drawdown_days=5, max_recent_drawdown_fraction=D("0.2"), max_daily_loss_fraction=D(1))
    # five days reach the 6th's 13,000,000: (13,000,000 - 10,400,000) / 13,000,000 = 0.2
    assert check_order(intent(), with_money(money("10400000", days)), wider, reducing=False).rule == \
        "risk.max_recent_drawdown"


def test_unconverted_money_stops_entries_and_says_which_quote_is_missing():
    account = money(unconverted=["-2 USD (no USD_JPY quote yet)"])
    verdict = check_order(intent(), with_money(account), RiskLimits(), reducing=False)
    assert (verdict.rule, verdict.reason) == (
        "risk.unconverted_pnl",
        "the account's figures leave out -2 USD (no USD_JPY quote yet) that no quote converts into JPY yet, so its "
        "losses and drawdown are unknown; only position-reducing orders pass until market data quotes the pair")
    assert check_order(intent(side="sell"), with_money(account, strategy=1000), RiskLimits(), reducing=True).allowed
