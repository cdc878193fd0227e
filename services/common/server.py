"""One way to run a plane's gRPC server.

`GrpcHost` builds a `grpc.aio` server with, in this order around every call:
OpenTelemetry (opentelemetry-instrumentation-grpc), bearer-token auth with roles,
and the translation of errors into gRPC statuses: a `PlaneError` into its code and
sentence, any other exception into INTERNAL with an error id (the traceback goes to
the log under that id), undecodable request bytes into INVALID_ARGUMENT. No caller
ever sees UNKNOWN with a Python exception's text. It registers the
library's own health servicer (so Kubernetes `grpc:` probes work) and server
reflection (so grpcurl works, comments included). `serve` runs a host until
SIGTERM or SIGINT, then marks it NOT_SERVING, ends every server stream with
UNAVAILABLE (clients reconnect), drains in-flight unary calls for the grace period and stops.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from services.common.auth import AuthInterceptor, AuthPolicy, TokenTable, stream_items
from services.common.channels import KEEPALIVE_TIME_MS
from services.common.errors import InvalidArgument, PlaneError
from services.common.heap import settle_after_start
from services.common.reflection_pool import DocumentedReflection
from services.common.tls import ServingTls

log = logging.getLogger(__name__)

#: What the planes' own channels do (services/common/channels.py): ping every KEEPALIVE_TIME_MS,
#: also with no call running and on streams that carry no data. gRPC servers by default accept
#: such pings only every 5 minutes and answer the third early one with GOAWAY "too_many_pings",
#: which drops every stream of the connection; so the servers allow twice the clients' rate.
SERVER_KEEPALIVE = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
)


#: How long a stopping server lets health Watch streams deliver NOT_SERVING before it ends streams.
_WATCHERS_TOLD_SECONDS = 0.05
#: A plane's own clean-up after its server stopped (followers, writers, pools) must finish in this
#: long: `quantmesh up` and kind kill a plane that takes 15 s. Past it the plane says which of its
#: tasks were still waiting, and where, and exits without them (its data is committed already).
STOP_WORK_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A servicer to host: its full service name and how to add it to a server."""

    name: str
    register: Callable[[grpc.aio.Server], None]


def binding(descriptor_module, service: str, add_fn, servicer) -> ServiceBinding:
    """Builds a binding from a generated `_pb2` module, e.g. binding(order_pb2, "Order", add_OrderServicer_to_server, s)."""
    full_name = descriptor_module.DESCRIPTOR.services_by_name[service].full_name
    return ServiceBinding(name=full_name, register=lambda server: add_fn(servicer, server))


class _Undecodable:
    """Stands in for a request whose bytes are not the method's message, so the call can be
    answered INVALID_ARGUMENT; grpc.aio itself would answer UNKNOWN with the parser's text."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer):
    if deserializer is None:
        return None

    def deserialize(raw: bytes):
        try:
            return deserializer(raw)
        except Exception as exc:  # the parser's own words say which message failed and why
            return _Undecodable((str(exc) or type(exc).__name__)[:200])

    return deserialize


async def _refuse_undecodable(request, context, method: str) -> None:
    if isinstance(request, _Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"the request to {method} is not a valid protobuf message of its type "
                            f"({request.reason}); send the message the contract names")


def internal_error(method: str, **extra) -> str:
    """Logs the exception being handled under a new error id; the sentence a caller gets instead.

    Never the exception's text: it can carry SQL, paths or another caller's values."""
    error_id = secrets.token_hex(6)
    log.exception("internal error %s in %s", error_id, method, extra={"error_id": error_id, "method": method, **extra})
    return f"internal error {error_id}; the plane's log has the details"


async def _abort_internal(context, method: str) -> None:
    """An unexpected exception: the caller gets an id to quote, the plane's log gets the traceback."""
    await context.abort(grpc.StatusCode.INTERNAL, internal_error(method))


