"""Running a pipeline: Beam options with a safe local default, output folders, summaries."""
from __future__ import annotations

import fnmatch
import json
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipelines.extract import UNIT_RECORDS
from pipelines.failures import (FAIL_FAST_FOLDER, MissingOutputError, OutputError, OutputExistsError, PipelineError,
                                ResumeMismatchError)
from pipelines.storage import matching, root_of
from shards.tables import TABLES

RUN_RECORD = "run.json"
"""The run's record in its output folder: state, configuration (inputs fingerprint, seed,
options, package version) and, once the run succeeded, the files it wrote."""
KEPT_BY_RESUME = ("shard-*.tar", f"{UNIT_RECORDS}/shard-*.json", RUN_RECORD)
"""Files a failed or interrupted run keeps for --resume (each written whole, then renamed)."""
TEMPORARY_PATTERNS = (".shard-*", "beam-temp-*", "beam-temp-*/*", ".*.tmp-*", f"{UNIT_RECORDS}/.shard-*",
                      f"{UNIT_RECORDS}/.*.tmp-*")
"""Files written under a temporary name and not (yet) renamed into place: a writer killed
mid-file (a worker lost, its item retried elsewhere) leaves one behind."""
RUN_PATTERNS = ("shard-*.tar", f"{UNIT_RECORDS}/shard-*.json", FAIL_FAST_FOLDER, RUN_RECORD, *TEMPORARY_PATTERNS,
                *(f"{name}.parquet" for name in TABLES))
"""Names (relative to the output folder) only a run of this project makes; with a run
record present, they are that run's. README.md, stats.json and preview.png are a run's
only when its record lists them (a user's README.md is never deleted)."""
CARD_FILES = ("README.md", "stats.json", "preview.png")


DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
"""Beam knows the DaskRunner only by this path; `--runner DaskRunner` is mapped to it."""


def runner_name(beam_args: list[str]) -> str | None:
    """The --runner of Beam's command-line options, `DaskRunner` for any spelling of it."""
    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner
    return "DaskRunner" if runner in ("DaskRunner", DASK_RUNNER) else runner


def _dask_args(beam_args: list[str], partitions: int) -> list[str]:
    """Beam's DaskRunner puts up to 128 elements of a `Create` in one partition, and a
    partition is one task: without a partitioning of the user's, one partition per work
    item, so the cluster's workers share the items."""
    args = [DASK_RUNNER if a == "DaskRunner" else a.replace("=DaskRunner", f"={DASK_RUNNER}") for a in beam_args]
    if not any(a.split("=")[0] in ("--dask_npartitions", "--dask_partition_size") for a in args):
        args.append(f"--dask_npartitions={max(1, partitions)}")
    return args


def make_pipeline(beam_args: list[str], partitions: int = 1) -> beam.Pipeline:
    """A pipeline from Beam command-line options, passed through unchanged, except:

    - without `--runner`, Beam's direct runner engine (FnApiRunner, which honours
      `--direct_num_workers` and `--direct_running_mode`) is used directly: the plain
      'DirectRunner' first tries to download the Prism runner, which fails offline;
    - `--runner DaskRunner` is Beam's DaskRunner, its input split into `partitions`
      partitions (the stage's work items) unless the options give a partitioning.
    """
    runner = runner_name(beam_args)
    if runner == "DaskRunner":
        return beam.Pipeline(options=PipelineOptions(_dask_args(beam_args, partitions)))
    options = PipelineOptions(beam_args)
    if runner is not None:
        return beam.Pipeline(options=options)
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    return beam.Pipeline(runner=FnApiRunner(), options=options)


def previous_outputs(directory: str) -> list[str]:
    """Shards, unit records, tables and temporary files of an earlier run in `directory`."""
    patterns = ["shard-*.tar", ".shard-*", "beam-temp-*", ".*.parquet.tmp-*", f"{UNIT_RECORDS}/shard-*.json",
                f"{UNIT_RECORDS}/.shard-*", "README.md", "stats.json", "preview.png",
                *(f"{name}.parquet" for name in TABLES)]
    return sorted(m.path for pattern in patterns for m in matching(directory, pattern))


def _is_remote(path: str) -> bool:
    return "://" in path


