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

export const get = (url) => request("GET", url);
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
