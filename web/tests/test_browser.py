"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium via Playwright), served by
uvicorn with the Redis channel layer, under the strict Content-Security-Policy the project serves.

Fails, never skips, when Chromium is missing (`make chromium`). Screenshots: artifacts/dashboard.png,
artifacts/dashboard-phone.png and artifacts/dashboard-live-fill.png (gitignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from marketdata import prices as market_prices
from monitoring.tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from trading import events, seed, services
from trading.models import Bot, Position
from trading.tests.factories import make_bot, make_user

# What the project's security settings send (no inline script, websockets to 'self' only).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective));
"""
TIMEOUT = 15_000
RUN_BOTS_TIMEOUT = 90  # s: run_bots' start-up (a Django process) and one cycle, on a loaded machine
REPO = Path(__file__).resolve().parents[2]
CENT = Decimal("0.01")
# Documents fulfilled by the CSP route below carry no address-space information, and Chromium's
# Local Network Access checks then refuse their websocket to 127.0.0.1; that check is about
# public sites reaching a private network, which is not what this test is about.
ARGS = [*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"]


def _new_page(context: Any, width: int = 1400) -> Any:
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return page


def _ready(page: Any, live: bool = True) -> None:
    page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT)
    if live:
        page.wait_for_selector("#live-status[data-state='live']", timeout=TIMEOUT)


@contextlib.contextmanager
def _logged_in(server: str, username: str, password: str = "pw-for-tests-123") -> Iterator[Any]:
    """(context, page): a Chromium page logged in through the form, its panels rendered and its
    socket live. Closes the browser after, and this thread's database connection (inside
    Playwright's loop the ORM used a connection of its own context: give it back to the pool)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT)
            page = _new_page(context)
            page.goto(f"{server}/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            _ready(page)
            yield context, page
        finally:
            connection.close()
            browser.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_the_dashboard_renders_and_updates_live_in_chromium(
    asgi_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API keeps an event loop in this thread; our ORM calls here are plain
    # blocking calls of this thread, which is what Django's async guard is about.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make chromium`."
    from playwright.sync_api import sync_playwright

    seed.seed(seed.PROFILES["small"])
    demo = Bot.objects.filter(owner__username=seed.DEMO_USERNAME)
    owner_id = demo.first().owner_id
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT)
            context.add_init_script(WATCH_CSP)

            def with_csp(route: Any) -> None:
                response = route.fetch(max_redirects=0)
                route.fulfill(response=response,
                              headers={**response.headers, "content-security-policy": CSP})  # fmt: skip

            context.route(re.compile(r"^[^?]*/(login/)?(\?.*)?$"), with_csp)

            # Log in through the form; every panel renders with the demo data.
            a = _new_page(context)
            a.goto(f"{asgi_server}/")
            assert "/login/" in a.url
            a.fill("#id_username", seed.DEMO_USERNAME)
            a.fill("#id_password", seed.DEMO_PASSWORD)
            a.click("button[type=submit]")
            _ready(a)
            assert a.locator("#stats > div").count() == 10
            assert a.locator("#bots tbody tr").count() == demo.count() == 3
            assert a.locator("#equity-chart canvas").count() == 1
            open_positions = Position.objects.filter(owner_id=owner_id, status="open").count()
            assert a.locator("#positions tbody tr").count() == min(100, open_positions)
            assert a.locator("#trades tbody tr").count() == 50
            assert a.locator("#perf-bots tbody tr").count() == 3
            assert a.locator("#perf-symbols tbody tr").count() >= 1
            assert a.locator("#candle-chart canvas").count() == 1
            assert "fill(s)" in a.locator("#candle-summary").inner_text()

            # A second tab of the same user: what it shows next can only come from the socket
            # (a live page does not poll).
            b = _new_page(context)
            b.goto(f"{asgi_server}/")
            _ready(b)

            # Start a bot on tab A: tab B sees the new status pushed.
            stopped = demo.exclude(status=Bot.Status.ACTIVE).order_by("id").first()
            a.click(f"tr[data-bot='{stopped.pk}'] button[data-action='start']")
            b.wait_for_selector(f"tr[data-bot='{stopped.pk}'] .badge.active", timeout=TIMEOUT)
            assert "is now active" in b.locator("#activity").inner_text()

            # Close a position through the API (from tab A): tab B gets the fill and the close.
            position = Position.objects.filter(owner_id=owner_id, status="open").order_by("-opened_at", "-id").first()  # fmt: skip
            status = a.evaluate(
                """async (id) => (await fetch(`/api/positions/${id}/close/`, {method: 'POST',
                   headers: {'Content-Type': 'application/json', 'X-CSRFToken':
                   document.querySelector('meta[name=csrf-token]').content}, body: '{}'})).status""",
                position.pk,
            )
            assert status == 200
            fill = position.trades.order_by("-id").first()
            b.wait_for_selector(f"#trades tbody tr[data-trade='{fill.pk}']", timeout=TIMEOUT)
            assert b.locator("#trades tbody tr").first.get_attribute("data-trade") == str(fill.pk)
            b.wait_for_selector(
                f"tr[data-position='{position.pk}']", state="detached", timeout=TIMEOUT
            )
            # Closed at a fresh market mark: manual, or a liquidation when the demo's history
            # and the market provider's price are far apart (the page shows which).
            position.refresh_from_db()
            assert position.close_reason in ("manual", "liquidation")
            assert f"({position.close_reason})" in b.locator("#activity").inner_text()

            # A price mark (as the engine will publish): the unrealized PnL follows it.
            held = Position.objects.filter(owner_id=owner_id, status="open").order_by("-opened_at", "-id").first()  # fmt: skip
            mark = (held.current_price * Decimal("1.1")).quantize(Decimal("0.01"))
            row = f"tr[data-position='{held.pk}']"
            before = b.locator(f"{row} .mark").inner_text()
            events.publish_price_mark(
                owner_id=owner_id, symbol=held.symbol, price=mark, at=timezone.now()
            )
            b.wait_for_function(
                "([row, old]) => document.querySelector(row + ' .mark').textContent !== old",
                arg=[row, before],
                timeout=TIMEOUT,
            )
            sign = 1 if held.side == "long" else -1
            expected = (mark - held.entry_price) * held.open_quantity * sign
            shown = b.locator(f"{row} .pnl").inner_text().replace(",", "").replace("+", "")
            assert Decimal(shown) == expected.quantize(Decimal("0.01"))

            # Keyset infinite scroll: older trades load when the list is scrolled to its end.
            b.locator("#trades-scroll").evaluate("el => el.scrollTo(0, el.scrollHeight)")
            b.wait_for_function(
                "() => document.querySelectorAll('#trades tbody tr').length > 51", timeout=TIMEOUT
            )
            ids = b.eval_on_selector_all(
                "#trades tbody tr", "rows => rows.map(r => r.dataset.trade)"
            )
            assert len(ids) == len(set(ids))

            # Without a socket the page polls, and says so.
            c = _new_page(context)
            c.route_web_socket(re.compile(r"/ws/events$"), lambda ws: ws.close(code=1011))
            c.goto(f"{asgi_server}/")
            _ready(c, live=False)
            c.wait_for_selector("#live-status[data-state='polling']", timeout=TIMEOUT)
            stopped.refresh_from_db()  # started from tab A
            services.bot_set_status(bot=stopped, status=Bot.Status.PAUSED)  # no event: polled
            c.wait_for_selector(f"tr[data-bot='{stopped.pk}'] .badge.paused", timeout=TIMEOUT)
            assert c.evaluate("window.__csp") == [] and c.errors == []
            c.close()

            a.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            a.set_viewport_size({"width": 390, "height": 844})
            a.wait_for_timeout(300)  # charts follow their container's width
            assert a.evaluate("document.documentElement.scrollWidth") <= 390
            a.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)

            for page in (a, b):
                assert page.evaluate("window.__csp") == [], "the page broke the CSP"
                assert page.errors == []
            a.click("text=Log out")
            a.wait_for_url(re.compile(r"/login/$"), timeout=TIMEOUT)
            # Let the last requests finish: a request cut off by the browser closing keeps its
            # thread's database connection out of the pool (Django's ASGI handler).
            b.wait_for_load_state("networkidle")
            # A page closed while a route handler is still fetching for it can wait forever
            # (the handler's fetch never settles): drop the routes first, in-flight ones included.
            context.unroute_all(behavior="ignoreErrors")
            b.close()
        finally:
            # Inside Playwright's loop the ORM used a connection of its own context (asgiref's
            # Local): give it back here, or it stays out of the pool and open.
            connection.close()
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 20_000


def _run_bots(*args: str) -> subprocess.Popen:
    """The real ``manage.py run_bots`` in a process of its own, on the test database.

    A subprocess rather than a thread: the command installs SIGTERM/SIGINT handlers (only the main
    thread may), and its fills must reach the page the way production's do, from another process
    through Redis (its own pool, its own event sender, the server's channel layer receiving)."""
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        + f"/{connection.settings_dict['NAME']}",
        "DJANGO_SETTINGS_MODULE": "zerobot.test_settings",
        "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "4", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_bots", "--quiet", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.postgres
@pytest.mark.redis
def test_a_fill_of_run_bots_appears_without_a_reload(
    asgi_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log in, start a bot from the page, run ``run_bots``: its fill appears, no reload.

    Deterministic whatever the clock says: a ``manual`` bot (no signal) holds a long whose
    stop-loss is above the market (entered at 1.5x the synthetic venue's price, stop at 1.2x),
    so the engine's first cycle must close it at ``stop_loss`` (exits are checked before any
    strategy); the bot is stopped until the page starts it, and a runner claims active bots only.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make chromium`."
    from playwright.sync_api import expect

    user = make_user()
    bot = make_bot(owner=user, strategy="manual", symbols=["BTC/USDT"], timeframe="1m")
    market = market_prices.last_prices(["BTC/USDT"])["BTC/USDT"]
    entry = (market * Decimal("1.5")).quantize(CENT)
    position = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="0.01", price=entry,
        client_order_id="browser-live-fill", stop_loss=(market * Decimal("1.2")).quantize(CENT),
    )  # fmt: skip
    opening = position.trades.get()
    # A cycle records its fills at its as_of (the bot's next_run_at, here its creation): one
    # before the position opened is refused, so the schedule starts after the opening.
    Bot.objects.filter(pk=bot.pk).update(next_run_at=timezone.now())
    services.bot_set_status(bot=bot, status=Bot.Status.STOPPED)
    ARTIFACTS.mkdir(exist_ok=True)

    runner: subprocess.Popen | None = None
    with _logged_in(asgi_server, user.username) as (context, page):
        try:
            trades = page.locator("#trades tbody tr")
            expect(trades).to_have_count(1)
            assert trades.first.get_attribute("data-trade") == str(opening.pk)
            expect(page.locator(f"tr[data-position='{position.pk}']")).to_have_count(1)
            # A reload would drop this (and every other script state).
            page.evaluate("window.__sameDocument = true")

            page.click(f"tr[data-bot='{bot.pk}'] button[data-action='start']")
            expect(page.locator(f"tr[data-bot='{bot.pk}'] .badge.active")).to_have_count(1)
            runner = _run_bots("--bots", str(bot.pk), "--cycles", "1", "--interval", "60")

            # The engine's closing fill, pushed: bounded waits, never a hang.
            try:
                expect(trades).to_have_count(2, timeout=RUN_BOTS_TIMEOUT * 1000)
            except AssertionError:
                runner.kill()
                out, err = runner.communicate(timeout=10)
                pytest.fail(f"no fill on the page; run_bots said:\n{out}\n{err[-3000:]}")
            expect(page.locator(f"tr[data-position='{position.pk}']")).to_have_count(0)
            expect(page.locator("#activity")).to_contain_text("(stop loss)")
            out, err = runner.communicate(timeout=RUN_BOTS_TIMEOUT)
            assert runner.returncode == 0, err[-3000:]
            assert "done: 1 cycles, 0 with errors" in out, out + err[-3000:]
            fill = position.trades.exclude(pk=opening.pk).get()
            assert fill.reason == "stop_loss" and fill.side == "sell"
            assert trades.first.get_attribute("data-trade") == str(fill.pk)
            assert page.evaluate("window.__sameDocument") is True
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
            assert page.evaluate("window.zbLive.state") == "live"  # pushed, not polled
            assert page.errors == []
            page.screenshot(path=str(ARTIFACTS / "dashboard-live-fill.png"), full_page=True)

            page.wait_for_load_state("networkidle")  # the refetches the fill asked for
            context.unroute_all(behavior="ignoreErrors")
            page.close()
        finally:
            if runner is not None and runner.poll() is None:
                runner.kill()
                runner.communicate(timeout=10)


def _chart_ranges(page: Any, chart: str, data: Any) -> dict[str, list[float]]:
    """The x and y scale ranges of a chart of charts.js (``chart``: its maker) after
    ``render(data)``, made on a page of the server's origin (the module and uPlot from its static
    files, under its CSP)."""
    return page.evaluate(
        """async ([kind, data]) => {
          const charts = await import('/static/web/js/charts.js');
          const el = document.createElement('div');
          el.style.width = '600px';
          document.body.append(el);
          const chart = charts[kind](el);
          chart.render(data);
          await new Promise((done) => requestAnimationFrame(() => setTimeout(done)));
          const { x, y } = chart.plot.scales;
          return { x: [x.min, x.max], y: [y.min, y.max] };
        }""",
        [chart, data],
    )


@pytest.mark.postgres
@pytest.mark.redis
def test_one_equity_point_gets_a_range_around_it(asgi_server: str) -> None:
    """uPlot widens a zero-width range by the value's magnitude: one point of 10,000 had a y axis
    from 0 to 20,000 and an x axis of 1,000 days (a flat line in an empty frame)."""
    from playwright.sync_api import sync_playwright

    at = datetime(2026, 12, 3, 9, tzinfo=UTC).timestamp()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = _new_page(browser.new_context())
            page.goto(f"{asgi_server}/login/")
            page.add_script_tag(url="/static/web/vendor/uplot/uPlot.iife.min.js")
            one = _chart_ranges(
                page, "equityChart", [{"t": "2026-12-03T09:00:00Z", "equity": "10000.00"}]
            )
            assert one == {"x": [at - 3600, at + 3600], "y": [9900, 10100]}
            # The same value at every point: the same ±1 % around it.
            flat = _chart_ranges(
                page, "equityChart",
                [{"t": "2026-12-03T09:00:00Z", "equity": "250.5"},
                 {"t": "2026-12-03T10:00:00Z", "equity": "250.5"}],
            )  # fmt: skip
            assert flat["x"] == [at, at + 3600]
            assert flat["y"] == pytest.approx([250.5 - 2.505, 250.5 + 2.505])
            # Two values: uPlot's own range, around both and not far beyond.
            two = _chart_ranges(
                page, "equityChart",
                [{"t": "2026-12-03T09:00:00Z", "equity": "10000"},
                 {"t": "2026-12-03T10:00:00Z", "equity": "10100"}],
            )  # fmt: skip
            assert two["x"] == [at, at + 3600]
            assert 9800 <= two["y"][0] < 10000 and 10100 < two["y"][1] <= 10300
            # One candle: an hour either side of it too.
            candle = _chart_ranges(
                page, "candleChart",
                {"candles": [["2026-12-03T09:00:00Z", "10", "12", "9", "11", "1"]],
                 "indicator": {"time": [], "values": []}, "indicatorLabel": "SMA 20",
                 "fills": [], "timeframeSeconds": 3600},
            )  # fmt: skip
            assert candle["x"] == [at - 3600, at + 3600]
            assert page.errors == []
        finally:
            browser.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_pushed_fill_updates_the_trade_count_and_the_candle_fills(
    asgi_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fill event adds its row and also "Recent trades (N)" and the candle chart's fill count
    (both stayed as loaded: a fill of now lies in the forming candle, which the closed-candle
    API never returns, so even the chart's refetch placed and counted nothing)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    user = make_user()
    bot = make_bot(owner=user, strategy="manual", symbols=["BTC/USDT"], timeframe="1m")
    market = market_prices.last_prices(["BTC/USDT"])["BTC/USDT"]
    services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="0.01", price=market,
        client_order_id="count-1",
    )  # fmt: skip
    with _logged_in(asgi_server, user.username) as (context, page):
        expect(page.locator("#trades-count")).to_have_text("(1)")
        expect(page.locator("#candle-summary")).to_contain_text(" 1 fill(s) ")
        page.evaluate("window.__sameDocument = true")

        position = services.position_open(
            bot=bot, symbol="BTC/USDT", side="long", quantity="0.02", price=market,
            client_order_id="count-2",
        )  # fmt: skip
        fill = position.trades.get()
        expect(page.locator(f"#trades tbody tr[data-trade='{fill.pk}']")).to_have_count(1)
        expect(page.locator("#trades-count")).to_have_text("(2)")
        expect(page.locator("#candle-summary")).to_contain_text(" 2 fill(s) ")
        # The refetches the fill asks for (positions, stats, candles) agree.
        page.wait_for_timeout(1500)
        page.wait_for_load_state("networkidle")
        expect(page.locator("#candle-summary")).to_contain_text(" 2 fill(s) ")
        expect(page.locator("#trades-count")).to_have_text("(2)")
        assert page.evaluate("window.__sameDocument") is True
        assert page.errors == []
        context.unroute_all(behavior="ignoreErrors")
        page.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_frame_of_several_events_is_handled_event_by_event(
    asgi_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender sends a user's events of one turn as one frame, a JSON list: the page takes
    each in order, with its seq (no gap, so no refetch of everything)."""
    import asyncio
    import threading

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    user = make_user()
    bot = make_bot(owner=user, strategy="manual", symbols=["BTC/USDT"], timeframe="1m")
    items = [
        events._Item(owner_id=user.pk, kind=events.CYCLE_ERROR,
                     data=b'{"bot":%d,"message":"burst %d","at":null}' % (bot.pk, i))
        for i in range(3)
    ]  # fmt: skip
    with _logged_in(asgi_server, user.username) as (context, page):
        # One turn of a sender (its own thread: Playwright's loop runs in this one).
        sender = threading.Thread(target=asyncio.run, args=(events._Outbox()._deliver(items),))
        sender.start()
        sender.join(10)
        for i in range(3):
            expect(page.locator("#activity")).to_contain_text(f"cycle failed: burst {i}")
        received = page.evaluate("window.zbLive.received.filter(e => e.type === 'cycle_error')")
        seqs = [e["seq"] for e in received]
        assert len(seqs) == 3 and seqs == list(range(seqs[0], seqs[0] + 3))
        assert page.errors == []
        context.unroute_all(behavior="ignoreErrors")
        page.close()
