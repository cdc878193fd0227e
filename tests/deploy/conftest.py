"""The kind overlay's Secret quantmesh-tls is made from files nobody commits (`quantmesh certs`,
see docs/deploy.md); the offline checks make them once, as a person would before `kubectl apply -k`."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from services.cli.certs import FILES, default_hosts, write_certificates
from services.common.tls import TlsFileError, read_certificates
from tests.deploy.k8s import OVERLAYS


def ensure_certificates(folder: Path) -> None:
    """A set that is there, unexpired and names every host `quantmesh certs` names today; else a new one."""
    try:
        cert = x509.load_pem_x509_certificate(read_certificates(folder / "tls.crt"))
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        named = {str(n.value) for n in names}
        if all((folder / name).exists() for name in FILES) and set(default_hosts()) <= named:
            return
    except TlsFileError:
        pass
    try:
        write_certificates(folder, hosts=default_hosts())  # replaces a stale set whole
    except OSError:
        # Another test run made a set at the same moment: one complete set is all we need.
        if not all((folder / name).exists() for name in FILES):
            raise


@pytest.fixture(scope="session", autouse=True)
def overlay_certificates():
    for overlay in OVERLAYS:
        if "tls/tls.crt" in (overlay / "kustomization.yaml").read_text():
            ensure_certificates(overlay / "tls")
