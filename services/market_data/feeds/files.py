"""What a market-data file holds, told from its first line, and how its rows become ticks.

Formats (CSV, gzipped CSV (.gz), or Parquet with the same column names):
- quotes: a header naming `timestamp`, `bid`, `ask` and optionally `volume`; a tick a row;
- trade prints: a header naming a time (`timestamp`, `time` or `datetime`), `price`, a size
  (`quantity`, `qty`, `size` or `amount`) and optionally the aggressor, as `side` (buy or
  sell: the taker's side) or `buyer_maker` (true: the buyer was resting, so the seller took);
  a tick a trade, made by `trade_print` (base.py): bid = ask = the trade price;
- HistData.com ticks, CSV without a header: `20200101 170000065,1.121200,1.121720,0`, i.e.
  date and time to the millisecond, bid, ask, volume. HistData writes New York *standard*
  time all year (UTC-05:00, no daylight saving), so that is these files' default timezone;
- Binance trade dumps (data.binance.vision), CSV without a header: id, price, qty,
  quote_qty, time (ms since the epoch), is_buyer_maker[, is_best_match].

Times are ISO-8601 text, numbers since the Unix epoch (seconds, ms, µs or ns, told apart by
size; ns are cut to µs) or Parquet datetimes. A time that names no offset is in the file's
timezone: the one the reader is given, else UTC (UTC-05:00 for HistData).
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.market_data.feeds.base import FeedTick, trade_print

HISTDATA_TIMEZONE = timezone(timedelta(hours=-5), "UTC-05:00")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?")
_HISTDATA_TIME = re.compile(r"[0-9]{8} [0-9]{9}")
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])([0-9]{1,2})(?::?([0-9]{2}))?", re.IGNORECASE)

# Column names a header may use for each field, lowercase.
_TIME_NAMES = ("timestamp", "time", "datetime")
_SIZE_NAMES = ("quantity", "qty", "size", "amount")
_MAKER_NAMES = ("buyer_maker", "is_buyer_maker", "isbuyermaker")
_EXPECTED = ("a header with timestamp,bid,ask[,volume] (quotes) or timestamp,price,quantity[,side|buyer_maker] "
             "(trade prints), or HistData's 'YYYYMMDD HHMMSSfff,bid,ask,volume' rows without a header")


class MalformedRow(ValueError):
    pass


class UnusableFile(ValueError):
    """The file cannot give a single tick; the message names the file, a line and why."""


@dataclass(frozen=True, slots=True)
class Layout:
    """What a file holds: its kind, where each field is, and the timezone of offset-less times."""

    kind: str                               # "quotes" | "trades" | "histdata" | "binance-trades"
    columns: tuple[tuple[str, int | str], ...]  # (field, CSV column index or Parquet column name)
    header: bool
    timezone: tzinfo
    timezone_given: bool

    @property
    def description(self) -> str:
        return {"quotes": "quote ticks (timestamp, bid, ask[, volume])",
                "trades": "trade prints (time, price, quantity[, aggressor]); bid = ask = the trade price",
                "histdata": "HistData ticks (date time, bid, ask, volume; no header)",
                "binance-trades": "a Binance trade dump (id, price, qty, quote_qty, time, is_buyer_maker; "
                                  "no header); bid = ask = the trade price"}[self.kind]

    @property
    def timezone_note(self) -> str:
        note = f"times without an offset read as {self.timezone}"
        if self.kind == "histdata" and not self.timezone_given:
            note += " (HistData's New York standard time, no daylight saving)"
        return note


def parse_timezone(text: str) -> tzinfo:
    """"UTC", an offset ("-05:00", "UTC+09:00", "+0900") or an IANA zone name ("America/New_York")."""
    name = text.strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    offset = _OFFSET.fullmatch(name)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        hours, minutes = int(offset.group(2)), int(offset.group(3) or 0)
        if hours < 24 and minutes < 60:
            return timezone(sign * timedelta(hours=hours, minutes=minutes),
                            f"UTC{offset.group(1)}{hours:02}:{minutes:02}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a timezone; give an offset such as -05:00 or UTC+09:00, UTC, or a zone "
                         "name such as America/New_York") from None


def sniff(path: Path, zone: tzinfo | None = None) -> Layout:
    """The layout of `path`, from its header (or its first line, for files without one)."""
    if path.suffix.lower() == ".parquet":
        import polars as pl

        names = list(pl.read_parquet_schema(path))
        layout = _from_header(names, names, zone)
        if layout is None:
            raise UnusableFile(f"{path}: its columns {', '.join(names)} are not a tick file's; expected {_EXPECTED}")
        return layout
    with open_text(path) as handle:
        first = next(csv.reader(handle), None)
    if not first:
        raise UnusableFile(f"{path} is empty; expected {_EXPECTED}")
    layout = _from_header([name.strip() for name in first], range(len(first)), zone)
    if layout is not None:
        return layout
    cells = [cell.strip() for cell in first]
    if _HISTDATA_TIME.fullmatch(cells[0]):
        return Layout(kind="histdata", columns=(("timestamp", 0), ("bid", 1), ("ask", 2), ("volume", 3)),
                      header=False, timezone=zone or HISTDATA_TIMEZONE, timezone_given=zone is not None)
    if len(cells) in (6, 7) and cells[0].isdigit() and cells[5].lower() in ("true", "false"):
        return Layout(kind="binance-trades", columns=(("price", 1), ("quantity", 2), ("timestamp", 4),
                                                      ("buyer_maker", 5)),
                      header=False, timezone=zone or timezone.utc, timezone_given=zone is not None)
    raise UnusableFile(f"{path}:1: cannot tell what the rows hold from {','.join(first)[:120]!r}; expected {_EXPECTED}")


def _from_header(names: list[str], keys, zone: tzinfo | None) -> Layout | None:
    where = {name.lower(): key for name, key in zip(names, keys)}

    def first_of(options: tuple[str, ...]):
        return next((where[o] for o in options if o in where), None)

    time = first_of(_TIME_NAMES)
    if time is not None and "bid" in where and "ask" in where:
        columns = [("timestamp", time), ("bid", where["bid"]), ("ask", where["ask"])]
        if "volume" in where:
            columns.append(("volume", where["volume"]))
        kind = "quotes"
    elif time is not None and "price" in where and first_of(_SIZE_NAMES) is not None:
        columns = [("timestamp", time), ("price", where["price"]), ("quantity", first_of(_SIZE_NAMES))]
        if "side" in where:
            columns.append(("side", where["side"]))
        elif first_of(_MAKER_NAMES) is not None:
            columns.append(("buyer_maker", first_of(_MAKER_NAMES)))
        kind = "trades"
    else:
        return None
    return Layout(kind=kind, columns=tuple(columns), header=True, timezone=zone or timezone.utc,
                  timezone_given=zone is not None)


def open_text(path: Path) -> TextIO:
    """A CSV file for reading, gunzipped on the fly when it ends in .gz; a leading BOM is dropped."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return path.open(newline="", encoding="utf-8-sig")


