"""Pre-trade: the guard (control flags) and the risk rules give one verdict per intent.

Everything it reads is local: the flags from the FlagsFollower's snapshot, exposure from
an ExposureSource (the position plane's streamed view plus this plane's own recent fills),
the own book for "does this order reduce", and a token bucket per strategy. No RPC and no
database round trip sit between an intent and its verdict.

Order of the checks, each refusal naming its rule: reduce_only, guard, no_pyramiding
(an entry that must not add, judged on this plane's own fills and working orders, which
never lag), exposure staleness (entries only), the static risk limits (sizes with their per-instrument
overrides; for orders that do not reduce: open positions, unconverted money, the daily
loss limit, the drawdowns, consecutive losses: services/order/risk.py), the order rate.
The money figures come with the exposure (the position plane's stream or the in-process
ledger), so the daily loss and the N-day drawdown cost no call per order either.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.clock import Clock
from services.common.vocabulary import OrderType, StrategyRole
from services.order.exposure import ExposureSource
from services.order.intents import Intent
from services.order.positions import OwnBook
from services.order.records import OrderRecord
from services.order.risk import Exposure, OrderRateLimiter, RiskLimits, RiskVerdict, check_order, reduces

RULE_EXPOSURE_STALE = "risk.exposure_stale"
RULE_RECONCILIATION = "risk.reconciliation"
RULE_NO_PYRAMIDING = "risk.no_pyramiding"


class PreTrade:
    def __init__(self, *, flags, exposure: ExposureSource, limits: RiskLimits, clock: Clock, book: OwnBook,
                 working: Callable[[], list[OrderRecord]] = list) -> None:
        self._flags = flags
        self._working = working  # the journal's working orders
        self._exposure = exposure
        self._limits = limits
        self._book = book
        self._rate = OrderRateLimiter(limits.max_orders_per_second, clock)

    async def verdict(self, intent: Intent, *, recorded_fill_seq: int, operator_exit: bool = False) -> RiskVerdict:
        """`operator_exit`: an operator's flatten, which passes the guard (a lock is when it is needed
        most) and the order rate, but is still only let through if it reduces."""
        own = self._book.strategy(intent.account, intent.strategy_slug, intent.instrument)
        reducing = reduces(own, intent.signed_quantity)
        if (intent.reduce_only or operator_exit) and not reducing:
            return RiskVerdict(False, "risk.reduce_only",
                               f"reduce_only {intent.side} {intent.quantity} would not reduce strategy "
                               f"{intent.strategy_slug} position {own} in {intent.instrument}")
        if not operator_exit:
            guard = self._flags.verdict(intent.strategy_slug, intent.role, reducing)
            if not guard.allowed:
                return RiskVerdict(False, guard.rule, guard.reason)
        if intent.no_pyramiding and (adding := self._adds(intent, own)):
            return RiskVerdict(False, RULE_NO_PYRAMIDING, adding)
        # An order that reduces is judged on sizes alone (PnL rules never stop it), and the view plus
        # this plane's own fills past it give the sizes exactly whether or not the view has caught up:
        # so it never waits for the position plane. Only an entry needs the PnL of every recorded fill.
        exposure = await self._exposure.exposure(intent.account, intent.strategy_slug, intent.instrument,
                                                 recorded_fill_seq=None if reducing else recorded_fill_seq)
        if exposure.stale_reason:
            if not reducing:
                return RiskVerdict(False, RULE_EXPOSURE_STALE,
                                   f"{exposure.stale_reason}: entries are refused until the position plane's view "
                                   "is fresh again; orders that reduce the strategy's position still pass")
            # An exit is judged on sizes this plane knows exactly; PnL rules never stop a reducing order.
            exposure = Exposure(strategy_position=own,
                                instrument_position=self._book.instrument(intent.account, intent.instrument),
                                drawdown_fraction=exposure.drawdown_fraction, consecutive_losses=0)
        if exposure.reconciliation_blocks and not reducing:
            return RiskVerdict(False, RULE_RECONCILIATION,
                               "the ledger and the venue disagree and reconciliation holds it for an operator: "
                               + "; ".join(exposure.reconciliation_blocks) + ". Entries are refused until it is "
                               "decided (Position.Reconcile with apply_adjustments, or a fix at the venue); "
                               "orders that reduce the strategy's position still pass")
        verdict = check_order(intent, exposure, self._limits, reducing=reducing)
        if not verdict.allowed or operator_exit:
            return verdict
        return self._rate.take(intent.strategy_slug)

    def _adds(self, intent: Intent, own) -> str:
        """Why this entry would add to the strategy's position on its side ("" if it would not)."""
        sign = intent.signed_quantity > 0
        if own != 0 and (own > 0) == sign:
            return (f"{intent.strategy_slug} is already {'long' if own > 0 else 'short'} {abs(own)} "
                    f"{intent.instrument}; this {intent.side} entry would add to it and asks not to "
                    "(no_pyramiding: its worker decided on a view of the position older than the fills)")
        for order in self._working():
            other = order.intent
            if (other.client_order_id != intent.client_order_id and other.role == StrategyRole.ENTRY
                    and other.order_type == OrderType.MARKET and not other.reduce_only
                    and other.side == intent.side and other.strategy_slug == intent.strategy_slug
                    and other.instrument == intent.instrument and other.account == intent.account):
                return (f"{intent.strategy_slug}'s {other.side} entry {other.client_order_id} in {intent.instrument} "
                        f"is still working; this one would add to it and asks not to (no_pyramiding)")
        return ""
