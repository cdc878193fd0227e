"""The backtest's progress bar: how many ticks the run will read, so the bar ends at 100 % and its
ETA means something (a --from/--to window of one day in a month-long file used to stop at 4 %)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from services.backtest.cache import micros
from services.backtest.data import DataError, MarketData, count_rows, is_ohlc_file


async def expected_ticks(data: MarketData, spec: str, start: datetime | None, end: datetime | None, *,
                         cached: bool) -> int | None:
    """Exact from the tick cache (the window's own ticks); else the file's rows when the whole file is
    read (four ticks a bar); else None, and the bar counts without a total."""
    if cached:
        try:
            times = (await data.columns()).time_us
        except DataError:
            return None  # the run itself says what is wrong with the data
        first = 0 if start is None else int(np.searchsorted(times, micros(start), "left"))
        last = len(times) if end is None else int(np.searchsorted(times, micros(end), "left"))
        return max(0, last - first)
    if start is not None or end is not None:
        return None
    rows = count_rows(spec)
    if not rows:
        return None
    return rows * (4 if "," in spec or _is_bars(spec) else 1)


def _is_bars(path: str) -> bool:
    try:
        return is_ohlc_file(Path(path))
    except Exception:  # noqa: BLE001 - only a progress-bar estimate
        return False
