// Rollouts by wave with gate results, alerts, training jobs.
import { list, optionalList, parseTime } from "./api.js";
import { lineChart } from "./charts.js";
import { abilities, alertButtons, rolloutButtons } from "./actions.js";
import { chip, h, link, pct, section, stat, stateChip, table, timeCell } from "./dom.js";

const ROLLOUT_KNOWN = new Set(["rollout_id", "release_id", "mode", "state", "created_by",
  "created_at", "updated_at", "devices", "waves", "policy", "paused_reason", "current_wave"]);
const WAVE_KNOWN = new Set(["state", "wave", "index", "number", "wave_index", "device_count",
  "acknowledged", "pending", "failed", "started_at", "finished_at", "approved_at"]);
const DEVICE_STATE_ORDER = ["acknowledged", "healthy", "pending", "planned", "failed", "expired",
  "rolled_back", "superseded"];

const isScalar = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);

function scalarChips(obj, skip) {
  return Object.entries(obj || {})
    .filter(([k, v]) => !skip.has(k) && isScalar(v) && v !== null && v !== "")
    .map(([k, v]) => chip(`${k.replaceAll("_", " ")}: ${v}`));
}

function progressBar(counts, total) {
  const bar = h("div", { class: "progress", title: JSON.stringify(counts) });
  for (const [state, n] of Object.entries(counts)) {
    const seg = h("span", { class: `seg seg-${state}` });
    seg.style.width = `${(100 * n) / Math.max(total, 1)}%`;
    bar.append(seg);
  }
  return bar;
}

/** Gate results of a wave, whatever shape the API gives: a list of objects or a mapping. */
function gateRows(wave) {
  for (const key of ["gates", "gate_results", "gate", "results", "checks"]) {
    const v = wave[key];
    if (Array.isArray(v)) return v.map((g) => (isScalar(g) ? { result: g } : g));
    if (v && typeof v === "object") {
      return Object.entries(v).map(([name, g]) => (isScalar(g) ? { name, result: g } : { name, ...g }));
    }
  }
  return [];
}

function gateTable(rows) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].slice(0, 7);
  return table(rows, keys.map((k) => [k.replaceAll("_", " "), (r) => {
    const v = r[k];
    if (typeof v === "boolean") return stateChip(v ? "passed" : "failed");
    if (["passed", "ok", "result", "state", "status", "verdict"].includes(k) && isScalar(v)) return stateChip(v);
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
    return isScalar(v) ? v : JSON.stringify(v);
  }]), "no gate results yet");
}

function gateStatus(g) {
  const v = g.status ?? g.result ?? g.verdict ?? g.passed;
  return typeof v === "boolean" ? (v ? "pass" : "fail") : String(v ?? "?");
}

/** Gate results: a chip per gate, the full table folded unless the wave needs a look. */
function gateBlock(gates, open) {
  const chips = gates.map((g) => {
    const c = stateChip(gateStatus(g));
    c.textContent = `${g.name ?? "gate"}: ${gateStatus(g)}`;
    return c;
  });
  const failing = gates.some((g) => ["fail", "failed", "false"].includes(gateStatus(g)));
  return h("details", { class: "gates", open: open || failing },
    h("summary", {}, "gates ", h("span", { class: "chips" }, chips)), gateTable(gates));
}

function waveIndex(w, i) {
  for (const key of ["wave", "index", "number", "wave_index"]) {
    if (Number.isInteger(w[key])) return w[key];
  }
  return i;
}

const TERMINAL = ["completed", "failed", "superseded", "aborted", "rolled_back"];

