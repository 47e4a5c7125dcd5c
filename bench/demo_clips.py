"""A regions model on the demo's own wide clips (cartoon animals, `scripts/demo.py`'s
park schedule): crops by class, alone or with another animal in them, and the tracks
the agent makes of each clip with the animals they count per class.

    python bench/demo_clips.py --model out/demo-model               # park1-gate..park2-pond
    python bench/demo_clips.py --model out/a --model out/b --seeds 10 13 14

The clips are the demo's day clips (seed 10 is park1-gate, 11 park1-lawn, 12 park2-pond),
filmed frame by frame at the agent's 5 frames/s. Crops are cut at the true boxes of every
animal at least half in view ("with another": the crop holds a tenth of another animal's
box, as ``trainer.region_eval`` leaves such crops out of "no animal"). Tracks are the
agent's own ``RegionAnalyzer`` (regions not split, the cameras' default; ``--split``:
split into bodies at ``region_split_neck`` 0.6) on the same
frames; a clip's count is one per confirmed animal track under its final label, as the
control plane's park view counts them, beside the same with every crop read from the
truth (the oracle: what the regions and the tracker cost alone) and the clip's animals. Every
share comes with its 95 % Clopper-Pearson interval; neighbouring frames of one animal
look alike, so the intervals are narrower than the clips' few animals warrant.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _track_score import Run, share_interval  # bench/ is on sys.path: scripts run from it
from region_accuracy import release_or_say, run_clip

from edge_agent.runtime import ModelRuntime
from scripts.demo import PARK_CLIP_SECONDS, PARK_SCHEDULE
from scripts.story_data import NIGHT_SEVERITY
from trainer.crops import cut_crop
from trainer.region_eval import _shows
from trainer.synth import Scene, SceneSpec

STRIDE = 2  # the agent samples 5 of the clip's 10 frames a second


def clip(seed: int) -> Scene:
    return Scene(SceneSpec(seconds=PARK_CLIP_SECONDS, seed=seed, schedule=PARK_SCHEDULE,
                           conditions=("day",), severity=NIGHT_SEVERITY))


Counts = tuple[Counter[str], Counter[str], Counter[str]]  # the model's, the oracle's, truth


def counted(run: Run) -> Counter[str]:
    """One per confirmed animal track, under its last label."""
    return Counter(t.label for t in run.agent.values() if t.label and t.boxes)


def measure(runtime: ModelRuntime, seeds: list[int], split: bool = False
            ) -> tuple[Counter[tuple[str, str]], dict[int, Counts]]:
    """Crops (truth with another or alone, predicted), and per clip the animals counted
    per class by the model's tracks, by the tracks with every crop read from the truth
    (``OracleLabels``), and the clip's."""
    manifest, labels = runtime.manifest, list(runtime.labels)
    size = (manifest.input.width, manifest.input.height)
    crops: Counter[tuple[str, str]] = Counter()
    counts = {}
    for seed in seeds:
        scene, frames = clip(seed), []
        for k in range(0, scene.frame_count, STRIDE):
            f = scene.render(k)
            frames.append((f.image, f.objects))
            animals = [o for o in f.objects if o.kind == "animal"]
            seen = [o for o in animals if o.visible_fraction >= 0.5]
            if not seen:
                continue
            images = np.stack([cut_crop(f.image, (o.box[0], o.box[1], o.box[0] + o.box[2],
                                                  o.box[1] + o.box[3]), manifest.crops, size)
                               for o in seen])
            result = runtime.classify_crops(images)
            for o, top in zip(seen, result.tops, strict=True):
                near = any(_shows(manifest.crops, o.box, p.box) for p in animals if p is not o)
                crops[(f"{o.label} {'with another' if near else 'alone'}", labels[top])] += 1
        run = run_clip(iter(frames), runtime, window_frames=10 ** 9, split=split)
        oracle = run_clip(iter(frames), runtime, window_frames=10 ** 9, oracle=True,
                          split=split)
        counts[seed] = (counted(run), counted(oracle),
                        Counter(t.label for t in run.truth.values()))
    return crops, counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, action="append", required=True,
                    help="a trainer out dir of a regions model (repeat to compare)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--split", action="store_true",
                    help="split regions into bodies (region_split_neck 0.6; cameras: 0)")
    a = ap.parse_args(argv)
    releases = []
    for model in a.model:
        release = release_or_say(model)
        if release is None:
            return 2
        releases.append((model, *release))
    print("| model | crops | n | read right [95 %] | read as |")
    print("|---|---|---:|---:|---|")
    tracks = []
    for model, path, manifest, _ in releases:
        crops, counts = measure(ModelRuntime(path, manifest, a.threads), a.seeds,
                               a.split)
        for kind in sorted({k for k, _ in crops}):
            read = {p: n for (k, p), n in crops.items() if k == kind}
            n, right = sum(read.values()), read.get(kind.split()[0], 0)
            low, high = share_interval(right, n)
            print(f"| {model.name} | {kind} | {n} | {right / n:.0%} [{low:.0%}, {high:.0%}] | "
                  f"{', '.join(f'{p} {v}' for p, v in sorted(read.items()))} |")
        tracks += [(model.name, seed, c) for seed, c in counts.items()]
    print("\n| model | clip seed | tracks counted | with every crop read right | "
          "animals in the clip |")
    print("|---|---:|---|---|---|")
    for name, seed, clip_counts in tracks:
        print(f"| {name} | {seed} | " + " | ".join(str(dict(sorted(c.items())))
                                                  for c in clip_counts) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
