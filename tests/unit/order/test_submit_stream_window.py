"""SubmitStream's window: a caller that stops reading its answers stops being read.

The servicer over a stand-in engine that answers at once: the only thing that can hold the
reader back is the window of intents read but not yet answered on the wire."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from services.common.vocabulary import OrderState
from services.order.records import OrderRecord
from services.order.server import MAX_STREAM_IN_FLIGHT, OrderServicer

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


class AnswersAtOnce:
    def __init__(self) -> None:
        self.submitted: list[str] = []

    async def submit(self, intent, actor, *, role):
        self.submitted.append(intent.client_order_id)
        return OrderRecord(number=len(self.submitted), intent=intent, state=OrderState.NEW, created_time=NOW,
                           updated_time=NOW), False


def request(n: int) -> order_pb2.SubmitStreamRequest:
    return order_pb2.SubmitStreamRequest(intent=order_pb2.OrderIntent(
        client_order_id=f"w-{n}", strategy_slug="window", role=common_pb2.STRATEGY_ROLE_ENTRY, instrument="USD_JPY",
        side=common_pb2.SIDE_BUY, quantity="1000", order_type=order_pb2.ORDER_TYPE_MARKET))


async def test_a_caller_that_stops_reading_answers_stops_being_read():
    engine = AnswersAtOnce()
    read = 0

    async def intents():
        nonlocal read
        for n in range(5 * MAX_STREAM_IN_FLIGHT):
            read += 1
            yield request(n)
            if n % 2:
                await asyncio.sleep(0)  # a client that writes faster than the plane could ever answer

    servicer = OrderServicer(engine, instruments=("USD_JPY",), default_account="paper", broker_positions=None)
    answers = servicer.SubmitStream(intents(), context=None)
    first = [await anext(answers) for _ in range(10)]
    for _ in range(200):  # let the reader run as far as it can while nobody reads the answers
        await asyncio.sleep(0)
    # 10 answered on the wire; at most the window more read, plus the one it is waiting to place.
    assert MAX_STREAM_IN_FLIGHT <= read <= 10 + MAX_STREAM_IN_FLIGHT + 1
    assert len(engine.submitted) <= 10 + MAX_STREAM_IN_FLIGHT
    rest = [reply async for reply in answers]  # reading again lets it through to the end
    assert read == 5 * MAX_STREAM_IN_FLIGHT
    assert sorted(r.client_order_id for r in [*first, *rest]) == sorted(f"w-{n}" for n in range(read))
    assert {r.result.status for r in [*first, *rest]} == {"OK"}
