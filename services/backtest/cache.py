"""The tick cache: a data file parsed once into columns, read back in milliseconds.

Parsing CSV rows into Decimal ticks was a tenth of a backtest's time, and a sweep reads the
same file hundreds of times. The first run of a `--data` spec reads it with the exact feed
code (services/backtest/data.py) and stores the ticks it produced as integer columns under the
cache folder (`.quantmesh/cache` by default); every later run maps that file instead of reading
it (a memory map costs tens of microseconds; reading Arrow IPC with polars took a millisecond,
Parquet ten, and a fast run of a month takes a few).

- Key: the SHA-256 of the files' bytes, with the instrument, spread, timezone and the layout
  version. A small index maps (path, size, modification time) to the hash, so a run hashes
  a file only when it changed; a changed file gets a new key, never a stale cache.
- Columns: time in microseconds since the epoch (UTC), bid and ask as integer units of
  10**-price_scale, volume as units of 10**-volume_scale, the aggressor (0 none, 1 buy,
  2 sell). Prices come back as exact Decimals with `price_scale` decimals: a file that writes
  every price with three decimals gives back the same Decimals it did.
- The column file (`<key>.ticks`) holds each column's little-endian values one after the
  other, each starting at a multiple of 64 bytes. A sidecar JSON (`<key>.json`) says where each
  column lies (dtype, offset, length) and holds the scales and what reading the file said
  (description, timezone note, rows skipped); it is written last, so a cache without it is
  never used.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np

from services.market_data.feeds.base import FeedTick

#: Bump when the columns or their meaning change: old caches are then simply not found.
LAYOUT_VERSION = 3
DEFAULT_CACHE_DIR = Path(".quantmesh") / "cache"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_AGGRESSORS = {None: 0, "buy": 1, "sell": 2}
_AGGRESSOR_NAMES = (None, "buy", "sell")
_COLUMNS = ("time_us", "bid", "ask", "volume", "aggressor")


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedTicks:
    """Every tick of one `--data` spec as columns (see the module docstring)."""

    instrument: str
    time_us: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    volume: np.ndarray
    aggressor: np.ndarray
    price_scale: int
    volume_scale: int
    description: str = ""
    timezone_note: str = ""
    skipped_summary: str = ""
    _decimals: dict = field(default_factory=dict, repr=False, compare=False)
    _volumes: dict = field(default_factory=lambda: {0: Decimal(0)}, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.time_us)

    def __repr__(self) -> str:
        # Not the arrays: asyncio.run formats the finished task's result (Python 3.11 restoring SIGINT).
        return f"CachedTicks({self.instrument}, {len(self):,} ticks, price_scale={self.price_scale})"

    def price(self, units: int) -> Decimal:
        """The exact price of `units`; a price seen before is not built twice (a month repeats a few thousand)."""
        known = self._decimals.get(units)
        if known is None:
            known = self._decimals[units] = Decimal(int(units)).scaleb(-self.price_scale)
        return known

    def volume_of(self, units: int) -> Decimal:
        """The exact volume of `units` (no volume: Decimal(0)), built once per volume."""
        known = self._volumes.get(units)
        if known is None:
            known = self._volumes[units] = Decimal(units).scaleb(-self.volume_scale)
        return known

    def time(self, index: int) -> datetime:
        return _EPOCH + timedelta(microseconds=int(self.time_us[index]))

    def rows(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[tuple[int, int, int, int, int]]:
        """(time in microseconds, bid units, ask units, volume units, aggressor) of each tick within
        [start, end), oldest first: what `ticks` and `tick` build FeedTicks from."""
        first, last = self._span(start, end)
        return zip(self.time_us[first:last].tolist(), self.bid[first:last].tolist(), self.ask[first:last].tolist(),
                   self.volume[first:last].tolist(), self.aggressor[first:last].tolist())

    def quotes(self, start: datetime | None = None, end: datetime | None = None
               ) -> Iterator[tuple[datetime, float, float, float, Decimal, int, int, int, int]]:
        """Each tick of `rows` as (time, its timestamp(), bid and ask as the floats a candle takes of
        the exact prices, the exact volume, then the row's bid units, ask units, volume units and
        aggressor for `tick`): what a candle needs of a tick, made a window at a time, not per tick."""
        first, last = self._span(start, end)
        volumes, volume_of = self._volumes, self.volume_of
        units = self.volume[first:last].tolist()
        time_us = self.time_us[first:last]
        # numpy makes the timedeltas in C, exact to the microsecond; the epoch plus one is the
        # tick's datetime in a third of the time of building both from an int per tick.
        times = map(_EPOCH.__add__, time_us.astype("timedelta64[us]").tolist())
        # timestamp() divides the exact microseconds by 10**6, rounding once; so does IEEE division
        # of their float, exact under 2**53 (until the year 2255).
        seconds = (time_us / 1e6).tolist() if _exact_floats(time_us) else [t / 10 ** 6 for t in time_us.tolist()]
        return zip(times, seconds, self._floats(self.bid[first:last]),
                   self._floats(self.ask[first:last]), [volumes[v] if v in volumes else volume_of(v) for v in units],
                   self.bid[first:last].tolist(), self.ask[first:last].tolist(), units,
                   self.aggressor[first:last].tolist())

    def _floats(self, units: np.ndarray) -> list[float]:
        """float(self.price(u)) of each of `units`."""
        return scaled_floats(units, self.price_scale).tolist()

    def _span(self, start: datetime | None, end: datetime | None) -> tuple[int, int]:
        first = 0 if start is None else int(np.searchsorted(self.time_us, micros(start), "left"))
        last = len(self) if end is None else int(np.searchsorted(self.time_us, micros(end), "left"))
        return first, last

    def tick(self, time: datetime, bid: int, ask: int, volume: int, aggressor: int) -> FeedTick:
        """The FeedTick of one row of `rows`, at `time` (the row's, as a datetime)."""
        known = self._decimals
        return FeedTick(self.instrument, time, known.get(bid) or self.price(bid), known.get(ask) or self.price(ask),
                        self.volume_of(volume), _AGGRESSOR_NAMES[aggressor])

    def ticks(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[FeedTick]:
        """FeedTicks within [start, end), oldest first."""
        instrument, price, known = self.instrument, self.price, self._decimals
        volume_of, volumes = self.volume_of, self._volumes
        epoch, span = _EPOCH, timedelta  # timedelta(0, 0, t): positional microseconds build faster than by keyword
        for t, b, a, v, s in self.rows(start, end):
            yield FeedTick(instrument, epoch + span(0, 0, t), known.get(b) or price(b),
                           known.get(a) or price(a), volumes[v] if v in volumes else volume_of(v), _AGGRESSOR_NAMES[s])


def scaled_floats(units: np.ndarray, scale: int) -> np.ndarray:
    """float(Decimal(u).scaleb(-scale)) of each of `units` (prices, volumes, their sums). Dividing by
    10.0**scale gives the same floats at once: both operands are exact (a power of ten to 1e22, an
    integer under 2**53) and IEEE division rounds the exact quotient once, as float() rounds the
    exact Decimal."""
    if scale <= 22 and _exact_floats(units):
        return units / 10.0 ** scale
    return np.array([float(Decimal(int(u)).scaleb(-scale)) for u in units.tolist()], dtype=np.float64)


def _exact_floats(values: np.ndarray) -> bool:
    """Whether every integer of `values` is exactly a float64 (under 2**53 in size)."""
    return len(values) == 0 or int(np.abs(values).max()) < 2 ** 53


def micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _scale(values: Iterable[Decimal]) -> int:
    return max((max(0, -v.as_tuple().exponent) for v in values), default=0)


def columns_of(ticks: list[FeedTick], instrument: str, **notes: str) -> CachedTicks:
    """The columns of ticks read by the feed code (the cache's content)."""
    price_scale = _scale(p for t in ticks for p in (t.bid, t.ask))
    volume_scale = _scale(t.volume for t in ticks)
    return CachedTicks(
        instrument=instrument,
        time_us=np.array([micros(t.time) for t in ticks], dtype=np.int64),
        bid=np.array([int(t.bid.scaleb(price_scale)) for t in ticks], dtype=np.int64),
        ask=np.array([int(t.ask.scaleb(price_scale)) for t in ticks], dtype=np.int64),
        volume=np.array([int(t.volume.scaleb(volume_scale)) for t in ticks], dtype=np.int64),
        aggressor=np.array([_AGGRESSORS.get(t.aggressor, 0) for t in ticks], dtype=np.int8),
        price_scale=price_scale, volume_scale=volume_scale, **notes)


class TickCache:
    """The cache folder. Passed in (never a module global), so tests use a folder of their own."""

    def __init__(self, folder: Path = DEFAULT_CACHE_DIR) -> None:
        self.folder = Path(folder)

    def key(self, paths: Iterable[Path], *, instrument: str, spread: Decimal, timezone_name: str) -> str:
        digest = hashlib.sha256(f"v{LAYOUT_VERSION}|{instrument}|{spread}|{timezone_name}".encode())
        index = self._hash_index()
        for path in paths:
            digest.update(self._file_hash(Path(path), index).encode())
        return digest.hexdigest()[:32]

    def load(self, key: str) -> CachedTicks | None:
        meta_path, data_path = self.folder / f"{key}.json", self.folder / f"{key}.ticks"
        if not meta_path.exists() or not data_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        try:
            columns = _mapped(data_path, meta["columns"])
        except (OSError, ValueError, KeyError):  # a column file shorter than its layout says: not a cache
            return None
        return CachedTicks(instrument=meta["instrument"], **columns,
                           price_scale=meta["price_scale"], volume_scale=meta["volume_scale"],
                           description=meta["description"], timezone_note=meta["timezone_note"],
                           skipped_summary=meta["skipped_summary"])

    def store(self, key: str, ticks: CachedTicks) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        layout, offset = {}, 0
        data_tmp = self.folder / f"{key}.ticks.{os.getpid()}.tmp"
        with data_tmp.open("wb") as handle:
            for name in _COLUMNS:
                values = getattr(ticks, name)
                values = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
                padding = -offset % 64
                handle.write(bytes(padding))
                offset += padding
                layout[name] = [values.dtype.str, offset, len(values)]
                handle.write(values.tobytes())
                offset += values.nbytes
        os.replace(data_tmp, self.folder / f"{key}.ticks")
        meta = {"instrument": ticks.instrument, "price_scale": ticks.price_scale, "volume_scale": ticks.volume_scale,
                "description": ticks.description, "timezone_note": ticks.timezone_note,
                "skipped_summary": ticks.skipped_summary, "layout_version": LAYOUT_VERSION, "columns": layout}
        meta_tmp = self.folder / f"{key}.json.{os.getpid()}.tmp"
        meta_tmp.write_text(json.dumps(meta, indent=1))
        os.replace(meta_tmp, self.folder / f"{key}.json")  # last: the cache is complete from here on

    def _hash_index(self) -> dict[str, str]:
        try:
            return json.loads((self.folder / "hashes.json").read_text())
        except (OSError, ValueError):
            return {}

    def _file_hash(self, path: Path, index: dict[str, str]) -> str:
        """The file's SHA-256, remembered in `index` per (path, size, mtime) so an unchanged file is not read again."""
        stat = path.stat()
        index_path = self.folder / "hashes.json"
        stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        known = index.get(stamp)
        if known is not None:
            return known
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        index[stamp] = digest.hexdigest()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, index_path)
        return index[stamp]


def _mapped(path: Path, layout: dict) -> dict[str, np.ndarray]:
    """The columns of a column file, read-only views of its memory map (pages are read when touched)."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return {name: np.zeros(0, dtype=layout[name][0]) for name in _COLUMNS}
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return {name: np.frombuffer(mapped, dtype=layout[name][0], count=layout[name][2], offset=layout[name][1])
            for name in _COLUMNS}
