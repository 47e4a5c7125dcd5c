// The park manager's view: per camera, the animals in view now, visits per hour by class,
// a heat map of where they went, and a snapshot of the latest frame when an operator asks.
import { get, getBlob, parseTime, send } from "./api.js";
import { lineChart, PALETTE } from "./charts.js";
import { chip, h, link, section, stat, stateChip, table, timeCell } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "2 dogs, 1 cat" from tracks in view. */
function inViewChips(animals) {
  if (!animals.length) return [chip("no animal in view")];
  const counts = {};
  for (const a of animals) counts[a.label || "unknown"] = (counts[a.label || "unknown"] || 0) + 1;
  return Object.entries(counts).map(([label, n]) => chip(plural(n, label), "good"));
}

/** Why a camera is not up, in the agent's words, as a badge. */
export function cameraBadge(cam) {
  const c = stateChip(cam.online ? cam.state || "unknown" : "offline");
  if (!cam.online) c.title = "the device is offline: check its power and network";
  else if (cam.state && cam.state !== "up") c.title = cam.detail || "no reason reported";
  const reason = cam.online && cam.state !== "up" && cam.detail
    ? h("span", { class: "muted reason" }, cam.detail) : "";
  return h("span", {}, c, reason);
}

/** The heat map: a grid of cells, darker where animals were seen more often. */
function heatmap(cam) {
  const cols = cam.heatmap_cols;
  const rows = cam.heatmap_rows;
  const top = Math.max(...cam.heatmap, 0);
  const box = h("figure", { class: "chart heatmap" },
    h("figcaption", {}, "Where animals were (track centres, darker is more)"));
  if (!top) {
    box.append(h("p", { class: "empty" }, "no animal tracked in this range"));
    return box;
  }
  const cell = 20;
  const plot = svg("svg", { viewBox: `0 0 ${cols * cell} ${rows * cell}`, role: "img",
    class: "plot heat" });
  plot.append(svg("rect", { x: 0, y: 0, width: cols * cell, height: rows * cell, fill: "#f1f5f9" }));
  cam.heatmap.forEach((v, i) => {
    if (!v) return;
    const r = svg("rect", { x: (i % cols) * cell, y: Math.floor(i / cols) * cell, width: cell,
      height: cell, fill: "#dc2626", "fill-opacity": (0.15 + 0.85 * (v / top)).toFixed(2) });
    r.append(svg("title", {}, `${v} frame-track${v === 1 ? "" : "s"}`));
    plot.append(r);
  });
  box.append(plot);
  return box;
}

function hourly(container, cam, since, until) {
  const labels = [...new Set(cam.hourly.flatMap((x) => Object.keys(x.animals)))].sort();
  const hours = [];
  for (let t = Math.ceil(since / 3.6e6) * 3.6e6; t <= until; t += 3.6e6) hours.push(t);
  const byHour = new Map(cam.hourly.map((x) => [parseTime(x.hour), x.animals]));
  lineChart(container, {
    title: "Animals that appeared, per hour, by class", yLabel: "animals", yMin: 0, digits: 0,
    step: true,
    series: labels.map((label, i) => ({
      name: label, color: PALETTE[i % PALETTE.length],
      points: hours.map((t) => [t, (byHour.get(t) || {})[label] || 0]),
    })),
    empty: "no animal appeared in this range",
  });
}

/** The latest snapshot with its boxes drawn over it, or a button to ask for one. */
function snapshotBlock(cam, rerender) {
  const base = `/devices/${encodeURIComponent(cam.device_id)}/cameras/${encodeURIComponent(cam.camera_id)}/snapshot`;
  const out = h("div", { class: "snapshot" });
  const button = h("button", { type: "button", class: "action" }, "Ask for a snapshot");
  const note = h("span", { class: "muted" },
    " one frame with its boxes, sent once by the device; frames are never streamed");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await send("POST", base);
      note.textContent = " asked; the device answers within seconds";
      window.setTimeout(rerender, 4000);
    } catch (e) {
      note.textContent = ` ${e.message}`;
      note.className = "bad";
      button.disabled = false;
    }
  });
  out.append(h("p", {}, button, note));
  const snap = cam.snapshot;
  if (!snap) return out;
  const frame = h("div", { class: "frame" });
  out.append(h("p", { class: "muted" }, "snapshot taken ", timeCell(snap.captured_at),
    ` · ${snap.width}×${snap.height} · ${plural(snap.boxes.length, "box")}`), frame);
  getBlob(`/artifacts/${snap.image_sha256}`).then((blob) => {
    const img = h("img", { alt: `snapshot of ${cam.camera_id}`, src: URL.createObjectURL(blob) });
    const over = svg("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none", class: "boxes" });
    for (const b of snap.boxes) {
      const [x, y, w, hh] = b.box;
      over.append(svg("rect", { x, y, width: w, height: hh, class: `box box-${b.label}` }));
      const t = svg("text", { x, y: Math.max(y - 0.01, 0.03), class: "box-label" },
        `${b.label} ${Math.round(100 * b.confidence)}%`);
      over.append(t);
    }
    frame.append(img, over);
  }).catch((e) => frame.append(h("p", { class: "bad" }, `snapshot image: ${e.message}`)));
  return out;
}

