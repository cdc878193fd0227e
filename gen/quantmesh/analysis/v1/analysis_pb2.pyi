import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quantmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignalAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_ACTION_UNSPECIFIED: _ClassVar[SignalAction]
    SIGNAL_ACTION_ENTRY: _ClassVar[SignalAction]
    SIGNAL_ACTION_EXIT: _ClassVar[SignalAction]
    SIGNAL_ACTION_HOLD: _ClassVar[SignalAction]
    SIGNAL_ACTION_SKIP: _ClassVar[SignalAction]
    SIGNAL_ACTION_REFUSED: _ClassVar[SignalAction]

class VolatilityRegime(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOLATILITY_REGIME_UNSPECIFIED: _ClassVar[VolatilityRegime]
    VOLATILITY_REGIME_LOW: _ClassVar[VolatilityRegime]
    VOLATILITY_REGIME_NORMAL: _ClassVar[VolatilityRegime]
    VOLATILITY_REGIME_HIGH: _ClassVar[VolatilityRegime]
SIGNAL_ACTION_UNSPECIFIED: SignalAction
SIGNAL_ACTION_ENTRY: SignalAction
SIGNAL_ACTION_EXIT: SignalAction
SIGNAL_ACTION_HOLD: SignalAction
SIGNAL_ACTION_SKIP: SignalAction
SIGNAL_ACTION_REFUSED: SignalAction
VOLATILITY_REGIME_UNSPECIFIED: VolatilityRegime
VOLATILITY_REGIME_LOW: VolatilityRegime
VOLATILITY_REGIME_NORMAL: VolatilityRegime
VOLATILITY_REGIME_HIGH: VolatilityRegime

class Signal(_message.Message):
    __slots__ = ("signal_id", "strategy_slug", "role", "instrument", "action", "reason", "confidence", "indicators", "params_version", "allocation_version", "size_multiplier", "decision_time", "client_order_id", "side", "quantity", "price_ref", "trace_id", "seq", "recorded_time")
    class IndicatorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_REF_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RECORDED_TIME_FIELD_NUMBER: _ClassVar[int]
    signal_id: str
    strategy_slug: str
    role: _common_pb2.StrategyRole
    instrument: str
    action: SignalAction
    reason: str
    confidence: float
    indicators: _containers.ScalarMap[str, float]
    params_version: int
    allocation_version: int
    size_multiplier: str
    decision_time: _timestamp_pb2.Timestamp
    client_order_id: str
    side: _common_pb2.Side
    quantity: str
    price_ref: float
    trace_id: str
    seq: int
    recorded_time: _timestamp_pb2.Timestamp
    def __init__(self, signal_id: _Optional[str] = ..., strategy_slug: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.StrategyRole, str]] = ..., instrument: _Optional[str] = ..., action: _Optional[_Union[SignalAction, str]] = ..., reason: _Optional[str] = ..., confidence: _Optional[float] = ..., indicators: _Optional[_Mapping[str, float]] = ..., params_version: _Optional[int] = ..., allocation_version: _Optional[int] = ..., size_multiplier: _Optional[str] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., client_order_id: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., quantity: _Optional[str] = ..., price_ref: _Optional[float] = ..., trace_id: _Optional[str] = ..., seq: _Optional[int] = ..., recorded_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordSignalsRequest(_message.Message):
    __slots__ = ("signals",)
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    def __init__(self, signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ...) -> None: ...

