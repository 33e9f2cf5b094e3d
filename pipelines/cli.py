"""The `beam` command: `beam run <pipeline> [options] [Beam pipeline options]`, `beam preview`."""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import tempfile
import threading
import uuid
import warnings
from dataclasses import replace
from collections.abc import Iterable, Iterator
from typing import NoReturn

logging.getLogger().setLevel(logging.ERROR)  # Beam's import-time warnings ("apitools not found"); main() sets levels
import click  # noqa: E402 - apache_beam is imported after quieting its import-time warnings
import cv2
with warnings.catch_warnings(record=True) as _IMPORT_WARNINGS:  # Google clients' FutureWarnings; main() shows them with -v
    from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (DirectOptions, GoogleCloudOptions, PipelineOptions,
                                                  StandardOptions, TestOptions)

from blending.bi import BlendParams
from blending.mix import FakeParams, RecipeMix
from blending.recipe import RECIPES, recipe
from shards.faces import FACE_COMPRESSION
from blending.color import COLOR_TRANSFERS
from landmarks.detect import DetectorConfig
from pipelines.build_bi_shards import BiShardsConfig, bi_outputs, build_bi_shards  # noqa: E402
from pipelines.build_forgery_shards import ForgeryShardsConfig, build_forgery_shards, forgery_outputs, group_by_original
from pipelines.card import face_count, output_counts, stored_crop_margin, write_dataset_card, write_faces_card
from pipelines.config import CropConfig, OutputConfig, WorkerConfig
from pipelines.extract_faces import FACES_SUBFOLDER, FacesConfig, extract_faces, face_outputs
from pipelines.forgery import MaskOptions
from pipelines.readers import READERS, InputError, Listing, ReaderOptions, demo_sources, read_sources
from pipelines.readers.ffpp import METHODS as FFPP_METHODS
from pipelines.records import Source
from pipelines.samples import BiPlan, plan_bi_shards
from pipelines.storage import root_of
from pipelines.failures import (FailFast, InputFailure, NothingUsableError, PipelineError, RunError,
                                fail_fast_folder, fail_fast_rows, reason_counts, stop_if_fail_fast)
from pipelines.runner import (RunSummary, Stage, discard_partial, finish_run, input_fingerprint, make_pipeline,
                              prepare_output, quiet_worker_environment, run_and_summarize, run_configuration,
                              runner_name)
from pipelines.units import Unit, plan_units

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def _options(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return apply


input_options = _options(
    click.option("--input", "input_dir", type=click.Path(file_okay=False), default=None,
                 help="Dataset root or folder of videos/images (recursive)."),
    click.option("--dataset", type=click.Choice(sorted(READERS)), default=None,
                 help="Layout of --input. Default: detected (FF++ / Celeb-DF folders, else a plain folder)."),
    click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="train", show_default=True,
                 help="FF++ / Celeb-DF: the official split to read. Plain folder: the split recorded."),
    click.option("--compression", type=click.Choice(["raw", "c23", "c40"]), default="c23", show_default=True,
                 help="FF++ quality folder."),
    click.option("--methods", default=None,
                 help=f"FF++ methods, comma-separated (default: all present): {', '.join(FFPP_METHODS)}."),
    click.option("--splits", "splits_dir", type=click.Path(file_okay=False), default=None,
                 help="Folder with FF++ train/val/test.json. Default: <input>/splits, then <input>."),
    click.option("--dataset-name", default=None, help="Plain folder: dataset field of keys (default: folder name)."),
    click.option("--identity-from", type=click.Choice(["stem", "parent"]), default="stem", show_default=True,
                 help="Plain folder: identity of a file is its name, or its parent folder's name."),
)

frame_options = _options(
    click.option("--frames-per-video", type=click.IntRange(1), default=32, show_default=True,
                 help="Evenly spaced frames sampled per video."),
    click.option("--min-face-size", type=click.FloatRange(0), default=64.0, show_default=True,
                 help="Drop faces whose detector box is smaller, px."),
    click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                 help="Drop faces below this detector confidence."),
    click.option("--all-faces", is_flag=True, help="Keep every face of a frame, not only the largest."),
    click.option("--input-timeout", type=click.FloatRange(0), default=1800.0, show_default=True,
                 help="Seconds one input (a video or image, or an original with its fakes) may take to decode "
                      "and detect; past it the input gets a decode/timeout row with the frames done so far "
                      "kept, and the run goes on. 0: no limit."),
)

