"""`parkwatch demo`: the whole loop on embedded defaults, on one machine.

Makes synthetic data and camera videos, starts the control plane (SQLite,
local artifacts, in-process MQTT broker) and the retraining worker, trains and
registers a model, signs a release, provisions three agents and rolls the
release out. Every camera is a wide park shot (regions mode). The full story
(default, on the default drift settings and agent condition tagging): night falls on two
cameras, which raises nothing (night is a condition of its own); the day camera learns
its day baseline and the night cameras their night baselines while a simulated labeller
labels a few uploaded crops from the clips' ground truth. Then the park's lamps are
dimmed on the night cameras: against their own night baselines that is a real change,
the drift alert opens, the retraining on day + dimmed-night images follows, then the
shadow rollout and the promotion (scripts/demo_story.py). `--story basic` stops after
the first rollout. Both end with a live telemetry table; Ctrl-C stops every process the
demo started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.demo_story import evening_story, night_story, story_config
from scripts.labeller import SimulatedLabeller
from scripts.loop import Loop, class_counts
from scripts.phases import PhaseError, Timeline
from scripts.real_video import DEFAULT_PHOTOS
from scripts.story_data import NIGHT_SEVERITY, story_data
from scripts.synth_images import generate_dataset
from trainer.synth import PhotoPool, SceneSpec, Schedule, write_clip

CAMERAS = {
    "park1-gate": ["cat", "dog", "cat", "cat", "dog", "cat"],
    "park1-lawn": ["dog", "dog", "cat", "dog", "dog", "cat"],
    "park2-pond": ["cat", "dog", "dog", "cat", "dog", "cat"],
}
PHOTOS_PER_CLASS = 150  # --photos: enough for a linear probe in about a minute on 2 cores
# The cameras are wide park shots: animals come and go among people, balls and leaves,
# and the model (Lite0 in regions mode, with an "other" class) classifies the moving
# regions.
PARK_CLIP_SECONDS = 60.0
PARK_SCHEDULE = Schedule(empty_share=0.4, animals_per_minute=4.0, distractors_per_minute=3.0,
                         max_group=3)
REGIONS_TRAINER = 'arch = "lite0"\nregions = true\nregion_eval_seconds = 10\n'
# The full story retrains too: smaller crops and no int8 gate keep it to minutes.
FULL_TRAINER = REGIONS_TRAINER + 'input_size = 160\nshifts = ["night"]\n'
NIGHT = ["park1-lawn", "park2-pond"]  # the cameras night falls on (full story)
console = Console()


def fleet_table(loop: Loop, release_id: str) -> Table:
    table = Table(title=f"fleet telemetry for release {release_id} (animals that came in "
                  "the last hour, one per track)")
    for col in ("device", "online", "release", "stage", "windows", "cat", "dog", "p95 ms"):
        table.add_column(col)
    park = {(c["device_id"]): c for c in loop.api("/park", hours=1)["cameras"]
            if c.get("mode") == "regions"}
    for device_id in CAMERAS:
        device = loop.api(f"/devices/{device_id}")
        active = (device.get("reported") or {}).get("active") or {}
        windows = loop.windows(device_id, release_id)
        counts = park[device_id]["totals"] if device_id in park else class_counts(windows)
        p95 = "-"
        if windows and windows[0]["window"]["cameras"]:
            lat = windows[0]["window"]["cameras"][0].get("inference_ms")
            p95 = f"{lat['p95']:.1f}" if lat else "-"
        table.add_row(
            device_id, "yes" if device.get("online") else "no", active.get("release_id", "-"),
            active.get("stage", "-"), str(len(windows)), str(counts.get("cat", 0)),
            str(counts.get("dog", 0)), p95,
        )
    return table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("demo-data"))
    parser.add_argument(
        "--duration", type=float, default=0, help="seconds to watch at the end; 0 = until Ctrl-C"
    )
    parser.add_argument("--epochs", type=int, default=0,
                        help="training epochs (first model and retraining); 0: the "
                        "trainer's default for --arch (25), or 25 for --story basic")
    parser.add_argument("--arch", default="",
                        help="trainer --arch; empty: lite0 (pretrained EfficientNet-Lite0, "
                        "linear probe; the wide cameras need it: regions mode)")
    parser.add_argument("--story", choices=("full", "basic"), default="full",
                        help="full: nightfall, baselines, labels, dimmed lamps at night, "
                        "drift, retraining, shadow, promotion; basic: stop after the first "
                        "rollout")
    parser.add_argument("--photos", type=Path, default=None,
                        help="train on real photos from this ImageFolder "
                        f"(e.g. {DEFAULT_PHOTOS}; {PHOTOS_PER_CLASS} per class, linear probe "
                        "of EfficientNet-Lite0) and film the wide cameras from cut-outs of "
                        "held-out photos (full story: retrain on dimmed-night copies)")
    args = parser.parse_args()
    if args.arch not in ("", "lite0"):
        parser.error("the wide cameras classify regions, which needs --arch lite0 (a linear "
                     "probe with an 'other' class); leave --arch out")
    return args


def park_spec(device_id: str, pool: PhotoPool | None, workdir: Path,
              night: bool = False) -> SceneSpec:
    """A camera's wide park clip: cartoon animals, or cut-outs of the photos of the
    trainer's test split (never trained on); ``night``: the same scene at night."""
    return SceneSpec(seconds=PARK_CLIP_SECONDS, seed=10 + list(CAMERAS).index(device_id),
                     photos=pool, schedule=PARK_SCHEDULE, cutout_cache=workdir / "cutouts",
                     conditions=("night",) if night else ("day",), severity=NIGHT_SEVERITY)


