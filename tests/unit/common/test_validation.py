"""The shared edge checks: each refusal names the field and the accepted form; each accepted value is exact."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, localcontext

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from services.common import validation as v
from services.common.errors import InvalidArgument


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as error:
        call(*args, **kwargs)
    return error.value.message


@pytest.mark.parametrize("text, words", [
    ("١٢٣", "is not a decimal number in ASCII digits"),       # Arabic-Indic digits: Decimal() reads 123
    ("𝟙", "is not a decimal number in ASCII digits"),         # mathematical bold one: Decimal() reads 1
    ("1_000", "is not a decimal number in ASCII digits"),     # Decimal() reads 1000
    (" 10", "is not a decimal number in ASCII digits"),
    ("1e999999", "1,000,000 digits before the decimal point; at most 20 fit"),
    ("1e-16384", "16,384 digits after the decimal point; at most 18 fit"),
    ("1e-999999", "999,999 digits after the decimal point"),
    ("1e99999999999999999999", "too far from 1 in size"),      # beyond Decimal's own exponent range
    ("NaN", "NaN and Infinity are not allowed"),
    ("-inf", "NaN and Infinity are not allowed"),
    ("0", "must be greater than zero"),
    ("-5", "must be greater than zero"),
    ("", "is not a decimal number"),
    ("1" * 65, "at most 64"),
])
def test_decimals_that_would_be_misread_or_not_fit_are_refused_naming_the_field(text, words):
    message = refusal(v.decimal, "quantity", text)
    assert message.startswith("quantity ") and words in message
    assert "ASCII digits, greater than zero, such as \"10000\"" in message


@pytest.mark.parametrize("text, value", [
    ("10000", Decimal("10000")), ("145.25", Decimal("145.25")), (".5", Decimal("0.5")), ("1E+5", Decimal(100000)),
    ("0.000000000000000001", Decimal("1e-18")), ("9" * 20, Decimal("9" * 20)),
    ("1.000000000000000000000000000000", Decimal(1)),  # trailing zeros are not precision
])
def test_plain_decimals_are_read_exactly(text, value):
    assert v.decimal("quantity", text) == value


def test_non_negative_allows_zero_and_makes_negative_zero_plain_zero():
    assert str(v.parse_decimal("-0", sign=v.Sign.NON_NEGATIVE)) == "0"
    assert "must not be negative" in refusal(v.decimal, "volume", "-1", sign=v.Sign.NON_NEGATIVE)


DECIMAL_LIKE = st.from_regex(r"[+-]?[0-9]{0,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)


@given(st.one_of(st.text(max_size=80), DECIMAL_LIKE))
def test_any_text_is_either_a_fitting_ascii_decimal_or_refused(text):
    try:
        value = v.parse_decimal(text, sign=v.Sign.NON_NEGATIVE)
    except ValueError:
        return
    assert text.isascii() and value.is_finite() and value >= 0
    assert value < Decimal(10) ** v.MAX_INTEGER_DIGITS
    with localcontext() as exact:
        exact.prec = 100  # quantize must not round: the check is that nothing below 1e-18 is there
        assert value == value.quantize(Decimal(1).scaleb(-v.MAX_FRACTION_DIGITS))


@pytest.mark.parametrize("value, words", [
    ("ok_slug\n", "'ok_slug\\n' is not a strategy slug"),    # re's $ matches before a final newline
    ("x" * 10_000, "(10,000 characters) is not a strategy slug"),
    ("mа_cross", "is not a strategy slug"),                  # Cyrillic a
    ("MA_CROSS", "lowercase"), ("", "is not a strategy slug"),
])
def test_slugs_are_whole_ascii_matches(value, words):
    assert words in refusal(v.slug, "strategy_slug", value)


def test_text_refuses_nul_controls_and_bidi_overrides_but_keeps_printable_unicode():
    assert "U+0000 at position 2" in refusal(v.text, "reason", "ab\x00", max_chars=10)
    assert "U+000A" in refusal(v.text, "note", "two\nlines", max_chars=100)
    assert "U+202E" in refusal(v.text, "note", "abc\u202edef", max_chars=100)
    assert "at most 500" in refusal(v.text, "reason", "x" * 501, max_chars=500)
    assert v.text("note", "ドル円 paused: 雇用統計 ✓", max_chars=100) == "ドル円 paused: 雇用統計 ✓"


@pytest.mark.parametrize("stamp, words", [
    (Timestamp(seconds=253402300799, nanos=999999000), "9999-12-31T23:59:59.999999+00:00 is not before 2100-01-01"),
    (Timestamp(seconds=253402300800), "is not a valid timestamp: seconds 253,402,300,800 is outside the years"),
    (Timestamp(seconds=-62135596801), "is not a valid timestamp"),
    (Timestamp(seconds=-1), "is before 1970-01-01T00:00:00Z"),
    (Timestamp(seconds=10, nanos=-1), "nanos -1 is outside 0 to 999,999,999"),
    (Timestamp(seconds=10, nanos=1_000_000_000), "nanos 1,000,000,000 is outside"),
])
def test_timestamps_outside_the_trading_range_are_refused(stamp, words):
    message = refusal(v.timestamp, "since", stamp)
    assert message.startswith("since ") and words in message
    assert "send a time from 1970-01-01T00:00:00Z up to 2100-01-01T00:00:00Z" in message


def test_timestamps_in_range_are_aware_utc_to_the_microsecond():
    moment = v.timestamp("time", Timestamp(seconds=1357077600, nanos=123456789))
    assert moment == datetime(2013, 1, 1, 22, 0, 0, 123456, tzinfo=timezone.utc)
    assert "is not after 1970-01-01T00:00:00Z; say when" in refusal(
        v.timestamp, "decision_time", Timestamp(), after=v.EARLIEST, hint="say when")


@pytest.mark.parametrize("digits", ["99999999999999999999", "9223372036854775808", "١٢", "", "12a"])
def test_ids_must_be_ascii_digits_that_fit_int64(digits):
    assert "is not an audit id" in refusal(v.int64_digits, "page_token", digits, form="an audit id")


def test_int64_edges():
    assert v.int64_digits("id", "9223372036854775807", form="an id") == v.MAX_INT64
    assert "above 9,223,372,036,854,775,807" in refusal(v.sequence, "resume_after_seq", 2**64 - 1)


def test_known_names_and_filters():
    assert "account 'nope' is not one this plane knows; known: paper (QUANTMESH_ACCOUNT)" in refusal(
        v.known, "account", "nope", ("paper",), setting="QUANTMESH_ACCOUNT")
    assert "instruments contains 'USD/JPY', which is not a symbol like USD_JPY" in refusal(
        v.names, "instruments", ["USD_JPY", "USD/JPY"], pattern=v.INSTRUMENT, form=v.INSTRUMENT_FORM)
    assert "strategy_slugs contains ''" in refusal(v.slugs, "strategy_slugs", [""])
    assert "at most 1,000" in refusal(v.slugs, "strategy_slugs", ["a"] * 1001)
    assert v.slugs("strategy_slugs", ["a", "a", "b"]) == frozenset({"a", "b"})
