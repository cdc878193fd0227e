"""Prometheus metrics for every process: one registry per process, passed in, and its exporter.

A process builds one `ProcessMetrics` (its own `CollectorRegistry`, never prometheus_client's
global default one) and hands it what to watch:

- every gRPC call, by a server interceptor (`watch(host)`): a latency histogram per method and
  final status code, Submit included;
- the streams it serves (`Broadcaster`s): subscribers, the last seq, and for each subscriber its
  queue depth and how many events it is behind, read at scrape time;
- the trading state (ACTIVE, REDUCING, HALTED) as the process sees it;
- in the order plane, its order and fill streams observed in-process: state changes by state,
  refusals by rule, fills, and tick->order latency;
- in the position plane, the account's balance, equity and drawdown; in a worker, its state
  and counters; reconnects of every follower (services/common/reconnect.py).

`start_metrics` is what a process's __main__ calls first: it reads QUANTMESH_METRICS_LISTEN
and, when set, serves `GET /metrics` there (aiohttp, in the process's own event loop, so a
scrape reads the streams between two steps of the loop and never races it).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, exposition, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from services.common.config import ConfigError, Env
from services.common.errors import FailedPrecondition, ResourceExhausted
from services.common.heap import CollectorPauses
from services.common.reconnect import count_reconnects
from services.common.streams import Broadcaster

log = logging.getLogger(__name__)

TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
WORKER_STATES = ("WARMING_UP", "RUNNING", "PAUSED", "RECONNECTING")
#: Seconds, from a loopback health check to a venue round trip.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GC_PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
TICK_TO_ORDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: An acknowledgement further than this after the quote the decision saw is not live trading but a
#: replay or a backtest (decision times are data times), and would only bury the live figures.
LIVE_TICK_TO_ORDER = timedelta(minutes=5)
#: The text format every Prometheus server reads (prometheus_client's newest announces 1.0.0).
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricsConfig:
    """Where the exporter listens; None serves nothing (the registry still counts)."""

    listen: str | None

    @classmethod
    def from_env(cls, env: Env) -> "MetricsConfig":
        if env.optional("QUANTMESH_METRICS_LISTEN") is None:
            return cls(listen=None)
        return cls(listen=env.address("QUANTMESH_METRICS_LISTEN", ""))


class ProcessMetrics:
    """The metrics of one process in a registry of its own."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.rpc_seconds = Histogram(
            "quantmesh_rpc_duration_seconds", "gRPC calls served, by method and final status code; for a "
            "server stream, how long it stayed open", ["method", "code"], buckets=RPC_BUCKETS,
            registry=self.registry)
        self.reconnects = Counter("quantmesh_reconnects_total", "Streams followed again after they broke or "
                                  "could not be opened, by what was followed", ["peer"], registry=self.registry)
        gc_pauses = Histogram(
            "quantmesh_gc_pause_seconds", "Pauses of the cyclic garbage collector, by generation (2: a full "
            "collection); the event loop and every call in flight wait through each", ["generation"],
            buckets=GC_PAUSE_BUCKETS, registry=self.registry)
        self._gc_pauses = CollectorPauses(lambda generation, seconds: gc_pauses.labels(
            generation=str(generation)).observe(seconds))
        self._scraped = _ScrapedGauges()
        self.registry.register(self._scraped)
        self._order_flow: OrderFlow | None = None
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- what to watch -----------------------------------------------------------------------

    def watch(self, host=None, *, streams: Callable[[], Iterable[Broadcaster]] | None = None,
              trading_state: Callable[[], str | None] | None = None, flags=None, orders=None,
              account: Callable[[], Any] | None = None, worker=None) -> "ProcessMetrics":
        """Registers what this process has; every argument is optional.

        host: a GrpcHost before start(): every call is timed. streams: returns the Broadcasters
        served now (a plane may replace one on restart of its journal). trading_state: returns
        ACTIVE, REDUCING, HALTED or None when unknown; or flags: a FlagsFollower, whose latest
        view says it. orders: the order engine (its `order_events` and `fill_events`
        broadcasters). account: returns figures with balance, equity, drawdown and
        drawdown_fraction. worker: a strategy worker's status.
        """
        if host is not None:
            host.observe_calls(RpcTimer(self.rpc_seconds))
        if streams is not None:
            self._scraped.streams.append(streams)
        if flags is not None:
            trading_state = lambda: view.state if (view := flags.view()) is not None else None  # noqa: E731
        if trading_state is not None:
            self._scraped.trading_state = trading_state
        if account is not None:
            self._scraped.account = account
        if worker is not None:
            self._scraped.worker = worker
        if orders is not None:
            self._order_flow = OrderFlow(self.registry)
            self._tasks.append(asyncio.create_task(self._order_flow.follow_orders(orders), name="metrics: orders"))
            self._tasks.append(asyncio.create_task(self._order_flow.follow_fills(orders), name="metrics: fills"))
        return self

    def count_reconnect(self, what: str) -> None:
        self.reconnects.labels(peer=what).inc()

    # ---- the exporter ----------------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, listen: str) -> int:
        """Serves GET /metrics on `listen` (host:port, port 0 picks one); returns the port."""
        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(body=self.exposition(), headers={"Content-Type": CONTENT_TYPE})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, _, port = listen.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the port actually bound (0 picks one)
        log.info("metrics served", extra={"address": f"{host}:{self.port}", "path": "/metrics"})
        return self.port

    async def close(self) -> None:
        self._gc_pauses.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_metrics(service: str, env: Env | None = None, *,
                        registry: CollectorRegistry | None = None) -> ProcessMetrics:
    """The metrics of this process: counts reconnects of every follower started after this call,
    and serves /metrics when QUANTMESH_METRICS_LISTEN is set.

    A malformed value stops the process with a sentence naming the variable, as every other
    setting does. An address that cannot be bound (taken) is logged as an error and the process
    carries on without its exporter: watching must never be what stops a plane from guarding
    orders, and Prometheus shows the target down."""
    try:
        config = MetricsConfig.from_env(env or Env())
    except ConfigError as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    metrics = ProcessMetrics(service, registry)
    count_reconnects(metrics.count_reconnect)
    if config.listen is not None:
        try:
            await metrics.serve(config.listen)
        except OSError as exc:
            await metrics.close()
            log.error("metrics cannot be served; carrying on without them", extra={
                "variable": "QUANTMESH_METRICS_LISTEN", "address": config.listen, "error": exc.strerror})
    return metrics


