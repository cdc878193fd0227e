"""A loopback GMO Coin that follows GMO's documented rules (https://api.coin.z.com/docs/).

- Private requests are checked: API-SIGN = hex HMAC-SHA256(secret, timestamp + method + path
  + body), path like /v1/order (no /private, no query); a wrong one gets GMO's envelope.
- No client order id: every POST /v1/order is a new order.
- Margin symbols (BTC_JPY) open a NEW position per execution on /v1/order, whatever the side;
  /v1/closeOrder settles one given position, /v1/closeBulkOrder settles by size (oldest first).
- timeInForce: FAS rests a limit that does not cross, FAK/FOK expire it (cancelType EXPIRED_FAK
  / EXPIRED_FOK); GMO's default is FAS for LIMIT and FAK for MARKET.
- Sizes and prices must be multiples of /public/v1/symbols sizeStep and tickSize (ERR-5114
  here) and written as plain numbers (ERR-5106 otherwise).
The market stands at FILL_PRICE: a BUY limit at or above it, a SELL at or below, executes.

Faults: `throttle` (ERR-5003 as HTTP 429), `reply_delay`, `malformed` ({"json", "order_id",
"executions"}), `hide_from_lists` (active orders / latest executions lag), `busy_reads` (codes
answered, one per request, to GET /v1/orders: e.g. ["ERR-626"]), `busy_after_post` (a code
answered to the next order POST after GMO created the order), `lag_executions` (executions made
while it is on are left out of /v1/executions and /v1/latestExecutions until `list_executions()`,
while the order's executedSize and status already count them).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from aiohttp import WSMsgType, web

FILL_PRICE = "10012345"
SYMBOLS = [{"symbol": "BTC", "minOrderSize": "0.0001", "maxOrderSize": "5", "sizeStep": "0.0001", "tickSize": "1",
            "takerFee": "0.0005", "makerFee": "-0.0001"},
           {"symbol": "BTC_JPY", "minOrderSize": "0.01", "maxOrderSize": "5", "sizeStep": "0.01", "tickSize": "1",
            "takerFee": "0", "makerFee": "0"}]
_PLAIN = re.compile(r"^\d+(\.\d+)?$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(code: str, text: str, status: int = 200) -> web.Response:
    return web.json_response({"status": 5, "messages": [{"message_code": code, "message_string": text}],
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
    hide_from_lists: bool = False
    busy_reads: list[str] = field(default_factory=list)
    busy_after_post: str | None = None
    lag_executions: bool = False
    unlisted: set[int] = field(default_factory=set)  # executionIds the execution lists leave out for now
    orders: list[dict] = field(default_factory=list)
    executions: list[dict] = field(default_factory=list)
    positions: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    ws_script: list[list] = field(default_factory=list)
    ws_connections: int = 0
    subscriptions: list[dict] = field(default_factory=list)
    _next: int = 5000

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("order", "closeOrder", "closeBulkOrder", "cancelOrder"):
            app.router.add_post(f"/private/v1/{path}", getattr(self, f"post_{path}"))
        for path in ("orders", "executions", "activeOrders", "latestExecutions", "openPositions", "positionSummary"):
            app.router.add_get(f"/private/v1/{path}", getattr(self, f"get_{path}"))
        app.router.add_get("/public/v1/symbols", self.symbols)
        app.router.add_get("/ws/public/v1", self.websocket)
        return app

    def _id(self) -> int:
        self._next += 1
        return self._next

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

    # ---- orders ----------------------------------------------------------------------------

    def _checked(self, spec: dict) -> web.Response | None:
        rules = next(s for s in SYMBOLS if s["symbol"] == spec["symbol"])
        for name, step in (("size", rules["sizeStep"]), ("price", rules["tickSize"])):
            if name not in spec:
                continue
            if not _PLAIN.match(str(spec[name])):
                return _error("ERR-5106", f"Invalid request parameter. {name}")
            if Decimal(spec[name]) % Decimal(step) != 0:
                return _error("ERR-5114", f"The {name} is not a multiple of its unit.")
        return None

    def _new_order(self, spec: dict, settle: str) -> dict:
        market = spec["executionType"] == "MARKET"
        order = {"orderId": self._id(), "rootOrderId": 0, "symbol": spec["symbol"], "side": spec["side"],
                 "orderType": "NORMAL", "executionType": spec["executionType"], "settleType": settle,
                 "size": spec["size"], "executedSize": "0", "price": spec.get("price", "0"), "losscutPrice": "0",
                 "status": "ORDERED",
                 "timeInForce": spec.get("timeInForce") or ("FAK" if market else "FAS"), "timestamp": _now()}
        order["rootOrderId"] = order["orderId"]
        self.orders.append(order)
        price = Decimal(spec.get("price", FILL_PRICE))
        crosses = market or (price >= Decimal(FILL_PRICE) if spec["side"] == "BUY" else price <= Decimal(FILL_PRICE))
        if crosses:
            self.execute(order["orderId"], order["size"])
        elif order["timeInForce"] in ("FAK", "FOK"):
            order.update(status="EXPIRED", cancelType=f"EXPIRED_{order['timeInForce']}")
        return order

    def execute(self, order_id: int, size: str) -> None:
        """The market trades `size` of the order (tests call this for resting orders)."""
        order = next(o for o in self.orders if o["orderId"] == order_id)
        executed = Decimal(order["executedSize"]) + Decimal(size)
        order.update(executedSize=str(executed),
                     status="EXECUTED" if executed == Decimal(order["size"]) else "ORDERED")
        # A close order settles its positions (whole, in this fake); an open order on margin opens one.
        parts = order["_settle"] if order["settleType"] == "CLOSE" else [(None, size)]
        for position_id, settle_size in parts:
            if order["settleType"] == "OPEN" and "_" in order["symbol"]:
                position_id = self._id()
                self.positions.append({"positionId": position_id, "symbol": order["symbol"], "side": order["side"],
                                       "size": settle_size, "orderdSize": "0", "price": FILL_PRICE,
                                       "lossGain": "0", "leverage": "4", "losscutPrice": "0",
                                       "timestamp": _now()})
            elif position_id is not None:
                position = next(p for p in self.positions if p["positionId"] == position_id)
                position["size"] = str(Decimal(position["size"]) - Decimal(settle_size))
            self.executions.append({"executionId": self._id(), "orderId": order_id, "positionId": position_id,
                                    "symbol": order["symbol"], "side": order["side"],
                                    "settleType": order["settleType"], "size": settle_size, "price": FILL_PRICE,
                                    "lossGain": "0", "fee": "0", "timestamp": _now()})
            if self.lag_executions:
                self.unlisted.add(self.executions[-1]["executionId"])
        self.positions = [p for p in self.positions if Decimal(p["size"]) > 0]

    def list_executions(self) -> None:
        """GMO's execution lists catch up: every execution made so far is listed."""
        self.unlisted.clear()

    def _listed(self) -> list[dict]:
        return [e for e in self.executions if e["executionId"] not in self.unlisted]

    async def _answer(self, order: dict) -> web.Response:
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if self.busy_after_post:
            code, self.busy_after_post = self.busy_after_post, None
            return _error(code, "The server is busy. Please retry later.")
        if "json" in self.malformed:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if "order_id" in self.malformed:
            return _ok()
        return _ok(str(order["orderId"]))

    async def post_order(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        spec = await request.json()
        self.bodies.append(spec)
        if (refused := self._checked(spec)) is not None:
            return refused
        return await self._answer(self._new_order(spec, "OPEN"))

    async def post_closeOrder(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        spec = await request.json()
        self.bodies.append(spec)
        [settle] = spec["settlePosition"]
        position = next((p for p in self.positions if p["positionId"] == settle["positionId"]), None)
        if position is None:
            return _error("ERR-254", "The specified position does not exist.")
        if position["side"] == spec["side"]:
            return _error("ERR-70", "The side of the specified position is incorrect.")
        if Decimal(settle["size"]) > Decimal(position["size"]):
            return _error("ERR-189", "The quantity of your close order exceeds your open position.")
        return await self._answer(self._close(spec, [(settle["positionId"], settle["size"])], settle["size"]))

    async def post_closeBulkOrder(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        spec = await request.json()
        self.bodies.append(spec)
        left, settle = Decimal(spec["size"]), []
        for position in [p for p in self.positions if p["symbol"] == spec["symbol"] and p["side"] != spec["side"]]:
            take = min(left, Decimal(position["size"]))
            if take > 0:
                settle.append((position["positionId"], str(take)))
                left -= take
        if left > 0:
            return _error("ERR-422", "The specified position does not exist in the close bulk order.")
        return await self._answer(self._close(spec, settle, spec["size"]))

    def _close(self, spec: dict, settle: list[tuple[int, str]], size: str) -> dict:
        order = {"orderId": self._id(), "symbol": spec["symbol"], "side": spec["side"], "orderType": "NORMAL",
                 "executionType": spec["executionType"], "settleType": "CLOSE", "size": size, "executedSize": "0",
                 "price": spec.get("price", "0"), "losscutPrice": "0", "status": "ORDERED",
                 "timeInForce": spec.get("timeInForce", "FAK"), "timestamp": _now(), "_settle": settle}
        order["rootOrderId"] = order["orderId"]
        self.orders.append(order)
        if spec["executionType"] == "MARKET":
            self.execute(order["orderId"], size)
        return order

    async def post_cancelOrder(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        wanted = (await request.json())["orderId"]
        order = next((o for o in self.orders if o["orderId"] == wanted), None)
        if order is None or order["status"] != "ORDERED":
            return _error("ERR-5122", "The request is invalid due to the status of the specified order.")
        order.update(status="CANCELED", cancelType="USER")
        return _ok()

    # ---- reads -----------------------------------------------------------------------------

    @staticmethod
    def _public(order: dict) -> dict:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    async def get_orders(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        if self.busy_reads:
            return _error(self.busy_reads.pop(0), "The server is busy. Please retry later.")
        wanted = {int(x) for x in request.query["orderId"].split(",")}
        return _ok({"list": [self._public(o) for o in self.orders if o["orderId"] in wanted]})

    async def get_executions(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [dict(e) for e in self._listed() if e["orderId"] == int(request.query["orderId"])]
        if "executions" in self.malformed:
            for row in rows:
                del row["price"]
        return _ok({"list": rows})

    async def get_activeOrders(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [self._public(o) for o in self.orders if o["symbol"] == request.query["symbol"]
                and o["status"] == "ORDERED" and not self.hide_from_lists]
        return _ok({"pagination": {"currentPage": 1, "count": len(rows)}, "list": rows[::-1]})

    async def get_latestExecutions(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [e for e in self._listed() if e["symbol"] == request.query["symbol"] and not self.hide_from_lists]
        page, count = int(request.query.get("page", 1)), int(request.query.get("count", 100))
        rows = rows[::-1][(page - 1) * count:page * count]  # newest first
        return _ok({"pagination": {"currentPage": page, "count": len(rows)}, "list": rows})

    async def get_openPositions(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        rows = [p for p in self.positions if p["symbol"] == request.query["symbol"]]
        return _ok({"pagination": {"currentPage": 1, "count": len(rows)}, "list": rows})

    async def get_positionSummary(self, request: web.Request) -> web.Response:
        if (refused := await self._refuse(request)) is not None:
            return refused
        sums: dict[tuple[str, str], Decimal] = {}
        for p in self.positions:
            sums[(p["symbol"], p["side"])] = sums.get((p["symbol"], p["side"]), Decimal(0)) + Decimal(p["size"])
        return _ok({"list": [{"averagePositionRate": FILL_PRICE, "positionLossGain": "0", "side": side,
                              "sumOrderQuantity": "0", "sumPositionQuantity": str(size), "symbol": symbol}
                             for (symbol, side), size in sorted(sums.items())]})

    async def symbols(self, request: web.Request) -> web.Response:
        return _ok(SYMBOLS)

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
                await ws.send_str(json.dumps({"channel": "ticker", "ask": str(10_000_100 + n),
                                              "bid": str(10_000_000 + n), "high": "10100000",
                                              "last": str(10_000_050 + n), "low": "9900000",
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
