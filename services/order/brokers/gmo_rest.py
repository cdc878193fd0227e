"""GMO Coin's REST API as one signed, budgeted call, with GMO's answers sorted by what they prove.

Private requests carry API-KEY, API-TIMESTAMP (ms) and API-SIGN = hex HMAC-SHA256(secret,
timestamp + method + path + body), path such as /v1/order without /private and without the
query (https://api.coin.z.com/docs/#authentication-private). A reply is
{"status": 0, "data": ...} or {"status": 5, "messages": [{"message_code", "message_string"}]}.

What a refusal proves (https://api.coin.z.com/docs/#error-code):
- ERR-5003 "Requests are too many" (and HTTP 429): not done; slow down -> BrokerOverloaded;
- ERR-626 "The server is busy. Please retry later.", ERR-554 "The server is unavailable",
  ERR-5201/ERR-5202 maintenance: GMO could not serve the request now -> `GmoUnavailable`.
  Answered to a read, the read is simply unanswered; answered to an order POST, whether an
  order was created is not proven, so the broker treats it as an unknown outcome;
- any other code: GMO refused that request -> `GmoRefused` (a BrokerRejected with the code).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from services.common.clock import Clock
from services.common.venues import GmoSettings, VenueError, VenueHttp, field, json_of
from services.order.brokers.base import BrokerOverloaded, BrokerRejected
from services.order.brokers.budget import VenueBudget

VENUE = "GMO Coin"
RATE_LIMITED = ("ERR-5003",)
UNAVAILABLE = ("ERR-626", "ERR-554", "ERR-5201", "ERR-5202")


def sign(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    return hmac.new(secret.encode(), (timestamp + method + path + body).encode(), hashlib.sha256).hexdigest()


class GmoUnavailable(VenueError):
    """GMO answered busy or maintenance: the request was not served; an order POST's outcome is unproven."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(VENUE, message)
        self.code = code


class GmoRefused(BrokerRejected):
    """GMO refused the request with an error code (e.g. ERR-5122: the order is no longer cancelable)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class GmoRest:
    def __init__(self, settings: GmoSettings, clock: Clock, budget: VenueBudget, *,
                 http: VenueHttp | None = None) -> None:
        self._settings = settings
        self._clock = clock
        self.budget = budget
        self._http = http or VenueHttp(VENUE, settings.rest_url, timeout_seconds=settings.timeout_seconds)

    async def close(self) -> None:
        await self._http.close()

    async def public(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        await self.budget.read()
        reply = await self._http.request("GET", "/public" + path, params=params)
        return self._data("GET", path, reply)

    async def private(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: dict | None = None, priority: bool = False) -> Any:
        await (self.budget.read(priority=priority) if method == "GET" else self.budget.write(priority=priority))
        text = "" if body is None else json.dumps(body)
        stamp = str(int(self._clock.now().timestamp() * 1000))
        headers = {"API-KEY": self._settings.api_key.reveal(), "API-TIMESTAMP": stamp,
                   "API-SIGN": sign(self._settings.api_secret.reveal(), stamp, method, path, text)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        reply = await self._http.request(method, "/private" + path, params=params,
                                         body=text if body is not None else None, headers=headers)
        return self._data(method, path, reply)

    def _data(self, method: str, path: str, reply) -> Any:
        if reply.status == 429:
            detail = reply.text[:200] if reply.text.lstrip().startswith("{") else ""
            raise BrokerOverloaded(f"{VENUE}: {method} {path} answered 429 (rate limit) {detail}".rstrip(),
                                   reply.retry_after())
        if reply.status >= 500:
            raise VenueError(VENUE, f"{method} {path} answered HTTP {reply.status}")
        data = json_of(VENUE, reply, f"{method} {path}")
        if field(VENUE, data, "status") != 0:
            messages = data.get("messages") or [{}]
            code = str(messages[0].get("message_code", "?"))
            text = f"{code} {messages[0].get('message_string', '')}".strip()
            if code in RATE_LIMITED:
                raise BrokerOverloaded(f"{VENUE}: {method} {path} refused: {text}", reply.retry_after())
            if code in UNAVAILABLE:
                raise GmoUnavailable(f"{method} {path} answered {text}", code)
            raise GmoRefused(f"{VENUE} refused {method} {path}: {text}", code)
        return data.get("data")
