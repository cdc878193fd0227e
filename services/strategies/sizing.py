"""Sizing by risk: trade the quantity whose stop-loss would cost a chosen fraction of equity.

    quantity = equity x risk_fraction / (|entry_price - stop_price| x quote_to_account)

- `equity` is the account's, in the account's currency (the position plane's figure);
- `risk_fraction` is what one stopped-out trade may cost, e.g. 0.01 for 1 %;
- the stop distance is in the instrument's quote currency per unit; `quote_to_account`
  turns it into the account's currency: 1 when the quote currency is the account's
  (USD_JPY on a JPY account), else the price of the quote currency in the account's,
  the side a loss would be bought at (the ask of USD_JPY for EUR_USD on a JPY account),
  as the position plane converts losses;
- the result is rounded DOWN to the instrument's `step` (never more risk than asked) and
  capped at `max_quantity`; 0 means the budget does not buy one step: do not enter.

Worked example: 10,000,000 JPY equity, 1 % risk = 100,000 JPY; EUR_USD bought at 1.0850
with the stop at 1.0800 loses 0.0050 USD a unit, x 150.04 (USD_JPY ask) = 0.7502 JPY; so
100,000 / 0.7502 = 133,297.8 units, 133,000 in steps of 1,000.

Slippage past the stop and commission are not in the formula: leave room for them in the
fraction. The order plane's limits still apply to what comes out.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal


def size_by_risk(*, equity: Decimal, risk_fraction: Decimal, entry_price: Decimal, stop_price: Decimal,
                 quote_to_account: Decimal = Decimal(1), step: Decimal = Decimal(1),
                 max_quantity: Decimal | None = None) -> Decimal:
    """The quantity to trade (positive, whichever the side); ValueError with a sentence on bad input."""
    for name, value in (("equity", equity), ("entry_price", entry_price), ("stop_price", stop_price),
                        ("quote_to_account", quote_to_account), ("step", step)):
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise ValueError(f"size_by_risk: {name} must be a positive Decimal, got {value!r}")
    if not isinstance(risk_fraction, Decimal) or not 0 < risk_fraction <= 1:
        raise ValueError(f"size_by_risk: risk_fraction must be a Decimal above 0 and at most 1, got {risk_fraction!r}")
    distance = abs(entry_price - stop_price)
    if distance == 0:
        raise ValueError(f"size_by_risk: the stop {stop_price} is at the entry price: no distance to size by")
    raw = equity * risk_fraction / (distance * quote_to_account)
    quantity = (raw / step).to_integral_value(rounding=ROUND_DOWN) * step
    if max_quantity is not None and quantity > max_quantity:
        quantity = (max_quantity / step).to_integral_value(rounding=ROUND_DOWN) * step
    return quantity
