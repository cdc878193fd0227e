"""Venue settings, secrets and the small pure helpers the adapters share."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.common.config import ConfigError, Env
from services.common.venues import (CcxtSettings, MalformedVenueReply, OandaSettings, Secret, decimal_field, field,
                                    parse_venue_choice, rfc3339_time)
from services.order.brokers.base import BrokerOrder
from services.order.brokers.gmo import sign
from services.order.brokers.oanda import _order_body

OANDA = {"OANDA_API_TOKEN": "tok-123-secret", "OANDA_ACCOUNT_ID": "101-001-1-001"}


def test_practice_is_the_default_and_live_is_chosen_explicitly():
    practice = OandaSettings.from_env(Env(OANDA))
    assert practice.rest_url == "https://api-fxpractice.oanda.com"
    assert practice.stream_url == "https://stream-fxpractice.oanda.com"
    live = OandaSettings.from_env(Env({**OANDA, "QUANTMESH_VENUE_ENV": "live"}))
    assert live.rest_url == "https://api-fxtrade.oanda.com" and live.stream_url == "https://stream-fxtrade.oanda.com"
    moved = OandaSettings.from_env(Env({**OANDA, "QUANTMESH_OANDA_REST_URL": "http://127.0.0.1:9/"}))
    assert moved.rest_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("env, name", [
    ({"OANDA_ACCOUNT_ID": "1"}, "OANDA_API_TOKEN"), ({"OANDA_API_TOKEN": "t"}, "OANDA_ACCOUNT_ID"),
    ({**OANDA, "QUANTMESH_VENUE_ENV": "paper"}, "QUANTMESH_VENUE_ENV"),
    ({**OANDA, "QUANTMESH_OANDA_REST_URL": "ftp://x"}, "QUANTMESH_OANDA_REST_URL"),
])
def test_bad_oanda_settings_name_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        OandaSettings.from_env(Env(env))


def test_a_secret_never_prints_and_never_pickles():
    settings = OandaSettings.from_env(Env(OANDA))
    for text in (repr(settings), str(settings), repr(settings.token), f"{settings.token}"):
        assert "tok-123-secret" not in text
    assert settings.token.reveal() == "tok-123-secret" and settings.token == Secret("tok-123-secret")
    with pytest.raises(TypeError):
        pickle.dumps(settings.token)


def test_venue_choice_parses_and_refuses_with_the_variable_name():
    assert parse_venue_choice("QUANTMESH_FEED", "oanda") == ("oanda", "")
    assert parse_venue_choice("QUANTMESH_BROKER", "ccxt:Binance") == ("ccxt", "binance")
    for bad in ("ccxt", "ccxt:", "oanda:x", "kraken"):
        with pytest.raises(ConfigError, match="QUANTMESH_BROKER"):
            parse_venue_choice("QUANTMESH_BROKER", bad)
    with pytest.raises(ConfigError, match="no exchange 'nosuch'"):
        CcxtSettings.from_env(Env({}), "nosuch", trading=False)
    with pytest.raises(ConfigError, match="CCXT_API_KEY"):
        CcxtSettings.from_env(Env({}), "binance", trading=True)


def test_rfc3339_times_keep_microseconds_and_become_utc():
    assert rfc3339_time("2024-01-02T03:04:05.123456789Z") == datetime(2024, 1, 2, 3, 4, 5, 123456, timezone.utc)
    assert rfc3339_time("2019-03-19T09:26:04.535Z").microsecond == 535000
    assert rfc3339_time("2024-01-02T12:00:00.5+09:00") == datetime(2024, 1, 2, 3, 0, 0, 500000, timezone.utc)


def test_field_readers_name_the_venue_and_the_path():
    assert field("OANDA", {"a": {"b": 1}}, "a.b") == 1
    with pytest.raises(MalformedVenueReply, match="OANDA.*'a.c'"):
        field("OANDA", {"a": {"b": 1}}, "a.c")
    assert decimal_field("GMO Coin", {"price": "1.5"}, "price") == Decimal("1.5")
    for bad in ("abc", "NaN", "Infinity"):
        with pytest.raises(MalformedVenueReply, match="GMO Coin.*'price'"):
            decimal_field("GMO Coin", {"price": bad}, "price")


def test_gmo_signature_is_hmac_sha256_of_timestamp_method_path_body():
    # Computed independently: hmac.new(b"secret", b"1700000000000POST/v1/order{}", sha256).hexdigest()
    import hashlib
    import hmac
    expected = hmac.new(b"secret", b"1700000000000POST/v1/order{}", hashlib.sha256).hexdigest()
    assert sign("secret", "1700000000000", "POST", "/v1/order", "{}") == expected
    assert sign("secret", "1700000000000", "GET", "/v1/order", "{}") != expected


def test_oanda_order_bodies_follow_the_v20_shape():
    sell = BrokerOrder(client_order_id="c1", account="a", instrument="USD_JPY", side="sell",
                       quantity=Decimal("10000"), order_type="market")
    assert _order_body(sell) == {"type": "MARKET", "instrument": "USD_JPY", "units": "-10000", "timeInForce": "FOK",
                                 "positionFill": "DEFAULT", "clientExtensions": {"id": "c1"}}
    limit = BrokerOrder(client_order_id="c2", account="a", instrument="EUR_USD", side="buy", quantity=Decimal("5"),
                        order_type="limit", limit_price=Decimal("1.08123"), time_in_force="gtc")
    body = _order_body(limit)
    assert (body["type"], body["price"], body["units"], body["timeInForce"]) == ("LIMIT", "1.08123", "5", "GTC")
