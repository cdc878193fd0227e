"""Who is asking and may they: the console's one middleware in front of every route.

1. Without sign-in (loopback only), only the Host names the console was told it serves are
   answered, so a DNS-rebinding page cannot talk to it from the operator's browser.
2. The caller is a session (cookie), an API client (`Authorization: Basic`, i.e. `curl -u`), or,
   without sign-in configured, the local operator. A page nobody signed in to goes to /login;
   an API call gets 401 with a sentence.
3. A change (any method but GET/HEAD) must come from this origin (the Origin header, when a
   browser sends one), carry JSON (a cross-site form cannot send it without a CORS preflight,
   which the console never grants), carry the session's CSRF token when it rides on the
   cookie, and come from an operator, not a viewer.
4. Every answer carries a strict Content-Security-Policy (scripts and styles from the console
   only, no frames), nosniff and a same-origin referrer policy; API answers are never cached.

A refusal is JSON `{"error": "<sentence>"}` with its status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from services.console.operators import LOCAL_OPERATOR, Gatekeeper, Operator, TooManyFailures
from services.console.sessions import COOKIE, Session, Sessions

SAFE_METHODS = frozenset({"GET", "HEAD"})
#: Paths anyone may load: the sign-in page and what it needs.
PUBLIC_PATHS = frozenset({"/login", "/healthz"})
PUBLIC_PREFIX = "/static/"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True, slots=True)
class Caller:
    operator: Operator
    session: Session | None  # None for Basic auth and for the local operator without sign-in


#: Typed request storage where aiohttp has it (3.12+); a plain key before.
CALLER = web.RequestKey("caller", Caller) if hasattr(web, "RequestKey") else "caller"


def caller_of(request: web.Request) -> Caller:
    return request[CALLER]


def refusal(status: int, sentence: str, **headers: str) -> web.Response:
    return web.json_response({"error": sentence}, status=status, headers=headers or None)


def security_middleware(gatekeeper: Gatekeeper, sessions: Sessions, *, hosts: tuple[str, ...]):
    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        response = await _guarded(request, handler)
        _harden(request, response)
        return response

    async def _guarded(request: web.Request, handler) -> web.StreamResponse:
        if not gatekeeper.required and _host_name(request.host) not in hosts:
            return refusal(421, f"this console does not answer to the host {request.host!r}; use "
                                f"{hosts[0]} or add the name to QUANTMESH_CONSOLE_HOSTS")
        api = request.path.startswith("/api/")
        changes = request.method not in SAFE_METHODS
        if changes and not _same_origin(request):
            return refusal(403, "a change from another site's page is refused (the Origin does not match this "
                                "console)")
        if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIX):
            return await handler(request)
        try:
            caller = await _identify(request, gatekeeper, sessions)
        except TooManyFailures as exc:
            return refusal(429, str(exc))
        except _BadCredentials as exc:
            return refusal(401, str(exc))
        if caller is None:
            if api:
                return refusal(401, "sign in first: open the console's /login page, or send `curl -u name:secret` "
                                    "(an operator from QUANTMESH_CONSOLE_USERS)")
            raise web.HTTPSeeOther("/login")
        if changes:
            if caller.session is not None and not caller.session.csrf_matches(request.headers.get("X-CSRF-Token")):
                return refusal(403, "the X-CSRF-Token header is missing or wrong; reload the console page "
                                    "and try again")
            if api and request.content_type != "application/json":
                return refusal(415, f"send the request body as JSON (Content-Type: application/json), not "
                                    f"{request.content_type or 'nothing'}")
            if api and not caller.operator.may_act:
                return refusal(403, f"{caller.operator.name} has the {caller.operator.role} role; changes need "
                                    "the operator role")
        request[CALLER] = caller
        return await handler(request)

    return guard


class _BadCredentials(Exception):
    pass


async def _identify(request: web.Request, gatekeeper: Gatekeeper, sessions: Sessions) -> Caller | None:
    session = sessions.find(request.cookies.get(COOKIE))
    if session is not None:
        return Caller(session.operator, session)
    if not gatekeeper.required:
        return Caller(LOCAL_OPERATOR, None)  # no operators configured (loopback): credentials mean nothing
    header = request.headers.get("Authorization")
    if header is not None:
        name, secret = _basic(header)
        operator = gatekeeper.remembered(name, secret)
        if operator is None:
            gatekeeper.refuse_if_failing(name)
            operator = await asyncio.to_thread(gatekeeper.check, name, secret)
        if operator is None:
            raise _BadCredentials("the name or the secret in the Authorization header is wrong")
        return Caller(operator, None)
    return None


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise _BadCredentials("the Authorization header must be Basic (curl -u name:secret)")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _BadCredentials("the Authorization header is not valid Basic credentials") from None
    name, sep, secret = decoded.partition(":")
    if not sep:
        raise _BadCredentials("the Authorization header must carry name:secret")
    return name, secret


def _host_name(host: str | None) -> str:
    if not host:
        return ""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (curl) or a same-origin GET-like navigation; the checks below still hold
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.host


def _harden(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:
        return  # a stream (server-sent events) set its headers before it started
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Not no-referrer: under it a browser sends "Origin: null" even with its own form posts.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/api/") or request.path in ("/", "/login"):
        response.headers.setdefault("Cache-Control", "no-store")


def harden_stream(response: web.StreamResponse) -> None:
    """Headers for a response that is prepared by its handler (server-sent events)."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
