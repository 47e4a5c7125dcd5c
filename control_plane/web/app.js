// Router, token prompt and the status element the browser test reads.
import { forgetAbilities } from "./actions.js";
import { ApiError, clearToken, get, getToken, setToken } from "./api.js";
import { renderedCount, resetCount } from "./charts.js";
import { h, section } from "./dom.js";
import { deviceView, fleetView } from "./views_fleet.js";
import { labelView } from "./views_label.js";
import { parkView } from "./views_park.js";
import { accuracyView, driftView, registryView } from "./views_ml.js";
import { alertsView, jobsView, rolloutsView } from "./views_ops.js";
import { deadLettersView } from "./views_dead_letters.js";

const VIEWS = {
  fleet: ["Fleet", fleetView],
  device: ["Device", deviceView],
  park: ["Park", parkView],
  rollouts: ["Rollouts", rolloutsView],
  drift: ["Drift", driftView],
  accuracy: ["Estimated accuracy", accuracyView],
  alerts: ["Alerts", alertsView],
  "dead-letters": ["Dead letters", deadLettersView],
  label: ["Label samples", labelView],
  jobs: ["Training jobs", jobsView],
  registry: ["Registry and lineage", registryView],
};
const REFRESH_MS = 15000;
const main = document.getElementById("main");
const status = document.getElementById("pw-status");
let generation = 0;

/** ``#/view/arg?token=...``: a token in the fragment is stored, then removed from the URL. */
function route() {
  const [path, query] = window.location.hash.replace(/^#\/?/, "").split("?");
  const token = new URLSearchParams(query || "").get("token");
  if (token) {
    setToken(token);
    window.history.replaceState(null, "", `#/${path}`);
  }
  const [view, ...rest] = (path || "fleet").split("/");
  return { view: VIEWS[view] ? view : "fleet", arg: decodeURIComponent(rest.join("/")) };
}

function setStatus(view, ready) {
  status.dataset.view = view;
  status.dataset.ready = ready ? "1" : "0";
  status.dataset.charts = String(renderedCount());
}

function loginForm(message) {
  const input = h("input", { type: "password", id: "token", placeholder: "bearer token",
    autocomplete: "off", size: 48 });
  const form = h("form", { class: "login" }, h("label", { for: "token" }, "API token "), input,
    h("button", { type: "submit" }, "Open dashboard"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (input.value.trim()) {
      setToken(input.value);
      render();
    }
  });
  return section("Sign in",
    h("p", {}, message),
    h("p", { class: "muted" }, "A token with the read scope is enough: ",
      h("code", {}, "parkwatch tokens create --name dashboard --scope read"),
      ". The admin token is in <data_dir>/admin.token."),
    form);
}

async function health() {
  const el = document.getElementById("health");
  try {
    const r = await fetch("/healthz");
    const body = await r.json();
    el.textContent = `${body.status} · db ${body.database} · mqtt ${body.mqtt}`;
    el.className = `chip ${body.status === "ok" ? "good" : "warn"}`;
  } catch (_e) {
    el.textContent = "control plane unreachable";
    el.className = "chip bad";
  }
}

async function render() {
  const mine = ++generation;
  forgetAbilities(); // the token may have changed: ask /whoami again
  const { view, arg } = route();
  resetCount();
  setStatus(view, false);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("current", a.dataset.view === view);
  }
  document.title = `${VIEWS[view][0]} · parkwatch`;
  const target = h("div", {});
  if (!getToken()) {
    target.append(loginForm("This dashboard reads the control plane's API with your token."));
  } else {
    try {
      await VIEWS[view][1](target, arg, render);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        if (e.status === 401) clearToken();
        target.replaceChildren(loginForm(`The token was refused (${e.message}).`));
      } else if (e instanceof ApiError && e.status === 429) {
        clearToken(); // stop the refresh from adding failures
        target.replaceChildren(loginForm(`Too many refused tokens from here: ${e.message}`));
      } else {
        window.pwRecordError(`view ${view} failed: ${e && e.stack ? e.stack : e}`);
        target.append(section("Error", h("p", { class: "bad" }, String(e && e.message ? e.message : e))));
      }
    }
  }
  if (mine !== generation) return; // a newer render started meanwhile
  main.replaceChildren(target);
  document.getElementById("updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  setStatus(view, true);
}

document.getElementById("signout").addEventListener("click", () => {
  clearToken();
  render();
});
window.addEventListener("hashchange", render);
window.setInterval(() => {
  if (document.visibilityState === "visible" && getToken()) render();
}, REFRESH_MS);
health();
render();
