"""The console's web application: the page, sign-in, the session, live events and the API.

Routes (security.py guards every one of them):

    GET  /               the page (static/index.html; its script and styles under /static/)
    GET  /login          sign-in form          POST /login   name + password -> session cookie
    POST /logout         ends the session      GET  /api/session   who you are and your CSRF token
    GET  /api/events     server-sent events: overview, flags, positions, order (live.py)
    /api/...             the JSON API (api.py)
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web

from services.common.errors import PlaneError
from services.console.api import Api, NotOffered
from services.console.live import LiveBoard
from services.console.operators import Gatekeeper, TooManyFailures
from services.console.planes import Planes, PlaneRefused
from services.console.security import caller_of, harden_stream, refusal, security_middleware
from services.console.sessions import COOKIE, Session, Sessions

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: A refusal the console itself raises (services.common.errors), by its gRPC code.
_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
           grpc.StatusCode.FAILED_PRECONDITION: 409, grpc.StatusCode.ABORTED: 409, grpc.StatusCode.ALREADY_EXISTS: 409,
           grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.UNAUTHENTICATED: 401,
           grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNAVAILABLE: 503}


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    secure: bool
    max_age_seconds: int


def build_app(*, planes: Planes, live: LiveBoard, gatekeeper: Gatekeeper, sessions: Sessions,
              hosts: tuple[str, ...], cookies: CookiePolicy) -> web.Application:
    app = web.Application(middlewares=[security_middleware(gatekeeper, sessions, hosts=hosts), _answer_refusals],
                          client_max_size=64 * 1024)
    pages = Pages(gatekeeper=gatekeeper, sessions=sessions, live=live, cookies=cookies)
    app.add_routes(pages.routes())
    app.add_routes(Api(planes=planes, live=live).routes())
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    return app


@web.middleware
async def _answer_refusals(request: web.Request, handler) -> web.StreamResponse:
    """A refusal raised anywhere below becomes `{"error": sentence}` with its status."""
    try:
        return await handler(request)
    except PlaneRefused as exc:
        return refusal(exc.status, exc.sentence)
    except NotOffered as exc:
        return refusal(501, exc.message)
    except PlaneError as exc:
        return refusal(_STATUS.get(exc.code, 400), exc.message)


class Pages:
    def __init__(self, *, gatekeeper: Gatekeeper, sessions: Sessions, live: LiveBoard, cookies: CookiePolicy) -> None:
        self._gatekeeper = gatekeeper
        self._sessions = sessions
        self._live = live
        self._cookies = cookies
        self._index = (STATIC / "index.html").read_bytes()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.index), web.get("/login", self.login_form), web.post("/login", self.login),
                web.post("/logout", self.logout), web.get("/api/session", self.session),
                web.get("/api/events", self.events), web.get("/healthz", self.healthz)]

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=self._index, content_type="text/html", charset="utf-8")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def login_form(self, request: web.Request) -> web.Response:
        if not self._gatekeeper.required:
            raise web.HTTPSeeOther("/")
        return _login_page()

    async def login(self, request: web.Request) -> web.StreamResponse:
        if not self._gatekeeper.required:
            raise web.HTTPSeeOther("/")
        form = await request.post()
        name, secret = str(form.get("name", "")).strip(), str(form.get("password", ""))
        try:
            operator = self._gatekeeper.remembered(name, secret)
            if operator is None:
                self._gatekeeper.refuse_if_failing(name)
                operator = await asyncio.to_thread(self._gatekeeper.check, name, secret)
        except TooManyFailures as exc:
            return _login_page(str(exc), status=429)
        if operator is None:
            log.warning("sign-in refused", extra={"operator": name[:64], "peer": request.remote})
            return _login_page("That name and password do not match an operator.", status=401)
        log.info("signed in", extra={"operator": operator.name, "role": str(operator.role), "peer": request.remote})
        response = web.HTTPSeeOther("/")
        self._set_cookie(response, self._sessions.start(operator))
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        self._sessions.end(request.cookies.get(COOKIE))
        response = web.json_response({"signed_out": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def session(self, request: web.Request) -> web.Response:
        """Who the page is signed in as, and the CSRF token its changes must carry.

        Without sign-in configured (loopback), the page still gets a session of the local
        operator here, so its changes carry a CSRF token like everyone else's."""
        caller = caller_of(request)
        session = fresh = caller.session
        if session is None and not self._gatekeeper.required:
            session = fresh = self._sessions.start(caller.operator)
        response = web.json_response({
            "operator": caller.operator.name, "role": str(caller.operator.role), "may_act": caller.operator.may_act,
            "csrf_token": session.csrf_token if session else None, "login_required": self._gatekeeper.required})
        if fresh is not None and fresh is not caller.session:
            self._set_cookie(response, fresh)
        return response

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        harden_stream(response)
        await response.prepare(request)
        try:
            async for topic, data in self._live.follow():
                if data is None:
                    await response.write(b": keepalive\n\n")
                else:
                    await response.write(f"event: {topic}\ndata: {json.dumps(data)}\n\n".encode())
        except ConnectionResetError:
            pass  # the page went away
        return response

    def _set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(COOKIE, session.id, path="/", httponly=True, samesite="Strict",
                            secure=self._cookies.secure, max_age=self._cookies.max_age_seconds)


def _login_page(message: str = "", *, status: int = 200) -> web.Response:
    problem = f'<p class="problem" role="alert">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>quantmesh console: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/console.css"><link rel="icon" href="data:,"></head>
<body class="login"><main><h1>quantmesh console</h1>{problem}
<form method="post" action="/login">
<label>Operator <input name="name" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></main></body></html>"""
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status)
