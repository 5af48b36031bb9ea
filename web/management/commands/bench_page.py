"""Benchmark of the dashboard page as a person gets it (prints figures; asserts nothing).

Starts its own uvicorn process (the production ASGI app, one worker) on a free port against
DATABASE_URL/REDIS_URL, then measures:

1. **Load**: navigation start to "every panel rendered" (the page's ``zb:panels-ready``
   Performance API mark) in headless Chromium; *cold* = a new browser profile each time (empty
   cache), *warm* = a reload in the same profile. Each load is made both ways, alternated: the
   page as served (its first data inside, web/initial.py) and ``/?initial=0`` (every panel
   fetched by the browser, as before), with the ratio; and ``blank``, the browser's own floor:
   a page of one paragraph and one inline script that sets the same mark, from a plain HTTP
   server in this process (no Django), loaded the same way in turn with the others. Each warm
   load also reports *painted*: the end of the first frame after the mark (an init script the
   benchmark adds to every page, so the baseline's too), i.e. rows and charts laid out and
   painted once, which the page's own mark does not include.
2. **Event latency**: from the commit of an event (``trading/events.py`` stamps it) to its
   arrival in the page's JavaScript, p50/p95.
3. **Sockets**: N websocket clients of one user connected to the one server process; the
   process's resident memory before and after, and the latency of events fanned out to all N.
4. **Sockets while bots trade** (``--trading-bots B``, 0 skips it): a fleet of B bots (users
   ``bench-page-*``, ten bots each, replaced on each run; ``sma_cross`` 2/3 on 1m candles with
   shorts, so they fill every few minutes of market data) run by the real ``manage.py run_bots``
   in a subprocess for ``--trade-seconds``, while N sockets spread over the fleet's owners and
   one Chromium page of the first owner listen: the server's resident memory sampled every
   second (before, connected, peak, end), what the sockets received per event type, the
   latency of the engine's fills from their commit (the stamp is taken inside the fill's
   transaction, so it includes the commit) to the socket clients and to the page.

Needs Redis (events cross processes) and data (``seed_demo``): the demo user by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.utils import timezone

from marketdata.clients.synthetic import BASE_PRICES
from trading import events, services
from trading.models import Bot, Trade

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
REPO = Path(__file__).resolve().parents[3]
FLEET_PREFIX = "bench-page-"
WAVE = 50  # sockets opened at once (each handshake reads the session and joins a group)
DRAIN_SECONDS = 60  # phase 4: how long after the runner the sockets may still be catching up


BLANK_PAGE = (
    b"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>blank</title>"
    b"<link rel='icon' href='data:,'></head>"
    b"<body><p>blank</p><script>performance.mark('zb:panels-ready');"
    b"document.body.dataset.ready = '1';</script></body></html>"
)


@contextlib.contextmanager
def _blank_server() -> Any:
    """http://127.0.0.1:PORT/ answering BLANK_PAGE (the floor of a load: navigation, commit and
    parse of a page with nothing in it), in a thread of this process."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Blank(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(BLANK_PAGE)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(BLANK_PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _messages(text: str | bytes) -> list[dict[str, Any]]:
    """The events of one frame: a frame is one event, or a list of them (web/consumers.py)."""
    import orjson

    body = orjson.loads(text)
    return body if isinstance(body, list) else [body]