recipe_crop_options = _options(
    click.option("--size", type=click.IntRange(32), default=256, show_default=True, help="Sample crop side S, px."),
    click.option("--margin", type=click.FloatRange(1.0), default=1.3, show_default=True,
                 help="Sample crop side as a multiple of the face box side."),
)

blend_options = _options(
    click.option("--recipe", default="bi", show_default=True,
                 help="What makes the fakes: 'bi' (Face X-ray: a landmark neighbour's face pasted in), 'sbi' "
                      "(self-blended images: the face blended with an altered copy of itself), or a per-sample "
                      "mix such as 'mix:bi=0.5,sbi=0.5'."),
    click.option("--mask-recipe", type=click.Choice(sorted(RECIPES)), default="default", show_default=True,
                 help="Blend recipe: 'default' draws the mask region (full hull, inner face, lower face, hull "
                      "to the forehead), deformation strength, erosion/dilation, blur and opacity per blend, as "
                      "the reference generators do; 'paper' is Face X-ray's own (Sec. 3.2): full hull, fixed "
                      "deformation. The flags below, when given, replace the recipe's value."),
    click.option("--deform-std", type=click.FloatRange(0), default=None,
                 help="Fixed std of the mask grid's random offsets, fraction of the crop side "
                      "[recipe: paper 0.03, default 0.01-0.12 drawn per blend]."),
    click.option("--blur-min", type=click.IntRange(1), default=None, help="Smallest odd mask blur kernel, px [recipe: 5]."),
    click.option("--blur-max", type=click.IntRange(1), default=None, help="Largest odd mask blur kernel, px [recipe: 25]."),
    click.option("--color-transfer", type=click.Choice(COLOR_TRANSFERS), default=None,
                 help="Colour correction of the foreground: per-channel RGB mean (paper), Reinhard L*a*b*, or "
                      "none [recipe: rgb_mean]."),
)

face_shard_options = _options(
    click.option("--face-size", type=click.IntRange(32), default=384, show_default=True,
                 help="Side of the crops stored in face shards, px (recipe crops are cut from them)."),
    click.option("--face-margin", type=click.FloatRange(1.0), default=2.0, show_default=True,
                 help="Stored crop side as a multiple of the face box side (>= every recipe's --margin)."),
    click.option("--face-compression", type=click.Choice(sorted(FACE_COMPRESSION)), default="none",
                 show_default=True,
                 help="PNG compression of the stored crops: 'none' decodes ~4x faster (online blending decodes a "
                      "stored crop at every draw), 'zlib' takes ~1/3 of the disk."),
    click.option("--images-per-unit", type=click.IntRange(1), default=256, show_default=True,
                 help="Consecutive images (sorted paths) per face shard; each video is a shard of its own."),
    click.option("--neighbours", type=click.IntRange(1), default=100, show_default=True,
                 help="k: neighbours.parquet lists each face's k nearest faces by landmarks."),
    click.option("--pool-size", type=click.IntRange(1), default=20_000, show_default=True,
                 help="Seeded random candidate pool the neighbours are searched in."),
)