def files_below(directory: str, skip: tuple[str, ...] = ()) -> list[str]:
    """Paths relative to `directory` ('/'-separated) of every entry below it that is not a
    folder (links not followed), minus the subfolders named in `skip`."""
    if _is_remote(directory):
        prefix = directory.rstrip("/") + "/"
        found = [m.path[len(prefix):] for m in matching(directory, "**") if m.path.startswith(prefix)]
    else:
        found = []
        for folder, dirs, files in os.walk(directory):
            relative = os.path.relpath(folder, directory).replace(os.sep, "/")
            relative = "" if relative == "." else relative + "/"
            dirs[:] = [d for d in dirs if f"{relative}{d}" not in skip
                       and not os.path.islink(os.path.join(folder, d))]
            found += [f"{relative}{f}" for f in files]
            found += [f"{relative}{d}" for d in os.listdir(folder)
                      if os.path.islink(os.path.join(folder, d)) and os.path.isdir(os.path.join(folder, d))]
    return sorted(f for f in found if not any(f == s or f.startswith(s + "/") for s in skip))


def read_run_record(directory: str) -> dict | None:
    """The run record of `directory`, None when it has none (or an unreadable one)."""
    path = FileSystems.join(directory, RUN_RECORD)
    try:
        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path) as stream:
            record = json.loads(stream.read())
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def write_run_record(directory: str, record: dict) -> None:
    """Write `record` as the run record of `directory` (whole, then renamed)."""
    from pipelines.write import write_atomically

    data = json.dumps(record, indent=1, sort_keys=True).encode()
    write_atomically(directory, RUN_RECORD, lambda stream: stream.write(data))


def _matches(relative: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(relative.split("/")[0], p)
               for p in patterns if "/" not in p) or \
        any(fnmatch.fnmatchcase(relative, p) for p in patterns if "/" in p)


def owned_files(record: dict | None, files: list[str]) -> tuple[list[str], list[str]]:
    """(files of an earlier run, other files) among `files` (relative paths), given the
    folder's run record."""
    if record is None:
        return [], list(files)
    recorded = set(record.get("files", []))
    mine, other = [], []
    for relative in files:
        (mine if relative in recorded or _matches(relative, RUN_PATTERNS) else other).append(relative)
    return mine, other


def configuration_changes(recorded: dict, current: dict) -> list[str]:
    """What differs between two run configurations, one phrase each."""
    changes = []
    if recorded.get("version") != current.get("version"):
        changes.append(f"package version {recorded.get('version')} -> {current.get('version')}")
    if recorded.get("seed") != current.get("seed"):
        changes.append(f"--seed {recorded.get('seed')} -> {current.get('seed')}")
    old, new = recorded.get("options", {}), current.get("options", {})
    for name in sorted(set(old) | set(new)):
        if name != "seed" and old.get(name) != new.get(name):
            changes.append(f"--{name.replace('_', '-')} {old.get(name)!r} -> {new.get(name)!r}")
    old_in, new_in = recorded.get("inputs", {}), current.get("inputs", {})
    if old_in.get("root") != new_in.get("root"):
        changes.append(f"input {old_in.get('root')} -> {new_in.get('root')}")
    elif old_in.get("files") != new_in.get("files"):
        before = {f[0]: f[1:] for f in old_in.get("files", [])}
        after = {f[0]: f[1:] for f in new_in.get("files", [])}
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
        parts = [f"{len(v)} {what} (e.g. {v[0]})" for what, v in
                 (("added", added), ("removed", removed), ("changed", changed)) if v]
        changes.append("inputs: " + ", ".join(parts))
    return changes