def film_park(videos: Path, pool: PhotoPool | None, workdir: Path) -> None:
    """One clip per camera, with its ground-truth sidecar beside it."""
    for device_id in CAMERAS:
        video = videos / f"{device_id}.avi"
        if not video.exists():
            video.parent.mkdir(parents=True, exist_ok=True)
            write_clip(video, park_spec(device_id, pool, workdir))


def photo_subset(src: Path, dest: Path, per_class: int) -> Path:
    """A fixed subset (the first files by name) of a real-photo ImageFolder, as symlinks:
    training stays quick, and the trainer's split and the held-out videos agree on it."""
    for label in ("cat", "dog"):
        folder = src / label
        if not folder.is_dir():
            raise PhaseError(f"no folder {folder}: --photos needs an ImageFolder with cat/ "
                             f"and dog/ (e.g. {DEFAULT_PHOTOS})")
        out = dest / label
        out.mkdir(parents=True, exist_ok=True)
        for photo in sorted(folder.iterdir())[:per_class]:
            link = out / photo.name
            if not link.exists():
                link.symlink_to(photo.resolve())
    return dest


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C: every child process is stopped


def trainer_args(args: argparse.Namespace, workdir: Path) -> list[str]:
    """Wide cameras: a model for regions (crops, and an "other" class)."""
    full = args.story == "full"
    workdir.mkdir(parents=True, exist_ok=True)
    regions = workdir / "trainer-regions.toml"
    regions.write_text(FULL_TRAINER if full else REGIONS_TRAINER)
    train_args = ["--arch", "lite0", "--config", str(regions), "--epochs", str(args.epochs or 25)]
    if full:
        train_args.append("--no-quantize")  # minutes count; the int8 gate is another story
    return train_args


def prepare_data(workdir: Path, full: bool,
                 photos: Path | None) -> tuple[Path, Path, dict[str, Path]]:
    """The training set, the cameras' clips and (full story) the night data."""
    data = workdir / "dataset"
    if photos is not None:
        data = photo_subset(photos, workdir / "photos", PHOTOS_PER_CLASS)
    elif not data.exists():
        generate_dataset(data, n_per_class=PHOTOS_PER_CLASS, seed=0, size=128)
    videos = workdir / ("park-photos" if photos else "park")
    pool = PhotoPool(photos, "test") if photos is not None else None
    film_park(videos, pool, workdir)
    extra = story_data(workdir, videos, {d: park_spec(d, pool, workdir, night=True)
                                         for d in NIGHT}, data, photos) if full else {}
    console.print(f"dataset in {data}, videos in {videos}")
    return data, videos, extra


def train_first(loop: Loop, data: Path, out: Path, train_args: list[str],
                champion: bool) -> None:
    with console.status(f"training petnet ({' '.join(train_args)}; report: "
                        f"{out / 'report.md'} when done)"):
        loop.train(data, out, *train_args)
    version = loop.api("/models/petnet/versions")["items"][-1]
    metrics = version.get("metrics") or {}
    console.print(f"registered petnet version {version['version']}: test accuracy "
                  f"{metrics.get('test_accuracy', float('nan')):.3f}")
    if champion:
        loop.cli("aliases", "set", "petnet", "champion", str(version["version"]))


def start_agents(loop: Loop, videos: Path) -> None:
    """One agent per camera, a wide park shot in regions mode, on the default camera
    settings (its light and weather tagged as conditions)."""
    for device_id in CAMERAS:
        loop.add_agent(device_id, videos / f"{device_id}.avi", sample_fps=5.0,
                       mode="regions")
        loop.start_agent(device_id)
        console.print(f"agent {device_id}: config {loop.workdir / 'agents' / device_id}.toml")


def roll_out(loop: Loop) -> str:
    release_id = loop.release_and_roll_out("petnet", *CAMERAS, options=[
        "--waves", "1,100%", "--gate", "min_windows=1"])
    for device_id in CAMERAS:
        with console.status(f"waiting for {device_id} to verify, smoke-test and run "
                            f"{release_id}"):
            loop.wait_for_release(device_id, release_id, timeout=180)
        console.print(f"{device_id}: {release_id} verified, smoke-tested, healthy")
    return release_id


