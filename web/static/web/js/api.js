// The REST API, as any client reads it: the session cookie authenticates, the CSRF token (from the
// page's meta tag, so an HttpOnly CSRF cookie works too) protects the writes.

export class ApiError extends Error {
  constructor(status, body) {
    super(messageOf(body) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function messageOf(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.detail === "string") return body.detail;
  for (const value of Object.values(body)) {
    if (Array.isArray(value) && value.length) return String(value[0]);
    if (typeof value === "string") return value;
  }
  return "";
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

let onUnauthenticated = () => {};
export function whenLoggedOut(callback) {
  onUnauthenticated = callback;
}

export async function request(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRFToken"] = csrfToken();
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  const response = await fetch(url, init);
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) onUnauthenticated();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The page's first data (web/initial.py): the body of each API request made at start, rendered
// into the page. Each entry answers the first GET of its URL only; later reads go over HTTP.
const island = readIsland();

function readIsland() {
  const element = document.getElementById("zb-initial");
  try {
    if (element) return JSON.parse(element.textContent);
  } catch {
    // a broken island only costs the requests it would have saved
  }
  return { seq: null, requests: {}, candles: null };
}

// The event number the island's data is as of (null: unknown, or no island).
export const initialSeq = island.seq;

// The key web/initial.py gives a URL: its path, then its non-empty parameters sorted by name.
function keyOf(url) {
  const parsed = new URL(url, location.href);
  const params = [...parsed.searchParams].filter(([, value]) => value !== "");
  params.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${parsed.pathname}?${params.map(([k, v]) => `${k}=${v}`).join("&")}`;
}

function takeInitial(url) {
  const key = keyOf(url);
  if (!Object.hasOwn(island.requests, key)) return undefined;
  const body = island.requests[key];
  delete island.requests[key];
  return body;
}

// The candle panel's first bodies ({symbol, timeframe, indicator, ohlcv, indicators, trades}),
// once; null when the page came without them.
export function takeInitialCandles() {
  const candles = island.candles;
  island.candles = null;
  return candles;
}

export const get = (url) => {
  const body = takeInitial(url);
  return body === undefined ? request("GET", url) : Promise.resolve(body);
};
export const post = (url, body) => request("POST", url, body);

export function query(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const qs = search.toString();
  return qs ? `${path}?${qs}` : path;
}

// The keyset cursor that continues after `row` (zerobot.lib.pagination.encode_cursor: base64url
// of "<ISO time>|<id>" without padding). Used once, after the first page; later pages follow the
// server's own `next` links.
export function cursorAfter(row, timeField) {
  const raw = `${row[timeField]}|${row.id}`;
  return btoa(raw).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
