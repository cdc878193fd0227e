"""A process hosting a Control servicer whose GetFlags takes a while.

Used to check what every plane inherits from the bootstrap: SIGTERM lets an
in-flight call finish (drain) before the process stops.
"""

from __future__ import annotations

import asyncio

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.config import Env, ServerConfig
from services.common.logs import configure_logging
from services.common.runtime import host_for
from services.common.server import binding, serve


class SlowControl(control_pb2_grpc.ControlServicer):
    async def GetFlags(self, request, context):
        await asyncio.sleep(1.5)
        return control_pb2.GetFlagsResponse(snapshot=control_pb2.FlagSnapshot(version=7))


async def main() -> None:
    config = ServerConfig.from_env(Env(), service_name="slow-plane", default_port=0)
    configure_logging(config.service_name)
    host = host_for(config, [binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server,
                                     SlowControl())], policy={})
    await serve(host)


if __name__ == "__main__":
    asyncio.run(main())
