"""A loopback Binance spot REST API that keeps Binance's documented rules, for the ccxt adapter.

Rules (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints,
.../errors): signed endpoints check X-MBX-APIKEY and `signature` = hex HMAC-SHA256(secret,
totalParams); newClientOrderId must be unique among OPEN orders only (a filled order's id may
be used again, and that is a second order); quantities must be multiples of LOT_SIZE stepSize
and prices of PRICE_FILTER tickSize (-1013 otherwise); GET /api/v3/order carries no fills,
GET /api/v3/myTrades?orderId= lists them.
Knobs: `throttle` (-1003 as HTTP 429), `reply_delay`, `malformed` ({"order"}), `fail_after_accept`
(codes answered after the order was taken, e.g. [-1006]: "execution status unknown"),
`lookup_failures` (GET /api/v3/order answers 503).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import web

FILL_PRICE = "65000.10"
STEP_SIZE, TICK_SIZE = "0.00001", "0.01"
_OPEN = ("NEW", "PARTIALLY_FILLED")


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


@dataclass
class FakeBinance:
    api_key: str
    secret: str
    throttle: int = 0
    reply_delay: float = 0.0
    malformed: set[str] = field(default_factory=set)
    orders: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    ticker_calls: int = 0
    fail_ticker: int = 0
    fail_after_accept: list[int] = field(default_factory=list)
    lookup_failures: int = 0
    trades: list[dict] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        app.router.add_get("/api/v3/ticker/24hr", self.ticker)
        app.router.add_post("/api/v3/order", self.new_order)
        app.router.add_get("/api/v3/order", self.query_order)
        app.router.add_delete("/api/v3/order", self.cancel_order)
        app.router.add_get("/api/v3/account", self.account)
        app.router.add_get("/api/v3/myTrades", self.my_trades)
        return app

    async def _params(self, request: web.Request) -> tuple[dict, web.Response | None]:
        self.requests.append(f"{request.method} {request.path}")
        body = await request.text()
        query = request.query_string
        total = "&".join(part for part in (query, body) if part)
        unsigned, _, signature = total.rpartition("&signature=")
        params = dict(request.query)
        params.update(dict(await request.post()) if body else {})
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return params, _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        expected = hmac.new(self.secret.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return params, _error(-1022, "Signature for this request is not valid.")
        if self.throttle > 0:
            self.throttle -= 1
            return params, _error(-1003, "Too many requests; please use the websocket for live updates.", 429)
        return params, None

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response({"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                                  "exchangeFilters": [], "symbols": [{
                                      "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC",
                                      "baseAssetPrecision": 8, "quoteAsset": "USDT", "quotePrecision": 8,
                                      "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                                      "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
                                      "isMarginTradingAllowed": False, "permissions": ["SPOT"],
                                      "permissionSets": [["SPOT"]],
                                      "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01",
                                                   "maxPrice": "1000000.00", "tickSize": "0.01"},
                                                  {"filterType": "LOT_SIZE", "minQty": "0.00001",
                                                   "maxQty": "9000.00", "stepSize": "0.00001"}]}]})

    async def ticker(self, request: web.Request) -> web.Response:
        self.ticker_calls += 1
        if self.fail_ticker > 0:
            self.fail_ticker -= 1
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        n = self.ticker_calls
        now = int(time.time() * 1000)
        return web.json_response({"symbol": request.query["symbol"], "priceChange": "0", "priceChangePercent": "0",
                                  "weightedAvgPrice": "65000", "prevClosePrice": "65000", "lastPrice": "65000.05",
                                  "lastQty": "0.1", "bidPrice": f"{65000 + n}.00", "bidQty": "1",
                                  "askPrice": f"{65000 + n}.10", "askQty": "1", "openPrice": "64000",
                                  "highPrice": "66000", "lowPrice": "63000", "volume": "1234", "quoteVolume": "8e7",
                                  "openTime": now - 86_400_000, "closeTime": now + n, "firstId": 1, "lastId": 2,
                                  "count": 2})

    def _view(self, order: dict) -> dict:
        return {k: v for k, v in order.items() if k != "fills"}

    @property
    def fills(self) -> list[dict]:
        return self.trades

    def fill(self, client_id: str, qty: str, price: str = FILL_PRICE) -> dict:
        """The market trades `qty` of an order (tests call this for resting orders)."""
        order = next(o for o in self.orders if o["clientOrderId"] == client_id and o["status"] in _OPEN)
        executed = Decimal(order["executedQty"]) + Decimal(qty)
        order.update(executedQty=str(executed),
                     status="FILLED" if executed == Decimal(order["origQty"]) else "PARTIALLY_FILLED")
        trade = {"symbol": order["symbol"], "id": 900 + len(self.trades) + 1, "orderId": order["orderId"],
                 "orderListId": -1, "price": price, "qty": qty, "quoteQty": str(Decimal(qty) * Decimal(price)),
                 "commission": "0.00000100", "commissionAsset": "BTC", "time": int(time.time() * 1000),
                 "isBuyer": order["side"] == "BUY", "isMaker": False, "isBestMatch": True}
        self.trades.append(trade)
        order["fills"].append({"price": price, "qty": qty, "commission": trade["commission"],
                               "commissionAsset": "BTC", "tradeId": trade["id"]})
        return order

    def expire(self, client_id: str) -> None:
        """Binance expires the rest of an order (e.g. an IOC): EXPIRED keeps executedQty."""
        order = next(o for o in self.orders if o["clientOrderId"] == client_id and o["status"] in _OPEN)
        order["status"] = "EXPIRED"

    async def new_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        cid = params.get("newClientOrderId")
        if cid and any(o["clientOrderId"] == cid and o["status"] in _OPEN for o in self.orders):
            return _error(-2010, "Duplicate order sent.")
        if Decimal(params["quantity"]) % Decimal(STEP_SIZE) != 0:
            return _error(-1013, "Filter failure: LOT_SIZE")
        if "price" in params and Decimal(params["price"]) % Decimal(TICK_SIZE) != 0:
            return _error(-1013, "Filter failure: PRICE_FILTER")
        number = len(self.orders) + 1
        market = params["type"] == "MARKET"
        now = int(time.time() * 1000)
        order = {"symbol": params["symbol"], "orderId": number, "orderListId": -1, "clientOrderId": cid,
                 "transactTime": now, "time": now, "updateTime": now, "price": params.get("price", "0.00000000"),
                 "origQty": params["quantity"], "executedQty": "0", "cummulativeQuoteQty": "0", "status": "NEW",
                 "timeInForce": params.get("timeInForce", "GTC"), "type": params["type"], "side": params["side"],
                 "workingTime": now, "fills": []}
        self.orders.append(order)  # taken before any fault below: the exchange has acted
        if market:
            self.fill(cid, params["quantity"])
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if self.fail_after_accept:
            code = self.fail_after_accept.pop(0)
            return _error(code, "An unexpected response was received from the message bus. Execution status "
                          "unknown.", 500)
        if "order" in self.malformed:
            return web.json_response({"symbol": params["symbol"], "status": "FILLED"})
        return web.json_response(order)

    def _find(self, params: dict) -> dict | None:
        if "origClientOrderId" in params:  # the latest order with that client id
            found = [o for o in self.orders if o["clientOrderId"] == params["origClientOrderId"]]
            return found[-1] if found else None
        return next((o for o in self.orders if str(o["orderId"]) == params.get("orderId")), None)

    async def query_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        if self.lookup_failures > 0:
            self.lookup_failures -= 1
            return web.Response(status=503, text="<html>503 Service Unavailable</html>")
        order = self._find(params)
        if order is None:
            return _error(-2013, "Order does not exist.")
        return web.json_response(self._view(order))

    async def my_trades(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        return web.json_response([t for t in self.trades if t["symbol"] == params["symbol"]
                                  and ("orderId" not in params or str(t["orderId"]) == params["orderId"])])

    async def cancel_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        order = self._find(params)
        if order is None or order["status"] not in _OPEN:
            return _error(-2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        return web.json_response(self._view(order))

    async def account(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        return web.json_response({"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                                  "accountType": "SPOT", "updateTime": 0, "permissions": ["SPOT"],
                                  "balances": [{"asset": "BTC", "free": "0.5", "locked": "0.0"},
                                               {"asset": "USDT", "free": "1000.0", "locked": "0.0"}]})
