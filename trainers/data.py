"""Streaming shard loader shared by every trainer.

Shards are read as tar streams (local files, any fsspec URL such as gs:// or s3:// when its
filesystem package is installed, or a `pipe:` command the user wrote), grouped into samples,
shuffled in a buffer and decoded straight to tensors in DataLoader workers.

Order is a pure function of (seed, epoch, rank, worker): every generator is seeded from
them, so a run resumed at step s sees exactly the batches an uninterrupted run would.

- finite mode (`samples_per_epoch=None`): one pass; the shard list, shuffled by
  (seed, epoch), is split over ranks and then workers (shard i goes to slot i mod
  world*workers), so slots see disjoint samples that together cover the shards.
- resampled mode: each worker draws shards with replacement and yields a fixed quota, so
  every rank yields the same number of batches per epoch and DDP never hangs at the end.

Corrupt members (bad PNG, truncated tar, unsafe names) are skipped and counted, without
webdataset's 0.5 s sleep per error.
"""
from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.tariterators import group_by_keys, tar_file_expander

_SAFE_MEMBER = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_.]+")


def expand_urls(patterns: str | list[str]) -> list[str]:
    """Brace patterns ('a/shard-{000000..000009}.tar') or lists of them -> list of URLs."""
    from webdataset.shardlists import expand_urls as expand
    patterns = [patterns] if isinstance(patterns, str) else patterns
    urls = [url for pattern in patterns for url in expand(pattern)]
    if not urls:
        raise ValueError(f"no shard URLs in {patterns!r}")
    return urls


def open_url(url: str):
    """A binary stream for a shard URL. Local paths open directly; `pipe:` URLs (written by
    the user) go to webdataset; other schemes (gs://, s3://, hdfs://, https://) go through
    fsspec, which needs the scheme's package (gcsfs, s3fs, ...)."""
    if url.startswith("pipe:"):
        from webdataset import gopen
        return gopen.gopen(url)
    if "://" not in url or url.startswith("file://"):
        return open(url.removeprefix("file://"), "rb")
    import fsspec
    try:
        return fsspec.open(url, "rb").open()
    except ImportError as error:
        scheme = url.split("://")[0]
        raise ImportError(f"reading {scheme}:// shards needs fsspec's {scheme} filesystem "
                          f"(e.g. pip install {'s3fs' if scheme == 's3' else 'gcsfs' if scheme == 'gs' else scheme + 'fs'}), "
                          f"or a 'pipe:' URL such as 'pipe:aws s3 cp {url} -'") from error


class CorruptCounter:
    """Samples skipped as corrupt, counted across DataLoader worker processes."""

    def __init__(self):
        self._value = multiprocessing.Value("q", 0)

    def add(self, n: int = 1) -> None:
        with self._value.get_lock():
            self._value.value += n

    @property
    def count(self) -> int:
        return int(self._value.value)


@dataclass(frozen=True)
class StreamConfig:
    """urls: shard URLs. batch_size: per rank. shuffle_buffer: samples held for shuffling
    (0 = stream order). samples_per_epoch: None = one finite pass, else resampled epochs of
    this many samples (all ranks together)."""

    urls: tuple[str, ...]
    batch_size: int
    seed: int = 0
    shuffle_buffer: int = 1000
    samples_per_epoch: int | None = None


def worker_slots(rank: int, world: int, worker: int, workers: int) -> tuple[int, int]:
    """(slot, slots): this worker's index among all world * workers readers."""
    return rank * workers + worker, world * workers


def batches_per_worker(batches: int, worker: int, workers: int) -> int:
    """Batches worker `worker` yields when `batches` are spread round-robin over `workers`
    (the order in which a DataLoader collects them)."""
    return batches // workers + int(worker < batches % workers)


class ShardStream(IterableDataset):
    """Decoded samples of one epoch for one rank. `decode` maps raw members (bytes) to a
    dict of tensors; it may raise on corrupt data. `skip_batches`: batches of this epoch
    already consumed (resume)."""

    def __init__(self, config: StreamConfig, decode: Callable[[dict], dict], *, epoch: int = 0,
                 rank: int = 0, world: int = 1, skip_batches: int = 0, corrupt: CorruptCounter | None = None):
        super().__init__()
        self.config, self.decode, self.epoch = config, decode, epoch
        self.rank, self.world, self.skip_batches = rank, world, skip_batches
        self.corrupt = corrupt or CorruptCounter()

    def batches_per_rank(self) -> int | None:
        """Batches each rank yields per epoch in resampled mode; None in finite mode."""
        if self.config.samples_per_epoch is None:
            return None
        return self.config.samples_per_epoch // (self.world * self.config.batch_size)

    def _handler(self, error: Exception) -> bool:
        self.corrupt.add()
        return True

    def _shards(self, rng: np.random.Generator, slot: int, slots: int) -> Iterator[dict]:
        urls = list(self.config.urls)
        if self.config.samples_per_epoch is None:
            order = np.random.default_rng([self.config.seed, self.epoch]).permutation(len(urls))
            chosen = [urls[i] for i in order[slot::slots]]
        else:
            chosen = (urls[i] for i in iter(lambda: int(rng.integers(len(urls))), None))
        for url in chosen:
            try:
                yield {"url": url, "stream": open_url(url)}
            except OSError as error:
                self._handler(error)

    def _raw_samples(self, rng, slot, slots) -> Iterator[dict]:
        for sample in group_by_keys(tar_file_expander(self._shards(rng, slot, slots), handler=self._handler),
                                    handler=self._handler):
            if all(_SAFE_MEMBER.fullmatch(f"{sample['__key__']}.{k}") for k in sample if not k.startswith("__")):
                yield sample
            else:
                self._handler(ValueError(f"unsafe member name in sample {sample['__key__']!r}"))

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
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        slot, slots = worker_slots(self.rank, self.world, worker, workers)
        rng = np.random.default_rng([self.config.seed, self.epoch, slot])
        batch = self.config.batch_size
        skip = batches_per_worker(self.skip_batches, worker, workers) * batch
        total = self.batches_per_rank()
        quota = None if total is None else batches_per_worker(total, worker, workers) * batch
        produced = 0
        for sample in self._shuffled(self._raw_samples(rng, slot, slots), rng):
            if quota is not None and produced >= quota:
                return
            try:
                decoded = self.decode(sample)
            except Exception as error:  # noqa: BLE001 - any decoding failure is a corrupt sample
                self._handler(error)
                continue
            produced += 1
            if produced > skip:
                yield decoded


def make_loader(stream: ShardStream, workers: int, drop_last: bool) -> DataLoader:
    """A DataLoader over `stream`: each batch comes from one worker, in round-robin order;
    pinned memory when CUDA is present."""
    return DataLoader(stream, batch_size=stream.config.batch_size, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), drop_last=drop_last,
                      persistent_workers=False, multiprocessing_context="fork" if workers and os.name == "posix" else None)
