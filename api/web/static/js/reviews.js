// Reviews: every thread paused at a review gate, newest first; approve, edit in place, or reject with a comment.

import { get, post } from "./api.js";
import { append, clear, h, json, messageText, renderDiff, report, short, showBanner, timeEl } from "./ui.js";
import { refreshReviewCount } from "./app.js";

function evidenceList(items) {
  if (!items || (Array.isArray(items) && !items.length)) return null;
  const list = Array.isArray(items) ? items : [items];
  return h("ul", { class: "evidence" }, list.map((item) => h("li", {}, typeof item === "string" ? item : JSON.stringify(item))));
}

function checksList(checks) {
  if (!checks || (Array.isArray(checks) && !checks.length)) return null;
  const list = Array.isArray(checks) ? checks : Object.entries(checks).map(([name, value]) => ({ name, ...(typeof value === "object" ? value : { ok: value }) }));
  return h("ul", { class: "checks" }, list.map((c) => {
    if (typeof c === "string") return h("li", {}, c);
    const ok = c.ok ?? c.passed ?? (c.status ? ["pass", "passed", "ok", "success"].includes(String(c.status)) : undefined);
    const label = ok === undefined ? "" : ok ? "pass" : "fail";
    return h("li", { class: ok === false ? "fail" : ok ? "pass" : undefined },
      label ? h("span", { class: `badge ${label}` }, label) : null, " ", h("strong", {}, c.name || c.check || ""), c.detail || c.output ? ` ${c.detail || c.output}` : "");
  }));
}

function section(title, ...children) {
  const content = children.filter(Boolean);
  if (!content.length) return null;
  return h("section", { class: "part" }, h("h4", {}, title), content);
}

// The editable part of each action: which arg is edited in place, and how it is shown.
const EDITABLE = { apply_patch: "diff", publish_text: "text" };

function requestView(request, editor) {
  const { action, args = {} } = request.action_request;
  if (action === "apply_patch") {
    return [
      args.target ? h("p", {}, "Target: ", h("code", {}, String(args.target))) : null,
      args.risk ? h("p", {}, "Risk: ", h("span", { class: `badge risk-${args.risk}` }, String(args.risk))) : null,
      section("Rationale", args.rationale ? h("p", {}, String(args.rationale)) : null),
      editor,
      section("Evidence", evidenceList(args.evidence)),
      section("Checks", checksList(args.checks)),
    ];
  }
  if (action === "publish_text") {
    return [
      args.audience ? h("p", {}, "Audience: ", String(args.audience)) : null,
      editor,
      section("Sources", evidenceList(args.sources)),
    ];
  }
  if (action === "resolve_memory_conflict") {
    const memories = args.memories || [];
    return [
      h("p", {}, "Subject: ", h("strong", {}, String(args.subject || ""))),
      h("ol", { class: "memories" }, memories.map((m) => h("li", {},
        typeof m === "string" ? m : [h("span", {}, m.text || JSON.stringify(m)), m.valid_from ? [" ", h("span", { class: "muted" }, `since ${m.valid_from}`)] : null,
          m.thread_id ? [" ", h("a", { href: `#/threads/${encodeURIComponent(m.thread_id)}` }, "source thread")] : null]))),
      args.suggestion ? section("Suggestion", h("p", {}, typeof args.suggestion === "string" ? args.suggestion : JSON.stringify(args.suggestion))) : null,
    ];
  }
  return [section("Arguments", json(args))];
}

function makeEditor(action, args, id) {
  const field = EDITABLE[action];
  if (!field || typeof args[field] !== "string") return { view: null, value: () => null };
  const original = args[field];
  const preview = h("div", { class: "preview" }, field === "diff" ? renderDiff(original) : h("div", { class: "draft" }, original));
  const area = h("textarea", { id: `edit-${id}`, class: field === "diff" ? "code" : undefined, rows: field === "diff" ? "14" : "8", spellcheck: field === "diff" ? "false" : "true" });
  area.value = original;
  area.addEventListener("input", () => {
    clear(preview, field === "diff" ? renderDiff(area.value, "Edited change") : h("div", { class: "draft" }, area.value));
  });
  const wrap = h("div", { class: "editor", hidden: true }, h("label", { for: `edit-${id}` }, field === "diff" ? "Edit the diff" : "Edit the text"), area);
  return {
    view: h("div", {}, preview, wrap),
    toggle: () => {
      wrap.hidden = !wrap.hidden;
      if (!wrap.hidden) area.focus();
      return !wrap.hidden;
    },
    changed: () => area.value !== original,
    value: () => ({ ...args, [field]: area.value }),
    label: field,
  };
}

function outcomeOf(result) {
  if (result && result.__error__) return { kind: "error", text: `The run failed: ${result.__error__.message || result.__error__.error}` };
  if (result && result.__interrupt__ && result.__interrupt__.length) {
    const value = result.__interrupt__[0].value || {};
    return { kind: "warning", text: `The gate asks again: ${value.description || "see the review below"}` };
  }
  const messages = (result && result.messages) || [];
  const last = messages[messages.length - 1];
  return { kind: "success", text: last ? `Done. ${short(messageText(last.content), 160)}` : "Done." };
}

