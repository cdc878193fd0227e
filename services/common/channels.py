"""Client channels to other planes: TLS when the address carries it, bearer token and tracing on every call.

Addresses from config (`PeerConfig`) are `PeerAddress`es that know the TLS to dial, so this is
the one place where a plane decides how to reach another. A token never leaves this machine in
plaintext: without TLS it is only sent to a loopback address, or where config says a service
mesh encrypts the traffic.
"""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from services.common.auth import bearer_metadata
from services.common.config import is_loopback

#: How often a channel pings an idle connection, so a dead peer is noticed within seconds even
#: on a stream that carries nothing for a while (WatchFills between fills). The servers permit
#: pings this often (services/common/server.py, SERVER_KEEPALIVE); otherwise they answer with
#: GOAWAY "too_many_pings" and drop every stream on the connection.
KEEPALIVE_TIME_MS = 10_000

#: How soon a channel dials a peer again after a failed connect, in milliseconds. gRPC's own
#: defaults (1 s, growing 1.6x to 120 s) are for peers across the internet; a plane's peers are
#: on the same network and a restarted one is back within a second or two. With the defaults,
#: the order plane's exposure follower still got "connection refused" 1.7 s after the position
#: plane was listening (the failed subchannel and its backoff outlive the closed channel), and
#: every entry waited for that. A refused connect costs the peer nothing.
RECONNECT_BACKOFF_MS = (100, 500)

_OPTIONS = (
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
    ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[1]),
)


class _Bearer:
    def __init__(self, token: str) -> None:
        self._metadata = bearer_metadata(token)

    def _with_token(self, details):
        metadata = tuple(details.metadata or ()) + self._metadata
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


# Two classes, not one with both bases: grpc.aio files an interceptor under the first kind it
# matches, so one object serving both kinds never saw a stream and every WatchFlags,
# WatchExposure, StreamTicks and WatchFills call went out without the token.
class _BearerUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._with_token(client_call_details), request)


class _BearerStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._with_token(client_call_details), request)


class PlaintextTokenRefused(ValueError):
    """A bearer token would have crossed the network unencrypted."""


def open_channel(address: str, *, token: str | None = None, traced: bool = True) -> grpc.aio.Channel:
    tls = getattr(address, "tls", None)
    if token and tls is None and not getattr(address, "encrypted_by_mesh", False) \
            and not is_loopback(address, resolve=_no_lookup):
        raise PlaintextTokenRefused(
            f"refusing to send a bearer token to {address} in plaintext: configure QUANTMESH_TLS_CA (PeerConfig.reach "
            "gives an address its TLS), or QUANTMESH_TLS_BY_SERVICE_MESH=true when a service mesh encrypts the traffic")
    interceptors: list = list(aio_client_interceptors()) if traced else []
    if token:
        interceptors += [_BearerUnary(token), _BearerStream(token)]
    if tls is not None:
        server_name = getattr(address, "server_name", None)
        options = _OPTIONS + ((("grpc.ssl_target_name_override", server_name),) if server_name else ())
        return grpc.aio.secure_channel(str(address), tls.channel_credentials(), interceptors=interceptors or None,
                                       options=options)
    return grpc.aio.insecure_channel(str(address), interceptors=interceptors or None, options=_OPTIONS)


def _no_lookup(host: str) -> list[str]:
    # Only a loopback literal or `localhost` counts here: no blocking DNS lookup on the event loop.
    return []
