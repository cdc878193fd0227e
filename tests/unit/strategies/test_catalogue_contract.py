"""Every catalogued strategy honours the SDK contract."""

from __future__ import annotations

import inspect
import logging
from datetime import timedelta

import pytest

from services.strategies.registry import catalogue
from services.strategies.sdk import INTERFACE_VERSION, TIMEFRAMES, StrategyHarness

SLUGS = sorted(catalogue())


@pytest.mark.parametrize("slug", SLUGS)
def test_declares_its_rule_and_timeframes(slug):
    cls = catalogue()[slug]
    doc = inspect.getmodule(cls).__doc__
    assert doc and doc.startswith(f"{slug}:") and "Rule" in doc
    assert cls.timeframes and set(cls.timeframes) <= set(TIMEFRAMES)
    assert cls.interface_version == INTERFACE_VERSION


@pytest.mark.parametrize("slug", SLUGS)
def test_no_decision_and_no_error_without_history(slug, build, load):
    strategy = load(slug)
    harness = StrategyHarness(strategy, logging.getLogger("test"))
    empty = build.view(now=build.t0 + timedelta(minutes=45), **{tf: [] for tf in strategy.timeframes})
    short = build.view(**{tf: build.bars([150.0, 150.01], tf) for tf in strategy.timeframes})
    for view in (empty, short):
        assert harness.entry(view) is None
        assert harness.exit(view, build.position("10000", "150.0", opened=view.now)) is None
    assert harness.errors == 0, harness.last_error
    assert strategy.warmup_bars() >= 1
    assert set(strategy.history_bars()) == set(strategy.timeframes)


@pytest.mark.parametrize("slug", SLUGS)
def test_protective_exits_apply_to_every_strategy(slug, build, load):
    strategy = load(slug)
    tf = strategy.timeframes[0]
    view = build.view(**{t: build.bars([150.0], t) for t in strategy.timeframes})
    far_below = build.position("10000", "151.0", opened=view.now)
    assert strategy.decide_exit(view, far_below).rule == "stop_loss"
    far_above = build.position("-10000", "151.0", opened=view.now)
    assert strategy.decide_exit(view, far_above).rule == "take_profit"
    old = build.position("10000", "150.0", opened=view.now - timedelta(minutes=strategy.params.max_hold_minutes))
    assert strategy.decide_exit(view, old).rule == "time_stop"
    assert view.last(tf) is not None
