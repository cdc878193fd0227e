"""Request fields to domain values, at the servicer edge, for every plane.

A value that passes here can be stored, compared and sent on without surprising
anything downstream: text has no NUL or control characters (PostgreSQL refuses NUL,
logs and terminals misread the rest), names are plain ASCII of a known form, decimals
are written in ASCII digits and fit the database's `numeric` with room to spare,
times lie in a range every datetime, Timestamp and `timestamptz` can hold, and
numbers that become `bigint` keys fit int64.

Each helper raises InvalidArgument with a sentence that names the field and the
accepted form, so the caller can fix the request without reading the server's code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import InvalidArgument

MAX_INT64 = 2**63 - 1

#: Money and quantities: generous for any FX or crypto amount (a JPY balance, a satoshi,
#: an 18-decimal token), far inside PostgreSQL numeric's limits, and exact as a float's magnitude.
MAX_INTEGER_DIGITS = 20
MAX_FRACTION_DIGITS = 18
#: Longest decimal text read at all, so a megabyte of zeros is not parsed first.
MAX_DECIMAL_CHARS = 64

#: Times a trading system has any business with. The upper bound keeps arithmetic on a
#: time (a venue adds a microsecond, a bucket adds a day) far from datetime's year 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
_TIME_RANGE = "from 1970-01-01T00:00:00Z up to 2100-01-01T00:00:00Z"
# Timestamp's own range (RFC 3339 years 0001 to 9999), in seconds since the epoch.
_TIMESTAMP_SECONDS = range(-62135596800, 253402300800)

SLUG = re.compile(r"[a-z0-9_]{1,64}", re.ASCII)
SLUG_FORM = "1 to 64 lowercase letters, digits and underscores, e.g. 'ma_cross'"
NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)
NAME_FORM = "1 to 64 characters of A-Z a-z 0-9 . _ : -"
INSTRUMENT = re.compile(r"[A-Z0-9]{2,12}_[A-Z0-9]{2,12}", re.ASCII)
INSTRUMENT_FORM = "a symbol like USD_JPY"
MAX_LIST_ITEMS = 1000

# Plain decimal notation in ASCII only: Decimal() itself also takes other scripts' digits
# ("١٢٣" is 123), underscores, surrounding spaces, "NaN" and "Infinity".
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NON_FINITE = re.compile(r"[+-]?(?:nan|snan|inf|infinity)", re.ASCII | re.IGNORECASE)
# Cc control (NUL, newline, ESC...), Cf format (bidi overrides that make an audit line read
# differently than it is), Cs/Co/Cn (surrogates, private use, unassigned), line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class Sign(Enum):
    POSITIVE = "greater than zero"
    NON_NEGATIVE = "zero or more"


# ---- text and names ---------------------------------------------------------------------------

def text(field: str, value: str, *, max_chars: int) -> str:
    """Free text (a reason, a note): at most `max_chars` characters, all of them printable."""
    if len(value) > max_chars:
        raise InvalidArgument(f"{field} has {len(value):,} characters; at most {max_chars:,} are allowed")
    for position, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            raise InvalidArgument(f"{field} has the unprintable character U+{ord(char):04X} at position {position}; "
                                  "send printable text without control characters or line breaks")
    return value


def name(field: str, value: str, *, pattern: re.Pattern[str] = NAME, form: str = NAME_FORM) -> str:
    """An identifier of a fixed ASCII form; the whole value must match (a trailing newline does not)."""
    if pattern.fullmatch(value) is None:
        raise InvalidArgument(f"{field} {shown(value)} is not {form}")
    return value


def slug(field: str, value: str) -> str:
    """A strategy slug, the same form the control plane stores its flags under."""
    if SLUG.fullmatch(value) is None:
        raise InvalidArgument(f"{field} {shown(value)} is not a strategy slug: use {SLUG_FORM}")
    return value


def slugs(field: str, values: Iterable[str]) -> frozenset[str]:
    """A filter of strategy slugs; empty means all."""
    return frozenset(_each(field, values, lambda v: SLUG.fullmatch(v) is not None,
                           f"which is not a strategy slug: use {SLUG_FORM}"))


def names(field: str, values: Iterable[str], *, pattern: re.Pattern[str] = NAME,
          form: str = NAME_FORM) -> frozenset[str]:
    """A filter of identifiers (instruments, accounts); empty means all."""
    return frozenset(_each(field, values, lambda v: pattern.fullmatch(v) is not None, f"which is not {form}"))


def known(field: str, value: str, choices: Collection[str], *, setting: str = "") -> str:
    """One of the names this plane was configured with (an instrument, an account)."""
    if value not in choices:
        where = f" ({setting})" if setting else ""
        raise InvalidArgument(f"{field} {shown(value)} is not one this plane knows; "
                              f"known: {', '.join(sorted(choices)) or 'none'}{where}")
    return value


def _each(field: str, values: Iterable[str], fits, problem: str) -> list[str]:
    items = list(values)
    if len(items) > MAX_LIST_ITEMS:
        raise InvalidArgument(f"{field} has {len(items):,} entries; at most {MAX_LIST_ITEMS:,} are allowed")
    for value in items:
        if not fits(value):
            raise InvalidArgument(f"{field} contains {shown(value)}, {problem}")
    return items


def shown(value: str, limit: int = 80) -> str:
    """The value as a sentence quotes it: repr (so NUL and newlines show), cut when long."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value):,} characters)"


# ---- decimals ---------------------------------------------------------------------------------

