"""TLS between planes with real processes and the real grpcurl: a plane serves TLS and refuses
plaintext, mutual TLS refuses a caller without a certificate (or with a stranger's), the health
port answers probes in plaintext and serves nothing else, and a plane's own client (the control
flags follower, through open_channel) dials over mutual TLS from config alone."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cli.certs import write_certificates
from services.common.config import Env, PeerConfig
from services.common.db import create_database
from services.common.flags import FlagsFollower
from tests.support.grpcurl import grpcurl
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

CONTROL = "quantmesh.control.v1.Control"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls") / "mesh"
    write_certificates(folder, hosts=["localhost", "127.0.0.1"])
    return folder


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A certificate set from another CA: valid, but not ours."""
    folder = tmp_path_factory.mktemp("tls") / "stranger"
    write_certificates(folder, hosts=["localhost", "127.0.0.1"])
    return folder


def tls_env(certs, *, mutual: bool) -> dict[str, str]:
    return {"QUANTMESH_TLS_CERT": str(certs / "tls.crt"), "QUANTMESH_TLS_KEY": str(certs / "tls.key"),
            "QUANTMESH_TLS_CA": str(certs / "ca.crt"), "QUANTMESH_TLS_MUTUAL": "true" if mutual else "false"}


class TlsControl:
    def __init__(self, process: PlaneProcess, address: str, health: str) -> None:
        self.process, self.address, self.health = process, address, health


def start_control(database_url: str, log_dir, env: dict[str, str]) -> TlsControl:
    address, health = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    process = PlaneProcess("services.control", {
        "DATABASE_URL": database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_HEALTH_LISTEN": health,
        "QUANTMESH_TOKENS": "", "QUANTMESH_GRACE_SECONDS": "1", "QUANTMESH_HEARTBEAT_SECONDS": "0.2", **env,
    }, log_dir).start()
    # The probe's way in: plaintext health on its own port, as a Kubernetes grpc: probe would ask.
    process.wait_healthy(health, timeout=90)
    return TlsControl(process, address, health)


@pytest.fixture(scope="module")
async def tls_control(database_url, certs, tmp_path_factory):
    plane = await asyncio.to_thread(start_control, database_url, tmp_path_factory.mktemp("tls-control"),
                                    tls_env(certs, mutual=False))
    yield plane
    await asyncio.to_thread(plane.process.terminate)


@pytest.fixture(scope="module")
async def mtls_control(postgres_admin_url, certs, tmp_path_factory):
    # A database of its own: control is a single writer, and tls_control holds this module's.
    url = await create_database(postgres_admin_url, prefix="mtls")
    plane = await asyncio.to_thread(start_control, url, tmp_path_factory.mktemp("mtls-control"),
                                    tls_env(certs, mutual=True))
    yield plane
    await asyncio.to_thread(plane.process.terminate)


def test_grpcurl_over_tls_lists_and_calls_the_plane(tls_control, certs):
    listed = grpcurl("-cacert", str(certs / "ca.crt"), tls_control.address, "list")
    assert listed.returncode == 0, listed.stderr
    assert CONTROL in listed.stdout.split()
    flags = grpcurl("-cacert", str(certs / "ca.crt"), "-d", "{}", tls_control.address, f"{CONTROL}/GetFlags")
    assert flags.returncode == 0, flags.stderr
    assert "snapshot" in json.loads(flags.stdout)


async def test_a_plaintext_client_is_refused(tls_control):
    plaintext = grpcurl("-plaintext", tls_control.address, "list")
    assert plaintext.returncode != 0
    assert CONTROL not in plaintext.stdout

    async with grpc.aio.insecure_channel(tls_control.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_our_ca_is_refused(tls_control, stranger):
    untrusted = grpcurl("-cacert", str(stranger / "ca.crt"), tls_control.address, "list")
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower()


def test_the_health_port_answers_probes_in_plaintext_and_serves_nothing_else(tls_control):
    health = grpcurl("-plaintext", tls_control.health, "grpc.health.v1.Health/Check")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["status"] == "SERVING"
    other = grpcurl("-plaintext", "-d", "{}", tls_control.health, f"{CONTROL}/GetFlags")
    assert other.returncode != 0


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_control, certs, stranger):
    ca = str(certs / "ca.crt")
    anonymous = grpcurl("-cacert", ca, mtls_control.address, "list")
    assert anonymous.returncode != 0
    assert CONTROL not in anonymous.stdout
    foreign = grpcurl("-cacert", ca, "-cert", str(stranger / "tls.crt"), "-key", str(stranger / "tls.key"),
                      mtls_control.address, "list")
    assert foreign.returncode != 0
    ours = grpcurl("-cacert", ca, "-cert", str(certs / "tls.crt"), "-key", str(certs / "tls.key"),
                   mtls_control.address, "list")
    assert ours.returncode == 0, ours.stderr
    assert CONTROL in ours.stdout.split()


async def test_a_plane_client_dials_mutual_tls_from_its_config(mtls_control, certs):
    """FlagsFollower is what the order plane and every worker use: its channel comes from open_channel,
    and the address from PeerConfig carries the TLS to dial."""
    peers = PeerConfig.from_env(Env({"QUANTMESH_CONTROL_ADDR": mtls_control.address, **tls_env(certs, mutual=True)}))
    follower = FlagsFollower(peers.control, staleness_seconds=5.0)
    await follower.start()
    try:
        await follower.wait_ready(timeout=30)
        assert follower.view() is not None
    finally:
        await follower.stop()
    bare = PeerConfig.from_env(Env({"QUANTMESH_CONTROL_ADDR": mtls_control.address,
                                    "QUANTMESH_TLS_CA": str(certs / "ca.crt")}))
    assert bare.tls.certificate_chain is None  # trusts the CA but has no certificate to present
    refused = FlagsFollower(bare.control, staleness_seconds=5.0)
    await refused.start()
    try:
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            await refused.wait_ready(timeout=3)
    finally:
        await refused.stop()
