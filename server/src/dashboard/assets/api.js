// The dashboard's only way to the data: the public HTTP API, with the analyst's token as a bearer header.
// The token lives in sessionStorage (gone when the tab closes) and never in a URL.

const TOKEN_KEY = 'eye.token';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
  // Read keys are issued with the `eyr_` prefix (README, "Querying events"); anything else is taken for
  // the admin token and checked on an admin endpoint at sign-in.
  isAdmin: () => !(sessionStorage.getItem(TOKEN_KEY) || '').startsWith('eyr_'),
};

/** An answer other than 2xx: the status and the RFC 9457 problem document, when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem?.errors || []).map((e) => `${e.field}: ${e.message}`).join('; ');
    super([problem?.detail || problem?.title || `HTTP ${status}`, fields].filter(Boolean).join(' — '));
    this.status = status;
    this.problem = problem;
  }
}

function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function request(method, path, { params, body, signal } = {}) {
  const headers = { Authorization: `Bearer ${session.token()}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url(path, params), {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { detail: text }; }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

export const api = {
  applications: (signal) => request('GET', '/v1/admin/applications', { signal }),
  stats: (params, signal) => request('GET', '/v1/stats/events', { params, signal }),
  events: (params, signal) => request('GET', '/v1/events', { params, signal }),
  sessionEvents: (sessionId, params, signal) =>
    request('GET', `/v1/sessions/${encodeURIComponent(sessionId)}/events`, { params, signal }),
  errors: (params, signal) => request('GET', '/v1/errors', { params, signal }),
  replayErrors: (params) => request('POST', '/v1/admin/errors/replay', { params }),
  notifications: (params, signal) => request('GET', '/v1/notifications', { params, signal }),
  eventTypes: (signal) => request('GET', '/v1/admin/event-types', { signal }),
  publishSchema: (category, name, schema) =>
    request('PUT', `/v1/admin/event-types/${encodeURIComponent(category)}/${encodeURIComponent(name)}`, { body: schema }),
};

/** Follows `next_cursor` until the last page or `maxPages`; `key` names the list in each page. */
export async function allPages(fetchPage, key, maxPages, signal) {
  const items = [];
  let cursor;
  for (let page = 0; page < maxPages; page += 1) {
    const answer = await fetchPage(cursor, signal);
    items.push(...answer[key]);
    cursor = answer.next_cursor;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}

/** The service's Prometheus text (`/metrics`, no auth) as `name{labels}` -> number. */
export async function metrics(signal) {
  const response = await fetch('/metrics', { signal });
  if (!response.ok) throw new ApiError(response.status, null);
  const values = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    values.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return values;
}

/** Whether the served OpenAPI spec documents `param` on `GET path` (for features newer than this page). */
export async function specHasParam(path, param, signal) {
  const response = await fetch('/openapi.json', { signal });
  if (!response.ok) return false;
  const spec = await response.json();
  const params = spec.paths?.[path]?.get?.parameters || [];
  return params.some((p) => p.name === param);
}
