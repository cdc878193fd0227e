"""Every curl line in docs/console.md names a route the console serves, and what it sends is
accepted by the console's own checks (the same ones a real request meets)."""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from multidict import MultiDict

from services.console import requests
from services.console.api import Api
from services.console.web import Pages
from tests.support.postgres import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "console.md"
QUERIES = {"/api/orders": requests.order_query, "/api/fills": requests.fill_query,
           "/api/audit": requests.audit_query, "/api/equity": requests.equity_query}
BODIES = {"/api/cancel-open": requests.sweep, "/api/flatten": requests.sweep, "/api/analysis/freeze": requests.freeze}


def curl_lines():
    for number, line in enumerate(DOC.read_text().splitlines(), start=1):
        if line.strip().startswith("curl "):
            yield pytest.param(line.strip(), id=f"console.md:{number}")


def routes() -> set[tuple[str, str]]:
    pages = Pages(gatekeeper=None, sessions=None, live=None, cookies=None)
    app = web.Application()
    app.add_routes([*pages.routes(), *Api(planes=None, live=None).routes()])
    return {(route.method, route.resource.canonical) for route in app.router.routes()}


def test_the_doc_has_a_curl_line_for_every_api_route():
    documented = {urlsplit(shlex.split(line.values[0].replace("$CONSOLE", "http://console"))[-1]).path
                  for line in curl_lines()}
    served = {re.sub(r"\{order_id\}", "ord-000000000042", path) for _, path in routes() if path.startswith("/api/")}
    assert served <= documented, f"no curl line for {sorted(served - documented)}"


@pytest.mark.parametrize("line", list(curl_lines()))
def test_each_curl_line_is_accepted(line):
    words = shlex.split(line.replace("$CONSOLE", "http://console"))
    url = urlsplit(next(w for w in words if w.startswith("http://console")))
    body = words[words.index("-d") + 1] if "-d" in words else None
    method = "POST" if body is not None else "GET"
    served = routes()
    path = url.path if (method, url.path) in served else re.sub(r"/ord-\d+$", "/{order_id}", url.path)
    assert (method, path) in served, f"{method} {url.path} is not a route of the console"
    if body is not None:
        assert "Content-Type: application/json" in words
        check = BODIES.get(url.path, requests.strategy_control)
        check(json.loads(body))
    if url.path in QUERIES:
        QUERIES[url.path](MultiDict(parse_qsl(url.query)))
    if path == "/api/orders/{order_id}":
        requests.order_id(url.path.rsplit("/", 1)[-1])
