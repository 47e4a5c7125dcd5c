// Label what the cameras saw: new samples (low-confidence or drifted crops an agent uploaded,
// and candidate negatives it mined from its own background) with their image, one click per
// label; labelled samples join the next dataset version and
// feed the realized accuracy beside the label-free estimate.
import { abilities, actionButton } from "./actions.js";
import { getBlob, list, send } from "./api.js";
import { chip, h, pct, section, stat, timeCell } from "./dom.js";

const PAGE = 24;
// Crops an agent mined from its own camera as "no animal": confirm with "other" or relabel.
const NEGATIVE_SOURCE = {
  rejected: "the model said no animal",
  track: "a moving thing that never became an animal",
  background: "the empty scene",
};

function image(sample) {
  const frame = h("div", { class: "sample-image" }, h("span", { class: "muted" }, "loading image…"));
  getBlob(`/artifacts/${sample.image_sha256}`).then((blob) => {
    frame.replaceChildren(h("img", { alt: `sample ${sample.id}`, src: URL.createObjectURL(blob) }));
  }).catch((e) => frame.replaceChildren(h("span", { class: "bad" }, `image: ${e.message}`)));
  return frame;
}

function card(sample, labels, can, rerender) {
  const top = Object.entries(sample.predictions || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
  const patch = (body) => () => send("PATCH", `/samples/${sample.id}`, body);
  return h("div", { class: "sample card", "data-sample": sample.id },
    image(sample),
    h("p", { class: "chips" }, chip(`${sample.device_id} · ${sample.camera_id}`),
      chip(`model says ${sample.predicted_label} ${pct(sample.confidence, 0)}`, "warn"),
      sample.candidate ? chip(`candidate negative: ${NEGATIVE_SOURCE[sample.candidate] || sample.candidate}`) : null,
      h("span", { class: "muted" }, "captured ", timeCell(sample.captured_at))),
    h("p", { class: "muted" }, top.map(([k, v]) => `${k} ${pct(v, 0)}`).join(" · ")),
    can.can_operate
      ? h("p", { class: "actions" },
        labels.map((label) => actionButton(label, patch({ status: "labelled", label }),
          { name: `label-${label}`, after: rerender })),
        actionButton("reject", patch({ status: "rejected" }),
          { name: "label-reject", danger: true, after: rerender }))
      : h("p", { class: "muted" }, "labelling needs a token with the operate scope"));
}

export async function labelView(main, _arg, rerender) {
  const [fresh, done, can] = await Promise.all([
    list("/samples", { status: "new" }, PAGE), list("/samples", { status: "labelled" }, 200),
    abilities(),
  ]);
  const labels = [...new Set([...fresh, ...done].flatMap((s) =>
    [...Object.keys(s.predictions || {}), s.label].filter(Boolean)))].sort();
  const right = done.filter((s) => s.label === s.predicted_label).length;
  main.append(h("div", { class: "stats" },
    stat("to label (newest shown)", fresh.length, fresh.length ? "warn" : "good"),
    stat("labelled", done.length),
    stat("model right on labelled", done.length ? pct(right / done.length) : "-"),
  ));
  if (!fresh.length) {
    main.append(section("Samples to label", h("p", { class: "empty" },
      "nothing to label: agents upload low-confidence crops when upload_samples is on")));
    return;
  }
  main.append(section("Samples to label: pick what the image shows",
    h("div", { class: "samples" }, fresh.map((s) => card(s, labels, can, rerender)))));
}