def watch(loop: Loop, release_id: str, duration: float) -> None:
    """Where to look, then the live table until ``duration`` s pass (0: until Ctrl-C)."""
    token = (loop.cp_dir / "admin.token").read_text().strip()
    console.print(f"dashboard: [bold]{loop.api_url}/dashboard/#/park?token={token}[/]")
    console.print(f"look: {loop.api_url}/api/v1/devices  ·  {loop.api_url}/docs  ·  "
                  f"token in {loop.cp_dir / 'admin.token'}  ·  logs in {loop.workdir / 'logs'}")
    end = time.monotonic() + duration if duration else float("inf")
    with Live(fleet_table(loop, release_id), console=console, refresh_per_second=1) as live:
        while time.monotonic() < end:
            time.sleep(2)
            live.update(fleet_table(loop, release_id))


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    full = args.story == "full"
    photos: Path | None = args.photos.resolve() if args.photos is not None else None
    workdir: Path = args.workdir.resolve()
    train_args = trainer_args(args, workdir)
    # Full story: 10 s windows at 5 fps, so a window holds enough crops to be judged
    # against its camera's baseline ([drift] min_samples).
    loop = Loop(workdir / "run", mqtt_url=None, window_seconds=10.0 if full else 5.0)
    if full:
        loop.agent_env.update(
            # three agents (and shadow models) share 2 cores: one ONNX thread each
            PARKWATCH_AGENT_INTRA_OP_THREADS="1",
            # a sample of every kind of crop, one every 2 s, for the simulated labeller
            # (by default only low-confidence crops are sampled: biased low, docs/drift.md)
            PARKWATCH_AGENT_UPLOAD_SAMPLES="true",
            PARKWATCH_AGENT_SAMPLE_CONFIDENCE_BELOW="1.0",
            PARKWATCH_AGENT_SAMPLE_MAX_PER_HOUR="1800")
        # The retraining computes backbone features only for the images it has not seen
        # (the night ones), and the trainer's shift report covers night only.
        loop.trainer_env["PARKWATCH_TRAINER_FEATURE_CACHE_DIR"] = str(workdir / "features")
        loop.trainer_env["PARKWATCH_TRAINER_SHIFTS"] = '["night"]'
    timeline = Timeline()
    labeller = SimulatedLabeller(loop)
    n = 12 if full else 6
    try:
        what = "real photos" if photos else "synthetic data"
        with timeline.phase(f"1/{n} {what} and camera videos"):
            data, videos, extra = prepare_data(workdir, full, photos)

        with timeline.phase(f"2/{n} control plane (SQLite, local artifacts, embedded MQTT)"):
            if full:
                day_cams = [d for d in CAMERAS if d not in NIGHT]
                loop.config = story_config(workdir / "parkwatch.toml", extra, train_args,
                                          day_cams)
                console.print(f"settings: {loop.config} (\\[drift] pace and \\[worker])")
            loop.start_control_plane()
            console.print(f"API {loop.api_url}  broker {loop.broker_url}  data {loop.cp_dir}")
            if full:
                loop.start_worker()
                console.print(f"retraining worker started (log {loop.workdir / 'logs'}"
                              "/worker.log)")

        with timeline.phase(f"3/{n} train, export to ONNX, register"):
            train_first(loop, data, workdir / "model", train_args, champion=full)
        with timeline.phase(f"4/{n} provision and start three edge agents"):
            start_agents(loop, videos)
        with timeline.phase(f"5/{n} sign a release and roll it out over MQTT in waves"):
            release_id = roll_out(loop)

        if full:
            for device_id in CAMERAS:
                labeller.watch(device_id, videos / f"{device_id}.avi")
            labeller.start()
            evening_story(loop, timeline, release_id, list(CAMERAS), NIGHT, videos, labeller)
            release_id = night_story(loop, timeline, release_id, NIGHT, videos, labeller)
            labeller.stop()  # its tally, saved below, is then the store's
            console.print(f"simulated labeller: {labeller.tally}")

        with timeline.phase(f"{n}/{n} telemetry flowing back (Ctrl-C to stop)"):
            print_timeline(timeline)
            timeline.save(loop.workdir / "timeline.json", story=args.story,
                          night_cameras=NIGHT if full else [], release_id=release_id,
                          videos=str(videos), labeller=labeller.tally)
            watch(loop, release_id, args.duration)
        return 0
    except KeyboardInterrupt:
        console.print("stopping ...")
        return 0
    except (PhaseError, TimeoutError) as exc:
        console.print(f"[red]demo stopped: {exc}")
        return 1
    except Exception as exc:
        console.print(f"[red]demo failed: {exc}")
        for proc in loop.procs.values():
            console.print(f"--- {proc.name} log tail ({proc.log})\n{proc.tail(10)}")
        return 1
    finally:
        if labeller.is_alive():
            labeller.stop()
        loop.stop_all()
        console.print("all demo processes stopped")


def print_timeline(timeline: Timeline) -> None:
    table = Table(title="how long each phase took")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for title, seconds in timeline.phases:
        table.add_row(title, f"{seconds:.0f}")
    console.print(table)


if __name__ == "__main__":
    raise SystemExit(main())
