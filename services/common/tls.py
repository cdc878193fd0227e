"""Transport security between planes: what a plane serves and how it dials, read once at start.

A plane serves TLS when it has a certificate (QUANTMESH_TLS_CERT and QUANTMESH_TLS_KEY), and
mutual TLS when QUANTMESH_TLS_MUTUAL is true (a caller must then present a certificate signed by
QUANTMESH_TLS_CA). It dials the other planes over TLS when it trusts a CA (QUANTMESH_TLS_CA), and
presents its own certificate to them when it has one, so one certificate with both the server
and client usages serves a whole mesh (`quantmesh certs` makes such a set).

The addresses config hands out carry their security with them: a `ListenAddress` knows the
certificate to serve, a `PeerAddress` the CA to trust and the certificate to present. They are
strings, so every follower that takes an address and hands it on to `open_channel` dials TLS
without a parameter of its own; a plain `str` address means plaintext. Nothing here reads the
environment: services/common/config.py does, once, and builds these.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization


class TlsFileError(ValueError):
    """A certificate or key that cannot be used; config turns it into a sentence naming the variable."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServingTls:
    """What a plane's server presents, and whom it asks for a certificate."""

    certificate_chain: bytes
    private_key: bytes
    #: Set for mutual TLS: every caller must present a certificate signed by this CA.
    client_ca: bytes | None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.private_key, self.certificate_chain)],
                                           root_certificates=self.client_ca, require_client_auth=self.mutual)


@dataclass(frozen=True, kw_only=True, slots=True)
class DialingTls:
    """What a client trusts, and the certificate it presents to a server that asks (mutual TLS)."""

    ca: bytes
    certificate_chain: bytes | None = None
    private_key: bytes | None = None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.private_key,
                                            certificate_chain=self.certificate_chain)


class _CarryingAddress(str):
    """A `host:port` string with frozen attributes that travel with it (see the subclasses)."""

    def __new__(cls, address: str, **carried):
        self = super().__new__(cls, address)
        for name, value in carried.items():
            object.__setattr__(self, name, value)
        return self

    def __setattr__(self, name, value) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; cannot set {name}")

    def __reduce__(self):
        return _rebuild, (type(self), str(self), dict(vars(self)))


def _rebuild(cls, address: str, carried: dict) -> "_CarryingAddress":
    return cls(address, **carried)


class ListenAddress(_CarryingAddress):
    """`host:port` a plane listens on, with the TLS it serves there (None: plaintext) and the
    plaintext, health-only address that Kubernetes `grpc:` probes use (they cannot speak TLS)."""

    tls: ServingTls | None
    health: str | None

    def __new__(cls, address: str, *, tls: ServingTls | None = None, health: str | None = None) -> "ListenAddress":
        return super().__new__(cls, address, tls=tls, health=health)


class PeerAddress(_CarryingAddress):
    """`host:port` of another plane, with how to reach it: the TLS to dial (None: plaintext), the
    name its certificate must carry when that is not the host (a pod dialed by IP), and whether a
    service mesh encrypts plaintext for us (then a token may travel over it)."""

    tls: DialingTls | None
    server_name: str | None
    encrypted_by_mesh: bool

    def __new__(cls, address: str, *, tls: DialingTls | None = None, server_name: str | None = None,
                encrypted_by_mesh: bool = False) -> "PeerAddress":
        return super().__new__(cls, address, tls=tls, server_name=server_name, encrypted_by_mesh=encrypted_by_mesh)


# ---- reading PEM files -------------------------------------------------------------------------

def read_certificates(path: Path, *, now: dt.datetime | None = None) -> bytes:
    """The PEM bytes of a certificate file, refused when unreadable, not PEM or expired."""
    data = _read(path, "certificate")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsFileError(f"{path} holds no PEM certificate") from None
    moment = now or dt.datetime.now(dt.timezone.utc)
    leaf = certificates[0]
    if leaf.not_valid_after_utc < moment:
        raise TlsFileError(f"the certificate in {path} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    return data


def read_private_key(path: Path, *, certificate: bytes | None = None) -> bytes:
    """The PEM bytes of an unencrypted private key, refused when it is not the certificate's key."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise TlsFileError(f"{path} holds no unencrypted PEM private key") from None
    if certificate is not None:
        leaf = x509.load_pem_x509_certificates(certificate)[0]
        if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise TlsFileError(f"the key in {path} is not the key of the certificate")
    return data


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFileError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