output_options = _options(
    click.option("--samples-per-shard", type=click.IntRange(1), default=1000, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice."),
    click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier run in --output."),
    click.option("--resume", is_flag=True,
                 help="Complete an interrupted run in --output (same inputs and options): finished shards are "
                      "kept, the rest written; the result equals an uninterrupted run."),
    click.option("--fail-fast", is_flag=True,
                 help="Stop at the first input or face that would be dropped, instead of recording it in "
                      "failures.parquet."),
)


def _listing(opts: dict) -> Listing:
    methods = tuple(m.strip() for m in opts["methods"].split(",") if m.strip()) if opts["methods"] else None
    options = ReaderOptions(dataset=opts["dataset_name"], identity_from=opts["identity_from"],
                            split=opts["split"], compression=opts["compression"], methods=methods,
                            splits_dir=opts["splits_dir"])
    layout, listing = read_sources(opts["input_dir"], opts["dataset"], options)
    click.echo(f"{opts['input_dir']}: read as {layout}, split {opts['split']}: {len(listing.real())} real, "
               f"{len(listing.manipulated())} manipulated inputs; {len(listing.skipped)} left out")
    return listing


EXTRACTION_OPTIONS = ("dataset", "split", "compression", "methods", "splits_dir", "dataset_name", "identity_from",
                      "frames_per_video", "min_face_size", "min_score", "all_faces", "face_size", "face_margin",
                      "face_compression",
                      "images_per_unit", "neighbours", "pool_size")
"""Options of face extraction, which `build_bi_shards --faces` refuses (its faces exist)."""


def _crop_config(opts: dict) -> CropConfig:
    return CropConfig(frames_per_video=opts["frames_per_video"], size=opts.get("size", 256),
                      margin=opts.get("margin", 1.3), face_size=opts.get("face_size", 384),
                      face_margin=opts.get("face_margin", 2.0), face_compression=opts.get("face_compression", "none"),
                      detector=DetectorConfig(min_score=opts["min_score"], min_size=opts["min_face_size"],
                                              all_faces=opts["all_faces"]))


def blend_params(opts: dict) -> BlendParams:
    """The --mask-recipe, with each blend flag given explicitly in its place (a fixed
    --deform-std replaces the recipe's range)."""
    params = recipe(opts["mask_recipe"])
    overrides = {name: opts[name] for name in ("blur_min", "blur_max", "color_transfer") if opts[name] is not None}
    if opts["deform_std"] is not None:
        overrides |= {"deform_std": opts["deform_std"], "deform_std_max": None}
    return replace(params, **overrides)


def _faces_config(opts: dict, directory: str, workers: WorkerConfig) -> FacesConfig:
    return FacesConfig(directory, crops=_crop_config(opts), workers=workers, seed=opts["seed"],
                       neighbours=opts["neighbours"], pool_size=opts["pool_size"],
                       images_per_unit=opts["images_per_unit"], resume=opts["resume"])


def _units(sources: list[Source], opts: dict) -> list[Unit]:
    return plan_units(sources, opts["images_per_unit"], opts["frames_per_video"], size_of=_local_size)


def _local_size(path: str) -> int:
    """Bytes of a local file (0 for a URL or a file that cannot be read): a cost estimate."""
    try:
        return 0 if "://" in path else os.path.getsize(path)
    except OSError:
        return 0


def _output_config(opts: dict) -> OutputConfig:
    if opts["resume"] and opts["overwrite"]:
        raise InputError("--resume and --overwrite exclude each other")
    return OutputConfig(root_of(opts["output"]), opts["samples_per_shard"], opts["seed"], opts["resume"])


LOCAL_RUNNERS = (None, "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")


def _worker_config(opts: dict, beam_args: list[str], output: str) -> WorkerConfig:
    """What the workers need of the command line, wherever they run: --fail-fast (the
    failing row left in a hidden folder of `output`, the run's output folder),
    --input-timeout and -v.

    --direct_num_workers: local worker processes; 0 means one per core, as in Beam. The
    local runner splits each stage's input statically, so several local workers share the
    work through claims in a local temporary folder (`pipelines.lanes`); other runners
    balance single items themselves."""
    options = PipelineOptions(beam_args)
    workers = options.view_as(DirectOptions).direct_num_workers
    workers = (os.cpu_count() or 1) if workers == 0 else max(1, workers or 1)
    local = options.view_as(StandardOptions).runner in LOCAL_RUNNERS
    shared = local and workers > 1
    claims = os.path.join(tempfile.gettempdir(), f"forgery-claims-{uuid.uuid4().hex}") if shared else ""
    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    return WorkerConfig(FailFast(fail_fast_folder(root_of(output))) if opts["fail_fast"] else None, workers,
                        workers if shared else 0, claims, opts.get("input_timeout") or 0.0, verbose)


def _fail_fast_on_skipped(skipped: list[dict]) -> None:
    """With --fail-fast, the first input a reader left out stops the run (InputFailure)."""
    for row in skipped[:1]:
        stop_if_fail_fast(row, FailFast())


LOCATION_OPTIONS = {"input_dir": "INPUT", "output": "OUTPUT", "faces_dir": "FACES", "splits_dir": "SPLITS"}
"""Options naming a location, shown by name in the dataset card's command: a card travels
with the data and says how it was made, not where it lay (the input root is in run.json)."""


def command_line(ctx: click.Context) -> str:
    """The command as typed, for the dataset card, rebuilt from click's context: every
    option that differs from its default (a location as its `LOCATION_OPTIONS` name), then
    the options passed to Beam."""
    parts = ctx.command_path.split()
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Option) and value not in (None, False, param.default):
            value = LOCATION_OPTIONS.get(param.name, value)
            parts += [param.opts[0]] if param.is_flag else [param.opts[0], str(value)]
    return shlex.join([*parts, *ctx.args])


