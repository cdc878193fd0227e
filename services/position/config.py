"""Configuration of the position plane, read once from the environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from services.common.config import DEFAULT_PORTS, ConfigError, Env, PeerConfig, ServerConfig

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
    #: Currency the account figures are in. Fills' PnL is in the instrument's quote
    #: currency and is added as is (no FX conversion): run JPY-quoted instruments on a JPY account.
    currency: str
    #: The longest WatchExposure stays silent; subscribers judge staleness against it.
    exposure_heartbeat_seconds: float = 0.5

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
        return cls(
            server=ServerConfig.from_env(env, service_name="position", default_port=DEFAULT_PORTS["position"]),
            peers=PeerConfig.from_env(env),
            starting_cash=starting_cash,
            account=account,
            currency=currency,
            exposure_heartbeat_seconds=env.float("QUANTMESH_EXPOSURE_HEARTBEAT_SECONDS", 0.5, minimum=0.05),
        )
