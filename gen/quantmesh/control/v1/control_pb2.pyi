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

class TradingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADING_STATE_UNSPECIFIED: _ClassVar[TradingState]
    TRADING_STATE_ACTIVE: _ClassVar[TradingState]
    TRADING_STATE_REDUCING: _ClassVar[TradingState]
    TRADING_STATE_HALTED: _ClassVar[TradingState]
TRADING_STATE_UNSPECIFIED: TradingState
TRADING_STATE_ACTIVE: TradingState
TRADING_STATE_REDUCING: TradingState
TRADING_STATE_HALTED: TradingState

class StrategyFlags(_message.Message):
    __slots__ = ("slug", "entry_enabled", "exit_enabled", "note", "updated_time")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    EXIT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    slug: str
    entry_enabled: bool
    exit_enabled: bool
    note: str
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, slug: _Optional[str] = ..., entry_enabled: _Optional[bool] = ..., exit_enabled: _Optional[bool] = ..., note: _Optional[str] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FlagSnapshot(_message.Message):
    __slots__ = ("version", "global_entry_enabled", "global_exit_enabled", "global_lock", "state", "strategies", "updated_time", "lock_cancels_open_orders")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ENTRY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_EXIT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_LOCK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCK_CANCELS_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    version: int
    global_entry_enabled: bool
    global_exit_enabled: bool
    global_lock: bool
    state: TradingState
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyFlags]
    updated_time: _timestamp_pb2.Timestamp
    lock_cancels_open_orders: bool
    def __init__(self, version: _Optional[int] = ..., global_entry_enabled: _Optional[bool] = ..., global_exit_enabled: _Optional[bool] = ..., global_lock: _Optional[bool] = ..., state: _Optional[_Union[TradingState, str]] = ..., strategies: _Optional[_Iterable[_Union[StrategyFlags, _Mapping]]] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lock_cancels_open_orders: _Optional[bool] = ...) -> None: ...

class GetFlagsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetFlagsResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: FlagSnapshot
    def __init__(self, snapshot: _Optional[_Union[FlagSnapshot, _Mapping]] = ...) -> None: ...

class SetGlobalFlagsRequest(_message.Message):
    __slots__ = ("global_entry_enabled", "global_exit_enabled", "global_lock", "reason", "expected_version", "cancel_open_orders")
    GLOBAL_ENTRY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_EXIT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_LOCK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANCEL_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    global_entry_enabled: bool
    global_exit_enabled: bool
    global_lock: bool
    reason: str
    expected_version: int
    cancel_open_orders: bool
    def __init__(self, global_entry_enabled: _Optional[bool] = ..., global_exit_enabled: _Optional[bool] = ..., global_lock: _Optional[bool] = ..., reason: _Optional[str] = ..., expected_version: _Optional[int] = ..., cancel_open_orders: _Optional[bool] = ...) -> None: ...

class SetGlobalFlagsResponse(_message.Message):
    __slots__ = ("snapshot", "enforced_by", "not_enforced_by")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_BY_FIELD_NUMBER: _ClassVar[int]
    NOT_ENFORCED_BY_FIELD_NUMBER: _ClassVar[int]
    snapshot: FlagSnapshot
    enforced_by: _containers.RepeatedScalarFieldContainer[str]
    not_enforced_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, snapshot: _Optional[_Union[FlagSnapshot, _Mapping]] = ..., enforced_by: _Optional[_Iterable[str]] = ..., not_enforced_by: _Optional[_Iterable[str]] = ...) -> None: ...

class SetStrategyFlagsRequest(_message.Message):
    __slots__ = ("slug", "entry_enabled", "exit_enabled", "note", "reason", "expected_version", "create_if_missing")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    EXIT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_IF_MISSING_FIELD_NUMBER: _ClassVar[int]
    slug: str
    entry_enabled: bool
    exit_enabled: bool
    note: str
    reason: str
    expected_version: int
    create_if_missing: bool
    def __init__(self, slug: _Optional[str] = ..., entry_enabled: _Optional[bool] = ..., exit_enabled: _Optional[bool] = ..., note: _Optional[str] = ..., reason: _Optional[str] = ..., expected_version: _Optional[int] = ..., create_if_missing: _Optional[bool] = ...) -> None: ...