def rows(path: Path, layout: Layout) -> Iterator[tuple[int, dict]]:
    """(line, {field: raw value}) for every data row; a missing cell is None. Blank lines are skipped.
    Parquet rows are numbered as the lines of the same table written as CSV (the header is line 1)."""
    fields = [field for field, _ in layout.columns]
    if path.suffix.lower() == ".parquet":
        import polars as pl

        frame = pl.read_parquet(path, columns=[str(column) for _, column in layout.columns])
        for line, values in enumerate(frame.iter_rows(), start=2):
            yield line, dict(zip(fields, values))
        return
    indexes = [int(column) for _, column in layout.columns]
    with open_text(path) as handle:
        reader = csv.reader(handle)
        if layout.header:
            next(reader, None)
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            yield reader.line_num, {f: (cells[i] if i < len(cells) else None) for f, i in zip(fields, indexes)}


def tick_maker(layout: Layout, instrument: str, *, half_spread: Decimal = Decimal(0)) -> Callable[[dict], FeedTick]:
    """Turns one row of `rows` into a tick, or raises MalformedRow saying why it cannot."""
    zone = layout.timezone
    if layout.kind in ("quotes", "histdata"):
        read_time = (lambda v: histdata_time(v, zone)) if layout.kind == "histdata" else (lambda v: parse_time(v, zone))

        def quote(row: dict) -> FeedTick:
            bid, ask = parse_price("bid", row.get("bid")), parse_price("ask", row.get("ask"))
            if bid > ask:
                raise MalformedRow(f"bid {bid} is above ask {ask}")
            return FeedTick(instrument, read_time(row.get("timestamp")), bid, ask, parse_volume(row.get("volume")))
        return quote

    def trade(row: dict) -> FeedTick:
        return trade_print(instrument, parse_time(row.get("timestamp"), zone), parse_price("price", row.get("price")),
                           parse_quantity(row.get("quantity")), parse_aggressor(row), half_spread=half_spread)
    return trade


