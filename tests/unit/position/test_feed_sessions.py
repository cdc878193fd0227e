"""The position plane's followers: a stream that ends before sending anything backs off (and is
logged by follow_forever); one that delivered and then ended or broke is reported and followed again."""

from __future__ import annotations

import logging

import pytest

from services.position.feeds import _ended, _StreamEnded


def test_a_stream_that_ended_empty_is_a_failure_so_it_backs_off():
    with pytest.raises(_StreamEnded, match="fill stream from the order plane ended before sending anything"):
        _ended("fill stream from the order plane", delivered=False)


def test_a_stream_that_broke_empty_fails_with_its_own_error():
    broken = ConnectionError("refused")
    with pytest.raises(ConnectionError) as raised:
        _ended("tick stream from market data", delivered=False, exc=broken)  # type: ignore[arg-type]
    assert raised.value is broken


def test_a_stream_that_delivered_is_reported_and_followed_again(caplog):
    with caplog.at_level(logging.WARNING, logger="services.position.feeds"):
        assert _ended("fill stream from the order plane", delivered=True) is True
    assert [r.getMessage() for r in caplog.records] == ["fill stream from the order plane ended; following it again"]
