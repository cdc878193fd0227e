"""Where the shared, read-only real market data lives."""

from __future__ import annotations

from pathlib import Path

from tests.support.postgres import PROJECT_ROOT


def shared_data_dir() -> Path:
    return PROJECT_ROOT.parent / "shared" / "data"
