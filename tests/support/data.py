"""The real market data the tests and benchmarks read: gzipped copies carried in the repository's
data/ folder (data/README.md says where each file comes from), so a fresh clone needs nothing
beside it. Every reader of the project (replay feeds, backtest) takes the .gz files as they are."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import TextIO

from services.market_data.feeds.base import FeedTick
from services.market_data.feeds.replay import TickFileFeed

from tests.support.postgres import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
#: 1,000 real USD/JPY TrueFX quotes (timestamp,bid,ask), 2013-01-01 22:00 to 22:35 UTC.
TRUEFX_TICKS = DATA_DIR / "usdjpy-ticks-truefx-2013-01-01.csv.gz"
#: USD/JPY one-minute bars of February 2013 (timestamp,open,high,low,close), bid and ask side.
M1_BID = DATA_DIR / "usdjpy-m1-bid-2013-02.csv.gz"
M1_ASK = DATA_DIR / "usdjpy-m1-ask-2013-02.csv.gz"


def bar_spec() -> str:
    """`--data` / `--replay` for the February bars: BID,ASK."""
    return f"{M1_BID},{M1_ASK}"


def _text(path: Path) -> TextIO:
    return gzip.open(path, "rt") if path.suffix == ".gz" else path.open()


def text_lines(path: Path) -> list[str]:
    """The lines of a data file (gunzipped when it ends in .gz), without line ends."""
    with _text(path) as handle:
        return handle.read().splitlines()


def head_of(source: Path, target: Path, rows: int) -> Path:
    """`target`: the header and the first `rows` data rows of `source`, as plain CSV."""
    with _text(source) as handle:
        target.write_text("".join(itertools.islice(handle, rows + 1)))
    return target


async def truefx_ticks() -> list[FeedTick]:
    """The 1,000 real USD/JPY TrueFX ticks of 2013-01-01, read with the replay feed."""
    feed = TickFileFeed(TRUEFX_TICKS)
    ticks = [t async for t in feed.ticks()]
    assert feed.stats.malformed == 0 and len(ticks) == 1000
    return ticks
