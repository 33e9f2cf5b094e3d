"""The training loop shared by every family: device, AMP, DDP, checkpoints, validation.

Runs on CUDA when present (mixed precision there), CPU otherwise; under `torchrun` it
trains data-parallel (one process per GPU, gloo on CPU). Data order is a function of
(seed, step), so `resume` continues exactly where the last checkpoint stopped.
"""
from __future__ import annotations

import csv
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from trainers.checkpoint import load_checkpoint, save_checkpoint
from trainers.data import CorruptCounter, ShardStream, StreamConfig, expand_urls, make_loader
from trainers.decode import make_decoder
from trainers.families import Family, get_family
from trainers.metrics import evaluation_report, mean_iou
from trainers.sam import optimizer_step


@dataclass
class TrainConfig:
    """family: registered family name. train, val: shard URL patterns. out: run folder.
    steps: optimiser steps in all. samples_per_epoch: samples per (resampled) epoch over
    all ranks. eval_every / checkpoint_every: steps. amp: mixed precision on CUDA.
    compile: torch.compile the model. postprocess: training-time post-processing of the
    images ('none', 'mix', 'jpeg:70', ...; see blending.postprocess). options: the family's
    model options."""

    family: str
    train: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    steps: int = 1000
    batch_size: int | None = None
    lr: float | None = None
    image_size: int | None = None
    samples_per_epoch: int = 10_000
    workers: int = 2
    shuffle_buffer: int = 1000
    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    amp: bool = True
    compile: bool = False
    postprocess: str = "none"
    options: dict = field(default_factory=dict)
    device: str = "auto"

    def resolved(self, family: Family) -> "TrainConfig":
        """This config with the family's paper defaults filled in."""
        d = family.defaults
        return TrainConfig(**{**asdict(self), "batch_size": self.batch_size or d.batch_size,
                              "lr": self.lr or d.lr, "image_size": self.image_size or d.image_size})


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled; nothing on CPU."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class CsvLog:
    """Appends rows to <out>/<name>.csv (header from the first row ever written); mirrors
    them to TensorBoard when the tensorboard package is installed."""

    def __init__(self, out: str, name: str):
        self.path = os.path.join(out, f"{name}.csv")
        self._fields: list[str] | None = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._board = SummaryWriter(os.path.join(out, "tensorboard", name))
        except ImportError:
            self._board = None

    def write(self, row: dict) -> None:
        exists = os.path.isfile(self.path)
        if self._fields is None:
            if exists:
                with open(self.path) as stream:
                    self._fields = next(csv.reader(stream))
            else:
                self._fields = sorted(row)
        with open(self.path, "a", newline="") as stream:
            writer = csv.DictWriter(stream, self._fields, extrasaction="ignore")
            if not exists:
                writer.writeheader()
            writer.writerow(row)
        if self._board is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step" and math.isfinite(value):
                    self._board.add_scalar(key, value, row["step"])


@torch.no_grad()
def evaluate(model: torch.nn.Module, family: Family, urls: list[str], image_size: int, batch_size: int,
             workers: int, device: torch.device, amp: bool = True, postprocessing: str = "none") -> dict:
    """One pass over `urls`: evaluation_report (frame, video, per-method), mean loss, mIoU
    of the dense output against the family's dense target (when it has one), and the
    per-sample scores. `postprocessing` degrades the images first (robustness tests)."""
    members = tuple(dict.fromkeys(family.members))
    stream = ShardStream(StreamConfig(tuple(urls), batch_size, shuffle_buffer=0),
                         make_decoder(members, image_size, postprocessing))
    model.eval()
    labels, scores, videos, methods, keys, losses, ious = [], [], [], [], [], [], []
    for batch in make_loader(stream, workers, drop_last=False):
        batch = to_device(batch, device)
        with autocast(device, amp):
            outputs = model(batch["image"])
        loss, _ = family.loss(outputs, batch)
        losses.append(loss.item() * len(batch["label"]))
        scores.extend(family.scores(outputs).cpu().tolist())
        labels.extend(batch["label"].cpu().tolist())
        videos.extend(batch["video"])
        methods.extend(batch["method"])
        keys.extend(batch["key"])
        dense = family.dense(outputs)
        if dense is not None and family.dense_target:
            predicted = (dense > 0.5).cpu().numpy()
            target = (batch[family.dense_target].float() / 255 > 0.5).cpu().numpy()
            ious.extend(mean_iou(p, t) for p, t in zip(predicted, target))
    model.train()
    if not labels:
        raise ValueError(f"no samples could be read from {urls[:3]}...")
    report = evaluation_report(np.array(labels), np.array(scores), videos, methods, family.decision_threshold)
    report["loss"] = sum(losses) / len(labels)
    if ious:
        report["frame"]["miou"] = float(np.mean(ious))
    report["corrupt_skipped"] = stream.corrupt.count
    report["samples"] = [{"key": k, "label": l, "score": s, "video": v, "method": m}
                         for k, l, s, v, m in zip(keys, labels, scores, videos, methods)]
    return report


