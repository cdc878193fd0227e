"""Typed, frozen configuration read once from the environment.

Every reader names the variable in its error, so a bad value stops the process
with a sentence such as "QUANTMESH_LISTEN='abc' is not host:port (e.g. 127.0.0.1:50051)".
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from services.common.auth import TokenTable
from services.common.tls import (DialingTls, ListenAddress, PeerAddress, ServingTls, TlsFileError, read_certificates,
                                 read_private_key)

#: Default loopback ports of the planes; the launcher and the docs use the same ones.
DEFAULT_PORTS: Mapping[str, int] = {
    "market_data": 50051,
    "control": 50052,
    "order": 50053,
    "position": 50054,
    "analysis": 50056,
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


class Env:
    """Typed readers over an environment mapping (os.environ by default)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(os.environ if values is None else values)

    def raw(self, name: str) -> str | None:
        value = self._values.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def str(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def optional(self, name: str) -> str | None:
        return self.raw(name)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.str(name, default)
        if value not in allowed:
            raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
        return value

    def int(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} is below the minimum {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigError(f"{name}={number} is above the maximum {maximum}")
        return number

    def float(self, name: str, default: float, *, minimum: float | None = None) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"{name}={value!r} is not a finite number")
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} is below the minimum {minimum}")
        return number

    def decimal(self, name: str, default: Decimal, *, minimum: Decimal | None = None) -> Decimal:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ConfigError(f"{name}={value!r} is not a decimal number") from None
        if not number.is_finite():
            raise ConfigError(f"{name}={value!r} is not a finite decimal number")
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name}={number} is below the minimum {minimum}")
        return number

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")

    def address(self, name: str, default: str) -> str:
        value = self.str(name, default)
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"{name}={value!r} is not host:port (e.g. 127.0.0.1:50051)")
        return value

    def list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(part.strip() for part in value.split(",") if part.strip())


Resolver = Callable[[str], Sequence[str]]


def resolve_addresses(host: str) -> list[str]:
    """Every IP address `host` resolves to (the system resolver, as the server's bind will use)."""
    return [info[4][0] for info in socket.getaddrinfo(host, None)]


def is_loopback(address: str, *, resolve: Resolver = resolve_addresses) -> bool:
    """Whether `host:port` can only be reached from this machine.

    Decided on what the host is, not on how it is spelled: a literal loopback IP (127.0.0.0/8,
    ::1, ::ffff:127.x), `localhost`, or a name whose every resolved address is loopback. A name
    such as 127.0.0.1.nip.io is a DNS name like any other: it counts only if it resolves to loopback
    alone, and a name that does not resolve does not count.
    """
    host = address.rpartition(":")[0].strip("[]")
    if host.lower() == "localhost":
        return True
    literal = _ip(host)
    if literal is not None:
        return _loopback_ip(literal)
    if not host:
        return False  # ":50051" binds every interface
    try:
        resolved = [_ip(a.partition("%")[0]) for a in resolve(host)]
    except (OSError, UnicodeError):
        return False
    return bool(resolved) and all(ip is not None and _loopback_ip(ip) for ip in resolved)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _loopback_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@dataclass(frozen=True, kw_only=True, slots=True)
class WriterLeaseSettings:
    """How a single-writer plane holds its writer lease (services/common/lease.py)."""

    #: Wait for the holder to go away instead of refusing to start.
    standby: bool = False
    #: How long a holder may stay silent before PostgreSQL ends its session and frees the lease.
    lease_seconds: float = 15.0

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 5

    @property
    def fence_seconds(self) -> float:
        """A holder that has not confirmed its lease for this long stops itself: before the
        server frees the lease, so the old writer is gone before a new one starts."""
        return self.lease_seconds * 2 / 3

    @classmethod
    def from_env(cls, env: Env) -> "WriterLeaseSettings":
        return cls(standby=env.bool("QUANTMESH_WRITER_STANDBY", False),
                   lease_seconds=env.float("QUANTMESH_WRITER_LEASE_SECONDS", 15.0, minimum=1.0))