function rolloutCard(r, can, rerender) {
  const devices = r.devices || [];
  const live = !TERMINAL.includes(r.state);
  const byWave = new Map();
  for (const d of devices) {
    const k = Number.isInteger(d.wave) ? d.wave : 0;
    if (!byWave.has(k)) byWave.set(k, []);
    byWave.get(k).push(d);
  }
  const waveInfo = new Map((Array.isArray(r.waves) ? r.waves : []).map((w, i) => [waveIndex(w, i), w]));
  const indices = [...new Set([...byWave.keys(), ...waveInfo.keys()])].sort((a, b) => a - b);
  const waves = indices.map((i) => {
    const ds = byWave.get(i) || [];
    const info = waveInfo.get(i) || {};
    // The API counts every device of the wave; the listed devices may be one page only.
    const all = info.states || null;
    const counts = {};
    for (const s of DEVICE_STATE_ORDER) {
      const n = all ? all[s] || 0 : ds.filter((d) => d.state === s).length;
      if (n) counts[s] = n;
    }
    if (all) for (const [s, n] of Object.entries(all)) { if (!(s in counts) && n) counts[s] = n; }
    else for (const d of ds) if (!(d.state in counts)) counts[d.state] = (counts[d.state] || 0) + 1;
    const size = all ? Object.values(all).reduce((a, b) => a + b, 0) : ds.length;
    const gates = gateRows(info);
    const total = size || info.device_count || info.size || 0;
    return h("div", { class: "wave" },
      h("div", { class: "wave-head" }, h("b", {}, `wave ${i}`),
        info.state ? stateChip(info.state) : "",
        h("span", { class: "muted" }, `${size} device${size === 1 ? "" : "s"}`),
        Object.entries(counts).map(([s, n]) => chip(`${s.replaceAll("_", " ")} ${n}`, `state-${s}`)),
        scalarChips(info, WAVE_KNOWN),
        info.started_at ? h("span", { class: "muted" }, "started ", timeCell(info.started_at)) : "",
        info.finished_at ? h("span", { class: "muted" }, ", finished ", timeCell(info.finished_at)) : ""),
      progressBar(counts, total),
      gates.length ? gateBlock(gates, live && !["passed", "planned"].includes(info.state)) : "");
  });
  const policy = r.policy || {};
  const plan = Array.isArray(policy.waves) ? policy.waves.join(" → ") : null;
  return h("section", { class: "card rollout" },
    h("h2", {}, `rollout ${r.rollout_id} `, stateChip(r.state)),
    can.can_operate ? h("p", { class: "actions" }, rolloutButtons(r, rerender)) : "",
    r.paused_reason ? h("p", {}, chip(r.paused_reason, r.state === "paused" ? "bad" : "")) : "",
    h("p", { class: "chips" },
      Number.isInteger(r.current_wave) ? chip(`current wave ${r.current_wave}`, "warn") : "",
      plan ? chip(`waves ${plan}`) : "",
      policy.shadow_phase ? chip("shadow phase first", "warn") : "",
      policy.approval_after_wave ? chip(`approval after wave ${policy.approval_after_wave}`) : "",
      policy.on_gate_failure ? chip(`on gate failure: ${policy.on_gate_failure}`) : ""),
    h("p", { class: "chips" }, chip(`release ${r.release_id}`), stateChip(r.mode),
      chip(`by ${r.created_by}`), h("span", { class: "muted" }, "started ", timeCell(r.created_at),
        ", updated ", timeCell(r.updated_at)), scalarChips(r, ROLLOUT_KNOWN)),
    waves.length ? waves : h("p", { class: "empty" }, "no devices targeted"),
    h("details", {}, h("summary", {}, (r.device_count || 0) > devices.length
      ? `devices (first ${devices.length} of ${r.device_count})` : `devices (${devices.length})`), table(devices, [
      ["device", (d) => link(`#/device/${encodeURIComponent(d.device_id)}`, d.device_id)],
      ["wave", (d) => String(d.wave ?? "-")],
      ["state", (d) => stateChip(d.state)],
      ["detail", (d) => d.detail || "-"],
      ["updated", (d) => timeCell(d.updated_at)],
    ])));
}

export async function rolloutsView(main, _arg, rerender) {
  const [rollouts, can] = await Promise.all([list("/rollouts", {}, 30), abilities()]);
  main.append(h("div", { class: "stats" },
    stat("rollouts", rollouts.length),
    stat("active (incl. paused)", rollouts.filter((r) => !TERMINAL.includes(r.state)).length, "warn"),
    stat("completed", rollouts.filter((r) => r.state === "completed").length, "good"),
    stat("failed", rollouts.filter((r) => ["failed", "rolled_back", "aborted"].includes(r.state)).length, "bad"),
  ));
  if (!rollouts.length) main.append(section("Rollouts", h("p", { class: "empty" }, "no rollouts yet: `parkwatch rollouts start`")));
  for (const r of rollouts) main.append(rolloutCard(r, can, rerender));
}

