"""The console's configuration, read once from the environment into a frozen config.

| variable | meaning | default |
|---|---|---|
| QUANTMESH_CONSOLE_LISTEN | host:port of the web page and the JSON API | 127.0.0.1:8470 |
| QUANTMESH_CONSOLE_USERS | name:role:hash,... (services/console/operators.py); required off loopback | unset: no login |
| QUANTMESH_CONSOLE_WORKERS | host:port of each strategy worker; a name that resolves to several addresses (a headless Service) counts for each | none |
| QUANTMESH_CONSOLE_HOSTS | more names the page may be reached by, without login (e.g. a tunnel's) | the listen host, localhost, 127.0.0.1 |
| QUANTMESH_CONSOLE_SECURE_COOKIES | mark the session cookie Secure (behind HTTPS) | false |
| QUANTMESH_CONSOLE_SESSION_MINUTES | how long a sign-in lasts | 480 |
| QUANTMESH_CONSOLE_POLL_SECONDS | how often health and worker status are asked | 2 |

plus the alerts' settings (services/console/alerts.py), QUANTMESH_LISTEN (the console's own gRPC
health endpoint, default 127.0.0.1:50055, for probes and `quantmesh up`), QUANTMESH_TOKENS, and
the planes' addresses and the console's own bearer token (QUANTMESH_TOKEN), as every process.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import ConfigError, Env, PeerConfig, ServerConfig, is_loopback
from services.console.alerts import AlertSettings
from services.console.operators import OperatorTable

#: The console's gRPC health port (probes, `quantmesh up`) and its web port.
DEFAULT_HEALTH_PORT = 50055
DEFAULT_HTTP_LISTEN = "127.0.0.1:8470"


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsoleConfig:
    server: ServerConfig
    peers: PeerConfig
    http_listen: str
    operators: OperatorTable
    workers: tuple[str, ...]
    hosts: tuple[str, ...]
    secure_cookies: bool
    session_minutes: int
    poll_seconds: float
    alerts: AlertSettings

    @property
    def login_required(self) -> bool:
        return bool(self.operators)

    @classmethod
    def from_env(cls, env: Env) -> "ConsoleConfig":
        http_listen = env.address("QUANTMESH_CONSOLE_LISTEN", DEFAULT_HTTP_LISTEN)
        try:
            operators = OperatorTable.parse(env.str("QUANTMESH_CONSOLE_USERS", ""))
        except ValueError as exc:
            raise ConfigError(f"QUANTMESH_CONSOLE_USERS is malformed: {exc}") from None
        if not operators and not is_loopback(http_listen):
            raise ConfigError(
                f"QUANTMESH_CONSOLE_LISTEN={http_listen!r} is not loopback, so QUANTMESH_CONSOLE_USERS must be set "
                "(the console never serves the kill switch to other hosts without a sign-in)")
        workers = _worker_addresses(env)
        host = http_listen.rpartition(":")[0].strip("[]")
        return cls(
            server=ServerConfig.from_env(env, service_name="console", default_port=DEFAULT_HEALTH_PORT),
            peers=PeerConfig.from_env(env),
            http_listen=http_listen,
            operators=operators,
            workers=workers,
            hosts=tuple(dict.fromkeys((host, "localhost", "127.0.0.1", "::1", *env.list("QUANTMESH_CONSOLE_HOSTS")))),
            secure_cookies=env.bool("QUANTMESH_CONSOLE_SECURE_COOKIES", False),
            session_minutes=env.int("QUANTMESH_CONSOLE_SESSION_MINUTES", 480, minimum=1, maximum=7 * 24 * 60),
            poll_seconds=env.float("QUANTMESH_CONSOLE_POLL_SECONDS", 2.0, minimum=0.2),
            alerts=AlertSettings.from_env(env),
        )


def _worker_addresses(env: Env) -> tuple[str, ...]:
    workers = env.list("QUANTMESH_CONSOLE_WORKERS")
    for address in workers:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ConfigError(f"QUANTMESH_CONSOLE_WORKERS has {address!r}, which is not host:port "
                              "(e.g. 127.0.0.1:50060)")
    if len(set(workers)) != len(workers):
        raise ConfigError("QUANTMESH_CONSOLE_WORKERS lists an address twice")
    return workers