class RecordSignalsResponse(_message.Message):
    __slots__ = ("recorded", "duplicates")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    duplicates: int
    def __init__(self, recorded: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class ListSignalsRequest(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "actions", "since", "until", "client_order_id", "limit", "page_token")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    actions: _containers.RepeatedScalarFieldContainer[SignalAction]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    client_order_id: str
    limit: int
    page_token: str
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[SignalAction, str]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., client_order_id: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSignalsResponse(_message.Message):
    __slots__ = ("signals", "next_page_token")
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    next_page_token: str
    def __init__(self, signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PerformanceFigures(_message.Message):
    __slots__ = ("trades", "wins", "losses", "win_rate", "net_pnl", "gross_profit", "gross_loss", "commission", "expectancy", "profit_factor", "sharpe", "max_drawdown")
    TRADES_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    NET_PNL_FIELD_NUMBER: _ClassVar[int]
    GROSS_PROFIT_FIELD_NUMBER: _ClassVar[int]
    GROSS_LOSS_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTANCY_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    SHARPE_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    trades: int
    wins: int
    losses: int
    win_rate: float
    net_pnl: str
    gross_profit: str
    gross_loss: str
    commission: str
    expectancy: float
    profit_factor: float
    sharpe: float
    max_drawdown: str
    def __init__(self, trades: _Optional[int] = ..., wins: _Optional[int] = ..., losses: _Optional[int] = ..., win_rate: _Optional[float] = ..., net_pnl: _Optional[str] = ..., gross_profit: _Optional[str] = ..., gross_loss: _Optional[str] = ..., commission: _Optional[str] = ..., expectancy: _Optional[float] = ..., profit_factor: _Optional[float] = ..., sharpe: _Optional[float] = ..., max_drawdown: _Optional[str] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "side", "quantity", "entry_price", "exit_price", "opened_time", "closed_time", "gross_pnl", "commission", "net_pnl", "entry_client_order_id", "exit_client_order_id")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    EXIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    OPENED_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_TIME_FIELD_NUMBER: _ClassVar[int]
    GROSS_PNL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    NET_PNL_FIELD_NUMBER: _ClassVar[int]
    ENTRY_CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    side: _common_pb2.Side
    quantity: str
    entry_price: str
    exit_price: str
    opened_time: _timestamp_pb2.Timestamp
    closed_time: _timestamp_pb2.Timestamp
    gross_pnl: str
    commission: str
    net_pnl: str
    entry_client_order_id: str
    exit_client_order_id: str
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., quantity: _Optional[str] = ..., entry_price: _Optional[str] = ..., exit_price: _Optional[str] = ..., opened_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., gross_pnl: _Optional[str] = ..., commission: _Optional[str] = ..., net_pnl: _Optional[str] = ..., entry_client_order_id: _Optional[str] = ..., exit_client_order_id: _Optional[str] = ...) -> None: ...

class GetPerformanceRequest(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "include_trades")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRADES_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    include_trades: bool
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., include_trades: _Optional[bool] = ...) -> None: ...

class Performance(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "overall", "rolling", "rolling_trades", "open_quantity", "last_trade_time", "trades")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    ROLLING_FIELD_NUMBER: _ClassVar[int]
    ROLLING_TRADES_FIELD_NUMBER: _ClassVar[int]
    OPEN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_TRADE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    overall: PerformanceFigures
    rolling: PerformanceFigures
    rolling_trades: int
    open_quantity: str
    last_trade_time: _timestamp_pb2.Timestamp
    trades: _containers.RepeatedCompositeFieldContainer[Trade]
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., overall: _Optional[_Union[PerformanceFigures, _Mapping]] = ..., rolling: _Optional[_Union[PerformanceFigures, _Mapping]] = ..., rolling_trades: _Optional[int] = ..., open_quantity: _Optional[str] = ..., last_trade_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trades: _Optional[_Iterable[_Union[Trade, _Mapping]]] = ...) -> None: ...

class GetPerformanceResponse(_message.Message):
    __slots__ = ("performance", "last_fill_seq")
    PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_SEQ_FIELD_NUMBER: _ClassVar[int]
    performance: _containers.RepeatedCompositeFieldContainer[Performance]
    last_fill_seq: int
    def __init__(self, performance: _Optional[_Iterable[_Union[Performance, _Mapping]]] = ..., last_fill_seq: _Optional[int] = ...) -> None: ...

class GetRangeMetricsRequest(_message.Message):
    __slots__ = ("instrument",)
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    def __init__(self, instrument: _Optional[str] = ...) -> None: ...

