// Fleet overview and one device: liveness, releases, cameras, telemetry and drift charts.
import { abilities, actionButton } from "./actions.js";
import { ApiError, get, list, optionalList, parseTime, send } from "./api.js";
import { PALETTE, lineChart } from "./charts.js";
import { chip, h, link, section, stat, stateChip, table, timeCell } from "./dom.js";
import { learningSection } from "./views_ml.js";
import {
  byKey, classCounts, driftAlarm, driftScore, estimatedAccuracy, fleetSeries, latencyP95,
  meanConfidence, referenceAccuracy, windowTime,
} from "./metrics.js";

const reported = (d) => d.reported || {};
const running = (d) => d.current_release_id || (reported(d).active || {}).release_id;

/** A badge per camera; one that is not up says why, in the agent's words. */
function cameraChips(d) {
  const cams = reported(d).cameras || [];
  if (!cams.length) return "-";
  return h("span", { class: "chips" }, cams.map((c) => {
    const s = stateChip(c.state);
    s.title = `${c.camera_id}: ${c.state}${c.detail ? ` (${c.detail})` : ""}`;
    s.textContent = `${c.camera_id} ${c.state}`;
    if (c.state === "up") return s;
    return h("span", { class: "camera-badge" }, s,
      h("span", { class: "muted reason" }, c.detail || "no reason reported"));
  }));
}

const FIRST_RUN = [
  ["Train a first model on your photos (or `parkwatch data fetch oxford-pets --out photos`)",
    "parkwatch train --data photos --arch lite0 --out model --api-url URL"],
  ["Sign a release of it", "parkwatch releases create petnet"],
  ["Provision a device for each camera box", "parkwatch devices create park1-gate --out park1-gate.toml"],
  ["On the device: set the camera's source (rtsp://...) in the file, then run the agent",
    "parkwatch agent run --config park1-gate.toml"],
  ["Roll the release out in waves with health gates", "parkwatch rollouts start RELEASE_ID"],
];

/** On an empty fleet: what to do first, with commands to copy. */
function firstRun() {
  const base = window.location.origin;
  return section("First run: from zero to a camera in five steps",
    h("ol", { class: "checklist" }, FIRST_RUN.map(([what, cmd]) => {
      const text = cmd.replace("URL", base);
      const copy = h("button", { type: "button", class: "action", "data-copy": text }, "copy");
      copy.addEventListener("click", () => {
        navigator.clipboard.writeText(text).then(
          () => { copy.textContent = "copied"; },
          () => { copy.textContent = "select and copy"; });
      });
      return h("li", {}, what, h("br"), h("code", {}, text), " ", copy);
    })),
    h("p", { class: "muted" }, "Every command takes --help; docs/operations.md walks a real site."));
}

function releaseCell(d) {
  const active = reported(d).active;
  const shadow = reported(d).shadow;
  const parts = [];
  if (running(d)) parts.push(h("code", {}, running(d)), " ", stateChip(active ? active.stage : "?"));
  if (shadow) parts.push(" ", chip(`shadow ${shadow.release_id} ${shadow.stage}`, "warn"));
  return parts.length ? h("span", {}, parts) : "-";
}

function desiredCell(d) {
  if (!d.desired_release_id) return "-";
  const shadow = reported(d).shadow;
  const same = d.desired_mode === "shadow"
    ? Boolean(shadow && shadow.release_id === d.desired_release_id)
    : d.desired_release_id === running(d);
  return h("span", {}, h("code", {}, d.desired_release_id),
    d.desired_mode && d.desired_mode !== "active" ? chip(d.desired_mode, "warn") : "",
    same ? "" : chip("pending", "warn"));
}

function labelsCell(d) {
  const entries = Object.entries(d.labels || {});
  return entries.length ? h("span", { class: "chips" }, entries.map(([k, v]) => chip(`${k}=${v}`))) : "-";
}

/** Up to ``n`` devices with the most points, each a series of ``figure`` over time. */
function perDevice(points, figure, n = 8) {
  const groups = [...byKey(points, (w) => w.device_id).entries()]
    .sort((a, b) => b[1].length - a[1].length).slice(0, n);
  return groups.map(([id, ws]) => ({
    name: id,
    points: ws.map((w) => [windowTime(w), figure(w)]).filter((p) => p[1] !== null),
  }));
}

const DEVICES_PER_PAGE = 100;
// The charts' sample of the newest windows (two columns each, written at ingest).
const FLEET_WINDOWS = 300;

/** The device table, a page at a time: the API sorts by id and counts the whole fleet.
 * The first page comes with the fleet page's answer; turning asks ``GET /devices``. */