RUN_LOCAL_OPTIONS = ("overwrite", "resume", "fail_fast", "input_timeout", "output")
"""Options that do not change what a run writes (not compared by --resume)."""


def _configuration(ctx: click.Context, opts: dict) -> dict:
    """The run's recorded configuration: inputs fingerprint, seed, options, version."""
    inputs = opts.get("faces_dir") or opts.get("input_dir")
    options = {k: v for k, v in sorted(opts.items()) if k not in RUN_LOCAL_OPTIONS}
    return run_configuration(input_fingerprint(inputs), opts.get("seed"), options | {"pipeline": ctx.info_name})


def _nested(directory: str, outputs: list[str]) -> tuple[str, ...]:
    prefix = directory.rstrip("/") + "/"
    return tuple(o[len(prefix):] for o in outputs if o.startswith(prefix))


def _dropped_by_table(directory: str) -> dict[str, int] | None:
    """Failure counts by reason from `directory`/failures.parquet (None if unreadable)."""
    import pyarrow.parquet as pq

    try:
        with FileSystems.open(FileSystems.join(directory, "failures.parquet")) as stream:
            return reason_counts(pq.read_table(stream, columns=["reason"]).to_pylist())
    except Exception:  # noqa: BLE001 - a summary detail; the table's absence is reported elsewhere
        return None


def _refuse_output_inside_input(input_dir: str | None, outputs: list[str]) -> None:
    """An output inside the input folder or prefix (or equal to it) would be read as input by
    the next run. Local folders are compared by real path, URLs by their canonical prefix."""
    if not input_dir:
        return

    def inside(path: str) -> str:
        return (root_of(path) if "://" in path else os.path.realpath(path)).rstrip("/") + "/"

    root = inside(input_dir)
    for directory in outputs:
        if ("://" in directory) == ("://" in input_dir) and inside(directory).startswith(root):
            raise InputError(f"--output {directory} is inside --input {input_dir}: a later run would read the "
                             f"outputs as inputs; choose an output folder outside it")


def _run(ctx: click.Context, outputs: list[str], opts: dict, stages: Iterable[Stage],
         workers: WorkerConfig) -> RunSummary:
    """Prepare the output folders (refusing another run's or a user's files; the run's
    configuration recorded in run.json), run the stages' pipelines, print the summary
    (counted from the outputs where the runner reports no metrics).

    A run that fails or is interrupted removes its partial outputs except finished shards
    (kept for --resume) and its temporary folders, and raises a RunError (InputFailure
    for --fail-fast, from the row the worker left in the output's fail-fast folder, not
    from exception text)."""
    _refuse_output_inside_input(opts.get("input_dir"), outputs)
    if dry_run(ctx.args):
        _dry_run(ctx, stages)
    config = _configuration(ctx, opts)
    _RUN_OUTPUTS[:] = outputs
    for directory in outputs:
        prepare_output(directory, opts["overwrite"], opts["resume"], config, _nested(directory, outputs))
    if workers.claims:
        os.makedirs(workers.claims)
    quiet = None if workers.verbose else tempfile.mkdtemp(prefix="forgery-worker-")
    environment = quiet_worker_environment(quiet) if quiet else {}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    excepthook = threading.excepthook
    if quiet:   # a worker thread of the runner that dies with the run: reported below in one line
        threading.excepthook = lambda args: None
    interrupted = threading.Event()   # Beam wraps a KeyboardInterrupt raised inside a DoFn in its own error

    def on_interrupt(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if on_main_thread else None
    try:
        summary = run_and_summarize(ctx.args, stages)
    except BaseException as error:
        rows = fail_fast_rows(workers.fail_fast.folder) if workers.fail_fast else []
        for directory in outputs:   # the fail-fast folder with them
            discard_partial(directory, nested=_nested(directory, outputs))
        if interrupted.is_set():
            raise KeyboardInterrupt from None
        if rows and not isinstance(error, KeyboardInterrupt):
            raise InputFailure(rows[0]) from error
        if isinstance(error, Exception) and not isinstance(error, RunError) and not workers.verbose:
            raise PipelineError(f"the pipeline failed: {_error_line(error)}") from error
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGINT, previous)
        threading.excepthook = excepthook
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for folder in (quiet, workers.claims):
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
    if summary.from_outputs:
        summary.counters |= output_counts(outputs[0], next((o for o in outputs[1:]), None))
    dropped = _dropped_by_table(outputs[0])
    if dropped is not None:
        summary.counters = {k: v for k, v in summary.counters.items() if not k.startswith("dropped/")} | \
            {f"dropped/{reason}": count for reason, count in dropped.items()}
    click.echo("\n".join(summary.lines()))
    return summary


