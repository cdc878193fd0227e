"""The MarketData servicer: proto <-> domain, request validation, no business rules."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from quantmesh.market_data.v1 import market_data_pb2_grpc
from services.common import validation
from services.common.auth import AuthPolicy, Role
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.wire import SIDE_FROM_PROTO, SIDE_TO_PROTO
from services.common.timeutil import to_timestamp
from services.common.validation import Sign, parse_decimal
from services.market_data.candles import Candle, Ohlc
from services.market_data.engine import MarketDataEngine
from services.market_data.events import CandleEvent, FactorEvent
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe
from services.market_data.repository import MarketDataRepository, PageQuery

DEFAULT_PAGE, MAX_PAGE = 500, 5_000
MAX_PUBLISHED_TICKS = 10_000
MAX_PAGE_TOKEN_CHARS = 512
_AGGRESSORS = {common_pb2.SIDE_UNSPECIFIED: None, **SIDE_FROM_PROTO}

#: Roles needed when tokens are configured: publishing ticks rewrites what every strategy sees.
POLICY: AuthPolicy = {
    "/quantmesh.market_data.v1.MarketData/PublishTicks": frozenset({Role.SERVICE, Role.OPERATOR}),
}
_ALLOWED_TIMEFRAMES = ", ".join(f"TIMEFRAME_{tf.name}" for tf in Timeframe)


def timeframe_from_proto(value: int, field: str = "timeframe") -> Timeframe:
    name = common_pb2.Timeframe.Name(value) if value in common_pb2.Timeframe.values() else None
    if name is None or name == "TIMEFRAME_UNSPECIFIED":
        raise InvalidArgument(f"{field} {name or value} is not a candle timeframe; use one of {_ALLOWED_TIMEFRAMES}")
    return Timeframe[name.removeprefix("TIMEFRAME_")]


def timeframe_to_proto(timeframe: Timeframe) -> int:
    return common_pb2.Timeframe.Value(f"TIMEFRAME_{timeframe.name}")


def _ohlc(o: Ohlc) -> pb.Ohlc:
    return pb.Ohlc(open=o.open, high=o.high, low=o.low, close=o.close)


def candle_to_proto(c: Candle) -> pb.Candle:
    message = pb.Candle(instrument=c.instrument, timeframe=timeframe_to_proto(c.timeframe),
                        start_time=to_timestamp(c.start), end_time=to_timestamp(c.end), bid=_ohlc(c.bid),
                        ask=_ohlc(c.ask), mid=_ohlc(c.mid), tick_count=c.tick_count, volume=c.volume,
                        closed=c.closed)
    if c.closed_time is not None:  # unset, not the epoch, on candles stored before it was recorded
        message.closed_time.CopyFrom(to_timestamp(c.closed_time))
    return message


def tick_to_proto(t: FeedTick) -> pb.Tick:
    return pb.Tick(instrument=t.instrument, time=to_timestamp(t.time), bid=str(t.bid), ask=str(t.ask),
                   volume=str(t.volume), aggressor=SIDE_TO_PROTO.get(t.aggressor or "", common_pb2.SIDE_UNSPECIFIED))


class MarketDataService(market_data_pb2_grpc.MarketDataServicer):
    def __init__(self, engine: MarketDataEngine, repository: MarketDataRepository, *, pushed: bool = False) -> None:
        self._engine = engine
        self._repository = repository
        self._pushed = pushed  # started with QUANTMESH_FEED=push: ticks arrive over PublishTicks

    # -- validation -------------------------------------------------------------------------
    def _instrument(self, symbol: str, field: str = "instrument") -> str:
        if not symbol:
            raise InvalidArgument(f"{field} is required; this plane is fed with {self._fed()}")
        if symbol not in self._engine.instruments:
            raise InvalidArgument(f"{field} {validation.shown(symbol)} is not an instrument of this plane; "
                                  f"it is fed with {self._fed()}")
        return symbol

    def _instruments(self, symbols: Sequence[str]) -> frozenset[str]:
        if len(symbols) > validation.MAX_LIST_ITEMS:
            raise InvalidArgument(f"instruments has {len(symbols):,} entries; this plane is fed with {self._fed()}")
        return frozenset(self._instrument(s, "instruments") for s in symbols)

    def _fed(self) -> str:
        return ", ".join(self._engine.instruments)

    def _filter(self, instruments, timeframes) -> Callable[[tuple[str, Timeframe]], bool]:
        wanted_instruments = self._instruments(instruments)
        wanted_timeframes = frozenset(timeframe_from_proto(v, "timeframes") for v in timeframes)

        def matches(key: tuple[str, Timeframe]) -> bool:
            return ((not wanted_instruments or key[0] in wanted_instruments)
                    and (not wanted_timeframes or key[1] in wanted_timeframes))
        return matches

    @staticmethod
    def _resume(request) -> int | None:
        return validation.resume_after(request)

    # -- streams ----------------------------------------------------------------------------
    async def StreamCandles(self, request, context):
        matches = self._filter(request.instruments, request.timeframes)
        async for seq, event in self._engine.candle_stream.subscribe(
                after_seq=self._resume(request), matches=lambda e: matches(e.key)):
            yield _candle_message(seq, event)

    async def StreamFactors(self, request, context):
        matches = self._filter(request.instruments, request.timeframes)
        async for seq, event in self._engine.factor_stream.subscribe(
                after_seq=self._resume(request), matches=lambda e: matches(e.key)):
            yield _factor_message(seq, event)

    async def StreamTicks(self, request, context):
        wanted = self._instruments(request.instruments)
        # Initial metadata goes out once the subscription is in place: a client that waits for it
        # (the paper venue) knows every tick published after that reaches it.
        async for seq, event in self._engine.tick_stream.subscribe(
                after_seq=self._resume(request),
                matches=lambda e: not wanted or e.tick.instrument in wanted,
                registered=lambda: context.send_initial_metadata(())):
            if event.wire is None:
                event.wire = pb.StreamTicksResponse(seq=seq, tick=tick_to_proto(event.tick),
                                                    trace_context=event.trace_context)
            yield event.wire

    # -- unary ------------------------------------------------------------------------------
    async def GetCandles(self, request, context):
        instrument = self._instrument(request.instrument)
        timeframe = timeframe_from_proto(request.timeframe)
        start = validation.optional_timestamp(request, "start_time")
        end = validation.optional_timestamp(request, "end_time")
        validation.window("start_time", start, "end_time", end)
        limit = min(request.limit or DEFAULT_PAGE, MAX_PAGE)
        query = PageQuery(instrument=instrument, timeframe=timeframe, start=start, end=end, limit=limit,
                          latest=request.latest)
        after = before = None
        if request.page_token:
            cursor = _decode_token(request.page_token, query)
            after, before = (None, cursor) if query.latest else (cursor, None)
        page = await self._repository.candle_page(query, after=after, before=before)
        more = len(page) > limit
        page = page[1:] if (more and query.latest) else page[:limit]
        token = ""
        if more and page:
            token = _encode_token(query, page[0][1].start if query.latest else page[-1][1].start)
        return pb.GetCandlesResponse(candles=[candle_to_proto(c) for _, c in page], seqs=[s for s, _ in page],
                                     next_page_token=token)

    async def ListInstruments(self, request, context):
        items = []
        for symbol, spec in self._engine.instruments.items():
            item = pb.Instrument(symbol=symbol, tick_size=str(spec.tick_size), quote_currency=spec.quote_currency,
                                 feed=self._engine.feed_name)
            last = self._engine.last_tick_time(symbol)
            if last is not None:
                item.last_tick_time.CopyFrom(to_timestamp(last))
            items.append(item)
        return pb.ListInstrumentsResponse(instruments=items)

    async def GetQuote(self, request, context):
        instrument = self._instrument(request.instrument)
        quote = self._engine.quote(instrument)
        if quote is None:
            raise FailedPrecondition(f"no tick for {instrument} has arrived yet from the {self._engine.feed_name} "
                                     "feed; retry once the feed has delivered one")
        seq, event = quote
        return pb.GetQuoteResponse(tick=tick_to_proto(event.tick), seq=seq)

    async def PublishTicks(self, request, context):
        if not self._pushed:
            raise FailedPrecondition(
                f"this market-data plane reads its own feed (QUANTMESH_FEED={self._engine.feed_name}); "
                "start it with QUANTMESH_FEED=push to publish ticks")
        ticks = self._published_ticks(request.ticks)  # every tick checked before any is ingested
        # Shielded: a caller that goes away mid-batch must not leave half of it ingested.
        done = await asyncio.shield(self._engine.publish(ticks))
        return pb.PublishTicksResponse(accepted=done.accepted, late=done.late, last_tick_seq=done.last_tick_seq,
                                       last_candle_seq=done.last_candle_seq, last_factor_seq=done.last_factor_seq,
                                       candles_closed=done.candles_closed)

    def _published_ticks(self, messages: Sequence[pb.Tick]) -> list[FeedTick]:
        if not messages:
            raise InvalidArgument(f"ticks is empty; send at least one tick (at most {MAX_PUBLISHED_TICKS:,} "
                                  "per request)")
        if len(messages) > MAX_PUBLISHED_TICKS:
            raise InvalidArgument(f"ticks holds {len(messages):,} ticks, more than the {MAX_PUBLISHED_TICKS:,} one "
                                  f"request may carry; send them in requests of at most {MAX_PUBLISHED_TICKS:,}, "
                                  "in time order")
        return [self._published_tick(i, m) for i, m in enumerate(messages)]

    def _published_tick(self, i: int, m: pb.Tick) -> FeedTick:
        field = f"ticks[{i}]"
        if not m.instrument:
            raise InvalidArgument(f"{field}.instrument is empty; name one of {self._fed()} (QUANTMESH_INSTRUMENTS)")
        if m.instrument not in self._engine.instruments:
            raise InvalidArgument(f"{field}.instrument {validation.shown(m.instrument)} is not an instrument of this "
                                  f"plane; it takes {self._fed()} (QUANTMESH_INSTRUMENTS)")
        if not m.HasField("time"):
            raise InvalidArgument(f"{field}.time is unset; set it to when the quote was made, by the feed's clock")
        time = validation.timestamp(f"{field}.time", m.time)
        if m.aggressor not in _AGGRESSORS:
            raise InvalidArgument(f"{field}.aggressor {m.aggressor} is not a side; use SIDE_BUY, SIDE_SELL or "
                                  "SIDE_UNSPECIFIED (a pure quote)")
        bid = _decimal(f"{field}.bid", m.bid, Sign.POSITIVE, "a positive finite decimal",
                       'send the best bid as a decimal string such as "86.655"')
        ask = _decimal(f"{field}.ask", m.ask, Sign.POSITIVE, "a positive finite decimal",
                       'send the best ask as a decimal string such as "86.658"')
        volume = _decimal(f"{field}.volume", m.volume or "0", Sign.NON_NEGATIVE, "a non-negative decimal",
                          'send it as a decimal string such as "1000000", or leave it empty for 0', shown=m.volume)
        return FeedTick(m.instrument, time, bid, ask, volume, _AGGRESSORS[m.aggressor])


def _decimal(field: str, text: str, sign: Sign, kind: str, advice: str, *, shown: str | None = None) -> Decimal:
    """A price or volume in ASCII digits that fits both the database and a candle's float."""
    try:
        return parse_decimal(text, sign=sign)
    except ValueError as exc:
        raise InvalidArgument(f"{field} {validation.shown(text if shown is None else shown)} is not {kind}: "
                              f"it {exc}; {advice}") from None


