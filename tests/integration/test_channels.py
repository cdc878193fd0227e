"""open_channel presents the token on every kind of call: a server stream too (WatchFlags,
WatchExposure, StreamTicks, WatchFills are all streams), in plaintext on loopback and over TLS."""

from __future__ import annotations

import grpc
import pytest

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.cli.certs import write_certificates
from services.common.auth import current_identity
from services.common.channels import open_channel
from services.common.config import Env, PeerConfig, ServerConfig
from services.common.server import GrpcHost, binding


class Echo(control_pb2_grpc.ControlServicer):
    """Answers with the caller's actor as the note of a strategy flag: enough to see who called."""

    async def GetFlags(self, request, context):
        return control_pb2.GetFlagsResponse(snapshot=self._snapshot())

    async def WatchFlags(self, request, context):
        yield control_pb2.WatchFlagsResponse(snapshot=self._snapshot())

    @staticmethod
    def _snapshot():
        return control_pb2.FlagSnapshot(version=1, strategies=[control_pb2.StrategyFlags(
            slug="who", note=current_identity().actor)])


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls") / "mesh"
    write_certificates(folder, hosts=["127.0.0.1"])
    return folder


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
async def test_the_token_goes_with_unary_calls_and_streams(tls, certs):
    files = {"QUANTMESH_TLS_CERT": str(certs / "tls.crt"), "QUANTMESH_TLS_KEY": str(certs / "tls.key"),
             "QUANTMESH_TLS_CA": str(certs / "ca.crt")} if tls else {}
    server = ServerConfig.from_env(Env({"QUANTMESH_LISTEN": "127.0.0.1:0", "QUANTMESH_TOKENS": "s3cret=mesh:service",
                                        **files}), service_name="echo", default_port=0)
    host = GrpcHost(listen=server.listen, bindings=[binding(control_pb2, "Control",
                                                            control_pb2_grpc.add_ControlServicer_to_server, Echo())],
                    tokens=server.tokens, policy={})
    port = await host.start()
    peers = PeerConfig.from_env(Env({"QUANTMESH_CONTROL_ADDR": f"127.0.0.1:{port}", "QUANTMESH_TOKEN": "s3cret",
                                     **files}))
    try:
        for traced in (True, False):
            async with open_channel(peers.control, token=peers.token, traced=traced) as channel:
                stub = control_pb2_grpc.ControlStub(channel)
                unary = await stub.GetFlags(control_pb2.GetFlagsRequest(), timeout=10)
                streamed = [m async for m in stub.WatchFlags(control_pb2.WatchFlagsRequest(), timeout=10)]
            assert unary.snapshot.strategies[0].note == "mesh"
            assert streamed[0].snapshot.strategies[0].note == "mesh"
        async with open_channel(peers.control, traced=False) as anonymous:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                [m async for m in control_pb2_grpc.ControlStub(anonymous).WatchFlags(control_pb2.WatchFlagsRequest())]
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    finally:
        await host.stop()


async def test_a_pod_dialed_by_ip_is_checked_against_its_service_name(tmp_path):
    """The console reaches each worker pod by IP; the certificate names the headless Service."""
    named_only = tmp_path / "named"
    write_certificates(named_only, hosts=["strategy-workers"])
    files = {"QUANTMESH_TLS_CERT": str(named_only / "tls.crt"), "QUANTMESH_TLS_KEY": str(named_only / "tls.key"),
             "QUANTMESH_TLS_CA": str(named_only / "ca.crt")}
    server = ServerConfig.from_env(Env({"QUANTMESH_LISTEN": "127.0.0.1:0", **files}), service_name="w", default_port=0)
    host = GrpcHost(listen=server.listen, bindings=[binding(control_pb2, "Control",
                                                            control_pb2_grpc.add_ControlServicer_to_server, Echo())],
                    tokens=server.tokens, policy={})
    port = await host.start()
    peers = PeerConfig.from_env(Env(files))
    try:
        async with open_channel(peers.reach(f"127.0.0.1:{port}", server_name="strategy-workers")) as channel:
            await control_pb2_grpc.ControlStub(channel).GetFlags(control_pb2.GetFlagsRequest(), timeout=10)
        async with open_channel(peers.reach(f"127.0.0.1:{port}")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await control_pb2_grpc.ControlStub(channel).GetFlags(control_pb2.GetFlagsRequest(), timeout=10)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE  # 127.0.0.1 is not on the certificate
    finally:
        await host.stop()
