"""TLS settings parsed once into ServerConfig / PeerConfig, refusals with sentences naming the
variable, tokens never in plaintext off loopback, and the addresses that carry their TLS."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from services.cli.certs import write_certificates
from services.common.channels import PlaintextTokenRefused, open_channel
from services.common.config import ConfigError, Env, PeerConfig, ServerConfig, WriterLeaseSettings
from services.common.tls import ListenAddress, PeerAddress

TOKENS = "t1=ops:operator"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs") / "mesh"
    write_certificates(folder, hosts=["127.0.0.1"])
    return folder


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs") / "other"
    write_certificates(folder, hosts=["127.0.0.1"])
    return folder


def server(**env) -> ServerConfig:
    return ServerConfig.from_env(Env(env), service_name="test", default_port=50099)


def files(certs, **extra) -> dict[str, str]:
    return {"QUANTMESH_TLS_CERT": str(certs / "tls.crt"), "QUANTMESH_TLS_KEY": str(certs / "tls.key"),
            "QUANTMESH_TLS_CA": str(certs / "ca.crt"), **extra}


def test_off_loopback_a_plane_refuses_tokens_over_plaintext():
    with pytest.raises(ConfigError, match="bearer tokens would cross the network in plaintext"):
        server(QUANTMESH_LISTEN="0.0.0.0:50051", QUANTMESH_TOKENS=TOKENS)
    meshed = server(QUANTMESH_LISTEN="0.0.0.0:50051", QUANTMESH_TOKENS=TOKENS, QUANTMESH_TLS_BY_SERVICE_MESH="true")
    assert meshed.tls is None


def test_loopback_stays_plaintext_by_default():
    config = server()
    assert config.tls is None and config.listen.tls is None and config.health_listen is None


def test_certificates_make_the_plane_serve_tls_and_the_listen_address_carries_it(certs):
    config = server(QUANTMESH_LISTEN="0.0.0.0:50051", QUANTMESH_TOKENS=TOKENS,
                    QUANTMESH_HEALTH_LISTEN="0.0.0.0:50090", **files(certs))
    assert config.tls is not None and not config.tls.mutual
    assert isinstance(config.listen, ListenAddress) and config.listen == "0.0.0.0:50051"
    assert config.listen.tls is config.tls and config.listen.health == "0.0.0.0:50090"
    mutual = server(**files(certs, QUANTMESH_TLS_MUTUAL="true"))
    assert mutual.tls.mutual and mutual.tls.client_ca == (certs / "ca.crt").read_bytes()


@pytest.mark.parametrize(("env", "sentence"), [
    ({"QUANTMESH_TLS_CERT": "{certs}/tls.crt"}, "QUANTMESH_TLS_CERT and QUANTMESH_TLS_KEY go together"),
    ({"QUANTMESH_TLS_CERT": "{certs}/nope.crt", "QUANTMESH_TLS_KEY": "{certs}/tls.key"},
     "QUANTMESH_TLS_CERT: cannot read the certificate"),
    ({"QUANTMESH_TLS_CERT": "{certs}/tls.key", "QUANTMESH_TLS_KEY": "{certs}/tls.key"},
     "QUANTMESH_TLS_CERT: .* holds no PEM certificate"),
    ({"QUANTMESH_TLS_CERT": "{certs}/tls.crt", "QUANTMESH_TLS_KEY": "{other}/tls.key"},
     "QUANTMESH_TLS_KEY: the key in .* is not the key of the certificate"),
    ({"QUANTMESH_TLS_CERT": "{certs}/tls.crt", "QUANTMESH_TLS_KEY": "{certs}/tls.key",
      "QUANTMESH_TLS_MUTUAL": "true"}, "QUANTMESH_TLS_MUTUAL=true needs QUANTMESH_TLS_CA"),
    ({"QUANTMESH_TLS_MUTUAL": "true"}, "QUANTMESH_TLS_MUTUAL=true needs QUANTMESH_TLS_CERT"),
    ({"QUANTMESH_TLS_CERT": "{certs}/tls.crt", "QUANTMESH_TLS_KEY": "{certs}/tls.key",
      "QUANTMESH_TLS_CA": "{certs}/missing.crt"}, "QUANTMESH_TLS_CA: cannot read"),
    ({"QUANTMESH_HEALTH_LISTEN": "probe"}, "QUANTMESH_HEALTH_LISTEN='probe' is not host:port"),
])
def test_a_bad_tls_setting_stops_the_plane_with_a_sentence(certs, other, env, sentence):
    with pytest.raises(ConfigError, match=sentence):
        server(**{k: v.format(certs=certs, other=other) for k, v in env.items()})


def test_an_expired_certificate_is_refused(tmp_path):
    old = tmp_path / "old"
    write_certificates(old, hosts=["127.0.0.1"], days=1, now=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(ConfigError, match="QUANTMESH_TLS_CERT: the certificate in .* expired on 2020-01-01 23:55 UTC"):
        server(**files(old))


def test_peers_are_dialed_over_tls_with_the_plane_certificate_when_a_ca_is_trusted(certs):
    peers = PeerConfig.from_env(Env({"QUANTMESH_ORDER_ADDR": "order:50053", "QUANTMESH_TOKEN": "s3", **files(certs)}))
    for address in (peers.market_data, peers.control, peers.order, peers.position):
        assert isinstance(address, PeerAddress) and address.tls is peers.tls
    assert peers.order == "order:50053"
    assert peers.tls.ca == (certs / "ca.crt").read_bytes()
    assert peers.tls.certificate_chain == (certs / "tls.crt").read_bytes()
    worker = peers.reach("10.0.0.7:50060")
    assert worker.tls is peers.tls and worker == "10.0.0.7:50060"


def test_a_token_for_a_peer_off_loopback_needs_tls_or_a_service_mesh():
    with pytest.raises(ConfigError, match="QUANTMESH_ORDER_ADDR='order:50053' is not loopback and QUANTMESH_TOKEN"):
        PeerConfig.from_env(Env({"QUANTMESH_ORDER_ADDR": "order:50053", "QUANTMESH_TOKEN": "s3"}))
    assert PeerConfig.from_env(Env({"QUANTMESH_ORDER_ADDR": "order:50053"})).tls is None  # no token, nothing to leak
    meshed = PeerConfig.from_env(Env({"QUANTMESH_ORDER_ADDR": "order:50053", "QUANTMESH_TOKEN": "s3",
                                      "QUANTMESH_TLS_BY_SERVICE_MESH": "true"}))
    assert meshed.order.encrypted_by_mesh


async def test_open_channel_never_sends_a_token_off_loopback_in_plaintext(certs):
    with pytest.raises(PlaintextTokenRefused, match="refusing to send a bearer token to order:50053 in plaintext"):
        open_channel("order:50053", token="s3")
    for allowed in ("127.0.0.1:50053", "localhost:50053", PeerAddress("order:50053", encrypted_by_mesh=True)):
        await open_channel(allowed, token="s3").close()
    tls = PeerConfig.from_env(Env(files(certs))).reach("order:50053")
    await open_channel(tls, token="s3").close()


def test_addresses_are_frozen_and_survive_pickling(certs):
    address = PeerConfig.from_env(Env(files(certs))).control
    with pytest.raises(AttributeError):
        address.tls = None
    copy = pickle.loads(pickle.dumps(address))
    assert copy == address and copy.tls == address.tls
    listen = server(**files(certs)).listen
    assert pickle.loads(pickle.dumps(listen)).tls == listen.tls


def test_writer_lease_settings_are_read_once_with_the_server_config():
    config = server(QUANTMESH_WRITER_STANDBY="true", QUANTMESH_WRITER_LEASE_SECONDS="6")
    assert config.writer_lease == WriterLeaseSettings(standby=True, lease_seconds=6.0)
    assert config.writer_lease.fence_seconds < config.writer_lease.lease_seconds
    with pytest.raises(ConfigError, match="QUANTMESH_WRITER_LEASE_SECONDS=0.5 is below the minimum 1.0"):
        server(QUANTMESH_WRITER_LEASE_SECONDS="0.5")
