"""The Analysis servicer: protobuf <-> domain, no business rules."""

from __future__ import annotations

import re
from decimal import Decimal

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from services.analysis.board import Caller
from services.analysis.engine import AnalysisEngine, Recommendation
from services.analysis.patterns import Bucket
from services.analysis.performance import Figures, Performance
from services.analysis.ranges import RangeMetrics, Regime
from services.analysis.signals import ACTIONS, MAX_SIGNALS, SignalQuery, signal_from_proto
from services.analysis.trades import Trade
from services.common import validation
from services.common.auth import Role, current_identity
from services.common.clock import Clock
from services.common.errors import InvalidArgument
from services.common.server import ServiceBinding, binding
from services.common.timeutil import to_timestamp
from services.common.vocabulary import Side
from services.common.wire import SIDE_TO_PROTO, trimmed_decimal_text

_SERVICE = "/quantmesh.analysis.v1.Analysis/"

#: Settings are an operator's to change; signals are the workers' to record.
ANALYSIS_POLICY = {
    _SERVICE + "SetStrategyParams": frozenset({Role.OPERATOR}),
    _SERVICE + "FreezeStrategy": frozenset({Role.OPERATOR}),
    _SERVICE + "RecordSignals": frozenset({Role.STRATEGY, Role.SERVICE, Role.OPERATOR}),
}

MAX_HEARTBEAT_SECONDS = 3600
MAX_REASON_CHARS = 500
MAX_PARAMS = 64
MAX_PARAM_TEXT = 200
REGIMES = {Regime.UNKNOWN: analysis_pb2.VOLATILITY_REGIME_UNSPECIFIED, Regime.LOW: analysis_pb2.VOLATILITY_REGIME_LOW,
           Regime.NORMAL: analysis_pb2.VOLATILITY_REGIME_NORMAL, Regime.HIGH: analysis_pb2.VOLATILITY_REGIME_HIGH}
PARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)
TIMEFRAMES = {"S5": 1, "M1": 2, "M5": 3, "H1": 4, "H4": 5, "D1": 6}


def _money(value: Decimal) -> str:
    return trimmed_decimal_text(value)


def _side(side: str) -> int:
    return SIDE_TO_PROTO[Side(side)]


def figures_to_proto(f: Figures) -> analysis_pb2.PerformanceFigures:
    message = analysis_pb2.PerformanceFigures(
        trades=f.trades, wins=f.wins, losses=f.losses, win_rate=f.win_rate, net_pnl=_money(f.net_pnl),
        gross_profit=_money(f.gross_profit), gross_loss=_money(f.gross_loss), commission=_money(f.commission),
        expectancy=f.expectancy, max_drawdown=_money(f.max_drawdown))
    if f.profit_factor is not None:
        message.profit_factor = f.profit_factor
    if f.sharpe is not None:
        message.sharpe = f.sharpe
    return message


def _trade(t: Trade) -> analysis_pb2.Trade:
    return analysis_pb2.Trade(
        strategy_slug=t.strategy, instrument=t.instrument, side=_side(t.side), quantity=_money(t.quantity),
        entry_price=_money(t.entry_price), exit_price=_money(t.exit_price), opened_time=to_timestamp(t.opened_time),
        closed_time=to_timestamp(t.closed_time), gross_pnl=_money(t.gross_pnl), commission=_money(t.commission),
        net_pnl=_money(t.net_pnl), entry_client_order_id=t.entry_client_order_id,
        exit_client_order_id=t.exit_client_order_id)


def _performance(p: Performance, open_quantity: Decimal, with_trades: bool) -> analysis_pb2.Performance:
    return analysis_pb2.Performance(
        strategy_slug=p.strategy, instrument=p.instrument, overall=figures_to_proto(p.overall),
        rolling=figures_to_proto(p.rolling), rolling_trades=p.rolling_trades, open_quantity=_money(open_quantity),
        last_trade_time=to_timestamp(p.trades[-1].closed_time if p.trades else None),
        trades=[_trade(t) for t in p.trades] if with_trades else [])


