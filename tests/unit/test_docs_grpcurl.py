"""Every grpcurl line in the README and docs/ names a real method on the right port, and its
-d payload parses (strictly: no unknown field, no bad enum name) as that method's request,
the way grpcurl itself would parse it with the server's reflection. Fast and offline; the
real grpcurl runs every line against a live mesh in tests/docs/test_grpcurl_live.py."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from google.protobuf import json_format, symbol_database
from google.protobuf.message_factory import GetMessageClass

from quantmesh.analysis.v1 import analysis_pb2  # noqa: F401 - registers the descriptors
from quantmesh.control.v1 import control_pb2  # noqa: F401
from quantmesh.market_data.v1 import market_data_pb2  # noqa: F401
from quantmesh.order.v1 import order_pb2  # noqa: F401
from quantmesh.position.v1 import position_pb2  # noqa: F401
from quantmesh.strategy.v1 import strategy_pb2  # noqa: F401
from services.common.config import DEFAULT_PORTS
from tests.support.grpcurl import doc_grpcurl_lines

PLANE_OF_SERVICE = {"quantmesh.market_data.v1.MarketData": "market_data", "quantmesh.control.v1.Control": "control",
                    "quantmesh.order.v1.Order": "order", "quantmesh.position.v1.Position": "position",
                    "quantmesh.analysis.v1.Analysis": "analysis"}


@pytest.mark.parametrize("line", [pytest.param(line.text, id=str(line)) for line in doc_grpcurl_lines()])
def test_grpcurl_line_parses_as_its_request(line):
    words = shlex.split(line)
    payload = words[words.index("-d") + 1] if "-d" in words else None
    target = words[-1]
    address = next((w for w in words if re.fullmatch(r"[\w.-]+:\d+", w)), None)
    assert address is not None, "no host:port in the line"
    if target in ("list",) or words[-2] == "describe" or target.startswith(("grpc.", "quantmesh.")) and "/" not in target:
        return  # list / describe lines need no payload
    service, _, method = target.partition("/")
    if service.startswith("grpc.health"):
        return
    pool = symbol_database.Default().pool
    descriptor = pool.FindServiceByName(service).FindMethodByName(method)
    assert descriptor is not None, f"{target} is not a method"
    messages = _stream_of_json(payload or "{}") if descriptor.client_streaming else [payload or "{}"]
    assert messages, "a streaming call with no message"
    for text in messages:  # grpcurl sends each JSON object of -d as one message of a client stream
        json_format.Parse(text, GetMessageClass(descriptor.input_type)())  # raises on unknown fields or enum names
    plane = PLANE_OF_SERVICE.get(service)
    if plane is not None and address.startswith("127.0.0.1"):
        assert address.endswith(f":{DEFAULT_PORTS[plane]}"), f"{service} listens on :{DEFAULT_PORTS[plane]}"


def _stream_of_json(text: str) -> list[str]:
    """The JSON objects of a -d payload, one after another as grpcurl reads them."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        _, end = decoder.raw_decode(text, at)
        found.append(text[at:end])
        at = end
    return found
