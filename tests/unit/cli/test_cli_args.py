"""The CLI's arguments as the docs write them."""

from __future__ import annotations

import pytest

from services.cli.__main__ import build_parser


@pytest.mark.parametrize("argv", [["flags", "show", "--address", "10.0.0.5:50052"],
                                  ["flags", "--address", "10.0.0.5:50052", "show"],
                                  ["flags", "lock", "--reason", "drill", "--address", "10.0.0.5:50052"]])
def test_flags_take_the_address_before_or_after_the_action(argv):
    assert build_parser().parse_args(argv).address == "10.0.0.5:50052"


def test_status_watches_every_two_seconds_or_as_told_and_follows():
    parse = build_parser().parse_args
    assert parse(["status", "--watch"]).watch == 2.0 and parse(["status", "--watch", "5"]).watch == 5.0
    assert parse(["status"]).watch is None and parse(["status", "--follow"]).follow
    with pytest.raises(SystemExit):
        parse(["status", "--watch", "--follow"])


def test_up_can_be_quiet_and_backtest_can_write_html():
    parse = build_parser().parse_args
    assert parse(["up", "--quiet"]).quiet and not parse(["up"]).quiet
    assert parse(["backtest", "--data", "x.csv", "--strategy", "ma_cross", "--html"]).html
