"""Pre-trade risk: pure checks over an order and the exposure it would change.

Every rule is a number in `RiskLimits` (from QUANTMESH_RISK_* variables) and every
refusal names the rule and the numbers, so a trader can tell at once what to change.
Rules about money (unconverted money, the daily loss, drawdowns, consecutive losses) and
the count of open positions stop new risk only: an order that reduces the strategy's
position always passes them, because blocking an exit makes a bad day worse.

The order of the rules: the size rules (order, strategy position, account position,
each with its per-instrument override), then for orders that do not reduce: open
positions, unconverted money, the daily loss limit, the drawdown from the peak, the
drawdown over the last N days, consecutive losses.

The account's money figures are in its currency and come from the position plane
(`AccountRisk`); without them (QUANTMESH_POSITIONS_SOURCE=own_book) only the size rules
and the count of open positions this plane knows apply.

"Today" is the position plane's current trading day: the day of the newest quote or fill
it has seen (market time, so a backtest rolls days as live does). Until the first quote
after the boundary arrives, the day that ended still counts: a stale day can only refuse,
never let through, what a fresh one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.common.clock import Clock
from services.common.config import ConfigError, Env
from services.common.per_instrument import per_instrument
from services.common.tradingday import DAYS_STREAMED, DayFigures, recent_peak
from services.common.wire import trimmed_decimal_text as money
from services.order.intents import Intent

Overrides = tuple[tuple[str, Decimal], ...]  # (instrument, limit), sorted


def _override(table: Overrides, instrument: str, default: Decimal) -> tuple[Decimal, str]:
    """The limit for `instrument` and the words naming where it comes from."""
    for name, limit in table:
        if name == instrument:
            return limit, f" for {instrument}"
    return default, ""


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskLimits:
    max_order_quantity: Decimal = Decimal("1000000")
    max_position_per_instrument: Decimal = Decimal("5000000")
    max_position_per_strategy: Decimal = Decimal("2000000")
    max_drawdown_fraction: Decimal = Decimal("0.2")
    max_consecutive_losses: int = 5
    max_orders_per_second: Decimal = Decimal("20")
    # Per-instrument overrides of the three size limits: units differ (0.5 BTC, 500,000 USD).
    max_order_quantity_by_instrument: Overrides = ()
    max_position_per_instrument_by_instrument: Overrides = ()
    max_position_per_strategy_by_instrument: Overrides = ()
    #: Open (strategy, instrument) positions of the account; an order opening one more is refused.
    max_open_positions: int = 50
    #: Realized loss today (net of commission, with financing), in the account's currency; None: no amount rule.
    max_daily_loss: Decimal | None = None
    #: The same as a fraction of the equity the trading day opened with.
    max_daily_loss_fraction: Decimal = Decimal("0.05")
    #: Drawdown from the highest equity of the last `recent_drawdown_days` trading days.
    recent_drawdown_days: int = 5
    max_recent_drawdown_fraction: Decimal = Decimal("0.1")

    def order_limit(self, instrument: str) -> tuple[Decimal, str]:
        return _override(self.max_order_quantity_by_instrument, instrument, self.max_order_quantity)

    def instrument_limit(self, instrument: str) -> tuple[Decimal, str]:
        return _override(self.max_position_per_instrument_by_instrument, instrument,
                          self.max_position_per_instrument)

    def strategy_limit(self, instrument: str) -> tuple[Decimal, str]:
        return _override(self.max_position_per_strategy_by_instrument, instrument, self.max_position_per_strategy)

    @classmethod
    def from_env(cls, env: Env) -> "RiskLimits":
        def positive(name: str, default: Decimal) -> Decimal:
            value = env.decimal(name, default)
            if value <= 0:
                raise ConfigError(f"{name}={value} must be greater than zero")
            return value

        def fraction(name: str, default: Decimal) -> Decimal:
            value = positive(name, default)
            if value > 1:
                raise ConfigError(f"{name}={value} must be between 0 and 1")
            return value

        d = cls()  # the defaults (slots hide them as class attributes)
        daily_loss = env.optional("QUANTMESH_RISK_MAX_DAILY_LOSS")
        return cls(
            max_order_quantity=positive("QUANTMESH_RISK_MAX_ORDER_QUANTITY", d.max_order_quantity),
            max_position_per_instrument=positive("QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT",
                                                 d.max_position_per_instrument),
            max_position_per_strategy=positive("QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY",
                                               d.max_position_per_strategy),
            max_drawdown_fraction=fraction("QUANTMESH_RISK_MAX_DRAWDOWN_FRACTION", d.max_drawdown_fraction),
            max_consecutive_losses=env.int("QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES", d.max_consecutive_losses,
                                           minimum=1),
            max_orders_per_second=positive("QUANTMESH_RISK_MAX_ORDERS_PER_SECOND", d.max_orders_per_second),
            max_order_quantity_by_instrument=per_instrument(
                env, "QUANTMESH_RISK_MAX_ORDER_QUANTITY_BY_INSTRUMENT", positive=True),
            max_position_per_instrument_by_instrument=per_instrument(
                env, "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT_BY_INSTRUMENT", positive=True),
            max_position_per_strategy_by_instrument=per_instrument(
                env, "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY_BY_INSTRUMENT", positive=True),
            max_open_positions=env.int("QUANTMESH_RISK_MAX_OPEN_POSITIONS", d.max_open_positions, minimum=1),
            max_daily_loss=None if daily_loss is None else positive("QUANTMESH_RISK_MAX_DAILY_LOSS", Decimal(0)),
            max_daily_loss_fraction=fraction("QUANTMESH_RISK_MAX_DAILY_LOSS_FRACTION", d.max_daily_loss_fraction),
            # The position plane streams DAYS_STREAMED days of figures: the longest window it can judge.
            recent_drawdown_days=env.int("QUANTMESH_RISK_RECENT_DRAWDOWN_DAYS", d.recent_drawdown_days, minimum=1,
                                         maximum=DAYS_STREAMED),
            max_recent_drawdown_fraction=fraction("QUANTMESH_RISK_MAX_RECENT_DRAWDOWN_FRACTION",
                                                  d.max_recent_drawdown_fraction),
        )


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    allowed: bool
    rule: str = ""
    reason: str = ""


PASS = RiskVerdict(True)


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountRisk:
    """The account's money as the position plane sees it, in the account's currency."""

    currency: str
    equity: Decimal
    days: tuple[DayFigures, ...] = ()  # oldest first, the current trading day last
    unconverted: tuple[str, ...] = ()  # what the figures leave out, each as "12.5 USD (no USD_JPY quote yet)"


@dataclass(frozen=True, kw_only=True, slots=True)
class Exposure:
    """What the order would change: signed positions before it, and the account's health."""

    strategy_position: Decimal
    instrument_position: Decimal
    drawdown_fraction: Decimal
    consecutive_losses: int
    # Set when the figures cannot be trusted for new risk (the position plane is silent): why.
    stale_reason: str = ""
    open_positions: int = 0  # of the whole account, before the order
    account: AccountRisk | None = None  # None: no money figures known (sizes only)
    # Ledger/venue differences reconciliation holds for an operator (entries stop while any is held).
    reconciliation_blocks: tuple[str, ...] = ()


