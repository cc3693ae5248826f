// What every dashboard page shares: its configuration, API calls with the session cookie (and the CSRF
// token on every state-changing request), the live event stream, and formatting.

export const config = JSON.parse(document.getElementById("config")?.textContent || "{}");

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A JSON API call with the session cookie; non-GET requests carry the CSRF token. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    headers[config.csrf_header] = config.csrf || "";
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, (data && data.error) || `${resp.status} ${resp.statusText}`);
  }
  return data;
}

/** Follow an event stream; `on` maps event names to handlers. Shows the connection state in `#live`. */
export function follow(url, on) {
  const live = document.getElementById("live");
  const source = new EventSource(url);
  source.addEventListener("open", () => {
    if (live) {
      live.textContent = "live";
      live.className = "live on";
    }
  });
  source.addEventListener("error", () => {
    if (live && source.readyState !== EventSource.CLOSED) {
      live.textContent = "reconnecting…";
      live.className = "live off";
    }
  });
  for (const [name, handler] of Object.entries(on)) {
    source.addEventListener(name, (e) => handler(JSON.parse(e.data), e));
  }
  return source;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "style") Object.assign(node.style, v); // CSSOM: allowed by the page's CSP
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60 ? `${s % 60} s` : ""}`.trim();
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

export function age(epoch) {
  return duration(Date.now() / 1000 - epoch);
}

/** A short word for a state, and its badge class. */
export function stateWord(row) {
  const s = row.state || "";
  if (row.is_deleted) return ["deleted", "stopped"];
  if (s === "SCAN_HAS_FINAL_RESULT") return ["done", "done"];
  if (s.startsWith("ABORTED") || s.startsWith("FINISHED")) return ["stopped", "stopped"];
  if (s.endsWith("PRESTARTUP")) return ["queued", "queued"];
  if (s.endsWith("WAITING_ON_SCANNER_SERVER_STARTUP")) return ["starting", "queued"];
  return ["scanning", "scanning"];
}

export function eventLabel(row) {
  return row.event ? `${row.event.run_id} / ${row.event.event_id}` : "—";
}

export function classifiersText(classifiers) {
  return Object.entries(classifiers || {})
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
}

export function progressBar(done, expected, label) {
  const max = Math.max(expected, done, 1);
  return el("progress", { max: String(max), value: String(done), "aria-label": label, title: label });
}

export function setupSignOut() {
  const button = document.getElementById("signout");
  if (!button) return;
  if (config.signed_in_with !== "session") {
    button.hidden = true;
    return;
  }
  button.addEventListener("click", async () => {
    await api("/dashboard/session", { method: "DELETE" });
    window.location.assign("/dashboard/signin");
  });
}

/** Errors shown on the page (and logged once: the tests check the console stays clean otherwise). */
export function showError(where, err) {
  const node = document.getElementById(where);
  if (node) node.textContent = err instanceof Error ? err.message : String(err);
}
