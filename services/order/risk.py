"""Pre-trade risk: pure checks over an order and the exposure it would change.

Every rule is a number in `RiskLimits` (from QUANTMESH_RISK_* variables) and every
refusal names the rule and the numbers, so a trader can tell at once what to change.
Drawdown and consecutive-loss rules stop new risk only: an order that reduces the
strategy's position always passes them, because blocking an exit makes a bad day worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.common.clock import Clock
from services.common.config import ConfigError, Env
from services.order.intents import Intent


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskLimits:
    max_order_quantity: Decimal = Decimal("1000000")
    max_position_per_instrument: Decimal = Decimal("5000000")
    max_position_per_strategy: Decimal = Decimal("2000000")
    max_drawdown_fraction: Decimal = Decimal("0.2")
    max_consecutive_losses: int = 5
    max_orders_per_second: Decimal = Decimal("20")

    @classmethod
    def from_env(cls, env: Env) -> "RiskLimits":
        def positive(name: str, default: Decimal) -> Decimal:
            value = env.decimal(name, default)
            if value <= 0:
                raise ConfigError(f"{name}={value} must be greater than zero")
            return value

        d = cls()  # the defaults (slots hide them as class attributes)
        fraction = positive("QUANTMESH_RISK_MAX_DRAWDOWN_FRACTION", d.max_drawdown_fraction)
        if fraction > 1:
            raise ConfigError(f"QUANTMESH_RISK_MAX_DRAWDOWN_FRACTION={fraction} must be between 0 and 1")
        return cls(
            max_order_quantity=positive("QUANTMESH_RISK_MAX_ORDER_QUANTITY", d.max_order_quantity),
            max_position_per_instrument=positive("QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT",
                                                 d.max_position_per_instrument),
            max_position_per_strategy=positive("QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY",
                                               d.max_position_per_strategy),
            max_drawdown_fraction=fraction,
            max_consecutive_losses=env.int("QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES", d.max_consecutive_losses,
                                           minimum=1),
            max_orders_per_second=positive("QUANTMESH_RISK_MAX_ORDERS_PER_SECOND", d.max_orders_per_second),
        )


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    allowed: bool
    rule: str = ""
    reason: str = ""


PASS = RiskVerdict(True)


@dataclass(frozen=True, kw_only=True, slots=True)
class Exposure:
    """What the order would change: signed positions before it, and the account's health."""

    strategy_position: Decimal
    instrument_position: Decimal
    drawdown_fraction: Decimal
    consecutive_losses: int
    # Set when the figures cannot be trusted for new risk (the position plane is silent): why.
    stale_reason: str = ""


def reduces(position: Decimal, signed_quantity: Decimal) -> bool:
    """True when the order shrinks the position without flipping it."""
    return position != 0 and (position > 0) != (signed_quantity > 0) and abs(signed_quantity) <= abs(position)


def check_order(intent: Intent, exposure: Exposure, limits: RiskLimits, *, reducing: bool) -> RiskVerdict:
    """The static rules (not the order rate, which needs a clock), in a fixed order."""
    q = intent.quantity
    if q > limits.max_order_quantity:
        return RiskVerdict(False, "risk.max_order_quantity",
                           f"quantity {q} exceeds max_order_quantity {limits.max_order_quantity}")
    signed = intent.signed_quantity
    for rule, name, before, limit in (
        ("risk.max_position_per_strategy", f"strategy {intent.strategy_slug} position in {intent.instrument}",
         exposure.strategy_position, limits.max_position_per_strategy),
        ("risk.max_position_per_instrument", f"account position in {intent.instrument}",
         exposure.instrument_position, limits.max_position_per_instrument),
    ):
        after = before + signed
        # An order that brings the position closer to flat is never refused by size.
        if abs(after) > limit and abs(after) > abs(before):
            return RiskVerdict(False, rule, f"{name} would go from {before} to {after}, beyond "
                                            f"{rule.removeprefix('risk.')} {limit}")
    if not reducing:
        if exposure.drawdown_fraction >= limits.max_drawdown_fraction:
            return RiskVerdict(False, "risk.max_drawdown",
                               f"account drawdown {exposure.drawdown_fraction} reaches max_drawdown_fraction "
                               f"{limits.max_drawdown_fraction}; only position-reducing orders pass")
        if exposure.consecutive_losses >= limits.max_consecutive_losses:
            return RiskVerdict(False, "risk.max_consecutive_losses",
                               f"strategy {intent.strategy_slug} has {exposure.consecutive_losses} consecutive "
                               f"losses, max_consecutive_losses is {limits.max_consecutive_losses}; "
                               "only position-reducing orders pass")
    return PASS


class OrderRateLimiter:
    """A token bucket per strategy on the injected clock (simulated time in a backtest).

    The bucket holds one second's worth of orders, so a strategy may burst up to
    its rate and then sustain it.
    """

    def __init__(self, rate_per_second: Decimal, clock: Clock) -> None:
        self._rate = float(rate_per_second)
        self._capacity = max(1.0, self._rate)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # slug -> (tokens, at)

    def take(self, slug: str) -> RiskVerdict:
        now = self._clock.now().timestamp()
        tokens, at = self._buckets.get(slug, (self._capacity, now))
        tokens = min(self._capacity, tokens + max(0.0, now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[slug] = (tokens, now)
            return RiskVerdict(False, "risk.order_rate",
                               f"strategy {slug} exceeds max_orders_per_second {self._rate:g}; "
                               f"next order allowed in {(1.0 - tokens) / self._rate:.3f} s")
        self._buckets[slug] = (tokens - 1.0, now)
        return PASS
