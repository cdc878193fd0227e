"""A loopback Binance spot REST API (the shapes of Binance's public docs) for the ccxt adapter.

Signed endpoints check X-MBX-APIKEY and `signature` = hex HMAC-SHA256(secret, totalParams), where
totalParams is the query string followed by the form body, without the signature itself.
Knobs: `throttle` (HTTP 429 code -1003 that many times), `reply_delay`, `malformed` ({"order"}).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field

from aiohttp import web

FILL_PRICE = "65000.10"


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

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        app.router.add_get("/api/v3/ticker/24hr", self.ticker)
        app.router.add_post("/api/v3/order", self.new_order)
        app.router.add_get("/api/v3/order", self.query_order)
        app.router.add_delete("/api/v3/order", self.cancel_order)
        app.router.add_get("/api/v3/account", self.account)
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

    async def new_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        cid = params.get("newClientOrderId")
        if cid and any(o["clientOrderId"] == cid for o in self.orders):
            return _error(-2010, "Duplicate order sent.")
        number = len(self.orders) + 1
        market = params["type"] == "MARKET"
        now = int(time.time() * 1000)
        order = {"symbol": params["symbol"], "orderId": number, "orderListId": -1, "clientOrderId": cid,
                 "transactTime": now, "time": now, "updateTime": now, "price": params.get("price", "0.00000000"),
                 "origQty": params["quantity"], "executedQty": params["quantity"] if market else "0.00000000",
                 "cummulativeQuoteQty": "0", "status": "FILLED" if market else "NEW",
                 "timeInForce": params.get("timeInForce", "GTC"), "type": params["type"], "side": params["side"],
                 "workingTime": now, "fills": []}
        if market:
            order["fills"] = [{"price": FILL_PRICE, "qty": params["quantity"], "commission": "0.00000100",
                               "commissionAsset": "BTC", "tradeId": 900 + number}]
        self.orders.append(order)
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if "order" in self.malformed:
            return web.json_response({"symbol": params["symbol"], "status": "FILLED"})
        return web.json_response(order)

    def _find(self, params: dict) -> dict | None:
        if "origClientOrderId" in params:
            return next((o for o in self.orders if o["clientOrderId"] == params["origClientOrderId"]), None)
        return next((o for o in self.orders if str(o["orderId"]) == params.get("orderId")), None)

    async def query_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        order = self._find(params)
        if order is None:
            return _error(-2013, "Order does not exist.")
        return web.json_response(self._view(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        order = self._find(params)
        if order is None or order["status"] != "NEW":
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
