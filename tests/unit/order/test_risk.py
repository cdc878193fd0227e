from datetime import timedelta
from decimal import Decimal

import pytest

from services.common.clock import SimulatedClock
from services.common.config import ConfigError, Env
from services.order.risk import Exposure, OrderRateLimiter, RiskLimits, check_order, reduces

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
