// Tiny DOM builders: elements, tables, chips, relative times. Text is always set as text.
import { parseTime } from "./api.js";

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function chip(text, kind) {
  return h("span", { class: `chip ${kind || ""}` }, text);
}

/** A chip coloured by a state word (online, failed, healthy, critical, ...). */
export function stateChip(state) {
  const s = String(state ?? "-");
  const good = ["online", "up", "healthy", "acknowledged", "completed", "succeeded", "resolved",
    "passed", "pass", "ok", "active", "true", "promoted", "activated"];
  const bad = ["offline", "down", "failed", "rolled_back", "critical", "open", "error", "fail",
    "aborted", "cancelled", "expired", "drifted", "activation_failed"];
  const warn = ["reconnecting", "pending", "warning", "queued", "running", "in_progress",
    "paused", "shadow", "wait", "waiting", "awaiting_approval"];
  const kind = good.includes(s) ? "good" : bad.includes(s) ? "bad" : warn.includes(s) ? "warn" : "";
  return chip(s.replaceAll("_", " "), kind);
}

export function ago(value) {
  const t = parseTime(value);
  if (!Number.isFinite(t)) return "-";
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return "just now";
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function timeCell(value) {
  return h("span", { title: value || "" }, ago(value));
}

/** A table; ``columns``: [[header, row => cell (string or Node)], ...]. */
export function table(rows, columns, empty = "nothing yet") {
  if (!rows || rows.length === 0) return h("p", { class: "empty" }, empty);
  const head = h("tr", {}, columns.map(([name]) => h("th", {}, name)));
  const body = rows.map((row) => h("tr", {}, columns.map(([, cell]) => {
    const v = cell(row);
    return h("td", {}, v === undefined || v === null || v === "" ? "-" : v);
  })));
  return h("table", { class: "grid" }, h("thead", {}, head), h("tbody", {}, body));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function stat(label, value, kind) {
  return h("div", { class: `stat ${kind || ""}` }, h("b", {}, String(value)), h("span", {}, label));
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function pct(x, digits = 1) {
  return Number.isFinite(x) ? `${(x * 100).toFixed(digits)} %` : "-";
}
