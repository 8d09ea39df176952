// The app shell: session and login, hash routes, the reachability heartbeat, the pending-review count.

import { ApiError, get, onAuthLost, post, setCsrf } from "./api.js";
import { clear, h, hideBanner, report, showBanner } from "./ui.js";
import * as chat from "./chat.js";
import * as reviews from "./reviews.js";
import * as memory from "./memory.js";
import * as threads from "./threads.js";
import * as health from "./health.js";

const PAGES = { chat, reviews, memory, threads, health };
const HEARTBEAT_MS = 4000;

const state = { user: null, auth: true, cleanup: null, offline: false };
const main = () => document.getElementById("main");

function route() {
  const [page, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page: PAGES[page] ? page : "chat", params: rest.map(decodeURIComponent) };
}

async function render() {
  if (!state.user) return;
  const { page, params } = route();
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  hideBanner("page");
  document.querySelectorAll("nav a[data-page]").forEach((a) => {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  const root = clear(main());
  root.dataset.page = page;
  try {
    state.cleanup = (await PAGES[page].render(root, params, { user: state.user })) || null;
  } catch (err) {
    report(err, `The ${page} page could not load`);
    if (!root.childElementCount) root.append(h("p", { class: "empty" }, `The ${page} page could not load. ${err.message || ""}`));
  }
  refreshReviewCount();
}

export async function refreshReviewCount() {
  const badge = document.getElementById("review-count");
  try {
    const { reviews: pending } = await get("/nova/reviews?limit=100");
    badge.textContent = String(pending.length);
    badge.hidden = pending.length === 0;
    badge.setAttribute("aria-label", `${pending.length} pending`);
  } catch {
    badge.hidden = true;
  }
}

function showShell(show) {
  document.getElementById("top").hidden = !show;
  document.getElementById("who").textContent = show ? `Signed in as ${state.user}` : "";
  document.getElementById("logout").hidden = !state.auth;
}

function showLogin(message) {
  state.user = null;
  setCsrf(null);
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  showShell(false);
  const error = h("p", { class: "form-error", id: "login-error", role: "alert" }, message || "");
  const input = h("input", {
    id: "api-key",
    name: "api_key",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "login-help login-error",
  });
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "login card", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to Nova"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { class: "help", id: "login-help" }, "One of the keys in NOVA_API_KEYS. You stay signed in for 12 hours on this browser."),
    button,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      const session = await post("/web/login", { api_key: input.value });
      input.value = "";
      await start(session);
    } catch (err) {
      error.textContent = err.kind === "auth" ? "That key is not valid." : err.message;
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  const root = clear(main(), form);
  root.dataset.page = "login";
  input.focus();
}

async function start(session) {
  state.user = session.user;
  state.auth = session.auth !== false;
  setCsrf(session.csrf);
  showShell(true);
  hideBanner("session");
  if (!location.hash) history.replaceState(null, "", "#/chat");
  await render();
  main().focus();
}

async function boot() {
  try {
    await start(await get("/web/api/session"));
  } catch (err) {
    if (err instanceof ApiError && err.kind === "auth") {
      showLogin(/expired/.test(err.message) ? "Your session has expired. Log in again." : "");
    } else {
      clear(main(), h("p", { class: "empty" }, "Nova is not reachable yet."));
      showBanner(err.message, { source: "offline", action: { label: "Retry", run: boot } });
    }
  }
}

async function heartbeat() {
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    if (!res.ok) throw new Error(String(res.status));
    if (state.offline) {
      state.offline = false;
      hideBanner("offline");
      if (!state.user) boot();
    }
  } catch {
    if (!state.offline) {
      state.offline = true;
      showBanner("Nova is not reachable: the server may be down or restarting. Retrying in the background.", {
        source: "offline",
      });
    }
  }
}

onAuthLost(() => {
  if (!state.user) return;
  showLogin("Your session has expired or was revoked. Log in again to continue.");
  showBanner("Your session has expired. Log in again.", { kind: "warning", source: "session" });
});

window.addEventListener("hashchange", render);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", async () => {
    try {
      await post("/web/logout");
    } catch (err) {
      if (err.kind !== "auth") report(err, "Logging out failed");
    }
    showLogin("You are logged out.");
  });
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault(); // the hash is the router's: move focus instead of navigating
    main().focus();
  });
  setInterval(heartbeat, HEARTBEAT_MS);
  boot();
});
window.addEventListener("unhandledrejection", (event) => {
  report(event.reason);
});
