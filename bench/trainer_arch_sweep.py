"""Architecture / schedule sweep for PetNet on the synthetic set (exploration tool).

Decodes the dataset once into memory, then trains each config (AdamW + one-cycle,
seeded, the trainer's own augmentation) and prints one JSON line per config with
test accuracy, accuracy on the frames of a ``make_video`` clip and training time.
Used to pick the trainer defaults; ``parkwatch train`` itself streams from disk.

    python bench/trainer_arch_sweep.py --data /tmp/d400 --video /tmp/vid.avi \
        --configs '[{"arch": "compact", "width": 0.75, "size": 64}]'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import InputSpec
from trainer.data import scan_image_folder
from trainer.model import PetNet
from trainer.preprocess import augment, normalize, preprocess, read_image, resize_to_input

DEFAULTS: dict[str, Any] = {
    "arch": "small", "width": 0.5, "size": 96, "epochs": 25, "batch": 64, "lr": 3e-3,
    "wd": 1e-4, "smooth": 0.0, "bn_momentum": 0.1, "dropout": 0.2, "seed": 0, "pct": 0.25,
}


def video_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    meta = json.loads(path.with_suffix(".json").read_text())
    label_of = {}
    for seg in meta["segments"]:
        for f in range(seg["start_frame"], seg["end_frame"]):
            label_of[f] = 0 if seg["label"] == "cat" else 1
    cap = cv2.VideoCapture(str(path))
    frames, labels = [], []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
        labels.append(label_of[i])
        i += 1
    cap.release()
    return frames, labels


def run(
    cfg: dict[str, Any], data: Path, video: Path | None, device: torch.device
) -> dict[str, Any]:
    c = {**DEFAULTS, **cfg}
    spec = InputSpec(width=c["size"], height=c["size"])
    scan = scan_image_folder(data, 0, 0.15, 0.15)
    with ThreadPoolExecutor(4) as pool:
        def load(split: str) -> tuple[list[np.ndarray], np.ndarray]:
            recs = scan.split(split)  # type: ignore[arg-type]
            imgs = list(pool.map(lambda r: resize_to_input(read_image(r.path), spec), recs))
            return imgs, np.array([r.label_index for r in recs])

        (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = load("train"), load("val"), load("test")

        def batch(imgs: list[np.ndarray]) -> torch.Tensor:
            x = torch.from_numpy(np.stack([normalize(im, spec) for im in imgs])).to(device)
            return x.contiguous(memory_format=torch.channels_last)

        torch.manual_seed(c["seed"])
        model = PetNet(2, c["width"], c["size"], c["dropout"], c["arch"], c["bn_momentum"])
        model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        decay = [p for p in model.parameters() if p.ndim > 1]
        rest = [p for p in model.parameters() if p.ndim <= 1]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": c["wd"]}, {"params": rest, "weight_decay": 0}],
            lr=c["lr"],
        )
        steps = max(len(tr_x) // c["batch"], 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=c["lr"], total_steps=c["epochs"] * steps, pct_start=c["pct"]
        )

        @torch.no_grad()
        def acc(xs: list[np.ndarray], ys: np.ndarray) -> tuple[float, list[int]]:
            model.eval()
            preds: list[int] = []
            for s in range(0, len(xs), 128):
                logits, _ = model(batch(xs[s : s + 128]))
                preds += logits.argmax(1).tolist()
            return float((np.array(preds) == ys).mean()), preds

        gen = np.random.default_rng(c["seed"])
        best, best_state, hist = -1.0, None, []
        t0 = time.perf_counter()
        for epoch in range(1, c["epochs"] + 1):
            model.train()
            order = gen.permutation(len(tr_x))
            for b in range(steps):
                idx = order[b * c["batch"] : (b + 1) * c["batch"]]
                rngs = [np.random.default_rng([c["seed"], epoch, int(i)]) for i in idx]
                imgs = list(pool.map(lambda i, r: augment(tr_x[i], r), idx, rngs))
                x, y = batch(imgs), torch.from_numpy(tr_y[idx]).to(device)
                logits, _ = model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=c["smooth"])
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                sched.step()
            va, _ = acc(va_x, va_y)
            hist.append(round(va, 3))
            if va >= best:
                best = va
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
        seconds = time.perf_counter() - t0
        assert best_state is not None
        model.load_state_dict(best_state)
        te, _ = acc(te_x, te_y)
        out: dict[str, Any] = {**c, "val": round(best, 4), "test": round(te, 4),
                               "train_s": round(seconds, 1), "val_hist": hist}
        if video is not None:
            frames, labels = video_frames(video)
            xs = [resize_to_input(f, spec) for f in frames]
            va_acc, preds = acc(xs, np.array(labels))
            dogs = [p for p, lab in zip(preds, labels, strict=True) if lab == 1]
            out["video"] = round(va_acc, 4)
            out["video_dog_as_cat"] = round(1 - float(np.mean(dogs)), 3) if dogs else None
            assert preprocess(frames[0], spec).shape == (3, c["size"], c["size"])
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--configs", required=True, help="JSON list of overrides of DEFAULTS")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for cfg in json.loads(a.configs):
        print(json.dumps(run(cfg, a.data, a.video, torch.device(a.device))), flush=True)


if __name__ == "__main__":
    main()
