"""`build_forgery_shards`: manipulated videos + their originals -> supervised shards."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from pipelines.config import CropConfig, OutputConfig, WorkerConfig
from pipelines.forgery import ExtractForgeries, MaskOptions
from pipelines.extract import FAILURES
from pipelines.records import Source
from pipelines.samples import counted, manipulated_sample, real_sample
from pipelines.write import WriteOutputs
from shards.keys import sample_key


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


def build_forgery_shards(pipeline: beam.Pipeline, groups: list[tuple[Source, list[Source]]],
                         skipped: list[dict], config: ForgeryShardsConfig) -> None:
    """Add the supervised pipeline: each original and its fakes, same frames, same crops."""
    extracted = (pipeline
                 | "ReadGroups" >> beam.Create(groups)
                 | "ExtractForgeries" >> ExtractForgeries(config.crops, config.masks, config.workers, len(groups)))
    faces, forgeries = extracted["faces"], extracted["forgeries"]
    samples = ((faces | "Real" >> beam.Map(counted(real_sample, "real")),
                forgeries | "Manipulated" >> beam.Map(counted(manipulated_sample, "manipulated")))
               | "AllSamples" >> beam.Flatten())
    keys = ((faces | "RealKeys" >> beam.Map(lambda f: sample_key(f.key, "real")),
             forgeries | "FakeKeys" >> beam.Map(lambda f: sample_key(f.face.key, "fake")))
            | "SampleKeys" >> beam.Flatten())
    failures = ((pipeline | "ReaderSkipped" >> beam.Create(skipped), extracted[FAILURES])
                | "AllFailures" >> beam.Flatten())
    outputs = {"faces": faces, "samples": samples, "keys": keys, "failures": failures}
    outputs | "WriteOutputs" >> WriteOutputs(config.output)
