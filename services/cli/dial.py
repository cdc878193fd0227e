"""How the CLI reaches a running mesh: the way the planes reach each other (services/common/channels.py).

So `quantmesh status`, `flags`, `audit`, `flatten` and `cancel-open` dial TLS when the environment
configures it (QUANTMESH_TLS_CA, and QUANTMESH_TLS_CERT/KEY for mutual TLS), present QUANTMESH_TOKEN,
and never send that token off loopback in plaintext.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

import grpc

from services.common.channels import PlaintextTokenRefused, open_channel
from services.common.config import ConfigError, Env, PeerConfig


@dataclass(frozen=True, slots=True)
class Dialer:
    peers: PeerConfig
    token: str | None

    @classmethod
    def from_env(cls, env: Env, *, token: str | None = None) -> "Dialer":
        """Raises ConfigError (a sentence naming the variable) for bad TLS or address settings."""
        peers = PeerConfig.from_env(env)
        return cls(peers=peers, token=token or peers.token)

    def channel(self, address: str) -> grpc.aio.Channel:
        """A channel to `address` (any plane or worker), over TLS when configured, with the token."""
        return open_channel(self.peers.reach(str(address)), token=self.token, traced=False)


#: The CLI's name for each plane in its error sentences.
_CALLED = {"control": "control", "order": "the order plane", "position": "the position plane",
           "market_data": "market data"}


def call_plane(plane: str, address: str | None, work: Callable[[grpc.aio.Channel], Awaitable[None]],
               err: TextIO) -> int:
    """Runs `work(channel)` against `plane` (at `address`, else where config says it listens).
    Exit code: 0; 1 with the server's sentence for a refusal or a plane that does not answer;
    2 for a setting that stops the CLI before it calls (bad TLS files, a token bound for plaintext)."""
    try:
        dialer = Dialer.from_env(Env())
    except ConfigError as exc:
        print(f"error: {exc}", file=err)
        return 2
    address = address or str(getattr(dialer.peers, plane))
    called = _CALLED.get(plane, plane)

    async def call() -> None:
        async with dialer.channel(address) as channel:
            await work(channel)

    try:
        asyncio.run(call())
    except PlaintextTokenRefused as exc:
        print(f"error: {exc}", file=err)
        return 2
    except grpc.RpcError as exc:
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            print(f"error: {called} at {address} did not answer ({code.name}): {exc.details()}", file=err)
        else:
            print(f"error ({code.name}) from {called} at {address}: {exc.details()}", file=err)
        return 1
    return 0
