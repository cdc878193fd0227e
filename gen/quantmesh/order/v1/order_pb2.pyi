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

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_STOP: _ClassVar[OrderType]
    ORDER_TYPE_TRAILING_STOP: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]

class OrderState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATE_UNSPECIFIED: _ClassVar[OrderState]
    ORDER_STATE_PENDING_SUBMIT: _ClassVar[OrderState]
    ORDER_STATE_SUBMITTED: _ClassVar[OrderState]
    ORDER_STATE_NEW: _ClassVar[OrderState]
    ORDER_STATE_PARTIALLY_FILLED: _ClassVar[OrderState]
    ORDER_STATE_FILLED: _ClassVar[OrderState]
    ORDER_STATE_CANCELED: _ClassVar[OrderState]
    ORDER_STATE_REJECTED: _ClassVar[OrderState]
    ORDER_STATE_EXPIRED: _ClassVar[OrderState]
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_MARKET: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_STOP: OrderType
ORDER_TYPE_TRAILING_STOP: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
ORDER_STATE_UNSPECIFIED: OrderState
ORDER_STATE_PENDING_SUBMIT: OrderState
ORDER_STATE_SUBMITTED: OrderState
ORDER_STATE_NEW: OrderState
ORDER_STATE_PARTIALLY_FILLED: OrderState
ORDER_STATE_FILLED: OrderState
ORDER_STATE_CANCELED: OrderState
ORDER_STATE_REJECTED: OrderState
ORDER_STATE_EXPIRED: OrderState

class OrderIntent(_message.Message):
    __slots__ = ("client_order_id", "strategy_slug", "role", "instrument", "side", "quantity", "order_type", "limit_price", "stop_price", "time_in_force", "reduce_only", "account", "note", "trace_context", "decision_time", "stop_loss_distance", "take_profit_distance", "no_pyramiding", "trailing_stop_distance", "trail_distance")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    NO_PYRAMIDING_FIELD_NUMBER: _ClassVar[int]
    TRAILING_STOP_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    strategy_slug: str
    role: _common_pb2.StrategyRole
    instrument: str
    side: _common_pb2.Side
    quantity: str
    order_type: OrderType
    limit_price: str
    stop_price: str
    time_in_force: TimeInForce
    reduce_only: bool
    account: str
    note: str
    trace_context: _common_pb2.TraceContext
    decision_time: _timestamp_pb2.Timestamp
    stop_loss_distance: str
    take_profit_distance: str
    no_pyramiding: bool
    trailing_stop_distance: str
    trail_distance: str
    def __init__(self, client_order_id: _Optional[str] = ..., strategy_slug: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.StrategyRole, str]] = ..., instrument: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., quantity: _Optional[str] = ..., order_type: _Optional[_Union[OrderType, str]] = ..., limit_price: _Optional[str] = ..., stop_price: _Optional[str] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., reduce_only: _Optional[bool] = ..., account: _Optional[str] = ..., note: _Optional[str] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stop_loss_distance: _Optional[str] = ..., take_profit_distance: _Optional[str] = ..., no_pyramiding: _Optional[bool] = ..., trailing_stop_distance: _Optional[str] = ..., trail_distance: _Optional[str] = ...) -> None: ...

