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
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.distributed as dist

from blending.augment import augment_params
from blending.mix import FakeParams, RecipeMix
from blending.recipe import recipe as recipe_params
from trainers.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from trainers.data import ShardStream, StreamConfig, make_loader
from trainers.decode import Decoder, make_decoder
from trainers.dump import batch_samples, write_dump
from trainers.failures import FailureLog, NoSamplesRead
from trainers.families import Family, get_family
from trainers.metrics import IoUAccumulator, evaluation_report
from trainers.online import OnlineConfig, OnlineOptionsError
from trainers.recipe import read_recipe
from trainers.sam import optimizer_step
from trainers.urls import checked_urls


@dataclass
class TrainConfig:
    """family: registered family name. train, val: shard URL patterns. out: run folder.
    steps: optimiser steps in all. samples_per_epoch: samples per (resampled) epoch over
    all ranks. eval_every / checkpoint_every: steps. amp: mixed precision on CUDA.
    compile: torch.compile the model. postprocess: training-time post-processing of the
    images ('none', 'mix', 'jpeg:70', ...; see blending.postprocess). options: the family's
    model options. open_shards: shards each loader worker interleaves. preset: 'none' or
    'paper' (see `resolved`). freeze_backbone_steps: steps the pretrained backbone stays
    fixed. None means "not given": `resolved` fills it in. train_faces: face-shard URL
    patterns blended online (`trainers.online`), each draw a blend with probability
    fake_fraction, made by `recipe` ('bi', 'sbi' or 'mix:bi=W,sbi=W'), BI masks from
    `mask_recipe`; paired: each draw gives a real face and its own self-blend, side by side
    (recipe 'sbi'). augment: per-draw augmentation of every training
    sample ('default' or 'none'). dump_samples: write the first N training samples as
    <out>/dumped_samples.tar."""

    family: str
    train: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    image_size: int | None = None
    samples_per_epoch: int = 10_000
    workers: int = 2
    shuffle_buffer: int = 1000
    open_shards: int = 8
    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    amp: bool = True
    compile: bool = False
    postprocess: str = "none"
    options: dict = field(default_factory=dict)
    device: str = "auto"
    preset: str = "none"
    freeze_backbone_steps: int | None = None
    train_faces: list[str] = field(default_factory=list)
    fake_fraction: float = 0.5
    mask_recipe: str = "default"
    recipe: str = "bi"
    paired: bool = False
    augment: str = "default"
    dump_samples: int = 0

    def resolved(self, family: Family) -> "TrainConfig":
        """This config with what was not given filled in: from the family's paper preset
        with `preset='paper'`, else from the project defaults (`family.defaults`,
        DEFAULT_STEPS, no freeze). Values given explicitly always win. Raises
        PresetNeedsSteps when the paper fixes no length and no `steps` was given."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        paper = family.paper if self.preset == "paper" else None
        base = paper or family.defaults
        steps = self.steps if self.steps is not None else (paper.steps if paper else DEFAULT_STEPS)
        if steps is None:
            raise PresetNeedsSteps(f"{family.name}: the paper fixes no training length ({paper.source}); give --steps")
        freeze = self.freeze_backbone_steps if self.freeze_backbone_steps is not None else (
            paper.freeze_backbone_steps if paper and family.pretrained else 0)
        if freeze and not family.pretrained:
            raise NoPretrainedBackbone(f"{family.name}: --freeze-backbone-steps needs pretrained backbone weights")
        given = {"batch_size": self.batch_size, "lr": self.lr, "image_size": self.image_size}
        return TrainConfig(**{**asdict(self), "steps": steps, "freeze_backbone_steps": freeze,
                              **{k: getattr(base, k) if v is None else v for k, v in given.items()}})


DEFAULT_STEPS = 1000
PRESETS = ("none", "paper")


class PresetNeedsSteps(ValueError):
    """--preset paper for a family whose paper fixes no training length, without --steps."""


class NoTrainingData(ValueError):
    """Neither --train nor --train-faces was given."""


class NoPretrainedBackbone(ValueError):
    """--freeze-backbone-steps for a family or run without pretrained backbone weights."""


def freeze_backbone(backbone: torch.nn.Module, frozen: bool) -> None:
    """Frozen: no gradients, and batch-norm statistics kept (eval mode), as a fixed
    pretrained network; unfrozen: trained like the rest."""
    backbone.requires_grad_(not frozen)
    backbone.train(not frozen)


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
    stream = ShardStream(StreamConfig(tuple(urls), batch_size, shuffle_buffer=0, open_shards=1),
                         make_decoder(members, image_size, postprocessing))
    model.eval()
    labels, scores, videos, methods, keys, losses = [], [], [], [], [], []
    ious = IoUAccumulator() if family.dense_target else None
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
        if dense is not None and ious is not None:
            ious.add((dense > 0.5).cpu().numpy(), (batch[family.dense_target].float() / 255 > 0.5).cpu().numpy(),
                     batch["label"].cpu().numpy())
    model.train()
    failures = stream.failures.summary()
    if not labels:
        raise NoSamplesRead(f"no sample could be read from the {len(urls)} shards {urls[:3]}...: "
                            f"{failures['unreadable_shards'] or failures['unreadable_samples']}")
    report = evaluation_report(np.array(labels), np.array(scores), videos, methods, family.decision_threshold)
    report["loss"] = sum(losses) / len(labels)
    if ious is not None:
        report["frame"].update(ious.result())
    report.update(failures)
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
    each logging window), <out>/val_log.csv and <out>/read_failures.csv (the shards and
    samples that could not be read, each with its reason; rewritten at each checkpoint)."""
    family = get_family(config.family, config.options)
    config = config.resolved(family)
    if not config.train and not config.train_faces:
        raise NoTrainingData("give --train (sample shards), --train-faces (face shards), or both")
    sample_urls = checked_urls("--train", config.train) if config.train else []
    face_urls = checked_urls("--train-faces", config.train_faces) if config.train_faces else []
    train_urls = sample_urls + face_urls
    val_urls = checked_urls("--val", config.val) if config.val else []
    online = OnlineConfig(config.fake_fraction, FakeParams(bi=recipe_params(config.mask_recipe)),
                          RecipeMix.parse(config.recipe), paired=config.paired) if face_urls else None
    if config.paired and config.batch_size % 2:
        raise OnlineOptionsError(f"--paired puts a real face and its self-blend side by side: the batch size must be even, "
                         f"got {config.batch_size}")
    recipe = read_recipe(sample_urls) if sample_urls else replace(
        read_recipe(face_urls), size=online.size, margin=online.margin, source=f"face shards, online {online.size} px")
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
        if state["family"] != family.name:
            raise CheckpointError(f"--resume: {last_path} is a checkpoint of {state['family']!r}, not {family.name!r}: "
                                  f"resume it with `beam train {state['family']} --resume`, or give another --out")
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:   # the same family with other model options (e.g. another --trunk)
            raise CheckpointError(f"--resume: {last_path} holds a {family.name} model with other options than "
                                  f"these ({str(error).splitlines()[0]})") from error
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, best = int(state["step"]), float(state["best"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    trained = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(config.freeze_backbone_steps)) if ddp.world > 1 else model
    runner = torch.compile(trained) if config.compile else trained

    decode = Decoder(tuple(dict.fromkeys(family.members)), config.image_size, config.postprocess, config.seed,
                     augment_params(config.augment), online)
    stream_config = StreamConfig(tuple(train_urls), config.batch_size, config.seed, config.shuffle_buffer,
                                 config.samples_per_epoch, config.open_shards)
    failures = FailureLog()
    steps_per_epoch = ShardStream(stream_config, decode, world=ddp.world).batches_per_rank()
    if steps_per_epoch < 1:
        raise ValueError(f"samples_per_epoch {config.samples_per_epoch} gives no batch of {config.batch_size} per rank")
    if ddp.main:
        os.makedirs(config.out, exist_ok=True)
    train_log = CsvLog(config.out, "train_log") if ddp.main else None
    val_log = CsvLog(config.out, "val_log") if ddp.main else None
    report: dict = {}

    window_start, window_samples, window = time.perf_counter(), 0, list(state["window"]) if resume else []

    def checkpoint(path: str) -> None:
        """Everything the next step depends on: weights, optimiser, schedule, torch's RNG
        states, and the losses of the unfinished logging window."""
        randomness = {"rng": torch.get_rng_state()} | (
            {"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {})
        save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "step": step, "best": best, "window": window,
                               "crop_recipe": recipe.as_dict(),
                               **randomness,
                               "family": family.name, "options": dict(family.options),
                               "image_size": config.image_size, "config": {k: v for k, v in asdict(config).items()
                                                                            if k != "options"}})

    dumped = [] if config.dump_samples and not resume else None
    model.train()
    while step < config.steps:
        epoch, skip = divmod(step, steps_per_epoch)
        stream = ShardStream(stream_config, decode, epoch=epoch, rank=ddp.rank, world=ddp.world,
                             skip_batches=skip, failures=failures)
        for batch in make_loader(stream, config.workers, drop_last=True):
            if dumped is not None and len(dumped) < config.dump_samples and ddp.main:
                dumped.extend(batch_samples(batch)[:config.dump_samples - len(dumped)])
                if len(dumped) == config.dump_samples or step + 1 == config.steps:
                    write_dump(config.out, dumped)
                    dumped = None
            batch = to_device(batch, device)
            batch = family.augment(batch, torch.Generator(device).manual_seed(config.seed * 1_000_003 + step))
            if config.freeze_backbone_steps:
                freeze_backbone(family.backbone(model), step < config.freeze_backbone_steps)
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
                                 "samples_per_s": window_samples / elapsed, "read_failures": failures.count})
                window_start, window_samples, window = time.perf_counter(), 0, []
            if ddp.main and config.val and (step % config.eval_every == 0 or step == config.steps):
                report = evaluate(model, family, val_urls, config.image_size, config.batch_size,
                                  config.workers, device, config.amp)
                val_log.write({"step": step, "epoch": epoch, "loss": report["loss"],
                           **{f"val_{k}": v for k, v in report["frame"].items()}})
                if _selection_score(report) > best:
                    best = _selection_score(report)
                    checkpoint(best_path)
            if ddp.main and (step % config.checkpoint_every == 0 or step == config.steps):
                checkpoint(last_path)
                failures.write_csv(config.out)
            if step >= config.steps:
                break
    if ddp.world > 1:
        dist.barrier()
    return report
