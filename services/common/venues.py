"""What the real venues (OANDA v20, GMO Coin, ccxt exchanges) share: endpoints, credentials, one HTTP road.

Both sides of a venue, the market-data feed and the order broker, read their settings here so a
practice account is chosen in one place (QUANTMESH_VENUE_ENV=practice|live, practice by default)
and credentials come only from the environment. A credential is held in a `Secret`, whose str and
repr are masked: it can reach an HTTP header, never a log line, an exception message or a repr.

The HTTP road (`VenueHttp`) makes one request and translates transport trouble into `VenueError`s
that name the venue; it does not retry. Retries and slowing down on 429 belong to the order
plane's BrokerGateway (tenacity + AdaptiveRateLimiter), which sees `BrokerOverloaded` from the
broker adapters; feeds reconnect with their own backoff.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from services.common.config import ConfigError, Env

VENUE_ENVS = ("practice", "live")

OANDA_REST = {"practice": "https://api-fxpractice.oanda.com", "live": "https://api-fxtrade.oanda.com"}
OANDA_STREAM = {"practice": "https://stream-fxpractice.oanda.com", "live": "https://stream-fxtrade.oanda.com"}
GMO_REST = "https://api.coin.z.com"          # /public and /private below it; GMO has no practice system
GMO_WS = "wss://api.coin.z.com/ws/public/v1"

# Request budgets, from the venues' own documents:
# OANDA allows 120 REST requests per second (https://developer.oanda.com/rest-live-v20/best-practices/);
# we keep a margin below it. GMO Coin Tier 1 allows 20 GET and 20 POST per second
# (https://api.coin.z.com/docs/#restrictions; Tier 2: 30 each).
OANDA_REQUESTS_PER_SECOND = 100.0
GMO_GET_PER_SECOND = 20.0
GMO_POST_PER_SECOND = 20.0
# Binance spot: 50 orders per 10 s per account (exchangeInfo rateLimits ORDERS); ccxt's own
# throttle (enableRateLimit) paces the request weight, this paces orders and cancels.
CCXT_ORDERS_PER_SECOND = 5.0

#: ccxt exchanges whose client order id both refuses a duplicate of an open order and finds the
#: order again (Binance: newClientOrderId / origClientOrderId, ccxt `clientOrderId` param,
#: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints).
#: Any other exchange trades live only with QUANTMESH_CCXT_NO_RESEND=1.
CCXT_CLIENT_ID_EXCHANGES = frozenset({"binance", "binanceus", "binanceusdm", "binancecoinm"})


class Secret:
    """A credential. Only `reveal()` gives the value; everything else prints stars."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickled into a crash dump or a subprocess argument by accident
        raise TypeError("a Secret cannot be pickled")


def _secret(env: Env, name: str, *, required: bool, why: str) -> Secret:
    value = env.optional(name)
    if value is None:
        if required:
            raise ConfigError(f"{name} is not set; {why}")
        return Secret("")
    return Secret(value)


def _venue_env(env: Env) -> str:
    return env.choice("QUANTMESH_VENUE_ENV", "practice", VENUE_ENVS)