def _error_line(error: BaseException) -> str:
    """The exception's type and the last line of its message (Beam's are long)."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message.splitlines()[-1] if message else ''}"


def dry_run(beam_args: list[str]) -> bool:
    """Whether Beam's `--dry_run=True` is among `beam_args` (any value, as Beam reads it)."""
    return bool(PipelineOptions(beam_args).view_as(TestOptions).dry_run)


def _dry_run(ctx: click.Context, stages: Iterable[Stage]) -> NoReturn:
    """Beam's `--dry_run=True`: build each stage's job without running it, touching no
    output folder, then end the command. DataflowRunner builds the job it would submit
    (every DoFn pickled, the --setup_file package built into a local temporary folder) and
    returns before staging or submitting anything; any other runner only gets the graph
    serialised (every DoFn pickled). A stage planned from an earlier stage's outputs is
    built on an empty plan. As in a run, without -v subprocesses (the package build) write
    nothing to stderr and a failure is reported in one line. DataflowRunner needs
    --temp_location (InputError): without it Beam would look up a default bucket online."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    cloud = PipelineOptions(ctx.args).view_as(GoogleCloudOptions)
    if runner_name(ctx.args) in ("DataflowRunner", f"{DataflowRunner.__module__}.DataflowRunner") \
            and not (cloud.temp_location or cloud.staging_location):
        raise InputError("--dry_run=True on DataflowRunner needs --temp_location gs://BUCKET/tmp: without it, building "
                         "the job looks up (or creates) a default bucket over the network")
    verbose = bool(os.environ.get("FORGERY_VERBOSE"))
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="forgery-worker-") as quiet:
        os.environ.update({} if verbose else quiet_worker_environment(quiet))
        try:
            for number, stage in enumerate(stages, 1):
                pipeline = make_pipeline(ctx.args, stage.partitions)
                stage.build(pipeline)
                if isinstance(pipeline.runner, DataflowRunner):
                    pipeline.run()
                else:
                    pipeline.to_runner_api()
                click.echo(f"dry run: job {number} ({type(pipeline.runner).__name__}, {stage.partitions} work items) "
                           f"built")
        except Exception as error:
            if verbose or isinstance(error, RunError):
                raise
            raise PipelineError(f"the dry run failed: {_error_line(error)}") from error
        finally:
            os.environ.clear()
            os.environ.update(saved)
    click.echo("dry run: nothing was submitted or run, and --output was not touched")
    ctx.exit(0)


_RUN_OUTPUTS: list[str] = []
"""The output folders of the run in progress (set by `_run`)."""


def _fail_run(directories: list[str], error: RunError, keep: tuple[str, ...] = ("failures.parquet",)) -> RunError:
    """Discard the partial outputs of a run that finished without a usable result, in
    `directories` and every other output folder of the run (keeping the failures tables,
    which say why), and return `error` to raise."""
    directories = list(dict.fromkeys([*directories, *_RUN_OUTPUTS]))
    for directory in directories:
        discard_partial(directory, keep=keep, nested=_nested(directory, directories))
    return error


def _reasons(directory: str) -> str:
    counts = _dropped_by_table(directory) or {}
    return ", ".join(f"{reason} {count}" for reason, count in counts.items()) or "none recorded"


def _faces_card(ctx: click.Context, config: FacesConfig) -> None:
    if face_count(config.directory) == 0:
        raise _fail_run([config.directory], NothingUsableError(
            f"no usable face in the input; failures by reason: {_reasons(config.directory)} "
            f"(see {config.directory}/failures.parquet)"))
    write_faces_card(config.directory, config, command_line(ctx))
    finish_run(config.directory)
    click.echo(f"face shards: {config.directory} (faces.parquet, neighbours.parquet, README.md)")


def _samples_card(ctx: click.Context, directory: str, title: str, config, faces: int | None = None) -> None:
    import pyarrow.parquet as pq

    with FileSystems.open(FileSystems.join(directory, "index.parquet")) as stream:
        kinds = pq.read_table(stream, columns=["kind"]).column("kind").to_pylist()
    nested = tuple(d for d in (FACES_SUBFOLDER,) if FileSystems.exists(FileSystems.join(directory, d, "run.json")))
    if not kinds:
        raise _fail_run([directory], NothingUsableError(
            f"no samples were written: no usable face in the input; failures by reason: {_reasons(directory)} "
            f"(see {directory}/failures.parquet)"))
    if isinstance(config, BiShardsConfig) and config.fakes_per_real > 0 and "blended" not in kinds:
        raise _fail_run([directory], NothingUsableError(
            f"no blended sample was written ({len(kinds)} real samples): no face has a neighbour of another "
            f"video and identity in its split; failures by reason: {_reasons(directory)} "
            f"(see {directory}/failures.parquet)"))
    write_dataset_card(directory, title, config, command_line(ctx), faces)
    finish_run(directory, nested)
    click.echo(f"dataset card: {directory}/README.md, stats.json, preview.png")


class _Main(click.Group):
    """The `beam` group; the trainer commands (which import PyTorch) load on first use, so
    `beam run` starts without importing torch."""

    _TRAINER_COMMANDS = {"train": "train", "eval": "evaluate_command", "predict": "predict"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._TRAINER_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._TRAINER_COMMANDS:
            from trainers import cli as trainer_cli
            return getattr(trainer_cli, self._TRAINER_COMMANDS[name])
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        """Run-level errors (`pipelines.failures.RunError` and its types) become one line
        and their exit status; Ctrl-C one line and status 130."""
        try:
            return super().invoke(ctx)
        except InputFailure as error:
            raise _Exit(f"--fail-fast: {error}", error.exit_code) from error
        except RunError as error:
            raise _Exit(str(error), error.exit_code) from error
        except KeyboardInterrupt:
            raise _Exit("interrupted (Ctrl-C); finished shards are kept: rerun with --resume to complete the run",
                        130) from None


class _Exit(click.ClickException):
    """A one-line error with its exit status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _not_from_the_cluster_client(record: logging.LogRecord) -> bool:
    """Whether a log record may be shown without -v: not the Dask client's (a lost
    scheduler is reported in the run's one-line error; its reconnection tracebacks are not)."""
    return not record.name.startswith(("distributed", "tornado"))


