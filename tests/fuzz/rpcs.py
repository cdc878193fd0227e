"""Every RPC of every plane, and how to send it raw bytes: the table the fuzz tests and
bench/fuzz_rpcs.py walk.

The RPCs are read from the generated descriptors, so a new method is fuzzed the day its
contract lands. Calls go through a generic channel with identity serializers: the bytes
arrive at the method path exactly as generated, garbage included.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2
from quantmesh.market_data.v1 import market_data_pb2 as md
from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2
from quantmesh.strategy.v1 import strategy_pb2

#: (plane, generated module, service name). The strategy worker is addressed as the "strategy" plane.
#: Control comes last: its fuzzing may lock trading, and the order plane's is deeper while it trades.
SERVICES = (("market_data", md, "MarketData"), ("order", order_pb2, "Order"), ("position", position_pb2, "Position"),
            ("strategy", strategy_pb2, "Strategy"), ("control", control_pb2, "Control"))
#: A status that means the plane failed instead of answering: what the fuzzing must never see.
BROKEN = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})

MONDAY = Timestamp(seconds=1767603601)  # 2026-01-05T09:00:01Z, inside every accepted range
KNOWN_ORDER = "ord-000000000001"  # the first order of a fresh database: the harness submits it
# Requests go out in concurrent batches: a valid subscription stays open until its short wait ends,
# and a batch shares that wait.
UNARY_BATCH, STREAM_BATCH = 25, 100


def _intent(**fields) -> order_pb2.OrderIntent:
    base = dict(client_order_id="fz-base", strategy_slug="fuzz_probe", role=common_pb2.STRATEGY_ROLE_ENTRY,
                instrument="USD_JPY", side=common_pb2.SIDE_BUY, quantity="1000",
                order_type=order_pb2.ORDER_TYPE_MARKET)
    return order_pb2.OrderIntent(**{**base, **fields})


def _tick(**fields) -> md.Tick:
    return md.Tick(**{"instrument": "USD_JPY", "time": MONDAY, "bid": "157.100", "ask": "157.103", **fields})


#: Requests that pass every check, by message type: the fuzzer varies one field of these at a
#: time (and of `NESTED`'s sub-message), so hostile values also reach the checks behind the first.
PLAUSIBLE: dict[str, list[Message]] = {ms[0].DESCRIPTOR.full_name: ms for ms in [
    [control_pb2.SetGlobalFlagsRequest(global_entry_enabled=True, reason="fuzz")],
    [control_pb2.SetStrategyFlagsRequest(slug="fuzz_probe", create_if_missing=True, entry_enabled=True, reason="fz",
                                         note="fuzz")],
    [control_pb2.ListAuditRequest(limit=10, since=MONDAY)],
    [control_pb2.WatchFlagsRequest(heartbeat_seconds=1)],
    [md.StreamCandlesRequest(instruments=["USD_JPY"], timeframes=[common_pb2.TIMEFRAME_S5], resume_after_seq=0)],
    [md.StreamFactorsRequest(instruments=["USD_JPY"], resume_after_seq=0)],
    [md.StreamTicksRequest(instruments=["USD_JPY"], resume_after_seq=0)],
    [md.GetCandlesRequest(instrument="USD_JPY", timeframe=common_pb2.TIMEFRAME_S5, limit=10, start_time=MONDAY)],
    [md.GetQuoteRequest(instrument="USD_JPY")],
    [md.PublishTicksRequest(ticks=[_tick()])],
    [order_pb2.SubmitRequest(intent=_intent()),
     order_pb2.SubmitRequest(intent=_intent(order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1.000",
                                            time_in_force=order_pb2.TIME_IN_FORCE_GTC, decision_time=MONDAY))],
    [order_pb2.SubmitStreamRequest(intent=_intent()),
     order_pb2.SubmitStreamRequest(intent=_intent(order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1.000",
                                                  time_in_force=order_pb2.TIME_IN_FORCE_GTC))],
    [order_pb2.CancelRequest(order_id=KNOWN_ORDER, reason="fuzz")],
    [order_pb2.GetOrderRequest(order_id=KNOWN_ORDER)],
    [order_pb2.ListOrdersRequest(limit=10, strategy_slug="fuzz_probe", states=[order_pb2.ORDER_STATE_NEW])],
    [order_pb2.WatchOrdersRequest(resume_after_seq=0)],
    [order_pb2.WatchFillsRequest(resume_after_seq=0)],
    [order_pb2.GetBrokerPositionsRequest(account="paper")],
    [position_pb2.SnapshotRequest(account="paper", strategy_slugs=["fuzz_probe"], instruments=["USD_JPY"])],
    [position_pb2.WatchPositionsRequest(resume_after_seq=0)],
    [position_pb2.ReconcileRequest(account="paper")],
    [position_pb2.GetEquityCurveRequest(limit=10, since=MONDAY)],
]}
NESTED = {"quantmesh.order.v1.SubmitRequest": "intent", "quantmesh.order.v1.SubmitStreamRequest": "intent",
          "quantmesh.market_data.v1.PublishTicksRequest": "ticks"}


@dataclass(frozen=True, slots=True)
class Rpc:
    plane: str
    service: str  # full name, e.g. quantmesh.order.v1.Order
    name: str
    request: Descriptor
    streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def plausible(self) -> list[Message]:
        return PLAUSIBLE.get(self.request.full_name, [])

    @property
    def nested(self) -> str:
        return NESTED.get(self.request.full_name, "")

    def __str__(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}.{self.name}"


def every_rpc() -> list[Rpc]:
    out = []
    for plane, module, service in SERVICES:
        descriptor = module.DESCRIPTOR.services_by_name[service]
        out += [Rpc(plane, descriptor.full_name, m.name, m.input_type, m.server_streaming)
                for m in descriptor.methods]
    return out


@dataclass
class Tally:
    """Statuses seen per RPC; `broken` keeps the requests that got UNKNOWN or INTERNAL, with the details."""

    codes: Counter = field(default_factory=Counter)
    broken: list[tuple[bytes, str, str]] = field(default_factory=list)

    def add(self, raw: bytes, code: grpc.StatusCode, details: str = "") -> None:
        self.codes[code.name] += 1
        if code in BROKEN:
            self.broken.append((raw, code.name, details))

    @property
    def sent(self) -> int:
        return sum(self.codes.values())


def send(channel: grpc.Channel, rpc: Rpc, batch: Iterable[bytes], tally: Tally, *,
         unary_timeout: float = 30.0, stream_wait: float = 0.3) -> None:
    """Sends a batch at once and tallies each answer.

    A stream that opens and stays quiet (a valid live-only subscription) is given `stream_wait`
    seconds, then counted as OPEN: validation happens before the first message, so a refusal
    arrives within that time on a healthy plane. Whatever a slow plane answers later still lands
    in its log, which the tests read for internal errors."""
    raws = list(batch)
    if not rpc.streaming:
        method = channel.unary_unary(rpc.path)
        futures = [method.future(raw, timeout=unary_timeout) for raw in raws]
        for raw, future in zip(raws, futures):
            try:
                future.result()
                tally.add(raw, grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                tally.add(raw, exc.code(), exc.details() or "")
        return
    method = channel.unary_stream(rpc.path)
    calls = [method(raw, timeout=stream_wait) for raw in raws]
    for raw, call in zip(raws, calls):
        try:
            next(call)
            tally.add(raw, grpc.StatusCode.OK)
        except StopIteration:
            tally.add(raw, grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            code = exc.code()
            # The stream was valid and quiet: it was still open when the wait ran out.
            tally.add(raw, grpc.StatusCode.OK if code == grpc.StatusCode.DEADLINE_EXCEEDED else code,
                      exc.details() or "")
        finally:
            call.cancel()


def serving(channel: grpc.Channel, service: str = "") -> bool:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def fuzz(channel: grpc.Channel, rpc: Rpc, examples: int, *, stop_at_first_break: bool = True) -> Tally:
    """Sends `examples` generated requests (in batches) to `rpc`; with `stop_at_first_break`,
    the first UNKNOWN or INTERNAL fails the hypothesis test, which then shrinks the batch."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzz.messages import request_bytes

    tally = Tally()
    size = STREAM_BATCH if rpc.streaming else UNARY_BATCH

    @settings(max_examples=math.ceil(examples / size), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(request_bytes(rpc.request, rpc.plausible, rpc.nested), min_size=size, max_size=size))
    def hostile_batch(raws):
        seen = len(tally.broken)
        send(channel, rpc, raws, tally)
        if stop_at_first_break:
            assert len(tally.broken) == seen, describe(tally.broken[seen:])

    hostile_batch()
    return tally


def describe(broken: list[tuple[bytes, str, str]]) -> str:
    return "\n".join(f"{code} {details!r} for request bytes {raw[:300]!r}" for raw, code, details in broken[:5])