function cameraCard(cam, view, rerender) {
  const since = parseTime(view.since);
  const until = parseTime(view.until);
  const charts = h("div", { class: "charts" });
  hourly(charts, cam, since, until);
  charts.append(heatmap(cam));
  const totals = Object.entries(cam.totals).map(([label, n]) => chip(plural(n, label)));
  return h("section", { class: "card camera" },
    h("h2", {}, `${cam.device_id} · ${cam.camera_id} `, cameraBadge(cam),
      cam.condition ? chip(cam.condition) : "", cam.mode ? chip(`${cam.mode} mode`) : ""),
    h("p", { class: "chips" }, h("b", {}, "in view now: "), inViewChips(cam.in_view),
      cam.in_view.length ? h("span", { class: "muted" }, " since ",
        timeCell(cam.in_view.map((a) => a.since).sort()[0])) : ""),
    h("p", { class: "chips" }, h("b", {}, "in the last 24 h: "),
      totals.length ? totals : chip("none"),
      cam.mean_dwell_seconds !== null
        ? chip(`mean stay ${Math.round(cam.mean_dwell_seconds)} s`) : "",
      h("span", { class: "muted" }, " last window "), timeCell(cam.last_window_at)),
    charts,
    snapshotBlock(cam, rerender));
}

const MAX_CARDS = 12;
const active = (c) => c.in_view.length > 0 || Object.keys(c.totals).length > 0;

export async function parkView(main, deviceId, rerender) {
  const view = await get("/park", deviceId ? { device: deviceId, hours: 24 } : { hours: 24 });
  const cams = view.cameras;
  const inView = cams.flatMap((c) => c.in_view);
  const totals = {};
  for (const c of cams) for (const [k, n] of Object.entries(c.totals)) totals[k] = (totals[k] || 0) + n;
  if (deviceId) main.append(h("h1", {}, `Park view of ${deviceId} `, link("#/park", "(all cameras)")));
  main.append(h("div", { class: "stats" },
    stat("cameras", cams.length),
    stat("cameras not up", cams.filter((c) => !c.online || c.state !== "up").length,
      cams.some((c) => !c.online || c.state !== "up") ? "warn" : ""),
    stat("animals in view now", inView.length, inView.length ? "good" : ""),
    ...Object.entries(totals).map(([k, n]) => stat(`${k}s in 24 h`, n)),
  ));
  if (!cams.length) {
    main.append(section("Park", h("p", { class: "empty" },
      "no camera has reported yet: provision a device and start its agent (see Fleet)")));
    return;
  }
  main.append(section(`Cameras (${cams.length})`, table(cams, [
    ["camera", (c) => link(`#/park/${encodeURIComponent(c.device_id)}`, `${c.device_id} · ${c.camera_id}`)],
    ["state", cameraBadge],
    ["condition", (c) => c.condition || "-"],
    ["in view now", (c) => h("span", { class: "chips" }, inViewChips(c.in_view))],
    ["last 24 h", (c) => Object.entries(c.totals).map(([k, n]) => plural(n, k)).join(", ") || "none"],
    ["last window", (c) => timeCell(c.last_window_at)],
  ])));
  // Cards for the cameras that saw animals (all of one device's when it is chosen).
  const shown = (deviceId ? cams : cams.filter(active)).slice(0, MAX_CARDS);
  for (const cam of shown) main.append(cameraCard(cam, view, rerender));
  if (!shown.length) {
    main.append(section("Animals", h("p", { class: "empty" },
      "no animal seen in the last 24 h; pick a camera above for its snapshot")));
  }
}
