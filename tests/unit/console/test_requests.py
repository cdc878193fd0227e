"""What the console's API accepts (services/console/requests.py) and its configuration."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import MultiDict

from quantmesh.order.v1 import order_pb2
from services.common.config import ConfigError, Env
from services.common.errors import InvalidArgument
from services.console import requests
from services.console.api import Api, NotOffered
from services.console.capabilities import OrderAction, offered
from services.console.config import ConsoleConfig
from services.console.operators import MIN_ITERATIONS, hash_secret
from services.console.planes import attributed, operator_of
from services.console.operators import Operator, Role


def test_the_seeds_strategy_control_takes_a_strategys_switches_or_the_global_ones():
    switch = requests.strategy_control({"slug": "ma_cross", "entry_enabled": False, "reason": "  news  "})
    assert switch == requests.StrategySwitch(slug="ma_cross", entry_enabled=False, reason="news")
    lock = requests.strategy_control({"global_lock": True, "reason": "drill", "expected_version": 7})
    assert lock == requests.GlobalSwitch(global_lock=True, reason="drill", expected_version=7)


@pytest.mark.parametrize("body", [
    {"global_lock": True, "reason": "drill", "expected_version": True},
    {"global_lock": True, "reason": "drill", "expected_version": 2**63},
    {"global_lock": 1, "reason": "drill"},
    {"slug": 7, "entry_enabled": False, "reason": "x"},
    {"slug": "ma_cross", "reason": "x"},
    {"global_lock": True, "reason": 5},
    {"global_lock": True, "reason": "bidi \u202e override"},
    "global_lock",
])
def test_what_is_refused(body):
    with pytest.raises(InvalidArgument):
        requests.strategy_control(body)


def test_filters_become_queries():
    query = requests.order_query(MultiDict(strategy="ma_cross", instrument="USD_JPY", state="rejected,FILLED",
                                           limit="5", page_token="before:9"))
    assert query == requests.OrderQuery(strategy="ma_cross", instrument="USD_JPY", limit=5, page_token="before:9",
                                        states=(order_pb2.ORDER_STATE_REJECTED, order_pb2.ORDER_STATE_FILLED))
    audit = requests.audit_query(MultiDict(actor="alice", flag="global_lock", since="2026-01-05T09:00:00+09:00"))
    assert audit.since == datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc) and audit.limit == 100
    with pytest.raises(InvalidArgument, match="given more than once"):
        requests.order_query(MultiDict([("state", "NEW"), ("state", "FILLED")]))
    with pytest.raises(InvalidArgument, match="outside 1970-01-01 to 2100-01-01"):
        requests.equity_query(MultiDict(since="2200-01-01T00:00:00Z"))
    assert requests.order_id("ord-000000000042") == "ord-000000000042"
    with pytest.raises(InvalidArgument):
        requests.order_id("ord-99999999999999999999")


def test_the_operator_travels_in_the_reason_and_comes_back_out_of_it():
    reason = attributed(Operator("alice", Role.OPERATOR), "news at 14:30")
    assert reason == "alice@console: news at 14:30"
    assert operator_of(reason) == "alice"
    assert operator_of("drill from grpcurl") is None


def test_optional_order_actions_need_the_plane_and_the_console_both():
    async def send(planes, operator, reason):
        return None

    actions = {"flatten": OrderAction("Flatten", send)}
    assert offered(frozenset({"Submit", "Flatten"}), actions) == {"flatten"}
    assert offered(frozenset({"Submit"}), actions) == frozenset()
    assert offered(frozenset({"Submit", "CancelOpen"})) == {"cancel-open"}  # an order plane without Flatten


async def test_an_action_the_order_plane_does_not_offer_is_answered_501_with_the_rpc():
    api = Api(planes=SimpleNamespace(addresses={"order": "order:50053"}), live=SimpleNamespace(capabilities=frozenset()))
    with pytest.raises(NotOffered, match="the order plane at order:50053 does not offer Order.Flatten, so the "
                                         "console cannot flatten"):
        await api.optional_action(make_mocked_request("POST", "/api/flatten"))


def test_a_sweep_names_what_to_cancel_or_close():
    assert requests.sweep({"reason": "drill", "strategy": "ma_cross"}) == requests.Sweep(strategy="ma_cross",
                                                                                          reason="drill")
    with pytest.raises(InvalidArgument, match="instrument"):
        requests.sweep({"reason": "drill", "instrument": "usd/jpy"})


@pytest.mark.parametrize(("body", "sentence"), [
    ({"strategy": "ma_cross", "frozen": "yes", "reason": "news"}, "frozen must be true or false"),
    ({"strategy": "ma_cross", "reason": "news"}, "frozen is required"),
    ({"frozen": True, "reason": "news"}, "strategy is required"),
    ({"strategy": "Not A Slug", "frozen": True, "reason": "news"}, "is not a strategy slug"),
    ({"strategy": "ma_cross", "frozen": True}, "reason is required"),
    ({"strategy": "ma_cross", "frozen": True, "reason": "news", "params": {}}, "unknown field(s) 'params'"),
    ("freeze", "must be a JSON object"),
])
def test_a_freeze_names_the_strategy_the_state_and_why(body, sentence):
    with pytest.raises(InvalidArgument, match=re.escape(sentence)):
        requests.freeze(body)
    assert requests.freeze({"strategy": "ma_cross", "frozen": False, "reason": " news passed "}) == requests.Freeze(
        strategy="ma_cross", frozen=False, reason="news passed")


async def test_freezing_without_an_analysis_plane_is_answered_501_with_what_to_set():
    api = Api(planes=SimpleNamespace(analysis=None), live=SimpleNamespace())
    with pytest.raises(NotOffered, match="set QUANTMESH_ANALYSIS_ADDR"):
        await api.freeze(make_mocked_request("POST", "/api/analysis/freeze"))


def users() -> str:
    return f"alice:operator:{hash_secret('alice-secret', iterations=MIN_ITERATIONS)}"


def test_the_console_never_serves_other_hosts_without_sign_in():
    with pytest.raises(ConfigError, match="QUANTMESH_CONSOLE_USERS must be set"):
        ConsoleConfig.from_env(Env({"QUANTMESH_CONSOLE_LISTEN": "0.0.0.0:8470"}))
    with pytest.raises(ConfigError, match="QUANTMESH_CONSOLE_USERS must be set"):
        ConsoleConfig.from_env(Env({"QUANTMESH_CONSOLE_LISTEN": "127.0.0.1.nip.io:8470"}))
    config = ConsoleConfig.from_env(Env({"QUANTMESH_CONSOLE_LISTEN": "0.0.0.0:8470", "QUANTMESH_CONSOLE_USERS": users(),
                                         "QUANTMESH_CONSOLE_WORKERS": "strategy-workers:50060"}))
    assert config.login_required and config.workers == ("strategy-workers:50060",)
    local = ConsoleConfig.from_env(Env({}))
    assert not local.login_required and local.http_listen == "127.0.0.1:8470"
    assert local.server.listen == "127.0.0.1:50055" and local.hosts[:3] == ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize(("env", "sentence"), [
    ({"QUANTMESH_CONSOLE_USERS": "alice:operator:nope"}, "QUANTMESH_CONSOLE_USERS is malformed"),
    ({"QUANTMESH_CONSOLE_WORKERS": "ma_cross"}, "has 'ma_cross', which is not host:port"),
    ({"QUANTMESH_CONSOLE_WORKERS": "a:1,a:1"}, "lists an address twice"),
    ({"QUANTMESH_CONSOLE_LISTEN": "8470"}, "QUANTMESH_CONSOLE_LISTEN='8470' is not host:port"),
    ({"QUANTMESH_CONSOLE_POLL_SECONDS": "0"}, "below the minimum 0.2"),
])
def test_bad_settings_stop_the_console_with_a_sentence(env, sentence):
    with pytest.raises(ConfigError, match=sentence):
        ConsoleConfig.from_env(Env(env))
