"""Fixtures every test can use: a real PostgreSQL and a fresh database per module."""

from __future__ import annotations

import pytest

from services.common.db import create_database
from tests.support.postgres import start_test_postgres


@pytest.fixture(scope="session")
def postgres_admin_url():
    url, embedded = start_test_postgres()
    yield url
    if embedded is not None:
        embedded.stop()


@pytest.fixture(scope="module")
async def database_url(postgres_admin_url):
    """An empty database of its own for each test module."""
    return await create_database(postgres_admin_url)
