"""`quantmesh status` and `quantmesh flags` reach a mesh that serves mutual TLS, from the same
variables the planes read (QUANTMESH_TLS_CA/CERT/KEY), and say clearly when they cannot."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.integration.test_tls import certs, mtls_control, tls_env  # noqa: F401 - fixtures
from tests.support.postgres import PROJECT_ROOT


def quantmesh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUANTMESH_TLS")}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=PROJECT_ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


async def test_status_and_flags_dial_mutual_tls_from_the_environment(mtls_control, certs, tmp_path):  # noqa: F811
    (tmp_path / "mesh.json").write_text(json.dumps({"planes": {"control": mtls_control.address}, "workers": {}}))
    tls = tls_env(certs, mutual=True)
    status = await asyncio.to_thread(quantmesh, "status", "--data-dir", str(tmp_path), env=tls)
    assert status.returncode == 0 and f"control        {mtls_control.address:<18} SERVING" in status.stdout, \
        status.stdout + status.stderr
    flags = await asyncio.to_thread(quantmesh, "flags", "show", "--address", mtls_control.address, env=tls)
    assert flags.returncode == 0 and "trading state: ACTIVE" in flags.stdout, flags.stderr

    plaintext = await asyncio.to_thread(quantmesh, "flags", "show", "--address", mtls_control.address,
                                        "--timeout", "3", env={})
    assert plaintext.returncode == 1 and f"control at {mtls_control.address} did not answer" in plaintext.stderr
    bad = await asyncio.to_thread(quantmesh, "status", "--data-dir", str(tmp_path),
                                  env={**tls, "QUANTMESH_TLS_CA": str(tmp_path / "missing.crt")})
    assert bad.returncode == 2 and "QUANTMESH_TLS_CA" in bad.stderr
