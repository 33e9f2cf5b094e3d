"""Streaming shard loader shared by every trainer.

Shards are read as tar streams (local files, any fsspec URL such as gs:// or s3:// when its
filesystem package is installed, or a `pipe:` command the user wrote), grouped into samples,
interleaved over several open shards, shuffled in a buffer and decoded straight to tensors
in DataLoader workers.

Order is a pure function of (seed, epoch, rank, worker): every generator is seeded from
them, so a run resumed at step s sees exactly the batches an uninterrupted run would.

- finite mode (`samples_per_epoch=None`): one pass; the shard list, shuffled by
  (seed, epoch), is split over ranks and then workers (shard i goes to slot i mod
  world*workers), so slots see disjoint samples that together cover the shards.
- resampled mode: each worker reads passes over all shards, each pass in its own seeded
  order, and yields a fixed quota, so every rank yields the same number of batches per
  epoch and DDP never hangs at the end. When one whole pass gives no decodable sample,
  the worker raises `UnreadableShards`.

Each worker keeps `open_shards` shards open and draws every next sample from a random one
of them, so a batch mixes many shards even when the shuffle buffer holds one shard's worth.
Unreadable shards and corrupt samples (bad PNG, truncated tar, unsafe names) are skipped
and recorded by name in a `FailureLog`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from shards.tar import read_tar
from trainers.failures import FailureLog, ShardHealth
from trainers.urls import open_url

_SAFE_MEMBER = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_.]+")


@dataclass(frozen=True)
class StreamConfig:
    """urls: shard URLs. batch_size: per rank. shuffle_buffer: samples held for shuffling
    (0 = stream order). samples_per_epoch: None = one finite pass, else resampled epochs of
    this many samples (all ranks together). open_shards: shards each worker reads from at
    once, drawing every sample from a random one (1 = one shard after the other)."""

    urls: tuple[str, ...]
    batch_size: int
    seed: int = 0
    shuffle_buffer: int = 1000
    samples_per_epoch: int | None = None
    open_shards: int = 8


def worker_slots(rank: int, world: int, worker: int, workers: int) -> tuple[int, int]:
    """(slot, slots): this worker's index among all world * workers readers."""
    return rank * workers + worker, world * workers


def batches_per_worker(batches: int, worker: int, workers: int) -> int:
    """Batches worker `worker` yields when `batches` are spread round-robin over `workers`
    (the order in which a DataLoader collects them)."""
    return batches // workers + int(worker < batches % workers)


def logical_worker(loader_worker: int, workers: int, skip_batches: int) -> int:
    """The data stream that DataLoader worker `loader_worker` plays after `skip_batches`
    batches of the epoch were consumed. Batch b of an epoch comes from stream b mod
    workers; a fresh DataLoader collects its first batch from worker 0, so worker 0 must
    play stream `skip_batches mod workers`, worker 1 the next, and so on."""
    return (loader_worker + skip_batches) % workers


