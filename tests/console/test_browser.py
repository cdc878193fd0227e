"""The console in a real browser (Debian's chromium, headless, driven by Playwright) over a real mesh.

An operator signs in, turns a strategy's entries off and sees its ENTRY worker pause and the
audit row appear; pulls the kill switch and sees a manual Submit refused; sees a position and
the equity curve change after a fill. Each test keeps a screenshot under
.quantmesh/test-output/console/ and prints its path.
"""

from __future__ import annotations

import os
import re
import shutil
from decimal import Decimal

import grpc
import pytest
from playwright.async_api import async_playwright, expect

from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2
from quantmesh.strategy.v1 import strategy_pb2
from tests.console.harness import DESK, INSTRUMENT, OPERATOR, SCREENSHOTS, STRATEGY, eventually, manual_intent

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("QUANTMESH_CHROMIUM", "/usr/bin/chromium")
#: Debian's chromium, headless, with nothing that reaches for the network on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SECONDS = 1000  # Playwright counts in milliseconds


@pytest.fixture(scope="module")
async def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser, console_mesh):
    """A fresh browser profile, signed in as alice through the sign-in form."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    await page.goto(console_mesh.url)
    assert page.url.endswith("/login"), "an unsigned browser must land on the sign-in page"
    await page.fill('input[name="name"]', OPERATOR[0])
    await page.fill('input[name="password"]', OPERATOR[1])
    await page.click('button[type="submit"]')
    await expect(page.locator("#operator")).to_have_text("alice", timeout=10 * SECONDS)
    await expect(page.locator("#connection")).to_have_text("live", timeout=10 * SECONDS)
    yield page
    await context.close()
    assert not problems, f"the page reported errors: {problems}"


async def keep_screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


async def confirm(page, reason: str) -> None:
    await expect(page.locator("#confirm")).to_be_visible()
    await page.fill("#confirm-reason", reason)
    await page.click("#confirm-ok")
    await expect(page.locator("#confirm")).to_be_hidden(timeout=10 * SECONDS)


async def test_turning_a_strategys_entries_off_pauses_its_entry_worker_and_is_audited(page, planes, console_mesh):
    slug = STRATEGY.slug
    await page.click('nav a[href="#control"]')
    row = page.locator(f'#strategies-table tr[data-strategy="{slug}"]')
    await expect(row).to_be_visible(timeout=30 * SECONDS)
    button = row.locator('button[data-switch="entry_enabled"]')
    await expect(button).to_have_text("Turn entries off")
    await button.click()
    # A reason is required: an empty one keeps the dialog open with a sentence.
    await page.click("#confirm-ok")
    await expect(page.locator("#confirm")).to_be_visible()
    await confirm(page, "e2e: pause entries before the news")
    await expect(button).to_have_text("Turn entries on", timeout=10 * SECONDS)

    seen = []

    async def entry_worker_paused():
        await planes.ticks.step()  # closes an S5 candle: the worker decides, and sees its flag off
        status = await planes.workers["entry"].GetStatus(strategy_pb2.GetStatusRequest())
        seen[:] = [status]
        return status if status.state == strategy_pb2.WORKER_STATE_PAUSED else None

    try:
        status = await eventually(entry_worker_paused, timeout=90, what="the ENTRY worker to pause", mesh=console_mesh)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast GetStatus of the ENTRY worker: {seen}") from None
    assert status.last_decision.reason.startswith("guard.strategy_entry_disabled")
    exit_status = await planes.workers["exit"].GetStatus(strategy_pb2.GetStatusRequest())
    assert exit_status.state != strategy_pb2.WORKER_STATE_PAUSED, "only the ENTRY worker's flag is off"

    await page.click('nav a[href="#overview"]')
    worker = page.locator(f'#workers-table tr[data-worker="{slug}.entry"]')
    await expect(worker.locator("td.state")).to_have_text("PAUSED", timeout=15 * SECONDS)
    await expect(worker.locator("td.decision")).to_contain_text("guard.strategy_entry_disabled")
    await keep_screenshot(page, "entries-off-overview")

    await page.click('nav a[href="#audit"]')
    audit = page.locator(f'#audit-table tr[data-flag="entry_enabled"][data-strategy="{slug}"]').first
    await expect(audit).to_contain_text("alice (via console)")
    # "(absent)" when this change created the strategy's flags (nobody had switched it before).
    await expect(audit.locator("td.change")).to_have_text(re.compile(r"^(true|\(absent\)) → false$"))
    await expect(audit.locator("td.reason")).to_have_text("alice@console: e2e: pause entries before the news")
    # The audit filters: by operator and flag it stays; by another flag it goes.
    await page.fill('#audit-filter input[name="actor"]', "alice")
    await page.select_option('#audit-filter select[name="flag"]', "entry_enabled")
    await page.click('#audit-filter button[type="submit"]')
    await expect(audit).to_be_visible()
    await keep_screenshot(page, "entries-off-audit")
    await page.select_option('#audit-filter select[name="flag"]', "global_lock")
    await page.click('#audit-filter button[type="submit"]')
    await expect(page.locator('#audit-table tr[data-flag="entry_enabled"]')).to_have_count(0)

    await page.click('nav a[href="#control"]')
    await button.click()
    await confirm(page, "e2e: news passed")
    await expect(button).to_have_text("Turn entries off", timeout=10 * SECONDS)


async def test_the_kill_switch_refuses_a_manual_submit_and_the_page_shows_the_refusal(page, planes, webhook):
    await page.click('nav a[href="#orders"]')  # the orders list, live: the refusal must arrive by itself
    await page.click('nav a[href="#control"]')
    lock = page.locator('button[data-switch="global_lock"]')
    await expect(lock).to_have_text("Pull the kill switch")
    await lock.click()
    await confirm(page, "e2e: kill switch drill")
    await expect(page.locator("#trading-state")).to_have_text("HALTED", timeout=10 * SECONDS)
    await expect(lock).to_have_text("Lift the kill switch")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await planes.order.Submit(order_pb2.SubmitRequest(intent=manual_intent("e2e-halted-1")), metadata=DESK)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "guard.halted" in refused.value.details()
    order = (await planes.order.GetOrder(order_pb2.GetOrderRequest(client_order_id="e2e-halted-1"))).order

    await page.click('nav a[href="#orders"]')
    row = page.locator(f'#orders-table tr[data-order-id="{order.order_id}"]')
    await expect(row.locator("td.state")).to_have_text("REJECTED", timeout=10 * SECONDS)
    await expect(row.locator("td.rule")).to_have_text("guard.halted")
    await page.select_option('#orders-filter select[name="state"]', "FILLED")
    await page.click('#orders-filter button[type="submit"]')
    await expect(row).to_have_count(0)
    await page.fill('#orders-filter input[name="strategy"]', "manual")
    await page.select_option('#orders-filter select[name="state"]', "REJECTED")
    await page.click('#orders-filter button[type="submit"]')
    await expect(row.locator("td.reason")).to_contain_text("HALTED")
    await keep_screenshot(page, "kill-switch-refusal")

    async def alerted():
        return [text for text in webhook.texts() if "KILL SWITCH ON" in text]

    assert len(await eventually(alerted, timeout=15, what="the kill-switch alert at the webhook")) == 1

    await page.click('nav a[href="#control"]')
    await lock.click()
    await confirm(page, "e2e: drill over")
    await expect(page.locator("#trading-state")).to_have_text("ACTIVE", timeout=10 * SECONDS)


async def test_a_fill_shows_as_a_position_and_moves_the_equity_curve(page, planes, console_mesh):
    before = len((await planes.position.GetEquityCurve(position_pb2.GetEquityCurveRequest())).samples)
    books = await planes.position.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["manual"], include_flat=True))
    realized_before = {s.slug: Decimal(s.realized_pnl) for s in books.strategies}.get("manual", Decimal(0))
    await page.click('nav a[href="#equity"]')
    chart = page.locator("#equity-chart")
    await expect(chart).to_have_attribute("data-samples", str(before), timeout=10 * SECONDS)

    submitted = await planes.order.Submit(order_pb2.SubmitRequest(intent=manual_intent("e2e-fill-1")), metadata=DESK)
    assert submitted.order.state != order_pb2.ORDER_STATE_REJECTED, submitted.order.reason

    async def filled(client_order_id: str):
        await planes.ticks.step()  # the paper venue fills a market order at the next quote
        reply = await planes.order.GetOrder(order_pb2.GetOrderRequest(client_order_id=client_order_id))
        return reply if reply.order.state == order_pb2.ORDER_STATE_FILLED else None

    await eventually(lambda: filled("e2e-fill-1"), timeout=60, what="the manual order to fill", mesh=console_mesh)

    async def booked():
        snapshot = await planes.position.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["manual"]))
        return next((p for p in snapshot.positions if p.instrument == INSTRUMENT and p.quantity != "0"), None)

    position = await eventually(booked, timeout=30, what="the position plane to book the fill", mesh=console_mesh)
    after = await eventually(lambda: curve_longer_than(planes, before), timeout=30, what="a new equity sample")

    await expect(chart).to_have_attribute("data-samples", str(after), timeout=15 * SECONDS)
    await expect(page.locator("#equity-summary")).to_contain_text(f"{after} samples")
    await page.click('nav a[href="#positions"]')
    row = page.locator(f'#positions-table tr[data-position="manual/{INSTRUMENT}"]')
    await expect(row.locator("td").nth(2)).to_have_text(position.quantity, timeout=10 * SECONDS)
    await expect(row.locator("td").nth(3)).to_have_text(position.average_price)
    await keep_screenshot(page, "position-after-fill")
    await page.click('nav a[href="#orders"]')
    await expect(page.locator("#fills-table tbody tr").first).to_contain_text("manual", timeout=10 * SECONDS)

    # The market moves 5 pips up, and the operator flattens from the page: the position leaves the
    # page, and the curve gains the closing sample with the profit in it.
    planes.ticks.bid += Decimal("0.050")
    await planes.ticks.step()
    await page.click('nav a[href="#control"]')
    flatten = page.locator('#order-actions button[data-action="flatten"]')
    await expect(flatten).to_be_visible(timeout=15 * SECONDS)  # the order plane offers Order.Flatten
    await flatten.click()
    await confirm(page, "e2e: flat before the close")
    await expect(page.locator("#notice")).to_contain_text("1 closing order(s) sent")

    async def flat():
        await planes.ticks.step()
        return await booked() is None

    await eventually(flat, timeout=60, what="the flattening order to fill", mesh=console_mesh)
    await page.click('nav a[href="#equity"]')
    closed = await eventually(lambda: curve_longer_than(planes, after), timeout=30, what="the closing sample")
    await expect(chart).to_have_attribute("data-samples", str(closed), timeout=15 * SECONDS)
    curve = (await planes.position.GetEquityCurve(position_pb2.GetEquityCurveRequest())).samples
    await expect(chart).to_have_attribute("data-last-equity", curve[-1].equity)
    closed_books = await planes.position.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["manual"],
                                                                               include_flat=True))
    realized = {s.slug: Decimal(s.realized_pnl) for s in closed_books.strategies}["manual"]
    assert realized > realized_before, "a long closed 5 pips higher makes money"
    await expect(chart.locator("polyline.equity")).to_have_count(1)
    await keep_screenshot(page, "equity-after-fills")
    await page.click('nav a[href="#positions"]')
    await expect(row).to_have_count(0, timeout=10 * SECONDS)

    # The analysis tab counts the round trips the ledger counts (it follows the fills on its own stream,
    # and the tab asks again every few seconds while it is open).
    ledger = next(s for s in closed_books.strategies if s.slug == "manual")
    await page.click('nav a[href="#analysis"]')
    analysis_row = page.locator(f'#analysis-table tr[data-strategy="manual"][data-instrument="{INSTRUMENT}"]')
    await expect(analysis_row.locator("td").nth(2)).to_have_text(str(ledger.wins + ledger.losses),
                                                                 timeout=30 * SECONDS)
    await expect(analysis_row.locator("td").nth(4)).to_have_text(ledger.realized_pnl)
    await expect(page.locator("#analysis-note")).to_contain_text("Policy:")
    # The operator freezes manual's settings from the row, then lets analysis change them again.
    frozen_cell = analysis_row.locator("td").nth(15)
    await expect(frozen_cell).to_contain_text("follows analysis")
    await frozen_cell.locator('button[data-freeze="freeze"]').click()
    await confirm(page, "e2e: hold the settings")
    await expect(page.locator("#notice")).to_contain_text("manual: settings frozen")
    await expect(frozen_cell).to_contain_text("frozen", timeout=15 * SECONDS)
    await expect(frozen_cell.locator("button")).to_have_text("Thaw")
    await keep_screenshot(page, "analysis-after-round-trip")
    await frozen_cell.locator('button[data-freeze="thaw"]').click()
    await confirm(page, "e2e: follow analysis again")
    await expect(frozen_cell).to_contain_text("follows analysis", timeout=15 * SECONDS)


async def curve_longer_than(planes, count: int) -> int | None:
    samples = len((await planes.position.GetEquityCurve(position_pb2.GetEquityCurveRequest())).samples)
    return samples if samples > count else None
