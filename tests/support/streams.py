"""Reading a server stream in tests: everything it delivers until it has been quiet for a while."""

from __future__ import annotations

import asyncio

import grpc


async def until_quiet(call, quiet: float = 2.0) -> list:
    """The events `call` delivers until none came for `quiet` seconds (or the stream ended); cancels it."""
    events = []
    try:
        while True:
            try:
                event = await asyncio.wait_for(call.read(), quiet)
            except asyncio.TimeoutError:
                return events
            if event is grpc.aio.EOF:
                return events
            events.append(event)
    finally:
        call.cancel()
