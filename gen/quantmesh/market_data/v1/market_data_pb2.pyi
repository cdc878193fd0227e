import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quantmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tick(_message.Message):
    __slots__ = ("instrument", "time", "bid", "ask", "volume", "aggressor")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    time: _timestamp_pb2.Timestamp
    bid: str
    ask: str
    volume: str
    aggressor: _common_pb2.Side
    def __init__(self, instrument: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bid: _Optional[str] = ..., ask: _Optional[str] = ..., volume: _Optional[str] = ..., aggressor: _Optional[_Union[_common_pb2.Side, str]] = ...) -> None: ...

class Ohlc(_message.Message):
    __slots__ = ("open", "high", "low", "close")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    open: float
    high: float
    low: float
    close: float
    def __init__(self, open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ...) -> None: ...

class Candle(_message.Message):
    __slots__ = ("instrument", "timeframe", "start_time", "end_time", "bid", "ask", "mid", "tick_count", "volume", "closed", "closed_time")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    MID_FIELD_NUMBER: _ClassVar[int]
    TICK_COUNT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_TIME_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    timeframe: _common_pb2.Timeframe
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    bid: Ohlc
    ask: Ohlc
    mid: Ohlc
    tick_count: int
    volume: float
    closed: bool
    closed_time: _timestamp_pb2.Timestamp
    def __init__(self, instrument: _Optional[str] = ..., timeframe: _Optional[_Union[_common_pb2.Timeframe, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bid: _Optional[_Union[Ohlc, _Mapping]] = ..., ask: _Optional[_Union[Ohlc, _Mapping]] = ..., mid: _Optional[_Union[Ohlc, _Mapping]] = ..., tick_count: _Optional[int] = ..., volume: _Optional[float] = ..., closed: _Optional[bool] = ..., closed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FactorSet(_message.Message):
    __slots__ = ("instrument", "timeframe", "candle_start_time", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    CANDLE_START_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    timeframe: _common_pb2.Timeframe
    candle_start_time: _timestamp_pb2.Timestamp
    values: _containers.ScalarMap[str, float]
    def __init__(self, instrument: _Optional[str] = ..., timeframe: _Optional[_Union[_common_pb2.Timeframe, str]] = ..., candle_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class StreamCandlesRequest(_message.Message):
    __slots__ = ("instruments", "timeframes", "resume_after_seq")
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAMES_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedScalarFieldContainer[str]
    timeframes: _containers.RepeatedScalarFieldContainer[_common_pb2.Timeframe]
    resume_after_seq: int
    def __init__(self, instruments: _Optional[_Iterable[str]] = ..., timeframes: _Optional[_Iterable[_Union[_common_pb2.Timeframe, str]]] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class StreamCandlesResponse(_message.Message):
    __slots__ = ("seq", "candle", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CANDLE_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    candle: Candle
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., candle: _Optional[_Union[Candle, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class StreamFactorsRequest(_message.Message):
    __slots__ = ("instruments", "timeframes", "resume_after_seq")
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAMES_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedScalarFieldContainer[str]
    timeframes: _containers.RepeatedScalarFieldContainer[_common_pb2.Timeframe]
    resume_after_seq: int
    def __init__(self, instruments: _Optional[_Iterable[str]] = ..., timeframes: _Optional[_Iterable[_Union[_common_pb2.Timeframe, str]]] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class StreamFactorsResponse(_message.Message):
    __slots__ = ("seq", "factors", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    factors: FactorSet
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., factors: _Optional[_Union[FactorSet, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class StreamTicksRequest(_message.Message):
    __slots__ = ("instruments", "resume_after_seq")
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedScalarFieldContainer[str]
    resume_after_seq: int
    def __init__(self, instruments: _Optional[_Iterable[str]] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class StreamTicksResponse(_message.Message):
    __slots__ = ("seq", "tick", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TICK_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    tick: Tick
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., tick: _Optional[_Union[Tick, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class GetCandlesRequest(_message.Message):
    __slots__ = ("instrument", "timeframe", "start_time", "end_time", "limit", "latest", "page_token")
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    timeframe: _common_pb2.Timeframe
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    limit: int
    latest: bool
    page_token: str
    def __init__(self, instrument: _Optional[str] = ..., timeframe: _Optional[_Union[_common_pb2.Timeframe, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., latest: _Optional[bool] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetCandlesResponse(_message.Message):
    __slots__ = ("candles", "seqs", "next_page_token")
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    SEQS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[Candle]
    seqs: _containers.RepeatedScalarFieldContainer[int]
    next_page_token: str
    def __init__(self, candles: _Optional[_Iterable[_Union[Candle, _Mapping]]] = ..., seqs: _Optional[_Iterable[int]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListInstrumentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Instrument(_message.Message):
    __slots__ = ("symbol", "tick_size", "quote_currency", "feed", "last_tick_time")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TICK_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FEED_FIELD_NUMBER: _ClassVar[int]
    LAST_TICK_TIME_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    tick_size: str
    quote_currency: str
    feed: str
    last_tick_time: _timestamp_pb2.Timestamp
    def __init__(self, symbol: _Optional[str] = ..., tick_size: _Optional[str] = ..., quote_currency: _Optional[str] = ..., feed: _Optional[str] = ..., last_tick_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListInstrumentsResponse(_message.Message):
    __slots__ = ("instruments",)
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedCompositeFieldContainer[Instrument]
    def __init__(self, instruments: _Optional[_Iterable[_Union[Instrument, _Mapping]]] = ...) -> None: ...

class GetQuoteRequest(_message.Message):
    __slots__ = ("instrument",)
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    instrument: str
    def __init__(self, instrument: _Optional[str] = ...) -> None: ...

class GetQuoteResponse(_message.Message):
    __slots__ = ("tick", "seq")
    TICK_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    tick: Tick
    seq: int
    def __init__(self, tick: _Optional[_Union[Tick, _Mapping]] = ..., seq: _Optional[int] = ...) -> None: ...

class PublishTicksRequest(_message.Message):
    __slots__ = ("ticks",)
    TICKS_FIELD_NUMBER: _ClassVar[int]
    ticks: _containers.RepeatedCompositeFieldContainer[Tick]
    def __init__(self, ticks: _Optional[_Iterable[_Union[Tick, _Mapping]]] = ...) -> None: ...

class PublishTicksResponse(_message.Message):
    __slots__ = ("accepted", "late", "last_tick_seq", "last_candle_seq", "last_factor_seq", "candles_closed")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    LAST_TICK_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_CANDLE_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_FACTOR_SEQ_FIELD_NUMBER: _ClassVar[int]
    CANDLES_CLOSED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    late: int
    last_tick_seq: int
    last_candle_seq: int
    last_factor_seq: int
    candles_closed: int
    def __init__(self, accepted: _Optional[int] = ..., late: _Optional[int] = ..., last_tick_seq: _Optional[int] = ..., last_candle_seq: _Optional[int] = ..., last_factor_seq: _Optional[int] = ..., candles_closed: _Optional[int] = ...) -> None: ...
