"""The console's JSON API: the same reads and actions as the page, for curl and scripts.

Every handler checks its input (services/console/requests.py) before it calls a plane, and
answers JSON; refusals are `{"error": "<sentence>"}` (services/console/web.py maps them).
docs/console.md has a curl line for each.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from aiohttp import web

from services.common.errors import InvalidArgument, NotFound, PlaneError
from services.console import requests, views
from services.console.capabilities import ORDER_ACTIONS
from services.console.live import LiveBoard
from services.console.planes import Planes, operator_of
from services.console.security import caller_of

#: Pages of the audit trail read to find one actor's changes before answering with what was found.
AUDIT_SCAN_PAGES = 20
MAX_BODY_BYTES = 16 * 1024


class NotOffered(PlaneError):
    """The order plane does not offer an optional action (answered 501)."""


@dataclass(frozen=True, slots=True)
class Api:
    planes: Planes
    live: LiveBoard

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/overview", self.overview),
            web.get("/api/flags", self.flags),
            web.post("/api/strategy-control", self.strategy_control),
            web.post("/api/cancel-open", self.optional_action),
            web.post("/api/flatten", self.optional_action),
            web.get("/api/positions", self.positions),
            web.get("/api/orders", self.orders),
            web.get("/api/orders/{order_id}", self.order),
            web.get("/api/fills", self.fills),
            web.get("/api/equity", self.equity),
            web.get("/api/audit", self.audit),
            web.get("/api/analysis", self.analysis),
            web.post("/api/analysis/freeze", self.freeze),
        ]

    async def overview(self, request: web.Request) -> web.Response:
        overview = self.live.latest.get("overview")
        if overview is None:
            raise NotFound("the console is still asking the planes for the first time; try again in a second")
        positions = self.live.latest.get("positions")
        return web.json_response({**overview, "account": positions["account"] if positions else None})

    async def flags(self, request: web.Request) -> web.Response:
        return web.json_response(views.flags(await self.planes.flags()))

    async def strategy_control(self, request: web.Request) -> web.Response:
        """The seed's endpoint: a strategy's entry/exit switches, or the global ones and the kill switch."""
        switch = requests.strategy_control(await _json_body(request))
        operator = caller_of(request).operator
        if isinstance(switch, requests.StrategySwitch):
            flags = await self.planes.flags()
            if switch.slug not in {s.slug for s in flags.strategies}:
                if switch.slug not in self.live.strategies:
                    raise NotFound(f"no strategy {switch.slug!r} in control's flags or among the running workers; "
                                   "check the slug")
                switch = dataclasses.replace(switch, create=True)  # a running strategy nobody has switched yet
            snapshot = await self.planes.switch_strategy(switch, operator)
        else:
            snapshot = await self.planes.switch_global(switch, operator)
        return web.json_response({"flags": views.flags(snapshot)})

    async def optional_action(self, request: web.Request) -> web.Response:
        """Cancel-open or flatten, when the order plane offers it (services/console/capabilities.py)."""
        name = request.path.rsplit("/", 1)[-1]
        action = ORDER_ACTIONS[name]
        if name not in self.live.capabilities:
            raise NotOffered(f"the order plane at {self.planes.addresses['order']} does not offer "
                             f"Order.{action.method}, so the console cannot {name.replace('-', ' ')}")
        sweep = requests.sweep(await _json_body(request))
        return web.json_response(await action.send(self.planes, caller_of(request).operator, sweep))

    async def positions(self, request: web.Request) -> web.Response:
        return web.json_response(views.positions(await self.planes.snapshot()))

    async def orders(self, request: web.Request) -> web.Response:
        reply = await self.planes.orders(requests.order_query(request.query))
        return web.json_response({"orders": [views.order(o) for o in reply.orders],
                                  "next_page_token": reply.next_page_token})

    async def order(self, request: web.Request) -> web.Response:
        reply = await self.planes.order_with_fills(requests.order_id(request.match_info["order_id"]))
        return web.json_response({"order": views.order(reply.order), "fills": [views.fill(f) for f in reply.fills]})

    async def fills(self, request: web.Request) -> web.Response:
        query = requests.fill_query(request.query)
        snapshot = await self.planes.snapshot()
        events = await self.planes.recent_fills(query, snapshot.last_fill_seq)
        return web.json_response({"fills": [views.fill(e.fill, e.seq) for e in events],
                                  "last_fill_seq": snapshot.last_fill_seq})

    async def equity(self, request: web.Request) -> web.Response:
        query = requests.equity_query(request.query)
        reply = await self.planes.equity_curve(since=query.since, until=query.until, limit=query.limit)
        return web.json_response({"samples": [views.equity_sample(s) for s in reply.samples]})

    async def audit(self, request: web.Request) -> web.Response:
        """The audit trail, newest first. `actor` matches the plane's actor (a token's name) or the
        console operator a change was made by (recorded in its reason), so it is filtered here."""
        query = requests.audit_query(request.query)
        if not query.actor:
            reply = await self.planes.audit(query, page_token=query.page_token)
            return web.json_response({"entries": [views.audit_entry(e) for e in reply.entries],
                                      "next_page_token": reply.next_page_token})
        found, token = [], query.page_token
        for _ in range(AUDIT_SCAN_PAGES):
            reply = await self.planes.audit(query, page_token=token)
            found += [e for e in reply.entries if query.actor in (e.actor, operator_of(e.reason))]
            token = reply.next_page_token
            if not token or len(found) >= query.limit:
                break
        return web.json_response({"entries": [views.audit_entry(e) for e in found], "next_page_token": token})


    async def analysis(self, request: web.Request) -> web.Response:
        """Each strategy's performance, allocation and settings from the analysis plane, when there is one."""
        if self.planes.analysis is None:
            return web.json_response({"configured": False, "strategies": [], "problem": (
                "the console has no analysis plane to ask: set QUANTMESH_ANALYSIS_ADDR (quantmesh up does)")})
        return web.json_response(views.analysis(*await self.planes.analysis_board()))

    async def freeze(self, request: web.Request) -> web.Response:
        """Freezes a strategy's settings at the analysis plane, or lifts the freeze (audited there)."""
        if self.planes.analysis is None:
            raise NotOffered("the console has no analysis plane to freeze a strategy at: set QUANTMESH_ANALYSIS_ADDR")
        freeze = requests.freeze(await _json_body(request))
        settings = await self.planes.freeze(freeze, caller_of(request).operator)
        return web.json_response({"settings": views.strategy_settings(settings)})


async def _json_body(request: web.Request) -> object:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise InvalidArgument(f"the body has {request.content_length:,} bytes; at most {MAX_BODY_BYTES:,} are read")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidArgument(f"the body is over {MAX_BODY_BYTES:,} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument('the body is not JSON; send e.g. {"global_lock": true, "reason": "drill"}') from None
