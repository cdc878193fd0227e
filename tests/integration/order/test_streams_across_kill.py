"""Order.WatchOrders and Order.WatchFills subscribers across a kill -9 of the order plane.

Two subscribers follow the streams the way a position plane or a console does: from the start,
and after a broken stream again with resume_after_seq = the last seq they received. Market
orders are submitted while the plane is killed and restarted. Afterwards each subscriber holds
exactly what a fresh replay from seq 0 gives: every event once, none missing, in seq order, and
every fill the orders' own records list.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import OrderPlane, intent, order_stub, wait_for_state
from tests.support.streams import until_quiet

S = order_pb2
BEFORE, AFTER = 6, 6


class Follower:
    """Reads a stream, resumes after the last seq it got whenever the stream breaks."""

    def __init__(self, address: str, method: str, request_type) -> None:
        self.address, self.method, self.request_type = address, method, request_type
        self.events: list = []
        self.breaks = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                async with grpc.aio.insecure_channel(self.address) as channel:
                    resume = self.events[-1].seq if self.events else 0
                    call = getattr(order_stub(channel), self.method)(self.request_type(resume_after_seq=resume))
                    async for event in call:
                        self.events.append(event)
            except grpc.aio.AioRpcError:
                self.breaks += 1
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def submit(address: str, cids: list[str]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        for cid in cids:
            reply = await order_stub(channel).Submit(S.SubmitRequest(intent=intent(cid, strategy_slug="streams")))
            assert reply.order.state != S.ORDER_STATE_REJECTED, reply.order.reason


async def all_filled(address: str, cids: list[str]) -> list[S.GetOrderResponse]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub, done = order_stub(channel), []
        for cid in cids:
            done.append(await wait_for_state(stub, cid, {S.ORDER_STATE_FILLED}, timeout=60))
            assert done[-1].order.state == S.ORDER_STATE_FILLED, f"{cid} is {S.OrderState.Name(done[-1].order.state)}"
        return done


async def settled(followers: list[Follower], truth: dict[str, int], timeout: float = 30) -> None:
    """Until each follower has reached the last seq of its stream."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(not f.events or f.events[-1].seq < truth[f.method] for f in followers):
        if asyncio.get_running_loop().time() > deadline:
            reached = [(f.method, f.events[-1].seq if f.events else None) for f in followers]
            raise AssertionError(f"the followers stopped short: {reached} of {truth}")
        await asyncio.sleep(0.2)


async def test_subscribers_resume_across_a_kill_9_with_no_gap_and_no_duplicate(order_env):
    plane = OrderPlane(order_env).start()
    followers = [Follower(plane.address, "WatchOrders", S.WatchOrdersRequest),
                 Follower(plane.address, "WatchFills", S.WatchFillsRequest)]
    try:
        for follower in followers:
            follower.start()
        first, then = [f"streams-a{n}" for n in range(BEFORE)], [f"streams-b{n}" for n in range(AFTER)]
        await submit(plane.address, ["streams-warm"])  # one fill the followers see before the kill
        await all_filled(plane.address, ["streams-warm"])
        # kill -9 with the subscribers attached and the orders just acknowledged: their fills come from the
        # venue after the restart (recovery looks them up) or just before the kill.
        await submit(plane.address, first)
        plane.process.kill()
        plane.start()
        await submit(plane.address, then)
        orders = await all_filled(plane.address, ["streams-warm", *first, *then])
        fill_ids = {f.fill_id for reply in orders for f in reply.fills}
        assert len(fill_ids) == 1 + BEFORE + AFTER
        async with grpc.aio.insecure_channel(plane.address) as channel:
            truth = {f.method: await until_quiet(getattr(order_stub(channel), f.method)(
                f.request_type(resume_after_seq=0)), quiet=1.0) for f in followers}
        await settled(followers, {method: events[-1].seq for method, events in truth.items()})
        for follower in followers:
            got = [(e.seq, e.SerializeToString(deterministic=True)) for e in follower.events]
            want = [(e.seq, e.SerializeToString(deterministic=True)) for e in truth[follower.method]]
            assert [seq for seq, _ in got] == [seq for seq, _ in want], f"{follower.method}: a gap or a duplicate"
            assert got == want, f"{follower.method}: an event differs from the stored one"
            assert follower.breaks >= 1, f"{follower.method} never saw the kill"
        assert {e.fill.fill_id for e in followers[1].events} == fill_ids
    finally:
        for follower in followers:
            await follower.stop()
        plane.stop()
