// Operator actions from the dashboard. The API enforces scopes; the page only hides buttons
// a token may not use (``/whoami``) and shows the API's answer, success or refusal, in place.
import { get, send } from "./api.js";
import { h } from "./dom.js";

let whoami = null;

/** What the current token may do; one request per page load. */
export async function abilities() {
  if (whoami === null) {
    try {
      whoami = await get("/whoami");
    } catch (_e) {
      whoami = { can_operate: false, can_admin: false, name: "?" };
    }
  }
  return whoami;
}

export function forgetAbilities() {
  whoami = null;
}

/**
 * A button that runs ``run()`` (an API call) and then ``after()``; a confirmation first when
 * ``confirm`` is set, a reason prompt when ``reason`` is set. The answer shows beside it.
 */
export function actionButton(label, run, opts = {}) {
  const button = h("button", { type: "button", class: `action ${opts.danger ? "danger" : ""}`,
    "data-action": opts.name || label }, label);
  const note = h("span", { class: "action-note muted" });
  button.addEventListener("click", async () => {
    if (opts.confirm && !window.confirm(opts.confirm)) return;
    let reason;
    if (opts.reason) {
      reason = window.prompt(opts.reason, "");
      if (reason === null) return;
    }
    button.disabled = true;
    note.className = "action-note muted";
    note.textContent = " …";
    try {
      await run(reason || undefined);
      note.textContent = " done";
      if (opts.after) opts.after();
    } catch (e) {
      note.className = "action-note bad";
      note.textContent = ` ${e.message}`;
      button.disabled = false;
    }
  });
  return h("span", { class: "action-wrap" }, button, note);
}

const ROLLOUT_ACTIONS = {
  awaiting_approval: ["approve", "pause", "abort", "rollback"],
  in_progress: ["pause", "abort", "rollback"],
  paused: ["resume", "abort", "rollback"],
  completed: ["rollback"],
  failed: ["rollback"],
};
const DANGER = new Set(["abort", "rollback"]);
const CONFIRM = {
  abort: "Abort this rollout? No further device will get the release.",
  rollback: "Roll back? Every device that got the release goes back to its previous one.",
};

/** The buttons a rollout in ``state`` offers, for an operator. */
export function rolloutButtons(rollout, after) {
  const verbs = ROLLOUT_ACTIONS[rollout.state] || [];
  return verbs.map((verb) => actionButton(verb, (reason) =>
    send("POST", `/rollouts/${encodeURIComponent(rollout.rollout_id)}/${verb}`,
      reason ? { reason } : undefined),
  { name: `rollout-${verb}`, danger: DANGER.has(verb), confirm: CONFIRM[verb],
    reason: DANGER.has(verb) || verb === "approve" ? `Reason for "${verb}" (audited):` : null,
    after }));
}

/** Acknowledge or resolve an alert. */
export function alertButtons(alert, after) {
  const out = [];
  const patch = (state) => (note) => send("PATCH", `/alerts/${alert.id}`,
    note ? { state, note } : { state });
  if (alert.state === "open") {
    out.push(actionButton("acknowledge", patch("acknowledged"), { name: "alert-ack", after }));
  }
  if (alert.state !== "resolved") {
    out.push(actionButton("resolve", patch("resolved"), { name: "alert-resolve",
      reason: "Note (audited, optional):", after }));
  }
  return out;
}

/** Point ``alias`` of a model at a version. */
export function promoteButton(modelName, version, alias, after) {
  return actionButton(`make ${alias}`, () =>
    send("PUT", `/models/${encodeURIComponent(modelName)}/aliases/${encodeURIComponent(alias)}`,
      { version: String(version) }),
  { name: `promote-${alias}`, confirm: `Point ${modelName}@${alias} at v${version}?`, after });
}
