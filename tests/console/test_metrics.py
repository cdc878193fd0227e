"""Every plane's /metrics counts what the mesh did, read as Prometheus reads it.

The test does a known amount of trading (refusals under the kill switch, a live order with a
decision time, a fill and its close) and compares each plane's counters before and after.
"""

from __future__ import annotations

from datetime import datetime, timezone

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2
from quantmesh.order.v1 import order_pb2
from tests.console.harness import DESK, eventually, manual_intent

pytestmark = pytest.mark.e2e

SUBMIT = "quantmesh.order.v1.Order/Submit"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, url
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= set(have))


async def submit(planes, intent) -> order_pb2.SubmitResponse | grpc.aio.AioRpcError:
    try:
        return await planes.order.Submit(order_pb2.SubmitRequest(intent=intent), metadata=DESK)
    except grpc.aio.AioRpcError as exc:
        return exc


async def set_lock(planes, locked: bool) -> None:
    await planes.control.SetGlobalFlags(control_pb2.SetGlobalFlagsRequest(
        global_lock=locked, reason="metrics drill" if locked else "metrics drill over"), metadata=DESK)


async def order_plane_in(url: str, state: str) -> Samples | None:
    """The order plane's samples once its guard sees `state` (its quantmesh_trading_state says so)."""
    samples = await scrape(url)
    return samples if value(samples, "quantmesh_trading_state", state=state) == 1 else None


async def filled(planes, client_order_id: str):
    await planes.ticks.step()
    reply = await planes.order.GetOrder(order_pb2.GetOrderRequest(client_order_id=client_order_id))
    return reply.order.state == order_pb2.ORDER_STATE_FILLED


async def test_each_plane_counts_orders_refusals_fills_latency_streams_and_the_trading_state(
        console_mesh, planes, webhook):
    order_url = console_mesh.metrics_url("order")
    before = await scrape(order_url)

    await set_lock(planes, True)
    halted = await eventually(lambda: order_plane_in(order_url, "HALTED"), timeout=15,
                              what="the order plane to see the lock")
    assert value(halted, "quantmesh_trading_state", state="ACTIVE") == 0
    refusals = 3  # in a row: a burst, for the alert below
    for attempt in range(refusals):
        answer = await submit(planes, manual_intent(f"metrics-halted-{attempt}"))
        assert isinstance(answer, grpc.aio.AioRpcError) and "guard.halted" in answer.details()
    await set_lock(planes, False)
    await eventually(lambda: order_plane_in(order_url, "ACTIVE"), timeout=15, what="the order plane to see the unlock")

    # A live order: its decision time is now, so acknowledgement - decision time is a live latency.
    # Its quote is in the future of the pushed market, so it rests until canceled.
    resting = await submit(planes, manual_intent("metrics-live-1", decision_time=datetime.now(timezone.utc)))
    await planes.order.Cancel(order_pb2.CancelRequest(order_id=resting.order.order_id, reason="metrics test"),
                              metadata=DESK)
    await submit(planes, manual_intent("metrics-fill-1"))
    await eventually(lambda: filled(planes, "metrics-fill-1"), timeout=60, what="the buy to fill")
    await submit(planes, manual_intent("metrics-fill-2", side=common_pb2.SIDE_SELL, role=common_pb2.STRATEGY_ROLE_EXIT))
    await eventually(lambda: filled(planes, "metrics-fill-2"), timeout=60, what="the sell to fill")

    after = await scrape(order_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("quantmesh_order_refusals_total", rule="guard.halted") == refusals
    assert grew("quantmesh_orders_total", state="REJECTED") == refusals
    assert grew("quantmesh_orders_total", state="CANCELED") == 1
    assert grew("quantmesh_orders_total", state="FILLED") == 2
    assert grew("quantmesh_fills_total", instrument="USD_JPY", side="buy") == 1
    assert grew("quantmesh_fills_total", instrument="USD_JPY", side="sell") == 1
    assert grew("quantmesh_rpc_duration_seconds_count", method=SUBMIT, code="FAILED_PRECONDITION") == refusals
    assert grew("quantmesh_rpc_duration_seconds_count", method=SUBMIT, code="OK") >= 3
    assert grew("quantmesh_tick_to_order_seconds_count") == 1, "only the order with a live decision time"
    assert value(after, "quantmesh_trading_state", state="ACTIVE") == 1
    assert value(after, "quantmesh_stream_subscribers", stream="fills") >= 1  # the position plane follows them
    assert value(after, "quantmesh_stream_last_seq", stream="fills") >= 2
    assert any(name == "quantmesh_stream_lag_events" for name, _ in after)

    control = await scrape(console_mesh.metrics_url("control"))
    assert value(control, "quantmesh_trading_state", state="ACTIVE") == 1
    assert value(control, "quantmesh_rpc_duration_seconds_count",
                 method="quantmesh.control.v1.Control/SetGlobalFlags", code="OK") >= 2
    market = await scrape(console_mesh.metrics_url("market_data"))
    assert value(market, "quantmesh_stream_last_seq", stream="tick") > 0
    assert value(market, "quantmesh_rpc_duration_seconds_count",
                 method="quantmesh.market_data.v1.MarketData/PublishTicks", code="OK") > 0
    position = await scrape(console_mesh.metrics_url("position"))
    assert value(position, "quantmesh_account_equity", account="paper") > 0
    assert value(position, "quantmesh_stream_last_seq", stream="positions") >= 2

    async def burst_alerted():
        return [text for text in webhook.texts() if "orders refused in the last" in text]

    assert len(await eventually(burst_alerted, timeout=15, what="the refused-orders alert")) == 1

    async def console_counted():
        samples = await scrape(console_mesh.metrics_url("console"))
        return samples if value(samples, "quantmesh_alerts_sent_total", kind="refusals") == 1 else None

    console = await eventually(console_counted, timeout=15, what="the console to count the alert it sent")
    assert value(console, "quantmesh_alerts_sent_total", kind="lock") >= 1
    assert value(console, "quantmesh_alerts_failed_total") == 0
