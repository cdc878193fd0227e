"""`python -m services.console`: the operator's console, a web page and JSON API over the planes' contracts.

It holds no trading state of its own: flags, positions, orders, fills, equity and the audit
trail are read from the planes each time (or followed on their streams), and every action is a
Control (or Order) call with the console's own token and the operator's name in the reason.

    python -m services.console                  serve (QUANTMESH_CONSOLE_LISTEN, default 127.0.0.1:8470)
    python -m services.console hash-password    print a hash for QUANTMESH_CONSOLE_USERS
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys

from aiohttp import web

from services.common.config import ConfigError, Env
from services.common.exposure import ExposureFollower
from services.common.flags import FlagsFollower
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import host_for
from services.common.server import serve
from services.common.telemetry import setup_tracing
from services.console.alerts import AlertRules, WebhookNotifier
from services.console.config import ConsoleConfig
from services.console.live import LiveBoard
from services.console.operators import Gatekeeper, hash_secret
from services.console.planes import Planes
from services.console.sessions import Sessions
from services.console.web import CookiePolicy, build_app
from services.console.workers import Workers

log = logging.getLogger("services.console")


async def run(config: ConsoleConfig) -> None:
    metrics = await start_metrics("console")
    token = config.peers.token
    planes = Planes(config.peers)
    workers = Workers(config.workers, token=token, reach=config.peers.reach)
    flags = FlagsFollower(config.peers.control, token=token)
    exposure = ExposureFollower(config.peers.position, token=token)
    notifier = WebhookNotifier(config.alerts, metrics.registry)
    live = LiveBoard(planes=planes, workers=workers, flags=flags, exposure=exposure,
                     alerts=AlertRules(notifier, config.alerts), poll_seconds=config.poll_seconds)
    lifetime = config.session_minutes * 60
    app = build_app(planes=planes, live=live, gatekeeper=Gatekeeper(config.operators),
                    sessions=Sessions(lifetime_seconds=lifetime), hosts=config.hosts,
                    cookies=CookiePolicy(secure=config.secure_cookies, max_age_seconds=lifetime))
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    http_host, _, http_port = config.http_listen.rpartition(":")
    try:
        await web.TCPSite(runner, http_host.strip("[]"), int(http_port)).start()
    except OSError as exc:
        print(f"console: QUANTMESH_CONSOLE_LISTEN={config.http_listen!r} cannot be served ({exc.strerror})",
              file=sys.stderr)
        raise SystemExit(2) from None
    # The gRPC side serves only health and reflection: probes and `quantmesh up` ask it like any plane.
    host = host_for(config.server, [], policy={})
    metrics.watch(host, flags=flags)
    await flags.start()
    await exposure.start()
    await live.start()
    log.info("console serving", extra={"url": f"http://{config.http_listen}/", "login_required": config.login_required,
                                       "operators": len(config.operators.entries)})

    async def on_stop() -> None:
        await live.stop()  # ends the pages' event streams first, so the web server drains at once
        await runner.cleanup()
        await flags.stop()
        await exposure.stop()
        await workers.close()
        await planes.close()
        await notifier.close()
        await metrics.close()

    await serve(host, on_stop=on_stop)


def hash_password() -> int:
    first = getpass.getpass("secret: ")
    if first != getpass.getpass("again: "):
        print("the two entries differ; nothing printed", file=sys.stderr)
        return 1
    if len(first) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 1
    print(hash_secret(first))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["hash-password"]:
        return hash_password()
    if args:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        config = ConsoleConfig.from_env(Env())
    except ConfigError as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.server.service_name, config.server.log_level)
    setup_tracing(config.server.service_name, config.server.otel_endpoint)
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
