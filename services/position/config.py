"""Configuration of the position plane, read once from the environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from services.common.config import DEFAULT_PORTS, ConfigError, Env, PeerConfig, ServerConfig
from services.common.per_instrument import per_instrument
from services.common.tradingday import TradingCalendar
from services.common.audit import AuditIdentity
from services.position.financing import NO_RATES, SOURCES, FinancingRates
from services.position.reconciler import POLICIES, ReconcileSettings

_ACCOUNT = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3,5}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionConfig:
    server: ServerConfig
    peers: PeerConfig
    #: Cash the account starts with; balance = starting cash + realized PnL - commission.
    starting_cash: Decimal
    #: The account Snapshot, Reconcile and GetEquityCurve use when a request leaves it empty.
    account: str
    #: Currency the account figures are in. PnL, commission and financing in another currency
    #: convert through market data's quotes (services/position/currency.py).
    currency: str
    #: The longest WatchExposure stays silent; subscribers judge staleness against it.
    exposure_heartbeat_seconds: float = 0.5
    #: Where one trading day ends and the next begins: the daily figures and the financing rollover.
    trading_day: TradingCalendar = TradingCalendar.fx()
    #: "rates": the ledger charges `financing_rates` at each rollover; "venue": the venue reports it.
    financing_source: str = "rates"
    financing_rates: FinancingRates = NO_RATES
    #: With financing_source "venue": how often the order plane is asked for new venue financing.
    financing_poll_seconds: float = 60.0
    reconcile: ReconcileSettings = ReconcileSettings()
    audit: AuditIdentity | None = None

    @classmethod
    def from_env(cls, env: Env) -> "PositionConfig":
        starting_cash = env.decimal("QUANTMESH_STARTING_CASH", Decimal("10000000"))
        if starting_cash <= 0:
            raise ConfigError(f"QUANTMESH_STARTING_CASH={starting_cash} must be a positive amount of cash")
        account = env.str("QUANTMESH_ACCOUNT", "paper")
        if not _ACCOUNT.match(account):
            raise ConfigError(f"QUANTMESH_ACCOUNT={account!r} must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
        currency = env.str("QUANTMESH_ACCOUNT_CURRENCY", "JPY")
        if not _CURRENCY.match(currency):
            raise ConfigError(f"QUANTMESH_ACCOUNT_CURRENCY={currency!r} is not a currency code such as JPY or USD")
        try:
            trading_day = TradingCalendar.parse(env.str("QUANTMESH_TRADING_DAY_END", "17:00 America/New_York"))
        except ValueError as exc:
            raise ConfigError(f"QUANTMESH_TRADING_DAY_END={exc}") from None
        source = env.choice("QUANTMESH_FINANCING_SOURCE", "rates", SOURCES)
        rates = FinancingRates(long=per_instrument(env, "QUANTMESH_FINANCING_LONG_RATES"),
                               short=per_instrument(env, "QUANTMESH_FINANCING_SHORT_RATES"))
        if source == "venue" and rates:
            raise ConfigError("QUANTMESH_FINANCING_SOURCE=venue: the venue reports financing, so the ledger charges no "
                              "rates; unset QUANTMESH_FINANCING_LONG_RATES and QUANTMESH_FINANCING_SHORT_RATES")
        return cls(
            server=ServerConfig.from_env(env, service_name="position", default_port=DEFAULT_PORTS["position"]),
            peers=PeerConfig.from_env(env),
            starting_cash=starting_cash,
            account=account,
            currency=currency,
            exposure_heartbeat_seconds=env.float("QUANTMESH_EXPOSURE_HEARTBEAT_SECONDS", 0.5, minimum=0.05),
            trading_day=trading_day,
            financing_source=source,
            financing_rates=rates,
            financing_poll_seconds=env.float("QUANTMESH_FINANCING_POLL_SECONDS", 60.0, minimum=0.05),
            reconcile=ReconcileSettings(
                interval_seconds=env.float("QUANTMESH_RECONCILE_SECONDS", 300.0, minimum=0.0),
                policy=env.choice("QUANTMESH_RECONCILE_POLICY", "block", POLICIES),
                confirm_seconds=env.float("QUANTMESH_RECONCILE_CONFIRM_SECONDS", 5.0, minimum=0.0)),
            audit=AuditIdentity.from_env(env, "position"),
        )
