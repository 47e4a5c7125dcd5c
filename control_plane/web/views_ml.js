// Drift and estimated accuracy over time (fleet and per device), and the model registry.
import { abilities, promoteButton } from "./actions.js";
import { list, optionalList, parseTime } from "./api.js";
import { lineChart } from "./charts.js";
import { chip, h, link, pct, section, stat, stateChip, table, timeCell } from "./dom.js";
import {
  byKey, driftAlarm, driftDriver, driftScore, estimatedAccuracy, featurePsi, fleetSeries, meanConfidence,
  referenceAccuracy, spacingMs, windowTime,
} from "./metrics.js";

const reportTime = (r) => parseTime(r.window_end);

/** The release with the most fleet reports: fleet lines follow one release at a time. */
function mainRelease(reports) {
  const fleet = byKey(reports.filter((r) => r.device_id === null), (r) => r.release_id);
  return [...fleet.entries()].sort((a, b) => b[1].length - a[1].length).map(([r]) => r)[0];
}

/** Fleet reports of the main release as a series; without any, the mean of device reports
 * per time bucket. */
function fleetLine(reports, figure, name) {
  const release = mainRelease(reports);
  const fleet = reports.filter((r) => r.device_id === null && r.release_id === release);
  if (fleet.length) {
    return { name: `${name} · ${release || "all releases"}`,
      points: fleet.map((r) => [reportTime(r), figure(r.statistics)]) };
  }
  const asWindows = reports.map((r) => ({ ...r, value: figure(r.statistics) }));
  return {
    name: `${name} (mean over devices)`,
    points: fleetSeries(asWindows, (r) => r.value, "mean", spacingMs(reports, reportTime)),
  };
}

const latest = (s) => {
  const pts = s.points.filter((p) => Number.isFinite(p[1]));
  return pts.length ? pts.reduce((a, b) => (b[0] > a[0] ? b : a))[1] : NaN;
};

/** The ``n`` series whose latest value is lowest (or highest), most extreme first. */
function lowestLast(series, n, highest = false) {
  const sign = highest ? -1 : 1;
  const key = (s) => (Number.isFinite(latest(s)) ? sign * latest(s) : Infinity);
  return [...series].sort((a, b) => key(a) - key(b)).slice(0, n);
}

/** One series per device of a report figure, the ``n`` most extreme by latest value. */
function deviceLines(reports, figure, n = 8, highest = true) {
  const series = [...byKey(reports.filter((r) => r.device_id !== null), (r) => r.device_id)
    .entries()].map(([id, rs]) => ({
    name: id, points: rs.map((r) => [reportTime(r), figure(r.statistics)]),
  }));
  return lowestLast(series, n, highest);
}

function noDriftApi(main, title) {
  main.append(section(title, h("p", { class: "empty" }, "this control plane has no drift API")));
}

/** The API's ``reason`` codes in the operator's words, and how worrying each is:
 * collecting windows is the normal start, a fit that raised is a defect. */
const LEARNING_REASONS = {
  release_not_healthy: ["release not healthy here", "warn"],
  too_few_windows: ["collecting windows", ""],
  too_few_busy_windows: ["too few busy windows", "warn"],
  fit_failed: ["fit failed", "bad"],
};

/** Camera x conditions without a production baseline: not judged for drift until they
 * have one, so each says why and what (if anything) to do (``oneDevice``: the device
 * page's, without a device column). */
export function learningSection(learning, oneDevice = false) {
  if (learning === null) return "";
  return section("Not judged yet: cameras without a baseline (why, and the fix)", table(learning, [
    ...(oneDevice ? [] : [["device",
      (r) => link(`#/device/${encodeURIComponent(r.device_id)}`, r.device_id)]]),
    ["camera", (r) => r.camera_id],
    ["condition", (r) => r.condition],
    ["release", (r) => r.release_id],
    ["windows", (r) => `${r.windows} / ${r.windows_needed}`],
    ["state", (r) => chip(...(LEARNING_REASONS[r.reason] || [r.reason, ""]))],
    ["why, and the fix", (r) => r.message],
    ["tried", (r) => timeCell(r.tried_at)],
  ], "every camera and condition seen has a baseline"));
}

