"""A process whose collector is down still exits within seconds: the exporter times out quickly
and the flush at exit is bounded (about 1.3 s here; 7 s and more with the SDK's defaults, a
batch at a time)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT

SCRIPT = textwrap.dedent("""
    import sys
    from services.common.telemetry import setup_tracing
    provider = setup_tracing("exit-test", sys.argv[1], install_global=False)
    tracer = provider.get_tracer("exit-test")
    for n in range(50):
        with tracer.start_as_current_span(f"work {n}"):
            pass
""")


def test_a_process_with_no_collector_listening_exits_within_seconds():
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    began = time.monotonic()
    run = subprocess.run([sys.executable, "-c", SCRIPT, nowhere], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    took = time.monotonic() - began
    assert run.returncode == 0, run.stderr
    assert took < 4, f"exit took {took:.1f} s with no collector listening"


def test_an_unreachable_collector_is_reported_once_a_minute_not_every_batch():
    import logging

    from services.common.telemetry import OncePerInterval

    now = [0.0]
    quiet = OncePerInterval(60, clock=lambda: now[0])

    def passes(level: int, at: float) -> bool:
        now[0] = at
        return quiet.filter(logging.LogRecord("otlp", level, __file__, 1, "export failed", None, None))

    assert not passes(logging.WARNING, 0)  # "retrying": the failure that follows says it
    assert [passes(logging.ERROR, t) for t in (1, 6, 11, 59, 62, 70)] == [True, False, False, False, True, False]