def _ranges(m: RangeMetrics, timeframe: str) -> analysis_pb2.RangeMetrics:
    state = m.state
    return analysis_pb2.RangeMetrics(
        instrument=m.instrument, timeframe=TIMEFRAMES[timeframe], as_of=to_timestamp(m.as_of), candles=m.candles,
        atr=(state.atr or 0.0) if state else 0.0, atr_period=m.atr_period,
        atr_percentile=(state.atr_percentile or 0.0) if state else 0.0,
        regime=REGIMES[state.regime if state else Regime.UNKNOWN], return_stdev=m.return_stdev or 0.0,
        volatility_window=m.volatility_window, spread=state.spread if state else 0.0,
        average_spread=m.average_spread or 0.0,
        sessions=[analysis_pb2.SessionRange(session=s.session, start_time=to_timestamp(s.start), high=s.high, low=s.low,
                                            range=s.range, open=s.open, average_range=s.average_range,
                                            sessions_averaged=s.sessions_averaged) for s in m.sessions])


def _bucket(b: Bucket) -> analysis_pb2.PatternBucket:
    k = b.key
    return analysis_pb2.PatternBucket(
        strategy_slug=k.strategy, instrument=k.instrument, side=_side(k.side), regime=REGIMES[k.regime],
        session=k.session, confidence=k.confidence, indicator_bins=dict(k.indicator_bins), entries=b.entries,
        closed=b.closed, wins=b.wins, win_rate=b.win_rate, net_pnl=_money(b.net_pnl), expectancy=b.expectancy)


def _caller(context) -> Caller:
    who = current_identity()
    return Caller(actor=who.actor, role=who.role.value, source=context.peer() or who.peer or "")


def _reason(request) -> str:
    reason = validation.text("reason", request.reason, max_chars=MAX_REASON_CHARS).strip()
    if not reason:
        raise InvalidArgument("reason is empty; say why (it is recorded in the audit trail)")
    return reason


def _param_names(field: str, names) -> list[str]:
    names = list(names)
    if len(names) > MAX_PARAMS:
        raise InvalidArgument(f"{field} has {len(names)} entries; at most {MAX_PARAMS}")
    return [validation.name(f"{field} name", n, pattern=PARAM_NAME, form="a parameter name such as fast_period")
            for n in names]


def _params(field: str, params) -> dict[str, str]:
    _param_names(field, params.keys())
    return {k: validation.text(f"{field}[{k!r}]", v, max_chars=MAX_PARAM_TEXT) for k, v in params.items()}


