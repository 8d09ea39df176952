// Health: readiness, the in-process doctor checks, recent failures, route outcomes and turn latency over time.

import { get } from "./api.js";
import { h, legend, lines, report, stackedBars, timeEl } from "./ui.js";

export async function render(root) {
  const ready = h("section", { class: "card", "aria-labelledby": "ready-title" }, h("h2", { id: "ready-title" }, "Readiness"));
  const checks = h("section", { class: "card", "aria-labelledby": "checks-title" }, h("h2", { id: "checks-title" }, "Checks"));
  const failures = h("section", { class: "card", "aria-labelledby": "failures-title" }, h("h2", { id: "failures-title" }, "Recent failures"));
  const routes = h("section", { class: "card chart-card", "aria-labelledby": "routes-title" }, h("h2", { id: "routes-title" }, "Route outcomes"));
  const latency = h("section", { class: "card chart-card", "aria-labelledby": "latency-title" }, h("h2", { id: "latency-title" }, "Turn latency"));
  root.append(h("h1", {}, "Health"), h("div", { class: "health-grid" }, ready, checks, routes, latency, failures));

  try {
    const res = await fetch("/readyz", { cache: "no-store" });
    const body = await res.json();
    ready.append(h("p", {}, h("span", { class: `badge ${body.ok ? "pass" : "fail"}`, id: "ready" }, body.ok ? "ready" : "not ready"), " ",
      body.ok ? `serving graphs: ${(body.graphs || []).join(", ")}` : body.detail || ""));
  } catch {
    ready.append(h("p", {}, h("span", { class: "badge fail", id: "ready" }, "unreachable"), " Nova did not answer."));
  }

  let data;
  try {
    data = await get("/web/api/health");
  } catch (err) {
    checks.append(h("p", { class: "empty" }, "The checks could not be loaded."));
    report(err, "Loading health failed");
    return null;
  }
  checks.append(h("ul", { class: "checks", id: "checks" }, data.checks.map((c) =>
    h("li", { class: c.ok ? "pass" : "fail" }, h("span", { class: `badge ${c.ok ? "pass" : "fail"}` }, c.ok ? "pass" : "fail"), " ",
      h("strong", {}, c.name), ` ${c.detail || ""}`, c.fix ? h("span", { class: "muted" }, ` Fix: ${c.fix}`) : null))));

  failures.append(data.failures.length
    ? h("ul", { class: "failures" }, data.failures.map((f) => h("li", {}, timeEl(f.created_at), " ",
        h("strong", {}, `${f.error_node || "?"}: ${f.error_kind || "error"}`), ` ${f.error || ""} `,
        h("a", { href: `#/threads/${encodeURIComponent(f.thread_id)}` }, "thread"))))
    : h("p", { class: "empty" }, "No failed turns."));

  const outcomes = data.routes.outcomes;
  if (data.routes.points.length) {
    const total = data.routes.points.reduce((sum, p) => sum + Object.values(p.counts).reduce((a, b) => a + b, 0), 0);
    routes.append(h("p", { class: "muted" }, `${total} decisions in the last 7 days, per ${Math.round(data.routes.bucket_s / 60)} min`),
      stackedBars(data.routes.points, outcomes, { title: `Route outcomes over time: ${total} decisions` }), legend(outcomes));
  } else routes.append(h("p", { class: "empty" }, "No routing decisions yet."));

  if (data.latency.points.length) {
    const turns = data.latency.points.reduce((sum, p) => sum + p.turns, 0);
    const errors = data.latency.points.reduce((sum, p) => sum + p.errors, 0);
    latency.append(h("p", { class: "muted" }, `${turns} turns, ${errors} failed, per ${Math.round(data.latency.bucket_s / 60)} min`),
      lines(data.latency.points, ["p50_ms", "p95_ms"], { title: "Turn latency p50 and p95 over time", unit: " ms" }), legend(["p50", "p95"]));
  } else latency.append(h("p", { class: "empty" }, "No turns yet."));
  return null;
}

