"""`build_bi_shards`: real face videos and images -> Face X-ray BI shards + Parquet tables."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from blending.bi import BlendParams
from pipelines.config import CropConfig, OutputConfig, WorkerConfig
from pipelines.extract import FAILURES, ExtractFaces
from pipelines.pairing import PairNeighbours
from pipelines.records import Source
from pipelines.samples import SynthesizeSamples
from pipelines.write import WriteOutputs
from shards.keys import sample_key


@dataclass(frozen=True)
class BiShardsConfig:
    """neighbours: k of the k-NN; pool_size: candidate pool size; fakes_per_real: blended
    samples per real sample; blend: ranges of the blend's random choices."""

    output: OutputConfig
    crops: CropConfig = CropConfig()
    workers: WorkerConfig = WorkerConfig()
    neighbours: int = 100
    pool_size: int = 20_000
    fakes_per_real: float = 1.0
    blend: BlendParams = BlendParams()


def build_bi_shards(pipeline: beam.Pipeline, sources: list[Source], skipped: list[dict],
                    config: BiShardsConfig) -> None:
    """Add the BI pipeline to `pipeline`: real sources -> faces -> pairs -> samples -> shards.
    `skipped`: failure rows of inputs the reader left out (written to failures.parquet)."""
    seed = config.output.seed
    extracted = (pipeline
                 | "ReadSources" >> beam.Create(sources)
                 | "ExtractFaces" >> ExtractFaces(config.crops, config.workers, len(sources)))
    faces = extracted.faces
    paired = faces | "PairNeighbours" >> PairNeighbours(config.neighbours, config.pool_size,
                                                        config.fakes_per_real, seed,
                                                        config.workers.fail_fast)
    pairings = paired["pairings"]
    samples = (faces, pairings) | "SynthesizeBlends" >> SynthesizeSamples(config.blend, seed)
    keys = ((faces | "RealKeys" >> beam.Map(lambda f: sample_key(f.key, "real")),
             pairings | "BlendKeys" >> beam.Map(lambda p: p.key))
            | "SampleKeys" >> beam.Flatten())
    failures = ((pipeline | "ReaderSkipped" >> beam.Create(skipped), extracted[FAILURES], paired[FAILURES])
                | "AllFailures" >> beam.Flatten())
    outputs = {"faces": faces, "samples": samples, "keys": keys, "failures": failures}
    outputs | "WriteOutputs" >> WriteOutputs(config.output)
