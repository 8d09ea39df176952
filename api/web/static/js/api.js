// Talking to Nova's HTTP API: JSON requests, SSE streams, the CSRF token, and errors the pages can show.

let csrf = null;
const authLost = new Set();

export function setCsrf(token) {
  csrf = token || null;
}

export function onAuthLost(listener) {
  authLost.add(listener);
}

export class ApiError extends Error {
  constructor(message, status, kind) {
    super(message);
    this.status = status;
    this.kind = kind; // offline | auth | forbidden | conflict | server | client
  }
}

const OFFLINE = "Nova is not reachable: the server may be down or restarting. Retrying in the background.";

function headersFor(method, hasBody, accept = "application/json") {
  const headers = { accept };
  if (hasBody) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrf) headers["x-csrf-token"] = csrf;
  return headers;
}

async function failure(res) {
  let message = "";
  try {
    const body = await res.json();
    message = body.message || (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
  } catch {
    message = res.statusText;
  }
  const kind =
    res.status === 401 ? "auth"
    : res.status === 403 ? "forbidden"
    : res.status === 409 ? "conflict"
    : res.status >= 500 ? "server"
    : "client";
  const err = new ApiError(message || `request failed (HTTP ${res.status})`, res.status, kind);
  if (res.status === 401) authLost.forEach((listener) => listener(err));
  return err;
}

export async function request(path, { method = "GET", body, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: headersFor(method, body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(OFFLINE, 0, "offline");
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, options) => request(path, { ...options, method: "GET" });
export const post = (path, body, options) => request(path, { ...options, method: "POST", body });

// POST and read a text/event-stream, calling onEvent(event, data) per frame; resolves at the end of the stream.
export async function stream(path, body, onEvent, { signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method: "POST",
      headers: headersFor("POST", true, "text/event-stream"),
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(OFFLINE, 0, "offline");
  }
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const flush = (frame) => {
    let event = "message";
    const data = [];
    for (const line of frame.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    let parsed = data.join("\n");
    try {
      parsed = JSON.parse(parsed);
    } catch {
      // keep the raw text
    }
    onEvent(event, parsed);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const frames = buffer.split(/\r?\n\r?\n/);
      buffer = frames.pop();
      frames.forEach(flush);
    }
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("The connection to Nova dropped while the reply was streaming.", 0, "offline");
  }
  if (buffer.trim()) flush(buffer);
}
