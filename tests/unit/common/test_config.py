from decimal import Decimal

import pytest

from services.common.auth import Role, TokenTable
from services.common.config import ConfigError, Env, PeerConfig, ServerConfig


def config(**env):
    return ServerConfig.from_env(Env(env), service_name="test", default_port=50099)


def test_defaults_listen_on_loopback_without_tokens():
    cfg = config()
    assert cfg.listen == "127.0.0.1:50099"
    assert not cfg.tokens
    assert cfg.database_url is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"QUANTMESH_LISTEN": "nonsense"}, "QUANTMESH_LISTEN"),
        ({"QUANTMESH_LISTEN": "127.0.0.1:99999"}, "QUANTMESH_LISTEN"),
        ({"QUANTMESH_GRACE_SECONDS": "soon"}, "QUANTMESH_GRACE_SECONDS"),
        ({"QUANTMESH_GRACE_SECONDS": "-1"}, "QUANTMESH_GRACE_SECONDS"),
        ({"QUANTMESH_LOG_LEVEL": "LOUD"}, "QUANTMESH_LOG_LEVEL"),
        ({"QUANTMESH_TOKENS": "abc=ops:god"}, "QUANTMESH_TOKENS"),
        ({"QUANTMESH_TOKENS": "just-a-token"}, "QUANTMESH_TOKENS"),
    ],
)
def test_bad_value_names_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        config(**env)


def test_public_listen_without_tokens_is_refused():
    with pytest.raises(ConfigError, match="QUANTMESH_TOKENS must be set"):
        config(QUANTMESH_LISTEN="0.0.0.0:50051")
    # Tokens off loopback also need encryption: TLS of our own, or a service mesh's (tests/unit/common/test_tls_config.py).
    assert config(QUANTMESH_LISTEN="0.0.0.0:50051", QUANTMESH_TOKENS="t1=ops:operator",
                  QUANTMESH_TLS_BY_SERVICE_MESH="true").tokens


def test_config_is_frozen():
    cfg = config()
    with pytest.raises(AttributeError):
        cfg.listen = "x"  # type: ignore[misc]


def test_typed_readers():
    env = Env({"A": "12", "B": "0.25", "C": "true", "D": "x, y ,", "E": "1e400"})
    assert env.int("A", 0) == 12
    assert env.decimal("B", Decimal(0)) == Decimal("0.25")
    assert env.bool("C", False) is True
    assert env.list("D") == ("x", "y")
    with pytest.raises(ConfigError, match="E"):
        env.float("E", 0.0)
    with pytest.raises(ConfigError, match="A=12 is above the maximum 5"):
        env.int("A", 0, maximum=5)


def test_peer_addresses_and_token_table():
    peers = PeerConfig.from_env(Env({"QUANTMESH_ORDER_ADDR": "order:50053", "QUANTMESH_TOKEN": "s3",
                                     "QUANTMESH_TLS_BY_SERVICE_MESH": "true"}))
    assert peers.order == "order:50053" and peers.control == "127.0.0.1:50052" and peers.token == "s3"
    table = TokenTable.parse("t1=alice:operator, t2=ma_cross:strategy")
    assert table.lookup("t1").role is Role.OPERATOR
    assert table.lookup("t2").actor == "ma_cross"
    assert table.lookup("t3") is None