def _windows(samples: list[tuple[float, float]], width: float = 15.0) -> str:
    """Latency p50/p95 per ``width`` seconds of commit time (from the first commit): whether it
    stays flat or grows while the bots trade. ``samples``: (commit epoch s, latency ms)."""
    if not samples:
        return "no samples"
    first = min(at for at, _ in samples)
    buckets: dict[int, list[float]] = {}
    for at, latency in samples:
        buckets.setdefault(int((at - first) // width), []).append(latency)
    return "; ".join(
        f"{int(i * width)}-{int((i + 1) * width)} s: p50 {statistics.median(values):.0f} / "
        f"p95 {_percentile(values, 95):.0f} ms (n={len(values)})"
        for i, values in sorted(buckets.items())
    )


def _summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {statistics.median(values):7.1f} ms  p95 {_percentile(values, 95):7.1f} ms  "
        f"min {min(values):6.1f}  max {max(values):6.1f}  (n={len(values)})"
    )


class Command(BaseCommand):
    help = "Dashboard page: load time (cold/warm), event latency, sockets per process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="zerobot-demo")
        parser.add_argument("--loads", type=int, default=10, help="page loads, cold and warm each")
        parser.add_argument("--events", type=int, default=100, help="events for the latency")
        parser.add_argument("--sockets", type=int, default=1000)
        parser.add_argument("--fanout-events", type=int, default=20)
        parser.add_argument("--trading-bots", type=int, default=100, help="phase 4; 0 skips it")
        parser.add_argument("--trade-seconds", type=float, default=60.0)
        parser.add_argument("--trade-interval", type=float, default=5.0, help="run_bots --interval")
        parser.add_argument(
            "--baseline", type=Path, default=None,
            help="another checkout (e.g. `git archive main | tar -x -C DIR`): its page is served "
            "by a second server and loaded in turn with this one's (variant 'baseline')",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if "django_redis" not in settings.CACHES["default"]["BACKEND"]:
            raise CommandError("bench_page needs REDIS_URL: events go from here to the server.")
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None or not Bot.objects.filter(owner=user).exists():
            raise CommandError(f"No user {options['username']!r} with bots: run seed_demo first.")
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # N sockets need N descriptors
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = self._start_server(port)
        baseline = None
        try:
            self.stdout.write(
                f"server: uvicorn pid {server.pid} on {base} (1 worker; its log: "
                f"{self._server_log.with_suffix(f'.{port}.log')}); channel layer "
                f"{settings.CHANNEL_LAYERS['default']['BACKEND']} (WS_CHANNEL_LAYER="
                f"{settings.WS_CHANNEL_LAYER}); load average {os.getloadavg()[0]:.2f}"
            )
            if options["baseline"] is not None:
                baseline_port = _free_port()
                baseline = self._start_server(baseline_port, cwd=options["baseline"].resolve())
                options["baseline_url"] = f"http://127.0.0.1:{baseline_port}"
                self.stdout.write(
                    f"baseline: uvicorn pid {baseline.pid} serving {options['baseline']} on "
                    f"{options['baseline_url']}"
                )
            self._browser(base, user, options)
            if options["sockets"] > 0 and options["fanout_events"] > 0:
                self._sockets(base, server.pid, user, options["sockets"], options["fanout_events"])
            if options["trading_bots"] > 0:
                self._trading(base, server.pid, options)
        finally:
            for process in (server, baseline):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=20)

    _server_log = Path(tempfile.gettempdir()) / "bench_page-server.log"

    def _start_server(self, port: int, cwd: Path = REPO) -> subprocess.Popen:
        env = {
            **os.environ,
            "DEBUG": "0", "DEBUG_TOOLBAR": "0", "SILK_ENABLED": "0",
            # The same key as this process: the sessions made here must be valid there.
            "SECRET_KEY": settings.SECRET_KEY,
            "WHITENOISE_USE_FINDERS": "1", "MONITORING_FLUSH_SECONDS": "0",
            # Plain HTTP on loopback: no HTTPS redirect, cookies usable over http.
            "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
            "DB_POOL_MIN_SIZE": "2", "DB_POOL_MAX_SIZE": "20",
        }  # fmt: skip
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "uvicorn", "zerobot.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--lifespan", "off", "--ws", "websockets-sansio",
             "--log-level", "warning", "--no-access-log", "--backlog", "4096"],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL,
            stderr=self._server_log.with_suffix(f".{port}.log").open("wb"),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return server
            except OSError:
                if server.poll() is not None:
                    raise CommandError("uvicorn exited at start") from None
                time.sleep(0.1)
        server.kill()
        raise CommandError("uvicorn did not start within 30 s")

    # --- 1 and 2: in Chromium ---------------------------------------------------------------

    def _browser(self, base: str, user: Any, options: dict[str, Any]) -> dict[str, Any]:
        """Loads (both ways) and event latency; prints them and returns the samples (ms)."""
        from playwright.sync_api import sync_playwright

        ready_js = "() => performance.getEntriesByName('zb:panels-ready')[0].startTime"
        # "Painted": the end of the first frame after the mark, set by the benchmark in every
        # page (the baseline's and the blank one's too): a requestAnimationFrame callback runs
        # before that frame's style, layout and paint, a task it queues runs after them. The
        # page's mark says its rows and charts are in the document; this one says they have
        # been laid out and painted once (a page could put its layout after its mark).
        painted_init = """
          new MutationObserver((_, observer) => {
            if (document.body && document.body.dataset.ready === '1') {
              observer.disconnect();
              requestAnimationFrame(() => setTimeout(() => performance.mark('zb:painted')));
            }
          }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
        """
        painted_js = """() => new Promise((done) => {
          const read = () => {
            const mark = performance.getEntriesByName('zb:painted')[0];
            if (mark) done(mark.startTime); else setTimeout(read, 20);
          };
          read();
        })"""
        # Where a load's time goes (Navigation/Resource/Paint Timing and the page's own
        # zb:render:* measures), read after each warm load.
        breakdown_js = """() => {
          const nav = performance.getEntriesByType('navigation')[0];
          const fcp = performance.getEntriesByName('first-contentful-paint')[0];
          const ready = performance.getEntriesByName('zb:panels-ready')[0].startTime;
          const resources = performance.getEntriesByType('resource');
          const out = {
            'request sent': nav.requestStart, 'first byte (server time for /)': nav.responseStart,
            'HTML received': nav.responseEnd, 'DOM interactive': nav.domInteractive,
            'DOMContentLoaded end': nav.domContentLoadedEventEnd,
            'first contentful paint': fcp ? fcp.startTime : null, 'panels ready': ready,
            'HTML bytes (decoded)': nav.decodedBodySize,
            'requests after the HTML': resources.length,
            'of them from the network': resources.filter(r => r.transferSize > 0).length,
            'requests after first paint': fcp ? resources.filter(r => r.startTime > fcp.startTime).length : null,
          };
          for (const m of performance.getEntriesByType('measure')) {
            if (m.name.startsWith('zb:render:')) out[m.name.slice(3) + ' (ms)'] = m.duration;
          }
          return out;
        }"""
        # Both ways of loading the page, alternated in the same run (same data, same server):
        # "island", the page as served (its first data inside: web/initial.py), and "fetch",
        # the same page without it (/?initial=0: every panel read over HTTP by the browser);
        # with --baseline, also "baseline": the other checkout's page, from its own server.
        variants = {"island": f"{base}/", "fetch": f"{base}/?initial=0"}
        if options.get("baseline_url"):
            variants["baseline"] = f"{options['baseline_url']}/"
        floor = contextlib.ExitStack()  # closed with the browser below
        variants["blank"] = floor.enter_context(_blank_server())
        cold: dict[str, list[float]] = {name: [] for name in variants}
        warm: dict[str, list[float]] = {name: [] for name in variants}
        breakdowns: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        latencies: list[float] = []
        bot = Bot.objects.filter(owner=user).order_by("id").first()  # before Playwright's loop
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{base}/login/")
                page.fill("#id_username", options["username"])
                page.fill("#id_password", options["password"])
                page.click("button[type=submit]")
                page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                state = context.storage_state()
                context.close()
                for _ in range(options["loads"]):
                    for name, url in variants.items():
                        # cookies only: a cold cache
                        context = browser.new_context(storage_state=state)
                        context.add_init_script(painted_init)
                        page = context.new_page()
                        page.set_viewport_size({"width": 1400, "height": 900})
                        page.goto(url)
                        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                        cold[name].append(page.evaluate(ready_js))
                        page.reload()
                        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                        warm[name].append(page.evaluate(ready_js))
                        breakdown = page.evaluate(breakdown_js)
                        breakdown["painted (first frame after the mark)"] = page.evaluate(
                            painted_js
                        )
                        breakdowns[name].append(breakdown)
                        context.close()
                # Event latency: one open page, events published from this process.
                context = browser.new_context(storage_state=state)
                page = context.new_page()
                page.goto(f"{base}/")
                page.wait_for_selector("#live-status[data-state='live']", timeout=30_000)

                def publish() -> None:  # a plain thread: Playwright's loop runs in this one
                    for i in range(options["events"]):
                        events.publish_cycle_error(
                            owner_id=user.pk, bot_id=bot.pk, message=f"bench {i}",
                            at=timezone.now(),
                        )  # fmt: skip
                        time.sleep(0.05)
                    events.outbox.flush(10)

                # A Python client of the same user listens too: commit -> it is the server's
                # part (sender thread, Redis, channel layer, uvicorn); the rest is Chromium's.
                cookie = next(
                    c for c in state["cookies"] if c["name"] == settings.SESSION_COOKIE_NAME
                )
                listening = threading.Event()
                client_latencies: list[float] = []

                def listen() -> None:
                    asyncio.run(
                        self._listen_one(base, cookie["value"], options["events"], listening,
                                         client_latencies)
                    )  # fmt: skip

                events.outbox.handover.clear()
                listener = threading.Thread(target=listen)
                listener.start()
                listening.wait(30)
                publisher = threading.Thread(target=publish)
                publisher.start()
                while publisher.is_alive():
                    page.wait_for_timeout(100)
                page.wait_for_function(
                    f"() => window.zbLive.received.filter(e => e.type === 'cycle_error').length >= {options['events']}",
                    timeout=30_000,
                )
                received = page.evaluate("window.zbLive.received")
                latencies = [
                    (e["received"] - e["at"]) * 1000 for e in received if e["type"] == "cycle_error"
                ]
                listener.join(40)
                handover = [seconds * 1000 for seconds in events.outbox.handover]
                context.close()
            finally:
                browser.close()
                floor.close()
        self.stdout.write("\n1. Load, navigation start -> every panel rendered (Performance API):")
        for name in variants:
            self.stdout.write(f"   {name:<8} cold (empty cache): {_summary(cold[name])}")
            self.stdout.write(f"   {name:<8} warm (reload):      {_summary(warm[name])}")
        for label, values in (("cold", cold), ("warm", warm)):
            for other in ("fetch", "baseline"):
                if values["island"] and values.get(other):
                    ratio = statistics.median(values[other]) / statistics.median(values["island"])
                    self.stdout.write(f"   {label}: {other} p50 / island p50 = {ratio:.2f}x")
            if label == "warm" and breakdowns["island"]:
                key = "painted (first frame after the mark)"
                painted = {n: [b[key] for b in breakdowns[n]] for n in variants}
                for name in variants:
                    self.stdout.write(f"   {name:<8} warm, painted:     {_summary(painted[name])}")
                if painted.get("baseline"):
                    ratio = statistics.median(painted["baseline"]) / statistics.median(
                        painted["island"]
                    )
                    self.stdout.write(f"   warm painted: baseline p50 / island p50 = {ratio:.2f}x")
            if values["island"] and values["blank"]:
                own = statistics.median(values["island"]) - statistics.median(values["blank"])
                self.stdout.write(
                    f"   {label}: island p50 - blank p50 = {own:.1f} ms (the page's own)"
                )
        self.stdout.write(
            "   where a warm load goes (medians; ms from navigation start unless named):"
        )
        for key in breakdowns["island"][0] if breakdowns["island"] else []:
            cells = []
            for name in variants:
                values = [b[key] for b in breakdowns[name] if b.get(key) is not None]
                cells.append(f"{name} {statistics.median(values):8.1f}" if values else f"{name} -")
            self.stdout.write(f"     {key:<34} " + "   ".join(cells))
        self.stdout.write("\n2. Event latency, commit -> page JavaScript (one page):")
        self.stdout.write(f"   {_summary(latencies)}")
        self.stdout.write("   the same events, commit -> a Python websocket client of that user:")
        self.stdout.write(f"   {_summary(client_latencies)}")
        self.stdout.write(
            "   the same events, commit -> the channel layer took it (sender thread):"
        )
        self.stdout.write(f"   {_summary(handover)}")
        return {
            "cold": cold,
            "warm": warm,
            "event_latency": latencies,
            "warm_breakdown": breakdowns,
        }

    async def _listen_one(
        self, base: str, session: str, count: int, listening: threading.Event, into: list[float]
    ) -> None:
        import orjson
        from websockets.asyncio.client import connect

        url = base.replace("http://", "ws://") + "/ws/events"
        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
        async with connect(url, origin=base, additional_headers=headers) as ws:
            assert orjson.loads(await ws.recv())["type"] == "hello"
            listening.set()
            with contextlib.suppress(TimeoutError):
                while len(into) < count:
                    for message in _messages(await asyncio.wait_for(ws.recv(), 30)):
                        if message["type"] == "cycle_error":
                            into.append((time.time() - message["at"]) * 1000)

    # --- 3: many sockets on one process -----------------------------------------------------

    def _sockets(self, base: str, pid: int, user: Any, count: int, fanout: int) -> None:
        from django.test import Client

        client = Client()
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        rss_before = _rss_mib(pid)
        result = asyncio.run(self._fan_out(base, cookie, count, fanout, user.pk, pid))
        connected, latencies, rss_after, seconds = result
        self.stdout.write(f"\n3. {connected} sockets of one user on one server process:")
        self.stdout.write(f"   connected in {seconds:.1f} s")
        self.stdout.write(
            f"   server RSS {rss_before:.1f} MiB before, {rss_after:.1f} MiB with them: "
            f"{(rss_after - rss_before) * 1024 / max(1, connected):.1f} KiB per socket"
        )
        self.stdout.write(
            f"   {fanout} events x {connected} sockets, commit -> client: {_summary(latencies)}"
        )

    async def _fan_out(
        self, base: str, cookie: str, count: int, fanout: int, user_id: int, pid: int
    ) -> tuple[int, list[float], float, float]:
        import orjson
        from asgiref.sync import sync_to_async
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        url = base.replace("http://", "ws://") + "/ws/events"
        latencies: list[float] = []
        sockets = []
        started = time.monotonic()

        async def open_one() -> Any:
            ws = await connect(url, origin=base, additional_headers={"Cookie": cookie},
                               open_timeout=60, ping_interval=None)  # fmt: skip
            hello = orjson.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            return ws

        refused: list[BaseException] = []
        for start in range(0, count, WAVE):  # in waves: what a 2-core server accepts at a time
            opened = await asyncio.gather(
                *(open_one() for _ in range(min(WAVE, count - start))), return_exceptions=True
            )
            sockets += [ws for ws in opened if not isinstance(ws, BaseException)]
            refused += [ws for ws in opened if isinstance(ws, BaseException)]
        if refused:
            self.stdout.write(f"   {len(refused)} handshakes failed, first: {refused[0]!r}")
        seconds = time.monotonic() - started
        await asyncio.sleep(1)
        rss_after = _rss_mib(pid)

        async def read(ws: Any) -> None:
            with contextlib.suppress(ConnectionClosed):  # closed by the server: counted below
                seen = 0
                while seen < fanout:
                    for message in _messages(await ws.recv()):
                        latencies.append((time.time() - message["at"]) * 1000)
                        seen += 1

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        for i in range(fanout):
            await sync_to_async(events.publish)(
                user_id, events.CYCLE_ERROR, {"bot": 0, "message": f"fan-out {i}"}
            )
            await asyncio.sleep(0.25)
        # Bounded: what has not arrived 60 s after the last publish is reported as missing.
        _done, pending = await asyncio.wait(readers, timeout=60)
        for task in pending:
            task.cancel()
        missing = len(sockets) * fanout - len(latencies)
        if missing:
            self.stdout.write(f"   {missing} of {len(sockets) * fanout} messages did not arrive")
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        return len(sockets), latencies, rss_after, seconds

    # --- 4: many sockets while a fleet trades -------------------------------------------------

    def _fleet(self, bots: int) -> tuple[list[Any], list[int]]:
        """``bots`` active bots, ten per owner, through the services; the last run's removed."""
        user_model = get_user_model()
        user_model.objects.filter(username__startswith=FLEET_PREFIX).delete()
        symbols = [f"{base}/USDT" for base in list(BASE_PRICES)[:20]]
        owners = [
            user_model.objects.create_user(username=f"{FLEET_PREFIX}{i}", password=None)
            for i in range((bots + 9) // 10)
        ]
        ids = []
        for i in range(bots):
            bot = services.bot_create(
                owner=owners[i // 10], name=f"fleet {i}", strategy="sma_cross",
                strategy_params={"fast": 2, "slow": 3, "allow_short": True},
                initial_capital="10000", timeframe="1m",
                symbols=[symbols[i % 20], symbols[(i * 7 + 3) % 20]],
            )  # fmt: skip
            services.bot_set_status(bot=bot, status=Bot.Status.ACTIVE)
            ids.append(bot.pk)
        return owners, ids

    def _trading(self, base: str, pid: int, options: dict[str, Any]) -> None:
        from django.test import Client

        count, seconds = options["sockets"], options["trade_seconds"]
        owners, ids = self._fleet(options["trading_bots"])
        cookies = []
        for owner in owners:
            client = Client()
            client.force_login(owner)
            cookies.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
        trades_before = Trade.objects.filter(bot_id__in=ids).count()
        last_trade_before = Trade.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        rss = {"before": _rss_mib(pid)}
        runner_env = {**os.environ, "DB_POOL_MIN_SIZE": "2", "DB_POOL_MAX_SIZE": "12"}
        command = [
            sys.executable, "manage.py", "run_bots", "--quiet", "--bots", ",".join(map(str, ids)),
            "--interval", str(options["trade_interval"]), "--duration", str(seconds),
            "--concurrency", "10",
        ]  # fmt: skip
        page_fills: list[float] = []
        result: dict[str, Any] = {}

        def sockets_and_runner() -> None:  # its own loop, beside Playwright's in this thread
            result.update(
                asyncio.run(self._listen(base, cookies, count, command, runner_env, pid, rss))
            )

        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                host = base.split("//", 1)[1].split(":")[0]
                context.add_cookies([{
                    "name": settings.SESSION_COOKIE_NAME, "value": cookies[0], "domain": host,
                    "path": "/",
                }])  # fmt: skip
                page = context.new_page()
                page.goto(f"{base}/")
                page.wait_for_selector("#live-status[data-state='live']", timeout=60_000)
                worker = threading.Thread(target=sockets_and_runner)
                worker.start()
                while worker.is_alive():
                    page.wait_for_timeout(200)
                received = page.evaluate("window.zbLive.received")
                page_fills = [
                    (e["received"] - e["at"]) * 1000 for e in received if e["type"] == "fill"
                ]
                context.close()
            finally:
                browser.close()
        if "error" in result:
            raise CommandError(result["error"])
        fills = Trade.objects.filter(bot_id__in=ids).count() - trades_before
        # What the sockets should have had: each fill once on every socket of its owner.
        per_owner = dict(
            Trade.objects.filter(bot_id__in=ids, pk__gt=last_trade_before)
            .values_list("owner_id")
            .annotate(n=Count("id"))
        )
        expected_fills = sum(
            per_owner.get(owner.pk, 0) * result["sockets_of"].get(i, 0)
            for i, owner in enumerate(owners)
        )
        self.stdout.write(
            f"\n4. {result['connected']} sockets over {len(owners)} users on one server process "
            f"while {len(ids)} bots trade (run_bots, interval {options['trade_interval']:g} s, "
            f"{seconds:g} s; load average {os.getloadavg()[0]:.2f}):"
        )
        self.stdout.write(f"   run_bots: {result['runner'].strip()}")
        self.stdout.write(f"   fills recorded: {fills}")
        self.stdout.write(
            f"   server RSS {rss['before']:.1f} MiB before, {rss['connected']:.1f} connected, "
            f"peak {rss['peak']:.1f} while trading, {rss['end']:.1f} at the end: "
            f"{(rss['peak'] - rss['before']) * 1024 / max(1, result['connected']):.1f} KiB per "
            f"socket at the peak"
        )
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(result["kinds"].items()))
        self.stdout.write(
            f"   messages received by the sockets: {kinds} (in {result['frames']:,} frames)"
        )
        self.stdout.write(
            f"   fill messages received {result['kinds'].get('fill', 0):,} of {expected_fills:,} "
            f"expected (each fill on every socket of its owner), the last "
            f"{result['drain']:.1f} s after run_bots ended (waited until 3 s without a message, "
            f"at most {DRAIN_SECONDS} s)"
        )
        trade_ids = set(Trade.objects.filter(bot_id__in=ids).values_list("pk", flat=True))
        received_ids = {trade for _socket, trade in result["fill_ids"]}
        self.stdout.write(
            f"   distinct (socket, fill) pairs {len(result['fill_ids']):,} "
            f"({result['kinds'].get('fill', 0) - len(result['fill_ids']):,} received twice or "
            f"more); fill ids not among the fleet's trades now: {len(received_ids - trade_ids)}"
        )
        self.stdout.write(f"   sockets closed by the server: {result['closed']}")
        self.stdout.write(f"   fill, commit -> socket clients: {_summary(result['fills'])}")
        self.stdout.write(f"   fill, commit -> socket clients, per 15 s of commit time: "
                          f"{_windows(result['fill_times'])}")  # fmt: skip
        self.stdout.write(f"   fill, commit -> the page (Chromium): {_summary(page_fills)}")
        self.stdout.write(f"   every event, commit -> socket clients: {_summary(result['all'])}")

    async def _listen(
        self, base: str, cookies: list[str], count: int, command: list[str], env: dict, pid: int,
        rss: dict[str, float],
    ) -> dict[str, Any]:  # fmt: skip
        import orjson
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        url = base.replace("http://", "ws://") + "/ws/events"
        name = settings.SESSION_COOKIE_NAME

        async def open_one(i: int) -> Any:
            ws = await connect(url, origin=base,
                               additional_headers={"Cookie": f"{name}={cookies[i % len(cookies)]}"},
                               open_timeout=60, ping_interval=None, max_queue=None)  # fmt: skip
            hello = orjson.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            return ws

        sockets = []
        sockets_of: dict[int, int] = {}  # owner's index -> sockets connected
        refused: list[BaseException] = []
        for start in range(0, count, WAVE):  # in waves, as in phase 3
            indexes = range(start, min(count, start + WAVE))
            opened = await asyncio.gather(*(open_one(i) for i in indexes), return_exceptions=True)
            for i, ws in zip(indexes, opened, strict=True):
                if isinstance(ws, BaseException):
                    refused.append(ws)
                else:
                    sockets.append(ws)
                    sockets_of[i % len(cookies)] = sockets_of.get(i % len(cookies), 0) + 1
        if refused:
            self.stdout.write(f"   {len(refused)} handshakes failed, first: {refused[0]!r}")
        await asyncio.sleep(1)
        rss["connected"] = rss["peak"] = _rss_mib(pid)
        kinds: dict[str, int] = {}
        fills: list[float] = []
        fill_times: list[tuple[float, float]] = []  # (commit epoch s, latency ms)
        fill_ids: set[tuple[int, int]] = set()  # (socket, trade id): each should come once
        every: list[float] = []
        frames = [0]
        closed = 0
        stop = asyncio.Event()
        last_message = [time.monotonic()]

        async def read(ws: Any) -> None:
            nonlocal closed
            while not stop.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), 1)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    closed += 1
                    return
                last_message[0] = time.monotonic()
                frames[0] += 1
                now = time.time()
                for message in _messages(text):
                    latency = (now - message["at"]) * 1000
                    kinds[message["type"]] = kinds.get(message["type"], 0) + 1
                    every.append(latency)
                    if message["type"] == "fill":
                        fills.append(latency)
                        fill_times.append((message["at"], latency))
                        fill_ids.add((id(ws), message["data"]["id"]))

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        runner = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        output = asyncio.create_task(runner.communicate())
        while not output.done():
            await asyncio.sleep(1)
            rss["peak"] = max(rss["peak"], _rss_mib(pid))
        out, _ = await output
        # The runner's last events, and whatever the fan-out still has on its way: until 3 s
        # pass without a message (at most DRAIN_SECONDS).
        ended = time.monotonic()
        while time.monotonic() - ended < DRAIN_SECONDS:
            await asyncio.sleep(0.5)
            rss["peak"] = max(rss["peak"], _rss_mib(pid))
            if time.monotonic() - last_message[0] > 3:
                break
        drain = max(0.0, last_message[0] - ended)
        stop.set()
        await asyncio.gather(*readers)
        rss["end"] = _rss_mib(pid)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        if runner.returncode != 0:
            return {"error": f"run_bots exited with {runner.returncode}"}
        done = [line for line in out.decode().splitlines() if line.startswith("done:")]
        return {
            "connected": len(sockets), "kinds": kinds, "fills": fills, "all": every,
            "closed": closed, "runner": done[0] if done else out.decode()[-300:],
            "drain": drain, "sockets_of": sockets_of, "frames": frames[0],
            "fill_times": fill_times, "fill_ids": fill_ids,
        }  # fmt: skip