function devicesSection(page, offset = 0) {
  const holder = section(`Devices (${page.total})`);
  const turn = (to) => async () => holder.replaceWith(devicesSection(
    await get("/devices", { limit: DEVICES_PER_PAGE, offset: to }), to));
  const last = Math.min(offset + page.items.length, page.total);
  const pager = h("p", { class: "actions pager" },
    h("span", { class: "muted" }, page.total ? `${offset + 1}-${last} of ${page.total} ` : ""));
  if (offset > 0) {
    const prev = h("button", { type: "button", class: "action", "data-page": "previous" }, "previous");
    prev.addEventListener("click", turn(Math.max(0, offset - DEVICES_PER_PAGE)));
    pager.append(prev, " ");
  }
  if (last < page.total) {
    const next = h("button", { type: "button", class: "action", "data-page": "next" }, "next");
    next.addEventListener("click", turn(offset + DEVICES_PER_PAGE));
    pager.append(next);
  }
  holder.append(pager, table(page.items, [
    ["device", (d) => link(`#/device/${encodeURIComponent(d.device_id)}`, d.device_id)],
    ["status", (d) => stateChip(d.online ? "online" : "offline")],
    ["last seen", (d) => timeCell(d.last_seen)],
    ["labels", labelsCell],
    ["running", releaseCell],
    ["desired", desiredCell],
    ["cameras", cameraChips],
    ["agent", (d) => d.agent_version || "-"],
  ], "no devices provisioned: `parkwatch devices create`"));
  return holder;
}

/** The fleet at a glance: counts and charts (aggregated by the store, so the page costs
 * the same at 10 devices or 10,000) and the device table a page at a time, all from one
 * ``GET /fleet/page``: one request, not one per part (each costs its own round trips). */
export async function fleetView(main) {
  const answer = await get("/fleet/page", { windows: FLEET_WINDOWS, limit: DEVICES_PER_PAGE });
  const { fleet, open_alerts: alerts, dead_letters: deadLetters } = answer;
  const devices = devicesSection(answer.devices);
  if (!fleet.devices) main.append(firstRun());
  main.append(h("div", { class: "stats" },
    stat("devices", fleet.devices),
    stat("online", fleet.online, "good"),
    stat("offline", fleet.devices - fleet.online, fleet.devices - fleet.online ? "bad" : ""),
    stat("cameras up", fleet.cameras_up, "good"),
    stat("cameras not up", fleet.cameras_not_up, fleet.cameras_not_up ? "warn" : ""),
    stat("open alerts", alerts, alerts ? "bad" : ""),
    // Only when some are kept: messages received but not stored wait for an operator.
    deadLetters ? h("a", { href: "#/dead-letters", class: "stat-link", id: "dead-letters-count" },
      stat("dead letters", deadLetters, "bad")) : "",
  ));
  // The device figures are counted at most every few seconds, not at each load: say how old.
  main.append(h("p", { class: "muted" },
    `Device figures counted ${Math.round(fleet.counts_age_s)} s ago.`));
  const charts = h("div", { class: "charts" });
  main.append(section(`Fleet telemetry (newest ${fleet.windows.length} windows)`, charts));
  lineChart(charts, {
    title: "Frames inferred per second, whole fleet",
    yLabel: "fps", yMin: 0, digits: 1,
    series: [{ name: "fleet", points: fleetSeries(fleet.windows, (w) => w.inference_fps, "sum") }],
  });
  lineChart(charts, {
    title: "Inference latency p95 by device",
    yLabel: "ms", yMin: 0, digits: 1,
    series: perDevice(fleet.windows, (w) => w.latency_p95_ms),
  });
  main.append(section("Releases running", table(fleet.releases, [
    ["release", (r) => h("code", {}, r.release_id)],
    ["devices", (r) => String(r.devices)],
    ["healthy", (r) => String(r.healthy)],
    ["desired by", (r) => String(r.desired_by)],
  ], "no device reports a running release yet")));
  if (fleet.shadows.length) {
    main.append(section("Releases in shadow mode", table(fleet.shadows, [
      ["release", (r) => h("code", {}, r.release_id)],
      ["devices", (r) => String(r.devices)],
      ["healthy", (r) => String(r.healthy)],
    ])));
  }
  main.append(devices);
}

/** A baseline's features without a level (too few busy windows to fit one): not judged
 * on this camera, so a baseline with most of them unfitted says so, and what to do
 * (the API's ``unfitted_why`` in full on hover). */
