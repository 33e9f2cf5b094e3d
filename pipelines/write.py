"""WriteShards and WriteTables: the pipeline's outputs (DESIGN.md: shards + Parquet tables),
written whole and renamed into place, in an order that does not depend on the runner."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, TypeVar

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.collect import Gather

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
        """Rename into place. A local rename replaces an existing file atomically; on an
        object store the existing one is deleted first. (Beam's local delete would read a
        name holding '[' or '*' as a pattern.)"""
        if "://" in self.final and FileSystems.exists(self.final):
            FileSystems.delete([self.final])
        FileSystems.rename([self.temporary], [self.final])


def write_atomically(directory: str, name: str, write: Callable[[BinaryIO], T]) -> T:
    """Write `directory/name` whole through `write(stream)`, then rename it into place."""
    file = AtomicFile(directory, name, write)
    result = file.prepare()
    file.commit()
    return result


def write_table(directory: str, name: str, batches: Iterable[list[dict]]) -> None:
    """`<directory>/<name>.parquet` (schema `shards.tables.TABLES[name]`) from row batches,
    written whole, then renamed into place; no batch still writes the schema."""
    schema = TABLES[name]

    def write(stream):
        with pq.ParquetWriter(stream, schema) as writer:
            for rows in batches:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    write_atomically(directory, f"{name}.parquet", write)


def failure_order(row: dict) -> tuple:
    """Where a failure row goes in `failures.parquet`: by path, then frame, stage, reason, detail."""
    return row["path"], row["frame"], row["stage"], row["reason"], row["detail"]


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
        yield index, [sample.index | {"shard": name} for sample in samples]


def _slots(ranked: list[tuple[int, str]], samples_per_shard: int) -> list[tuple[str, tuple[int, int]]]:
    """(key, (shard, position)) of every ranked key."""
    plan = SlotPlan(ranked, samples_per_shard)
    return [(key, plan.slot(rank, key)) for rank, key in ranked]


def _to_shard(joined) -> list[tuple[int, tuple[int, AssembledSample]]]:
    """(shard, (position, sample)) for the samples of one key and its planned slot. A
    sample whose key was not planned is an error, never a silent loss (its key is made by
    the same light records upstream, so this means a bug)."""
    key, grouped = joined
    slots, samples = list(grouped["slot"]), list(grouped["sample"])
    if samples and len(slots) != 1:
        raise RuntimeError(f"sample {key}: {len(slots)} planned slots, expected 1")
    return [(slots[0][0], (slots[0][1], sample)) for sample in samples]


class WriteShards(beam.PTransform):
    """(AssembledSample, sample keys) -> (shard index, its `index` rows in shard order),
    writing `shard-NNNNNN.tar` files into `directory`.

    `keys` holds the key of every sample, made from light records upstream; once all are
    known they make the shard plan (`shards.layout.SlotPlan`: a seeded hash-order shuffle
    across shards, `samples_per_shard` to a shard), whose slots are joined to the samples
    by key. A shard is written whole by one worker, so shard contents and bytes depend only
    on the samples and the seed. With `keep_existing` (resume), shards already in place are
    kept as they are.
    """

    def __init__(self, directory: str, samples_per_shard: int, seed: int, keep_existing: bool = False):
        super().__init__()
        self._directory, self._per_shard, self._seed = directory, samples_per_shard, seed
        self._keep_existing = keep_existing

    def expand(self, inputs):
        samples, keys = inputs
        seed, per_shard = self._seed, self._per_shard
        slots = (keys
                 | "Rank" >> beam.Map(lambda key: (stable_hash(seed, "order", key), key))
                 | "AllRanks" >> Gather()
                 | "Slots" >> beam.FlatMap(_slots, per_shard))
        keyed = samples | "ByKey" >> beam.Map(lambda sample: (sample.key, sample))
        return ({"slot": slots, "sample": keyed}
                | "Join" >> beam.CoGroupByKey()
                | "ToShard" >> beam.FlatMap(_to_shard)
                | "GroupShards" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WriteShardFn(self._directory, self._keep_existing)))


class _WriteTableFn(beam.DoFn):
    def __init__(self, directory: str, name: str):
        self._directory, self._name = directory, name

    def process(self, parts: list[tuple[Any, list[dict]]]):
        ordered = sorted(parts, key=lambda part: part[0])
        write_table(self._directory, self._name, (rows for _, rows in ordered))
        yield self._name


class WriteTables(beam.PTransform):
    """{table name: PCollection of (order, [row dicts])} -> `<name>.parquet` in `directory`,
    the parts laid out by `order` (so a table's bytes never depend on the runner; an empty
    table still gets its file, with the schema). Outputs one element, the list of table
    names, once every table is written."""

    def __init__(self, directory: str):
        super().__init__()
        self._directory = directory

    def expand(self, tables: dict):
        written = tuple(parts
                        | f"Gather_{name}" >> Gather()
                        | f"Write_{name}" >> beam.ParDo(_WriteTableFn(self._directory, name))
                        for name, parts in tables.items())
        return written | "Tables" >> beam.Flatten() | "AllTables" >> Gather()


class WriteOutputs(beam.PTransform):
    """{"faces", "samples", "keys" (of every sample), "failures" (rows)}: PCollections ->
    shards + faces/index/failures tables (faces by key, index in shard order, failures by
    `failure_order`). Outputs one element once all are written."""

    def __init__(self, output: OutputConfig):
        super().__init__()
        self._output = output

    def expand(self, inputs: dict):
        out = self._output
        index = ((inputs["samples"], inputs["keys"])
                 | "WriteShards" >> WriteShards(out.directory, out.samples_per_shard, out.seed, out.resume))
        faces = inputs["faces"] | "FaceRows" >> beam.Map(lambda f: (f.key, [f.record.table_row()]))
        failures = inputs["failures"] | "FailureRows" >> beam.Map(lambda row: (failure_order(row), [row]))
        return {"faces": faces, "index": index, "failures": failures} | "WriteTables" >> WriteTables(out.directory)