class SessionRange(_message.Message):
    __slots__ = ("session", "start_time", "high", "low", "range", "open", "average_range", "sessions_averaged")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RANGE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_AVERAGED_FIELD_NUMBER: _ClassVar[int]
    session: str
    start_time: _timestamp_pb2.Timestamp
    high: float
    low: float
    range: float
    open: bool
    average_range: float
    sessions_averaged: int
    def __init__(self, session: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., range: _Optional[float] = ..., open: _Optional[bool] = ..., average_range: _Optional[float] = ..., sessions_averaged: _Optional[int] = ...) -> None: ...

class RangeMetrics(_message.Message):
    __slots__ = ("instrument", "timeframe", "as_of", "candles", "atr", "atr_period", "atr_percentile", "regime", "return_stdev", "volatility_window", "spread", "average_spread", "sessions")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    ATR_FIELD_NUMBER: _ClassVar[int]
    ATR_PERIOD_FIELD_NUMBER: _ClassVar[int]
    ATR_PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    REGIME_FIELD_NUMBER: _ClassVar[int]
    RETURN_STDEV_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_SPREAD_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    timeframe: _common_pb2.Timeframe
    as_of: _timestamp_pb2.Timestamp
    candles: int
    atr: float
    atr_period: int
    atr_percentile: float
    regime: VolatilityRegime
    return_stdev: float
    volatility_window: int
    spread: float
    average_spread: float
    sessions: _containers.RepeatedCompositeFieldContainer[SessionRange]
    def __init__(self, instrument: _Optional[str] = ..., timeframe: _Optional[_Union[_common_pb2.Timeframe, str]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., candles: _Optional[int] = ..., atr: _Optional[float] = ..., atr_period: _Optional[int] = ..., atr_percentile: _Optional[float] = ..., regime: _Optional[_Union[VolatilityRegime, str]] = ..., return_stdev: _Optional[float] = ..., volatility_window: _Optional[int] = ..., spread: _Optional[float] = ..., average_spread: _Optional[float] = ..., sessions: _Optional[_Iterable[_Union[SessionRange, _Mapping]]] = ...) -> None: ...

class GetRangeMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[RangeMetrics]
    def __init__(self, metrics: _Optional[_Iterable[_Union[RangeMetrics, _Mapping]]] = ...) -> None: ...

class GetPatternBookRequest(_message.Message):
    __slots__ = ("strategy_slug", "instrument")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ...) -> None: ...

class PatternBucket(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "side", "regime", "session", "confidence", "indicator_bins", "entries", "closed", "wins", "win_rate", "net_pnl", "expectancy")
    class IndicatorBinsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    REGIME_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    INDICATOR_BINS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    NET_PNL_FIELD_NUMBER: _ClassVar[int]
    EXPECTANCY_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    side: _common_pb2.Side
    regime: VolatilityRegime
    session: str
    confidence: str
    indicator_bins: _containers.ScalarMap[str, str]
    entries: int
    closed: int
    wins: int
    win_rate: float
    net_pnl: str
    expectancy: float
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., regime: _Optional[_Union[VolatilityRegime, str]] = ..., session: _Optional[str] = ..., confidence: _Optional[str] = ..., indicator_bins: _Optional[_Mapping[str, str]] = ..., entries: _Optional[int] = ..., closed: _Optional[int] = ..., wins: _Optional[int] = ..., win_rate: _Optional[float] = ..., net_pnl: _Optional[str] = ..., expectancy: _Optional[float] = ...) -> None: ...

class GetPatternBookResponse(_message.Message):
    __slots__ = ("buckets",)
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[PatternBucket]
    def __init__(self, buckets: _Optional[_Iterable[_Union[PatternBucket, _Mapping]]] = ...) -> None: ...

