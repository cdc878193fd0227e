"""services/common/metrics.py: the registry of one process, its exporter and what it watches.

(Here with the console's tests: the console's issue brought the metrics to every plane.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.common.auth import TokenTable, bearer_metadata
from services.common.config import Env
from services.common.errors import InvalidArgument
from services.common.metrics import OrderFlow, ProcessMetrics, start_metrics
from services.common.reconnect import count_reconnects, follow_forever
from services.common.server import GrpcHost, binding
from services.common.streams import Broadcaster


def samples(metrics: ProcessMetrics) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.exposition().decode()) for s in family.samples}


def value(metrics: ProcessMetrics, name: str, **labels: str) -> float | None:
    wanted = tuple(sorted(labels.items()))
    return samples(metrics).get((name, wanted))


class Refusing(strategy_pb2_grpc.StrategyServicer):
    async def GetStatus(self, request, context):
        raise InvalidArgument("not today")


async def test_every_call_is_timed_with_the_status_its_caller_got():
    metrics = ProcessMetrics("test")
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse("good=desk:operator"), policy={},
                    bindings=[binding(strategy_pb2, "Strategy", strategy_pb2_grpc.add_StrategyServicer_to_server,
                                      Refusing())])
    metrics.watch(host)
    await host.start()
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            stub = strategy_pb2_grpc.StrategyStub(channel)
            for metadata, code in ((bearer_metadata("good"), grpc.StatusCode.INVALID_ARGUMENT),
                                   ((), grpc.StatusCode.UNAUTHENTICATED)):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.GetStatus(strategy_pb2.GetStatusRequest(), metadata=metadata)
                assert refused.value.code() == code
    finally:
        await host.stop()
    method = "quantmesh.strategy.v1.Strategy/GetStatus"
    assert value(metrics, "quantmesh_rpc_duration_seconds_count", method=method, code="INVALID_ARGUMENT") == 1
    assert value(metrics, "quantmesh_rpc_duration_seconds_count", method=method, code="UNAUTHENTICATED") == 1


async def test_observing_calls_after_start_is_refused():
    host = GrpcHost(listen="127.0.0.1:0", bindings=[], tokens=TokenTable(), policy={})
    await host.start()
    try:
        with pytest.raises(RuntimeError, match="before start"):
            ProcessMetrics("test").watch(host)
    finally:
        await host.stop()


async def test_each_subscriber_shows_its_queue_depth_and_lag():
    stream: Broadcaster[str] = Broadcaster(name="fills", queue_size=10)
    metrics = ProcessMetrics("test").watch(streams=lambda: (stream,))
    subscription = stream.subscribe(after_seq=None)
    first = asyncio.ensure_future(subscription.__anext__())
    await asyncio.sleep(0)  # the subscriber is registered and waiting
    for event in ("a", "b", "c"):
        stream.publish(event)
    assert await first == (1, "a")
    assert value(metrics, "quantmesh_stream_queue_depth", stream="fills", subscriber="#1") == 2
    assert value(metrics, "quantmesh_stream_lag_events", stream="fills", subscriber="#1") == 2
    assert value(metrics, "quantmesh_stream_subscribers", stream="fills") == 1
    assert value(metrics, "quantmesh_stream_last_seq", stream="fills") == 3
    assert await subscription.__anext__() == (2, "b")
    assert await subscription.__anext__() == (3, "c")
    assert value(metrics, "quantmesh_stream_lag_events", stream="fills", subscriber="#1") == 0
    await subscription.aclose()
    assert value(metrics, "quantmesh_stream_subscribers", stream="fills") == 0
    assert value(metrics, "quantmesh_stream_lag_events", stream="fills", subscriber="#1") is None


async def test_a_filtered_subscriber_that_has_everything_meant_for_it_is_not_behind():
    stream: Broadcaster[str] = Broadcaster(name="orders")
    metrics = ProcessMetrics("test").watch(streams=lambda: (stream,))
    subscription = stream.subscribe(after_seq=None, matches=lambda event: event == "mine")
    waiting = asyncio.ensure_future(subscription.__anext__())
    await asyncio.sleep(0)
    stream.publish("mine")
    stream.publish("theirs")
    assert await waiting == (1, "mine")
    assert value(metrics, "quantmesh_stream_lag_events", stream="orders", subscriber="#1") == 0
    await subscription.aclose()


async def test_reconnects_of_followers_started_after_the_counter_are_counted():
    metrics = ProcessMetrics("test")
    outcomes = [ConnectionError("down"), True, False]

    async def session() -> bool:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def process() -> None:
        count_reconnects(metrics.count_reconnect)
        await follow_forever(session, what="control", address="127.0.0.1:1", log=logging.getLogger("test"),
                             running=lambda: bool(outcomes))

    await asyncio.create_task(process())
    assert value(metrics, "quantmesh_reconnects_total", peer="control") == 2  # after the failure, after the end


async def test_every_pause_of_the_garbage_collector_is_timed_until_the_metrics_close():
    metrics = ProcessMetrics("test")
    gc.collect()
    full = value(metrics, "quantmesh_gc_pause_seconds_count", generation="2")
    assert full is not None and full >= 1
    assert value(metrics, "quantmesh_gc_pause_seconds_sum", generation="2") > 0
    await metrics.close()
    gc.collect()
    assert value(metrics, "quantmesh_gc_pause_seconds_count", generation="2") == full  # stopped with the metrics


def order(state: str, *, rule: str = "", decided: datetime | None = None, acknowledged: datetime | None = None):
    now = acknowledged or datetime.now(timezone.utc)
    return SimpleNamespace(state=state, reject_rule=rule, updated_time=now,
                           intent=SimpleNamespace(decision_time=decided))


def test_order_flow_counts_states_refusals_and_live_tick_to_order_only():
    metrics = ProcessMetrics("test")
    flow = OrderFlow(metrics.registry)
    now = datetime.now(timezone.utc)
    flow.on_order(order("REJECTED", rule="guard.halted"))
    flow.on_order(order("REJECTED"))  # the venue refused: no rule of ours
    flow.on_order(order("NEW", decided=now - timedelta(milliseconds=40), acknowledged=now))
    flow.on_order(order("NEW", decided=datetime(2013, 2, 4, tzinfo=timezone.utc), acknowledged=now))  # a replay
    flow.on_order(order("NEW", decided=None))
    flow.on_fill(SimpleNamespace(instrument="USD_JPY", side="buy"))
    assert value(metrics, "quantmesh_orders_total", state="REJECTED") == 2
    assert value(metrics, "quantmesh_orders_total", state="NEW") == 3
    assert value(metrics, "quantmesh_order_refusals_total", rule="guard.halted") == 1
    assert value(metrics, "quantmesh_order_refusals_total", rule="venue") == 1
    assert value(metrics, "quantmesh_tick_to_order_seconds_count") == 1
    assert value(metrics, "quantmesh_tick_to_order_seconds_bucket", le="0.05") == 1
    assert value(metrics, "quantmesh_fills_total", instrument="USD_JPY", side="buy") == 1


async def test_the_order_plane_is_followed_in_process_and_resumes_when_cut_off():
    engine = SimpleNamespace(order_events=Broadcaster(name="order events", queue_size=2),
                             fill_events=Broadcaster(name="fills"))
    metrics = ProcessMetrics("test").watch(orders=engine)
    await asyncio.sleep(0.01)  # the followers subscribe
    for _ in range(5):  # more than its queue at once: cut off, then resumed after the last it counted
        engine.order_events.publish(SimpleNamespace(order=order("FILLED")))
    engine.fill_events.publish(SimpleNamespace(fill=SimpleNamespace(instrument="USD_JPY", side="sell")))
    for _ in range(50):
        if value(metrics, "quantmesh_orders_total", state="FILLED") == 5:
            break
        await asyncio.sleep(0.01)
    assert value(metrics, "quantmesh_orders_total", state="FILLED") == 5
    assert value(metrics, "quantmesh_fills_total", instrument="USD_JPY", side="sell") == 1
    await metrics.close()


def test_trading_state_account_and_worker_are_read_when_scraped():
    view = SimpleNamespace(state="REDUCING")
    figures = SimpleNamespace(account="paper", balance="100", equity="90", drawdown="10", drawdown_fraction="0.1")
    status = SimpleNamespace(slug="ma_cross", role="entry", state="PAUSED", events=7, intents_submitted=2,
                             intents_rejected=1, skipped_by_flags=3)
    metrics = ProcessMetrics("test").watch(flags=SimpleNamespace(view=lambda: view), account=lambda: figures,
                                           worker=status)
    assert value(metrics, "quantmesh_trading_state", state="REDUCING") == 1
    assert value(metrics, "quantmesh_trading_state", state="ACTIVE") == 0
    assert value(metrics, "quantmesh_account_drawdown_fraction", account="paper") == 0.1
    assert value(metrics, "quantmesh_worker_state", strategy="ma_cross", role="entry", state="PAUSED") == 1
    assert value(metrics, "quantmesh_worker_skipped_by_flags_total", strategy="ma_cross", role="entry") == 3
    view = None
    assert value(metrics, "quantmesh_trading_state", state="REDUCING") == 0  # unknown: no state is 1


async def test_the_exporter_serves_the_registry_where_the_variable_says():
    metrics = await start_metrics("test", Env({"QUANTMESH_METRICS_LISTEN": "127.0.0.1:0"}))
    metrics.count_reconnect("position")
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{metrics.port}/metrics") as reply:
            text = await reply.text()
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert 'quantmesh_reconnects_total{peer="position"} 1.0' in text
        assert "process_cpu_seconds_total" in text
    finally:
        await metrics.close()


async def test_no_variable_serves_nothing_and_a_bad_one_stops_with_a_sentence(capsys):
    assert (await start_metrics("test", Env({}))).port == 0
    with pytest.raises(SystemExit) as stopped:
        await start_metrics("order", Env({"QUANTMESH_METRICS_LISTEN": "nine-four-six-four"}))
    assert stopped.value.code == 2
    assert "order: QUANTMESH_METRICS_LISTEN='nine-four-six-four' is not host:port" in capsys.readouterr().err


async def test_a_taken_address_is_logged_and_the_process_carries_on(caplog):
    first = await start_metrics("order", Env({"QUANTMESH_METRICS_LISTEN": "127.0.0.1:0"}))
    try:
        second = await start_metrics("order", Env({"QUANTMESH_METRICS_LISTEN": f"127.0.0.1:{first.port}"}))
        assert second.port == 0
        second.count_reconnect("control")  # still counts, for when it is served again
        assert "metrics cannot be served; carrying on without them" in caplog.text
    finally:
        await first.close()


def test_a_source_that_fails_leaves_a_gap_not_a_failed_scrape(caplog):
    def broken():
        raise AttributeError("the plane renamed its engine")

    metrics = ProcessMetrics("test").watch(streams=broken, trading_state=lambda: "HALTED")
    assert value(metrics, "quantmesh_trading_state", state="HALTED") == 1
    assert value(metrics, "quantmesh_stream_subscribers") is None
    assert "a metrics source failed while scraped" in caplog.text
