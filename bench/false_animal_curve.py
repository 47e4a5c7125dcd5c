"""False animals per camera-hour against the animal confidence, from one long run.

    python bench/false_animal_curve.py --model out/m --empty-seconds 10800 --floor 0.6 \\
        --thresholds 0.6 0.7 0.8 0.838

The clips without animals of ``region_accuracy.py`` (same seeds from ``--seed`` + 100,
same five conditions, same distractors) go through the agent's ``RegionAnalyzer`` once,
at the animal confidence ``--floor``; every crop each track took is kept (label,
confidence). Each track that was counted as an animal (all are false: no animal is in
these clips) is then replayed at each of ``--thresholds``: is it still counted there? A
higher confidence only takes animal votes away, so the tracks counted at it are taken to
be among those counted at the floor. Replayed (``counted_at``: the track's crops, in
order, through a fresh ``Tracker`` at one box), not re-run: at a higher confidence the
tracker could have matched the thing's other crops otherwise; the floor's own row is
measured. One line per clip as it ends (a long run shows where it is); ``--log`` keeps
each counted track's crops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _track_score import rate_upper  # bench/ is on sys.path: scripts run from it
from region_accuracy import EMPTY_CONDITIONS, Context, _run, _start, empty_jobs, release_or_say

from edge_agent.config import CameraConfig
from edge_agent.regions import tracker as tracker_module

Crops = list[tuple[str, float]]
_LOG: dict[int, Crops] = defaultdict(list)  # track id -> its crops, this clip


def _record() -> None:
    """Keep every crop a track takes, and a found-again track's crops under the old id."""
    hit, found = tracker_module.Track._hit, tracker_module.Tracker._found_again

    def logged_hit(self: tracker_module.Track, obs: tracker_module.Observation, now: float,
                   path_limit: int) -> None:
        _LOG[self.track_id].append((obs.label, obs.confidence))
        hit(self, obs, now, path_limit)

    def logged_found(self: tracker_module.Tracker, new: tracker_module.Track,
                     seen: set[int], now: float) -> tracker_module.Track | None:
        old = found(self, new, seen, now)
        if old is not None:
            _LOG[old.track_id] += _LOG.pop(new.track_id, [])
        return old

    tracker_module.Track._hit = logged_hit  # type: ignore[method-assign]
    tracker_module.Tracker._found_again = logged_found  # type: ignore[method-assign]


def counted_at(crops: Crops, background: frozenset[str], threshold: float,
               confirm: int) -> bool:
    """Whether the agent's tracker counts a thing whose crops read ``crops`` (label,
    confidence), one a frame at one box, as an animal at the animal confidence
    ``threshold`` (an animal label below it abstains, as ``RegionAnalyzer`` has it)."""
    tracker = tracker_module.Tracker(background, confirm)
    box = (0.0, 0.0, 100.0, 100.0)
    for k, (label, conf) in enumerate(crops):
        votes = label in background or conf >= threshold
        obs = tracker_module.Observation(box, label, conf, votes)
        if tracker.update([obs], k / 10.0).appeared:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a regions trainer out dir")
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--empty-seconds", type=float, default=600.0,
                    help="clips without animals, split over 5 conditions")
    ap.add_argument("--seed", type=int, default=20, help="region_accuracy.py's --seed")
    ap.add_argument("--floor", type=float, required=True,
                    help="the animal confidence the agent runs at (the lowest replayed)")
    ap.add_argument("--thresholds", type=float, nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log", type=Path, default=None,
                    help="a JSON-lines file: each counted track's crops (label, confidence)")
    a = ap.parse_args(argv)
    release = release_or_say(a.model)
    if release is None:
        return 2
    path, manifest, settings = release
    if any(t < a.floor for t in a.thresholds) or not 0 <= a.floor < 1:
        print("error: give --floor in [0, 1) and --thresholds at or above it", file=sys.stderr)
        return 2
    manifest = manifest.model_copy(update={"animal_min_confidence": a.floor})
    background = frozenset(manifest.background_labels)
    jobs = empty_jobs(argparse.Namespace(empty_seconds=a.empty_seconds, seeds=[a.seed],
                                         split=False, split_beside=False))
    # Round by round through the conditions (the seeds are the region bench's): a run
    # stopped early has every condition in it.
    rounds = len(jobs) // len(EMPTY_CONDITIONS)
    jobs = [jobs[i * rounds + j] for j in range(rounds) for i in range(len(EMPTY_CONDITIONS))]
    confirm = CameraConfig(camera_id="bench", source="bench").track_confirm_frames
    _record()
    _start(Context(path, manifest, a.threads, a.photos, settings, None, 300))
    per: dict[float, dict[str, int]] = {t: dict.fromkeys(EMPTY_CONDITIONS, 0)
                                        for t in a.thresholds}
    hours = 0.0
    print(f"model {a.model}: floor {a.floor}, {len(jobs)} clips", flush=True)
    for condition, job in jobs:
        _LOG.clear()
        started = time.perf_counter()
        run = _run(job)
        hours += run.frames / 10.0 / 3600
        # Taken out before the replays: the replaying tracker's hits are logged too.
        logs = {tid: _LOG[tid] for tid, t in run.agent.items() if t.boxes}
        if a.log is not None:
            with a.log.open("a") as f:
                for tid, crops in logs.items():
                    f.write(json.dumps({"condition": condition, "seed": job.seed,
                                        "track": tid, "crops": crops}) + "\n")
        line = []
        for t in a.thresholds:
            n = sum(counted_at(crops, background, t, confirm) for crops in logs.values())
            per[t][condition] += n
            line.append(f"{t:g}: {n}")
        print(f"{condition} seed {job.seed} {job.seconds:g} s: counted at the floor "
              f"{len(logs)}; replayed {', '.join(line)} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\n{hours:.2f} camera-hours without animals")
    print("| animal confidence | " + " | ".join(EMPTY_CONDITIONS)
          + " | false animals | per camera-hour [95 % upper] |")
    print("|---:|" + "---:|" * (len(EMPTY_CONDITIONS) + 2))
    for t in a.thresholds:
        total = sum(per[t].values())
        print(f"| {t:g}{' (run)' if t == a.floor else ''} | "
              + " | ".join(str(per[t][c]) for c in EMPTY_CONDITIONS)
              + f" | {total} | {total / hours:.2f} [{rate_upper(total, hours):.2f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