class OrderRecord(_message.Message):
    __slots__ = ("order_id", "intent", "state", "filled_quantity", "average_fill_price", "commission", "reject_rule", "reason", "broker_order_id", "broker", "created_time", "updated_time")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    REJECT_RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BROKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    intent: OrderIntent
    state: OrderState
    filled_quantity: str
    average_fill_price: str
    commission: str
    reject_rule: str
    reason: str
    broker_order_id: str
    broker: str
    created_time: _timestamp_pb2.Timestamp
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, order_id: _Optional[str] = ..., intent: _Optional[_Union[OrderIntent, _Mapping]] = ..., state: _Optional[_Union[OrderState, str]] = ..., filled_quantity: _Optional[str] = ..., average_fill_price: _Optional[str] = ..., commission: _Optional[str] = ..., reject_rule: _Optional[str] = ..., reason: _Optional[str] = ..., broker_order_id: _Optional[str] = ..., broker: _Optional[str] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Fill(_message.Message):
    __slots__ = ("fill_id", "order_id", "client_order_id", "strategy_slug", "account", "instrument", "side", "quantity", "price", "commission", "time", "broker_fill_id")
    FILL_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BROKER_FILL_ID_FIELD_NUMBER: _ClassVar[int]
    fill_id: str
    order_id: str
    client_order_id: str
    strategy_slug: str
    account: str
    instrument: str
    side: _common_pb2.Side
    quantity: str
    price: str
    commission: str
    time: _timestamp_pb2.Timestamp
    broker_fill_id: str
    def __init__(self, fill_id: _Optional[str] = ..., order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., strategy_slug: _Optional[str] = ..., account: _Optional[str] = ..., instrument: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., quantity: _Optional[str] = ..., price: _Optional[str] = ..., commission: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., broker_fill_id: _Optional[str] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("intent",)
    INTENT_FIELD_NUMBER: _ClassVar[int]
    intent: OrderIntent
    def __init__(self, intent: _Optional[_Union[OrderIntent, _Mapping]] = ...) -> None: ...

class CancelOpenRequest(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "reason")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    reason: str
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelOpenResponse(_message.Message):
    __slots__ = ("canceled", "failures")
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    canceled: _containers.RepeatedCompositeFieldContainer[OrderRecord]
    failures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, canceled: _Optional[_Iterable[_Union[OrderRecord, _Mapping]]] = ..., failures: _Optional[_Iterable[str]] = ...) -> None: ...

class FlattenRequest(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "reason")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    reason: str
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FlattenResponse(_message.Message):
    __slots__ = ("orders", "canceled", "failures")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OrderRecord]
    canceled: _containers.RepeatedCompositeFieldContainer[OrderRecord]
    failures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, orders: _Optional[_Iterable[_Union[OrderRecord, _Mapping]]] = ..., canceled: _Optional[_Iterable[_Union[OrderRecord, _Mapping]]] = ..., failures: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("intents",)
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    intents: _containers.RepeatedCompositeFieldContainer[OrderIntent]
    def __init__(self, intents: _Optional[_Iterable[_Union[OrderIntent, _Mapping]]] = ...) -> None: ...

class SubmitResult(_message.Message):
    __slots__ = ("order", "duplicate", "status", "message")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    order: OrderRecord
    duplicate: bool
    status: str
    message: str
    def __init__(self, order: _Optional[_Union[OrderRecord, _Mapping]] = ..., duplicate: _Optional[bool] = ..., status: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResult, _Mapping]]] = ...) -> None: ...

class SubmitStreamRequest(_message.Message):
    __slots__ = ("intent",)
    INTENT_FIELD_NUMBER: _ClassVar[int]
    intent: OrderIntent
    def __init__(self, intent: _Optional[_Union[OrderIntent, _Mapping]] = ...) -> None: ...

