import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quantmesh.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_STATE_UNSPECIFIED: _ClassVar[WorkerState]
    WORKER_STATE_WARMING_UP: _ClassVar[WorkerState]
    WORKER_STATE_RUNNING: _ClassVar[WorkerState]
    WORKER_STATE_PAUSED: _ClassVar[WorkerState]
    WORKER_STATE_RECONNECTING: _ClassVar[WorkerState]
WORKER_STATE_UNSPECIFIED: WorkerState
WORKER_STATE_WARMING_UP: WorkerState
WORKER_STATE_RUNNING: WorkerState
WORKER_STATE_PAUSED: WorkerState
WORKER_STATE_RECONNECTING: WorkerState

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Decision(_message.Message):
    __slots__ = ("time", "action", "reason", "client_order_id", "instrument")
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    action: str
    reason: str
    client_order_id: str
    instrument: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ..., client_order_id: _Optional[str] = ..., instrument: _Optional[str] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("slug", "role", "interface_version", "state", "last_candle_seq", "last_factor_seq", "last_decision", "events", "intents_submitted", "intents_rejected", "strategy_errors", "last_error", "skipped_by_flags", "params", "started_time", "params_version", "allocation_version", "allocation", "settings_problem")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SLUG_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_CANDLE_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_FACTOR_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_DECISION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    INTENTS_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    INTENTS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BY_FLAGS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    STARTED_TIME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    slug: str
    role: _common_pb2.StrategyRole
    interface_version: int
    state: WorkerState
    last_candle_seq: int
    last_factor_seq: int
    last_decision: Decision
    events: int
    intents_submitted: int
    intents_rejected: int
    strategy_errors: int
    last_error: str
    skipped_by_flags: int
    params: _containers.ScalarMap[str, str]
    started_time: _timestamp_pb2.Timestamp
    params_version: int
    allocation_version: int
    allocation: str
    settings_problem: str
    def __init__(self, slug: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.StrategyRole, str]] = ..., interface_version: _Optional[int] = ..., state: _Optional[_Union[WorkerState, str]] = ..., last_candle_seq: _Optional[int] = ..., last_factor_seq: _Optional[int] = ..., last_decision: _Optional[_Union[Decision, _Mapping]] = ..., events: _Optional[int] = ..., intents_submitted: _Optional[int] = ..., intents_rejected: _Optional[int] = ..., strategy_errors: _Optional[int] = ..., last_error: _Optional[str] = ..., skipped_by_flags: _Optional[int] = ..., params: _Optional[_Mapping[str, str]] = ..., started_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., params_version: _Optional[int] = ..., allocation_version: _Optional[int] = ..., allocation: _Optional[str] = ..., settings_problem: _Optional[str] = ...) -> None: ...