def _delete(directory: str, relatives: list[str]) -> None:
    if not relatives:
        return
    paths = [FileSystems.join(directory, r) for r in relatives]
    if _is_remote(directory):
        FileSystems.delete(paths)
        return
    for path in paths:
        if os.path.islink(path) or not os.path.isdir(path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    import shutil

    for top in sorted({r.split("/")[0] for r in relatives
                       if "/" in r and (r.startswith("beam-temp-") or r.split("/")[0] == FAIL_FAST_FOLDER)}):
        shutil.rmtree(os.path.join(directory, top), ignore_errors=True)


def _check_directory(directory: str) -> None:
    if _is_remote(directory):
        return
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise OutputError(f"--output {directory} is a file, not a folder")
    parent = directory
    while not os.path.exists(parent):
        parent = os.path.dirname(os.path.abspath(parent))
    if not os.path.isdir(parent):
        raise OutputError(f"cannot create --output {directory}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to --output {directory}: {parent} is read-only")


def _listed(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def prepare_output(directory: str, overwrite: bool, resume: bool = False, config: dict | None = None,
                   nested: tuple[str, ...] = ()) -> None:
    """Create `directory` for a run.

    With `config` (what the `beam` command passes: see `run_configuration`), the folder's
    run record decides: a folder holding files that are not an earlier run's (a user's
    README.md, notes) is refused, naming them; an earlier run is refused, or with
    `overwrite` exactly its files are deleted, or with `resume` its configuration must equal
    `config` (ResumeMismatchError naming what changed) and its finished shards are kept
    while everything else of it is deleted. A new run record (state 'running') is written.
    `nested`: subfolders prepared as runs of their own (left alone here).

    Without `config` (library use), an earlier run's outputs by name are refused, deleted
    (`overwrite`) or, with `resume`, kept as finished shards.
    """
    if config is None:
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
        return

    _check_directory(directory)
    present = _is_remote(directory) or FileSystems.exists(directory)
    files = files_below(directory, nested) if present else []
    record = read_run_record(directory) if present else None
    mine, other = owned_files(record, files)
    if record is None and any(_matches(f, RUN_PATTERNS) for f in other) \
            and all(_matches(f, RUN_PATTERNS) or f in CARD_FILES for f in other):
        raise OutputError(f"--output {directory} holds {len(other)} output files made without a run record "
                          f"(run.json; an older version): it cannot be resumed or overwritten safely; delete it "
                          f"or choose another --output")
    if other:
        raise OutputError(
            f"--output {directory} holds {len(other)} files that are not an earlier run's: {_listed(other)}; "
            f"choose a new or empty folder" + (" (--overwrite deletes only a run's own files)" if overwrite else ""))
    if mine and not (overwrite or resume):
        raise OutputExistsError(
            f"{directory} already holds {len(mine)} output files of an earlier run "
            f"(e.g. {mine[0]}); pass --resume to complete it, --overwrite to replace it, or choose another --output")
    if resume and mine:
        changes = configuration_changes(record.get("config", {}), config)
        if changes:
            raise ResumeMismatchError(f"--resume: {directory} was made by another configuration: "
                                      + "; ".join(changes) + ". Use --overwrite to replace it, or the "
                                      "earlier inputs and options to complete it")
        mine = [f for f in mine if not _matches(f, KEPT_BY_RESUME)]
    try:
        _delete(directory, mine)
        if not FileSystems.exists(directory):
            FileSystems.mkdirs(directory)
        write_run_record(directory, {"state": "running", "config": config, "files": []})
    except PermissionError as error:
        raise OutputError(f"cannot write to --output {directory}: {error.strerror or error}") from error
    except OSError as error:
        raise OutputError(f"cannot prepare --output {directory}: {error}") from error


def finish_run(directory: str, nested: tuple[str, ...] = ()) -> None:
    """Mark the run in `directory` complete, recording every file now there as its own,
    once the temporary files of writers that died mid-file (their work redone by a retry)
    are deleted."""
    files = files_below(directory, nested)
    temporary = [f for f in files if _matches(f, TEMPORARY_PATTERNS)]
    _delete(directory, temporary)
    record = read_run_record(directory) or {"config": {}}
    record |= {"state": "complete", "files": [f for f in files if f != RUN_RECORD and f not in temporary]}
    write_run_record(directory, record)


def discard_partial(directory: str, keep: tuple[str, ...] = (), nested: tuple[str, ...] = ()) -> None:
    """After a failed or interrupted run: delete its tables, card and temporary files and
    folders, keeping its finished shards and unit records (for --resume), its run record
    (state 'failed') and the files named in `keep` (e.g. failures.parquet, to explain)."""
    try:
        if not (_is_remote(directory) or FileSystems.exists(directory)):
            return
        record = read_run_record(directory)
        if record is None:
            return
        mine, _ = owned_files(record, files_below(directory, nested))
        mine += [f for f in CARD_FILES if f not in mine and FileSystems.exists(FileSystems.join(directory, f))
                 and record.get("state") == "running"]
        _delete(directory, [f for f in mine if not _matches(f, KEPT_BY_RESUME) and f not in keep])
        write_run_record(directory, record | {"state": "failed"})
    except OSError:
        pass


_WORKER_SITECUSTOMIZE = '''"""Written by pipelines.runner.quiet_worker_environment: a local worker process
(FnApiRunner multi_processing) shows only this project's lines (progress). Everything else
it would write to stderr (Beam's start-up lines, native log lines, tracebacks of a failed
bundle) goes to /dev/null: errors reach the launching process, which reports them in one
line (all of it with -v)."""
import logging
import os


class _OnlyOurs(logging.Filter):
    def filter(self, record):
        return record.name.startswith("forgery")


try:
    _stderr = os.fdopen(os.dup(2), "w", buffering=1)
    _null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(_null, 2)
    os.close(_null)
except OSError:
    import sys
    _stderr = sys.stderr
_handler = logging.StreamHandler(_stderr)
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
_handler.addFilter(_OnlyOurs())
logging.getLogger().addHandler(_handler)
logging.getLogger("forgery").setLevel(logging.INFO)
'''


def quiet_worker_environment(folder: str) -> dict[str, str]:
    """Environment for local worker processes that keeps their stderr to errors and
    progress lines: a `sitecustomize` in `folder`, first on PYTHONPATH, installs the
    log handler before Beam's import-time warnings (which would otherwise install their
    own), and native loggers are set to errors only."""
    with open(os.path.join(folder, "sitecustomize.py"), "w") as stream:
        stream.write(_WORKER_SITECUSTOMIZE)
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": folder + (os.pathsep + path if path else ""),
            "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("forgery-shards")
    except PackageNotFoundError:
        return "unknown"


def input_fingerprint(root: str | None) -> dict:
    """{"root", "files": [[relative path, size, mtime ns], ...] sorted} of every regular
    file below `root` (linked folders followed once each); a URL is listed through Beam
    FileSystems (size, last update)."""
    if root is None:
        return {"root": None, "files": []}
    root, files = root_of(root), []
    if _is_remote(root):
        prefix = root.rstrip("/") + "/"
        for m in matching(root, "**"):
            files.append([m.path[len(prefix):], m.size_in_bytes, int((m.last_updated_in_seconds or 0) * 1e9)])
        return {"root": root, "files": sorted(files)}
    seen = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                files.append([os.path.relpath(path, root).replace(os.sep, "/"), info.st_size, info.st_mtime_ns])
    return {"root": root, "files": sorted(files)}


def run_configuration(inputs: dict, seed: int | None, options: dict) -> dict:
    """What a run records and --resume compares: inputs fingerprint, seed, options,
    package version."""
    return json.loads(json.dumps({"version": package_version(), "seed": seed, "options": options,
                                  "inputs": inputs}, default=str))


@dataclass
class RunSummary:
    """Counter totals of a finished run and its wall time in seconds. `from_outputs`: the
    runner reports no metrics (Beam's DaskRunner), so the counts were read from the
    written outputs, which do not record frames decoded."""

    counters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    from_outputs: bool = False

    def get(self, namespace: str, name: str) -> int:
        return self.counters.get(f"{namespace}/{name}", 0)

    def dropped(self) -> dict[str, int]:
        return {k.split("/", 1)[1]: v for k, v in sorted(self.counters.items())
                if k.startswith("dropped/") and v}

    def lines(self) -> list[str]:
        faces, samples = self.get("faces", "kept"), self.get("samples", "written")
        rate = lambda n: f"{n / self.seconds:.1f}/s" if self.seconds > 0 else "-"
        dropped = self.dropped()
        makes_samples = bool(samples) or not self.get("units", "written") + self.get("units", "kept")
        return [
            "counts read from the outputs (this runner reports no metrics)" if self.from_outputs else
            f"frames decoded   {self.get('frames', 'decoded')}",
            f"faces kept       {faces}  ({rate(faces)})",
            f"dropped          {sum(dropped.values())}"
            + "".join(f"\n  {reason:<22}{count}" for reason, count in dropped.items()),
            *([f"samples written  {samples}  ("
               + ", ".join(f"{k.split('/', 1)[1]} {v}" for k, v in sorted(self.counters.items())
                           if k.startswith("samples/") and k != "samples/written")
               + f"; {rate(samples)})"] if makes_samples else []),
            *([f"face shards      {self.get('units', 'written') + self.get('units', 'kept')}"
               + (f"  ({self.get('units', 'kept')} kept from the interrupted run)" if self.get('units', 'kept') else "")]
              if self.get('units', 'written') + self.get('units', 'kept') else []),
            *([f"shards written   {self.get('shards', 'written')}"
               + (f"  ({self.get('shards', 'kept')} kept from the interrupted run)" if self.get('shards', 'kept')
                  else "")] if makes_samples else []),
            f"wall time        {self.seconds:.1f} s",
        ]


@dataclass(frozen=True)
class Stage:
    """One pipeline of a run. build: adds its transforms to a pipeline and returns the
    PCollection that ends it (every branch feeds it: a runner may compute only that).
    partitions: its work items (units, shard tasks, video groups), for runners that split
    the input statically. expected: every file it must leave (paths or URLs), checked once
    it has run: a runner that skipped work is an error, never a success."""

    build: Callable[[beam.Pipeline], object]
    partitions: int
    expected: Callable[[], list[str]]


def check_outputs(expected: list[str]) -> None:
    """MissingOutputError naming the files of `expected` that do not exist."""
    missing = [path for path in expected if not FileSystems.exists(path)]
    if missing:
        raise MissingOutputError(f"the run ended without writing {len(missing)} of its {len(expected)} outputs: "
                                 f"{_listed(missing)}")


def _counters(result) -> dict[str, int] | None:
    """Counter totals of a finished pipeline; None when its runner reports no metrics."""
    try:
        queried = result.metrics().query(MetricsFilter())["counters"]
    except NotImplementedError:
        return None
    counters: dict[str, int] = {}
    for counter in queried:
        name = f"{counter.key.metric.namespace}/{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[name] = counters.get(name, 0) + int(value or 0)
    return counters


def _cancel(result) -> None:
    try:
        result.cancel()
    except Exception:  # noqa: BLE001 - a runner without cancel, or a job already ended
        pass


def _disconnect(result) -> None:
    """Close the Dask client Beam's DaskRunner opened for the job (it never does): left
    open, each job's client lives on in the launching process and, once the cluster is
    gone, keeps trying to reconnect to it."""
    client = getattr(result, "client", None)
    if client is not None:
        try:
            client.close(timeout=10)
        except Exception:  # noqa: BLE001 - a client whose scheduler is already gone
            pass


def _require_finished(result) -> None:
    """PipelineError when a Dask job was cancelled rather than run: Beam's DaskRunner
    reports such a job done (as when the scheduler, or the launcher's connection to it,
    is lost)."""
    if any(getattr(future, "status", None) == "cancelled" for future in getattr(result, "futures", ())):
        raise PipelineError("the Dask cluster cancelled the job before it finished (was the scheduler, or the "
                            "connection to it, lost?); finished shards are kept: rerun with --resume once the "
                            "cluster is back")


def run_and_summarize(beam_args: list[str], stages: Iterable[Stage]) -> RunSummary:
    """Run each stage (taken from `stages` only once the one before has finished) to
    completion as a pipeline of its own, check its outputs, and sum their counters."""
    start = time.perf_counter()
    summary = RunSummary()
    for stage in stages:
        pipeline = make_pipeline(beam_args, stage.partitions)
        stage.build(pipeline)
        result = pipeline.run()
        try:
            result.wait_until_finish()
        except BaseException:
            _cancel(result)   # a cluster would go on running the job's tasks
            _disconnect(result)
            raise
        try:
            _require_finished(result)   # before disconnecting, which cancels what is left
        finally:
            _disconnect(result)
        check_outputs(stage.expected())
        counters = _counters(result)
        if counters is None:
            summary.from_outputs = True
        for name, value in (counters or {}).items():
            summary.counters[name] = summary.counters.get(name, 0) + value
    summary.seconds = time.perf_counter() - start
    return summary