def reduces(position: Decimal, signed_quantity: Decimal) -> bool:
    """True when the order shrinks the position without flipping it."""
    return position != 0 and (position > 0) != (signed_quantity > 0) and abs(signed_quantity) <= abs(position)


def check_order(intent: Intent, exposure: Exposure, limits: RiskLimits, *, reducing: bool) -> RiskVerdict:
    """The static rules (not the order rate, which needs a clock), in a fixed order."""
    verdict = _sizes(intent, exposure, limits)
    if verdict.allowed and not reducing:
        verdict = _new_risk(intent, exposure, limits)
    return verdict


def _sizes(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict:
    q = intent.quantity
    limit, where = limits.order_limit(intent.instrument)
    if q > limit:
        return RiskVerdict(False, "risk.max_order_quantity", f"quantity {q} exceeds max_order_quantity {limit}{where}")
    signed = intent.signed_quantity
    for rule, name, before, (limit, where) in (
        ("risk.max_position_per_strategy", f"strategy {intent.strategy_slug} position in {intent.instrument}",
         exposure.strategy_position, limits.strategy_limit(intent.instrument)),
        ("risk.max_position_per_instrument", f"account position in {intent.instrument}",
         exposure.instrument_position, limits.instrument_limit(intent.instrument)),
    ):
        after = before + signed
        # An order that brings the position closer to flat is never refused by size.
        if abs(after) > limit and abs(after) > abs(before):
            return RiskVerdict(False, rule, f"{name} would go from {before} to {after}, beyond "
                                            f"{rule.removeprefix('risk.')} {limit}{where}")
    return PASS


_ONLY_REDUCING = "only position-reducing orders pass"


def _open_positions(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict | None:
    if exposure.strategy_position == 0 and exposure.open_positions >= limits.max_open_positions:
        return RiskVerdict(False, "risk.max_open_positions",
                           f"the account has {exposure.open_positions} open positions, max_open_positions is "
                           f"{limits.max_open_positions}: strategy {intent.strategy_slug} cannot open one in "
                           f"{intent.instrument}; orders on positions already open pass")
    return None


def _unconverted(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict | None:
    account = exposure.account
    if account is not None and account.unconverted:
        return RiskVerdict(False, "risk.unconverted_pnl",
                           f"the account's figures leave out {', '.join(account.unconverted)} that no quote "
                           f"converts into {account.currency} yet, so its losses and drawdown are unknown; "
                           f"{_ONLY_REDUCING} until market data quotes the pair")
    return None


def _daily_loss(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict | None:
    account = exposure.account
    if account is None or not account.days:
        return None
    today = account.days[-1]
    loss, c = -today.realized_pnl, account.currency
    if loss <= 0:
        return None
    if limits.max_daily_loss is not None and loss >= limits.max_daily_loss:
        limit = f"max_daily_loss {limits.max_daily_loss} {c}"
    elif loss >= (allowed := limits.max_daily_loss_fraction * today.opening_equity):
        limit = (f"max_daily_loss_fraction {limits.max_daily_loss_fraction} of the day's opening equity "
                 f"{money(today.opening_equity)} ({money(allowed)} {c})")
    else:
        return None
    # Figures without the trailing zeros of arithmetic, as the exposure stream carries them, so a
    # backtest's sentence and a live one read the same.
    return RiskVerdict(False, "risk.daily_loss_limit",
                       f"realized loss today {money(loss)} {c} (trading day {today.day}) reaches {limit}; "
                       f"{_ONLY_REDUCING} "
                       f"until the day ends at {today.day.end:%Y-%m-%d %H:%M} UTC")


def _drawdown(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict | None:
    if exposure.drawdown_fraction >= limits.max_drawdown_fraction:
        return RiskVerdict(False, "risk.max_drawdown",
                           f"account drawdown {exposure.drawdown_fraction} reaches max_drawdown_fraction "
                           f"{limits.max_drawdown_fraction}; {_ONLY_REDUCING}")
    return None


def _recent_drawdown(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict | None:
    account = exposure.account
    if account is None or not account.days:
        return None
    days = limits.recent_drawdown_days
    peak = recent_peak(account.days, account.days[-1].day.date, days, account.equity)
    fraction = (peak - account.equity) / peak if peak > 0 else Decimal(0)
    if fraction >= limits.max_recent_drawdown_fraction:
        return RiskVerdict(False, "risk.max_recent_drawdown",
                           f"account drawdown over the last {days} days {fraction:.6f} (peak {money(peak)}, equity "
                           f"{money(account.equity)} {account.currency}) reaches max_recent_drawdown_fraction "
                           f"{limits.max_recent_drawdown_fraction}; {_ONLY_REDUCING}")
    return None


def _consecutive_losses(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict | None:
    if exposure.consecutive_losses >= limits.max_consecutive_losses:
        return RiskVerdict(False, "risk.max_consecutive_losses",
                           f"strategy {intent.strategy_slug} has {exposure.consecutive_losses} consecutive "
                           f"losses, max_consecutive_losses is {limits.max_consecutive_losses}; {_ONLY_REDUCING}")
    return None


#: The rules that stop new risk only, in the order they are checked.
_NEW_RISK_RULES = (_open_positions, _unconverted, _daily_loss, _drawdown, _recent_drawdown, _consecutive_losses)


def _new_risk(intent: Intent, exposure: Exposure, limits: RiskLimits) -> RiskVerdict:
    for rule in _NEW_RISK_RULES:
        verdict = rule(intent, exposure, limits)
        if verdict is not None:
            return verdict
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
