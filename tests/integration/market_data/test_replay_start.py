"""A replay never silently replays nothing: data older than what the database holds is refused with
a sentence saying what to do, a replay that overlaps the stored timeline carries on after it, and
newer data plays as usual."""

from __future__ import annotations

import asyncio

import pytest

from services.market_data.plane import ReplayBehindStore
from tests.integration.market_data.conftest import running_plane
from tests.support.data import TRUEFX_TICKS, head_of, text_lines


def shifted(tmp_path, year: int):
    """The TrueFX ticks moved from 2013 to `year`: a timeline newer than the file's."""
    lines = text_lines(TRUEFX_TICKS)
    path = tmp_path / f"ticks-{year}.csv"
    path.write_text("\n".join([lines[0], *(line.replace("2013-", f"{year}-", 1) for line in lines[1:])]) + "\n")
    return path


async def replay_to_the_end(database_url: str, path) -> None:
    async with running_plane(database_url, {"QUANTMESH_FEED": f"replay:{path}"}) as p:
        await asyncio.wait_for(p.plane.feed_done.wait(), 60)
        await p.plane.recorder.flush()


async def test_a_replay_older_than_the_stored_candles_is_refused_with_what_to_do(fresh_database_url, tmp_path):
    await replay_to_the_end(fresh_database_url, shifted(tmp_path, 2026))
    with pytest.raises(ReplayBehindStore) as refused:
        async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"replay:{TRUEFX_TICKS}"}):
            pass
    sentence = str(refused.value)
    assert sentence.startswith(f"market_data: refusing to replay replay:{TRUEFX_TICKS.name}: its ticks run from "
                               "2013-01-01T22:00:00.295000+00:00 to 2013-01-01T22:35:13.494000+00:00, but this "
                               "database already holds USD_JPY candles up to 2026-01-01T22:35:")
    assert "quantmesh up --data-dir <a new folder> --replay" in sentence and "DATABASE_URL" in sentence


async def test_a_replay_that_overlaps_the_stored_candles_carries_on_after_them(fresh_database_url, tmp_path, caplog):
    await replay_to_the_end(fresh_database_url, head_of(TRUEFX_TICKS, tmp_path / "first-half.csv", 500))
    with caplog.at_level("INFO", logger="services.market_data.plane"):
        async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"replay:{TRUEFX_TICKS}"}) as p:
            await asyncio.wait_for(p.plane.feed_done.wait(), 60)
            assert 450 < p.plane.engine.ticks_accepted < 550  # about the second half: the ticks after the stored candles
    assert any(r.getMessage().startswith("the replay resumes after the candles already stored") for r in caplog.records)


async def test_a_replay_newer_than_the_stored_candles_plays_in_full(fresh_database_url, tmp_path):
    await replay_to_the_end(fresh_database_url, TRUEFX_TICKS)
    async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"replay:{shifted(tmp_path, 2014)}"}) as p:
        await asyncio.wait_for(p.plane.feed_done.wait(), 60)
        assert p.plane.engine.ticks_accepted == 1000
