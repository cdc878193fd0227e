"""Position servicer: protobuf <-> domain, request validation, no business rules."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

import grpc
from google.protobuf import duration_pb2

from quantmesh.common.v1 import common_pb2
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common import validation
from services.common.audit import AuditRecord, MemoryAudit
from services.common.auth import Role, current_identity
from services.common.errors import InvalidArgument, Unavailable
from services.common.wire import trimmed_decimal_text as decimal_text
from services.common.timeutil import to_timestamp
from services.common.tradingday import DayFigures
from services.position.currency import Converter
from services.position.engine import BrokerPosition, PositionEngine, PositionView
from services.position.ledger import AccountFigures, StrategyFigures
from services.position.store import AdjustmentEntry, EquitySample, PositionChange

log = logging.getLogger(__name__)

#: A ratio is not money: eight decimal places say it to a millionth of a percent (the exact
#: quotient has 28 digits, 32 with the exponent turned into digits).
_RATIO_PLACES = Decimal("1e-8")


def ratio_text(value: Decimal) -> str:
    """A ratio such as drawdown / peak equity, rounded up to eight places: the order plane's risk
    check reads it (max_drawdown_fraction), and rounding up never shows it less than it is."""
    return decimal_text(value.quantize(_RATIO_PLACES, rounding=ROUND_CEILING))

#: Roles needed when tokens are configured (docs/planes.md).
AUTH_POLICY = {"/quantmesh.position.v1.Position/Reconcile": frozenset({Role.OPERATOR})}

_DEFAULT_CURVE_LIMIT, _MAX_CURVE_LIMIT = 1000, 10_000
MAX_REASON_CHARS = 500
_FILTERS = {"strategy_slugs": (validation.SLUG, f"a strategy slug: use {validation.SLUG_FORM}"),
            "instruments": (validation.INSTRUMENT, validation.INSTRUMENT_FORM)}


class BrokerPositions(Protocol):
    async def positions(self, account: str) -> tuple[str, list[BrokerPosition]]: ...


def _check_names(field: str, values: Sequence[str]) -> None:
    """A strategy_slugs or instruments filter: every entry of the form such names have."""
    pattern, form = _FILTERS[field]
    validation.names(field, values, pattern=pattern, form=form)


def _check_account(account: str) -> None:
    if account:
        validation.name("account", account, form=f"an account name ({validation.NAME_FORM}); leave it empty for "
                                                  "the default account")


def position_record(view: PositionView) -> position_pb2.PositionRecord:
    p = view.position
    record = position_pb2.PositionRecord(
        account=p.account, instrument=p.instrument, strategy_slug=p.strategy, quantity=decimal_text(p.quantity),
        average_price=decimal_text(p.average_price) if p.quantity != 0 else "",
        realized_pnl=decimal_text(p.realized_pnl), unrealized_pnl=decimal_text(view.unrealized_pnl),
        commission=decimal_text(p.commission), mark_price=decimal_text(view.mark_price))
    if p.opened_time is not None and p.quantity != 0:
        record.opened_time.CopyFrom(to_timestamp(p.opened_time))
    if p.updated_time is not None:
        record.updated_time.CopyFrom(to_timestamp(p.updated_time))
    return record


def account_summary(figures: AccountFigures, currency: str, open_positions: int = 0) -> position_pb2.AccountSummary:
    converter = Converter(currency)
    return position_pb2.AccountSummary(
        account=figures.account, currency=currency, balance=decimal_text(figures.balance),
        equity=decimal_text(figures.equity), peak_equity=decimal_text(figures.peak_equity),
        drawdown=decimal_text(figures.drawdown), drawdown_fraction=ratio_text(figures.drawdown_fraction),
        max_drawdown=decimal_text(figures.max_drawdown), realized_pnl=decimal_text(figures.realized_pnl),
        commission=decimal_text(figures.commission), financing=decimal_text(figures.financing),
        unrealized_pnl=decimal_text(figures.unrealized_pnl), open_positions=open_positions,
        unconverted=[position_pb2.UnconvertedMoney(currency=c, amount=decimal_text(amount),
                                                   conversion_instrument=converter.missing_pair(c))
                     for c, amount in figures.unconverted])


def trading_day(figures: DayFigures) -> position_pb2.TradingDay:
    return position_pb2.TradingDay(
        start=to_timestamp(figures.day.start), end=to_timestamp(figures.day.end), date=figures.day.date.isoformat(),
        opening_equity=decimal_text(figures.opening_equity), peak_equity=decimal_text(figures.peak_equity),
        realized_pnl=decimal_text(figures.realized_pnl))


def strategy_summary(figures: StrategyFigures) -> position_pb2.StrategySummary:
    return position_pb2.StrategySummary(
        slug=figures.slug, realized_pnl=decimal_text(figures.realized_pnl_net),
        unrealized_pnl=decimal_text(figures.unrealized_pnl), consecutive_losses=figures.consecutive_losses,
        wins=figures.wins, losses=figures.losses)


def adjustment_message(entry: AdjustmentEntry) -> position_pb2.Adjustment:
    return position_pb2.Adjustment(id=entry.id, account=entry.account, instrument=entry.instrument,
                                   quantity=decimal_text(entry.quantity), actor=entry.actor, reason=entry.reason,
                                   time=to_timestamp(entry.time))


def change_message(seq: int, change: PositionChange) -> position_pb2.WatchPositionsResponse:
    view = PositionView(position=change.position, unrealized_pnl=change.unrealized_pnl, mark_price=change.mark_price)
    return position_pb2.WatchPositionsResponse(
        seq=seq, position=position_record(view),
        trace_context=common_pb2.TraceContext(traceparent=change.traceparent, tracestate=change.tracestate))


def sample_message(sample: EquitySample) -> position_pb2.EquitySample:
    return position_pb2.EquitySample(time=to_timestamp(sample.time), equity=decimal_text(sample.equity),
                                     balance=decimal_text(sample.balance), drawdown=decimal_text(sample.drawdown))


class PositionServicer(position_pb2_grpc.PositionServicer):
    def __init__(self, engine: PositionEngine, broker: BrokerPositions, *, heartbeat_seconds: float = 0.5,
                 audit=None) -> None:
        self._engine = engine
        self._broker = broker
        self._audit = audit if audit is not None else MemoryAudit()
        self._heartbeat_seconds = heartbeat_seconds

    async def Snapshot(self, request, context):
        # An account with no fills (including a mistyped one) is answered, not refused: no
        # positions and starting-cash figures, because a new account legitimately has none yet.
        _check_account(request.account)
        _check_names("strategy_slugs", request.strategy_slugs)
        _check_names("instruments", request.instruments)
        view = await self._engine.consistent_snapshot(account=request.account, strategies=request.strategy_slugs,
                                                      instruments=request.instruments,
                                                      include_flat=request.include_flat)
        return position_pb2.SnapshotResponse(
            positions=[position_record(p) for p in view.positions],
            account=account_summary(view.account, self._engine.currency, view.open_positions),
            strategies=[strategy_summary(s) for s in view.strategies],
            last_fill_seq=view.last_fill_seq, as_of=to_timestamp(view.as_of),
            days=[trading_day(d) for d in view.days])

    async def WatchPositions(self, request, context):
        _check_names("strategy_slugs", request.strategy_slugs)
        _check_names("instruments", request.instruments)
        strategies = frozenset(request.strategy_slugs)
        instruments = frozenset(request.instruments)

        def matches(change: PositionChange) -> bool:
            p = change.position
            return (not strategies or p.strategy in strategies) and (not instruments or p.instrument in instruments)

        after = validation.resume_after(request)
        async for seq, change in self._engine.changes.subscribe(after_seq=after, matches=matches):
            yield change_message(seq, change)

    async def WatchExposure(self, request, context):
        _check_account(request.account)
        _check_names("strategy_slugs", request.strategy_slugs)
        _check_names("instruments", request.instruments)
        interval = self._heartbeat_seconds
        heartbeat = duration_pb2.Duration()
        heartbeat.FromTimedelta(timedelta(seconds=interval))
        while True:
            view = await self._engine.exposure(account=request.account, strategies=request.strategy_slugs,
                                               instruments=request.instruments)
            version = view.version
            yield position_pb2.WatchExposureResponse(
                last_fill_seq=view.last_fill_seq, as_of=to_timestamp(view.as_of),
                positions=[position_record(p) for p in view.positions],
                account=account_summary(view.account, self._engine.currency, view.open_positions),
                strategies=[strategy_summary(s) for s in view.strategies], heartbeat_interval=heartbeat,
                days=[trading_day(d) for d in view.days], reconciliation_blocks=view.reconciliation_blocks)
            await self._engine.wait_for_change(version, interval)

    async def Reconcile(self, request, context):
        _check_account(request.account)
        if request.account:
            # The order plane trades for its configured account only; asking it about another would
            # come back as a refusal that reads like an outage.
            validation.known("account", request.account, (self._engine.default_account,),
                             setting="QUANTMESH_ACCOUNT; leave account empty for the default")
        reason = validation.text("reason", request.reason, max_chars=MAX_REASON_CHARS).strip()
        if request.apply_adjustments and not reason:
            raise InvalidArgument("apply_adjustments=true needs a reason: say why the ledger should be corrected "
                                  "(it is recorded with every adjustment)")
        account = request.account or self._engine.default_account
        try:
            broker, positions = await self._broker.positions(account)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"could not ask the order plane for the broker's positions of account {account}: "
                              f"{exc.code().name} {exc.details()}; retry when the order plane is up") from None
        except ValueError as exc:
            raise Unavailable(f"the broker's positions of account {account} are unusable: {exc}") from None
        who = current_identity()
        result = await self._engine.reconcile(account=account, broker=broker, broker_positions=positions,
                                              apply_adjustments=request.apply_adjustments, reason=reason,
                                              actor=who.actor)
        for adjustment in result.adjustments:  # an operator's decision, in the one audit trail
            await self._audit.record(AuditRecord(
                event="reconciliation", actor=who.actor, role=who.role.value, subject=adjustment.instrument,
                reason=f"operator adopted the venue's position as adjustment {adjustment.id}: {reason}",
                old_value=str(adjustment.ledger_quantity), new_value=str(adjustment.broker_quantity),
                source=context.peer() or ""))
        return position_pb2.ReconcileResponse(
            in_sync=result.in_sync, broker=result.broker,
            differences=[position_pb2.PositionDifference(
                account=d.account, instrument=d.instrument, ledger_quantity=decimal_text(d.ledger_quantity),
                broker_quantity=decimal_text(d.broker_quantity), difference=decimal_text(d.difference))
                for d in result.differences],
            adjustments=[adjustment_message(a) for a in result.adjustments])

    async def GetEquityCurve(self, request, context):
        _check_account(request.account)
        since = validation.optional_timestamp(request, "since")
        until = validation.optional_timestamp(request, "until")
        validation.window("since", since, "until", until)
        limit = validation.limit("limit", request.limit, default=_DEFAULT_CURVE_LIMIT, maximum=_MAX_CURVE_LIMIT,
                                 hint="page with since instead")
        samples = await self._engine.equity_curve(account=request.account, since=since, until=until, limit=limit)
        return position_pb2.GetEquityCurveResponse(samples=[sample_message(s) for s in samples])
