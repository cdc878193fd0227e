"""The order plane's read, cancel and watch requests as domain values (Submit is in intents.py).

Every field is checked here, before the engine or the store sees it: an order id that
does not fit the bigint key, a NUL in a client id or a page token from elsewhere is an
INVALID_ARGUMENT with a sentence, never a database error.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from quantmesh.order.v1 import order_pb2
from services.common import validation
from services.common.errors import InvalidArgument
from services.common.vocabulary import OrderState
from services.common.wire import ORDER_STATE_FROM_PROTO
from services.order.intents import CLIENT_ORDER_ID
from services.order.records import number_of

ORDER_ID_FORM = "an order id like ord-000000000042"
CLIENT_ORDER_ID_FORM = "a client order id of 1 to 64 characters from [A-Za-z0-9._:-]"
MAX_REASON_CHARS = 500
DEFAULT_PAGE, MAX_PAGE = 100, 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRef:
    """One order, named by its server id or its client id (exactly one is set)."""

    order_id: str = ""
    client_order_id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelOrder:
    order: OrderRef
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderQuery:
    """ListOrders in domain terms; empty filters match everything."""

    strategy_slug: str
    instrument: str
    states: tuple[OrderState, ...]
    limit: int
    before_number: int | None


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamRequest:
    """WatchOrders / WatchFills: the strategies to follow (empty: all) and where to resume."""

    strategy_slugs: frozenset[str]
    after_seq: int | None


def order_ref(request: order_pb2.GetOrderRequest | order_pb2.CancelRequest) -> OrderRef:
    if request.order_id and request.client_order_id:
        raise InvalidArgument("give order_id or client_order_id, not both")
    if request.order_id:
        if number_of(request.order_id) is None:
            raise InvalidArgument(f"order_id {validation.shown(request.order_id)} is not {ORDER_ID_FORM}")
        return OrderRef(order_id=request.order_id)
    if request.client_order_id:
        validation.name("client_order_id", request.client_order_id, pattern=CLIENT_ORDER_ID,
                        form=CLIENT_ORDER_ID_FORM)
        return OrderRef(client_order_id=request.client_order_id)
    raise InvalidArgument("give order_id or client_order_id")


def cancel_order(request: order_pb2.CancelRequest) -> CancelOrder:
    return CancelOrder(order=order_ref(request),
                       reason=validation.text("reason", request.reason, max_chars=MAX_REASON_CHARS))


def order_query(request: order_pb2.ListOrdersRequest) -> OrderQuery:
    before = None
    if request.page_token:
        before = number_of(request.page_token)
        if before is None:
            raise InvalidArgument(f"page_token {validation.shown(request.page_token)} is not a token from a previous "
                                  "response; send next_page_token unchanged, or none for the first page")
    states = []
    for value in request.states:
        if value not in ORDER_STATE_FROM_PROTO:
            raise InvalidArgument(f"states has {value}, which is not an order state (ORDER_STATE_NEW, ...)")
        states.append(ORDER_STATE_FROM_PROTO[value])
    return OrderQuery(
        strategy_slug=validation.slug("strategy_slug", request.strategy_slug) if request.strategy_slug else "",
        instrument=validation.name("instrument", request.instrument, pattern=validation.INSTRUMENT,
                                   form=validation.INSTRUMENT_FORM) if request.instrument else "",
        states=tuple(dict.fromkeys(states)), limit=validation.limit("limit", request.limit, default=DEFAULT_PAGE, maximum=MAX_PAGE),
        before_number=before)


def stream_request(request: order_pb2.WatchOrdersRequest | order_pb2.WatchFillsRequest) -> StreamRequest:
    return StreamRequest(strategy_slugs=validation.slugs("strategy_slugs", request.strategy_slugs),
                         after_seq=validation.resume_after(request))


def account_of(request: order_pb2.GetBrokerPositionsRequest, *, default_account: str,
               accounts: Collection[str] = ()) -> str:
    """The account asked about: empty means the default; others must be ones this plane trades for."""
    if not request.account:
        return default_account
    return validation.known("account", request.account, accounts or (default_account,),
                            setting="QUANTMESH_ACCOUNT; leave account empty for the default")
