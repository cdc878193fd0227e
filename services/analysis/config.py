"""Configuration of the analysis plane, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from services.analysis.patterns import IndicatorBins, parse_bins
from services.analysis.policy import PolicyLimits
from services.analysis.ranges import RangeSettings
from services.common.audit import AuditIdentity
from services.common.config import DEFAULT_PORTS, ConfigError, Env, PeerConfig, ServerConfig

SERVICE_NAME = "analysis"
TIMEFRAMES = ("S5", "M1", "M5", "H1", "H4", "D1")
#: "apply": the policy's recommendations change the allocation of strategies that are not
#: frozen; "recommend": they are computed and shown (GetAllocations), never applied.
POLICIES = ("apply", "recommend")


@dataclass(frozen=True, kw_only=True, slots=True)
class AnalysisSettings:
    """What the analysis computes and how, whatever feeds it (the plane, or a backtest)."""

    rolling_trades: int = 20
    ranges: RangeSettings = field(default_factory=RangeSettings)
    timeframe: str = "M1"
    policy: str = "apply"
    limits: PolicyLimits = field(default_factory=PolicyLimits)
    pattern_bins: tuple[IndicatorBins, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class AnalysisConfig:
    server: ServerConfig
    peers: PeerConfig
    settings: AnalysisSettings
    #: Seconds between heartbeats on a quiet WatchStrategySettings stream.
    heartbeat_seconds: float = 1.0
    audit: AuditIdentity | None = None
    #: Hold and skip signals (nearly all of them: one per candle per worker) are deleted this many
    #: days after they were recorded; 0 keeps them. Entries, exits and refusals always stay: the
    #: pattern book and every question about an order read them.
    hold_retention_days: int = 30

    @classmethod
    def from_env(cls, env: Env) -> "AnalysisConfig":
        return cls(
            server=ServerConfig.from_env(env, service_name=SERVICE_NAME, default_port=DEFAULT_PORTS["analysis"]),
            peers=PeerConfig.from_env(env), settings=settings_from_env(env),
            heartbeat_seconds=env.float("QUANTMESH_HEARTBEAT_SECONDS", 1.0, minimum=0.05),
            audit=AuditIdentity.from_env(env, "analysis"),
            hold_retention_days=env.int("QUANTMESH_ANALYSIS_HOLD_RETENTION_DAYS", 30, minimum=0, maximum=36_500))


def settings_from_env(env: Env) -> AnalysisSettings:
    """QUANTMESH_ANALYSIS_*; also what `quantmesh backtest --policy` reads, so both judge alike."""
    try:
        limits = PolicyLimits(
            min_multiplier=env.decimal("QUANTMESH_ANALYSIS_MIN_MULTIPLIER", Decimal("0.25")),
            max_multiplier=env.decimal("QUANTMESH_ANALYSIS_MAX_MULTIPLIER", Decimal("1.5")),
            step=env.decimal("QUANTMESH_ANALYSIS_MULTIPLIER_STEP", Decimal("0.05")),
            min_trades=env.int("QUANTMESH_ANALYSIS_MIN_TRADES", 10, minimum=1),
            off_profit_factor=env.decimal("QUANTMESH_ANALYSIS_OFF_PROFIT_FACTOR", Decimal("0.7"), minimum=Decimal(0)),
            high_volatility_factor=env.decimal("QUANTMESH_ANALYSIS_HIGH_VOLATILITY_FACTOR", Decimal("0.5")),
            off_minutes=env.int("QUANTMESH_ANALYSIS_OFF_MINUTES", 240, minimum=0, maximum=100_000))
    except ConfigError:
        raise
    except ValueError as exc:  # the limits' own checks, across variables
        raise ConfigError(f"the allocation policy's limits (QUANTMESH_ANALYSIS_*): {exc}") from None
    try:
        bins = parse_bins(env.str("QUANTMESH_ANALYSIS_PATTERN_BINS", ""))
    except ValueError as exc:
        raise ConfigError(f"QUANTMESH_ANALYSIS_PATTERN_BINS: {exc}") from None
    return AnalysisSettings(
        rolling_trades=env.int("QUANTMESH_ANALYSIS_ROLLING_TRADES", 20, minimum=1, maximum=100_000),
        ranges=RangeSettings(
            atr_period=env.int("QUANTMESH_ANALYSIS_ATR_PERIOD", 14, minimum=1, maximum=1000),
            regime_window=env.int("QUANTMESH_ANALYSIS_REGIME_WINDOW", 1440, minimum=2, maximum=100_000),
            min_regime_candles=env.int("QUANTMESH_ANALYSIS_MIN_REGIME_CANDLES", 60, minimum=1, maximum=100_000),
            volatility_window=env.int("QUANTMESH_ANALYSIS_VOLATILITY_WINDOW", 60, minimum=2, maximum=100_000)),
        timeframe=env.choice("QUANTMESH_ANALYSIS_TIMEFRAME", "M1", TIMEFRAMES),
        policy=env.choice("QUANTMESH_ANALYSIS_POLICY", "apply", POLICIES),
        limits=limits, pattern_bins=bins)


__all__ = ["AnalysisConfig", "AnalysisSettings", "POLICIES", "settings_from_env"]
