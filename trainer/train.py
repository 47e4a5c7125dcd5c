"""The training loop: seeded, AdamW + one-cycle, early stopping on validation accuracy.

Runs on CPU or CUDA (``device="auto"`` picks CUDA when there is one), shows
rich progress bars for epochs and batches and keeps the best weights.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .config import TrainerSettings
from .data import ImageDataset
from .errors import TrainerError

log = logging.getLogger(__name__)


class SizedDataset(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """(input, label) items of a known number (torch's Dataset type does not promise one)."""

    def __len__(self) -> int:
        raise NotImplementedError


# Photos (augmented per epoch) or other (input, label) items, e.g. cached activations.
TrainSet = ImageDataset | SizedDataset


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float  # the whole epoch, validation included
    images: int  # training images seen
    images_per_s: float  # training throughput: decode + augment + forward + backward


@dataclass
class TrainOutcome:
    """The trained model (best weights loaded) and how it got there."""

    model: nn.Module
    device: str
    best_epoch: int
    best_val_accuracy: float
    history: list[EpochStats] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    fine_tune: dict[str, object] | None = None  # regions mode's top fine-tune (top_tune)

    @property
    def images_per_s(self) -> float:
        """Mean training throughput (forward + backward + decode) over all epochs."""
        seen = sum(e.images for e in self.history)
        return seen / max(sum(e.images / max(e.images_per_s, 1e-9) for e in self.history), 1e-9)

    def summary(self) -> dict[str, object]:
        return {
            "device": self.device,
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "epochs_run": len(self.history),
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 1),
            "history": [asdict(e) for e in self.history],
            **({} if self.fine_tune is None else {"fine_tune": self.fine_tune}),
        }


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainerError("device 'cuda' requested but torch sees no CUDA GPU: use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch and use deterministic kernels inside the block; restore the flag after."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """No weight decay on biases and normalisation parameters."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@torch.no_grad()
def evaluate_loss_accuracy(
    model: nn.Module, loader: DataLoader[tuple[torch.Tensor, int]], device: torch.device
) -> tuple[float, float]:
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device).contiguous(memory_format=torch.channels_last), y.to(device)
        logits, _ = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        count += len(y)
    return total_loss / max(count, 1), correct / max(count, 1)


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not enabled,
        transient=False,
    )


def _loaders(
    train_set: TrainSet, val_set: TrainSet, settings: TrainerSettings, pin: bool
) -> tuple[DataLoader[tuple[torch.Tensor, int]], DataLoader[tuple[torch.Tensor, int]]]:
    train_loader = DataLoader(
        train_set,
        batch_size=settings.batch_size,
        shuffle=True,
        drop_last=len(train_set) > settings.batch_size,
        num_workers=settings.num_workers,
        generator=torch.Generator().manual_seed(settings.seed),
        pin_memory=pin,
    )
    val_loader = DataLoader(
        val_set,
        batch_size=settings.batch_size * 2,
        num_workers=settings.num_workers,
        pin_memory=pin,
    )
    return train_loader, val_loader


def _train_epoch(
    model: nn.Module,
    loader: DataLoader[tuple[torch.Tensor, int]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    settings: TrainerSettings,
    epoch: int,
    on_batch: Callable[[float], None],
) -> tuple[float, int, int]:
    """One pass over ``loader``: ``(loss sum, correct, seen)``; ``on_batch(mean loss)``.

    A loss that is no longer finite stops the run with a TrainerError naming the fix.
    """
    model.train()
    pin = device.type == "cuda"
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x = x.to(device, non_blocking=pin).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=pin)
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        on_batch(loss_sum / seen)
    if not math.isfinite(loss_sum):
        raise TrainerError(
            f"training diverged in epoch {epoch} (loss is {loss_sum}); lower lr (now {settings.lr})"
        )
    return loss_sum, correct, seen


def train_model(
    model: nn.Module,
    train_set: TrainSet,
    val_set: TrainSet,
    settings: TrainerSettings,
    console: Console | None = None,
    show_progress: bool = True,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainOutcome:
    """Train ``model`` in place; return it with the weights of its best validation epoch."""
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    console = console or Console(stderr=True)
    started = time.perf_counter()
    # channels_last: oneDNN's depthwise and 1x1 kernels run 1.3-1.5x faster on CPU.
    model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    train_loader, val_loader = _loaders(train_set, val_set, settings, device.type == "cuda")
    steps = max(len(train_loader), 1)
    optimizer = torch.optim.AdamW(_param_groups(model, settings.weight_decay), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=settings.epochs * steps, pct_start=0.25
    )
    outcome = TrainOutcome(model=model, device=str(device), best_epoch=0, best_val_accuracy=-1.0)
    best_state = copy.deepcopy(model.state_dict())
    best_val_loss = math.inf
    with _progress(console, show_progress) as progress:
        epochs_task = progress.add_task("epochs", total=settings.epochs, info="")
        batch_task = progress.add_task("batches", total=steps, info="")
        for epoch in range(1, settings.epochs + 1):
            if isinstance(train_set, ImageDataset):  # cached activations have no epochs
                train_set.set_epoch(epoch)
            progress.reset(batch_task, total=steps, description=f"epoch {epoch}", info="")
            t0 = time.perf_counter()
            loss_sum, correct, seen = _train_epoch(
                model, train_loader, optimizer, scheduler, device, settings, epoch,
                lambda loss: progress.update(batch_task, advance=1, info=f"loss {loss:.3f}"),
            )
            train_seconds = time.perf_counter() - t0
            val_loss, val_acc = evaluate_loss_accuracy(model, val_loader, device)
            stats = EpochStats(
                epoch=epoch,
                train_loss=loss_sum / max(seen, 1),
                train_accuracy=correct / max(seen, 1),
                val_loss=val_loss,
                val_accuracy=val_acc,
                lr=float(scheduler.get_last_lr()[0]),
                seconds=time.perf_counter() - t0,
                images=seen,
                images_per_s=seen / max(train_seconds, 1e-9),
            )
            outcome.history.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
            log.info(
                "epoch %d: loss %.4f acc %.3f val_loss %.4f val_acc %.3f (%.0f img/s)",
                epoch, stats.train_loss, stats.train_accuracy, val_loss, val_acc,
                stats.images_per_s,
            )
            if val_acc > outcome.best_val_accuracy or (
                val_acc == outcome.best_val_accuracy and val_loss < best_val_loss
            ):
                outcome.best_epoch, outcome.best_val_accuracy = epoch, val_acc
                best_val_loss = val_loss
                best_state = copy.deepcopy(model.state_dict())
            progress.update(
                epochs_task,
                advance=1,
                info=f"val acc {val_acc:.3f} (best {outcome.best_val_accuracy:.3f} "
                f"@ {outcome.best_epoch})",
            )
            if epoch - outcome.best_epoch >= settings.patience:
                outcome.stopped_early = True
                log.info("early stop: no better val accuracy for %d epochs", settings.patience)
                break
    model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    model.eval()
    outcome.seconds = time.perf_counter() - started
    return outcome


__all__ = ["EpochStats", "SizedDataset", "TrainOutcome", "TrainSet", "deterministic",
           "resolve_device", "train_model"]
