// DOM helpers (text only, never innerHTML with data), the banner, diffs and small SVG charts.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, ...children);
  return node;
}

export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, ...children);
  return node;
}

// --- banner -----------------------------------------------------------------------------------------

const banner = () => document.getElementById("banner");
let bannerSource = null;

export function showBanner(message, { kind = "error", source = "page", action } = {}) {
  const el = banner();
  bannerSource = source;
  el.className = `banner ${kind}`;
  clear(el, h("span", { class: "banner-text" }, message));
  if (action) el.append(h("button", { type: "button", class: "quiet", onclick: action.run }, action.label));
  el.append(h("button", { type: "button", class: "quiet close", "aria-label": "Dismiss", onclick: hideBanner }, "×"));
  el.hidden = false;
}

export function hideBanner(source) {
  if (typeof source === "string" && bannerSource !== source) return;
  const el = banner();
  el.hidden = true;
  el.replaceChildren();
  bannerSource = null;
}

// Show an API error in the banner (session expiry is handled by the app shell).
export function report(err, what) {
  if (err && err.name === "AbortError") return;
  if (err && err.kind === "auth") return;
  const prefix = what ? `${what}: ` : "";
  if (err && err.kind === "conflict") showBanner(`${prefix}${err.message}`, { kind: "warning" });
  else showBanner(`${prefix}${err && err.message ? err.message : err}`);
}

// --- formatting -------------------------------------------------------------------------------------

export function when(iso) {
  if (!iso) return "";
  const date = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function timeEl(iso) {
  return h("time", { datetime: typeof iso === "string" ? iso : undefined }, when(iso));
}

export function messageText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === "string" ? part : part.text || "")).join("");
  return content === undefined || content === null ? "" : JSON.stringify(content);
}

export function short(text, limit = 60) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  return flat.length > limit ? `${flat.slice(0, limit - 1)}…` : flat;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status || "unknown");
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// --- diffs ------------------------------------------------------------------------------------------

export function diffLines(text) {
  return String(text || "")
    .replace(/\n$/, "")
    .split("\n")
    .map((line) => {
      if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") || line.startsWith("index "))
        return { kind: "meta", line };
      if (line.startsWith("@@")) return { kind: "hunk", line };
      if (line.startsWith("+")) return { kind: "add", line };
      if (line.startsWith("-")) return { kind: "del", line };
      return { kind: "ctx", line };
    });
}

export function renderDiff(text, label = "Proposed change") {
  const lines = diffLines(text);
  const added = lines.filter((l) => l.kind === "add").length;
  const removed = lines.filter((l) => l.kind === "del").length;
  const code = h("code", {});
  for (const { kind, line } of lines) {
    const sign = kind === "add" ? "added" : kind === "del" ? "removed" : null;
    code.append(h("span", { class: `diff-line diff-${kind}`, "aria-label": sign ? `${sign}: ${line.slice(1)}` : undefined }, line || " "), "\n");
  }
  return h(
    "figure",
    { class: "diff" },
    h("figcaption", {}, `${label}: `, h("span", { class: "diff-added" }, `+${added}`), " ", h("span", { class: "diff-removed" }, `−${removed}`)),
    h("pre", { tabindex: "0", "aria-label": label }, code),
  );
}

// --- charts (inline SVG) ------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

function titled(node, text) {
  node.append(s("title", {}, document.createTextNode(text)));
  return node;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// Stacked bars: points [{at, counts: {series: n}}], series names in order.
export function stackedBars(points, series, { title, width = 560, height = 180 } = {}) {
  const pad = { left: 34, right: 8, top: 10, bottom: 24 };
  const max = Math.max(1, ...points.map((p) => Object.values(p.counts).reduce((a, b) => a + b, 0)));
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const slot = innerW / Math.max(points.length, 1);
  const bar = Math.max(4, Math.min(36, slot * 0.7));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": title });
  svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + innerH, y2: pad.top + innerH, class: "axis" }));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + 8, class: "tick", "text-anchor": "end" }, document.createTextNode(String(max))));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + innerH, class: "tick", "text-anchor": "end" }, document.createTextNode("0")));
  points.forEach((p, i) => {
    let y = pad.top + innerH;
    const x = pad.left + i * slot + (slot - bar) / 2;
    series.forEach((name, k) => {
      const n = p.counts[name] || 0;
      if (!n) return;
      const hgt = (n / max) * innerH;
      y -= hgt;
      svg.append(titled(s("rect", { x, y, width: bar, height: hgt, class: `series-${k}` }), `${clock(p.at)} ${name}: ${n}`));
    });
    if (points.length <= 8 || i % Math.ceil(points.length / 8) === 0)
      svg.append(s("text", { x: x + bar / 2, y: height - 6, class: "tick", "text-anchor": "middle" }, document.createTextNode(clock(p.at))));
  });
  return svg;
}

// Lines: points [{at, ...}], keys to draw, each its own series colour.
export function lines(points, keys, { title, width = 560, height = 180, unit = "" } = {}) {
  const pad = { left: 44, right: 8, top: 10, bottom: 24 };
  const max = Math.max(1, ...points.flatMap((p) => keys.map((k) => p[k] || 0)));
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const xAt = (i) => pad.left + (points.length > 1 ? (i / (points.length - 1)) * innerW : innerW / 2);
  const yAt = (v) => pad.top + innerH - (v / max) * innerH;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": title });
  svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + innerH, y2: pad.top + innerH, class: "axis" }));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + 8, class: "tick", "text-anchor": "end" }, document.createTextNode(`${Math.round(max)}${unit}`)));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + innerH, class: "tick", "text-anchor": "end" }, document.createTextNode(`0${unit}`)));
  keys.forEach((key, k) => {
    const path = points.map((p, i) => `${i ? "L" : "M"}${xAt(i).toFixed(1)},${yAt(p[key] || 0).toFixed(1)}`).join(" ");
    svg.append(s("path", { d: path, class: `line series-${k}` }));
    points.forEach((p, i) =>
      svg.append(titled(s("circle", { cx: xAt(i), cy: yAt(p[key] || 0), r: 3, class: `dot series-${k}` }), `${clock(p.at)} ${key}: ${p[key]}${unit}`)),
    );
  });
  points.forEach((p, i) => {
    if (points.length <= 8 || i % Math.ceil(points.length / 8) === 0)
      svg.append(s("text", { x: xAt(i), y: height - 6, class: "tick", "text-anchor": "middle" }, document.createTextNode(clock(p.at))));
  });
  return svg;
}

export function legend(names) {
  return h("ul", { class: "legend" }, names.map((name, k) => h("li", {}, h("span", { class: `swatch series-${k}`, "aria-hidden": "true" }), name)));
}