def _candle_message(seq: int, event: CandleEvent) -> pb.StreamCandlesResponse:
    if event.wire is None:
        event.wire = pb.StreamCandlesResponse(seq=seq, candle=candle_to_proto(event.candle),
                                              trace_context=event.trace_context)
    return event.wire


def _factor_message(seq: int, event: FactorEvent) -> pb.StreamFactorsResponse:
    if event.wire is None:
        event.wire = pb.StreamFactorsResponse(seq=seq, factors=pb.FactorSet(
            instrument=event.instrument, timeframe=timeframe_to_proto(event.timeframe),
            candle_start_time=to_timestamp(event.candle_start), values=event.values),
            trace_context=event.trace_context)
    return event.wire


# A page token names the request it continues, so it cannot be replayed against another series.
def _encode_token(query: PageQuery, cursor: datetime) -> str:
    body = {"i": query.instrument, "t": query.timeframe.name, "l": query.latest,
            "c": int(cursor.timestamp() * 1_000_000)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, query: PageQuery) -> datetime:
    try:
        if len(token) > MAX_PAGE_TOKEN_CHARS:
            raise ValueError("longer than any token this server issues")
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        same = body["i"] == query.instrument and body["t"] == query.timeframe.name and body["l"] == query.latest
        cursor = datetime.fromtimestamp(int(body["c"]) / 1_000_000, timezone.utc)
        if not validation.EARLIEST <= cursor < validation.LATEST:
            raise ValueError("cursor out of range")
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise InvalidArgument(f"page_token {validation.shown(token)} is not a token this server issued; "
                              "send the next_page_token of the previous response, or none for the first page") from None
    if not same:
        raise InvalidArgument("page_token belongs to a different instrument, timeframe or `latest` setting; "
                              "repeat the request that returned it")
    return cursor
