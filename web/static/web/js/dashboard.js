// The dashboard: renders every panel from the data the page came with (web/initial.py; else from
// the REST API), then keeps it current from the websocket (web/consumers.py), or by polling while
// the socket is down. Every later read goes to the REST API.
import * as api from "./api.js";
import { candleChart, equityChart } from "./charts.js";
import { format, formatPrice } from "./decimal.js";
import { LiveSocket } from "./live.js";
import * as ui from "./panels.js";

const { $, h } = ui;
const config = JSON.parse(document.getElementById("zb-config").textContent);
const API = config.api;
const POLL_MS = 5000;
const TRADES_PAGE = 50;
const TIMEFRAME_SECONDS = { "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 };

const state = {
  bots: new Map(), // id -> bot row
  positions: new Map(), // id -> { p, tr }
  tradeIds: new Set(),
  lastTrade: null,
  tradesNext: undefined, // undefined: after the first page; null: no more
  tradesLoading: false,
  tradesTotal: null, // "Recent trades (N)": from the API, then +1 for each new fill pushed
  tradesTotalIsLowerBound: false,
  candleView: null, // what the candle chart shows (its bodies), so a pushed fill joins it at once
  lastSeq: api.initialSeq, // the page's data is as of this event (a later greeting: refetch)
  live: false,
  lastUpdate: null,
  pollTimer: null,
};
// Events as received, for the benchmark (bench_page) and the browser tests: bounded.
window.zbLive = { received: [], state: "connecting" };

api.whenLoggedOut(() => location.assign(`${config.login}?next=/`));

// --- Readiness: "all panels rendered" is a Performance API mark (bench_page reads it) -----------

const PANELS = ["stats", "bots", "equity", "positions", "trades", "performance", "candles"];
const waiting = new Set(PANELS);
const section = (name) => document.getElementById(`panel-${name}`);

function ready(name) {
  section(name).dataset.state = "ready";
  state.lastUpdate = new Date();
  if (waiting.delete(name) && waiting.size === 0) {
    performance.mark("zb:panels-ready");
    document.body.dataset.ready = "1";
  }
}

// Each panel's first render is a Performance API measure too (zb:render:<panel>, from the call
// of its loader to its rows and charts being in the document): where a load's time goes.
function guard(name, load) {
  return async (...args) => {
    const start = performance.now();
    try {
      await load(...args);
      if (waiting.has(name)) performance.measure(`zb:render:${name}`, { start, end: performance.now() });
      ready(name);
      return true;
    } catch (error) {
      if (section(name).dataset.state !== "ready") section(name).dataset.state = "error";
      console.error(`panel ${name}:`, error);
      return false;
    }
  };
}

// --- Panels ------------------------------------------------------------------------------------

const loadStats = guard("stats", async () => {
  ui.renderStats($("#stats"), await api.get(`${API}dashboard/stats`));
});

function botName(id) {
  const bot = state.bots.get(id);
  return bot ? bot.name : `#${id}`;
}

function renderBots() {
  const rows = [...state.bots.values()].map((bot) => ui.botRow(bot, botAction));
  $("#bots tbody").replaceChildren(...rows);
}

function fillSelect(select, options) {
  const keep = select.value;
  const first = select.options[0] && select.options[0].value === "" ? select.options[0] : null;
  select.replaceChildren(...(first ? [first] : []), ...options.map(([value, label]) => h("option", { value, text: label })));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

const loadBots = guard("bots", async () => {
  const body = await api.get(api.query(`${API}bots/`, { limit: 1000 }));
  const errors = new Map([...state.bots.values()].map((b) => [b.id, b.error]));
  state.bots = new Map(body.results.map((bot) => [bot.id, { ...bot, error: errors.get(bot.id) }]));
  renderBots();
  const options = body.results.map((bot) => [String(bot.id), bot.name]);
  fillSelect($("#equity-bot"), options);
  fillSelect($("#candle-bot"), options);
  const symbols = [...new Set(body.results.flatMap((bot) => bot.symbols))].sort();
  const select = $("#candle-symbol");
  if (select.options.length !== symbols.length) fillSelect(select, symbols.map((s) => [s, s]));
});

async function botAction(bot, action) {
  const row = document.querySelector(`tr[data-bot="${bot.id}"]`);
  row?.querySelectorAll("button").forEach((b) => (b.disabled = true));
  try {
    const body = await api.post(`${API}bots/${bot.id}/${action}/`);
    applyBot(body.bot);
    if (action !== "start" && body.open_positions) {
      activity(`${body.bot.name}: ${body.open_positions} open position(s) stay open.`);
    }
  } catch (error) {
    activity(`${bot.name}: ${error.message}`, "error");
    renderBots();
  }
}

function applyBot(bot) {
  const known = state.bots.get(bot.id) || {};
  state.bots.set(bot.id, { ...known, ...bot });
  renderBots();
}

const loadEquity = guard("equity", async () => {
  const period = document.querySelector('input[name="equity-period"]:checked').value;
  const bot = $("#equity-bot").value;
  const body = await api.get(api.query(`${API}dashboard/equity-curve`, { period, bot, points: 300 }));
  equity.render(body.results);
  const points = body.results;
  const summary = $("#equity-summary");
  if (!points.length) {
    summary.textContent = "No equity snapshots in this period.";
  } else {
    const last = points[points.length - 1];
    summary.textContent = `${bot ? botName(Number(bot)) : "All bots"}: ${format(last.equity)} at ${ui.timeText(last.t)} UTC (${points.length} points, ${period}).`;
  }
  $("#equity-chart").setAttribute("aria-label", `Equity curve, ${period}: ${summary.textContent}`);
});

const loadPositions = guard("positions", async () => {
  const body = await api.get(api.query(`${API}dashboard/positions`, { limit: 100 }));
  state.positions = new Map();
  const rows = body.results.map((p) => {
    const tr = ui.positionRow(p, p.bot_name);
    state.positions.set(p.id, { p, tr });
    return tr;
  });
  $("#positions tbody").replaceChildren(...rows);
  $("#positions-count").textContent = body.total > rows.length ? `(${rows.length} of ${body.total})` : `(${body.total})`;
});

function showTradesCount() {
  if (state.tradesTotal === null) return;
  const plus = state.tradesTotalIsLowerBound ? "+" : "";
  $("#trades-count").textContent = `(${state.tradesTotal.toLocaleString("en-US")}${plus})`;
}

function addTrades(rows, { atTop }) {
  const fresh = rows.filter((t) => !state.tradeIds.has(t.id));
  fresh.forEach((t) => state.tradeIds.add(t.id));
  const trs = fresh.map(ui.tradeRow);
  const body = $("#trades tbody");
  if (atTop) {
    body.prepend(...trs);
    trs.forEach((tr) => tr.classList.add("flash"));
  } else {
    body.append(...trs);
  }
  return fresh.length;
}

const loadTrades = guard("trades", async () => {
  const body = await api.get(api.query(`${API}dashboard/trades`, { limit: TRADES_PAGE }));
  $("#trades tbody").replaceChildren();
  state.tradeIds = new Set();
  addTrades(body.results, { atTop: false });
  state.lastTrade = body.results[body.results.length - 1] || null;
  state.tradesNext = body.next ? undefined : null;
  $("#trades-more").hidden = !body.next;
  state.tradesTotal = body.total;
  state.tradesTotalIsLowerBound = body.total_is_lower_bound;
  showTradesCount();
});

// Newer trades only (polling): the first page, added above what is shown.
async function refreshTradesHead() {
  const body = await api.get(api.query(`${API}dashboard/trades`, { limit: TRADES_PAGE }));
  addTrades([...body.results].reverse().filter((t) => !state.tradeIds.has(t.id)).reverse(), { atTop: true });
  state.tradesTotal = body.total;
  state.tradesTotalIsLowerBound = body.total_is_lower_bound;
  showTradesCount();
}

function pathOf(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname + parsed.search;
}

// Keyset infinite scroll: after the first page, continue with ?cursor= (cost independent of depth).
async function moreTrades() {
  if (state.tradesLoading || state.tradesNext === null || !state.lastTrade) return;
  state.tradesLoading = true;
  try {
    const url =
      state.tradesNext === undefined
        ? api.query(`${API}dashboard/trades`, { limit: TRADES_PAGE, cursor: api.cursorAfter(state.lastTrade, "executed_at") })
        : pathOf(state.tradesNext);
    const body = await api.get(url);
    addTrades(body.results, { atTop: false });
    if (body.results.length) state.lastTrade = body.results[body.results.length - 1];
    state.tradesNext = body.next;
    $("#trades-more").hidden = !body.next;
  } catch (error) {
    activity(`Could not load older trades: ${error.message}`, "error");
  } finally {
    state.tradesLoading = false;
  }
}

const loadPerformance = guard("performance", async () => {
  const body = await api.get(api.query(`${API}dashboard/performance`, { period: "30d" }));
  $("#perf-bots tbody").replaceChildren(...body.bots.map(ui.perfBotRow));
  $("#perf-symbols tbody").replaceChildren(...body.symbols.map(ui.perfSymbolRow));
});

const loadCandles = guard("candles", async () => {
  const select = $("#candle-symbol");
  const symbol = select.value;
  if (!symbol) {
    $("#candle-summary").textContent = "No symbol: create a bot first.";
    return;
  }
  const timeframe = $("#candle-timeframe").value;
  const name = $("#candle-indicator").value;
  const bot = $("#candle-bot").value;
  const limit = 150;
  // Fills since the first candle's time, fetched alongside the candles (one round trip).
  const since = new Date((Math.floor(Date.now() / 1000 / TIMEFRAME_SECONDS[timeframe]) - limit) * TIMEFRAME_SECONDS[timeframe] * 1000);
  // The page's own copy for its first symbol (web/initial.py), when this is what it shows.
  const first = api.takeInitialCandles();
  const [ohlcv, indicators, trades] =
    first && first.symbol === symbol && first.timeframe === timeframe && first.indicator === name && !bot
      ? [first.ohlcv, first.indicators, first.trades]
      : await Promise.all([
          api.get(api.query(`${API}market/ohlcv`, { symbol, timeframe, limit })),
          api.get(api.query(`${API}market/indicators`, { symbol, timeframe, names: name, limit })),
          api.get(api.query(`${API}dashboard/trades`, { symbol, bot, executed_after: since.toISOString(), limit: 1000 })),
        ]);
  try {
    localStorage.setItem("zb.candleSymbol", symbol);
  } catch {
    // storage disabled: the next load waits for the bot list instead
  }
  const label = $("#candle-indicator").selectedOptions[0].textContent;
  state.candleView = { symbol, timeframe, name, bot, label, ohlcv, indicators, fills: [...trades.results] };
  renderCandles(state.candleView);
});

function renderCandles(view) {
  const { symbol, timeframe, name, bot, label } = view;
  const shown = candles.render({
    candles: view.ohlcv.candles,
    indicator: view.indicators.indicators[name] || { time: [], values: [] },
    indicatorLabel: label,
    fills: view.fills,
    timeframeSeconds: TIMEFRAME_SECONDS[timeframe],
  });
  const text = `${symbol} ${timeframe}: ${shown.candles} candles, ${shown.fills} fill(s) of ${bot ? botName(Number(bot)) : "all bots"}, ${label}.`;
  $("#candle-summary").textContent = text;
  $("#candle-chart").setAttribute("aria-label", text);
}

// A pushed fill of what the candle chart shows joins it (and its count) at once; the refetch
// that follows brings the candles up to date.
function addCandleFill(fill) {
  const view = state.candleView;
  if (!view || fill.symbol !== view.symbol || (view.bot && String(fill.bot) !== view.bot)) return;
  if (view.fills.some((f) => f.id === fill.id)) return;
  view.fills.push(fill);
  renderCandles(view);
}

// --- Activity ----------------------------------------------------------------------------------

function activity(text, kind = "") {
  const list = $("#activity");
  list.querySelector("li.muted")?.remove();
  const now = new Date().toISOString().slice(11, 19);
  list.prepend(h("li", { class: kind || null }, h("time", { text: now }), text));
  while (list.children.length > 50) list.lastElementChild.remove();
}

// --- Live updates ------------------------------------------------------------------------------

const timers = new Map();
const LOADERS = {
  stats: loadStats, bots: loadBots, equity: loadEquity, positions: loadPositions,
  trades: loadTrades, performance: loadPerformance, candles: loadCandles,
};  // prettier-ignore

// Refetch a panel soon, once however many events ask for it meanwhile.
function soon(name, delay = 250) {
  if (timers.has(name)) return;
  timers.set(name, setTimeout(() => {
    timers.delete(name);
    LOADERS[name]();
  }, delay));  // prettier-ignore
}

function refreshAll() {
  for (const name of Object.keys(LOADERS)) soon(name, 50);
}

function noteSeq(seq) {
  if (seq === null || seq === undefined) {
    refreshAll(); // numbered nothing: we cannot tell what we missed
    return;
  }
  if (state.lastSeq !== null && seq > state.lastSeq + 1) refreshAll();
  state.lastSeq = state.lastSeq === null ? seq : Math.max(state.lastSeq, seq);
}

const HANDLERS = {
  bot_status(d) {
    applyBot({ id: d.bot, name: d.name, status: d.status, updated_at: d.updated_at });
    activity(`${d.name} is now ${d.status}.`);
    soon("stats");
  },
  fill(d) {
    if (!state.tradeIds.has(d.id) && addTrades([d], { atTop: true }) && state.tradesTotal !== null) {
      state.tradesTotal += 1;
      showTradesCount();
    }
    addCandleFill(d);
    activity(`${botName(d.bot)}: ${d.side} ${formatPrice(d.quantity)} ${d.symbol} at ${formatPrice(d.price)}.`);
    soon("stats");
    soon("positions");
    soon("performance", 1000);
    if ($("#candle-symbol").value === d.symbol) soon("candles", 1000);
  },
  position_opened(d) {
    activity(`${botName(d.bot)} opened ${d.side} ${d.symbol}.`);
    soon("positions", 100);
    soon("stats");
  },
  position_closed(d) {
    const known = state.positions.get(d.id);
    if (known) {
      known.tr.remove();
      state.positions.delete(d.id);
    }
    activity(`${botName(d.bot)} closed ${d.symbol} (${d.reason.replace("_", " ")}), PnL ${format(d.realized_pnl, 2, { plus: true })}.`);
    soon("positions");
    soon("stats");
    soon("performance", 1000);
  },
  equity_snapshot() {
    soon("equity", 2000);
    soon("stats");
  },
  cycle_error(d) {
    const bot = state.bots.get(d.bot);
    if (bot) applyBot({ ...bot, error: d.message });
    activity(`${botName(d.bot)}: cycle failed: ${d.message}`, "error");
  },
  price_mark(d) {
    for (const { p, tr } of state.positions.values()) {
      if (p.symbol === d.symbol) ui.markPosition(tr, p, d.price);
    }
  },
};

function onEvent(message) {
  const received = Date.now() / 1000;
  const log = window.zbLive.received;
  log.push({ type: message.type, seq: message.seq, at: message.at, received });
  if (log.length > 5000) log.splice(0, log.length - 5000);
  noteSeq(message.seq);
  state.lastUpdate = new Date();
  const handler = HANDLERS[message.type];
  if (handler) handler(message.data);
}

function onHello(message) {
  // A different number than the last one seen means events were missed while away.
  if (state.lastSeq !== null && message.seq !== state.lastSeq) refreshAll();
  if (message.seq !== null) state.lastSeq = message.seq;
  state.lastUpdate = new Date();
}

function showStatus(kind) {
  const el = $("#live-status");
  window.zbLive.state = kind;
  el.dataset.state = kind;
  const at = state.lastUpdate ? state.lastUpdate.toISOString().slice(11, 19) + " UTC" : "never";
  el.textContent = {
    connecting: "Connecting…",
    live: "Live",
    polling: `Polling every ${POLL_MS / 1000} s (live updates unavailable), updated ${at}`,
    stale: `Stale: last update ${at}`,
  }[kind];
}

async function pollOnce() {
  const results = await Promise.all([loadStats(), loadBots(), loadPositions()]);
  let ok = results.every(Boolean);
  try {
    await refreshTradesHead();
  } catch {
    ok = false;
  }
  if (ok) state.lastUpdate = new Date();
  if (!state.live) showStatus(ok ? "polling" : "stale");
}

function onSocketState(socketState) {
  state.live = socketState === "live";
  if (state.live) {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
    showStatus("live");
  } else if (socketState === "down") {
    showStatus(state.lastUpdate && Date.now() - state.lastUpdate < 2 * POLL_MS ? "polling" : "stale");
    if (!state.pollTimer) state.pollTimer = setInterval(pollOnce, POLL_MS);
  }
}

// --- Start -------------------------------------------------------------------------------------

const equity = equityChart($("#equity-chart"));
const candles = candleChart($("#candle-chart"));

document.querySelectorAll('input[name="equity-period"]').forEach((input) => input.addEventListener("change", loadEquity));
$("#equity-bot").addEventListener("change", loadEquity);
for (const id of ["#candle-symbol", "#candle-timeframe", "#candle-indicator", "#candle-bot"]) {
  $(id).addEventListener("change", loadCandles);
}
$("#trades-more").addEventListener("click", moreTrades);
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) moreTrades();
}, { root: $("#trades-scroll"), rootMargin: "200px" }).observe($("#trades-more"));  // prettier-ignore

const socket = new LiveSocket(config.ws, {
  onHello,
  onEvent,
  onState: onSocketState,
  onRevoked: () => location.assign(config.login),
});
socket.start();

loadStats();
loadEquity();
loadTrades();
loadPerformance();
loadPositions();
// The symbol list comes with the bots; the symbol shown last time is fetched at once.
let remembered = null;
try {
  remembered = localStorage.getItem("zb.candleSymbol");
} catch {
  remembered = null;
}
if (remembered) {
  $("#candle-symbol").append(h("option", { value: remembered, text: remembered }));
  $("#candle-symbol").value = remembered;
  loadCandles();
  loadBots();
} else {
  loadBots().then(() => loadCandles());
}