def serving_tls(env: Env) -> ServingTls | None:
    """The TLS this process serves: QUANTMESH_TLS_CERT + QUANTMESH_TLS_KEY, mutual with QUANTMESH_TLS_MUTUAL."""
    cert, key = env.optional("QUANTMESH_TLS_CERT"), env.optional("QUANTMESH_TLS_KEY")
    mutual = env.bool("QUANTMESH_TLS_MUTUAL", False)
    if cert is None and key is None:
        if mutual:
            raise ConfigError("QUANTMESH_TLS_MUTUAL=true needs QUANTMESH_TLS_CERT and QUANTMESH_TLS_KEY")
        return None
    if cert is None or key is None:
        raise ConfigError("QUANTMESH_TLS_CERT and QUANTMESH_TLS_KEY go together: set both or neither")
    chain = _tls_file("QUANTMESH_TLS_CERT", lambda: read_certificates(Path(cert)))
    private_key = _tls_file("QUANTMESH_TLS_KEY", lambda: read_private_key(Path(key), certificate=chain))
    ca = _trusted_ca(env)
    if mutual and ca is None:
        raise ConfigError("QUANTMESH_TLS_MUTUAL=true needs QUANTMESH_TLS_CA, the CA that signs client certificates")
    return ServingTls(certificate_chain=chain, private_key=private_key, client_ca=ca if mutual else None)


def dialing_tls(env: Env) -> DialingTls | None:
    """How this process dials: TLS trusting QUANTMESH_TLS_CA, presenting its own certificate if it has one."""
    ca = _trusted_ca(env)
    if ca is None:
        return None
    cert, key = env.optional("QUANTMESH_TLS_CERT"), env.optional("QUANTMESH_TLS_KEY")
    if cert is None or key is None:
        return DialingTls(ca=ca)
    chain = _tls_file("QUANTMESH_TLS_CERT", lambda: read_certificates(Path(cert)))
    return DialingTls(ca=ca, certificate_chain=chain,
                      private_key=_tls_file("QUANTMESH_TLS_KEY", lambda: read_private_key(Path(key), certificate=chain)))


def _trusted_ca(env: Env) -> bytes | None:
    path = env.optional("QUANTMESH_TLS_CA")
    return None if path is None else _tls_file("QUANTMESH_TLS_CA", lambda: read_certificates(Path(path)))


