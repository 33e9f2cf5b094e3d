"""Running a pipeline: Beam options with a safe local default, output folders, summaries."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.extract import UNIT_RECORDS
from shards.tables import TABLES


class OutputExistsError(Exception):
    """The output folder already holds a previous run's files."""


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline from Beam command-line options, passed through unchanged.

    Without `--runner`, Beam's direct runner engine (FnApiRunner, which honours
    `--direct_num_workers` and `--direct_running_mode`) is used directly: the plain
    'DirectRunner' first tries to download the Prism runner, which fails offline.
    """
    options = PipelineOptions(beam_args)
    if any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args):
        return beam.Pipeline(options=options)
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    return beam.Pipeline(runner=FnApiRunner(), options=options)


def previous_outputs(directory: str) -> list[str]:
    """Shards, unit records, tables and temporary files of an earlier run in `directory`."""
    patterns = [FileSystems.join(directory, "shard-*.tar"), FileSystems.join(directory, ".shard-*"),
                FileSystems.join(directory, "beam-temp-*"), FileSystems.join(directory, ".*.parquet.tmp-*"),
                FileSystems.join(directory, UNIT_RECORDS, "shard-*.json"), FileSystems.join(directory, UNIT_RECORDS, ".shard-*"),
                *(FileSystems.join(directory, name) for name in ("README.md", "stats.json", "preview.png")),
                *(FileSystems.join(directory, f"{name}.parquet") for name in TABLES)]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def prepare_output(directory: str, overwrite: bool, resume: bool = False) -> None:
    """Create `directory`. An earlier run's outputs there are refused, or deleted
    (`overwrite`), or with `resume` its finished shards are kept and everything else
    (temporary files, tables) is deleted; a face-shard folder's unit records are kept with
    its shards."""
    existing = previous_outputs(directory)
    if existing and not (overwrite or resume):
        raise OutputExistsError(
            f"{directory} already holds {len(existing)} output files of an earlier run "
            f"(e.g. {existing[0]}); pass --resume to complete it, --overwrite to replace it, "
            f"or choose another --output")
    if resume:
        existing = [path for path in existing if not FileSystems.split(path)[1].startswith("shard-")]
    if existing:
        FileSystems.delete(existing)
    if not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)


@dataclass
class RunSummary:
    """Counter totals of a finished run and its wall time in seconds."""

    counters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def get(self, namespace: str, name: str) -> int:
        return self.counters.get(f"{namespace}/{name}", 0)

    def dropped(self) -> dict[str, int]:
        return {k.split("/", 1)[1]: v for k, v in sorted(self.counters.items())
                if k.startswith("dropped/") and v}

    def lines(self) -> list[str]:
        faces, samples = self.get("faces", "kept"), self.get("samples", "written")
        rate = lambda n: f"{n / self.seconds:.1f}/s" if self.seconds > 0 else "-"
        dropped = self.dropped()
        return [
            f"frames decoded   {self.get('frames', 'decoded')}",
            f"faces kept       {faces}  ({rate(faces)})",
            f"dropped          {sum(dropped.values())}"
            + "".join(f"\n  {reason:<22}{count}" for reason, count in dropped.items()),
            f"samples written  {samples}  ("
            + ", ".join(f"{k.split('/', 1)[1]} {v}" for k, v in sorted(self.counters.items())
                        if k.startswith("samples/") and k != "samples/written")
            + f"; {rate(samples)})",
            *([f"face shards      {self.get('units', 'written') + self.get('units', 'kept')}"
               + (f"  ({self.get('units', 'kept')} kept from the interrupted run)" if self.get('units', 'kept') else "")]
              if self.get('units', 'written') + self.get('units', 'kept') else []),
            f"shards written   {self.get('shards', 'written')}"
            + (f"  ({self.get('shards', 'kept')} kept from the interrupted run)" if self.get('shards', 'kept') else ""),
            f"wall time        {self.seconds:.1f} s",
        ]


def run_and_summarize(pipeline: beam.Pipeline, build: Callable[[beam.Pipeline], None]) -> RunSummary:
    """Build the graph into `pipeline`, run it to completion and collect its counters."""
    start = time.perf_counter()
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {}
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        name = f"{counter.key.metric.namespace}/{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[name] = counters.get(name, 0) + int(value or 0)
    return RunSummary(counters, time.perf_counter() - start)
