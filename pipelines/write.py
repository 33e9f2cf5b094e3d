"""WriteShards and WriteTables: the pipeline's outputs (DESIGN.md: shards + Parquet tables)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import BinaryIO, TypeVar

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.metrics import Metrics

from pipelines.config import OutputConfig
from shards.assemble import AssembledSample
from shards.keys import stable_hash
from shards.layout import SlotPlan, shard_name
from shards.tables import TABLES
from shards.tar import write_tar


T = TypeVar("T")


class AtomicFile:
    """A file written under a temporary name in `directory` and renamed to `name` by
    `commit()`: a killed or retried writer never leaves a partial file under the final name.
    `write(stream) -> T` fills the file; `prepare()` runs it and returns its result."""

    def __init__(self, directory: str, name: str, write: Callable[[BinaryIO], T]):
        self.final = FileSystems.join(directory, name)
        self.temporary = FileSystems.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")
        self._write = write

    def prepare(self) -> T:
        with FileSystems.create(self.temporary) as stream:
            return self._write(stream)

    def commit(self) -> None:
        if FileSystems.exists(self.final):
            FileSystems.delete([self.final])
        FileSystems.rename([self.temporary], [self.final])


def write_atomically(directory: str, name: str, write: Callable[[BinaryIO], T]) -> T:
    """Write `directory/name` whole through `write(stream)`, then rename it into place."""
    file = AtomicFile(directory, name, write)
    result = file.prepare()
    file.commit()
    return result


class _WriteShardFn(beam.DoFn):
    def __init__(self, directory: str, keep_existing: bool):
        self._directory, self._keep_existing = directory, keep_existing
        self._shards = Metrics.counter("shards", "written")
        self._samples = Metrics.counter("samples", "written")

    def process(self, element):
        index, slots = element
        slots = sorted(slots, key=lambda slot: slot[0])
        positions = [position for position, _ in slots]
        if len(set(positions)) != len(positions):
            raise RuntimeError(f"shard {index}: two samples planned for one slot; sample keys are not unique")
        samples = [sample for _, sample in slots]
        name = shard_name(index)
        if self._keep_existing and FileSystems.exists(FileSystems.join(self._directory, name)):
            Metrics.counter("shards", "kept").inc()
        else:
            write_atomically(self._directory, name, lambda stream: write_tar(stream, (s.sample for s in samples)))
        self._shards.inc()
        self._samples.inc(len(samples))
        for sample in samples:
            yield sample.index | {"shard": name}


def _to_shard_slot(sample: AssembledSample, plan: SlotPlan, seed: int):
    shard, position = plan.slot(stable_hash(seed, "order", sample.key), sample.key)
    return shard, (position, sample)


class WriteShards(beam.PTransform):
    """(AssembledSample, sample keys) -> `index` rows, writing `shard-NNNNNN.tar` files into
    `directory`.

    `keys` holds the key of every sample that will come, made from light records upstream,
    so the shard plan (`shards.layout.SlotPlan`: a seeded hash-order shuffle across shards,
    `samples_per_shard` to a shard) is ready as a side input when the samples are: each
    sample goes straight from the stage that makes it to the worker writing its shard, with
    one shuffle. A shard is written whole by one worker, so shard contents and bytes depend
    only on the samples and the seed. With `keep_existing` (resume), shards already in place
    are kept as they are.
    """

    def __init__(self, directory: str, samples_per_shard: int, seed: int, keep_existing: bool = False):
        super().__init__()
        self._directory, self._per_shard, self._seed = directory, samples_per_shard, seed
        self._keep_existing = keep_existing

    def expand(self, inputs):
        samples, keys = inputs
        seed, per_shard = self._seed, self._per_shard
        plan = (keys
                | "Rank" >> beam.Map(lambda key: (stable_hash(seed, "order", key), key))
                | "AllRanks" >> beam.combiners.ToList()
                | "Plan" >> beam.Map(lambda ranked: SlotPlan(ranked, per_shard)))
        return (samples
                | "ToShard" >> beam.Map(_to_shard_slot, beam.pvalue.AsSingleton(plan), seed)
                | "GroupShards" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WriteShardFn(self._directory, self._keep_existing)))


class WriteTables(beam.PTransform):
    """{table name: PCollection of row dicts} -> `<name>.parquet` in `directory` (an empty
    table still gets its file, with the schema)."""

    def __init__(self, directory: str):
        super().__init__()
        self._directory = directory

    def expand(self, tables: dict):
        for name, rows in tables.items():
            rows | f"Write_{name}" >> WriteToParquet(
                FileSystems.join(self._directory, name), TABLES[name], num_shards=1,
                shard_name_template="", file_name_suffix=".parquet")
        return beam.pvalue.PDone(next(iter(tables.values())).pipeline)


class WriteOutputs(beam.PTransform):
    """{"faces", "samples", "keys" (of every sample), "failures" (rows)}: PCollections ->
    shards + faces/index/failures tables."""

    def __init__(self, output: OutputConfig):
        super().__init__()
        self._output = output

    def expand(self, inputs: dict):
        out = self._output
        index = ((inputs["samples"], inputs["keys"])
                 | "WriteShards" >> WriteShards(out.directory, out.samples_per_shard, out.seed, out.resume))
        return {"faces": inputs["faces"] | "FaceRows" >> beam.Map(lambda f: f.record.table_row()),
                "index": index,
                "failures": inputs["failures"]} | "WriteTables" >> WriteTables(out.directory)