def _tls_file(name: str, read: Callable[[], bytes]) -> bytes:
    try:
        return read()
    except TlsFileError as exc:
        raise ConfigError(f"{name}: {exc}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerConfig:
    """What every plane's server needs, whatever the plane."""

    service_name: str
    listen: str
    tokens: TokenTable
    database_url: str | None
    data_dir: Path
    log_level: str
    otel_endpoint: str | None
    grace_seconds: float
    port_file: Path | None
    #: TLS served on `listen` (None: plaintext); `listen` carries it too, for GrpcHost.
    tls: ServingTls | None = None
    #: A plaintext, health-only address for probes that cannot speak TLS (Kubernetes `grpc:`).
    health_listen: str | None = None
    writer_lease: WriterLeaseSettings = field(default_factory=WriterLeaseSettings)

    @classmethod
    def from_env(cls, env: Env, *, service_name: str, default_port: int) -> "ServerConfig":
        listen = env.address("QUANTMESH_LISTEN", f"127.0.0.1:{default_port}")
        try:
            tokens = TokenTable.parse(env.str("QUANTMESH_TOKENS", ""))
        except ValueError as exc:
            raise ConfigError(f"QUANTMESH_TOKENS is malformed: {exc}") from None
        if not is_loopback(listen) and not tokens:
            raise ConfigError(
                f"QUANTMESH_LISTEN={listen!r} is not loopback, so QUANTMESH_TOKENS must be set "
                "(a server reachable from other hosts never runs without authentication)"
            )
        tls = serving_tls(env)
        if tls is None and not is_loopback(listen) and not env.bool("QUANTMESH_TLS_BY_SERVICE_MESH", False):
            raise ConfigError(
                f"QUANTMESH_LISTEN={listen!r} is not loopback, so bearer tokens would cross the network in "
                "plaintext: set QUANTMESH_TLS_CERT and QUANTMESH_TLS_KEY (quantmesh certs makes a set), or "
                "QUANTMESH_TLS_BY_SERVICE_MESH=true when a service mesh encrypts the traffic between pods"
            )
        health_listen = env.address("QUANTMESH_HEALTH_LISTEN", "") if env.optional("QUANTMESH_HEALTH_LISTEN") else None
        return cls(
            service_name=service_name,
            listen=ListenAddress(listen, tls=tls, health=health_listen),
            tls=tls,
            health_listen=health_listen,
            writer_lease=WriterLeaseSettings.from_env(env),
            tokens=tokens,
            database_url=env.optional("DATABASE_URL"),
            data_dir=Path(env.str("QUANTMESH_DATA_DIR", ".quantmesh")),
            log_level=env.choice("QUANTMESH_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            otel_endpoint=env.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            grace_seconds=env.float("QUANTMESH_GRACE_SECONDS", 5.0, minimum=0.0),
            port_file=Path(port_file) if (port_file := env.optional("QUANTMESH_PORT_FILE")) else None,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerConfig:
    """Where the other planes listen and the token this process presents to them."""

    market_data: str
    control: str
    order: str
    position: str
    token: str | None
    #: The analysis plane, only where it is configured (QUANTMESH_ANALYSIS_ADDR): a worker without it
    #: records no signals and keeps its start params, and never dials a default port another mesh owns.
    analysis: str | None = None
    #: How every peer is dialed (None: plaintext); each address above carries it too (PeerAddress).
    tls: DialingTls | None = None
    tls_by_service_mesh: bool = False

    @classmethod
    def from_env(cls, env: Env) -> "PeerConfig":
        tls = dialing_tls(env)
        by_mesh = env.bool("QUANTMESH_TLS_BY_SERVICE_MESH", False)
        token = env.optional("QUANTMESH_TOKEN")
        addresses: dict[str, PeerAddress] = {}

        def dialed(name: str, address: str) -> PeerAddress:
            if token and tls is None and not by_mesh and not is_loopback(address):
                raise ConfigError(
                    f"{name}={address!r} is not loopback and QUANTMESH_TOKEN is set, so the token would cross "
                    "the network in plaintext: set QUANTMESH_TLS_CA (and QUANTMESH_TLS_CERT/KEY for mutual TLS), "
                    "or QUANTMESH_TLS_BY_SERVICE_MESH=true when a service mesh encrypts the traffic")
            return PeerAddress(address, tls=tls, encrypted_by_mesh=by_mesh)

        for plane, name in (("market_data", "QUANTMESH_MARKET_DATA_ADDR"), ("control", "QUANTMESH_CONTROL_ADDR"),
                            ("order", "QUANTMESH_ORDER_ADDR"), ("position", "QUANTMESH_POSITION_ADDR")):
            addresses[plane] = dialed(name, env.address(name, f"127.0.0.1:{DEFAULT_PORTS[plane]}"))
        if env.optional("QUANTMESH_ANALYSIS_ADDR") is not None:
            addresses["analysis"] = dialed("QUANTMESH_ANALYSIS_ADDR", env.address("QUANTMESH_ANALYSIS_ADDR", ""))
        return cls(**addresses, token=token, tls=tls, tls_by_service_mesh=by_mesh)

    def reach(self, address: str, *, server_name: str | None = None) -> PeerAddress:
        """Another address (a strategy worker, a pod behind a headless Service) dialed like the planes;
        `server_name` is the name its certificate carries when `address` is an IP (the Service's name)."""
        return PeerAddress(address, tls=self.tls, server_name=server_name, encrypted_by_mesh=self.tls_by_service_mesh)