function notJudged(b) {
  const missing = b.unfitted || [];
  if (!missing.length) return "-";
  const text = `${missing.length} of ${b.features} features: ${missing.join(", ")}`;
  const most = 2 * missing.length > b.features;
  return h("span", { title: b.unfitted_why }, most ? [chip("most not judged", "warn"), " "] : [],
    text, most ? h("div", { class: "muted" },
      "too few busy windows to fit their levels: reset it while the camera is busier") : null);
}

/** The active baselines split by the release the device runs: those judge its windows; the
 * others' windows stopped at the promotion. They stay active (a rollback judges against
 * them again, their bins are their release's profile's) but are superseded here: listed
 * beside the running release's, an operator took them for what judges the camera now. */
function byRunning(baselines, release) {
  if (baselines === null || !release) return [baselines, []];
  return [baselines.filter((b) => b.release_id === release),
    baselines.filter((b) => b.release_id !== release)];
}

function supersededNote(deviceId, superseded) {
  if (!superseded.length) return "";
  const releases = [...new Set(superseded.map((b) => b.release_id))].sort();
  return h("p", { class: "muted superseded" },
    `${superseded.length} baseline(s) of release ${releases.join(", ")} superseded: not shown, `
    + "not judging this device while it runs another release, kept for a rollback "
    + `(\`parkwatch drift baselines --device ${deviceId}\`).`);
}

/** Each camera x condition's production baseline under the release the device runs: what
 * "has this camera changed?" is measured against; an operator resets one after changing
 * the camera on purpose. */
function baselinesSection(deviceId, release, baselines, superseded, can, rerender) {
  if (baselines === null) return "";
  const title = `Production baselines${release ? ` of release ${release}` : ""} (per camera and condition)`;
  return section(title, supersededNote(deviceId, superseded), table(baselines, [
    ["camera", (b) => b.camera_id],
    ["condition", (b) => chip(b.condition)],
    ["release", (b) => h("code", {}, b.release_id)],
    ["version", (b) => `v${b.version}`],
    ["learned from", (b) => `${b.window_count} windows, ${b.sample_count} samples`],
    ["period", (b) => h("span", {}, timeCell(b.learned_from), " – ", timeCell(b.learned_to))],
    ["levels for", (b) => `one false alarm per ${b.false_alarm_days} days`],
    ["not judged", notJudged],
    ...(can.can_operate ? [["act", (b) => actionButton("reset", (reason) =>
      send("POST", "/drift/baselines/reset", { device_id: deviceId, camera_id: b.camera_id,
        condition: b.condition, reason: reason || "reset from the dashboard" }),
    { name: "baseline-reset", danger: true, after: rerender,
      confirm: `Retire the ${b.condition} baseline of ${b.camera_id}? A new one is learned.`,
      reason: "Why (audited), e.g. camera moved:" })]] : []),
  ], superseded.length
    ? "none of this release yet: learning, each camera's reason below"
    : "no baseline yet: one is learned once a release runs healthy here for a while"));
}

const HISTORY_DAYS = 30;

