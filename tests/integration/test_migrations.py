from pathlib import Path

import asyncpg

from services.common.db import apply_migrations, connect_pool


async def test_migrations_applied_twice_change_nothing_the_second_time(database_url, tmp_path: Path):
    (tmp_path / "0001_books.sql").write_text("CREATE TABLE books (id bigint PRIMARY KEY, title text NOT NULL);")
    (tmp_path / "0002_isbn.sql").write_text("ALTER TABLE books ADD COLUMN isbn text;")
    pool = await connect_pool(database_url)
    try:
        assert await apply_migrations(pool, "library", tmp_path) == ["0001_books.sql", "0002_isbn.sql"]
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO library.books (id, title) VALUES (1, 'Reminiscences')")
            before = await conn.fetch("SELECT * FROM library.schema_migrations ORDER BY name")
        assert await apply_migrations(pool, "library", tmp_path) == []
        async with pool.acquire() as conn:
            after = await conn.fetch("SELECT * FROM library.schema_migrations ORDER BY name")
            assert await conn.fetchval("SELECT count(*) FROM library.books") == 1
        assert before == after
    finally:
        await pool.close()


async def test_concurrent_starters_apply_each_migration_once(database_url, tmp_path: Path):
    (tmp_path / "0001_counter.sql").write_text(
        "CREATE TABLE hits (n int); INSERT INTO hits VALUES (1);")
    pools = [await connect_pool(database_url) for _ in range(3)]
    try:
        import asyncio

        results = await asyncio.gather(*(apply_migrations(p, "race", tmp_path) for p in pools))
        assert sorted(len(r) for r in results) == [0, 0, 1]
        conn = await asyncpg.connect(database_url)
        assert await conn.fetchval("SELECT count(*) FROM race.hits") == 1
        await conn.close()
    finally:
        for p in pools:
            await p.close()
