"""What could not be read: a log shared by DataLoader worker processes, and the check that
stops training when no shard gives a single usable sample."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass


class UnreadableShards(RuntimeError):
    """Not one sample of the training shards could be read and decoded (every shard was
    read through once). The message names the shards and why each failed; it is the only
    argument, so the type survives the DataLoader's re-raise in the main process."""


class NoSamplesRead(RuntimeError):
    """An evaluation pass read no sample at all."""


@dataclass(frozen=True)
class ReadFailure:
    """One shard (sample == '') or sample that could not be read or decoded."""

    shard: str
    sample: str
    reason: str


def _remove(directory: str, owner: int) -> None:
    """Remove the log's folder, in the process that made it only (not in forked workers)."""
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


class FailureLog:
    """Failures recorded by any process forked after it was made: each process appends
    JSON lines to its own file in a private temporary folder (no pipes to fill, nothing
    lost when a worker exits); the folder goes when the log is garbage-collected."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="read-failures-")
        self._cleanup = weakref.finalize(self, _remove, self.directory, os.getpid())

    def record(self, shard: str, sample: str, error: BaseException | str) -> None:
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        line = json.dumps({"shard": shard, "sample": sample, "reason": reason[:300]})
        with open(os.path.join(self.directory, f"{os.getpid()}.jsonl"), "a") as stream:
            stream.write(line + "\n")

    def entries(self) -> list[ReadFailure]:
        """Every failure recorded so far, sorted by shard, then sample."""
        found = []
        for name in sorted(os.listdir(self.directory)):
            with open(os.path.join(self.directory, name)) as stream:
                found += [ReadFailure(**json.loads(line)) for line in stream if line.endswith("\n")]
        return sorted(found, key=lambda f: (f.shard, f.sample))

    @property
    def count(self) -> int:
        return len(self.entries())

    def write_csv(self, directory: str) -> None:
        """`<directory>/read_failures.csv` (shard, sample, reason; sample '' for a whole
        shard): every failure recorded so far, written whole, then renamed into place."""
        import csv

        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".read_failures-", suffix=".csv")
        with os.fdopen(handle, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["shard", "sample", "reason"])
            writer.writerows((f.shard, f.sample, f.reason) for f in self.entries())
        os.replace(temporary, os.path.join(directory, "read_failures.csv"))

    def summary(self) -> dict:
        """{'unreadable_shards': {shard: reason}, 'unreadable_samples': {sample: reason},
        and their counts} for a report."""
        entries = self.entries()
        shards = {f.shard: f.reason for f in entries if not f.sample}
        samples = {f.sample: f.reason for f in entries if f.sample}
        return {"unreadable_shard_count": len(shards), "unreadable_sample_count": len(samples),
                "unreadable_shards": shards, "unreadable_samples": samples}


class ShardHealth:
    """In one worker: which shards' latest complete reading gave no decodable sample.

    A reading is settled once the shard is read to its end and every sample read from it
    has been decoded or failed (samples wait in the shuffle buffer meanwhile). When every
    shard's latest settled reading gave nothing, `check` raises UnreadableShards; a shard
    with any good sample is never counted, so there are no false alarms."""

    def __init__(self, urls: tuple[str, ...]):
        self.urls = frozenset(urls)
        self.dead: dict[str, str] = {}
        self._readings: dict[int, list] = {}   # id -> [url, samples read, outcomes, successes, finished, reason]

    def opened(self, reading: int, url: str) -> None:
        self._readings[reading] = [url, 0, 0, 0, False, "no samples"]

    def read(self, reading: int) -> None:
        self._readings[reading][1] += 1

    def finished(self, reading: int, reason: str = "") -> None:
        state = self._readings[reading]
        state[4] = True
        state[5] = reason or state[5]
        self._settle(reading)

    def decoded(self, reading: int, ok: bool, reason: str = "") -> None:
        state = self._readings[reading]
        state[2] += 1
        state[3] += int(ok)
        if not ok:
            state[5] = reason
        self._settle(reading)

    def _settle(self, reading: int) -> None:
        url, read, outcomes, successes, finished, reason = self._readings[reading]
        if not finished or outcomes < read:
            return
        del self._readings[reading]
        if successes:
            self.dead.pop(url, None)
        else:
            self.dead[url] = reason

    def check(self) -> None:
        if self.urls and set(self.dead) >= self.urls:
            named = "; ".join(f"{url}: {self.dead[url]}" for url in sorted(self.urls)[:20])
            more = f" (and {len(self.urls) - 20} more)" if len(self.urls) > 20 else ""
            raise UnreadableShards(f"no sample could be read from any of the {len(self.urls)} training shards: "
                                   f"{named}{more}")
