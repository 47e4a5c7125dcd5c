// The public API with the operator's token; nothing else leaves the page.
const TOKEN_KEY = "parkwatch.token";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, path, detail) {
    super(`${status} on ${path}: ${detail}`);
    this.status = status;
    this.path = path;
  }
}

export function getToken() {
  return window.localStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  window.localStorage.setItem(TOKEN_KEY, token.trim());
}

export function clearToken() {
  window.localStorage.removeItem(TOKEN_KEY);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function call(method, path, params, body, accept = "application/json") {
  const url = `${path.startsWith("/healthz") ? "" : API}${path}${query(params)}`;
  const headers = { Authorization: `Bearer ${getToken() || ""}`, Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const parsed = (await response.json()).detail || detail;
      detail = typeof parsed === "string" ? parsed : JSON.stringify(parsed);
    } catch (_e) {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, path, detail);
  }
  return response;
}

/** GET a JSON document from the API; 401/403/404 and HTTP errors raise ApiError. */
export async function get(path, params) {
  return (await call("GET", path, params)).json();
}

/** GET a binary document (an image) as a Blob, with the token. */
export async function getBlob(path) {
  return (await call("GET", path, undefined, undefined, "*/*")).blob();
}

/** An operator's action: POST/PATCH/PUT a JSON body; the answer's JSON, or null if none. */
export async function send(method, path, body) {
  const response = await call(method, path, undefined, body);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Items of a list endpoint, newest first as the API returns them, up to ``max``. */
export async function list(path, params, max = 1000) {
  const items = [];
  let offset = 0;
  while (items.length < max) {
    const limit = Math.min(1000, max - items.length);
    const page = await get(path, { ...params, limit, offset });
    items.push(...page.items);
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) break;
  }
  return items;
}

/** Like ``list`` but an endpoint this control plane lacks (404) gives null, not an error. */
export async function optionalList(path, params, max = 1000) {
  try {
    return await list(path, params, max);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** Parse an API timestamp; a stored naive time is UTC. */
export function parseTime(value) {
  if (!value) return NaN;
  const zoned = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  return Date.parse(zoned);
}