class _OpenStreams:
    """The server-streaming calls running now, so a stopping server can end them at once.

    Streams never end by themselves; left to the drain they would hold every stop for the
    whole grace period, which exists for unary calls finishing their work."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()
        self.draining = False

    def end_all(self) -> None:
        self.draining = True
        for task in tuple(self.tasks):
            task.cancel()


class _PlaneErrors(grpc.aio.ServerInterceptor):
    """Turns what a servicer raises into a status: a PlaneError into its code and sentence,
    anything unexpected into INTERNAL with an error id; undecodable requests into INVALID_ARGUMENT.
    A stream the stopping server ends gets UNAVAILABLE with a sentence (clients reconnect)."""

    def __init__(self, streams: _OpenStreams | None = None) -> None:
        self._streams = streams if streams is not None else _OpenStreams()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request, context):
                await _refuse_undecodable(request, context, method)
                try:
                    return await inner(request, context)
                except PlaneError as exc:
                    await context.abort(exc.code, exc.message)
                except grpc.aio.AbortError:
                    raise  # the servicer answered already
                except Exception:
                    await _abort_internal(context, method)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.unary_stream or handler.stream_stream:
            inner_stream = handler.unary_stream or handler.stream_stream
            bidi = handler.stream_stream is not None
            streams = self._streams

            async def stream(request, context):
                if bidi:  # each message is checked as it is read (the servicer passes the refusal on)
                    request = _checked_messages(request, method)
                await _refuse_undecodable(request, context, method)
                task = asyncio.current_task()
                streams.tasks.add(task)
                try:
                    async for item in stream_items(inner_stream, request, context):
                        yield item
                except asyncio.CancelledError:
                    if not streams.draining:
                        raise  # the client went away
                    # Cancelled by end_all(): an answer, not a silent cut (a cancelled handler task alone
                    # leaves the call open until the grace period ends).
                    await context.abort(grpc.StatusCode.UNAVAILABLE,
                                        "the server is stopping; reconnect and resume after the last seq you got")
                except PlaneError as exc:
                    await context.abort(exc.code, exc.message)
                except grpc.aio.AbortError:
                    raise
                except Exception:
                    await _abort_internal(context, method)
                finally:
                    streams.tasks.discard(task)

            factory = grpc.stream_stream_rpc_method_handler if bidi else grpc.unary_stream_rpc_method_handler
            return factory(stream, request_deserializer=_tolerant(handler.request_deserializer),
                           response_serializer=handler.response_serializer)
        return handler


async def _checked_messages(requests, method: str):
    """A client stream's messages; one that did not decode ends it with INVALID_ARGUMENT."""
    async for message in requests:
        if isinstance(message, _Undecodable):
            raise InvalidArgument(f"a message of the stream to {method} is not a valid protobuf message of its type "
                                  f"({message.reason}); send the message the contract names")
        yield message