/** Cumulative count of items over time up to now, one series per value of ``key``. */
function cumulative(items, key, time) {
  const groups = new Map();
  for (const item of [...items].sort((a, b) => time(a) - time(b))) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, [[time(item), 0]]);
    const pts = groups.get(k);
    pts.push([time(item), pts.length]);
  }
  const now = Date.now();
  return [...groups.entries()].map(([name, points]) => ({
    name, points: [...points, [Math.max(now, points[points.length - 1][0]), points.length - 1]],
  }));
}

export async function alertsView(main, _arg, rerender) {
  const [alerts, can] = await Promise.all([optionalList("/alerts", {}, 1000), abilities()]);
  if (alerts === null) {
    main.append(section("Alerts", h("p", { class: "empty" }, "this control plane has no alerts API")));
    return;
  }
  const open = alerts.filter((a) => a.state === "open");
  main.append(h("div", { class: "stats" },
    stat("open", open.length, open.length ? "bad" : "good"),
    stat("critical open", open.filter((a) => a.severity === "critical").length, "bad"),
    stat("acknowledged", alerts.filter((a) => a.state === "acknowledged").length, "warn"),
    stat("resolved", alerts.filter((a) => a.state === "resolved").length, "good"),
  ));
  const charts = h("div", { class: "charts" });
  main.append(section("Alerts raised over time", charts));
  lineChart(charts, {
    title: "Alerts raised (cumulative, by severity)", yLabel: "alerts", yMin: 0, digits: 0,
    step: true,
    series: cumulative(alerts, (a) => a.severity, (a) => parseTime(a.created_at)),
    empty: "no alerts raised yet",
  });
  main.append(section("Alerts", table(alerts, [
    ["id", (a) => String(a.id)],
    ["severity", (a) => stateChip(a.severity)],
    ["state", (a) => stateChip(a.state)],
    ["kind", (a) => a.kind],
    ["device", (a) => (a.device_id ? link(`#/device/${encodeURIComponent(a.device_id)}`, a.device_id) : "fleet")],
    ["release", (a) => a.release_id || "-"],
    ["message", (a) => a.message],
    ["raised", (a) => timeCell(a.created_at)],
    ["by", (a) => a.updated_by || "-"],
    ...(can.can_operate ? [["act", (a) => h("span", {}, alertButtons(a, rerender))]] : []),
  ], "no alerts")));
}

export async function jobsView(main) {
  const jobs = await list("/jobs", {}, 200);
  main.append(h("div", { class: "stats" },
    stat("jobs", jobs.length),
    stat("running", jobs.filter((j) => j.status === "running").length, "warn"),
    stat("queued", jobs.filter((j) => j.status === "queued").length),
    stat("succeeded", jobs.filter((j) => j.status === "succeeded").length, "good"),
    stat("failed", jobs.filter((j) => j.status === "failed").length, "bad"),
  ));
  const charts = h("div", { class: "charts" });
  main.append(section("Training jobs over time", charts));
  lineChart(charts, {
    title: "Jobs created (cumulative, by trigger)", yLabel: "jobs", yMin: 0, digits: 0,
    step: true,
    series: cumulative(jobs, (j) => j.trigger, (j) => parseTime(j.created_at)),
    empty: "no training jobs yet",
  });
  main.append(section("Training jobs", table(jobs, [
    ["job", (j) => h("code", {}, j.job_id)],
    ["model", (j) => j.model_name],
    ["trigger", (j) => chip(j.trigger)],
    ["status", (j) => stateChip(j.status)],
    ["progress", (j) => {
      const bar = progressBar({ done: Math.round(j.progress * 100), left: 100 - Math.round(j.progress * 100) }, 100);
      return h("span", { class: "progress-cell" }, bar, pct(j.progress, 0));
    }],
    ["stage", (j) => j.stage || "-"],
    ["dataset", (j) => j.dataset_version || "-"],
    ["result", (j) => (j.result_version ? link("#/registry", `v${j.result_version}`) : "-")],
    ["message", (j) => j.message || "-"],
    ["created", (j) => timeCell(j.created_at)],
    ["finished", (j) => timeCell(j.finished_at)],
  ], "no training jobs yet")));
}
