"""How many non-animal regions a park camera's agent classifies an hour: the trainer's
``region_other_regions_per_hour``, which turns a target of false animals per camera-hour
into a share of held-out "other" region-seconds (``trainer.region_tracks``); and the
tracks it confirms on them.

    python bench/regions_per_hour.py --model out/lite0-regions --seconds 60

Clips without animals of the bench's kind (``region_accuracy.py``'s empty clips: 4
distractors a minute), ``--seconds`` each of day, dusk, night, IR and rain, from seeds
the region bench does not film, go through the agent's own ``RegionAnalyzer`` at 10
frames/s. Counted once a second per region (a region's crops a frame apart look alike).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from region_accuracy import EMPTY_CONDITIONS, FPS, frames_of, release_or_say, scene

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.runtime import ModelRuntime

SEED = 500  # the region bench's empty clips take seeds from its --seed + 100


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a regions trainer out dir")
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--seconds", type=float, default=60.0, help="per condition")
    a = ap.parse_args(argv)
    release = release_or_say(a.model)
    if release is None:
        return 2
    path, manifest, settings = release
    runtime = ModelRuntime(path, manifest, 1)
    frames = classified = tracks = 0
    for i, condition in enumerate(EMPTY_CONDITIONS):
        clip = scene(a.photos, settings, a.seconds, SEED + i, condition, False, None)
        analyzer = RegionAnalyzer(CameraConfig(camera_id="bench", source="bench",
                                               sample_fps=FPS), lambda *_, **__: None,
                                  frozenset(), 0.6)
        confirmed: set[int] = set()
        for k, (image, _) in enumerate(frames_of(clip)):
            analyzer.analyse(image, k / FPS, runtime)
            confirmed |= {t.track_id for t in analyzer.tracker.tracks if t.confirmed}
        n = analyzer.counts.classified
        print(f"{condition}: {analyzer.frames} frames, {n} regions classified "
              f"({n / analyzer.frames:.2f} a frame), {len(confirmed)} tracks confirmed",
              flush=True)
        frames, classified = frames + analyzer.frames, classified + n
        tracks += len(confirmed)
    per_frame = classified / frames
    print(f"all: {per_frame:.3f} regions a frame: {per_frame * 3600:.0f} region-seconds an "
          f"hour (region_other_regions_per_hour), {per_frame * FPS * 3600:.0f} crops an hour "
          f"at {FPS:g} frames/s; {tracks * FPS * 3600 / frames:.0f} tracks confirmed an hour")
    return 0


if __name__ == "__main__":
    sys.exit(main())