@click.group(cls=_Main)
@click.option("-v", "--verbose", count=True,
              help="Show third-party warnings and native log lines (MediaPipe, TensorFlow Lite, Beam); -vv: "
                   "Beam's INFO lines too.")
def main(verbose: int = 0) -> None:
    """Face-forgery detection datasets: build training shards, train detectors."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("forgery").setLevel(logging.INFO)  # progress lines
    if verbose:
        os.environ["FORGERY_VERBOSE"] = "1"   # this process's native log lines (workers: WorkerConfig.verbose)
        logging.getLogger().setLevel(logging.INFO if verbose > 1 else logging.WARNING)
        for warning in _IMPORT_WARNINGS:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    else:
        os.environ.pop("FORGERY_VERBOSE", None)
        os.environ.setdefault("GLOG_minloglevel", "2")   # MediaPipe's native logger, before it loads
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        logging.getLogger().setLevel(logging.ERROR)      # third-party warnings (Beam, absl)
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)  # a failed run is reported in one line
        for handler in logging.getLogger().handlers:   # dask.distributed sets its loggers' levels on import
            handler.addFilter(_not_from_the_cluster_client)
        logging.captureWarnings(True)                    # Python warnings go to the 'py.warnings' logger


@main.group()
def run() -> None:
    """Run a data pipeline on Apache Beam.

    Options the pipeline does not know (--runner, --direct_num_workers,
    --direct_running_mode, --project, ...) go to Beam unchanged. Without --runner the job
    runs locally.
    """


def _real_sources(opts: dict) -> tuple[list[Source], list[dict]]:
    """The real inputs of --input (the embedded demo without it) and the reader's skipped rows."""
    if opts["input_dir"] is None:
        click.echo("No --input: running on the embedded demo (2 public-domain portraits).")
        return demo_sources(), []
    listing = _listing(opts)
    if opts["fail_fast"]:
        _fail_fast_on_skipped(listing.skipped)
    if not listing.real():
        raise InputError(f"no real videos or images in {opts['input_dir']} (split {opts['split']})")
    return listing.real(), listing.skipped


@run.command("extract_faces", context_settings=PASS_THROUGH)
@input_options
@click.option("--output", default="faces", show_default=True, help="Face-shard folder or URL.")
@frame_options
@face_shard_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the neighbour search's candidate pool.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier run in --output.")
@click.option("--resume", is_flag=True,
              help="Complete an interrupted run in --output (same inputs and options): units whose face shard "
                   "is written are kept; the result equals an uninterrupted run.")
