"""Configuration of the control plane, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.audit import AuditIdentity
from services.common.config import DEFAULT_PORTS, ConfigError, Env, ServerConfig

SERVICE_NAME = "control"  # the service.name of its spans; every plane is named as in docs/tracing.md


@dataclass(frozen=True, kw_only=True, slots=True)
class ControlConfig:
    server: ServerConfig
    #: Seconds between heartbeats on a quiet WatchFlags stream (when the watcher asks for 0).
    heartbeat_seconds: float
    #: Snapshots a watcher may fall behind before it is cut off with RESOURCE_EXHAUSTED.
    watch_queue_size: int
    #: How long a flag change waits for the guards (order planes) to acknowledge it.
    guard_ack_seconds: float = 2.0
    audit: AuditIdentity | None = None

    @classmethod
    def from_env(cls, env: Env) -> "ControlConfig":
        heartbeat = env.float("QUANTMESH_HEARTBEAT_SECONDS", 1.0, minimum=0.05)
        if heartbeat > 3600:
            raise ConfigError(f"QUANTMESH_HEARTBEAT_SECONDS={heartbeat} is above the maximum 3600")
        return cls(
            server=ServerConfig.from_env(env, service_name=SERVICE_NAME, default_port=DEFAULT_PORTS["control"]),
            heartbeat_seconds=heartbeat,
            watch_queue_size=env.int("QUANTMESH_WATCH_QUEUE_SIZE", 1000, minimum=1, maximum=1_000_000),
            guard_ack_seconds=env.float("QUANTMESH_GUARD_ACK_SECONDS", 2.0, minimum=0.0),
            audit=AuditIdentity.from_env(env, "control"),
        )
