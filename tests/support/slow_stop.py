"""A process that takes a while to stop: on SIGTERM it writes when it was asked, waits
`seconds`, and exits 0. For the supervisor's tests of how a mesh stops.

    python -m tests.support.slow_stop OUT_FILE SECONDS
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path


def main() -> None:
    out, seconds = Path(sys.argv[1]), float(sys.argv[2])

    def stop(*_) -> None:
        out.write_text(str(time.time()))
        time.sleep(seconds)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    main()
