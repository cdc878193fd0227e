"""The kind overlay's Secret quantmesh-tls is made from files nobody commits (`quantmesh certs`,
see docs/deploy.md); the offline checks make them once, as a person would before `kubectl apply -k`
(tests.deploy.k8s.render does the same for any test that renders an overlay)."""

from __future__ import annotations

import pytest

from tests.deploy.k8s import OVERLAYS, ensure_certificates


@pytest.fixture(scope="session", autouse=True)
def overlay_certificates():
    for overlay in OVERLAYS:
        if "tls/tls.crt" in (overlay / "kustomization.yaml").read_text():
            ensure_certificates(overlay / "tls")
