"""The position plane's followers: a stream that ends before sending anything backs off (and is
logged by follow_forever); one that delivered and then ended or broke is reported and followed again."""

from __future__ import annotations

import logging

import pytest

from services.common.reconnect import follow_forever
from services.position.feeds import _ended


async def test_a_stream_that_ended_empty_is_a_failure_so_it_backs_off(caplog):
    # Ended empty twice, then delivered: follow_forever backs off after each empty end and warns once.
    outcomes, slept = [False, False, True], []

    async def session() -> bool:
        return _ended("fill stream from the order plane", delivered=outcomes.pop(0))

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with caplog.at_level(logging.WARNING, logger="test.feeds"):
        await follow_forever(session, what="fill stream from the order plane", address="127.0.0.1:1",
                             log=logging.getLogger("test.feeds"), running=lambda: bool(outcomes), sleep=sleep)
    assert len(slept) == 2 and slept[0] > 0  # backed off after each empty end
    warnings = [r for r in caplog.records if r.name == "test.feeds"]
    assert len(warnings) == 1 and "ended before it sent anything" in warnings[0].error


def test_a_stream_that_broke_empty_fails_with_its_own_error():
    broken = ConnectionError("refused")
    with pytest.raises(ConnectionError) as raised:
        _ended("tick stream from market data", delivered=False, exc=broken)  # type: ignore[arg-type]
    assert raised.value is broken


def test_a_stream_that_delivered_is_reported_and_followed_again(caplog):
    with caplog.at_level(logging.WARNING, logger="services.position.feeds"):
        assert _ended("fill stream from the order plane", delivered=True) is True
    assert [r.getMessage() for r in caplog.records] == ["fill stream from the order plane ended; following it again"]
