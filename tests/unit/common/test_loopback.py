"""A plane starts without tokens only on an address that is loopback, decided on what the address is."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, Env, ServerConfig, is_loopback


def resolver(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]
    return resolve


DNS = resolver({"127.0.0.1.nip.io": ["203.0.113.7"], "box.local": ["127.0.0.1", "::1"],
                "split.example": ["127.0.0.1", "10.1.2.3"], "empty.example": []})


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "127.9.9.9:1", "[::1]:1", "localhost:1", "LocalHost:1",
                                     "[::ffff:127.0.0.1]:1", "box.local:1"])
def test_loopback(address):
    assert is_loopback(address, resolve=DNS)


@pytest.mark.parametrize("address", [
    "127.0.0.1.nip.io:50051",   # a DNS name that starts with 127. is a name like any other
    "split.example:1",          # one resolved address reaches other hosts
    "empty.example:1", "unknown.example:1", "0.0.0.0:1", "[::]:1", ":1", "10.0.0.1:1", "[::ffff:10.0.0.1]:1",
])
def test_not_loopback(address):
    assert not is_loopback(address, resolve=DNS)


def test_a_name_is_never_judged_by_its_spelling():
    asked = []
    assert not is_loopback("127.0.0.1.nip.io:1", resolve=lambda host: asked.append(host) or ["198.51.100.1"])
    assert asked == ["127.0.0.1.nip.io"]


def test_a_nip_io_listen_address_needs_tokens():
    # The name does not resolve on an offline machine, and would resolve to wherever DNS says online:
    # either way the plane must not start open. (Resolved to loopback only, it would be allowed.)
    env = Env({"QUANTMESH_LISTEN": "127.0.0.1.nip.io.invalid:50051"})
    with pytest.raises(ConfigError, match="QUANTMESH_TOKENS must be set"):
        ServerConfig.from_env(env, service_name="control", default_port=50052)
