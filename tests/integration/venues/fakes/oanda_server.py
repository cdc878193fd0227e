"""A loopback OANDA v20: the REST order paths and the chunked pricing stream, as the v20 docs show them.

Knobs a test turns: `throttle` (answer 429 that many times), `reply_delay` (accept and record an
order, then answer only after this many seconds), `malformed` (any of "json", "fill_price", "lookup"),
`stream_script` (what each pricing-stream connection sends).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import web

FILL_PRICE = "150.123"
TIME = "2024-05-01T10:00:00.123456789Z"


@dataclass
class FakeOanda:
    token: str
    account_id: str
    throttle: int = 0
    reply_delay: float = 0.0
    malformed: set[str] = field(default_factory=set)
    orders: list[dict] = field(default_factory=list)
    transactions: dict[str, dict] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    stream_script: list[list] = field(default_factory=list)  # per connection: ["price", "heartbeat", ("sleep", s), "close"]
    stream_connections: int = 0
    _tx: int = 100

    def app(self) -> web.Application:
        app = web.Application()
        base = f"/v3/accounts/{{account}}"
        app.router.add_post(base + "/orders", self.create_order)
        app.router.add_get(base + "/orders/{spec}", self.get_order)
        app.router.add_put(base + "/orders/{spec}/cancel", self.cancel_order)
        app.router.add_get(base + "/transactions/{tx}", self.get_transaction)
        app.router.add_get(base + "/openPositions", self.open_positions)
        app.router.add_get(base + "/pricing/stream", self.pricing_stream)
        return app

    def _next_id(self) -> str:
        self._tx += 1
        return str(self._tx)

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"errorMessage": "Insufficient authorization to perform request."}, status=401)
        if request.match_info["account"] != self.account_id:
            return web.json_response({"errorMessage": "Invalid value specified for 'accountID'"}, status=400)
        if self.throttle > 0:
            self.throttle -= 1
            return web.json_response({"errorMessage": "Rate limit violation"}, status=429,
                                     headers={"Retry-After": "0"})
        return None

    async def create_order(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        spec = (await request.json())["order"]
        cid = spec["clientExtensions"]["id"]
        if any(o["clientExtensions"]["id"] == cid for o in self.orders):
            return web.json_response({"orderRejectTransaction": {"type": "MARKET_ORDER_REJECT",
                                                                 "rejectReason": "CLIENT_ORDER_ID_ALREADY_EXISTS"},
                                      "errorCode": "CLIENT_ORDER_ID_ALREADY_EXISTS",
                                      "errorMessage": "The client Order ID specified is already in use"}, status=400)
        order_id = self._next_id()
        order = {"id": order_id, "createTime": TIME, "type": spec["type"], "instrument": spec["instrument"],
                 "units": spec["units"], "timeInForce": spec["timeInForce"], "clientExtensions": {"id": cid},
                 "state": "PENDING"}
        reply: dict = {"orderCreateTransaction": {"id": order_id, "type": "MARKET_ORDER", "time": TIME,
                                                  "instrument": spec["instrument"], "units": spec["units"],
                                                  "clientExtensions": {"id": cid}}}
        if spec["type"] == "MARKET":
            fill_id = self._next_id()
            fill = {"id": fill_id, "type": "ORDER_FILL", "orderID": order_id, "clientOrderID": cid,
                    "instrument": spec["instrument"], "units": spec["units"], "price": FILL_PRICE,
                    "commission": "0.0000", "time": TIME}
            self.transactions[fill_id] = fill
            order.update(state="FILLED", fillingTransactionID=fill_id, filledTime=TIME)
            reply["orderFillTransaction"] = dict(fill)
            reply["lastTransactionID"] = fill_id
        self.orders.append(order)  # recorded before any delay: the venue has acted
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if "json" in self.malformed:
            return web.Response(status=201, text="{\"orderCreateTransaction\": ", content_type="application/json")
        if "fill_price" in self.malformed and "orderFillTransaction" in reply:
            del reply["orderFillTransaction"]["price"]
        return web.json_response(reply, status=201)

    def _find(self, spec: str) -> dict | None:
        if spec.startswith("@"):
            return next((o for o in self.orders if o["clientExtensions"]["id"] == spec[1:]), None)
        return next((o for o in self.orders if o["id"] == spec), None)

    async def get_order(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._find(request.match_info["spec"])
        if order is None:
            return web.json_response({"errorCode": "ORDER_DOESNT_EXIST",
                                      "errorMessage": "The Order specified does not exist"}, status=404)
        if "lookup" in self.malformed:
            return web.json_response({"order": {"id": order["id"]}, "lastTransactionID": "1"})
        return web.json_response({"order": order, "lastTransactionID": str(self._tx)})

    async def cancel_order(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._find(request.match_info["spec"])
        if order is None or order["state"] != "PENDING":
            return web.json_response({"errorCode": "ORDER_DOESNT_EXIST",
                                      "errorMessage": "The Order specified does not exist"}, status=404)
        order["state"] = "CANCELLED"
        tx_id = self._next_id()
        return web.json_response({"orderCancelTransaction": {"id": tx_id, "type": "ORDER_CANCEL",
                                                             "orderID": order["id"], "reason": "CLIENT_REQUEST",
                                                             "time": TIME}, "lastTransactionID": tx_id})

    async def get_transaction(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        tx = self.transactions.get(request.match_info["tx"])
        if tx is None:
            return web.json_response({"errorMessage": "Transaction not found"}, status=404)
        return web.json_response({"transaction": tx, "lastTransactionID": str(self._tx)})

    async def open_positions(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        units: dict[str, Decimal] = {}
        for order in self.orders:
            if order["state"] == "FILLED":
                units[order["instrument"]] = units.get(order["instrument"], Decimal(0)) + Decimal(order["units"])
        positions = [{"instrument": i, "long": {"units": str(max(u, 0)), "averagePrice": FILL_PRICE},
                      "short": {"units": str(min(u, 0)), "averagePrice": FILL_PRICE}} for i, u in units.items()]
        return web.json_response({"positions": positions, "lastTransactionID": str(self._tx)})

    async def pricing_stream(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        instruments = request.query.get("instruments", "").split(",")
        script = self.stream_script[min(self.stream_connections, len(self.stream_script) - 1)]
        self.stream_connections += 1
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        n = 0
        for step in script:
            if step == "price":
                n += 1
                line = {"type": "PRICE", "instrument": instruments[0], "time": TIME, "tradeable": True,
                        "bids": [{"price": f"150.{n:03d}", "liquidity": 1000000}],
                        "asks": [{"price": f"150.{n + 5:03d}", "liquidity": 1000000}],
                        "closeoutBid": "150.000", "closeoutAsk": "150.010"}
                await response.write((json.dumps(line) + "\n").encode())
            elif step == "heartbeat":
                await response.write(b'{"type":"HEARTBEAT","time":"' + TIME.encode() + b'"}\n')
            elif step == "garbage":
                await response.write(b"{not json\n")
            elif isinstance(step, tuple) and step[0] == "sleep":
                await asyncio.sleep(step[1])
            elif step == "close":
                return response  # ends the chunked body: the client sees the stream end
        await asyncio.sleep(3600)  # hold the connection open and silent
        return response
