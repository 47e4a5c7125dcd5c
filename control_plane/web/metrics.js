// Figures the charts plot, read out of telemetry windows and drift reports. Fields that a
// control plane does not (yet) return give null, and charts skip them.
import { parseTime } from "./api.js";

function numericLeaves(value, path = [], out = []) {
  if (typeof value === "number" && Number.isFinite(value)) out.push([path, value]);
  else if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) numericLeaves(v, path.concat(k), out);
  }
  return out;
}

const last = (path) => String(path[path.length - 1] || "").toLowerCase();

/** The statistic behind a report's verdict: the driving feature's own, not merely the
 * largest (a largest PSI can come from a feature the verdict does not alarm on). */
export function driftScore(stats) {
  const v = (stats || {}).verdict;
  if (v && Number.isFinite(v.statistic)) return v.statistic;
  const top = largest(stats);
  return top ? top.value : null;
}

/** "input.brightness vs baseline (cam0, night)": what drove a report's verdict. */
export function driftDriver(stats) {
  const v = (stats || {}).verdict;
  if (!v || !v.feature) return null;
  const where = [v.camera_id, v.condition].filter(Boolean).join(", ");
  return `${v.feature} vs ${v.reference}${where ? ` (${where})` : ""}`;
}

function largest(stats) {
  const leaves = numericLeaves(stats || {});
  for (const name of ["psi", "js", "jensen_shannon", "ks"]) {
    const hits = leaves.filter(([p]) => last(p) === name);
    if (hits.length) {
      const [path, value] = hits.reduce((a, b) => (b[1] > a[1] ? b : a));
      return { path, value, name };
    }
  }
  return null;
}

function leafAt(stats, path) {
  let node = stats;
  for (const key of path) node = node && typeof node === "object" ? node[key] : undefined;
  return typeof node === "number" && Number.isFinite(node) ? node : null;
}

/** The calibrated alarm level stated beside the largest statistic (e.g. ``psi_alarm``). */
export function driftAlarm(stats) {
  const v = (stats || {}).verdict;
  if (v && Number.isFinite(v.level)) return v.level;
  const top = largest(stats);
  if (!top) return null;
  const parent = top.path.slice(0, -1);
  return leafAt(stats, [...parent, `${top.name}_alarm`]) ?? leafAt(stats, [...parent, "alarm"]);
}

/** Label-free estimated accuracy (CBPE) stated in a drift report. */
export function estimatedAccuracy(stats) {
  const hit = numericLeaves(stats || {}).find(([p]) =>
    ["estimated_accuracy", "est_accuracy", "accuracy_estimate"].includes(last(p)));
  return hit ? hit[1] : null;
}

/** What the same estimate gives on the training reference (the level to compare with). */
export function referenceAccuracy(stats) {
  const hit = numericLeaves(stats || {}).find(([p]) => last(p) === "reference_accuracy");
  return hit ? hit[1] : null;
}

/** Per-feature PSI of one report: {feature: psi}. */
export function featurePsi(stats) {
  const out = {};
  for (const [p, v] of numericLeaves(stats || {})) {
    if (last(p) === "psi" && p.length >= 2) {
      out[p.slice(0, -1).filter((k) => k !== "features").join(".")] = v;
    }
  }
  return out;
}

export const windowTime = (w) => parseTime(w.window_end);

function cameras(w) {
  return (w.window && w.window.cameras) || [];
}

export function inferenceFps(w) {
  return cameras(w).reduce((a, c) => a + (c.inference_fps || 0), 0);
}

export function latencyP95(w) {
  const values = cameras(w).map((c) => (c.inference_ms || {}).p95).filter(Number.isFinite);
  return values.length ? Math.max(...values) : null;
}

/** Mean top-class confidence, bins taken as equal-width over [0, 1] like the reference. */
export function meanConfidence(w) {
  let n = 0;
  let sum = 0;
  for (const c of cameras(w)) {
    const hist = c.confidence_hist || [];
    hist.forEach((count, i) => {
      n += count;
      sum += count * ((i + 0.5) / hist.length);
    });
  }
  return n ? sum / n : null;
}

export function classCounts(w) {
  const out = {};
  for (const c of cameras(w)) {
    for (const [k, v] of Object.entries(c.class_counts || {})) out[k] = (out[k] || 0) + v;
  }
  return out;
}

/** Typical time between one device's consecutive items (drift reports overlap in range). */
export function spacingMs(items, time) {
  const gaps = [];
  for (const group of byKey(items, (i) => i.device_id).values()) {
    const ts = group.map(time).filter(Number.isFinite).sort((a, b) => a - b);
    for (let i = 1; i < ts.length; i += 1) if (ts[i] > ts[i - 1]) gaps.push(ts[i] - ts[i - 1]);
  }
  gaps.sort((a, b) => a - b);
  return gaps.length ? gaps[Math.floor(gaps.length / 2)] : 60000;
}

/** Typical spacing of a device's windows, to bucket the fleet's windows together. */
export function bucketMs(windows) {
  const spans = windows.map((w) => parseTime(w.window_end) - parseTime(w.window_start))
    .filter((s) => s > 0).sort((a, b) => a - b);
  return spans.length ? spans[Math.floor(spans.length / 2)] : 60000;
}

/**
 * One figure of many windows (or reports) as a series over time. Per time bucket, "sum"
 * adds up each device's mean (a fleet total, whatever the window lengths), "mean"
 * averages all values.
 */
export function fleetSeries(windows, figure, how = "sum", size = bucketMs(windows)) {
  const buckets = new Map();
  for (const w of windows) {
    const v = figure(w);
    if (v === null || !Number.isFinite(v)) continue;
    const t = Math.round(windowTime(w) / size) * size;
    if (!buckets.has(t)) buckets.set(t, new Map());
    const perDevice = buckets.get(t);
    const d = perDevice.get(w.device_id) || { sum: 0, n: 0 };
    d.sum += v;
    d.n += 1;
    perDevice.set(w.device_id, d);
  }
  // A sum over a bucket that may still be filling (devices yet to report) would dip.
  const filling = (t) => how === "sum" && t + size / 2 > Date.now();
  return [...buckets.entries()].filter(([t]) => !filling(t)).map(([t, perDevice]) => {
    const devices = [...perDevice.values()];
    if (how === "sum") return [t, devices.reduce((a, d) => a + d.sum / d.n, 0)];
    const n = devices.reduce((a, d) => a + d.n, 0);
    return [t, devices.reduce((a, d) => a + d.sum, 0) / n];
  });
}

export function byKey(items, key) {
  const out = new Map();
  for (const item of items) {
    const k = key(item);
    if (!out.has(k)) out.set(k, []);
    out.get(k).push(item);
  }
  return out;
}