class SubmitStreamResponse(_message.Message):
    __slots__ = ("client_order_id", "result")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    result: SubmitResult
    def __init__(self, client_order_id: _Optional[str] = ..., result: _Optional[_Union[SubmitResult, _Mapping]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("order", "duplicate")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    order: OrderRecord
    duplicate: bool
    def __init__(self, order: _Optional[_Union[OrderRecord, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("order_id", "client_order_id", "reason")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    reason: str
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: OrderRecord
    def __init__(self, order: _Optional[_Union[OrderRecord, _Mapping]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id", "client_order_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order", "fills")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    FILLS_FIELD_NUMBER: _ClassVar[int]
    order: OrderRecord
    fills: _containers.RepeatedCompositeFieldContainer[Fill]
    def __init__(self, order: _Optional[_Union[OrderRecord, _Mapping]] = ..., fills: _Optional[_Iterable[_Union[Fill, _Mapping]]] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("strategy_slug", "instrument", "states", "limit", "page_token")
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    strategy_slug: str
    instrument: str
    states: _containers.RepeatedScalarFieldContainer[OrderState]
    limit: int
    page_token: str
    def __init__(self, strategy_slug: _Optional[str] = ..., instrument: _Optional[str] = ..., states: _Optional[_Iterable[_Union[OrderState, str]]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OrderRecord]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[OrderRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchOrdersRequest(_message.Message):
    __slots__ = ("strategy_slugs", "resume_after_seq")
    STRATEGY_SLUGS_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    strategy_slugs: _containers.RepeatedScalarFieldContainer[str]
    resume_after_seq: int
    def __init__(self, strategy_slugs: _Optional[_Iterable[str]] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class WatchOrdersResponse(_message.Message):
    __slots__ = ("seq", "order", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    order: OrderRecord
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., order: _Optional[_Union[OrderRecord, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class WatchFillsRequest(_message.Message):
    __slots__ = ("strategy_slugs", "resume_after_seq")
    STRATEGY_SLUGS_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    strategy_slugs: _containers.RepeatedScalarFieldContainer[str]
    resume_after_seq: int
    def __init__(self, strategy_slugs: _Optional[_Iterable[str]] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class WatchFillsResponse(_message.Message):
    __slots__ = ("seq", "fill", "trace_context")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    fill: Fill
    trace_context: _common_pb2.TraceContext
    def __init__(self, seq: _Optional[int] = ..., fill: _Optional[_Union[Fill, _Mapping]] = ..., trace_context: _Optional[_Union[_common_pb2.TraceContext, _Mapping]] = ...) -> None: ...

class GetBrokerPositionsRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class BrokerPosition(_message.Message):
    __slots__ = ("account", "instrument", "quantity", "average_price")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    account: str
    instrument: str
    quantity: str
    average_price: str
    def __init__(self, account: _Optional[str] = ..., instrument: _Optional[str] = ..., quantity: _Optional[str] = ..., average_price: _Optional[str] = ...) -> None: ...

class GetBrokerPositionsResponse(_message.Message):
    __slots__ = ("broker", "positions", "as_of", "last_fill_seq")
    BROKER_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_SEQ_FIELD_NUMBER: _ClassVar[int]
    broker: str
    positions: _containers.RepeatedCompositeFieldContainer[BrokerPosition]
    as_of: _timestamp_pb2.Timestamp
    last_fill_seq: int
    def __init__(self, broker: _Optional[str] = ..., positions: _Optional[_Iterable[_Union[BrokerPosition, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_fill_seq: _Optional[int] = ...) -> None: ...

class ListFinancingRequest(_message.Message):
    __slots__ = ("after_seq", "limit")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListFinancingResponse(_message.Message):
    __slots__ = ("charges", "last_seq")
    CHARGES_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    charges: _containers.RepeatedCompositeFieldContainer[FinancingCharge]
    last_seq: int
    def __init__(self, charges: _Optional[_Iterable[_Union[FinancingCharge, _Mapping]]] = ..., last_seq: _Optional[int] = ...) -> None: ...

class FinancingCharge(_message.Message):
    __slots__ = ("seq", "financing_id", "account", "instrument", "strategy_slug", "amount", "currency", "time", "broker_fill_id")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FINANCING_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_SLUG_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BROKER_FILL_ID_FIELD_NUMBER: _ClassVar[int]
    seq: int
    financing_id: str
    account: str
    instrument: str
    strategy_slug: str
    amount: str
    currency: str
    time: _timestamp_pb2.Timestamp
    broker_fill_id: str
    def __init__(self, seq: _Optional[int] = ..., financing_id: _Optional[str] = ..., account: _Optional[str] = ..., instrument: _Optional[str] = ..., strategy_slug: _Optional[str] = ..., amount: _Optional[str] = ..., currency: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., broker_fill_id: _Optional[str] = ...) -> None: ...
