import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quantmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PositionRecord(_message.Message):
    __slots__ = ("account", "instrument", "strategy_slug", "quantity", "average_price", "realized_pnl", "unrealized_pnl", "commission", "mark_price", "opened_time", "updated_time")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    MARK_PRICE_FIELD_NUMBER: _ClassVar[int]
    OPENED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    account: str
    instrument: str
    strategy_slug: str
    quantity: str
    average_price: str
    realized_pnl: str
    unrealized_pnl: str
    commission: str
    mark_price: str
    opened_time: _timestamp_pb2.Timestamp
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, account: _Optional[str] = ..., instrument: _Optional[str] = ..., strategy_slug: _Optional[str] = ..., quantity: _Optional[str] = ..., average_price: _Optional[str] = ..., realized_pnl: _Optional[str] = ..., unrealized_pnl: _Optional[str] = ..., commission: _Optional[str] = ..., mark_price: _Optional[str] = ..., opened_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccountSummary(_message.Message):
    __slots__ = ("account", "currency", "balance", "equity", "peak_equity", "drawdown", "drawdown_fraction", "max_drawdown", "realized_pnl", "commission", "financing", "unrealized_pnl", "unconverted", "open_positions")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    PEAK_EQUITY_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    FINANCING_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNCONVERTED_FIELD_NUMBER: _ClassVar[int]
    OPEN_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    account: str
    currency: str
    balance: str
    equity: str
    peak_equity: str
    drawdown: str
    drawdown_fraction: str
    max_drawdown: str
    realized_pnl: str
    commission: str
    financing: str
    unrealized_pnl: str
    unconverted: _containers.RepeatedCompositeFieldContainer[UnconvertedMoney]
    open_positions: int
    def __init__(self, account: _Optional[str] = ..., currency: _Optional[str] = ..., balance: _Optional[str] = ..., equity: _Optional[str] = ..., peak_equity: _Optional[str] = ..., drawdown: _Optional[str] = ..., drawdown_fraction: _Optional[str] = ..., max_drawdown: _Optional[str] = ..., realized_pnl: _Optional[str] = ..., commission: _Optional[str] = ..., financing: _Optional[str] = ..., unrealized_pnl: _Optional[str] = ..., unconverted: _Optional[_Iterable[_Union[UnconvertedMoney, _Mapping]]] = ..., open_positions: _Optional[int] = ...) -> None: ...

class UnconvertedMoney(_message.Message):
    __slots__ = ("currency", "amount", "conversion_instrument")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    currency: str
    amount: str
    conversion_instrument: str
    def __init__(self, currency: _Optional[str] = ..., amount: _Optional[str] = ..., conversion_instrument: _Optional[str] = ...) -> None: ...

class TradingDay(_message.Message):
    __slots__ = ("start", "end", "date", "opening_equity", "peak_equity", "realized_pnl")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    OPENING_EQUITY_FIELD_NUMBER: _ClassVar[int]
    PEAK_EQUITY_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    date: str
    opening_equity: str
    peak_equity: str
    realized_pnl: str
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., date: _Optional[str] = ..., opening_equity: _Optional[str] = ..., peak_equity: _Optional[str] = ..., realized_pnl: _Optional[str] = ...) -> None: ...

