"""One trace per decision: from the candle that closed to the position the fill moved.

Every plane exports its spans over OTLP to the in-process receiver of the session's
mesh (tests/e2e/conftest.py). The trace of a filled entry must hold, with these
parent links and service names (docs/tracing.md):

  market_data  market_data.close_candle
  strategy.<slug>.entry  strategy.decide <slug>.entry      parent: close_candle (via StreamCandles' trace context)
      strategy.<slug>.entry  /quantmesh.order.v1.Order/Submit  (client)
          order  /quantmesh.order.v1.Order/Submit  (server)  ancestor: decide
              order  order.submit
                  order  broker.submit                          the paper venue's acknowledgement
      order  order.fill                                         parent: decide (via the intent's trace context)
          position  position.apply_fill                         parent: order.fill (via WatchFills' trace context)
"""

from __future__ import annotations

import asyncio
import time

import pytest

from opentelemetry.proto.trace.v1 import trace_pb2

pytestmark = pytest.mark.e2e

SERVER = trace_pb2.Span.SpanKind.SPAN_KIND_SERVER
SUBMIT = "/quantmesh.order.v1.Order/Submit"


def complete_chain(receiver, applied):
    """The named spans of `applied`'s trace, or None while some are still on their way."""
    fill = receiver.span(applied.parent_id)
    decide = receiver.span(fill.parent_id) if fill else None
    candle = receiver.span(decide.parent_id) if decide else None
    if not (fill and decide and candle):
        return None
    trace = receiver.trace(applied.trace_id)
    submits = [s for s in trace if s.name == SUBMIT and s.kind == SERVER
               and decide in receiver.ancestors(s)]
    brokers = [s for s in trace if s.name == "broker.submit" and any(a in submits for a in receiver.ancestors(s))]
    if not (submits and brokers):
        return None
    return {"candle": candle, "decide": decide, "submit": submits[0], "broker": brokers[0], "fill": fill,
            "applied": applied}


async def test_one_trace_joins_candle_decision_submit_broker_fill_and_position(mesh, otlp_receiver):
    deadline = time.monotonic() + 150
    chain = None
    while chain is None:
        for applied in [s for s in otlp_receiver.spans() if s.name == "position.apply_fill"]:
            found = complete_chain(otlp_receiver, applied)
            if found and found["decide"].name.endswith(".entry"):
                chain = found
                break
        else:
            if time.monotonic() > deadline or mesh.dead():
                names = sorted({(s.service, s.name) for s in otlp_receiver.spans()})
                pytest.fail(f"no complete trace from a closed candle to an applied fill; spans seen: {names}\n"
                            f"dead: {mesh.dead()}\n{mesh.tails()}")
            await asyncio.sleep(1)

    candle, decide, submit, broker, fill, applied = (chain[k] for k in
                                                     ("candle", "decide", "submit", "broker", "fill", "applied"))
    assert len({s.trace_id for s in chain.values()}) == 1, "the spans are not one trace"

    # (1) a candle closed in market_data
    assert (candle.service, candle.name) == ("market_data", "market_data.close_candle")
    assert candle.attributes.get("timeframe") in ("S5", "M1", "M5", "H1", "H4", "D1")
    # (2) the worker's decision is the candle's child, joined through StreamCandles' trace context
    slug = decide.attributes["strategy.slug"]
    assert decide.service == f"strategy.{slug}.entry"
    assert decide.name == f"strategy.decide {slug}.entry"
    assert decide.parent_id == candle.span_id
    # (3) the order plane's Submit server span descends from the decision (through the gRPC call)
    assert submit.service == "order"
    client = otlp_receiver.span(submit.parent_id)
    assert client is not None and client.service == decide.service and client.parent_id == decide.span_id
    # (4) the broker call is part of that submit's work
    assert broker.service == "order"
    submit_work = otlp_receiver.span(broker.parent_id)
    assert submit_work.name == "order.submit" and submit_work.parent_id == submit.span_id
    assert submit_work.attributes.get("order.strategy") == slug
    # (5) the fill, in the order plane, joined to the decision through the intent
    assert (fill.service, fill.name) == ("order", "order.fill")
    # (6) the position update, in the position plane, a child of the fill via WatchFills' trace context
    assert (applied.service, applied.name) == ("position", "position.apply_fill")
    assert applied.parent_id == fill.span_id
    assert otlp_receiver.ancestors(applied)[:3] == [fill, decide, candle]

    # Causality on one machine's clock: each step starts after the one that caused it.
    assert candle.start_ns <= decide.start_ns <= submit.start_ns <= broker.start_ns <= broker.end_ns <= submit.end_ns
    assert fill.start_ns >= decide.start_ns and applied.start_ns >= fill.start_ns
