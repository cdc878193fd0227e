"""A loopback GMO Coin: the signed private REST API and the public ticker WebSocket, as GMO's docs show them.

Private requests must carry API-KEY, API-TIMESTAMP and API-SIGN = hex HMAC-SHA256(secret,
timestamp + method + path + body) with path as '/v1/order' (no '/private', no query); a wrong
signature gets GMO's error envelope. Knobs: `throttle` (ERR-5003 that many times, as HTTP 429),
`reply_delay`, `hide_from_lists`, `malformed` (any of "json", "order_id", "executions").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import WSMsgType, web

FILL_PRICE = "10012345"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(code: str, text: str, status: int = 200) -> web.Response:
    return web.json_response({"status": 1, "messages": [{"message_code": code, "message_string": text}],
                              "responsetime": _now()}, status=status)


def _ok(data=None) -> web.Response:
    body = {"status": 0, "responsetime": _now()}
    if data is not None:
        body["data"] = data
    return web.json_response(body)


@dataclass
class FakeGmo:
    api_key: str
    api_secret: str
    throttle: int = 0
    reply_delay: float = 0.0
    malformed: set[str] = field(default_factory=set)
    hide_from_lists: bool = False  # activeOrders/latestExecutions lag behind (GMO has not listed it yet)
    orders: list[dict] = field(default_factory=list)
    executions: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    ws_script: list[list] = field(default_factory=list)  # per connection: "ticker" | "garbage" | ("sleep", s) | "close"
    ws_connections: int = 0
    subscriptions: list[dict] = field(default_factory=list)
    _next: int = 5000

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/private/v1/order", self.order)
        app.router.add_post("/private/v1/cancelOrder", self.cancel)
        app.router.add_get("/private/v1/orders", self.get_orders)
        app.router.add_get("/private/v1/executions", self.get_executions)
        app.router.add_get("/private/v1/activeOrders", self.active_orders)
        app.router.add_get("/private/v1/latestExecutions", self.latest_executions)
        app.router.add_get("/private/v1/positionSummary", self.position_summary)
        app.router.add_get("/ws/public/v1", self.websocket)
        return app

    async def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests.append(f"{request.method} {request.path}")
        body = await request.text()
        stamp = request.headers.get("API-TIMESTAMP", "")
        path = request.path.removeprefix("/private")
        expected = hmac.new(self.api_secret.encode(), (stamp + request.method + path + body).encode(),
                            hashlib.sha256).hexdigest()
        if request.headers.get("API-KEY") != self.api_key:
            return _error("ERR-5012", "The API key is invalid.")
        if not hmac.compare_digest(request.headers.get("API-SIGN", ""), expected):
            return _error("ERR-5010", "The signature is invalid.")
        if self.throttle > 0:
            self.throttle -= 1
            return _error("ERR-5003", "Requests are too many.", status=429)
        return None

    async def order(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        spec = await request.json()
        self._next += 1
        order = {"orderId": self._next, "rootOrderId": self._next, "symbol": spec["symbol"], "side": spec["side"],
                 "orderType": "NORMAL", "executionType": spec["executionType"], "settleType": "OPEN",
                 "size": spec["size"], "executedSize": "0", "price": spec.get("price", "0"), "losscutPrice": "0",
                 "status": "ORDERED", "timeInForce": "FAS", "timestamp": _now()}
        if spec["executionType"] == "MARKET":
            order.update(status="EXECUTED", executedSize=spec["size"])
            self.executions.append({"executionId": self._next * 10, "orderId": self._next, "positionId": 1,
                                    "symbol": spec["symbol"], "side": spec["side"], "settleType": "OPEN",
                                    "size": spec["size"], "price": FILL_PRICE, "lossGain": "0", "fee": "0",
                                    "timestamp": _now()})
        self.orders.append(order)
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if "json" in self.malformed:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if "order_id" in self.malformed:
            return _ok()
        return _ok(str(self._next))

    async def cancel(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        wanted = (await request.json())["orderId"]
        order = next((o for o in self.orders if o["orderId"] == wanted), None)
        if order is None or order["status"] != "ORDERED":
            return _error("ERR-5122", "The request is invalid due to the status of the specified order.")
        order["status"] = "CANCELED"
        return _ok()

    async def get_orders(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        wanted = {int(x) for x in request.query["orderId"].split(",")}
        return _ok({"list": [o for o in self.orders if o["orderId"] in wanted]})

    async def get_executions(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [dict(e) for e in self.executions if e["orderId"] == int(request.query["orderId"])]
        if "executions" in self.malformed:
            for row in rows:
                del row["price"]
        return _ok({"list": rows})

    async def active_orders(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [o for o in self.orders if o["symbol"] == request.query["symbol"] and o["status"] == "ORDERED"
                and not self.hide_from_lists]
        return _ok({"pagination": {"currentPage": 1, "count": len(rows)}, "list": rows})

    async def latest_executions(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [e for e in self.executions if e["symbol"] == request.query["symbol"] and not self.hide_from_lists]
        return _ok({"pagination": {"currentPage": 1, "count": len(rows)}, "list": rows})

    async def position_summary(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        return _ok({"list": [{"averagePositionRate": FILL_PRICE, "positionLossGain": "0", "side": "BUY",
                              "sumOrderQuantity": "0", "sumPositionQuantity": "0.02", "symbol": "BTC_JPY"}]})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        script = self.ws_script[min(self.ws_connections, len(self.ws_script) - 1)]
        self.ws_connections += 1
        message = await ws.receive()
        if message.type != WSMsgType.TEXT:
            return ws
        subscription = json.loads(message.data)
        self.subscriptions.append(subscription)
        n = 0
        for step in script:
            if step == "ticker":
                n += 1
                await ws.send_str(json.dumps({"channel": "ticker", "ask": str(10_000_100 + n), "bid": str(10_000_000 + n),
                                              "high": "10100000", "last": str(10_000_050 + n), "low": "9900000",
                                              "symbol": subscription["symbol"], "timestamp": _now(),
                                              "volume": "194785.8484"}))
            elif step == "garbage":
                await ws.send_str("{oops")
            elif isinstance(step, tuple):
                await asyncio.sleep(step[1])
            elif step == "close":
                await ws.close()
                return ws
        await asyncio.sleep(3600)
        return ws