/** One camera's daily rollups (``/drift/history``); null where this control plane has none. */
async function cameraHistory(deviceId, cameraId) {
  try {
    return await get("/drift/history", { device_id: deviceId, camera_id: cameraId, days: HISTORY_DAYS });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** A chart per camera of its last 30 days: each class's share of the day's predictions per
 * condition (what its production baselines compare; a class keeps its colour, conditions
 * after the first are dashed), and how many windows are behind it. */
async function historySection(deviceId, d, baselines) {
  const ids = [...new Set([...(reported(d).cameras || []).map((c) => c.camera_id),
    ...(baselines || []).map((b) => b.camera_id)])].sort();
  const histories = (await Promise.all(ids.map((id) => cameraHistory(deviceId, id))))
    .filter((x) => x !== null);
  if (!histories.length) return "";
  const charts = h("div", { class: "charts camera-history" });
  const since = Date.now() - HISTORY_DAYS * 86400000;
  for (const hist of histories) {
    const series = [];
    const conditions = [...new Set(hist.points.map((p) => p.condition))].sort();
    const labels = [...new Set(hist.points.flatMap((p) => Object.keys(p.class_counts)))].sort();
    for (const condition of conditions) {
      const days = hist.points.filter((p) => p.condition === condition);
      const total = (p) => Object.values(p.class_counts).reduce((a, b) => a + b, 0);
      for (const [i, label] of labels.entries()) {
        series.push({ name: `${label} · ${condition}`, color: PALETTE[i % PALETTE.length],
          dashed: condition !== conditions[0],
          points: days.filter((p) => total(p) > 0).map((p) => [parseTime(p.bucket),
            (p.class_counts[label] || 0) / total(p)]) });
      }
    }
    const windows = hist.points.reduce((a, p) => a + p.windows, 0);
    lineChart(charts, {
      title: `Camera ${hist.camera_id}: class share per day and condition, last ${HISTORY_DAYS} days (${windows} windows)`,
      yLabel: "share", yMin: 0, yMax: 1, digits: 2, series, xRange: [since, Date.now()],
      empty: `no windows from camera ${hist.camera_id} in the last ${HISTORY_DAYS} days`,
    });
  }
  return section("Camera history (daily rollups)", charts);
}

export async function deviceView(main, deviceId, rerender) {
  const [d, windows, reports, events, baselines, learning, can] = await Promise.all([
    get(`/devices/${encodeURIComponent(deviceId)}`),
    list("/telemetry", { device: deviceId }, 500),
    optionalList("/drift", { device: deviceId }, 500),
    optionalList("/events", { device: deviceId }, 50),
    optionalList("/drift/baselines", { device: deviceId, active: true }, 200),
    optionalList("/drift/baselines/learning", { device: deviceId }, 200),
    abilities(),
  ]);
  main.append(h("h1", {}, d.device_id, " ", stateChip(d.online ? "online" : "offline")));
  main.append(h("div", { class: "stats" },
    stat("last seen", timeCell(d.last_seen).textContent),
    stat("running", running(d) || "-"),
    stat("desired", d.desired_release_id || "-"),
    stat("windows", windows.length),
  ));
  main.append(section("Cameras and labels", h("p", {}, cameraChips(d)), h("p", {}, labelsCell(d))));
  const charts = h("div", { class: "charts" });
  main.append(section("Drift and accuracy over time", charts));
  const rs = reports || [];
  lineChart(charts, {
    title: "Drift: the statistic behind each verdict (its driving feature's PSI; a log likelihood ratio for regions.mix), with its own alarm level",
    yLabel: "statistic", yMin: 0, digits: 2,
    series: [
      { name: "statistic of the driving feature", points: rs.map((r) => [parseTime(r.window_end), driftScore(r.statistics)]) },
      { name: "alarm level", dashed: true, color: "#dc2626",
        points: rs.map((r) => [parseTime(r.window_end), driftAlarm(r.statistics)]) },
    ],
    empty: reports === null ? "this control plane has no drift API" : "no drift reports for this device yet",
  });
  const ref = rs.map((r) => referenceAccuracy(r.statistics)).find((a) => a !== null);
  lineChart(charts, {
    title: "Estimated accuracy and mean confidence",
    yLabel: "fraction", digits: 2,
    thresholds: ref ? [{ y: ref, label: "on training data" }] : [],
    series: [
      { name: "estimated accuracy (drift reports)",
        points: rs.map((r) => [parseTime(r.window_end), estimatedAccuracy(r.statistics)]) },
      { name: "mean top-class confidence (telemetry)", dashed: true, color: "#0891b2",
        points: windows.map((w) => [windowTime(w), meanConfidence(w)]) },
    ],
  });
  lineChart(charts, {
    title: "Inference latency p95", yLabel: "ms", yMin: 0, digits: 1,
    series: [{ name: "p95", points: windows.map((w) => [windowTime(w), latencyP95(w)]) }],
  });
  const labels = [...new Set(windows.flatMap((w) => Object.keys(classCounts(w))))].sort();
  const share = (w, label) => {
    const counts = classCounts(w);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    return total ? (counts[label] || 0) / total : null;
  };
  lineChart(charts, {
    title: "Predicted class share per window", yLabel: "share", yMin: 0, digits: 2,
    series: labels.map((label) => ({
      name: label, points: windows.map((w) => [windowTime(w), share(w, label)]),
    })),
  });
  main.append(await historySection(deviceId, d, baselines));
  const [current, superseded] = byRunning(baselines, running(d));
  main.append(baselinesSection(deviceId, running(d), current, superseded, can, rerender));
  if (learning && learning.length) main.append(learningSection(learning, true));
  main.append(section("Recent events", table(events || [], [
    ["at", (e) => timeCell(e.at)],
    ["kind", (e) => stateChip(e.kind)],
    ["release", (e) => e.release_id || "-"],
    ["camera", (e) => e.camera_id || "-"],
    ["detail", (e) => e.detail || (e.label ? `${e.label} ${e.confidence ?? ""}` : "-")],
  ], "no events yet")));
}
