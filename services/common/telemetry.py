"""OpenTelemetry wiring: a tracer provider per process and W3C trace context in events.

Tracing is switched on by configuration (OTEL_EXPORTER_OTLP_ENDPOINT), not by code:
without an endpoint spans are still created (so trace ids flow through events) but
nothing is exported.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from quantmesh.common.v1 import common_pb2

_PROPAGATOR = TraceContextTextMapPropagator()

#: One export, retries included, unless OTEL_EXPORTER_OTLP_TIMEOUT / _TRACES_TIMEOUT says otherwise
#: (the SDK's own default is 10 s with backoff, so a collector that is down held every batch that long).
EXPORT_TIMEOUT_SECONDS = 2.0
#: How long a stopping process waits for its last spans to go out: a stop never waits a minute
#: for a collector that is not there.
FLUSH_AT_EXIT_SECONDS = 3.0
#: The OTLP exporter's own logger: it says so twice per batch (every 5 s, in every process) while a
#: collector is unreachable.
_EXPORTER_LOG = "opentelemetry.exporter.otlp.proto.grpc.exporter"


class OncePerInterval(logging.Filter):
    """Lets an export failure through once per `seconds`, and no "retrying" warnings (the failure that
    follows them says the same): an unreachable collector is reported, not repeated every batch."""

    def __init__(self, seconds: float = 60.0, clock=time.monotonic) -> None:
        super().__init__()
        self._seconds, self._clock = seconds, clock
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self._seconds:
            return False
        self._last = now
        return True


def setup_tracing(service_name: str, otlp_endpoint: str | None, *, install_global: bool = True,
                  environ: Mapping[str, str] | None = None) -> TracerProvider:
    """`service_name` is the process's own name; the standard OTEL_SERVICE_NAME overrides it."""
    env = os.environ if environ is None else environ
    name = env.get("OTEL_SERVICE_NAME") or service_name
    sampler = None
    if not otlp_endpoint and "OTEL_TRACES_SAMPLER" not in env:
        # Nothing is exported: record nothing, but keep ids flowing (spans still carry a trace id,
        # so events and intents join a caller's trace). Recording spans nobody reads costs every order.
        sampler = ParentBased(ALWAYS_OFF)
    # With an exporter, the exit flush is ours (bounded); the SDK's own waits up to 30 s per processor.
    provider = TracerProvider(resource=Resource.create({"service.name": name}), sampler=sampler,
                              shutdown_on_exit=not otlp_endpoint)
    # Read by span_if_recorded: with nothing recorded, a span that would start a trace is not made.
    provider.quantmesh_records_roots = sampler is None
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        timeout = None if {"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"} & env.keys() \
            else EXPORT_TIMEOUT_SECONDS
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True,
                                                                        timeout=timeout)))
        atexit.register(shut_down_within, provider, FLUSH_AT_EXIT_SECONDS)
        exporter_log = logging.getLogger(_EXPORTER_LOG)
        if not any(isinstance(f, OncePerInterval) for f in exporter_log.filters):
            exporter_log.addFilter(OncePerInterval())
    if install_global:
        # The grpc instrumentation and any library spans look the provider up globally.
        trace.set_tracer_provider(provider)
    return provider


def shut_down_within(provider: TracerProvider, seconds: float) -> None:
    """Sends the spans still queued, but gives up after `seconds` (the exporter thread is a daemon)."""
    worker = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    worker.start()
    worker.join(seconds)


def current_trace_context() -> common_pb2.TraceContext:
    """The active span as a TraceContext message, to put in an event or an intent."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return common_pb2.TraceContext(traceparent=carrier.get("traceparent", ""),
                                   tracestate=carrier.get("tracestate", ""))


def context_from(trace_context: common_pb2.TraceContext | None) -> otel_context.Context:
    """An OTel context whose parent is the span named by `trace_context` (or the current one)."""
    if trace_context is None or not trace_context.traceparent:
        return otel_context.get_current()
    carrier = {"traceparent": trace_context.traceparent}
    if trace_context.tracestate:
        carrier["tracestate"] = trace_context.tracestate
    return _PROPAGATOR.extract(carrier)


def _records_roots() -> bool:
    """Whether a span starting a new trace may be recorded: as setup_tracing says, and never while no
    provider is installed at all (the API's proxy makes non-recording spans, e.g. in a backtest)."""
    provider = trace.get_tracer_provider()
    return getattr(provider, "quantmesh_records_roots", not isinstance(provider, trace.ProxyTracerProvider))


def span_if_recorded(tracer: trace.Tracer, name: str, *, context: otel_context.Context | None = None):
    """A span when its trace is being recorded; otherwise just the parent's context.

    A child of an unsampled trace records nothing, yet creating it (sampler, ids, context
    switch) costs every order: events still carry the parent's trace id either way. Without a
    collector (nothing recorded at all) a span that would start a new trace is not made either.
    Use it at once in a `with` (whether to record is decided here, from the current context)."""
    parent = trace.get_current_span(context).get_span_context()
    unrecorded = (not parent.trace_flags.sampled) if parent.is_valid else not _records_roots()
    if unrecorded:
        return _UNRECORDED if context is None else _Unrecorded(context)
    return tracer.start_as_current_span(name, context=context)


class _Unrecorded:
    """span_if_recorded's "no span": the parent's context for the block (a class, not a generator: it
    is entered a few times per order)."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: otel_context.Context | None) -> None:
        self._context = context
        self._token = None

    def __enter__(self) -> trace.Span:
        if self._context is not None:
            self._token = otel_context.attach(self._context)
        return trace.get_current_span()

    def __exit__(self, *exc) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None


_UNRECORDED = _Unrecorded(None)  # no context to enter: holds no state, so one serves every block
