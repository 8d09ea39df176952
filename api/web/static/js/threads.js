// Threads and pipelines: every thread with its status, a thread's checkpoint timeline, pipeline step
// progress, and resuming a pipeline that stopped.

import { get, post } from "./api.js";
import { append, clear, h, json, messageText, report, short, statusBadge, timeEl } from "./ui.js";

function titleOf(t) {
  const values = t.values || {};
  const first = (values.messages || []).find((m) => m.type === "human");
  if (first) return short(messageText(first.content), 60);
  if (values.pipeline) return `pipeline ${values.pipeline}`;
  return t.thread_id;
}

function pipelineView(values, thread, onResume) {
  const steps = values.steps || [];
  const failure = values.failure || values.error || null;
  const stopped = thread.status === "error" || values.status === "failed";
  return h("section", { class: "card", "aria-labelledby": "pipeline-title" },
    h("h2", { id: "pipeline-title" }, `Pipeline ${values.pipeline || ""} `, values.status ? statusBadge(values.status) : null),
    steps.length
      ? h("ol", { class: "steps", id: "pipeline-steps" }, steps.map((s) => h("li", { class: `step-${s.status}` },
          h("span", { class: `badge step-${s.status}` }, s.status), " ", h("strong", {}, s.step), s.summary ? ` ${short(s.summary, 140)}` : "",
          s.ms !== undefined ? h("span", { class: "muted" }, ` · ${Math.round(s.ms)} ms`) : null)))
      : h("p", { class: "muted" }, "No step has finished yet."),
    failure ? h("div", { class: "failure", role: "status" }, h("h3", {}, "Failure"), typeof failure === "string" ? h("p", {}, failure) : json(failure)) : null,
    stopped ? h("button", { type: "button", class: "primary", id: "resume", onclick: onResume }, "Resume from the last checkpoint") : null,
  );
}

async function detail(root, threadId) {
  const thread = await get(`/threads/${encodeURIComponent(threadId)}`);
  const history = await get(`/threads/${encodeURIComponent(threadId)}/history?limit=50`);
  const values = thread.values || {};
  const graph = (thread.metadata || {}).graph_id || "nova";
  const outcome = h("p", { class: "outcome", role: "status" });
  const resume = async () => {
    outcome.textContent = "Resuming…";
    try {
      const result = await post(`/threads/${encodeURIComponent(threadId)}/runs/wait`, { assistant_id: graph, input: null });
      outcome.textContent = result && result.__error__ ? `It stopped again: ${result.__error__.message}` : "Resumed.";
      setTimeout(() => window.dispatchEvent(new HashChangeEvent("hashchange")), 800);
    } catch (err) {
      outcome.textContent = `Could not resume: ${err.message}`;
      report(err, "Resuming failed");
    }
  };
  const interrupts = Object.values(thread.interrupts || {}).flat();
  append(
    root,
    h("p", {}, h("a", { href: "#/threads" }, "← All threads")),
    h("div", { class: "page-head" }, h("h1", {}, titleOf(thread)), statusBadge(thread.status)),
    h("p", { class: "muted" }, `graph ${graph} · thread ${threadId} · updated `, timeEl(thread.updated_at),
      graph === "nova" ? [" · ", h("a", { href: `#/chat/${encodeURIComponent(threadId)}` }, "open in chat")] : null),
    interrupts.length ? h("p", { class: "note" }, `Waiting for a review. `, h("a", { href: "#/reviews" }, "Open the reviews")) : null,
    graph === "pipeline" || values.pipeline ? pipelineView(values, thread, resume) : null,
    graph !== "pipeline" && !values.pipeline && thread.status === "error"
      ? h("button", { type: "button", class: "primary", id: "resume", onclick: resume }, "Resume from the last checkpoint") : null,
    outcome,
    h("section", { class: "card", "aria-labelledby": "timeline-title" },
      h("h2", { id: "timeline-title" }, "Timeline"),
      h("p", { class: "muted" }, "Checkpoints, newest first."),
      h("ol", { class: "timeline", id: "timeline" }, history.map((state) => {
        const meta = state.metadata || {};
        const wrote = meta.writes ? Object.keys(meta.writes) : [];
        return h("li", {},
          timeEl(state.created_at), " ",
          h("span", { class: "badge" }, meta.source || "step"), ` step ${meta.step ?? "?"}`,
          wrote.length ? ` · wrote ${wrote.join(", ")}` : "",
          state.next && state.next.length ? ` · next ${state.next.join(", ")}` : " · end",
          (state.interrupts || []).length ? h("span", { class: "badge status-interrupted" }, "paused") : null);
      }))),
  );
}

export async function render(root, params) {
  if (params[0]) {
    try {
      await detail(root, params[0]);
    } catch (err) {
      root.append(h("p", {}, h("a", { href: "#/threads" }, "← All threads")), h("p", { class: "empty" }, "This thread could not be loaded."));
      report(err, "Loading the thread failed");
    }
    return null;
  }
  const filter = h("select", { id: "status-filter" }, ["all", "idle", "busy", "interrupted", "error"].map((s) => h("option", { value: s }, s)));
  const body = h("tbody", {});
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Threads and pipelines"),
      h("div", { class: "inline-form" }, h("label", { for: "status-filter" }, "Status"), filter)),
    h("table", { class: "threads-table", id: "threads-table" },
      h("thead", {}, h("tr", {}, ["Thread", "Graph", "Status", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
      body),
  );
  async function load() {
    clear(body, h("tr", {}, h("td", { colspan: "4", class: "loading" }, "Loading threads…")));
    const search = { limit: 100, select: ["thread_id", "updated_at", "metadata", "status", "values"] };
    if (filter.value !== "all") search.status = filter.value;
    try {
      const found = await post("/threads/search", search);
      clear(body);
      if (!found.length) body.append(h("tr", {}, h("td", { colspan: "4", class: "empty" }, "No threads.")));
      for (const t of found) {
        const graph = (t.metadata || {}).graph_id || "nova";
        const steps = (t.values || {}).steps;
        body.append(h("tr", { dataset: { threadId: t.thread_id } },
          h("th", { scope: "row" }, h("a", { href: `#/threads/${encodeURIComponent(t.thread_id)}` }, titleOf(t))),
          h("td", {}, graph, steps ? h("span", { class: "muted" }, ` · ${steps.length} steps`) : null),
          h("td", {}, statusBadge(t.status)),
          h("td", {}, timeEl(t.updated_at))));
      }
    } catch (err) {
      clear(body, h("tr", {}, h("td", { colspan: "4", class: "empty" }, "Threads could not be loaded.")));
      report(err, "Loading threads failed");
    }
  }
  filter.addEventListener("change", load);
  await load();
  return null;
}
