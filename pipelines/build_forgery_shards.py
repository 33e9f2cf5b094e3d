"""`build_forgery_shards`: manipulated videos + their originals -> supervised shards."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.config import CropConfig, OutputConfig, WorkerConfig
from pipelines.collect import Only
from pipelines.forgery import ExtractForgeries, ForgeryCrop, MaskOptions
from pipelines.records import Face, Source
from pipelines.write import WriteOutputs
from shards.assemble import AssembledSample, manipulated_sample, real_sample
from shards.keys import sample_key
from shards.layout import shard_name


@dataclass(frozen=True)
class ForgeryShardsConfig:
    output: OutputConfig
    crops: CropConfig = CropConfig()
    masks: MaskOptions = MaskOptions()
    workers: WorkerConfig = WorkerConfig()


def group_by_original(real: list[Source], manipulated: list[Source]) -> list[tuple[Source, list[Source]]]:
    """(original, its manipulated videos) for every original that has at least one.
    Raises ValueError for a manipulated video whose original is not among `real`."""
    originals = {s.path: s for s in real}
    groups: dict[str, list[Source]] = {}
    for fake in manipulated:
        if fake.original not in originals:
            raise ValueError(f"{fake.path}: its original {fake.original} is not among the real sources")
        groups.setdefault(fake.original, []).append(fake)
    return [(originals[path], fakes) for path, fakes in sorted(groups.items())]


def counted(function, name: str):
    """`function` that also counts its calls as Beam counter `samples/<name>`."""
    counter = Metrics.counter("samples", name)

    def run(element):
        counter.inc()
        return function(element)
    return run


def original_sample(face: Face) -> AssembledSample:
    """The real sample of an original's face crop."""
    return real_sample(sample_key(face.key, "real"), face.record, face.image)


def forged_sample(forgery: ForgeryCrop) -> AssembledSample:
    """The manipulated sample of a fake's crop."""
    face = forgery.face
    return manipulated_sample(sample_key(face.key, "fake"), face.record, face.source.method, face.image,
                              forgery.mask, forgery.mask_source, sample_key(forgery.original_key, "real"))


def forgery_outputs(output: OutputConfig) -> list[str]:
    """Every file a supervised run into `output` writes: three tables, and the shards
    its index plans (`samples_per_shard` samples to a shard)."""
    tables = [FileSystems.join(output.directory, f"{name}.parquet") for name in ("faces", "index", "failures")]
    if not FileSystems.exists(tables[1]):
        return tables
    with FileSystems.open(tables[1]) as stream:
        samples = pq.ParquetFile(stream).metadata.num_rows
    shards = -(-samples // output.samples_per_shard)
    return tables + [FileSystems.join(output.directory, shard_name(index)) for index in range(shards)]


def build_forgery_shards(pipeline: beam.Pipeline, groups: list[tuple[Source, list[Source]]],
                         skipped: list[dict], config: ForgeryShardsConfig):
    """Add the supervised pipeline: each original and its fakes, same frames, same crops.
    Returns its last PCollection (one element once every shard and table is written)."""
    extracted = (pipeline
                 | "ReadGroups" >> beam.Create(groups)
                 | "ExtractForgeries" >> ExtractForgeries(config.crops, config.masks, config.workers, len(groups)))
    faces = extracted | "Faces" >> Only(Face)
    forgeries = extracted | "Forgeries" >> Only(ForgeryCrop)
    samples = ((faces | "Real" >> beam.Map(counted(original_sample, "real")),
                forgeries | "Manipulated" >> beam.Map(counted(forged_sample, "manipulated")))
               | "AllSamples" >> beam.Flatten())
    keys = ((faces | "RealKeys" >> beam.Map(lambda f: sample_key(f.key, "real")),
             forgeries | "FakeKeys" >> beam.Map(lambda f: sample_key(f.face.key, "fake")))
            | "SampleKeys" >> beam.Flatten())
    failures = ((pipeline | "ReaderSkipped" >> beam.Create(skipped), extracted | "Failures" >> Only(dict))
                | "AllFailures" >> beam.Flatten())
    outputs = {"faces": faces, "samples": samples, "keys": keys, "failures": failures}
    return outputs | "WriteOutputs" >> WriteOutputs(config.output)