def _selection_score(report: dict) -> float:
    """Model selection on validation: frame AUC, or -loss when AUC is undefined."""
    auc = report["frame"]["auc"]
    return auc if math.isfinite(auc) else -report["loss"]


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Train `config.family`; returns the last validation report (or {}). Writes
    <out>/last.pt, <out>/best.pt (best on validation), <out>/train_log.csv (means over
    each logging window) and <out>/val_log.csv."""
    family = get_family(config.family, config.options)
    config = config.resolved(family)
    device = pick_device(config.device)
    ddp = init_distributed(str(device))
    if ddp.world > 1 and config.device == "auto":
        device = pick_device("auto", ddp.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed)

    model = family.build(config.image_size).to(device)
    optimizer = family.optimizer(model.parameters(), config.lr)
    scheduler = family.scheduler(optimizer, config.steps)
    step, best = 0, -math.inf
    last_path, best_path = os.path.join(config.out, "last.pt"), os.path.join(config.out, "best.pt")
    if resume:
        state = load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, best = int(state["step"]), float(state["best"])
    trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if ddp.world > 1 else model
    runner = torch.compile(trained) if config.compile else trained

    decode = make_decoder(tuple(dict.fromkeys(family.members)), config.image_size, config.postprocess, config.seed)
    stream_config = StreamConfig(tuple(expand_urls(config.train)), config.batch_size, config.seed,
                                 config.shuffle_buffer, config.samples_per_epoch)
    corrupt = CorruptCounter()
    steps_per_epoch = ShardStream(stream_config, decode, world=ddp.world).batches_per_rank()
    if steps_per_epoch < 1:
        raise ValueError(f"samples_per_epoch {config.samples_per_epoch} gives no batch of {config.batch_size} per rank")
    if ddp.main:
        os.makedirs(config.out, exist_ok=True)
    train_log = CsvLog(config.out, "train_log") if ddp.main else None
    val_log = CsvLog(config.out, "val_log") if ddp.main else None
    report: dict = {}

    def checkpoint(path: str) -> None:
        save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "step": step, "best": best,
                               "family": family.name, "options": dict(family.options),
                               "image_size": config.image_size, "config": {k: v for k, v in asdict(config).items()
                                                                            if k != "options"}})

    model.train()
    window_start, window_samples, window = time.perf_counter(), 0, []
    while step < config.steps:
        epoch, skip = divmod(step, steps_per_epoch)
        stream = ShardStream(stream_config, decode, epoch=epoch, rank=ddp.rank, world=ddp.world,
                             skip_batches=skip, corrupt=corrupt)
        for batch in make_loader(stream, config.workers, drop_last=True):
            batch = to_device(batch, device)
            batch = family.augment(batch, torch.Generator(device).manual_seed(config.seed * 1_000_003 + step))
            with autocast(device, config.amp):
                outputs = runner(batch["image"])
            loss, parts = family.loss(outputs, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()

            def loss_again() -> torch.Tensor:  # a two-pass optimiser's (SAM's) second forward pass
                with autocast(device, config.amp):
                    again = runner(batch["image"])
                return family.loss(again, batch)[0]
            optimizer_step(optimizer, loss_again)
            scheduler.step()
            step += 1
            window_samples += len(batch["label"]) * ddp.world
            window.append({"loss": loss.item(), **parts})
            if train_log and (step % config.log_every == 0 or step == config.steps):
                elapsed = time.perf_counter() - window_start
                means = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                train_log.write({"step": step, "epoch": epoch, **means, "lr": scheduler.get_last_lr()[0],
                                 "samples_per_s": window_samples / elapsed, "corrupt_skipped": corrupt.count})
                window_start, window_samples, window = time.perf_counter(), 0, []
            if ddp.main and config.val and (step % config.eval_every == 0 or step == config.steps):
                report = evaluate(model, family, expand_urls(config.val), config.image_size, config.batch_size,
                                  config.workers, device, config.amp)
                val_log.write({"step": step, "epoch": epoch, "loss": report["loss"],
                           **{f"val_{k}": v for k, v in report["frame"].items()}})
                if _selection_score(report) > best:
                    best = _selection_score(report)
                    checkpoint(best_path)
            if ddp.main and (step % config.checkpoint_every == 0 or step == config.steps):
                checkpoint(last_path)
            if step >= config.steps:
                break
    if ddp.world > 1:
        dist.barrier()
    return report
