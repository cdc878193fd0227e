"""Fixtures every test can use: a real PostgreSQL and a fresh database per module."""

from __future__ import annotations

import pytest

from services.common.db import create_database
from tests.support.postgres import finish_test_postgres, start_test_postgres

_KEPT = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def postgres_admin_url(request):
    url, embedded = start_test_postgres()
    yield url
    # A passing run leaves no database behind; a failing one keeps it for a look (and says where).
    kept = finish_test_postgres(embedded, keep=request.session.testsfailed > 0)
    if kept is not None:
        request.config.stash[_KEPT] = str(kept)


@pytest.fixture(scope="module")
async def database_url(postgres_admin_url):
    """An empty database of its own for each test module."""
    return await create_database(postgres_admin_url)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    kept = config.stash.get(_KEPT, None)
    if kept:
        terminalreporter.write_line(f"tests failed, so the test PostgreSQL's data stays in {kept} for a look "
                                    "(a passing run removes it; the next run removes it once its owner is gone)")