export async function driftView(main) {
  const [reports, learning] = await Promise.all([
    optionalList("/drift", {}, 1000),
    optionalList("/drift/baselines/learning", {}, 200),
  ]);
  if (reports === null) return noDriftApi(main, "Drift");
  const latest = reports[0];
  const devices = new Set(reports.filter((r) => r.device_id).map((r) => r.device_id));
  const drifting = new Set([...byKey(reports.filter((r) => r.device_id), (r) => r.device_id).entries()]
    .filter(([, rs]) => rs[0].drifted).map(([id]) => id));
  main.append(h("div", { class: "stats" },
    stat(reports.length >= 1000 ? "reports (newest shown)" : "reports", reports.length),
    stat("devices analysed", devices.size),
    stat("devices drifting now", drifting.size, drifting.size ? "bad" : "good"),
    stat("cameras without a baseline", learning === null ? "-" : learning.length,
      learning && learning.some((r) => r.reason === "fit_failed") ? "bad" : ""),
    stat("latest", latest ? timeCell(latest.created_at).textContent : "-"),
  ));
  main.append(learningSection(learning));
  const charts = h("div", { class: "charts" });
  main.append(section("Drift over time", charts));
  lineChart(charts, {
    title: "Fleet drift: the statistic behind each verdict (PSI; a log likelihood ratio for regions.mix), with its own alarm level",
    yLabel: "statistic", yMin: 0,
    series: [fleetLine(reports, driftScore, "fleet"),
      { ...fleetLine(reports, driftAlarm, "alarm level"), dashed: true, color: "#dc2626" }],
    empty: "no drift reports yet",
  });
  lineChart(charts, {
    title: "Drift per device (the driving feature's statistic; most drifted first)", yLabel: "statistic", yMin: 0,
    series: deviceLines(reports, driftScore), empty: "no per-device drift reports yet",
  });
  const release = mainRelease(reports);
  const fleetReports = reports.filter((r) => r.device_id === null && r.release_id === release);
  const source = fleetReports.length ? fleetReports : reports;
  const features = [...new Set(source.flatMap((r) => Object.keys(featurePsi(r.statistics))))].sort();
  const size = spacingMs(source, reportTime);
  lineChart(charts, {
    title: `PSI per feature (${fleetReports.length ? `fleet · ${release}` : "mean over devices"})`,
    yLabel: "PSI", yMin: 0,
    series: features.slice(0, 10).map((f) => ({
      name: f,
      points: fleetSeries(source.map((r) => ({ ...r, v: featurePsi(r.statistics)[f] ?? null })),
        (r) => r.v, "mean", size),
    })),
    empty: "reports carry no per-feature PSI",
  });
  const newestPerScope = [...byKey(reports, (r) => r.device_id || "").values()].map((rs) => rs[0])
    .sort((a, b) => (driftScore(b.statistics) ?? 0) - (driftScore(a.statistics) ?? 0));
  main.append(section("Latest report per device and fleet (most drifted first)", table(newestPerScope, [
    ["window end", (r) => timeCell(r.window_end)],
    ["scope", (r) => (r.device_id ? link(`#/device/${encodeURIComponent(r.device_id)}`, r.device_id) : chip("fleet"))],
    ["release", (r) => r.release_id || "-"],
    ["windows", (r) => String(r.window_count)],
    ["samples", (r) => String(r.sample_count)],
    ["drifted", (r) => stateChip(r.drifted ? "drifted" : "ok")],
    ["driven by", (r) => driftDriver(r.statistics) || "-"],
    ["PSI", (r) => { const s = driftScore(r.statistics); return s === null ? "-" : s.toFixed(3); }],
    ["its level", (r) => { const a = driftAlarm(r.statistics); return a === null ? "-" : a.toFixed(3); }],
    ["est. accuracy", (r) => pct(estimatedAccuracy(r.statistics))],
  ], "no drift reports yet")));
}

export async function accuracyView(main) {
  const [reports, windows, versions] = await Promise.all([
    optionalList("/drift", {}, 1000),
    list("/telemetry", {}, 1000),
    list("/versions", {}, 50),
  ]);
  const rs = reports || [];
  const newest = versions[0];
  const evalAcc = newest && newest.metrics ? newest.metrics.accuracy : undefined;
  const ref = rs.map((r) => referenceAccuracy(r.statistics)).find((a) => a !== null);
  const thresholds = ref !== undefined && ref !== null
    ? [{ y: ref, label: "estimate on training data" }]
    : Number.isFinite(evalAcc) ? [{ y: evalAcc, label: `v${newest.version} test accuracy` }] : [];
  const charts = h("div", { class: "charts" });
  main.append(section("Estimated accuracy over time (no labels needed)", charts));
  lineChart(charts, {
    title: "Fleet: estimated accuracy and mean confidence", yLabel: "fraction", thresholds,
    series: [
      fleetLine(rs, estimatedAccuracy, "estimated accuracy"),
      { name: "mean top-class confidence (telemetry)", dashed: true, color: "#0891b2",
        points: fleetSeries(windows, meanConfidence, "mean") },
    ],
  });
  lineChart(charts, {
    title: "Estimated accuracy per device (lowest first)", yLabel: "fraction", thresholds,
    series: deviceLines(rs, estimatedAccuracy, 8, false),
    empty: reports === null ? "this control plane has no drift API" : "no drift reports with an accuracy estimate yet",
  });
  const perDevice = lowestLast([...byKey(windows, (w) => w.device_id).entries()]
    .map(([id, ws]) => ({ name: id, points: ws.map((w) => [windowTime(w), meanConfidence(w)]) })), 8);
  lineChart(charts, {
    title: "Mean top-class confidence per device (telemetry)", yLabel: "fraction",
    series: perDevice,
  });
}