class AnalysisServicer(analysis_pb2_grpc.AnalysisServicer):
    def __init__(self, engine: AnalysisEngine, *, clock: Clock, heartbeat_seconds: float) -> None:
        self._engine = engine
        self._board = engine.board
        self._clock = clock
        self._heartbeat = heartbeat_seconds

    async def RecordSignals(self, request, context):
        count = len(request.signals)
        if not 1 <= count <= MAX_SIGNALS:
            raise InvalidArgument(f"signals holds {count:,}; send 1 to {MAX_SIGNALS:,} per call")
        records = [signal_from_proto(i, s) for i, s in enumerate(request.signals)]
        recorded = await self._engine.record_signals(records)
        return analysis_pb2.RecordSignalsResponse(recorded=recorded, duplicates=count - recorded)

    async def ListSignals(self, request, context):
        actions = []
        for i, value in enumerate(request.actions):
            if value not in ACTIONS:
                raise InvalidArgument(f"actions[{i}] is not a signal action (SIGNAL_ACTION_ENTRY, ...)")
            actions.append(ACTIONS[value])
        since, until = validation.optional_timestamp(request, "since"), validation.optional_timestamp(request, "until")
        validation.window("since", since, "until", until)
        before = (validation.int64_digits("page_token", request.page_token, form="a page token from ListSignals")
                  if request.page_token else None)
        query = SignalQuery(
            strategy=validation.slug("strategy_slug", request.strategy_slug) if request.strategy_slug else "",
            instrument=validation.name("instrument", request.instrument, pattern=validation.INSTRUMENT,
                                       form=validation.INSTRUMENT_FORM) if request.instrument else "",
            actions=tuple(actions), since=since, until=until,
            client_order_id=validation.name("client_order_id", request.client_order_id)
            if request.client_order_id else "",
            limit=validation.limit("limit", request.limit, default=100, maximum=1000), before_seq=before)
        rows = await self._engine.signals(query)
        page, more = rows[:query.limit], len(rows) > query.limit
        return analysis_pb2.ListSignalsResponse(signals=[s.to_proto() for s in page],
                                                next_page_token=str(page[-1].seq) if more and page else "")

    async def GetPerformance(self, request, context):
        strategy = validation.slug("strategy_slug", request.strategy_slug) if request.strategy_slug else ""
        found = self._engine.performance(strategy, request.instrument)
        return analysis_pb2.GetPerformanceResponse(
            performance=[_performance(p, self._engine.trades.open_quantity(p.strategy, p.instrument),
                                      request.include_trades) for p in found],
            last_fill_seq=self._engine.last_fill_seq)

    async def GetRangeMetrics(self, request, context):
        timeframe = self._engine.settings.timeframe
        return analysis_pb2.GetRangeMetricsResponse(
            metrics=[_ranges(m, timeframe) for m in self._engine.range_metrics(request.instrument)])

    async def GetPatternBook(self, request, context):
        strategy = validation.slug("strategy_slug", request.strategy_slug) if request.strategy_slug else ""
        buckets = await self._engine.pattern_book(strategy, request.instrument)
        return analysis_pb2.GetPatternBookResponse(buckets=[_bucket(b) for b in buckets])

    async def GetAllocations(self, request, context):
        found: list[Recommendation] = [r for s, r in sorted(self._engine.recommendations.items())
                                       if not request.strategy_slug or s == request.strategy_slug]
        out = []
        for r in found:
            settings = self._board.get(r.strategy)
            out.append(analysis_pb2.AllocationRecommendation(
                strategy_slug=r.strategy, recommended=r.recommended.to_proto() if r.recommended else None,
                applied=settings.allocation.to_proto(),
                frozen=settings.frozen, computed_time=to_timestamp(r.computed_time), regime=REGIMES[r.regime],
                basis=figures_to_proto(r.basis)))
        return analysis_pb2.GetAllocationsResponse(recommendations=out, policy=self._engine.settings.policy)

    async def GetStrategySettings(self, request, context):
        if request.strategy_slug:
            found = [self._board.get(validation.slug("strategy_slug", request.strategy_slug))]
        else:
            found = self._board.all()
        return analysis_pb2.GetStrategySettingsResponse(settings=[s.to_proto() for s in found])

    async def SetStrategyParams(self, request, context):
        slug = validation.slug("strategy_slug", request.strategy_slug)
        params, reset = _params("params", request.params), _param_names("reset", request.reset)
        if not params and not reset:
            raise InvalidArgument("params and reset are both empty; name at least one parameter to change")
        settings = await self._board.set_params(
            slug, params, reset, caller=_caller(context), reason=_reason(request),
            expected_version=validation.sequence("expected_version", request.expected_version))
        return analysis_pb2.SetStrategyParamsResponse(settings=settings.to_proto())

    async def FreezeStrategy(self, request, context):
        slug = validation.slug("strategy_slug", request.strategy_slug)
        settings = await self._board.freeze(slug, request.frozen, caller=_caller(context), reason=_reason(request))
        return analysis_pb2.FreezeStrategyResponse(settings=settings.to_proto())

    async def WatchStrategySettings(self, request, context):
        slug = validation.slug("strategy_slug", request.strategy_slug)
        if request.heartbeat_seconds > MAX_HEARTBEAT_SECONDS:
            raise InvalidArgument(f"heartbeat_seconds {request.heartbeat_seconds} is above the maximum "
                                  f"{MAX_HEARTBEAT_SECONDS}; send 0 for the server default ({self._heartbeat:g} s)")
        heartbeat = float(request.heartbeat_seconds) or self._heartbeat
        self._board.note_start_params(slug, _params("start_params", request.start_params))
        current, seq = self._board.get(slug), 1
        yield self._message(seq, current, heartbeat=False)
        while not self._board.closed:
            changed = await self._board.next_change(slug, current.version, heartbeat)
            if self._board.closed:
                return  # the server is shutting down; the worker reconnects
            seq += 1
            if changed is not None:
                current = changed
            yield self._message(seq, current, heartbeat=changed is None)

    def _message(self, seq: int, settings, *, heartbeat: bool) -> analysis_pb2.WatchStrategySettingsResponse:
        return analysis_pb2.WatchStrategySettingsResponse(seq=seq, settings=settings.to_proto(), heartbeat=heartbeat,
                                                          sent_time=to_timestamp(self._clock.now()))


def analysis_binding(servicer: AnalysisServicer) -> ServiceBinding:
    return binding(analysis_pb2, "Analysis", analysis_pb2_grpc.add_AnalysisServicer_to_server, servicer)


__all__ = ["ANALYSIS_POLICY", "AnalysisServicer", "analysis_binding", "figures_to_proto"]
