// Exact decimal arithmetic on the API's decimal strings, with BigInt: money is never a float here.
// Only charts turn values into numbers, to place pixels.

function split(text) {
  let s = String(text).trim();
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s.startsWith("-");
    s = s.slice(1);
  }
  const [whole, fraction = ""] = s.split(".");
  return { negative, whole: whole || "0", fraction };
}

export function scaleOf(text) {
  return split(text).fraction.length;
}

// "12.5" at scale 3 -> 12500n
export function toUnits(text, scale) {
  const { negative, whole, fraction } = split(text);
  const digits = whole + fraction.slice(0, scale).padEnd(scale, "0");
  const value = BigInt(digits);
  return negative ? -value : value;
}

// Round half away from zero (as PostgreSQL's ROUND does) from one scale to a smaller one.
export function rescale(units, from, to) {
  if (to >= from) return units * 10n ** BigInt(to - from);
  const divisor = 10n ** BigInt(from - to);
  const quotient = units / divisor; // truncates toward zero
  const remainder = units % divisor;
  const magnitude = remainder < 0n ? -remainder : remainder;
  if (magnitude * 2n >= divisor) return quotient + (units < 0n ? -1n : 1n);
  return quotient;
}

export function toText(units, scale, { group = false, plus = false } = {}) {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  let whole = scale ? digits.slice(0, -scale) : digits;
  const fraction = scale ? digits.slice(-scale) : "";
  if (group) whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const sign = negative ? "-" : plus && units > 0n ? "+" : "";
  return sign + whole + (scale ? "." + fraction : "");
}

// A decimal string for display: rounded to `places`, thousands grouped.
export function format(text, places = 2, { plus = false } = {}) {
  if (text === null || text === undefined || text === "") return "–";
  const scale = scaleOf(text);
  return toText(rescale(toUnits(text, scale), scale, places), places, { group: true, plus });
}

// A price or quantity for display: its significant decimals, at most 8.
export function formatPrice(text) {
  if (text === null || text === undefined) return "–";
  const { whole } = split(text);
  const places = whole.replace(/^0+/, "").length >= 4 ? 2 : whole !== "0" ? 4 : 8;
  return format(text, places);
}

export function sign(text) {
  const units = toUnits(text, scaleOf(text));
  return units > 0n ? 1 : units < 0n ? -1 : 0;
}

export function percent(text, places = 2) {
  // "0.4683" -> "46.83 %"
  if (text === null || text === undefined) return "–";
  const scale = scaleOf(text);
  return toText(rescale(toUnits(text, scale) * 100n, scale, places), places) + " %";
}

const PRICE = 12; // prices and quantities have 12 decimal places
const MONEY = 8; // cash and PnL have 8

// (mark - entry) x open quantity x direction, rounded to money: what the API computes.
export function unrealizedPnl(position, mark) {
  const diff = toUnits(mark, PRICE) - toUnits(position.entry_price, PRICE);
  const open = toUnits(position.quantity, PRICE) - toUnits(position.closed_quantity, PRICE);
  const direction = position.side === "long" ? 1n : -1n;
  return toText(rescale(diff * open * direction, 2 * PRICE, MONEY), MONEY);
}
