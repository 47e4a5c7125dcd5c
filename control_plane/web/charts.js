// Small SVG line charts over time: axes with readable ticks, several series, threshold
// lines, a legend and a hover title per point. No dependencies.
const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = [
  "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
  "#65a30d", "#9333ea",
];
const W = 640;
const H = 230;
const PAD = { left: 58, right: 14, top: 12, bottom: 30 };
let rendered = 0;

/** Charts drawn with data since the last reset (what the browser test checks). */
export function renderedCount() {
  return rendered;
}

export function resetCount() {
  rendered = 0;
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About ``count`` round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5, minStep = 0) {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / count, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toFixed(10)));
  }
  return ticks;
}

function timeLabel(ms, span) {
  const d = new Date(ms);
  const hm = d.toISOString().slice(11, 16);
  if (span < 600000) return d.toISOString().slice(11, 19);
  return span > 2 * 86400000 ? d.toISOString().slice(5, 10) : hm;
}

function formatValue(v, digits) {
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return v.toFixed(digits);
}

/**
 * Draw a line chart into ``container``.
 * opts: {title, series: [{name, points: [[ms, y], ...], color?, dashed?}], yLabel,
 *        yMin?, yMax?, digits?, thresholds?: [{y, label}], empty?: text,
 *        step?: draw steps (counts), xTick?: n => label with integer x (versions) instead of time,
 *        xRange?: [ms, ms] the time axis's span (default: the points')}
 * Returns true when there was data to draw.
 */
export function lineChart(container, opts) {
  const box = document.createElement("figure");
  box.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = opts.title;
  box.appendChild(caption);
  container.appendChild(box);
  const series = (opts.series || [])
    .map((s, i) => ({
      ...s,
      color: s.color || PALETTE[i % PALETTE.length],
      points: s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]))
        .sort((a, b) => a[0] - b[0]),
    }))
    .filter((s) => s.points.length > 0);
  if (series.length === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = opts.empty || "no data yet";
    box.appendChild(p);
    return false;
  }
  const all = series.flatMap((s) => s.points);
  let x0 = opts.xRange ? opts.xRange[0] : Math.min(...all.map((p) => p[0]));
  let x1 = opts.xRange ? opts.xRange[1] : Math.max(...all.map((p) => p[0]));
  const pad0 = opts.xTick ? 0.5 : 30000;
  if (!opts.xRange && (x1 === x0 || opts.xTick)) { x0 -= pad0; x1 += pad0; }
  const ys = all.map((p) => p[1]).concat((opts.thresholds || []).map((t) => t.y));
  let y0 = opts.yMin ?? Math.min(...ys);
  let y1 = opts.yMax ?? Math.max(...ys);
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.05;
  if (opts.yMin === undefined) y0 -= pad;
  if (opts.yMax === undefined) y1 += pad;
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "plot" });
  svg.appendChild(el("title", {}, opts.title));
  const digits = opts.digits ?? 2;
  for (const t of niceTicks(y0, y1, 5, digits === 0 ? 1 : 0)) {
    svg.appendChild(el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(t), y2: sy(t),
      class: "grid" }));
    svg.appendChild(el("text", { x: PAD.left - 6, y: sy(t) + 4, class: "tick",
      "text-anchor": "end" }, formatValue(t, digits)));
  }
  const span = x1 - x0;
  if (opts.xTick) {
    const every = Math.max(1, Math.ceil(span / 10));
    for (let x = Math.ceil(x0); x <= x1; x += every) {
      svg.appendChild(el("text", { x: sx(x), y: H - 10, class: "tick", "text-anchor": "middle" },
        opts.xTick(x)));
    }
  } else {
    for (let i = 0; i <= 4; i += 1) {
      const x = x0 + (span * i) / 4;
      svg.appendChild(el("text", { x: sx(x), y: H - 10, class: "tick",
        "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, timeLabel(x, span)));
    }
  }
  svg.appendChild(el("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom,
    class: "axis" }));
  svg.appendChild(el("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom,
    y2: H - PAD.bottom, class: "axis" }));
  if (opts.yLabel) {
    svg.appendChild(el("text", { x: 11, y: PAD.top + (H - PAD.top - PAD.bottom) / 2,
      class: "ylabel", transform: `rotate(-90 11 ${PAD.top + (H - PAD.top - PAD.bottom) / 2})`,
      "text-anchor": "middle" }, opts.yLabel));
  }
  for (const t of opts.thresholds || []) {
    svg.appendChild(el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(t.y), y2: sy(t.y),
      class: "threshold" }));
    svg.appendChild(el("text", { x: W - PAD.right - 4, y: sy(t.y) - 4, class: "tick threshold-label",
      "text-anchor": "end" }, t.label));
  }
  for (const s of series) {
    const d = s.points.map((p, i) => {
      const xy = `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`;
      if (i === 0) return `M${xy}`;
      // Steps: hold the previous value until this point (counts change at events).
      return opts.step ? `H${sx(p[0]).toFixed(1)}V${sy(p[1]).toFixed(1)}` : `L${xy}`;
    });
    svg.appendChild(el("path", { d: d.join(""), class: "line", stroke: s.color,
      "stroke-dasharray": s.dashed ? "5 4" : "none" }));
    if (s.points.length <= 80) {
      for (const p of s.points) {
        const dot = el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.6, fill: s.color });
        const at = opts.xTick ? opts.xTick(p[0]) : new Date(p[0]).toISOString();
        dot.appendChild(el("title", {}, `${s.name}: ${formatValue(p[1], digits + 1)} at ${at}`));
        svg.appendChild(dot);
      }
    }
  }
  box.appendChild(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = s.color;
    item.append(swatch, s.name);
    legend.appendChild(item);
  }
  box.appendChild(legend);
  rendered += 1;
  return true;
}
