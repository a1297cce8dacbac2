// The browser's client of /api/v1: JSON in and out, the session cookie, and the CSRF header
// that the server requires on every cookie-authenticated write.

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (problem && problem.code) || 'error';
    this.errors = (problem && problem.errors) || [];
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

// api('/projects/1/next', {method: 'POST'}) -> parsed JSON, null for 204; throws ApiError.
export async function api(path, { method = 'GET', body, query, keepalive = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let url = '/api/v1' + path;
  if (query) url += '?' + new URLSearchParams(query).toString();
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    keepalive,
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