class SetStrategyFlagsResponse(_message.Message):
    __slots__ = ("snapshot", "enforced_by", "not_enforced_by")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ENFORCED_BY_FIELD_NUMBER: _ClassVar[int]
    NOT_ENFORCED_BY_FIELD_NUMBER: _ClassVar[int]
    snapshot: FlagSnapshot
    enforced_by: _containers.RepeatedScalarFieldContainer[str]
    not_enforced_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, snapshot: _Optional[_Union[FlagSnapshot, _Mapping]] = ..., enforced_by: _Optional[_Iterable[str]] = ..., not_enforced_by: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchFlagsRequest(_message.Message):
    __slots__ = ("heartbeat_seconds", "guard")
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GUARD_FIELD_NUMBER: _ClassVar[int]
    heartbeat_seconds: int
    guard: str
    def __init__(self, heartbeat_seconds: _Optional[int] = ..., guard: _Optional[str] = ...) -> None: ...

class WatchFlagsResponse(_message.Message):
    __slots__ = ("seq", "snapshot", "heartbeat", "sent_time", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SENT_TIME_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    snapshot: FlagSnapshot
    heartbeat: bool
    sent_time: _timestamp_pb2.Timestamp
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., snapshot: _Optional[_Union[FlagSnapshot, _Mapping]] = ..., heartbeat: _Optional[bool] = ..., sent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("actor", "slug", "flag", "since", "until", "limit", "page_token", "event", "plane")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    actor: str
    slug: str
    flag: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    page_token: str
    event: str
    plane: str
    def __init__(self, actor: _Optional[str] = ..., slug: _Optional[str] = ..., flag: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., event: _Optional[str] = ..., plane: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("id", "version", "actor", "role", "source", "reason", "slug", "flag", "old_value", "new_value", "time", "event", "plane", "mode", "site", "session", "subject")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    id: int
    version: int
    actor: str
    role: str
    source: str
    reason: str
    slug: str
    flag: str
    old_value: str
    new_value: str
    time: _timestamp_pb2.Timestamp
    event: str
    plane: str
    mode: str
    site: str
    session: str
    subject: str
    def __init__(self, id: _Optional[int] = ..., version: _Optional[int] = ..., actor: _Optional[str] = ..., role: _Optional[str] = ..., source: _Optional[str] = ..., reason: _Optional[str] = ..., slug: _Optional[str] = ..., flag: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event: _Optional[str] = ..., plane: _Optional[str] = ..., mode: _Optional[str] = ..., site: _Optional[str] = ..., session: _Optional[str] = ..., subject: _Optional[str] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("record_id", "event", "plane", "mode", "actor", "role", "site", "session", "source", "reason", "strategy_slug", "subject", "old_value", "new_value", "time")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    event: str
    plane: str
    mode: str
    actor: str
    role: str
    site: str
    session: str
    source: str
    reason: str
    strategy_slug: str
    subject: str
    old_value: str
    new_value: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, record_id: _Optional[str] = ..., event: _Optional[str] = ..., plane: _Optional[str] = ..., mode: _Optional[str] = ..., actor: _Optional[str] = ..., role: _Optional[str] = ..., site: _Optional[str] = ..., session: _Optional[str] = ..., source: _Optional[str] = ..., reason: _Optional[str] = ..., strategy_slug: _Optional[str] = ..., subject: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordAuditRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...

class RecordAuditResponse(_message.Message):
    __slots__ = ("recorded", "duplicates")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    duplicates: int
    def __init__(self, recorded: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AckFlagsRequest(_message.Message):
    __slots__ = ("guard", "version")
    GUARD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    guard: str
    version: int
    def __init__(self, guard: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AckFlagsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