@click.option("--fail-fast", is_flag=True,
              help="Stop at the first input or face that would be dropped, instead of recording it in "
                   "failures.parquet.")
@click.pass_context
def extract_faces_command(ctx: click.Context, **opts) -> None:
    """Videos and images in, face shards out: decode and detect once, blend many times.

    Writes shard-NNNNNN.tar (one per video, or per --images-per-unit consecutive images;
    each face: img.png, hull.png, json with landmarks and the 478-point mesh), and
    faces / neighbours / failures .parquet to --output. `build_bi_shards --faces` and
    `beam train --train-faces` read them.
    """
    try:
        if opts["resume"] and opts["overwrite"]:
            raise InputError("--resume and --overwrite exclude each other")
        sources, skipped = _real_sources(opts)
        config = _faces_config(opts, root_of(opts["output"]), _worker_config(opts, ctx.args, opts["output"]))
        units = _units(sources, opts)
    except (InputError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"{len(sources)} inputs in {len(units)} units -> {config.directory}")
    _run(ctx, [config.directory], opts, [_extraction_stage(units, skipped, config)], config.workers)
    _faces_card(ctx, config)


@run.command("build_bi_shards", context_settings=PASS_THROUGH)
@input_options
@click.option("--faces", "faces_dir", default=None,
              help="Face shards made by extract_faces: blend from them, without opening a video. "
                   "Excludes --input and every extraction option.")
