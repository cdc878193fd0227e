"""An in-process OTLP/gRPC trace receiver: every plane exports to it, tests read the spans.

It is the collector side of `opentelemetry.proto.collector.trace.v1.TraceService`, the
same service Jaeger and the OpenTelemetry Collector implement, so a plane exports to it
exactly as it would in production (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT).
It runs a synchronous grpc server on its own threads, so it keeps receiving while a test
blocks or runs its own event loop.

    with OtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        ...
        spans = receiver.spans()          # every span so far, as ReceivedSpan
        trace = receiver.trace(trace_id)  # the spans of one trace
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.support.ports import free_port


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    service: str          # the resource's service.name
    name: str
    trace_id: str         # 32 hex digits
    span_id: str          # 16 hex digits
    parent_id: str        # 16 hex digits, "" for a root span
    kind: int             # opentelemetry.proto.trace.v1.Span.SpanKind
    start_ns: int         # unix nanoseconds, the exporting process's clock
    end_ns: int
    attributes: dict

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    out = []
    for resource_spans in request.resource_spans:
        service = next((_value(a.value) for a in resource_spans.resource.attributes if a.key == "service.name"), "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(ReceivedSpan(
                    service=service, name=span.name, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex(), kind=span.kind, start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano, attributes={a.key: _value(a.value) for a in span.attributes}))
    return out


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: "OtlpReceiver") -> None:
        self._sink = sink

    def Export(self, request, context):
        self._sink._add(spans_of(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._by_id: dict[str, ReceivedSpan] = {}
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        """What to put in OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OtlpReceiver":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                             options=(("grpc.max_receive_message_length", 64 * 1024 * 1024),))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Collector(self), server)
        if server.add_insecure_port(f"127.0.0.1:{self.port}") == 0:
            raise RuntimeError(f"the OTLP receiver could not listen on 127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._server = None

    def __enter__(self) -> "OtlpReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _add(self, spans: Iterable[ReceivedSpan]) -> None:
        with self._lock:
            for span in spans:
                self._spans.append(span)
                self._by_id[span.span_id] = span

    # ---- reading ----------------------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def span(self, span_id: str) -> ReceivedSpan | None:
        with self._lock:
            return self._by_id.get(span_id)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self._spans if s.trace_id == trace_id]

    def ancestors(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        """The parent, its parent, ... as far as the received spans go (nearest first)."""
        chain, seen = [], {span.span_id}
        with self._lock:
            parent = self._by_id.get(span.parent_id)
            while parent is not None and parent.span_id not in seen:
                chain.append(parent)
                seen.add(parent.span_id)
                parent = self._by_id.get(parent.parent_id)
        return chain
