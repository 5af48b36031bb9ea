"""The dashboard's tables rendered by the server, from the API bodies the page carries: the same
markup and figures as web/static/web/js/panels.js builds in the browser (each function here
mirrors the one of the same name there; keep them in step), so the rows are in the document
when it is parsed instead of being made by the scripts after it.

Figures are formatted exactly as decimal.js does (Decimal arithmetic, half away from zero, no
float); text is escaped (bot names are user input). ``test_browser`` compares each panel's
markup with what the JavaScript renders from the same bodies.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any

DASH = "\u2013"  # what the page shows for no value (an en dash)
PRICE_PLACES = 12
MONEY_PLACES = 8


def _text(value: str) -> str:
    return escape(value, quote=False)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _places(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _digits(value: Decimal, places: int, *, group: bool, plus: bool) -> str:
    """decimal.js toText: a rounded value with exactly ``places`` decimals, no "-0"."""
    sign = "-" if value < 0 else "+" if plus and value > 0 else ""
    return sign + format(abs(value), f"{',' if group else ''}.{places}f")


def fmt(text: str | None, places: int = 2, *, plus: bool = False) -> str:
    """decimal.js format: rounded to ``places``, thousands grouped."""
    if text is None or text == "":
        return DASH
    return _digits(_places(Decimal(text), places), places, group=True, plus=plus)


def fmt_price(text: str | None) -> str:
    """decimal.js formatPrice: 2 decimals from 1,000 up, 4 from 1, else 8."""
    if text is None:
        return DASH
    whole = int(abs(Decimal(text)))
    places = 2 if len(str(whole)) >= 4 else 4 if whole else 8
    return fmt(text, places)


def percent(text: str | None, places: int = 2) -> str:
    if text is None:
        return DASH
    return _digits(_places(Decimal(text) * 100, places), places, group=False, plus=False) + " %"


def sign_class(text: str | None) -> str:
    if text is None:
        return ""
    value = Decimal(text)
    return "up" if value > 0 else "down" if value < 0 else ""


def time_text(iso: str | None) -> str:
    if not iso:
        return DASH
    text = iso.replace("T", " ", 1)
    if text.endswith("Z"):
        text = text[:-1]
        dot = text.rfind(".")
        if dot != -1 and text[dot + 1 :].isdigit():
            text = text[:dot]
    return text


def _num(text: str, cls: str = "") -> str:
    return f'<td class="{_attr(f"num {cls}".strip())}">{_text(text)}</td>'


def _class(cls: str) -> str:
    return f' class="{_attr(cls)}"' if cls else ""


# --- Account stats -----------------------------------------------------------------------------


def stats(s: dict[str, Any]) -> str:
    ret = s["return_pct"]
    items = [
        ("Equity", fmt(s["equity"]), ""),
        ("Cash", fmt(s["cash"]), ""),
        ("Margin in use", fmt(s["margin"]), ""),
        ("Realized PnL", fmt(s["net_realized_pnl"], 2, plus=True), sign_class(s["net_realized_pnl"])),
        ("Unrealized PnL", fmt(s["unrealized_pnl"], 2, plus=True), sign_class(s["unrealized_pnl"])),
        ("Return", DASH if ret is None else fmt(ret, 2, plus=True) + " %", sign_class(ret)),
        ("Win rate", DASH if s["win_rate"] is None else percent(s["win_rate"]), ""),
        ("Open positions", str(s["open_positions"]), ""),
        ("Trades", f"{s['trade_count']:,}", ""),
        ("Bots active", f"{s['bots']['active']} of {s['bots']['total']}", ""),
    ]  # fmt: skip
    return "".join(
        f"<div><dt>{_text(label)}</dt><dd{_class(cls)}>{_text(value)}</dd></div>"
        for label, value, cls in items
    )


# --- Bots --------------------------------------------------------------------------------------

# trading.services.BOT_TRANSITIONS, as panels.js has it.
TRANSITIONS = {
    "inactive": ("active", "stopped"),
    "active": ("paused", "stopped"),
    "paused": ("active", "stopped"),
    "stopped": ("active",),
}
ACTIONS = (("start", "Start", "active"), ("pause", "Pause", "paused"), ("stop", "Stop", "stopped"))


def bot_row(bot: dict[str, Any]) -> str:
    allowed = TRANSITIONS.get(bot["status"], ())
    name = bot["name"]
    buttons = "".join(
        f'<button type="button" data-action="{action}" aria-label="{_attr(f"{label} {name}")}"'
        f"{'' if target in allowed else ' disabled'}>{label}</button>"
        for action, label, target in ACTIONS
    )
    status = _attr(bot["status"])
    detail = f"{bot['strategy']} · {', '.join(bot['symbols'])}"
    return (
        f'<tr data-bot="{bot["id"]}"><th scope="row">{_text(name)}'
        f'<div class="muted small">{_text(detail)}</div></th>'
        f'<td><span class="badge {status}" data-role="status">{status}</span></td>'
        f"{_num(fmt(bot['capital']))}"
        f'<td><div class="controls-cell">{buttons}</div></td></tr>'
    )


def bots(body: dict[str, Any]) -> str:
    return "".join(bot_row(bot) for bot in body["results"])


# --- Positions ---------------------------------------------------------------------------------


def open_quantity(p: dict[str, Any]) -> str:
    value = Decimal(p["quantity"]) - Decimal(p["closed_quantity"])
    return _digits(_places(value, PRICE_PLACES), PRICE_PLACES, group=False, plus=False)


def unrealized_pnl(p: dict[str, Any], mark: str) -> str:
    direction = 1 if p["side"] == "long" else -1
    value = (Decimal(mark) - Decimal(p["entry_price"])) * Decimal(open_quantity(p)) * direction
    return _digits(_places(value, MONEY_PLACES), MONEY_PLACES, group=False, plus=False)


def position_row(p: dict[str, Any]) -> str:
    pnl = p.get("unrealized_pnl")
    if pnl is None:
        pnl = unrealized_pnl(p, p["current_price"])
    bot = p.get("bot_name") or f"#{p['bot']}"
    return (
        f'<tr data-position="{p["id"]}" data-symbol="{_attr(p["symbol"])}" '
        f'data-side="{_attr(p["side"])}" data-entry="{_attr(p["entry_price"])}" '
        f'data-quantity="{_attr(p["quantity"])}" data-closed="{_attr(p["closed_quantity"])}">'
        f'<th scope="row">{_text(p["symbol"])}</th><td>{_text(bot)}</td>'
        f'<td class="{"up" if p["side"] == "long" else "down"}">{_text(p["side"])}</td>'
        f"{_num(fmt_price(open_quantity(p)))}{_num(fmt_price(p['entry_price']))}"
        f"{_num(fmt_price(p['current_price']), 'mark')}"
        f"{_num(fmt(pnl, 2, plus=True), f'pnl {sign_class(pnl)}')}</tr>"
    )


def positions(body: dict[str, Any]) -> tuple[str, str]:
    """The rows, and the count beside the heading."""
    rows = body["results"]
    total = body["total"]
    count = f"({len(rows)} of {total})" if total > len(rows) else f"({total})"
    return "".join(position_row(p) for p in rows), count


# --- Trades ------------------------------------------------------------------------------------


def trade_row(t: dict[str, Any]) -> str:
    return (
        f'<tr data-trade="{t["id"]}" data-at="{_attr(t["executed_at"])}">'
        f"<td>{_text(time_text(t['executed_at']))}</td>"
        f'<th scope="row">{_text(t["symbol"])}</th>'
        f'<td class="{"up" if t["side"] == "buy" else "down"}">{_text(t["side"])}</td>'
        f"{_num(fmt_price(t['quantity']))}{_num(fmt_price(t['price']))}"
        f"{_num(fmt(t['realized_pnl'], 2, plus=True), sign_class(t['realized_pnl']))}</tr>"
    )


def trades(body: dict[str, Any]) -> tuple[str, str]:
    """The rows, and the count beside the heading (dashboard.js showTradesCount)."""
    plus = "+" if body.get("total_is_lower_bound") else ""
    return "".join(trade_row(t) for t in body["results"]), f"({body['total']:,}{plus})"


# --- Performance -------------------------------------------------------------------------------


def _factor(value: str | None) -> str:
    return DASH if value is None else fmt(value, 2)


def _rate(value: str | None) -> str:
    return DASH if value is None else percent(value, 1)


def perf_bot_row(b: dict[str, Any]) -> str:
    drawdown = b["max_drawdown_pct"]
    return (
        f'<tr><th scope="row">{_text(b["bot_name"])}</th>{_num(str(b["trades"]))}'
        f"{_num(_rate(b['win_rate']))}"
        f"{_num(fmt(b['net_pnl'], 2, plus=True), sign_class(b['net_pnl']))}"
        f"{_num(_factor(b['profit_factor']))}"
        f"{_num(DASH if drawdown is None else fmt(drawdown, 2) + ' %')}</tr>"
    )


def perf_symbol_row(s: dict[str, Any]) -> str:
    return (
        f'<tr><th scope="row">{_text(s["symbol"])}</th>{_num(str(s["trades"]))}'
        f"{_num(_rate(s['win_rate']))}"
        f"{_num(fmt(s['net_pnl'], 2, plus=True), sign_class(s['net_pnl']))}"
        f"{_num(_factor(s['profit_factor']))}</tr>"
    )


def performance(body: dict[str, Any]) -> tuple[str, str]:
    """The per-bot rows and the per-symbol rows."""
    return (
        "".join(perf_bot_row(b) for b in body["bots"]),
        "".join(perf_symbol_row(s) for s in body["symbols"]),
    )
