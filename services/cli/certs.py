"""`quantmesh certs`: a private CA and one mesh certificate, for local runs and the kind cluster.

Writes, into --out:

  ca.crt    the CA every plane trusts (QUANTMESH_TLS_CA)
  tls.crt   the certificate every plane serves and, for mutual TLS, presents (QUANTMESH_TLS_CERT)
  tls.key   its private key (QUANTMESH_TLS_KEY), readable by the owner only

The names are the keys cert-manager writes into a TLS Secret, so a real cluster can swap this
set for a cert-manager Certificate without touching the manifests. The certificate names
localhost, 127.0.0.1, ::1, the Kubernetes Services of deploy/k8s (market-data, control, order,
position, console, strategy-workers, in namespace quantmesh) and every --host. The CA's key is
thrown away once the certificate is signed: nothing can be signed with it later, so a stolen
directory holds no CA.
Run it again to make a new set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The Services of deploy/k8s and the names they have inside the cluster; strategy-workers is the
#: headless Service the console reaches each worker pod through (by IP, checked against this name).
KUBERNETES_SERVICES = ("market-data", "control", "order", "position", "analysis", "console", "strategy-workers")
NAMESPACE = "quantmesh"
FILES = ("ca.crt", "tls.crt", "tls.key")


def default_hosts(namespace: str = NAMESPACE) -> list[str]:
    hosts = ["localhost", "127.0.0.1", "::1"]
    for service in KUBERNETES_SERVICES:
        hosts += [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
                  f"{service}.{namespace}.svc.cluster.local"]
    return hosts


def add_certs_parser(sub) -> None:
    parser = sub.add_parser("certs", help="make a private CA and a mesh certificate (TLS between planes)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=".quantmesh/tls", help="folder to write ca.crt, tls.crt, tls.key into "
                        "(default .quantmesh/tls; the kind overlay reads deploy/k8s/overlays/kind/tls)")
    parser.add_argument("--host", action="append", default=[], metavar="NAME",
                        help="another DNS name or IP address the certificate must name (repeatable)")
    parser.add_argument("--days", type=int, default=365, help="validity of the certificate (default 365)")
    parser.add_argument("--force", action="store_true", help="replace a set that is already there")


def run_certs(args) -> int:
    out = Path(args.out)
    if any((out / name).exists() for name in FILES) and not args.force:
        print(f"{out} already holds a certificate set; --force replaces it (every plane then needs the new one)")
        return 1
    hosts = [*default_hosts(), *args.host]
    write_certificates(out, hosts=hosts, days=args.days)
    print(f"wrote {', '.join(str(out / name) for name in FILES)}\n"
          f"names: {', '.join(hosts)}\n"
          f"serve and dial TLS with:\n"
          f"  export QUANTMESH_TLS_CA={(out / 'ca.crt').resolve()}\n"
          f"  export QUANTMESH_TLS_CERT={(out / 'tls.crt').resolve()}\n"
          f"  export QUANTMESH_TLS_KEY={(out / 'tls.key').resolve()}\n"
          f"  export QUANTMESH_TLS_MUTUAL=true   # optional: callers must present a certificate too")
    return 0


def write_certificates(out: Path, *, hosts: Sequence[str], days: int = 365,
                       now: dt.datetime | None = None) -> None:
    """Writes a fresh set into `out`, all files at once: a reader never sees a CA from one run
    beside a certificate from another (two runs racing leave one complete set)."""
    ca_pem, cert_pem, key_pem = make_certificates(hosts=hosts, days=days, now=now)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".certs-", dir=out.parent))
    try:
        (staging / "ca.crt").write_bytes(ca_pem)
        (staging / "tls.crt").write_bytes(cert_pem)
        key = staging / "tls.key"
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        staging.chmod(0o755)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=".certs-old-", dir=out.parent))
            os.replace(out, retired / out.name)
            shutil.rmtree(retired, ignore_errors=True)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_certificates(*, hosts: Sequence[str], days: int = 365,
                      now: dt.datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """(ca.crt, tls.crt, tls.key) as PEM: an ECDSA P-256 CA and a certificate it signs for `hosts`,
    usable by a server and by a client (mutual TLS)."""
    start = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(minutes=5)  # clocks drift a little
    end = start + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "quantmesh"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "quantmesh local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "quantmesh"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, "quantmesh mesh")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in dict.fromkeys(hosts)]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (ca.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