function reviewCard(review, refresh) {
  const pending = review.interrupts || [];
  const card = h("article", { class: "review card", dataset: { threadId: review.thread_id }, "aria-labelledby": `review-${review.thread_id}` });
  const outcome = h("p", { class: "outcome", role: "status" });
  const header = h("header", {},
    h("h2", { id: `review-${review.thread_id}` }, short(review.title || (pending[0] && pending[0].value && pending[0].value.description) || review.thread_id, 90)),
    h("p", { class: "muted" }, `${review.graph_id || "graph"} · thread `, h("a", { href: `#/threads/${encodeURIComponent(review.thread_id)}` }, review.thread_id), " · ", timeEl(review.updated_at)));
  card.append(header);

  pending.forEach((interrupt, n) => {
    const value = interrupt.value;
    const id = `${review.thread_id}-${n}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const block = h("div", { class: "interrupt" });
    if (!value || typeof value !== "object" || !value.action_request) {
      block.append(h("p", {}, "This pause asks:"), json(value));
      const answer = h("input", { id: `answer-${id}`, type: "text" });
      block.append(h("div", { class: "inline-form" }, h("label", { for: `answer-${id}` }, "Answer"), answer,
        h("button", { type: "button", class: "primary", onclick: () => decide(answer.value) }, "Send answer")));
      card.append(block);
      return;
    }
    const { action, args = {} } = value.action_request;
    const config = value.config || {};
    const editor = makeEditor(action, args, id);
    append(block, h("h3", {}, h("span", { class: "badge action" }, action), " ", value.description || ""), requestView(value, editor.view));
    const comment = h("textarea", { id: `comment-${id}`, rows: "3" });
    const rejectBox = h("div", { class: "reject-box", hidden: true },
      h("label", { for: `comment-${id}` }, "Why are you rejecting it? Nova gets this comment."), comment,
      h("button", { type: "button", class: "danger", dataset: { act: "send-reject" }, onclick: () => {
        if (!comment.value.trim()) { comment.focus(); outcome.textContent = "Write a comment first."; return; }
        decide({ type: "respond", args: comment.value.trim() });
      } }, "Send rejection"));
    const actions = h("div", { class: "actions" });
    if (config.allow_accept !== false)
      actions.append(h("button", { type: "button", class: "primary", dataset: { act: "approve" }, onclick: () =>
        decide(editor.changed && editor.changed() ? { type: "edit", args: editor.value() } : { type: "accept" }) }, "Approve"));
    if (config.allow_edit !== false && editor.toggle) {
      const editButton = h("button", { type: "button", dataset: { act: "edit" }, "aria-expanded": "false" }, `Edit ${editor.label}`);
      editButton.addEventListener("click", () => editButton.setAttribute("aria-expanded", String(editor.toggle())));
      actions.append(editButton);
    }
    if (config.allow_respond !== false)
      actions.append(h("button", { type: "button", class: "danger", dataset: { act: "reject" }, onclick: () => {
        rejectBox.hidden = false;
        comment.focus();
      } }, "Reject with comment"));
    if (config.allow_ignore !== false)
      actions.append(h("button", { type: "button", class: "quiet", dataset: { act: "ignore" }, onclick: () => decide({ type: "ignore" }) }, "Ignore"));
    block.append(actions, rejectBox);
    card.append(block);

    async function decide(decision) {
      const resume = pending.length > 1 ? { [interrupt.id]: decision } : decision;
      card.setAttribute("aria-busy", "true");
      card.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      outcome.className = "outcome";
      outcome.textContent = "Resuming the thread…";
      try {
        const result = await post(`/threads/${encodeURIComponent(review.thread_id)}/runs/wait`, {
          assistant_id: review.assistant_id || review.graph_id,
          command: { resume },
        });
        const thread = await get(`/threads/${encodeURIComponent(review.thread_id)}`);
        const { kind, text } = outcomeOf(result);
        outcome.className = `outcome ${kind}`;
        outcome.textContent = `${text} Thread status: ${thread.status}.`;
        card.classList.add("decided");
        card.dataset.status = thread.status;
        refreshReviewCount();
        if (kind === "warning") setTimeout(refresh, 1500);
      } catch (err) {
        card.querySelectorAll("button").forEach((b) => { b.disabled = false; });
        if (err.kind === "conflict") {
          showBanner(`Already decided: ${err.message}. Someone else acted on this review; the list is refreshed.`, { kind: "warning" });
          outcome.className = "outcome warning";
          outcome.textContent = "This review was already decided elsewhere.";
          card.classList.add("decided");
          card.querySelectorAll("button").forEach((b) => { b.disabled = true; });
        } else {
          outcome.className = "outcome error";
          outcome.textContent = `Could not resume: ${err.message}`;
          report(err, "Resuming the thread failed");
        }
      } finally {
        card.removeAttribute("aria-busy");
      }
    }
  });
  card.append(outcome);
  return card;
}

export async function render(root) {
  const listEl = h("div", { class: "reviews", id: "reviews" });
  const refreshButton = h("button", { type: "button", class: "quiet" }, "Refresh");
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Reviews"), refreshButton),
    h("p", { class: "muted" }, "Everything paused for your decision, across graphs, newest first."), listEl);
  async function load() {
    clear(listEl, h("p", { class: "loading" }, "Loading reviews…"));
    try {
      const { reviews } = await get("/nova/reviews?limit=100");
      clear(listEl);
      if (!reviews.length) listEl.append(h("p", { class: "empty" }, "Nothing is waiting for you."));
      reviews.forEach((review) => listEl.append(reviewCard(review, load)));
    } catch (err) {
      clear(listEl, h("p", { class: "empty" }, "Reviews could not be loaded."));
      report(err, "Loading reviews failed");
    }
  }
  refreshButton.addEventListener("click", load);
  await load();
}