class StrategySummary(_message.Message):
    __slots__ = ("slug", "realized_pnl", "unrealized_pnl", "consecutive_losses", "wins", "losses")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_LOSSES_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    slug: str
    realized_pnl: str
    unrealized_pnl: str
    consecutive_losses: int
    wins: int
    losses: int
    def __init__(self, slug: _Optional[str] = ..., realized_pnl: _Optional[str] = ..., unrealized_pnl: _Optional[str] = ..., consecutive_losses: _Optional[int] = ..., wins: _Optional[int] = ..., losses: _Optional[int] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ("account", "strategy_slugs", "instruments", "include_flat")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUGS_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FLAT_FIELD_NUMBER: _ClassVar[int]
    account: str
    strategy_slugs: _containers.RepeatedScalarFieldContainer[str]
    instruments: _containers.RepeatedScalarFieldContainer[str]
    include_flat: bool
    def __init__(self, account: _Optional[str] = ..., strategy_slugs: _Optional[_Iterable[str]] = ..., instruments: _Optional[_Iterable[str]] = ..., include_flat: _Optional[bool] = ...) -> None: ...

class SnapshotResponse(_message.Message):
    __slots__ = ("positions", "account", "strategies", "last_fill_seq", "as_of", "days")
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_SEQ_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[PositionRecord]
    account: AccountSummary
    strategies: _containers.RepeatedCompositeFieldContainer[StrategySummary]
    last_fill_seq: int
    as_of: _timestamp_pb2.Timestamp
    days: _containers.RepeatedCompositeFieldContainer[TradingDay]
    def __init__(self, positions: _Optional[_Iterable[_Union[PositionRecord, _Mapping]]] = ..., account: _Optional[_Union[AccountSummary, _Mapping]] = ..., strategies: _Optional[_Iterable[_Union[StrategySummary, _Mapping]]] = ..., last_fill_seq: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., days: _Optional[_Iterable[_Union[TradingDay, _Mapping]]] = ...) -> None: ...

class WatchPositionsRequest(_message.Message):
    __slots__ = ("strategy_slugs", "instruments", "resume_after_seq")
    STRATEGY_SLUGS_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    strategy_slugs: _containers.RepeatedScalarFieldContainer[str]
    instruments: _containers.RepeatedScalarFieldContainer[str]
    resume_after_seq: int
    def __init__(self, strategy_slugs: _Optional[_Iterable[str]] = ..., instruments: _Optional[_Iterable[str]] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class WatchPositionsResponse(_message.Message):
    __slots__ = ("seq", "position", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    position: PositionRecord
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., position: _Optional[_Union[PositionRecord, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("account", "apply_adjustments", "reason")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    APPLY_ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    account: str
    apply_adjustments: bool
    reason: str
    def __init__(self, account: _Optional[str] = ..., apply_adjustments: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class PositionDifference(_message.Message):
    __slots__ = ("account", "instrument", "ledger_quantity", "broker_quantity", "difference")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    LEDGER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BROKER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    account: str
    instrument: str
    ledger_quantity: str
    broker_quantity: str
    difference: str
    def __init__(self, account: _Optional[str] = ..., instrument: _Optional[str] = ..., ledger_quantity: _Optional[str] = ..., broker_quantity: _Optional[str] = ..., difference: _Optional[str] = ...) -> None: ...

class Adjustment(_message.Message):
    __slots__ = ("id", "account", "instrument", "quantity", "actor", "reason", "time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    id: int
    account: str
    instrument: str
    quantity: str
    actor: str
    reason: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., account: _Optional[str] = ..., instrument: _Optional[str] = ..., quantity: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReconcileResponse(_message.Message):
    __slots__ = ("in_sync", "differences", "adjustments", "broker")
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    in_sync: bool
    differences: _containers.RepeatedCompositeFieldContainer[PositionDifference]
    adjustments: _containers.RepeatedCompositeFieldContainer[Adjustment]
    broker: str
    def __init__(self, in_sync: _Optional[bool] = ..., differences: _Optional[_Iterable[_Union[PositionDifference, _Mapping]]] = ..., adjustments: _Optional[_Iterable[_Union[Adjustment, _Mapping]]] = ..., broker: _Optional[str] = ...) -> None: ...

class GetEquityCurveRequest(_message.Message):
    __slots__ = ("account", "since", "until", "limit")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, account: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class EquitySample(_message.Message):
    __slots__ = ("time", "equity", "balance", "drawdown")
    TIME_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    equity: str
    balance: str
    drawdown: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., equity: _Optional[str] = ..., balance: _Optional[str] = ..., drawdown: _Optional[str] = ...) -> None: ...

class GetEquityCurveResponse(_message.Message):
    __slots__ = ("samples",)
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[EquitySample]
    def __init__(self, samples: _Optional[_Iterable[_Union[EquitySample, _Mapping]]] = ...) -> None: ...

class WatchExposureRequest(_message.Message):
    __slots__ = ("account", "strategy_slugs", "instruments")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUGS_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    account: str
    strategy_slugs: _containers.RepeatedScalarFieldContainer[str]
    instruments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account: _Optional[str] = ..., strategy_slugs: _Optional[_Iterable[str]] = ..., instruments: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchExposureResponse(_message.Message):
    __slots__ = ("last_fill_seq", "as_of", "positions", "account", "strategies", "heartbeat_interval", "days", "reconciliation_blocks")
    LAST_FILL_SEQ_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    RECONCILIATION_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    last_fill_seq: int
    as_of: _timestamp_pb2.Timestamp
    positions: _containers.RepeatedCompositeFieldContainer[PositionRecord]
    account: AccountSummary
    strategies: _containers.RepeatedCompositeFieldContainer[StrategySummary]
    heartbeat_interval: _duration_pb2.Duration
    days: _containers.RepeatedCompositeFieldContainer[TradingDay]
    reconciliation_blocks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, last_fill_seq: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., positions: _Optional[_Iterable[_Union[PositionRecord, _Mapping]]] = ..., account: _Optional[_Union[AccountSummary, _Mapping]] = ..., strategies: _Optional[_Iterable[_Union[StrategySummary, _Mapping]]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., days: _Optional[_Iterable[_Union[TradingDay, _Mapping]]] = ..., reconciliation_blocks: _Optional[_Iterable[str]] = ...) -> None: ...
