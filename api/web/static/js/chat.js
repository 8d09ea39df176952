// Chat: conversations in a sidebar, streamed replies marked with the agent that answered, why it went
// there, clarifying questions as buttons, and one-click routing corrections.

import { get, post, stream } from "./api.js";
import { clear, h, messageText, report, short, when } from "./ui.js";

const STREAM_MODES = ["values", "updates", "messages-tuple"];
let roster = null;

async function agents() {
  if (!roster) roster = (await get("/web/api/agents")).agents;
  return roster;
}

function agentOf(message) {
  const meta = message.response_metadata || {};
  return meta.agent || (message.name ? String(message.name).replace("_", ".") : "nova");
}

function isHuman(message) {
  return message.type === "human";
}

function isReply(message) {
  return message.type === "ai" && messageText(message.content).trim() !== "";
}

// Pair each human message with the routing decision logged for it (decisions come newest first).
function decisionsByTurn(messages, decisions) {
  const queue = [...decisions].reverse();
  const paired = new Map();
  messages.forEach((message, index) => {
    if (!isHuman(message)) return;
    const text = messageText(message.content);
    const at = queue.findIndex((d) => d.text === text);
    if (at >= 0) {
      paired.set(index, queue[at]);
      queue.splice(0, at + 1);
    }
  });
  return paired;
}

