"""follow_forever: a peer that is down is asked again within PEER_BACKOFF, and the warning
about it does not repeat at that rate."""

from __future__ import annotations

import logging

import pytest

from services.common.reconnect import PEER_BACKOFF, WARN_EVERY, follow_forever


class Peer:
    """A peer down for `failures` sessions, then up for one session that delivers, then gone."""

    def __init__(self, failures: int) -> None:
        self.outcomes: list[object] = [ConnectionError("refused")] * failures + [True]
        self.sessions = 0

    def running(self) -> bool:
        return bool(self.outcomes)

    async def session(self) -> bool:
        self.sessions += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def follow(peer: Peer, *, step: float, caplog) -> list[float]:
    slept: list[float] = []
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def monotonic() -> float:
        clock[0] += step
        return clock[0]

    with caplog.at_level(logging.WARNING, logger="test.reconnect"):
        await follow_forever(peer.session, what="position plane", address="127.0.0.1:1",
                             log=logging.getLogger("test.reconnect"), running=peer.running, monotonic=monotonic,
                             sleep=sleep)
    return slept


async def test_a_peer_that_stays_down_is_asked_again_within_the_cap(caplog):
    peer = Peer(failures=12)
    slept = await follow(peer, step=0.0, caplog=caplog)
    assert peer.sessions == 13  # every failure was retried, and the first success ended it
    assert slept == sorted(slept)  # backing off...
    assert slept[0] < slept[-1]
    assert max(slept) == PEER_BACKOFF  # ...but never longer than the cap: the peer is on the same network


async def test_the_warning_is_logged_once_per_interval_not_once_per_attempt(caplog):
    slept = await follow(Peer(failures=9), step=1.0, caplog=caplog)  # a second apart: all within WARN_EVERY
    warnings = [r for r in caplog.records if "unreachable; retrying" in r.getMessage()]
    assert len(slept) == 9
    assert [r.attempt for r in warnings] == [1]


async def test_a_long_outage_is_still_reported_every_interval(caplog):
    await follow(Peer(failures=4), step=WARN_EVERY, caplog=caplog)  # each attempt a whole interval after the last
    warnings = [r for r in caplog.records if "unreachable; retrying" in r.getMessage()]
    assert [r.attempt for r in warnings] == [1, 2, 3, 4]


@pytest.mark.parametrize("failures", [0, 3])
async def test_a_session_that_delivers_ends_the_backoff(caplog, failures):
    peer = Peer(failures=failures)
    slept = await follow(peer, step=0.0, caplog=caplog)
    assert len(slept) == failures


async def test_a_stream_that_ends_before_delivering_is_backed_off_like_a_failure(caplog):
    # A peer that accepts the call and ends it at once (draining, not ready) five times, then delivers.
    peer = Peer(failures=0)
    peer.outcomes = [False] * 5 + [True]
    slept = await follow(peer, step=0.0, caplog=caplog)
    assert peer.sessions == 6
    assert len(slept) == 5 and slept == sorted(slept) and slept[0] < slept[-1]  # not asked again in a tight loop
    warnings = [r for r in caplog.records if "unreachable; retrying" in r.getMessage()]
    assert [r.attempt for r in warnings] == [1]
    assert "ended before it sent anything" in warnings[0].error


async def test_a_follower_told_to_stop_while_its_peer_is_down_stops(caplog):
    # Before, `running` was only asked after a session succeeded: a follower whose peer never came back
    # retried forever after its owner had stopped it.
    sessions = []

    async def refused() -> bool:
        sessions.append(1)
        raise ConnectionError("refused")

    async def sleep(seconds: float) -> None:
        return None

    with caplog.at_level(logging.WARNING, logger="test.reconnect"):
        await follow_forever(refused, what="position plane", address="127.0.0.1:1",
                             log=logging.getLogger("test.reconnect"), running=lambda: len(sessions) < 4,
                             sleep=sleep)
    assert len(sessions) == 4  # returned, without an exception, once running() said no
