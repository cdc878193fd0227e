"""The strategy workers, each asked Strategy.GetStatus: its state and its last decision.

Workers are configured by address. A name that resolves to several addresses (a headless
Service in Kubernetes) stands for every one of them, and each worker says which strategy and
role it runs, so the console needs no list of strategies of its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.common.channels import open_channel
from services.common.config import Resolver, resolve_addresses


@dataclass(frozen=True, slots=True)
class WorkerReport:
    address: str
    status: strategy_pb2.GetStatusResponse | None  # None when it did not answer
    problem: str = ""


class Workers:
    def __init__(self, addresses: tuple[str, ...], *, token: str | None,
                 reach: Callable[..., str] = lambda address, server_name=None: address,
                 timeout_seconds: float = 2.0, resolve: Resolver = resolve_addresses) -> None:
        self._configured = addresses
        self._token = token
        self._reach = reach  # gives an address the TLS the planes are dialed with (PeerConfig.reach)
        self._timeout = timeout_seconds
        self._resolve = resolve
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def reports(self) -> list[WorkerReport]:
        found: dict[str, str | None] = {}
        for configured in self._configured:
            found.update(await self._expand(configured))
        for gone in set(self._channels) - set(found):  # a pod replaced behind a headless Service
            await self._channels.pop(gone).close()
        return list(await asyncio.gather(*(self._report(address, name) for address, name in found.items())))

    async def _expand(self, configured: str) -> list[tuple[str, str | None]]:
        """(address to dial, the name its certificate carries when the address is a resolved IP)."""
        host, _, port = configured.rpartition(":")
        if _is_ip(host.strip("[]")) or host == "localhost":
            return [(configured, None)]
        try:
            found = await asyncio.to_thread(self._resolve, host)
        except OSError:
            return [(configured, None)]  # unresolvable now: reported as down under its configured name
        unique = sorted(set(found))
        return [(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}", host) for ip in unique] or [(configured, None)]

    async def _report(self, address: str, server_name: str | None) -> WorkerReport:
        channel = self._channels.get(address)
        if channel is None:
            try:
                channel = open_channel(self._reach(address, server_name=server_name), token=self._token,
                                       traced=False)
            except ValueError as exc:  # e.g. a token that would cross the network in plaintext
                return WorkerReport(address, None, str(exc))
            self._channels[address] = channel
        try:
            status = await strategy_pb2_grpc.StrategyStub(channel).GetStatus(strategy_pb2.GetStatusRequest(),
                                                                              timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            return WorkerReport(address, None, f"{exc.code().name}: {exc.details() or ''}".rstrip(": "))
        return WorkerReport(address, status)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
