"""One fuzzing mesh for the whole tests/fuzz package, on a database of its own."""

from __future__ import annotations

import asyncio

import pytest

from services.common.db import create_database
from tests.fuzz.mesh import start_fuzz_mesh
from tests.support.postgres import PROJECT_ROOT

LOG_DIR = PROJECT_ROOT / ".quantmesh" / "test-logs" / "fuzz"


@pytest.fixture(scope="package")
async def fuzz_mesh(postgres_admin_url):
    url = await create_database(postgres_admin_url, prefix="fuzz")
    mesh = await asyncio.to_thread(start_fuzz_mesh, url, LOG_DIR)
    yield mesh
    await asyncio.to_thread(mesh.stop)
