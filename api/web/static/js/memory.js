// Memory: the core profile, archive search, and per-subject supersession chains with provenance.

import { get, post } from "./api.js";
import { clear, h, report, short, timeEl } from "./ui.js";

function provenance(m) {
  const p = m.provenance || m;
  return h("p", { class: "provenance muted" },
    "From ", p.thread_id ? h("a", { href: `#/threads/${encodeURIComponent(p.thread_id)}` }, `thread ${short(p.thread_id, 13)}`) : "no thread",
    p.agent_id ? ` via ${p.agent_id}` : "",
    p.method ? ` (${p.method})` : "",
    p.extracted_at ? [", ", timeEl(p.extracted_at)] : "");
}

export async function render(root, params) {
  const overview = h("section", { class: "card", "aria-labelledby": "core-title" });
  const query = h("input", { id: "memory-q", name: "q", type: "search", required: true, autocomplete: "off" });
  const results = h("div", { id: "memory-results", "aria-live": "polite" });
  const search = h("form", { class: "inline-form", role: "search" },
    h("label", { for: "memory-q" }, "Search your memories"), query, h("button", { type: "submit", class: "primary" }, "Search"));
  const historyEl = h("section", { class: "card", id: "memory-history", "aria-labelledby": "history-title", hidden: true, tabindex: "-1" });
  root.append(
    h("h1", {}, "Memory"),
    h("div", { class: "memory-grid" }, overview,
      h("section", { class: "card", "aria-labelledby": "search-title" }, h("h2", { id: "search-title" }, "Archive search"), search, results),
      historyEl));

  async function act(memory, action) {
    const path = action === "unpin" ? "pin" : action;
    try {
      await post(`/nova/memory/${encodeURIComponent(memory.id)}/${path}`, action === "unpin" ? { pinned: false } : undefined);
      await Promise.all([loadOverview(), historyEl.hidden ? null : showHistory(historyEl.dataset.subject)]);
    } catch (err) {
      report(err, `Could not ${action} the memory`);
    }
  }

  function actions(m) {
    const buttons = [];
    if (m.status === "active" && m.tier !== "discarded") {
      buttons.push(h("button", { type: "button", class: "quiet", onclick: () => act(m, m.pinned ? "unpin" : "pin") }, m.pinned ? "Unpin" : "Pin"));
      buttons.push(h("button", { type: "button", class: "quiet danger", onclick: () => act(m, "forget") }, "Forget"));
    }
    if (m.tier === "discarded") buttons.push(h("button", { type: "button", class: "quiet", onclick: () => act(m, "restore") }, "Restore"));
    else if (m.status === "superseded")
      buttons.push(h("button", { type: "button", class: "quiet", onclick: () => act(m, "restore") }, "Reinstate"));
    return buttons.length ? h("div", { class: "actions" }, buttons) : null;
  }

  function subjectLink(subject) {
    const href = `#/memory/${encodeURIComponent(subject)}`;
    return h("a", { href, class: "subject", dataset: { subject }, onclick: (event) => {
      event.preventDefault(); // keep the search results: show the history beside them
      history.pushState(null, "", href);
      showHistory(subject);
    } }, subject);
  }

  async function loadOverview() {
    try {
      const data = await get("/nova/memory");
      const core = data.core || [];
      const counts = data.counts || {};
      clear(overview,
        h("h2", { id: "core-title" }, "Core profile"),
        h("p", { class: "muted" }, `${counts.core ?? core.length} core · ${counts.archive ?? "?"} archive · ${counts.superseded ?? "?"} superseded · ${counts.discarded ?? "?"} forgotten`),
        core.length
          ? h("ul", { class: "memory-list" }, core.map((m) => h("li", {},
              h("p", {}, m.pinned ? h("span", { class: "badge pinned" }, "pinned") : null, " ", subjectLink(m.subject), ": ", m.text),
              provenance(m), actions(m))))
          : h("p", { class: "empty" }, "Nothing in the core profile yet. Tell Nova “my editor is vim” or “remember that …”."));
    } catch (err) {
      clear(overview, h("h2", { id: "core-title" }, "Core profile"),
        h("p", { class: "empty" }, err.status === 404 ? "This server has no memory endpoints yet." : "The core profile could not be loaded."));
      if (err.status !== 404) report(err, "Loading memory failed");
    }
  }

  async function showHistory(subject) {
    if (!subject) return;
    historyEl.hidden = false;
    historyEl.dataset.subject = subject;
    clear(historyEl, h("p", { class: "loading" }, `Loading the history of ${subject}…`));
    try {
      const data = await get(`/nova/memory/subjects/${encodeURIComponent(subject)}/history`);
      const chain = data.memories || [];
      const byId = new Map(chain.map((m) => [m.id, m]));
      clear(historyEl,
        h("h2", { id: "history-title" }, `History of “${subject}”`),
        h("p", { class: "muted" }, "Oldest first: each fact, when it held, what replaced it, and where it came from."),
        chain.length
          ? h("ol", { class: "chain", id: "chain" }, chain.map((m) => h("li", { class: `status-${m.status} tier-${m.tier}`, dataset: { id: m.id } },
              h("p", {}, h("span", { class: `badge status-${m.status}` }, m.status), " ", h("span", { class: `badge tier-${m.tier}` }, m.tier), " ", h("strong", {}, m.text)),
              h("p", { class: "muted" }, "Held from ", timeEl(m.valid_from),
                m.superseded_at ? [" until ", timeEl(m.superseded_at)] : " until now",
                m.superseded_by ? ` · replaced by “${short((byId.get(m.superseded_by) || {}).text || m.superseded_by, 50)}”` : ""),
              provenance(m), actions(m))))
          : h("p", { class: "empty" }, "No memories about this subject."));
      historyEl.focus();
    } catch (err) {
      clear(historyEl, h("p", { class: "empty" }, `The history of ${subject} could not be loaded.`));
      report(err, "Loading the history failed");
    }
  }

  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(results, h("p", { class: "loading" }, "Searching…"));
    try {
      const data = await get(`/nova/memory/search?q=${encodeURIComponent(query.value)}`);
      const hits = data.results || [];
      clear(results, hits.length
        ? h("ul", { class: "memory-list", id: "memory-hits" }, hits.map((m) => h("li", {},
            h("p", {}, subjectLink(m.subject), ": ", m.text),
            h("p", { class: "muted" }, `${m.tier} · relevance ${Number(m.score).toFixed(2)}`))))
        : h("p", { class: "empty" }, `No memories match “${query.value}”.`));
    } catch (err) {
      clear(results, h("p", { class: "empty" }, "The search failed."));
      report(err, "Searching memory failed");
    }
  });

  await loadOverview();
  if (params[0]) await showHistory(params[0]);
  return null;
}

