"""Every RPC of every plane takes 1,000 generated hostile requests (and garbage bytes) without
breaking: no UNKNOWN, no INTERNAL, the plane keeps SERVING, and the reads still answer after.

QUANTMESH_FUZZ_EXAMPLES raises the count per RPC (bench/fuzz_rpcs.py runs more and prints them).
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz.mesh import reads_still_work
from tests.fuzz.rpcs import every_rpc, fuzz, serving

EXAMPLES = int(os.environ.get("QUANTMESH_FUZZ_EXAMPLES", "1000"))


@pytest.mark.parametrize("rpc", every_rpc(), ids=str)
def test_hostile_requests_never_break_a_plane(fuzz_mesh, rpc):
    channel = fuzz_mesh.channels[rpc.plane]
    tally = fuzz(channel, rpc, EXAMPLES)
    assert tally.sent >= EXAMPLES, f"only {tally.sent} requests were generated for {rpc}"
    assert serving(channel) and serving(channel, rpc.service), f"{rpc.plane} is not SERVING after fuzzing {rpc}"


def test_after_the_fuzzing_every_plane_serves_reads_answer_and_nothing_failed_inside(fuzz_mesh):
    assert fuzz_mesh.mesh.dead() == {}
    assert all(fuzz_mesh.all_serving().values()), fuzz_mesh.all_serving()
    reads_still_work(fuzz_mesh)
    # A refusal that arrived after a stream's short wait was not seen by the client; the planes'
    # logs hold every internal error, whenever it happened.
    assert fuzz_mesh.internal_errors() == []