# ---- gRPC calls ---------------------------------------------------------------------------------

class RpcTimer(grpc.aio.ServerInterceptor):
    """Times every call to its end and labels it with the status the caller got."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method.lstrip("/")
        histogram = self._histogram

        def observe(started: float, context, error: BaseException | None) -> None:
            histogram.labels(method=method, code=_code_of(context, error)).observe(time.perf_counter() - started)

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request, context):
                started, error = time.perf_counter(), None
                try:
                    return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    observe(started, context, error)

            return grpc.unary_unary_rpc_method_handler(unary, request_deserializer=handler.request_deserializer,
                                                       response_serializer=handler.response_serializer)
        if handler.unary_stream or handler.stream_stream:
            inner_stream = handler.unary_stream or handler.stream_stream
            factory = grpc.stream_stream_rpc_method_handler if handler.stream_stream else \
                grpc.unary_stream_rpc_method_handler

            async def stream(request, context):
                started, error = time.perf_counter(), None
                responses = inner_stream(request, context)
                try:
                    async for item in responses:
                        yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    # Closed here, in this call's context, when the call ends early: left to the garbage
                    # collector, the interceptors inside (OpenTelemetry's) would unwind in another context.
                    if hasattr(responses, "aclose"):
                        await responses.aclose()
                    observe(started, context, error)

            return factory(stream, request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)
        return handler


def _code_of(context, error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"  # the caller went away (deadline, cancel, disconnect)
    code = context.code()
    if code is None:
        return "OK" if error is None else "UNKNOWN"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


# ---- what is read at scrape time -------------------------------------------------------------

class _ScrapedGauges:
    """Gauges read from the process's own objects when Prometheus scrapes, so nothing has to
    remember to update them."""

    def __init__(self) -> None:
        self.streams: list[Callable[[], Iterable[Broadcaster]]] = []
        self.trading_state: Callable[[], str | None] | None = None
        self.account: Callable[[], Any] | None = None
        self.worker = None

    def describe(self):
        return []  # families vary with what is watched; describe nothing so registration never clashes

    def collect(self):
        parts = []
        if self.streams:
            parts.append(lambda: _stream_families(b for source in self.streams for b in source()))
        if self.trading_state is not None:
            parts.append(lambda: [_one_hot("quantmesh_trading_state", "The trading state the flags add up to, as "
                                           "this process sees it (1 for the current state)", TRADING_STATES,
                                           self.trading_state())])
        if self.account is not None:
            parts.append(lambda: list(_account_families(self.account())))
        if self.worker is not None:
            parts.append(lambda: list(_worker_families(self.worker)))
        for part in parts:
            try:
                families = list(part())
            except Exception:  # one broken source leaves a gap, never a failed scrape of everything
                log.exception("a metrics source failed while scraped")
                continue
            yield from families


def _stream_families(broadcasters: Iterable[Broadcaster]):
    subscribers = GaugeMetricFamily("quantmesh_stream_subscribers", "Subscribers of a served stream", labels=["stream"])
    last_seq = GaugeMetricFamily("quantmesh_stream_last_seq", "Seq of the newest event of a stream", labels=["stream"])
    cut = CounterMetricFamily("quantmesh_stream_subscribers_cut", "Subscribers cut off with RESOURCE_EXHAUSTED "
                              "because they fell a whole queue behind", labels=["stream"])
    depth = GaugeMetricFamily("quantmesh_stream_queue_depth", "Events queued for one subscriber",
                              labels=["stream", "subscriber"])
    lag = GaugeMetricFamily("quantmesh_stream_lag_events", "Events of the stream one subscriber has not been "
                            "handed yet", labels=["stream", "subscriber"])
    for broadcaster in broadcasters:
        name = broadcaster.name
        subscribers.add_metric([name], broadcaster.subscriber_count)
        last_seq.add_metric([name], broadcaster.last_seq)
        cut.add_metric([name], broadcaster.dropped_subscribers)
        for gauge in broadcaster.subscriber_gauges():
            depth.add_metric([name, f"#{gauge.number}"], gauge.queued)
            lag.add_metric([name, f"#{gauge.number}"], gauge.behind)
    return subscribers, last_seq, cut, depth, lag


def _one_hot(name: str, documentation: str, states: tuple[str, ...], current: str | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state in states:
        family.add_metric([state], 1.0 if state == current else 0.0)
    return family


def _account_families(figures):
    if figures is None:
        return
    for field, documentation in (("balance", "Starting cash + realized PnL - commission"),
                                 ("equity", "Balance + unrealized PnL"),
                                 ("drawdown", "Peak equity - equity"),
                                 ("drawdown_fraction", "Drawdown / peak equity, 0 to 1")):
        family = GaugeMetricFamily(f"quantmesh_account_{field}", documentation, labels=["account"])
        family.add_metric([figures.account], float(Decimal(getattr(figures, field))))
        yield family


def _worker_families(status):
    labels = [status.slug, status.role]
    state = GaugeMetricFamily("quantmesh_worker_state", "What a strategy worker is doing (1 for the current "
                              "state)", labels=["strategy", "role", "state"])
    for name in WORKER_STATES:
        state.add_metric([*labels, name], 1.0 if status.state == name else 0.0)
    yield state
    for field, documentation in (("events", "Candle and factor events processed"),
                                 ("intents_submitted", "Intents sent to the order plane"),
                                 ("intents_rejected", "Intents the order plane refused"),
                                 ("skipped_by_flags", "Decisions skipped because the flags said no")):
        family = CounterMetricFamily(f"quantmesh_worker_{field}", documentation, labels=["strategy", "role"])
        family.add_metric(labels, getattr(status, field))
        yield family


# ---- the order plane's streams, observed in-process -------------------------------------------

class OrderFlow:
    """Counts what the order plane's journal publishes: every event is one stored state change."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders = Counter("quantmesh_orders", "Order state changes, by the state entered", ["state"],
                              registry=registry)
        self.refusals = Counter("quantmesh_order_refusals", "Orders REJECTED, by the rule that refused them "
                                "(guard.*, risk.*, or venue when the venue refused)", ["rule"], registry=registry)
        self.fills = Counter("quantmesh_fills", "Fills recorded", ["instrument", "side"], registry=registry)
        self.tick_to_order = Histogram(
            "quantmesh_tick_to_order_seconds", "From the quote a decision saw (the intent's decision_time) to "
            "the venue's acknowledgement of its order; live orders only", buckets=TICK_TO_ORDER_BUCKETS,
            registry=registry)

    def on_order(self, order) -> None:
        state = str(order.state)
        self.orders.labels(state=state).inc()
        if state == "REJECTED":
            self.refusals.labels(rule=order.reject_rule or "venue").inc()
        elif state == "NEW" and order.intent.decision_time is not None:
            waited = order.updated_time - order.intent.decision_time
            if timedelta(0) <= waited <= LIVE_TICK_TO_ORDER:
                self.tick_to_order.observe(waited.total_seconds())

    def on_fill(self, fill) -> None:
        self.fills.labels(instrument=fill.instrument, side=str(fill.side)).inc()

    async def follow_orders(self, engine) -> None:
        await _follow(lambda: engine.order_events, lambda event: self.on_order(event.order))

    async def follow_fills(self, engine) -> None:
        await _follow(lambda: engine.fill_events, lambda event: self.on_fill(event.fill))


async def _follow(broadcaster: Callable[[], Broadcaster], count: Callable[[Any], None]) -> None:
    """Live events from a broadcaster forever; a cut-off resumes after the last one counted."""
    after: int | None = None
    while True:
        try:
            async for seq, payload in broadcaster().subscribe(after_seq=after):
                count(payload)
                after = seq
            await asyncio.sleep(0.5)  # the stream closed (shutdown, or a journal reopened): follow the new one
        except ResourceExhausted:
            continue
        except FailedPrecondition:
            after = None  # a reopened journal's seqs: count from now on


__all__ = ["LIVE_TICK_TO_ORDER", "MetricsConfig", "OrderFlow", "ProcessMetrics", "RpcTimer", "start_metrics"]
