"""The README's main command as a user runs it: `quantmesh up`, `quantmesh status`, a crash, Ctrl-C.

Runs on the embedded PostgreSQL (no DATABASE_URL), on the default loopback ports, with one
strategy pair so it stays light.
"""

from __future__ import annotations

import os
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
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    log_path = tmp_path / "up.out"
    with log_path.open("w") as out:
        up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir),
                               "--strategies", "ma_cross", "--speed", "120x"],
                              cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "quantmesh is up." in log_path.read_text(), 180, "the banner")
        banner = log_path.read_text()
        assert "grpcurl -plaintext 127.0.0.1:50052 quantmesh.control.v1.Control/GetFlags" in banner
        assert "ma_cross.exit" in banner and (data_dir / "mesh.json").exists()

        status = subprocess.run([sys.executable, "-m", "services.cli", "status", "--data-dir", str(data_dir)],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("SERVING") == 4
        assert "ma_cross.entry" in status.stdout and "ma_cross.exit" in status.stdout

        position = wait_for(lambda: plane_process("services.position", data_dir), 10, "the position process")
        position.kill()  # a crash: the supervisor must restart it and say so
        wait_for(lambda: "position restarted" in log_path.read_text(), 60, "the restart to be logged")
        assert "position exited with code -9; restart #1" in log_path.read_text()
        wait_for(lambda: subprocess.run([sys.executable, "-m", "services.cli", "status", "--data-dir",
                                         str(data_dir)], cwd=PROJECT_ROOT, capture_output=True,
                                        timeout=60).returncode == 0, 60, "every plane SERVING again")
    finally:
        up.send_signal(signal.SIGINT)  # Ctrl-C
        code = up.wait(90)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert output.rstrip().endswith("stopped.")
    for module in ("services.control", "services.market_data", "services.order", "services.position",
                   "services.strategies"):
        assert plane_process(module, data_dir) is None, f"{module} still running after Ctrl-C"
