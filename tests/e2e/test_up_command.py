"""The README's main command as a user runs it: `quantmesh up`, `quantmesh status`, the tape of orders
and flag changes (in up's own output and with `status --follow`), a crash, Ctrl-C.

Runs on the embedded PostgreSQL (no DATABASE_URL), on the default loopback ports, with one
strategy pair so it stays light.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.support.postgres import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def plane_process(module: str, data_dir) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "-m" in cmdline and module in cmdline and \
                    (proc.info["environ"] or {}).get("QUANTMESH_DATA_DIR") == str(data_dir):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def test_up_status_crash_restart_and_ctrl_c(tmp_path):
    data_dir = tmp_path / "qm"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"QUANTMESH_CLI": "./qm"}
    log_path = tmp_path / "up.out"
    with log_path.open("w") as out:
        up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir),
                               "--strategies", "ma_cross", "--speed", "120x"],
                              cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    follower = None
    try:
        wait_for(lambda: "quantmesh is up." in log_path.read_text(), 180, "the banner")
        banner = log_path.read_text()
        assert "grpcurl -plaintext 127.0.0.1:50052 quantmesh.control.v1.Control/GetFlags" in banner
        assert "ma_cross.exit" in banner and (data_dir / "mesh.json").exists()
        assert "./qm status " in banner and "./qm status --follow" in banner  # as the user ran it (env below)

        status = subprocess.run([sys.executable, "-m", "services.cli", "status", "--data-dir", str(data_dir)],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("SERVING") == 5  # the four planes and analysis
        assert "ma_cross.entry" in status.stdout and "ma_cross.exit" in status.stdout

        follow_path = tmp_path / "follow.out"
        with follow_path.open("w") as out:
            follower = subprocess.Popen([sys.executable, "-m", "services.cli", "status", "--data-dir", str(data_dir),
                                         "--follow"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "following the mesh's orders" in follow_path.read_text(), 30, "status --follow to start")
        for action, reason in (("lock", "up drill"), ("unlock", "up drill over")):
            flags = subprocess.run([sys.executable, "-m", "services.cli", "flags", action, "--reason", reason],
                                   cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
            assert flags.returncode == 0, flags.stderr
        for where in (log_path, follow_path):
            wait_for(lambda: 'global lock ON (open orders canceled) by anonymous: "up drill"' in where.read_text()
                     and 'global lock off by anonymous: "up drill over"' in where.read_text(), 30,
                     f"the lock and unlock lines in {where.name}")
        # The strategy trades within a few minutes of market time: its orders and fills are told.
        wait_for(lambda: re.search(r"placed    ma_cross\.entry +(BUY|SELL) 10,000 USD_JPY market", log_path.read_text())
                 and "filled    ma_cross" in log_path.read_text(), 180, "an order placed and filled on the tape")
        follower.send_signal(signal.SIGINT)
        assert follower.wait(30) == 0

        position = wait_for(lambda: plane_process("services.position", data_dir), 10, "the position process")
        position.kill()  # a crash: the supervisor must restart it and say so
        wait_for(lambda: "position restarted" in log_path.read_text(), 60, "the restart to be logged")
        assert "position exited with code -9; restart #1" in log_path.read_text()
        wait_for(lambda: subprocess.run([sys.executable, "-m", "services.cli", "status", "--data-dir",
                                         str(data_dir)], cwd=PROJECT_ROOT, capture_output=True,
                                        timeout=60).returncode == 0, 60, "every plane SERVING again")
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
        up.send_signal(signal.SIGINT)  # Ctrl-C
        code = up.wait(90)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    stopped = re.search(r"stopped in ([0-9.]+) s\.$", output.rstrip())
    assert stopped and float(stopped.group(1)) < 15, output[-1000:]
    for module in ("services.control", "services.market_data", "services.order", "services.position",
                   "services.strategies"):
        assert plane_process(module, data_dir) is None, f"{module} still running after Ctrl-C"
