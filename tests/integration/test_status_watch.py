"""`quantmesh status --watch` redraws the status until Ctrl-C, which ends it quietly with exit code 0;
a plane that does not answer is shown DOWN, not a traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT


def test_watch_redraws_until_ctrl_c(tmp_path):
    nobody = f"127.0.0.1:{free_port()}"
    (tmp_path / "mesh.json").write_text(json.dumps({"planes": {"control": nobody}, "workers": {}}))
    watching = subprocess.Popen([sys.executable, "-m", "services.cli", "status", "--data-dir", str(tmp_path),
                                 "--watch", "0.5"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    time.sleep(5)  # start-up and a few redraws
    assert watching.poll() is None, "--watch ended by itself"
    watching.send_signal(signal.SIGINT)
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    assert out.count(f"control        {nobody:<18} DOWN (UNAVAILABLE)") >= 2, out
    assert "1 not answering  (every 0.5 s; Ctrl-C to stop)" in out and "Traceback" not in err