def parse_time(value, zone: tzinfo = timezone.utc) -> datetime:
    """A timestamp cell (see the module docstring) as an aware UTC datetime."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MalformedRow("timestamp is missing")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) or _NUMBER.fullmatch(str(value).strip()):
        moment = _epoch(Decimal(str(value).strip()))
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except (ValueError, AttributeError):
            raise MalformedRow(f"timestamp {value!r} is neither ISO-8601 nor a number since the epoch") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc)


def _epoch(number: Decimal) -> datetime:
    # Seconds until 5138, then milliseconds, microseconds and nanoseconds, by the number's size.
    for per_second, below in ((1, 10**11), (10**3, 10**14), (10**6, 10**17), (10**9, None)):
        if below is None or number < below:
            try:
                return _EPOCH + timedelta(microseconds=int(number * 1_000_000 / per_second))
            except OverflowError:
                break
    raise MalformedRow(f"timestamp {number} is out of range as a time since the epoch")


def histdata_time(value, zone: tzinfo) -> datetime:
    """HistData's 'YYYYMMDD HHMMSSfff' in `zone`, as an aware UTC datetime (parsed by hand: files run
    to millions of rows, and strptime is slow)."""
    text = (value or "").strip()
    if not _HISTDATA_TIME.fullmatch(text):
        raise MalformedRow(f"time {value!r} is not HistData's 'YYYYMMDD HHMMSSfff'")
    try:
        moment = datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                          int(text[13:15]), int(text[15:18]) * 1000, tzinfo=zone)
    except ValueError as exc:
        raise MalformedRow(f"time {value!r} is not a date and time ({exc})") from None
    return moment.astimezone(timezone.utc)


def parse_price(name: str, text) -> Decimal:
    value = _decimal(name, text)
    if not value.is_finite() or value <= 0:
        raise MalformedRow(f"{name}={text!r} is not a positive finite price")
    return value


def parse_volume(text) -> Decimal:
    if text is None or str(text).strip() == "":
        return Decimal(0)
    value = _decimal("volume", text)
    if not value.is_finite() or value < 0:
        raise MalformedRow(f"volume={text!r} is not a finite, non-negative number")
    return value


def parse_quantity(text) -> Decimal:
    value = _decimal("quantity", text)
    if not value.is_finite() or value <= 0:
        raise MalformedRow(f"quantity={text!r} is not a positive finite trade size")
    return value


def parse_aggressor(row: dict) -> str | None:
    """The taker's side, "buy" or "sell", from a `side` or a `buyer_maker` cell; None when neither is given."""
    if "side" in row:
        side = str(row["side"] or "").strip().lower()
        if side in ("buy", "b"):
            return "buy"
        if side in ("sell", "s"):
            return "sell"
        if side == "":
            return None
        raise MalformedRow(f"side={row['side']!r} is not buy or sell")
    if "buyer_maker" in row:
        maker = row["buyer_maker"]
        flag = maker if isinstance(maker, bool) else str(maker or "").strip().lower()
        if flag in (True, "true", "1", "t"):
            return "sell"  # the buyer's order rested in the book: the seller crossed the spread
        if flag in (False, "false", "0", "f"):
            return "buy"
        raise MalformedRow(f"buyer_maker={maker!r} is not true or false")
    return None


def _decimal(name: str, text) -> Decimal:
    cell = "" if text is None else str(text).strip()
    if cell == "":
        raise MalformedRow(f"{name} is missing")
    if not cell.isascii():  # Decimal would read other scripts' digits ("١٢٣") as a number
        raise MalformedRow(f"{name}={text!r} is not a number written in ASCII digits")
    try:
        return Decimal(cell)
    except InvalidOperation:
        raise MalformedRow(f"{name}={text!r} is not a number") from None
