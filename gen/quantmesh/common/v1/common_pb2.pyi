from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class Timeframe(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIMEFRAME_UNSPECIFIED: _ClassVar[Timeframe]
    TIMEFRAME_S5: _ClassVar[Timeframe]
    TIMEFRAME_M1: _ClassVar[Timeframe]
    TIMEFRAME_M5: _ClassVar[Timeframe]
    TIMEFRAME_H1: _ClassVar[Timeframe]
    TIMEFRAME_H4: _ClassVar[Timeframe]
    TIMEFRAME_D1: _ClassVar[Timeframe]

class StrategyRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_ROLE_UNSPECIFIED: _ClassVar[StrategyRole]
    STRATEGY_ROLE_ENTRY: _ClassVar[StrategyRole]
    STRATEGY_ROLE_EXIT: _ClassVar[StrategyRole]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
TIMEFRAME_UNSPECIFIED: Timeframe
TIMEFRAME_S5: Timeframe
TIMEFRAME_M1: Timeframe
TIMEFRAME_M5: Timeframe
TIMEFRAME_H1: Timeframe
TIMEFRAME_H4: Timeframe
TIMEFRAME_D1: Timeframe
STRATEGY_ROLE_UNSPECIFIED: StrategyRole
STRATEGY_ROLE_ENTRY: StrategyRole
STRATEGY_ROLE_EXIT: StrategyRole

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...
