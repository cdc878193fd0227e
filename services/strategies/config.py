"""A worker's configuration: which strategy, which role, its params, where the planes are."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.common.config import ConfigError, Env, PeerConfig, ServerConfig

DEFAULT_WORKER_PORT = 50060


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerConfig:
    slug: str
    role: str
    params: Mapping[str, str]
    server: ServerConfig
    peers: PeerConfig
    account: str
    flag_staleness_seconds: float
    positions_staleness_seconds: float = 3.0
    #: How long a worker waits at start for its settings from the analysis plane (when configured).
    analysis_wait_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Env, *, slug: str, role: str, cli_params: Sequence[str] = ()) -> "WorkerConfig":
        params: dict[str, str] = {}
        raw = env.optional("QUANTMESH_STRATEGY_PARAMS")
        if raw:
            try:
                loaded = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"QUANTMESH_STRATEGY_PARAMS is not JSON: {exc.msg} at column {exc.colno}") from None
            if not isinstance(loaded, dict):
                raise ConfigError('QUANTMESH_STRATEGY_PARAMS must be a JSON object, e.g. {"fast_period": "10"}')
            params.update({str(k): str(v) for k, v in loaded.items()})
        for item in cli_params:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise ConfigError(f"--param {item!r} is not NAME=VALUE")
            params[name.strip()] = value.strip()
        return cls(
            slug=slug, role=role, params=params,
            server=ServerConfig.from_env(env, service_name=f"strategy.{slug}.{role}", default_port=DEFAULT_WORKER_PORT),
            peers=PeerConfig.from_env(env),
            account=env.str("QUANTMESH_ACCOUNT", ""),
            flag_staleness_seconds=env.float("QUANTMESH_FLAG_STALENESS_SECONDS", 5.0, minimum=0.5),
            # The position plane's exposure view speaks at least every 0.5 s; silent longer, no decision.
            positions_staleness_seconds=env.float("QUANTMESH_EXPOSURE_STALENESS_SECONDS", 3.0, minimum=0.2),
            analysis_wait_seconds=env.float("QUANTMESH_ANALYSIS_WAIT_SECONDS", 5.0, minimum=0.0),
        )
