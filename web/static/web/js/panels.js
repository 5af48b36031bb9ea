// DOM for each panel. Text goes in through textContent only (bot names are user input).
import { format, formatPrice, percent, sign, toText, toUnits, unrealizedPnl } from "./decimal.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("data-")) el.setAttribute(key, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

export const $ = (selector) => document.querySelector(selector);

export function timeText(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "–";
}

export function signClass(text) {
  const s = text === null || text === undefined ? 0 : sign(text);
  return s > 0 ? "up" : s < 0 ? "down" : "";
}

const num = (text, cls = "") => h("td", { class: `num ${cls}`.trim(), text });

// --- Account stats -----------------------------------------------------------------------------

export function renderStats(el, s) {
  const items = [
    ["Equity", format(s.equity)],
    ["Cash", format(s.cash)],
    ["Margin in use", format(s.margin)],
    ["Realized PnL", format(s.net_realized_pnl, 2, { plus: true }), signClass(s.net_realized_pnl)],
    ["Unrealized PnL", format(s.unrealized_pnl, 2, { plus: true }), signClass(s.unrealized_pnl)],
    ["Return", s.return_pct === null ? "–" : format(s.return_pct, 2, { plus: true }) + " %", signClass(s.return_pct)],
    ["Win rate", s.win_rate === null ? "–" : percent(s.win_rate)],
    ["Open positions", String(s.open_positions)],
    ["Trades", s.trade_count.toLocaleString("en-US")],
    ["Bots active", `${s.bots.active} of ${s.bots.total}`],
  ];
  el.replaceChildren(
    ...items.map(([label, value, cls]) =>
      h("div", {}, h("dt", { text: label }), h("dd", { class: cls || null, text: value })),
    ),
  );
}

// --- Bots --------------------------------------------------------------------------------------

// trading.services.BOT_TRANSITIONS: which buttons a status allows (the server decides anyway).
const TRANSITIONS = {
  inactive: ["active", "stopped"],
  active: ["paused", "stopped"],
  paused: ["active", "stopped"],
  stopped: ["active"],
};
const ACTIONS = [
  ["start", "Start", "active"],
  ["pause", "Pause", "paused"],
  ["stop", "Stop", "stopped"],
];

export function botRow(bot, onAction) {
  const allowed = TRANSITIONS[bot.status] || [];
  const controls = h("td", {}, h("div", { class: "controls-cell" },
    ...ACTIONS.map(([action, label, target]) =>
      h("button", {
        type: "button", text: label, "data-action": action,
        "aria-label": `${label} ${bot.name}`,
        disabled: !allowed.includes(target),
        onclick: () => onAction(bot, action),
      }),
    ),
  ));  // prettier-ignore
  const status = h("td", {}, h("span", { class: `badge ${bot.status}`, "data-role": "status", text: bot.status }));
  if (bot.error) status.append(h("span", { class: "badge error", title: bot.error, text: "error" }));
  return h("tr", { "data-bot": bot.id },
    h("th", { scope: "row" }, bot.name, h("div", { class: "muted small", text: `${bot.strategy} · ${bot.symbols.join(", ")}` })),
    status, num(format(bot.capital)), controls,
  );  // prettier-ignore
}

// --- Positions ---------------------------------------------------------------------------------

export function openQuantity(p) {
  return toText(toUnits(p.quantity, 12) - toUnits(p.closed_quantity, 12), 12);
}

export function positionRow(p, botName) {
  const pnl = p.unrealized_pnl ?? unrealizedPnl(p, p.current_price);
  return h("tr", { "data-position": p.id, "data-symbol": p.symbol },
    h("th", { scope: "row", text: p.symbol }),
    h("td", { text: botName || `#${p.bot}` }),
    h("td", { class: p.side === "long" ? "up" : "down", text: p.side }),
    num(formatPrice(openQuantity(p))),
    num(formatPrice(p.entry_price)),
    num(formatPrice(p.current_price), "mark"),
    num(format(pnl, 2, { plus: true }), `pnl ${signClass(pnl)}`),
  );  // prettier-ignore
}

export function markPosition(tr, p, price) {
  const pnl = unrealizedPnl(p, price);
  tr.querySelector(".mark").textContent = formatPrice(price);
  const cell = tr.querySelector(".pnl");
  cell.textContent = format(pnl, 2, { plus: true });
  cell.className = `num pnl ${signClass(pnl)}`.trim();
  return pnl;
}

// --- Trades ------------------------------------------------------------------------------------

export function tradeRow(t) {
  return h("tr", { "data-trade": t.id },
    h("td", { text: timeText(t.executed_at) }),
    h("th", { scope: "row", text: t.symbol }),
    h("td", { class: t.side === "buy" ? "up" : "down", text: t.side }),
    num(formatPrice(t.quantity)),
    num(formatPrice(t.price)),
    num(format(t.realized_pnl, 2, { plus: true }), signClass(t.realized_pnl)),
  );  // prettier-ignore
}

// --- Performance -------------------------------------------------------------------------------

const factor = (value) => (value === null ? "–" : format(value, 2));
const rate = (value) => (value === null ? "–" : percent(value, 1));

export function perfBotRow(b) {
  return h("tr", {},
    h("th", { scope: "row", text: b.bot_name }), num(String(b.trades)), num(rate(b.win_rate)),
    num(format(b.net_pnl, 2, { plus: true }), signClass(b.net_pnl)), num(factor(b.profit_factor)),
    num(b.max_drawdown_pct === null ? "–" : format(b.max_drawdown_pct, 2) + " %"),
  );  // prettier-ignore
}

export function perfSymbolRow(s) {
  return h("tr", {},
    h("th", { scope: "row", text: s.symbol }), num(String(s.trades)), num(rate(s.win_rate)),
    num(format(s.net_pnl, 2, { plus: true }), signClass(s.net_pnl)), num(factor(s.profit_factor)),
  );  // prettier-ignore
}
