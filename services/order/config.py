"""The order plane's configuration, read once from the environment."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.audit import AuditIdentity
from services.common.config import DEFAULT_PORTS, ConfigError, Env, PeerConfig, ServerConfig
from services.common.venues import CcxtSettings, GmoSettings, OandaSettings, parse_venue_choice
from services.order.brokers.paper import PaperSettings
from services.order.faults import FAULTS
from services.order.journal import JournalSettings
from services.order.risk import RiskLimits
from services.order.venue_path import VenuePathSettings

_INSTRUMENT = re.compile(r"^[A-Z0-9]{2,12}_[A-Z0-9]{2,12}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderConfig:
    server: ServerConfig
    peers: PeerConfig
    account: str
    instruments: tuple[str, ...]
    broker: str                    # "paper" | "oanda" | "gmo" | "ccxt"
    paper: PaperSettings
    risk: RiskLimits
    positions_source: str  # "position_plane" | "own_book"
    broker_rate_per_second: float
    broker_attempts: int
    flags_staleness_seconds: float
    exposure_staleness_seconds: float
    exposure_catch_up_seconds: float
    journal: JournalSettings
    venue_path: VenuePathSettings
    fault: str | None
    audit: AuditIdentity
    broker_exchange: str = ""      # the ccxt exchange id with QUANTMESH_BROKER=ccxt:<exchange>

    @classmethod
    def from_env(cls, env: Env) -> "OrderConfig":
        instruments = env.list("QUANTMESH_INSTRUMENTS", ("USD_JPY", "EUR_USD", "BTC_JPY"))
        for symbol in instruments:
            if not _INSTRUMENT.match(symbol):
                raise ConfigError(f"QUANTMESH_INSTRUMENTS has {symbol!r}, which is not like USD_JPY")
        if not instruments:
            raise ConfigError("QUANTMESH_INSTRUMENTS is empty; list at least one instrument, e.g. USD_JPY")
        fault = env.optional("QUANTMESH_FAULT")
        if fault is not None and fault not in FAULTS:
            raise ConfigError(f"QUANTMESH_FAULT={fault!r} is not one of {', '.join(FAULTS)} "
                              "(a test-only switch; leave it unset)")
        broker, exchange = _broker(env)
        account = env.str("QUANTMESH_ACCOUNT", "paper")
        return cls(
            server=ServerConfig.from_env(env, service_name="order", default_port=DEFAULT_PORTS["order"]),
            peers=PeerConfig.from_env(env),
            account=account,
            instruments=instruments,
            broker=broker,
            broker_exchange=exchange,
            paper=PaperSettings.from_env(env),
            risk=RiskLimits.from_env(env),
            positions_source=env.choice("QUANTMESH_POSITIONS_SOURCE", "position_plane",
                                        ("position_plane", "own_book")),
            broker_rate_per_second=env.float("QUANTMESH_BROKER_RATE", 200.0, minimum=0.1),
            broker_attempts=env.int("QUANTMESH_BROKER_ATTEMPTS", 5, minimum=1, maximum=20),
            flags_staleness_seconds=env.float("QUANTMESH_FLAGS_STALENESS_SECONDS", 5.0, minimum=0.5),
            # The position plane speaks at least every 0.5 s (QUANTMESH_EXPOSURE_HEARTBEAT_SECONDS there);
            # silent for longer than this, its view no longer admits new risk.
            exposure_staleness_seconds=env.float("QUANTMESH_EXPOSURE_STALENESS_SECONDS", 3.0, minimum=0.2),
            # How long pre-trade waits for the view to include this plane's own latest fill before
            # judging on the view it has (sizes stay exact either way; PnL rules would lag by it).
            exposure_catch_up_seconds=env.float("QUANTMESH_EXPOSURE_CATCH_UP_SECONDS", 0.25, minimum=0.0),
            journal=JournalSettings(
                max_batch=env.int("QUANTMESH_JOURNAL_MAX_BATCH", 256, minimum=1, maximum=10_000),
                max_wait_seconds=env.float("QUANTMESH_JOURNAL_MAX_WAIT_MS", 0.0, minimum=0.0) / 1000),
            venue_path=VenuePathSettings(
                account=account,
                lost_in_transit_seconds=env.float("QUANTMESH_LOST_IN_TRANSIT_SECONDS", 120.0, minimum=1.0),
                reconcile_seconds=env.float("QUANTMESH_RECONCILE_SECONDS", 300.0, minimum=0.0)),
            fault=fault,
            audit=AuditIdentity.from_env(env, "order"),
        )


def _broker(env: Env) -> tuple[str, str]:
    """QUANTMESH_BROKER = paper | oanda | gmo | ccxt:<exchange>; a real venue's settings are checked now."""
    text = env.str("QUANTMESH_BROKER", "paper")
    if text == "paper":
        return "paper", ""
    try:
        kind, exchange = parse_venue_choice("QUANTMESH_BROKER", text)
    except ConfigError:
        raise ConfigError(f"QUANTMESH_BROKER={text!r} is not one of paper, oanda, gmo, ccxt:<exchange>") from None
    try:
        if kind == "oanda":
            OandaSettings.from_env(env)
        elif kind == "gmo":
            GmoSettings.from_env(env, trading=True)
        else:
            CcxtSettings.from_env(env, exchange, trading=True)
    except ConfigError as exc:
        raise ConfigError(f"QUANTMESH_BROKER={text}: {exc}") from None
    return kind, exchange
