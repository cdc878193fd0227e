"""MarketDataConfig: everything the plane reads from the environment, parsed once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from services.common.config import DEFAULT_PORTS, ConfigError, Env, ServerConfig
from services.market_data.factors import DEFAULT_FACTORS, DEFAULT_HISTORY, FactorSpec, parse_factors
from services.market_data.feeds.pacing import Speed
from services.market_data.feeds.synthetic import MARKETS

FEED_KINDS = ("synthetic", "replay:PATH", "bars:BID.csv,ASK.csv", "oanda", "gmo", "ccxt:EXCHANGE", "push")
VENUE_FEEDS = ("oanda", "gmo", "ccxt")


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedChoice:
    kind: str                      # "synthetic" | "replay" | "bars" | "oanda" | "gmo" | "ccxt" | "push"
    paths: tuple[Path, ...] = ()
    exchange: str = ""             # the ccxt exchange id with ccxt:<exchange>


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketDataConfig:
    server: ServerConfig
    feed: FeedChoice
    instruments: tuple[str, ...]
    speed: Speed
    synthetic_seed: int
    synthetic_start: datetime | None
    skip_closures: bool = False  # QUANTMESH_SKIP_CLOSURES: paced feeds do not wait out market closures
    factors: tuple[FactorSpec, ...]
    factor_history: int
    tick_window: int
    stream_queue: int
    stream_ring: int

    @classmethod
    def from_env(cls, env: Env) -> "MarketDataConfig":
        server = ServerConfig.from_env(env, service_name="market_data", default_port=DEFAULT_PORTS["market_data"])
        feed = _feed(env.str("QUANTMESH_FEED", "synthetic"), env)
        instruments = env.list("QUANTMESH_INSTRUMENTS", ("USD_JPY",))
        if not instruments:
            raise ConfigError("QUANTMESH_INSTRUMENTS is empty; name at least one instrument, e.g. USD_JPY")
        if feed.kind == "synthetic":
            unknown = [s for s in instruments if s not in MARKETS]
            if unknown:
                raise ConfigError(f"QUANTMESH_INSTRUMENTS={','.join(instruments)!r}: the synthetic feed has no "
                                  f"model for {', '.join(unknown)}; use {', '.join(MARKETS)}")
        elif feed.kind not in (*VENUE_FEEDS, "push") and len(instruments) != 1:
            raise ConfigError(f"QUANTMESH_INSTRUMENTS={','.join(instruments)!r}: a {feed.kind} file carries one "
                              "instrument; name exactly one")
        try:
            speed = Speed.parse(env.str("QUANTMESH_REPLAY_SPEED", "realtime" if feed.kind == "synthetic" else "max"))
        except ValueError as exc:
            raise ConfigError(f"QUANTMESH_REPLAY_SPEED: {exc}") from None
        try:
            factors = parse_factors(env.str("QUANTMESH_FACTORS", DEFAULT_FACTORS))
        except ValueError as exc:
            raise ConfigError(f"QUANTMESH_FACTORS: {exc}") from None
        start = env.optional("QUANTMESH_SYNTHETIC_START")
        synthetic_start = None
        if start is not None:
            try:
                synthetic_start = datetime.fromisoformat(start)
            except ValueError:
                raise ConfigError(f"QUANTMESH_SYNTHETIC_START={start!r} is not an ISO-8601 time "
                                  "(e.g. 2026-01-05T00:00:00+00:00)") from None
            if synthetic_start.tzinfo is None:
                synthetic_start = synthetic_start.replace(tzinfo=timezone.utc)
        return cls(
            server=server, feed=feed, instruments=instruments, speed=speed,
            synthetic_seed=env.int("QUANTMESH_SYNTHETIC_SEED", 7),
            synthetic_start=synthetic_start,
            skip_closures=env.bool("QUANTMESH_SKIP_CLOSURES", False),
            factors=factors,
            factor_history=env.int("QUANTMESH_FACTOR_HISTORY", DEFAULT_HISTORY, minimum=50, maximum=100_000),
            tick_window=env.int("QUANTMESH_TICK_WINDOW", 10_000, minimum=1, maximum=10_000_000),
            stream_queue=env.int("QUANTMESH_STREAM_QUEUE", 1_000, minimum=1, maximum=1_000_000),
            stream_ring=env.int("QUANTMESH_STREAM_RING", 10_000, minimum=1, maximum=10_000_000),
        )


def _feed(text: str, env: Env) -> FeedChoice:
    kind, _, rest = text.partition(":")
    if kind in VENUE_FEEDS:
        from services.common.venues import CcxtSettings, GmoSettings, OandaSettings, parse_venue_choice
        try:
            kind, exchange = parse_venue_choice("QUANTMESH_FEED", text)
            if kind == "oanda":
                OandaSettings.from_env(env)  # checked now: a missing token stops the process at start
            elif kind == "gmo":
                GmoSettings.from_env(env, trading=False)
            else:
                CcxtSettings.from_env(env, exchange, trading=False)
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(message if message.startswith("QUANTMESH_FEED") else
                              f"QUANTMESH_FEED={text}: {message}") from None
        return FeedChoice(kind=kind, exchange=exchange)
    if kind == "synthetic" and not rest:
        return FeedChoice(kind="synthetic")
    if kind == "push" and not rest:
        return FeedChoice(kind="push")  # ticks arrive over PublishTicks, for QUANTMESH_INSTRUMENTS
    if kind == "replay" and rest:
        path = Path(rest)
        if not path.is_file():
            raise ConfigError(f"QUANTMESH_FEED={text!r}: the tick file {path} does not exist")
        if path.suffix.lower() not in (".csv", ".gz", ".parquet"):
            raise ConfigError(f"QUANTMESH_FEED={text!r}: a tick file must be .csv, gzipped .csv.gz or .parquet")
        return FeedChoice(kind="replay", paths=(path,))
    if kind == "bars" and rest.count(",") == 1:
        paths = tuple(Path(p.strip()) for p in rest.split(","))
        for path in paths:
            if not path.is_file():
                raise ConfigError(f"QUANTMESH_FEED={text!r}: the bar file {path} does not exist")
        return FeedChoice(kind="bars", paths=paths)
    raise ConfigError(f"QUANTMESH_FEED={text!r} is not one of {', '.join(FEED_KINDS)}")