export async function render(root, params) {
  const ctx = { threadId: params[0] || null, values: null, busy: false, controller: new AbortController() };

  const list = h("ul", { class: "thread-list", id: "thread-list" });
  const sidebar = h(
    "aside",
    { class: "sidebar", "aria-labelledby": "threads-title" },
    h("div", { class: "sidebar-head" }, h("h2", { id: "threads-title" }, "Conversations"),
      h("a", { class: "button primary", href: "#/chat", id: "new-thread" }, "New")),
    list,
  );
  const messages = h("ol", { class: "messages", id: "messages", "aria-label": "Messages", "aria-live": "polite" });
  const clarify = h("div", { class: "clarify", id: "clarify", hidden: true });
  const input = h("textarea", { id: "message", name: "message", rows: "2", required: true, placeholder: "Ask Nova…", "aria-describedby": "composer-help" });
  const sendButton = h("button", { type: "submit", class: "primary", id: "send" }, "Send");
  const form = h(
    "form",
    { class: "composer", "aria-label": "Send a message" },
    h("label", { for: "message", class: "sr-only" }, "Message"),
    input,
    sendButton,
    h("p", { class: "help", id: "composer-help" }, "Enter sends, Shift+Enter adds a line. Start with @agent.id to pick the agent yourself."),
  );
  const why = h("aside", { class: "why", id: "why", hidden: true, "aria-labelledby": "why-title", tabindex: "-1" });
  const conversation = h("section", { class: "conversation", "aria-label": "Conversation" }, messages, clarify, form);
  root.append(h("h1", { class: "sr-only" }, "Chat"), h("div", { class: "chat" }, sidebar, conversation, why));

  async function loadThreads() {
    try {
      const found = await post("/threads/search", { limit: 50, select: ["thread_id", "updated_at", "status", "metadata", "values"] });
      const mine = found.filter((t) => !t.metadata || !t.metadata.graph_id || t.metadata.graph_id === "nova");
      clear(list);
      if (!mine.length) list.append(h("li", { class: "empty" }, "No conversations yet."));
      for (const t of mine) {
        const first = ((t.values && t.values.messages) || []).find(isHuman);
        const title = first ? short(messageText(first.content), 48) : "New conversation";
        list.append(
          h("li", {},
            h("a", {
              href: `#/chat/${encodeURIComponent(t.thread_id)}`,
              class: "thread-link",
              "aria-current": t.thread_id === ctx.threadId ? "page" : undefined,
              dataset: { threadId: t.thread_id },
            }, h("span", { class: "thread-title" }, title), h("span", { class: "thread-when" }, when(t.updated_at)))),
        );
      }
    } catch (err) {
      clear(list, h("li", { class: "empty" }, "Conversations could not be loaded."));
      report(err, "Loading conversations failed");
    }
  }

  function markButton(agent, index) {
    return h("button", {
      type: "button",
      class: `agent-mark${agent === "clarify" ? " is-clarify" : ""}`,
      "aria-controls": "why",
      "aria-expanded": "false",
      title: "Why did this go here?",
      dataset: { index: String(index) },
      onclick: (event) => openWhy(index, event.currentTarget),
    }, agent === "clarify" ? "Nova asks" : agent);
  }

  function renderMessages(values) {
    clear(messages);
    const all = (values && values.messages) || [];
    if (!all.length) {
      messages.append(h("li", { class: "empty" }, "Ask anything: Nova picks the agent and tells you why."));
    }
    all.forEach((message, index) => {
      if (isHuman(message)) {
        messages.append(h("li", { class: "msg user" }, h("span", { class: "sr-only" }, "You: "), h("div", { class: "body" }, messageText(message.content))));
      } else if (isReply(message)) {
        const agent = agentOf(message);
        messages.append(
          h("li", { class: "msg assistant", dataset: { agent } }, h("div", { class: "meta" }, markButton(agent, index)),
            h("div", { class: "body" }, messageText(message.content))),
        );
      }
    });
    // What the last turn's memory write stored or retired: nothing is remembered behind the owner's back.
    // A record the reply already quotes (memory_remember's "(record: ...)") is not said twice.
    const squash = (text) => String(text).split(/\s+/).join(" ");
    const lastReply = squash(all.length ? messageText(all[all.length - 1].content) : "");
    for (const record of (values && values.remembered) || []) {
      if (lastReply.includes(squash(record))) continue;
      messages.append(h("li", { class: "msg memory-note" }, `Memory: ${record}`));
    }
    const error = values && values.error;
    if (error) messages.append(h("li", { class: "msg failed", role: "status" }, `The turn failed at ${error.node}: ${error.message}`));
    renderClarify(values);
    messages.scrollTop = messages.scrollHeight;
  }

  async function renderClarify(values) {
    const pending = (values && values.pending_clarify) || [];
    const all = (values && values.messages) || [];
    const last = all[all.length - 1];
    if (!pending.length || !last || last.type !== "ai") {
      clarify.hidden = true;
      clear(clarify);
      return;
    }
    let cards = [];
    try {
      cards = await agents();
    } catch {
      cards = [];
    }
    const describe = (id) => (cards.find((c) => c.id === id) || {}).description || "";
    clear(
      clarify,
      h("p", { id: "clarify-title" }, "Which agent did you mean?"),
      h("div", { class: "choices", role: "group", "aria-labelledby": "clarify-title" },
        pending.map((id) =>
          h("button", { type: "button", class: "choice", dataset: { agent: id }, onclick: () => send(id) },
            h("strong", {}, id), h("span", {}, short(describe(id), 80))))),
    );
    clarify.hidden = false;
  }

  async function loadThread() {
    if (!ctx.threadId) {
      ctx.values = null;
      renderMessages(null);
      return;
    }
    try {
      const state = await get(`/threads/${encodeURIComponent(ctx.threadId)}/state`, { signal: ctx.controller.signal });
      ctx.values = state.values;
      renderMessages(state.values);
    } catch (err) {
      clear(messages, h("li", { class: "empty" }, "This conversation could not be loaded."));
      report(err, "Loading the conversation failed");
    }
  }

  async function openWhy(index, button) {
    document.querySelectorAll(".agent-mark[aria-expanded=true]").forEach((b) => b.setAttribute("aria-expanded", "false"));
    button.setAttribute("aria-expanded", "true");
    why.hidden = false;
    clear(why, h("p", {}, "Loading the routing decision…"));
    const all = (ctx.values && ctx.values.messages) || [];
    let humanIndex = -1;
    for (let i = index; i >= 0; i -= 1) if (isHuman(all[i])) { humanIndex = i; break; }
    const lastHuman = all.map((m, i) => (isHuman(m) ? i : -1)).filter((i) => i >= 0).pop();
    const latest = humanIndex === lastHuman;
    try {
      const [{ decisions }, cards] = await Promise.all([
        get(`/nova/why/${encodeURIComponent(ctx.threadId)}?limit=100`),
        agents().catch(() => []),
      ]);
      const decision = decisionsByTurn(all, decisions).get(humanIndex);
      renderWhy(decision, { latest, cards, recalled: latest ? ctx.values.recalled || [] : null });
    } catch (err) {
      clear(why, h("p", { class: "form-error" }, `The routing decision could not be loaded: ${err.message}`));
    }
    why.focus();
  }

  function renderWhy(decision, { latest, cards, recalled }) {
    const close = h("button", { type: "button", class: "quiet close", "aria-label": "Close the explanation", onclick: () => {
      why.hidden = true;
      const open = document.querySelector(".agent-mark[aria-expanded=true]");
      if (open) { open.setAttribute("aria-expanded", "false"); open.focus(); }
    } }, "×");
    if (!decision) {
      clear(why, close, h("h2", { id: "why-title" }, "Why this agent"), h("p", {}, "No routing decision was recorded for this reply."));
      return;
    }
    const chosen = decision.chosen === "clarify" ? "a clarifying question" : decision.chosen;
    const candidates = decision.candidates || [];
    const table = h("table", { class: "candidates" },
      h("caption", {}, "Candidates, best first"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Agent"), h("th", { scope: "col" }, "Score"), h("th", { scope: "col" }, "Matched examples"))),
      h("tbody", {}, candidates.map((c) => h("tr", { class: c.id === decision.chosen ? "chosen" : undefined },
        h("th", { scope: "row" }, c.id),
        h("td", {}, h("meter", { min: "0", max: "1", value: String(c.score), "aria-label": `score ${c.score.toFixed(2)}` }), ` ${c.score.toFixed(2)}`),
        h("td", {}, (c.matched || []).length ? h("ul", {}, c.matched.map((m) => h("li", {}, m))) : "—")))));
    const body = [
      close,
      h("h2", { id: "why-title" }, `Why ${chosen}`),
      h("p", { class: "reason" }, decision.reason),
      h("dl", { class: "facts" },
        h("dt", {}, "Method"), h("dd", {}, h("span", { class: "badge", id: "why-method" }, decision.method)),
        h("dt", {}, "Request"), h("dd", {}, short(decision.text, 120)),
        h("dt", {}, "Latency"), h("dd", {}, `${Number(decision.latency_ms || 0).toFixed(1)} ms`),
        decision.fallback ? [h("dt", {}, "Fallback"), h("dd", {}, decision.fallback)] : null,
        h("dt", {}, "When"), h("dd", {}, when(decision.created_at))),
      candidates.length ? table : null,
    ];
    if (recalled) {
      body.push(h("h3", {}, "Memories recalled for this turn"));
      body.push(recalled.length
        ? h("ul", { class: "recalled" }, recalled.map((m) => h("li", {}, h("span", { class: `badge tier-${m.tier}` }, m.tier), " ", h("strong", {}, m.subject), ": ", m.text, h("span", { class: "muted" }, ` (${Number(m.score).toFixed(2)})`))))
        : h("p", { class: "muted" }, "None."));
    } else {
      body.push(h("p", { class: "muted" }, "Recalled memories are kept for the latest turn only."));
    }
    if (latest) body.push(correction(decision, cards));
    clear(why, body);
  }

  function correction(decision, cards) {
    const note = h("p", { class: "note", role: "status", id: "correction-status" });
    const record = async (agentId) => {
      try {
        const done = await post("/web/api/feedback", { thread_id: ctx.threadId, agent_id: agentId });
        note.textContent = `Recorded: “${short(done.text, 60)}” should go to ${done.correct} (was ${done.wrong}). Nova learns it on the next request.`;
      } catch (err) {
        note.textContent = `The correction was not recorded: ${err.message}`;
      }
    };
    const others = (decision.candidates || []).map((c) => c.id).filter((id) => id !== decision.chosen).slice(0, 3);
    const select = h("select", { id: "correct-agent" }, cards.filter((c) => c.id !== decision.chosen).map((c) => h("option", { value: c.id }, c.id)));
    return h("section", { class: "correction", "aria-labelledby": "correction-title" },
      h("h3", { id: "correction-title" }, "Wrong agent?"),
      h("div", { class: "choices" }, others.map((id) =>
        h("button", { type: "button", class: "quiet", dataset: { correct: id }, onclick: () => record(id) }, `Should have gone to ${id}`))),
      h("div", { class: "inline-form" },
        h("label", { for: "correct-agent" }, "Or another agent"), select,
        h("button", { type: "button", onclick: () => record(select.value) }, "Record correction")),
      note);
  }

  async function send(text) {
    text = String(text || "").trim();
    if (!text || ctx.busy) return;
    ctx.busy = true;
    sendButton.disabled = true;
    clarify.hidden = true;
    why.hidden = true;
    const empty = messages.querySelector(".empty");
    if (empty) empty.remove();
    messages.append(h("li", { class: "msg user" }, h("span", { class: "sr-only" }, "You: "), h("div", { class: "body" }, text)));
    const mark = h("span", { class: "agent-mark pending" }, "routing…");
    const reply = h("div", { class: "body streaming" });
    const bubble = h("li", { class: "msg assistant", "aria-busy": "true" }, h("div", { class: "meta" }, mark), reply);
    messages.append(bubble);
    messages.scrollTop = messages.scrollHeight;
    let failure = null;
    let streaming = null; // the id of the message whose tokens the bubble shows
    try {
      if (!ctx.threadId) {
        const created = await post("/threads", { metadata: { graph_id: "nova" } });
        ctx.threadId = created.thread_id;
        history.replaceState(null, "", `#/chat/${encodeURIComponent(ctx.threadId)}`);
      }
      const body = { assistant_id: "nova", input: { messages: [{ role: "user", content: text }] }, stream_mode: STREAM_MODES };
      await stream(`/threads/${encodeURIComponent(ctx.threadId)}/runs/stream`, body, (event, data) => {
        if (event === "updates" && data && data.route_request && data.route_request.route) {
          const chosen = data.route_request.route.chosen;
          mark.textContent = chosen === "clarify" ? "Nova asks" : chosen;
        } else if (event === "messages" && Array.isArray(data)) {
          const [chunk, meta] = data;
          // Only the model call that writes the answer is shown (tool choices and memory notes are not).
          const answer = meta && Array.isArray(meta.tags) && meta.tags.includes("nova:reply");
          if (answer && chunk && chunk.type === "AIMessageChunk") {
            const text = messageText(chunk.content);
            // Another call writing the answer (it repeated an earlier reply, or failed part-way and was retried):
            // what was streamed so far is not the answer.
            if (text && streaming !== null && chunk.id !== streaming) clear(reply);
            if (text) streaming = chunk.id;
            reply.append(text);
          }
        } else if (event === "error") {
          failure = data;
        }
      }, { signal: ctx.controller.signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      failure = { message: err.message };
      report(err, "Sending failed");
    } finally {
      ctx.busy = false;
      sendButton.disabled = false;
      bubble.removeAttribute("aria-busy");
    }
    if (failure) {
      bubble.classList.add("failed");
      clear(reply, h("span", { role: "alert" }, `The run failed: ${failure.message || failure.error || "unknown error"}`));
      mark.textContent = "failed";
      mark.className = "agent-mark failed";
      return;
    }
    await loadThread();
    loadThreads();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (ctx.busy) return; // keep the draft until the current reply ends
    const text = input.value;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.addEventListener("keydown", onEscape);
  function onEscape(event) {
    if (event.key === "Escape" && !why.hidden) why.querySelector(".close").click();
  }

  await Promise.all([loadThreads(), loadThread()]);
  input.focus();
  return () => {
    ctx.controller.abort();
    document.removeEventListener("keydown", onEscape);
  };
}
