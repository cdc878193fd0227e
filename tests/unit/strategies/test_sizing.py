"""Sizing by risk, by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.strategies.sdk import size_by_risk


def test_eur_usd_on_a_jpy_account():
    # 1 % of 10,000,000 JPY = 100,000 JPY; 1.0850 -> 1.0800 loses 0.0050 USD a unit x 150.04 = 0.7502 JPY;
    # 100,000 / 0.7502 = 133,297.79... -> 133,000 in steps of 1,000
    assert size_by_risk(equity=D(10_000_000), risk_fraction=D("0.01"), entry_price=D("1.0850"),
                        stop_price=D("1.0800"), quote_to_account=D("150.04"), step=D(1000)) == D(133_000)


def test_a_short_usd_jpy_with_its_stop_above_and_a_cap():
    # 0.5 % of 2,000,000 = 10,000 JPY; stop 0.40 JPY above 150.00: 25,000 units
    assert size_by_risk(equity=D(2_000_000), risk_fraction=D("0.005"), entry_price=D("150.00"),
                        stop_price=D("150.40")) == D(25_000)
    assert size_by_risk(equity=D(2_000_000), risk_fraction=D("0.005"), entry_price=D("150.00"),
                        stop_price=D("150.40"), max_quantity=D(20_500), step=D(1000)) == D(20_000)


def test_bitcoin_in_small_steps_and_a_budget_too_small():
    # 1 % of 1,000,000 JPY = 10,000; stop 200,000 JPY away: 0.05 BTC
    assert size_by_risk(equity=D(1_000_000), risk_fraction=D("0.01"), entry_price=D(9_000_000),
                        stop_price=D(8_800_000), step=D("0.0001")) == D("0.0500")
    assert size_by_risk(equity=D(1_000), risk_fraction=D("0.01"), entry_price=D(9_000_000),
                        stop_price=D(8_800_000), step=D("0.0001")) == 0


@pytest.mark.parametrize("changes, message", [
    ({"stop_price": D("1.0850")}, "the stop 1.0850 is at the entry price"),
    ({"risk_fraction": D("1.5")}, "risk_fraction must be a Decimal above 0 and at most 1"),
    ({"equity": D(-1)}, "equity must be a positive Decimal"),
    ({"step": 0.001}, "step must be a positive Decimal"),
])
def test_bad_input_is_refused_with_a_sentence(changes, message):
    args = dict(equity=D(10_000_000), risk_fraction=D("0.01"), entry_price=D("1.0850"), stop_price=D("1.0800"))
    with pytest.raises(ValueError, match=message):
        size_by_risk(**{**args, **changes})