class ShardStream(IterableDataset):
    """Decoded samples of one epoch for one rank. `decode` maps raw members (bytes) to a
    dict of tensors; it may raise on corrupt data. Each raw sample also carries `__url__`,
    `__draw__` = (epoch, slot, position in the slot's sequence), which names the draw for
    any per-draw randomness, and `__skipped__`, True for a sample a resumed run consumes
    unseen (a decoder may then only check that it would decode). A decoder may return a
    list: several samples from one draw, yielded one after the other (a real face and its
    self-blend, `--paired`). `skip_batches`: batches of this epoch
    already consumed (resume). `failures`: where unreadable shards and samples are
    recorded (shared by the DataLoader's worker processes)."""

    def __init__(self, config: StreamConfig, decode: Callable[[dict], dict], *, epoch: int = 0,
                 rank: int = 0, world: int = 1, skip_batches: int = 0, failures: FailureLog | None = None):
        super().__init__()
        self.config, self.decode, self.epoch = config, decode, epoch
        self.rank, self.world, self.skip_batches = rank, world, skip_batches
        self.failures = failures or FailureLog()

    @property
    def resampled(self) -> bool:
        return self.config.samples_per_epoch is not None

    def batches_per_rank(self) -> int | None:
        """Batches each rank yields per epoch in resampled mode; None in finite mode."""
        if not self.resampled:
            return None
        return self.config.samples_per_epoch // (self.world * self.config.batch_size)

    def _urls(self, rng: np.random.Generator, slot: int, slots: int) -> Iterator[str]:
        urls = self.config.urls
        if not self.resampled:
            order = np.random.default_rng([self.config.seed, self.epoch]).permutation(len(urls))
            yield from (urls[i] for i in order[slot::slots])
            return
        while True:
            yield from (urls[i] for i in rng.permutation(len(urls)))

    def _read(self, url: str, reading: int, health: ShardHealth) -> Iterator[dict]:
        """Samples of one shard, tagged with their shard and reading; a shard that cannot
        be opened or read to its end is recorded (the samples before the fault count)."""
        health.opened(reading, url)
        reason = ""
        try:
            stream = open_url(url)
            try:
                for sample in read_tar(stream):
                    health.read(reading)
                    key = str(sample["__key__"])
                    if all(_SAFE_MEMBER.fullmatch(f"{key}.{m}") for m in sample if not m.startswith("__")):
                        yield {**sample, "__url__": url, "__reading__": reading}
                    else:
                        self.failures.record(url, key or "(empty key)", "unsafe member name")
                        health.decoded(reading, False, "unsafe member name")
            finally:
                stream.close()
        except Exception as error:  # noqa: BLE001 - any failure to read a shard is recorded, not fatal
            reason = f"{type(error).__name__}: {error}"
            self.failures.record(url, "", reason)
        health.finished(reading, reason)

    def _interleaved(self, urls: Iterator[str], rng: np.random.Generator, health: ShardHealth) -> Iterator[dict]:
        readers: list[Iterator[dict]] = []
        readings = 0
        while True:
            while len(readers) < self.config.open_shards and (url := next(urls, None)) is not None:
                readers.append(self._read(url, readings, health))
                readings += 1
            if not readers:
                return
            index = int(rng.integers(len(readers)))
            sample = next(readers[index], None)
            if sample is None:
                del readers[index]
                if self.resampled:
                    health.check()
                continue
            yield sample

    def _shuffled(self, samples: Iterator[dict], rng: np.random.Generator) -> Iterator[dict]:
        size = self.config.shuffle_buffer
        if size <= 0:
            yield from samples
            return
        buffer: list[dict] = []
        for sample in samples:
            if len(buffer) < size:
                buffer.append(sample)
                continue
            index = int(rng.integers(size))
            buffer[index], sample = sample, buffer[index]
            yield sample
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        loader_worker, workers = (info.id, info.num_workers) if info else (0, 1)
        worker = logical_worker(loader_worker, workers, self.skip_batches)
        slot, slots = worker_slots(self.rank, self.world, worker, workers)
        rng = np.random.default_rng([self.config.seed, self.epoch, slot])
        batch = self.config.batch_size
        skip = batches_per_worker(self.skip_batches, worker, workers) * batch
        total = self.batches_per_rank()
        quota = None if total is None else batches_per_worker(total, worker, workers) * batch
        health = ShardHealth(self.config.urls)
        produced = 0
        samples = self._shuffled(self._interleaved(self._urls(rng, slot, slots), rng, health), rng)
        for position, sample in enumerate(samples):
            if quota is not None and produced >= quota:
                return
            url, reading = sample["__url__"], sample.pop("__reading__")
            sample["__draw__"] = (self.epoch, slot, position)
            sample["__skipped__"] = produced < skip
            try:
                decoded = self.decode(sample)
            except Exception as error:  # noqa: BLE001 - any decoding failure is a corrupt sample
                self.failures.record(url, str(sample["__key__"]), error)
                health.decoded(reading, False, f"undecodable samples ({type(error).__name__}: {error})")
                if self.resampled:
                    health.check()
                continue
            health.decoded(reading, True)
            for output in decoded if isinstance(decoded, list) else [decoded]:
                if quota is not None and produced >= quota:
                    return
                produced += 1
                if produced > skip:
                    yield output


def make_loader(stream: ShardStream, workers: int, drop_last: bool) -> DataLoader:
    """A DataLoader over `stream`: each batch comes from one worker, in round-robin order;
    pinned memory when CUDA is present. It draws its worker seeds from its own generator,
    never from torch's global one, so making a loader changes no training randomness."""
    return DataLoader(stream, batch_size=stream.config.batch_size, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), drop_last=drop_last, persistent_workers=False,
                      generator=torch.Generator().manual_seed(stream.config.seed),
                      multiprocessing_context="fork" if workers and os.name == "posix" else None)
