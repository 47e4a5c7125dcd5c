// Dead letters: messages ingest could not store, with why, and a replay per message or all.
import { abilities, actionButton } from "./actions.js";
import { list, send } from "./api.js";
import { h, link, section, stat, table, timeCell } from "./dom.js";

const SHOWN = 500;

/** What one replay did, in a line. */
function replayed(answer) {
  const made = Object.entries(answer.outcomes).map(([k, n]) => `${n} ${k}`).join(", ");
  const again = Object.values(answer.errors);
  return `${answer.done} done${made ? ` (${made})` : ""}, ${answer.failed} failed again`
    + (again.length ? `: ${again[0]}` : "");
}

/** A replay button whose note keeps the API's answer, not just "done". */
function replayButton(label, path, name, after) {
  const wrap = actionButton(label, async () => {
    const answer = await send("POST", path);
    if (answer.failed) throw new Error(replayed(answer));
    wrap.querySelector(".action-note").dataset.answer = replayed(answer);
  }, { name, after });
  return wrap;
}

export async function deadLettersView(main, _arg, rerender) {
  const [letters, can] = await Promise.all([list("/dead-letters", {}, SHOWN), abilities()]);
  const kinds = new Set(letters.map((d) => d.kind));
  main.append(h("div", { class: "stats" },
    stat("dead letters", letters.length, letters.length ? "bad" : "good"),
    stat("devices", new Set(letters.map((d) => d.device_id)).size),
    stat("kinds", kinds.size ? [...kinds].join(", ") : "-"),
  ));
  main.append(section("Messages ingest could not store",
    h("p", { class: "muted" },
      "Each was acknowledged only after it was kept here. Once the cause is fixed (an ",
      "upgrade), replay: what stores is deleted, what fails again stays with its new error. ",
      "Kept for the retention's dead_letters_keep_days, then deleted. CLI: ",
      h("code", {}, "parkwatch dead-letters list|replay"), "."),
    can.can_operate && letters.length
      ? h("p", {}, replayButton("replay all", "/dead-letters/replay", "dead-letters-replay-all",
        rerender)) : "",
    table(letters, [
      ["id", (d) => String(d.id)],
      ["received", (d) => timeCell(d.received_at)],
      ["kind", (d) => d.kind],
      ["device", (d) => link(`#/device/${encodeURIComponent(d.device_id)}`, d.device_id)],
      ["reason", (d) => h("code", { class: "bad" }, d.error)],
      ...(can.can_operate ? [["act", (d) => replayButton("replay",
        `/dead-letters/${d.id}/replay`, "dead-letter-replay", rerender)]] : []),
    ], "no dead letters: every message received was stored")));
}