class Allocation(_message.Message):
    __slots__ = ("size_multiplier", "entries_enabled", "reason", "judged_since")
    SIZE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_ENABLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    JUDGED_SINCE_FIELD_NUMBER: _ClassVar[int]
    size_multiplier: str
    entries_enabled: bool
    reason: str
    judged_since: _timestamp_pb2.Timestamp
    def __init__(self, size_multiplier: _Optional[str] = ..., entries_enabled: _Optional[bool] = ..., reason: _Optional[str] = ..., judged_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AllocationRecommendation(_message.Message):
    __slots__ = ("strategy_slug", "recommended", "applied", "frozen", "computed_time", "regime", "basis")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_TIME_FIELD_NUMBER: _ClassVar[int]
    REGIME_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    recommended: Allocation
    applied: Allocation
    frozen: bool
    computed_time: _timestamp_pb2.Timestamp
    regime: VolatilityRegime
    basis: PerformanceFigures
    def __init__(self, strategy_slug: _Optional[str] = ..., recommended: _Optional[_Union[Allocation, _Mapping]] = ..., applied: _Optional[_Union[Allocation, _Mapping]] = ..., frozen: _Optional[bool] = ..., computed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., regime: _Optional[_Union[VolatilityRegime, str]] = ..., basis: _Optional[_Union[PerformanceFigures, _Mapping]] = ...) -> None: ...

class GetAllocationsRequest(_message.Message):
    __slots__ = ("strategy_slug",)
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    def __init__(self, strategy_slug: _Optional[str] = ...) -> None: ...

class GetAllocationsResponse(_message.Message):
    __slots__ = ("recommendations", "policy")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[AllocationRecommendation]
    policy: str
    def __init__(self, recommendations: _Optional[_Iterable[_Union[AllocationRecommendation, _Mapping]]] = ..., policy: _Optional[str] = ...) -> None: ...

class StrategySettings(_message.Message):
    __slots__ = ("strategy_slug", "version", "params", "params_version", "allocation", "allocation_version", "frozen", "updated_time", "updated_by", "reason")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    version: int
    params: _containers.ScalarMap[str, str]
    params_version: int
    allocation: Allocation
    allocation_version: int
    frozen: bool
    updated_time: _timestamp_pb2.Timestamp
    updated_by: str
    reason: str
    def __init__(self, strategy_slug: _Optional[str] = ..., version: _Optional[int] = ..., params: _Optional[_Mapping[str, str]] = ..., params_version: _Optional[int] = ..., allocation: _Optional[_Union[Allocation, _Mapping]] = ..., allocation_version: _Optional[int] = ..., frozen: _Optional[bool] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetStrategySettingsRequest(_message.Message):
    __slots__ = ("strategy_slug",)
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    def __init__(self, strategy_slug: _Optional[str] = ...) -> None: ...

class GetStrategySettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: _containers.RepeatedCompositeFieldContainer[StrategySettings]
    def __init__(self, settings: _Optional[_Iterable[_Union[StrategySettings, _Mapping]]] = ...) -> None: ...

class SetStrategyParamsRequest(_message.Message):
    __slots__ = ("strategy_slug", "params", "reset", "reason", "expected_version")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    params: _containers.ScalarMap[str, str]
    reset: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    expected_version: int
    def __init__(self, strategy_slug: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., reset: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class SetStrategyParamsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: StrategySettings
    def __init__(self, settings: _Optional[_Union[StrategySettings, _Mapping]] = ...) -> None: ...

class FreezeStrategyRequest(_message.Message):
    __slots__ = ("strategy_slug", "frozen", "reason")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    frozen: bool
    reason: str
    def __init__(self, strategy_slug: _Optional[str] = ..., frozen: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class FreezeStrategyResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: StrategySettings
    def __init__(self, settings: _Optional[_Union[StrategySettings, _Mapping]] = ...) -> None: ...

class WatchStrategySettingsRequest(_message.Message):
    __slots__ = ("strategy_slug", "heartbeat_seconds", "start_params")
    class StartParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_PARAMS_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    heartbeat_seconds: int
    start_params: _containers.ScalarMap[str, str]
    def __init__(self, strategy_slug: _Optional[str] = ..., heartbeat_seconds: _Optional[int] = ..., start_params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class WatchStrategySettingsResponse(_message.Message):
    __slots__ = ("seq", "settings", "heartbeat", "sent_time")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SENT_TIME_FIELD_NUMBER: _ClassVar[int]
    seq: int
    settings: StrategySettings
    heartbeat: bool
    sent_time: _timestamp_pb2.Timestamp
    def __init__(self, seq: _Optional[int] = ..., settings: _Optional[_Union[StrategySettings, _Mapping]] = ..., heartbeat: _Optional[bool] = ..., sent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