def parse_decimal(value: str, *, sign: Sign = Sign.POSITIVE) -> Decimal:
    """`value` as an exact Decimal, or ValueError saying what is wrong with it (for callers that
    word their own sentence); `decimal` below is the usual way in."""
    if len(value) > MAX_DECIMAL_CHARS:
        raise ValueError(f"is {len(value):,} characters long; a decimal here has at most {MAX_DECIMAL_CHARS}")
    if _NON_FINITE.fullmatch(value):
        raise ValueError("is not a finite number; NaN and Infinity are not allowed")
    if _DECIMAL.fullmatch(value) is None:
        raise ValueError("is not a decimal number in ASCII digits")
    try:
        number = Decimal(value)
    except InvalidOperation:  # an exponent beyond what Decimal itself can represent
        raise ValueError(f"is too far from 1 in size to be a decimal here (at most {MAX_INTEGER_DIGITS} digits "
                         f"before and {MAX_FRACTION_DIGITS} after the point)") from None
    digits, exponent = _significant(number)
    integer_digits = max(0, len(digits) + exponent)
    fraction_digits = max(0, -exponent)
    if integer_digits > MAX_INTEGER_DIGITS:
        raise ValueError(f"has {integer_digits:,} digits before the decimal point; at most {MAX_INTEGER_DIGITS} fit")
    if fraction_digits > MAX_FRACTION_DIGITS:
        raise ValueError(f"has {fraction_digits:,} digits after the decimal point; at most {MAX_FRACTION_DIGITS} fit")
    if sign is Sign.POSITIVE and number <= 0:
        raise ValueError("must be greater than zero")
    if sign is Sign.NON_NEGATIVE and number < 0:
        raise ValueError("must not be negative")
    return number.copy_abs() if number.is_zero() else number  # "-0" is zero, not a short position


def decimal(field: str, value: str, *, sign: Sign = Sign.POSITIVE, example: str = "10000") -> Decimal:
    """A money or quantity field: plain ASCII decimal notation, finite, within the digits that fit."""
    try:
        return parse_decimal(value, sign=sign)
    except ValueError as exc:
        raise InvalidArgument(f"{field} {shown(value)} {exc}; send a decimal string in ASCII digits, "
                              f"{sign.value}, such as \"{example}\"") from None


def _significant(number: Decimal) -> tuple[tuple[int, ...], int]:
    """Digits and exponent with trailing zeros folded into the exponent (exactly, no context rounding)."""
    _, digits, exponent = number.as_tuple()
    digits = tuple(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if digits == (0,):
        return digits, 0
    return digits, exponent


# ---- times ------------------------------------------------------------------------------------

def timestamp(field: str, stamp: Timestamp, *, after: datetime | None = None, hint: str = "") -> datetime:
    """A set Timestamp field as an aware UTC datetime (nanoseconds cut to microseconds).

    Accepted: from 1970-01-01 (or strictly after `after`) up to 2100-01-01, exclusive.
    """
    advice = f"; {hint}" if hint else f"; send a time {_TIME_RANGE}"
    if not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidArgument(f"{field} is not a valid timestamp: nanos {stamp.nanos:,} is outside 0 to "
                              f"999,999,999{advice}")
    if stamp.seconds not in _TIMESTAMP_SECONDS:
        raise InvalidArgument(f"{field} is not a valid timestamp: seconds {stamp.seconds:,} is outside the years "
                              f"0001 to 9999{advice}")
    moment = stamp.ToDatetime(tzinfo=timezone.utc)
    if after is not None and moment <= after:
        raise InvalidArgument(f"{field} {moment.isoformat()} is not after {_iso(after)}{advice}")
    if moment < EARLIEST:
        raise InvalidArgument(f"{field} {moment.isoformat()} is before {_iso(EARLIEST)}{advice}")
    if moment >= LATEST:
        raise InvalidArgument(f"{field} {moment.isoformat()} is not before {_iso(LATEST)}{advice}")
    return moment


def optional_timestamp(message, field: str) -> datetime | None:
    """None when the field is unset, so "no bound" differs from the epoch; else as `timestamp`."""
    return timestamp(field, getattr(message, field)) if message.HasField(field) else None


def window(first: str, start: datetime | None, last: str, end: datetime | None) -> None:
    """A [start, end) query window must start before it ends."""
    if start is not None and end is not None and start >= end:
        raise InvalidArgument(f"{first} {start.isoformat()} must be before {last} {end.isoformat()}; "
                              "give a window whose start comes first")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# ---- numbers that become keys -----------------------------------------------------------------

def int64_digits(field: str, digits: str, *, form: str) -> int:
    """ASCII digits that name a row (an order number, an audit id): must fit a bigint."""
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19 or int(digits) > MAX_INT64:
        raise InvalidArgument(f"{field} {shown(digits)} is not {form}")
    return int(digits)


def sequence(field: str, value: int) -> int:
    """A uint64 wire seq (resume_after_seq, expected_version) compared with bigint columns."""
    if value > MAX_INT64:
        raise InvalidArgument(f"{field} {value} is above {MAX_INT64:,}, the largest seq a stream can reach")
    return value


def resume_after(request, field: str = "resume_after_seq") -> int | None:
    """The optional resume point of a stream request: None for live only."""
    return sequence(field, getattr(request, field)) if request.HasField(field) else None


def limit(field: str, value: int, *, default: int, maximum: int, hint: str = "") -> int:
    """A page size: 0 means the default; above the maximum is refused, not silently cut."""
    if value > maximum:
        raise InvalidArgument(f"{field} {value} is above the maximum {maximum}" + (f"; {hint}" if hint else ""))
    return value or default


__all__ = ["EARLIEST", "LATEST", "MAX_INT64", "Sign", "decimal", "int64_digits", "known", "limit", "name", "names",
           "optional_timestamp", "parse_decimal", "resume_after", "sequence", "shown", "slug", "slugs", "text", "timestamp",
           "window"]
