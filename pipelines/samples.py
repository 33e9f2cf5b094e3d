"""plan_bi_shards and WriteBiShards: BI sample shards from face shards, no pixels in the runner.

The plan (samples, foregrounds, shard slots) is made where the run is launched, from
`faces.parquet` and `neighbours.parquet`; each output shard then goes, as a task of small
records, to a worker that reads the crops it needs from the face shards by offset, makes
the samples and writes the whole shard.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from blending.mix import FakeParams, RecipeMix
from pipelines.extract import count_dropped
from pipelines.failures import FailFast
from pipelines.lanes import Lane, claim
from pipelines.worker import prepare_worker_process
from pipelines.write import write_atomically
from shards.assemble import bi_index_row, planned_sample
from shards.faces import FaceRecord, stored_mesh
from shards.layout import shard_name
from shards.plan import PlannedSample, assign_shards, plan_samples
from shards.sample import decode_png
from shards.tar import Span, read_member, write_tar


@dataclass(frozen=True)
class ShardTask:
    """Output shard `index`: its samples in slot order, each with the records of its
    background and foreground (None for a real sample)."""

    index: int
    samples: tuple[tuple[PlannedSample, FaceRecord, FaceRecord | None], ...]


def read_table(directory: str, name: str, columns: list[str] | None = None):
    """`<directory>/<name>.parquet` as a pyarrow Table."""
    with FileSystems.open(FileSystems.join(directory, f"{name}.parquet")) as stream:
        return pq.read_table(stream, columns=columns)


@dataclass(frozen=True)
class BiPlan:
    """What a BI run will write: one task per output shard, and the failure rows known
    before any blend (the face folder's own failures, then faces no blend could pair)."""

    tasks: tuple[ShardTask, ...]
    failures: tuple[dict, ...]


def plan_bi_shards(faces: str, samples_per_shard: int, fakes_per_real: float, seed: int,
                   mix: RecipeMix = RecipeMix.parse("bi"), fail_fast: FailFast | None = None) -> BiPlan:
    """The BI plan of face folder `faces`, from its `faces.parquet` and `neighbours.parquet`
    (records only: no crop is read). Made where the run is launched, so the shard tasks
    reach the workers as the run's input, one element each."""
    rows = read_table(faces, "faces").to_pylist()
    neighbours = read_table(faces, "neighbours", ["neighbours"]).column("neighbours").to_pylist()
    failures = read_table(faces, "failures").to_pylist()
    records = [FaceRecord.from_row(row) for row in rows]
    samples, unpaired = plan_samples([r.key for r in records], neighbours, fakes_per_real, seed, mix)
    for row, key in unpaired:
        face = records[row]
        failures.append(count_dropped(
            face.path, "pair", "no_neighbour", face.frame,
            f"{key}: no face of another video and identity of split {face.split} in the candidate pool", fail_fast))
    tasks = tuple(ShardTask(index, tuple((s, records[s.background], records[s.foreground] if s.foreground >= 0
                                          else None) for s in shard))
                  for index, shard in enumerate(assign_shards(samples, samples_per_shard, seed)))
    return BiPlan(tasks, tuple(failures))


class StoredCrops:
    """Stored crops read by offset from face shards, a few shards kept open at a time."""

    def __init__(self, directory: str, open_files: int = 16):
        self._directory, self._limit = directory, open_files
        self._files: OrderedDict[str, object] = OrderedDict()

    def crop(self, face: FaceRecord) -> np.ndarray:
        """(S, S, 3) uint8 RGB stored crop of `face`."""
        return decode_png(self.member(face.shard, face.image))

    def mesh(self, face: FaceRecord) -> np.ndarray:
        """(478, 2) float32 face mesh of `face`, stored-crop px."""
        return stored_mesh(self.member(face.shard, face.meta))

    def member(self, shard: str, span: Span) -> bytes:
        stream = self._files.pop(shard, None)
        if stream is None:
            stream = FileSystems.open(FileSystems.join(self._directory, shard))
            if len(self._files) >= self._limit:
                self._files.popitem(last=False)[1].close()
        self._files[shard] = stream
        return read_member(stream, span)

    def close(self) -> None:
        for stream in self._files.values():
            stream.close()
        self._files.clear()


class _WriteBiShardFn(beam.DoFn):
    def __init__(self, faces: str, output: str, size: int, margin: float, params: FakeParams, seed: int,
                 keep_existing: bool):
        self._faces, self._output, self._size, self._margin = faces, output, size, margin
        self._params, self._seed, self._keep_existing = params, seed, keep_existing

    def setup(self):
        prepare_worker_process()

    def process(self, lane: Lane):
        for task in lane.items:
            if claim(lane, f"shard-{task.index}"):
                yield from self._write(task)

    def _write(self, task: ShardTask):
        name = shard_name(task.index)
        if self._keep_existing and FileSystems.exists(FileSystems.join(self._output, name)):
            Metrics.counter("shards", "kept").inc()
            rows = [bi_index_row(planned.key, background, foreground, planned.method)
                    for planned, background, foreground in task.samples]
        else:
            crops = StoredCrops(self._faces)
            try:
                made = [planned_sample(planned, background, crops.crop(background),
                                       None if foreground is None else crops.mesh(background), foreground,
                                       None if planned.method != "bi" else crops.crop(foreground), self._size,
                                       self._margin, self._seed, self._params)
                        for planned, background, foreground in task.samples]
            finally:
                crops.close()
            write_atomically(self._output, name, lambda stream: write_tar(stream, (m.sample for m in made)))
            rows = [m.index for m in made]
        Metrics.counter("shards", "written").inc()
        Metrics.counter("samples", "written").inc(len(rows))
        for row in rows:
            Metrics.counter("samples", row["kind"]).inc()
        yield task.index, [row | {"shard": name} for row in rows]


class WriteBiShards(beam.PTransform):
    """Lanes of ShardTasks -> (shard index, its `index` rows in shard order), writing `shard-NNNNNN.tar` into `output`: recipe crops
    of `size` px at `margin` cut from the stored crops of `faces`, fakes drawn with
    `params` and `seed`. With `keep_existing` (resume) finished shards are kept."""

    def __init__(self, faces: str, output: str, size: int, margin: float, params: FakeParams, seed: int,
                 keep_existing: bool = False):
        super().__init__()
        self._fn = _WriteBiShardFn(faces, output, size, margin, params, seed, keep_existing)

    def expand(self, tasks):
        return (tasks
                | "Spread" >> beam.Reshuffle()
                | "Write" >> beam.ParDo(self._fn))