class GrpcHost:
    def __init__(self, *, listen: str, bindings: Sequence[ServiceBinding], tokens: TokenTable,
                 policy: AuthPolicy, grace_seconds: float = 5.0, port_file: Path | None = None,
                 tls: ServingTls | None = None, health_listen: str | None = None, traced: bool = True) -> None:
        self._listen = listen
        # A ListenAddress from config carries its TLS and health address (services/common/tls.py).
        self._tls = tls if tls is not None else getattr(listen, "tls", None)
        self._health_listen = health_listen or getattr(listen, "health", None)
        self._health_server: grpc.aio.Server | None = None
        self.health_port: int = 0
        self._bindings = tuple(bindings)
        self._tokens = tokens
        self._policy = policy
        self._grace = grace_seconds
        # Server spans only when they go somewhere (OTEL_EXPORTER_OTLP_ENDPOINT): each costs every call.
        self._traced = traced
        self._port_file = port_file
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port: int = 0
        self._serving = True
        self._names: list[str] = []
        self._observers: list[grpc.aio.ServerInterceptor] = []
        self._streams = _OpenStreams()

    def observe_calls(self, interceptor: grpc.aio.ServerInterceptor) -> None:
        """Adds an interceptor outside all the others (metrics), so it sees every call and its final
        status, refusals by auth and INVALID_ARGUMENT for undecodable bytes included. Before start()."""
        if self.server is not None:
            raise RuntimeError("observe_calls() must come before start()")
        self._observers.append(interceptor)

    @property
    def address(self) -> str:
        host = self._listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> int:
        server = grpc.aio.server(
            interceptors=[*self._observers, *([aio_server_interceptor()] if self._traced else []),
                          AuthInterceptor(self._tokens, self._policy),
                          _PlaneErrors(self._streams)],
            options=(("grpc.so_reuseport", 0), *SERVER_KEEPALIVE),
        )
        for item in self._bindings:
            item.register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [b.name for b in self._bindings]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(DocumentedReflection(
            names + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]), server)
        if self._tls is not None:
            self.port = server.add_secure_port(str(self._listen), self._tls.server_credentials())
        else:
            self.port = server.add_insecure_port(str(self._listen))
        if self.port == 0:
            raise RuntimeError(f"could not listen on {self._listen}: the port is taken or the address is wrong")
        await server.start()
        self.server = server
        self._names = ["", *names]
        await self._report_health()
        if self._health_listen:
            await self._start_health_server()
        if self._port_file is not None:
            self._port_file.write_text(str(self.port))
        log.info("listening", extra={"address": self.address, "services": names})
        return self.port

    async def _start_health_server(self) -> None:
        """grpc.health.v1 alone, in plaintext: Kubernetes `grpc:` probes cannot speak TLS, and the
        answer (SERVING or not) is the same servicer the main port serves."""
        server = grpc.aio.server(options=(("grpc.so_reuseport", 0), *SERVER_KEEPALIVE))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        # Reflection of health alone, so `grpcurl -plaintext <health> grpc.health.v1.Health/Check` works too.
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(DocumentedReflection(
            [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]), server)
        self.health_port = server.add_insecure_port(self._health_listen)
        if self.health_port == 0:
            raise RuntimeError(f"could not listen on {self._health_listen} (health): the port is taken")
        await server.start()
        self._health_server = server

    async def set_serving(self, serving: bool) -> None:
        """A plane that cannot serve correctly says so: NOT_SERVING until it can again."""
        self._serving = serving
        if self.server is not None:
            await self._report_health()

    async def _report_health(self) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if self._serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._names:
            await self.health.set(name, status)

    async def stop(self) -> None:
        """NOT_SERVING first, so probes and load balancers stop sending, then drain and stop."""
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        # A moment for health watchers to be told NOT_SERVING, then streams end at once: the
        # grace period is for unary calls (an order being submitted), which it still waits for.
        await asyncio.sleep(_WATCHERS_TOLD_SECONDS)
        self._streams.end_all()
        await self.server.stop(self._grace)
        self.server = None
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        log.info("stopped", extra={"address": self.address})


async def serve(host: GrpcHost, *, on_stop: Callable[[], Awaitable[None]] | None = None,
                stop_event: asyncio.Event | None = None) -> None:
    """Runs `host` until SIGTERM/SIGINT (or `stop_event`), then stops it gracefully."""
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await host.start()
    settle_after_start()
    try:
        await stop.wait()
        log.info("shutdown requested; draining")
    finally:
        await host.stop()
        if on_stop is not None:
            await stop_within(on_stop, STOP_WORK_SECONDS)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def stop_within(on_stop: Callable[[], Awaitable[None]], seconds: float) -> bool:
    """Runs a plane's stop work; False, with an error naming every task still waiting (and the line
    it waits on), when it has not finished in `seconds`: a stop that hangs says where."""
    work = asyncio.ensure_future(on_stop())
    done, _ = await asyncio.wait({work}, timeout=seconds)
    if work in done:
        work.result()  # its own failure is the caller's, as before
        return True
    me = asyncio.current_task()
    waiting = []
    for task in asyncio.all_tasks():
        if task is me or task.done():
            continue
        frames = task.get_stack(limit=3)  # the newest: where it waits, and what called that
        where = " < ".join(f"{Path(f.f_code.co_filename).name}:{f.f_lineno} {f.f_code.co_name}" for f in reversed(frames))
        waiting.append(f"{task.get_name()} at {where or '?'}")
    log.error("the stop work did not finish; exiting without it", extra={
        "seconds": seconds, "waiting": sorted(waiting)})
    work.cancel()
    return False
