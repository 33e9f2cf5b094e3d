"""WriteShards and WriteTables: the pipeline's outputs (DESIGN.md: shards + Parquet tables)."""
from __future__ import annotations

import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.metrics import Metrics

from pipelines.config import OutputConfig
from pipelines.records import ShardSample
from shards.keys import stable_hash
from shards.layout import assign_slots, shard_name
from shards.tables import TABLES
from shards.tar import write_tar


def write_shard_atomically(directory: str, name: str, samples: list[ShardSample]) -> None:
    """Write a whole shard under a temporary name, then rename it into place; a retried or
    killed writer never leaves a partial file under the final name."""
    final = FileSystems.join(directory, name)
    temporary = FileSystems.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")
    with FileSystems.create(temporary) as stream:
        write_tar(stream, (s.sample for s in samples))
    if FileSystems.exists(final):
        FileSystems.delete([final])
    FileSystems.rename([temporary], [final])


class _WriteShardFn(beam.DoFn):
    def __init__(self, directory: str, keep_existing: bool):
        self._directory, self._keep_existing = directory, keep_existing
        self._shards = Metrics.counter("shards", "written")
        self._samples = Metrics.counter("samples", "written")

    def process(self, element):
        index, slots = element
        samples = [sample for _, sample in sorted(slots, key=lambda slot: slot[0])]
        name = shard_name(index)
        if self._keep_existing and FileSystems.exists(FileSystems.join(self._directory, name)):
            Metrics.counter("shards", "kept").inc()
        else:
            write_shard_atomically(self._directory, name, samples)
        self._shards.inc()
        self._samples.inc(len(samples))
        for sample in samples:
            yield sample.index | {"shard": name}


def _to_shard_slot(joined):
    key, groups = joined
    (slot,), (sample,) = groups["slot"], groups["sample"]
    shard, position = slot
    return shard, (position, sample)


class WriteShards(beam.PTransform):
    """ShardSample -> `index` rows, writing `shard-NNNNNN.tar` files into `directory`.

    Samples are shuffled across shards by a seeded hash of their keys and written
    `samples_per_shard` to a shard; each shard is written whole by one worker, so shard
    contents and bytes depend only on the samples and the seed. With `keep_existing`
    (resume), shards already in place are kept as they are.
    """

    def __init__(self, directory: str, samples_per_shard: int, seed: int, keep_existing: bool = False):
        super().__init__()
        self._directory, self._per_shard, self._seed = directory, samples_per_shard, seed
        self._keep_existing = keep_existing

    def expand(self, samples):
        seed, per_shard = self._seed, self._per_shard
        slots = (samples
                 | "Rank" >> beam.Map(lambda s: (stable_hash(seed, "order", s.key), s.key))
                 | "AllRanks" >> beam.combiners.ToList()
                 | "Slots" >> beam.FlatMap(lambda ranked: assign_slots(ranked, per_shard)))
        keyed = samples | "ByKey" >> beam.Map(lambda s: (s.key, s))
        return ({"slot": slots, "sample": keyed}
                | "JoinSlots" >> beam.CoGroupByKey()
                | "ToShard" >> beam.Map(_to_shard_slot)
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
    """(faces, samples, [failure-row PCollections]) -> shards + faces/index/failures tables."""

    def __init__(self, output: OutputConfig):
        super().__init__()
        self._output = output

    def expand(self, inputs):
        faces, samples, failures = inputs
        out = self._output
        index = samples | "WriteShards" >> WriteShards(out.directory, out.samples_per_shard, out.seed, out.resume)
        return {"faces": faces | "FaceRows" >> beam.Map(lambda f: f.table_row()),
                "index": index,
                "failures": failures | "AllFailures" >> beam.Flatten()} | "WriteTables" >> WriteTables(out.directory)