@click.option("--output", default="bi_shards", show_default=True, help="Output folder or URL.")
@frame_options
@face_shard_options
@recipe_crop_options
@click.option("--fakes-per-real", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Blended samples per real sample (each face gives one real sample).")
@blend_options
@output_options
@click.pass_context
def build_bi_shards_command(ctx: click.Context, **opts) -> None:
    """Real faces in, Face X-ray blended-image (BI) shards out.

    With --faces: from existing face shards. Otherwise from the real videos of --input
    (for FF++ / Celeb-DF: of --split), extracted first into OUTPUT/faces/ (kept for reuse
    with --faces). Writes shard-NNNNNN.tar (WebDataset) and index / failures .parquet.
    """
    try:
        output = _output_config(opts)
        workers = _worker_config(opts, ctx.args, output.directory)
        faces_dir = root_of(opts["faces_dir"]) if opts["faces_dir"] is not None else None
        extraction = None
        if faces_dir is not None:
            given = [name for name in EXTRACTION_OPTIONS
                     if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
            if opts["input_dir"] is not None or given:
                raise InputError("--faces blends existing face shards; it excludes --input and the extraction "
                                 "options: " + ", ".join(f"--{n.replace('_', '-')}" for n in
                                                         (["input"] if opts["input_dir"] else []) + given))
            try:
                stored_margin = stored_crop_margin(faces_dir)
            except OSError as error:
                raise InputError(f"--faces {faces_dir} holds no face shards made by `beam run extract_faces` "
                                 f"(its faces.parquet: {error})") from error
        else:
            sources, skipped = _real_sources(opts)
            faces_dir = FileSystems.join(output.directory, FACES_SUBFOLDER)
            extraction = _faces_config(opts, faces_dir, workers)
            units = _units(sources, opts)
            stored_margin = opts["face_margin"]
        if opts["margin"] > stored_margin:
            raise InputError(f"--margin {opts['margin']} needs more context than the stored faces hold "
                             f"(margin {stored_margin}): lower --margin or extract with a larger --face-margin")
        config = BiShardsConfig(
            output=output, faces=faces_dir, size=opts["size"], margin=opts["margin"], workers=workers,
            fakes_per_real=opts["fakes_per_real"], mix=RecipeMix.parse(opts["recipe"]),
            fakes=FakeParams(bi=blend_params(opts)))
    except (InputError, ValueError, OSError) as error:
        raise click.UsageError(str(error)) from error

    def stages() -> Iterator[Stage]:
        if extraction is not None:
            yield _extraction_stage(units, skipped, extraction)
        if extraction is not None and dry_run(ctx.args):   # the faces it plans from were not extracted
            plan = BiPlan((), ())
        else:
            plan = plan_bi_shards(faces_dir, output.samples_per_shard, config.fakes_per_real, output.seed,
                                  config.mix, workers.fail_fast)
        yield Stage(lambda pipeline: build_bi_shards(pipeline, config, plan), len(plan.tasks),
                    lambda: bi_outputs(output.directory, plan))

    if extraction is None:
        click.echo(f"faces of {faces_dir} -> {output.directory}")
        _run(ctx, [output.directory], opts, stages(), workers)
    else:
        click.echo(f"{len(sources)} inputs in {len(units)} units -> {faces_dir} -> {output.directory}")
        _run(ctx, [output.directory, faces_dir], opts, stages(), workers)
        _faces_card(ctx, extraction)
    _samples_card(ctx, output.directory, "Face X-ray blended-image (BI) shards", config, face_count(faces_dir))


def _extraction_stage(units: list[Unit], skipped: list[dict], config: FacesConfig) -> Stage:
    return Stage(lambda pipeline: extract_faces(pipeline, units, skipped, config), len(units),
                 lambda: face_outputs(config.directory, units))


@run.command("build_forgery_shards", context_settings=PASS_THROUGH)
@input_options
@click.option("--output", default="forgery_shards", show_default=True, help="Output folder or URL.")
@frame_options
@recipe_crop_options
@click.option("--masks", type=click.Choice(["diff", "official"]), default="diff", show_default=True,
              help="Forgery masks from |fake - original|, or the dataset's mask videos where present.")
@click.option("--diff-smooth", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Gaussian sigma smoothing the difference, px at 256 px crops.")
@click.option("--diff-threshold", type=click.FloatRange(0, 255), default=12.0, show_default=True,
              help="Grey levels of smoothed difference counted as manipulated; 0 = soft normalised mask.")
@click.option("--mask-cleanup", type=click.IntRange(1), default=5, show_default=True,
              help="Ellipse size of the mask's morphological opening + closing, px at 256 px.")
@output_options
@click.pass_context
def build_forgery_shards_command(ctx: click.Context, **opts) -> None:
    """Manipulated videos and their originals in, supervised shards out.

    For FF++ or Celeb-DF: each fake of --split and its original are read at the same
    frames and cropped with the original's landmarks, so crops are pixel-aligned. Fakes
    get a forgery mask, its X-ray, the hull and a method id; originals are real samples.
    """
    try:
        if opts["input_dir"] is None:
            raise InputError("--input is required: a FaceForensics++ or Celeb-DF root")
        listing = _listing(opts)
        if opts["fail_fast"]:
            _fail_fast_on_skipped(listing.skipped)
        groups = group_by_original(listing.real(), listing.manipulated())
        if not groups:
            raise InputError(f"no manipulated videos with their originals in {opts['input_dir']} "
                             f"(split {opts['split']}); this pipeline needs an FF++ or Celeb-DF layout")
        config = ForgeryShardsConfig(
            output=_output_config(opts), crops=_crop_config(opts),
            workers=_worker_config(opts, ctx.args, opts["output"]),
            masks=MaskOptions(opts["masks"], opts["diff_smooth"], opts["diff_threshold"], opts["mask_cleanup"]))
    except (InputError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"{len(groups)} originals with {sum(len(f) for _, f in groups)} manipulated videos "
               f"-> {config.output.directory}")
    stage = Stage(lambda pipeline: build_forgery_shards(pipeline, groups, listing.skipped, config), len(groups),
                  lambda: forgery_outputs(config.output))
    _run(ctx, [config.output.directory], opts, [stage], config.workers)
    _samples_card(ctx, config.output.directory, "Supervised forgery shards (manipulated videos and their originals)",
                  config)


@main.command()
@click.argument("shards", nargs=-1, required=True)
@click.option("--out", "out_path", default="preview.png", show_default=True, help="PNG to write.")
@click.option("--samples", type=click.IntRange(1), default=12, show_default=True,
              help="How many samples to draw (the first ones, in shard order).")
@click.option("--size", type=click.IntRange(32), default=128, show_default=True, help="Panel side, px.")
def preview(shards: tuple[str, ...], out_path: str, samples: int, size: int) -> None:
    """Draw a contact sheet of shard samples: image, mask, X-ray, hull, label and key.

    SHARDS: tar files, globs expanded by the shell, or a brace pattern
    ('out/shard-{000000..000009}.tar').
    """
    import itertools

    import webdataset as wds

    from shards.preview import contact_sheet

    urls = [url for pattern in shards for url in wds.shardlists.expand_urls(pattern)]
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    sheet = contact_sheet(itertools.islice(dataset, samples), size)
    if not cv2.imwrite(out_path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise click.ClickException(f"could not write {out_path}")
    click.echo(f"wrote {out_path} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