def _url(env: Env, name: str, default: str) -> str:
    value = env.str(name, default).rstrip("/")
    if not value.startswith(("http://", "https://", "ws://", "wss://")):
        raise ConfigError(f"{name}={value!r} is not an http(s):// or ws(s):// URL")
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class OandaSettings:
    venue_env: str
    rest_url: str
    stream_url: str
    token: Secret
    account_id: str
    timeout_seconds: float
    stream_silence_seconds: float   # OANDA sends a heartbeat every 5 s; twice that of silence means a dead link
    poll_seconds: float             # how often the broker asks for fills of resting orders
    requests_per_second: float = OANDA_REQUESTS_PER_SECOND

    @classmethod
    def from_env(cls, env: Env) -> "OandaSettings":
        venue_env = _venue_env(env)
        account = env.optional("OANDA_ACCOUNT_ID")
        if account is None:
            raise ConfigError("OANDA_ACCOUNT_ID is not set; it is the v20 account id such as 101-001-1234567-001 "
                              "(Manage API Access on the OANDA practice site)")
        return cls(
            venue_env=venue_env,
            rest_url=_url(env, "QUANTMESH_OANDA_REST_URL", OANDA_REST[venue_env]),
            stream_url=_url(env, "QUANTMESH_OANDA_STREAM_URL", OANDA_STREAM[venue_env]),
            token=_secret(env, "OANDA_API_TOKEN", required=True,
                          why="it is the personal access token of the OANDA account (sent as a Bearer token)"),
            account_id=account,
            timeout_seconds=env.float("QUANTMESH_VENUE_TIMEOUT_SECONDS", 10.0, minimum=0.05),
            stream_silence_seconds=env.float("QUANTMESH_VENUE_STREAM_SILENCE_SECONDS", 10.0, minimum=0.05),
            poll_seconds=env.float("QUANTMESH_VENUE_POLL_SECONDS", 2.0, minimum=0.05),
            requests_per_second=env.float("QUANTMESH_OANDA_REQUESTS_PER_SECOND", OANDA_REQUESTS_PER_SECOND,
                                          minimum=0.1),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class GmoSettings:
    venue_env: str
    rest_url: str                   # the host; public API under /public, private under /private
    ws_url: str
    api_key: Secret
    api_secret: Secret
    timeout_seconds: float
    stream_silence_seconds: float
    poll_seconds: float
    get_per_second: float = GMO_GET_PER_SECOND
    post_per_second: float = GMO_POST_PER_SECOND

    @classmethod
    def from_env(cls, env: Env, *, trading: bool) -> "GmoSettings":
        """`trading=True` (the broker) needs the keys, and refuses practice unless a test server is named."""
        venue_env = _venue_env(env)
        rest_url = _url(env, "QUANTMESH_GMO_REST_URL", GMO_REST)
        if trading and venue_env == "practice" and env.optional("QUANTMESH_GMO_REST_URL") is None:
            raise ConfigError("QUANTMESH_VENUE_ENV=practice, but GMO Coin has no practice system: its API trades "
                              "real money; set QUANTMESH_VENUE_ENV=live to trade, or QUANTMESH_GMO_REST_URL to a "
                              "test server")
        why = "GMO Coin's private API signs every request with the API key and secret (API-KEY / API-SIGN)"
        return cls(
            venue_env=venue_env, rest_url=rest_url,
            ws_url=_url(env, "QUANTMESH_GMO_WS_URL", GMO_WS),
            api_key=_secret(env, "GMO_API_KEY", required=trading, why=why),
            api_secret=_secret(env, "GMO_API_SECRET", required=trading, why=why),
            timeout_seconds=env.float("QUANTMESH_VENUE_TIMEOUT_SECONDS", 10.0, minimum=0.05),
            stream_silence_seconds=env.float("QUANTMESH_VENUE_STREAM_SILENCE_SECONDS", 30.0, minimum=0.05),
            poll_seconds=env.float("QUANTMESH_VENUE_POLL_SECONDS", 2.0, minimum=0.05),
            get_per_second=env.float("QUANTMESH_GMO_GET_PER_SECOND", GMO_GET_PER_SECOND, minimum=0.1),
            post_per_second=env.float("QUANTMESH_GMO_POST_PER_SECOND", GMO_POST_PER_SECOND, minimum=0.1),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CcxtSettings:
    exchange_id: str
    venue_env: str                  # practice -> set_sandbox_mode(True) where the exchange has a sandbox
    api_key: Secret
    secret: Secret
    rest_url: str | None            # tests: every urls['api'] entry is pointed at this host
    timeout_seconds: float
    poll_seconds: float
    orders_per_second: float = CCXT_ORDERS_PER_SECOND
    # Declared for exchanges without client-id dedupe and lookup: every doubtful send stays
    # unknown (never retried, never reported absent) and lookups go by the exchange's own id.
    no_resend: bool = False

    @property
    def has_client_ids(self) -> bool:
        return self.exchange_id in CCXT_CLIENT_ID_EXCHANGES

    @classmethod
    def from_env(cls, env: Env, exchange_id: str, *, trading: bool) -> "CcxtSettings":
        import ccxt  # local: only processes that use ccxt pay for importing it

        if exchange_id not in ccxt.exchanges:
            raise ConfigError(f"ccxt:{exchange_id}: ccxt has no exchange {exchange_id!r} "
                              "(see ccxt.exchanges, e.g. binance, kraken, bitflyer)")
        why = f"the {exchange_id} API needs a key and secret to trade"
        venue_env = _venue_env(env)
        no_resend = env.bool("QUANTMESH_CCXT_NO_RESEND", False)
        if trading and venue_env == "live" and exchange_id not in CCXT_CLIENT_ID_EXCHANGES and not no_resend:
            raise ConfigError(
                f"ccxt:{exchange_id} cannot refuse a duplicate client order id nor find an order by it, so an "
                "order whose outcome is unknown could be sent twice; it trades live only with "
                "QUANTMESH_CCXT_NO_RESEND=1 (never resend, orders of unknown outcome wait for an operator), "
                f"or use one of {', '.join(sorted(CCXT_CLIENT_ID_EXCHANGES))}")
        return cls(
            exchange_id=exchange_id, venue_env=venue_env, no_resend=no_resend,
            api_key=_secret(env, "CCXT_API_KEY", required=trading, why=why),
            secret=_secret(env, "CCXT_SECRET", required=trading, why=why),
            rest_url=_url(env, "QUANTMESH_CCXT_REST_URL", "http://unset") if env.optional(
                "QUANTMESH_CCXT_REST_URL") else None,
            timeout_seconds=env.float("QUANTMESH_VENUE_TIMEOUT_SECONDS", 10.0, minimum=0.05),
            poll_seconds=env.float("QUANTMESH_VENUE_POLL_SECONDS", 2.0, minimum=0.05),
            orders_per_second=env.float("QUANTMESH_CCXT_ORDERS_PER_SECOND", CCXT_ORDERS_PER_SECOND, minimum=0.1),
        )


def make_ccxt_exchange(settings: CcxtSettings, *, streaming: bool = False):
    """A configured ccxt (or ccxt.pro when streaming) exchange; the caller closes it."""
    if streaming:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    exchange = getattr(module, settings.exchange_id)({
        "apiKey": settings.api_key.reveal(), "secret": settings.secret.reveal(), "enableRateLimit": True,
        "timeout": int(settings.timeout_seconds * 1000)})
    if settings.venue_env == "practice" and exchange.urls.get("test"):
        exchange.set_sandbox_mode(True)
    if settings.rest_url:
        point_at(exchange, settings.rest_url)
    return exchange


def point_at(exchange, base_url: str) -> None:
    """Sends every REST call of `exchange` to `base_url`, keeping each API's path (tests, proxies)."""
    from urllib.parse import urlsplit

    def move(value):
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("http"):
            return base_url.rstrip("/") + urlsplit(value).path
        return value
    exchange.urls["api"] = move(exchange.urls["api"])



def parse_venue_choice(variable: str, text: str) -> tuple[str, str]:
    """'oanda' | 'gmo' | 'ccxt:<exchange>' -> (kind, exchange); raises ConfigError naming the variable."""
    kind, _, rest = text.partition(":")
    if kind in ("oanda", "gmo") and not rest:
        return kind, ""
    if kind == "ccxt" and rest.strip():
        return "ccxt", rest.strip().lower()
    raise ConfigError(f"{variable}={text!r} is not one of oanda, gmo, ccxt:<exchange> (e.g. ccxt:binance)")


# ---- errors ---------------------------------------------------------------------------------


class VenueError(Exception):
    """Something went wrong talking to a venue; the message names the venue."""

    def __init__(self, venue: str, message: str) -> None:
        super().__init__(f"{venue}: {message}")
        self.venue = venue


class VenueTimeout(VenueError):
    """No answer in time: the venue may or may not have acted on the request."""


class VenueUnreachable(VenueError):
    """No answer: the connection was cut or reset; the request may have reached the venue."""


class VenueNotSent(VenueUnreachable):
    """The connection was never made (refused, no route, DNS, TLS): the venue never saw the request."""


class MalformedVenueReply(VenueError):
    """The venue answered something we cannot read; `field` names what was missing or bad."""

    def __init__(self, venue: str, message: str, field: str = "") -> None:
        super().__init__(venue, message)
        self.field = field


@dataclass(frozen=True, slots=True)
class VenueReply:
    status: int
    text: str
    headers: Mapping[str, str]

    def retry_after(self, default: float = 1.0) -> float:
        value = self.headers.get("Retry-After")
        try:
            return max(0.0, float(value)) if value is not None else default
        except ValueError:
            return default


class VenueHttp:
    """One aiohttp session towards one venue host; one request per call, no retries (see the module doc)."""

    def __init__(self, venue: str, base_url: str, *, timeout_seconds: float,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.venue = venue
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._session = session
        self._own_session = session is None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: str | None = None, headers: Mapping[str, str] | None = None) -> VenueReply:
        what = f"{method} {path}"
        try:
            async with self.session().request(
                    method, self.base_url + path, params=params, data=body, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout_seconds)) as response:
                text = await response.text()
                return VenueReply(response.status, text, dict(response.headers))
        except (asyncio.TimeoutError, TimeoutError):
            raise VenueTimeout(self.venue, f"{what} got no answer within {self.timeout_seconds:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise VenueNotSent(self.venue, f"{what} was not sent: {type(exc).__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            # The exception text can carry the URL but never our headers; keep only its class and message.
            raise VenueUnreachable(self.venue, f"{what} failed: {type(exc).__name__}: {exc}") from None


# ---- reading replies ------------------------------------------------------------------------


def json_of(venue: str, reply: VenueReply, what: str) -> Any:
    try:
        return json.loads(reply.text)
    except ValueError:
        raise MalformedVenueReply(venue, f"the reply to {what} (HTTP {reply.status}) is not JSON: "
                                  f"{reply.text[:80]!r}", field="<body>") from None


def field(venue: str, data: Any, path: str) -> Any:
    """data['a']['b'] for path 'a.b', or MalformedVenueReply naming the venue and the path."""
    value = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value or value[part] is None:
            raise MalformedVenueReply(venue, f"the reply has no field {path!r}", field=path)
        value = value[part]
    return value


def decimal_field(venue: str, data: Any, path: str) -> Decimal:
    raw = field(venue, data, path)
    try:
        number = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise MalformedVenueReply(venue, f"the field {path!r} is not a number: {raw!r}", field=path) from None
    if not number.is_finite():
        raise MalformedVenueReply(venue, f"the field {path!r} is not a finite number: {raw!r}", field=path)
    return number


def rfc3339_time(text: str) -> datetime:
    """'2024-01-02T03:04:05.123456789Z' (OANDA, GMO: up to nanoseconds) -> aware UTC, microseconds kept."""
    head, _, tail = str(text).strip().rstrip("Zz").partition(".")
    offset = ""
    for sign in ("+", "-"):
        if sign in tail:
            tail, _, rest = tail.partition(sign)
            offset = sign + rest
    if not tail and "+" in head[10:]:
        head, _, rest = head.rpartition("+")
        offset = "+" + rest
    micros = (tail + "000000")[:6]
    moment = datetime.fromisoformat(f"{head}.{micros}{offset}")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