function lineageTree(versions, releasesByVersion) {
  const byVersion = new Map(versions.map((v) => [v.version, v]));
  const children = byKey(versions, (v) => {
    const parent = (v.lineage || {}).parent_version;
    return parent && byVersion.has(parent) ? parent : null;
  });
  const node = (v) => h("li", {},
    h("span", { class: "node" }, h("b", {}, `v${v.version}`),
      (v.aliases || []).map((a) => chip(a, "good")),
      chip(`dataset ${(v.lineage || {}).dataset_version || "?"}`),
      (v.lineage || {}).code_version ? chip(`code ${(v.lineage || {}).code_version}`) : "",
      Object.entries(v.metrics || {}).slice(0, 3).map(([k, x]) => chip(`${k} ${x.toFixed(3)}`)),
      (releasesByVersion.get(v.version) || []).map((r) => chip(`release ${r.release_id}`, "warn")),
      h("span", { class: "muted" }, " ", timeCell(v.created_at), ` by ${v.created_by}`)),
    (children.get(v.version) || []).length
      ? h("ul", {}, children.get(v.version).map(node)) : "");
  return h("ul", { class: "tree" }, (children.get(null) || []).map(node));
}

// Aliases an operator moves from here: what `releases create` signs and what runs.
const PROMOTE_TO = ["champion", "production"];

export async function registryView(main, _arg, rerender) {
  const can = await abilities();
  const [models, versions, releases, datasets] = await Promise.all([
    list("/models", {}, 200), list("/versions", {}, 1000), list("/releases", {}, 1000),
    optionalList("/datasets", {}, 200),
  ]);
  main.append(h("div", { class: "stats" },
    stat("models", models.length), stat("versions", versions.length),
    stat("releases", releases.length), stat("datasets", datasets ? datasets.length : "-"),
  ));
  const charts = h("div", { class: "charts" });
  main.append(section("Evaluation metrics by version", charts));
  const metricNames = [...new Set(versions.flatMap((v) => Object.keys(v.metrics || {})))]
    .filter((m) => /acc|f1/.test(m)).slice(0, 4);
  lineChart(charts, {
    title: "Held-out metrics of each registered version", yLabel: "score", digits: 2,
    xTick: (n) => `v${n}`,
    series: models.flatMap((m) => metricNames.map((metric) => ({
      name: `${m.name} ${metric}`,
      points: versions.filter((v) => v.model_name === m.name)
        .map((v) => [Number(v.version), (v.metrics || {})[metric]]),
    }))),
    empty: "no versions registered yet",
  });
  for (const m of models) {
    const own = versions.filter((v) => v.model_name === m.name)
      .sort((a, b) => Number(a.version) - Number(b.version));
    const rel = byKey(releases.filter((r) => r.model_name === m.name), (r) => r.model_version);
    main.append(section(`Model ${m.name} — lineage`, lineageTree(own, rel),
      table([...own].reverse(), [
        ["version", (v) => h("b", {}, `v${v.version}`)],
        ["aliases", (v) => h("span", { class: "chips" }, (v.aliases || []).map((a) => chip(a, "good")))],
        ["dataset", (v) => (v.lineage || {}).dataset_version || "-"],
        ["parent", (v) => ((v.lineage || {}).parent_version ? `v${v.lineage.parent_version}` : "-")],
        ["metrics", (v) => Object.entries(v.metrics || {}).map(([k, x]) => `${k} ${x.toFixed(3)}`).join(", ")],
        ["primary", (v) => h("span", { title: v.primary_reason }, (v.artifacts || [])
          .find((a) => a.sha256 === v.primary_sha256)?.precision || v.primary_sha256.slice(0, 10))],
        ["releases", (v) => (rel.get(v.version) || []).map((r) => r.release_id).join(", ")],
        ["created", (v) => timeCell(v.created_at)],
        ...(can.can_operate ? [["promote", (v) => h("span", {}, PROMOTE_TO
          .filter((alias) => !(v.aliases || []).includes(alias))
          .map((alias) => promoteButton(m.name, v.version, alias, rerender)))]] : []),
      ])));
  }
  if (datasets) {
    main.append(section("Dataset versions", table(datasets, [
      ["dataset", (d) => `${d.name} ${d.version}`],
      ["samples", (d) => String(d.sample_count)],
      ["classes", (d) => Object.entries(d.class_counts || {}).map(([k, n]) => `${k} ${n}`).join(", ")],
      ["source", (d) => d.source || "-"],
      ["created", (d) => timeCell(d.created_at)],
    ], "no dataset versions registered")));
  }
  if (!models.length) main.append(section("Models", h("p", { class: "empty" }, "no models yet: `parkwatch train`")));
}
