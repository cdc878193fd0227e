"""Bearer-token authentication with roles.

Tokens come from QUANTMESH_TOKENS as `token=actor:role,...`. When no token is
configured (only allowed on loopback), every caller is the anonymous operator, so
grpcurl works without headers in local development. When tokens are configured,
every call but health and reflection needs a valid token, and the calls named in
a plane's policy need one of the listed roles.
"""

from __future__ import annotations

import contextvars
import inspect
import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc


class Role(enum.Enum):
    OPERATOR = "operator"
    STRATEGY = "strategy"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Identity:
    actor: str
    role: Role
    peer: str = ""


ANONYMOUS_OPERATOR = Identity(actor="anonymous", role=Role.OPERATOR)

_current_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "quantmesh_identity", default=ANONYMOUS_OPERATOR
)


async def stream_items(behavior, request, context):
    """The items of a server-streaming handler, whichever way it streams: an async generator
    (ours), or a coroutine that writes through `context.write` (grpc's own health Watch)."""
    result = behavior(request, context)
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
    else:
        await result


def current_identity() -> Identity:
    """The caller of the RPC being served (set by the auth interceptor)."""
    return _current_identity.get()


@dataclass(frozen=True, slots=True)
class TokenTable:
    entries: Mapping[str, Identity] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "TokenTable":
        entries: dict[str, Identity] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            token, sep, rest = item.partition("=")
            actor, sep2, role_name = rest.partition(":")
            if not sep or not sep2 or not token or not actor:
                raise ValueError(f"entry {item.split('=')[0][:4]}... is not token=actor:role")
            try:
                role = Role(role_name)
            except ValueError:
                allowed = ", ".join(r.value for r in Role)
                raise ValueError(f"role {role_name!r} of actor {actor!r} is not one of {allowed}") from None
            entries[token] = Identity(actor=actor, role=role)
        return cls(entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def lookup(self, token: str) -> Identity | None:
        # Constant-time comparison, so response timing does not leak token prefixes.
        for known, identity in self.entries.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return identity
        return None


#: Full method name -> roles allowed. Methods not listed only need a valid token.
AuthPolicy = Mapping[str, frozenset[Role]]

_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _token_from(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token and the role, then runs the handler with the identity set."""

    def __init__(self, tokens: TokenTable, policy: AuthPolicy) -> None:
        self._tokens = tokens
        self._policy = policy

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIXES):
            return handler
        allowed = self._policy.get(method)
        tokens = self._tokens

        def resolve(context) -> Identity | tuple[grpc.StatusCode, str]:
            peer = context.peer() or ""
            if not tokens:
                return Identity(actor="anonymous", role=Role.OPERATOR, peer=peer)
            token = _token_from(context.invocation_metadata())
            if token is None:
                return (grpc.StatusCode.UNAUTHENTICATED,
                        f"{method} needs a bearer token: add the metadata 'authorization: Bearer <token>'")
            identity = tokens.lookup(token)
            if identity is None:
                return (grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not known to this server")
            if allowed is not None and identity.role not in allowed:
                roles = " or ".join(sorted(r.value for r in allowed))
                return (grpc.StatusCode.PERMISSION_DENIED,
                        f"{method} needs the {roles} role; {identity.actor} has the {identity.role.value} role")
            return Identity(actor=identity.actor, role=identity.role, peer=peer)

        return _wrap_handler(handler, resolve)


def _wrap_handler(handler, resolve):
    def guard_unary(behavior):
        async def wrapper(request, context):
            who = resolve(context)
            if isinstance(who, tuple):
                await context.abort(*who)
            token = _current_identity.set(who)
            try:
                return await behavior(request, context)
            finally:
                _current_identity.reset(token)

        return wrapper

    def guard_stream(behavior):
        async def wrapper(request, context):
            who = resolve(context)
            if isinstance(who, tuple):
                await context.abort(*who)
            _current_identity.set(who)
            async for item in stream_items(behavior, request, context):
                yield item

        return wrapper

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            guard_unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            guard_stream(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream:  # Order.SubmitStream: the same guard, over the request iterator
        return grpc.stream_stream_rpc_method_handler(
            guard_stream(handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    # No contract has a client-streaming call; one added later must not pass unguarded.
    raise RuntimeError(f"the auth interceptor cannot guard {handler!r}: add its kind to _wrap_handler")
