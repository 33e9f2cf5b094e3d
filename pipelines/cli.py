"""The `beam` command: `beam run <pipeline> [options] [Beam pipeline options]`, `beam preview`."""
from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable

import apache_beam as beam
import click
import cv2
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from blending.bi import BlendParams
from blending.color import COLOR_TRANSFERS
from landmarks.detect import DetectorConfig
from pipelines.build_bi_shards import BiShardsConfig, build_bi_shards
from pipelines.build_forgery_shards import ForgeryShardsConfig, build_forgery_shards, group_by_original
from pipelines.card import write_dataset_card
from pipelines.config import CropConfig, OutputConfig, WorkerConfig
from pipelines.forgery import MaskOptions
from pipelines.readers import READERS, InputError, Listing, ReaderOptions, demo_sources, read_sources
from pipelines.readers.ffpp import METHODS as FFPP_METHODS
from pipelines.runner import OutputExistsError, make_pipeline, prepare_output, run_and_summarize

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

crop_options = _options(
    click.option("--frames-per-video", type=click.IntRange(1), default=32, show_default=True,
                 help="Evenly spaced frames sampled per video."),
    click.option("--size", type=click.IntRange(32), default=256, show_default=True, help="Crop side S, px."),
    click.option("--margin", type=click.FloatRange(1.0), default=1.3, show_default=True,
                 help="Crop side as a multiple of the face box side."),
    click.option("--min-face-size", type=click.FloatRange(0), default=64.0, show_default=True,
                 help="Drop faces whose detector box is smaller, px."),
    click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                 help="Drop faces below this detector confidence."),
    click.option("--all-faces", is_flag=True, help="Keep every face of a frame, not only the largest."),
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


def _crop_config(opts: dict) -> CropConfig:
    return CropConfig(frames_per_video=opts["frames_per_video"], size=opts["size"], margin=opts["margin"],
                      detector=DetectorConfig(min_score=opts["min_score"], min_size=opts["min_face_size"],
                                              all_faces=opts["all_faces"]))


def _output_config(opts: dict) -> OutputConfig:
    if opts["resume"] and opts["overwrite"]:
        raise InputError("--resume and --overwrite exclude each other")
    return OutputConfig(opts["output"], opts["samples_per_shard"], opts["seed"], opts["resume"])


def _worker_config(opts: dict, beam_args: list[str]) -> WorkerConfig:
    """--direct_num_workers: local worker processes; 0 means one per core, as in Beam."""
    workers = PipelineOptions(beam_args).view_as(DirectOptions).direct_num_workers
    return WorkerConfig(opts["fail_fast"], (os.cpu_count() or 1) if workers == 0 else max(1, workers or 1))


def _fail_fast_on_skipped(skipped: list[dict]) -> None:
    if skipped:
        first = skipped[0]
        raise InputError(f"--fail-fast: {first['path']}: {first['stage']}/{first['reason']}: {first['detail']}")


def command_line(ctx: click.Context) -> str:
    """The command as typed, rebuilt from click's context: every option that differs from
    its default, then the options passed to Beam."""
    parts = ctx.command_path.split()
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Option) and value not in (None, False, param.default):
            parts += [param.opts[0]] if param.is_flag else [param.opts[0], str(value)]
    return shlex.join([*parts, *ctx.args])


def _run(ctx: click.Context, output: OutputConfig, overwrite: bool,
         build: Callable[[beam.Pipeline], None], config, title: str) -> None:
    try:
        prepare_output(output.directory, overwrite, output.resume)
    except OutputExistsError as error:
        raise click.UsageError(str(error)) from error
    try:
        summary = run_and_summarize(make_pipeline(ctx.args), build)
    except Exception as error:  # noqa: BLE001 - Beam wraps worker exceptions in its own types
        if config.workers.fail_fast and "InputFailure" in f"{type(error).__name__} {error}":
            message = str(error).split("InputFailure: ")[-1].splitlines()[0]
            raise click.ClickException(f"--fail-fast: {message}") from error
        raise
    click.echo("\n".join(summary.lines()))
    if summary.get("samples", "written") == 0:
        raise click.ClickException("no samples were written: no usable face in the input (see failures.parquet)")
    write_dataset_card(output.directory, title, config, command_line(ctx))
    click.echo(f"dataset card: {output.directory}/README.md, stats.json, preview.png")


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


@click.group(cls=_Main)
def main() -> None:
    """Face-forgery detection datasets: build training shards, train detectors."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("forgery").setLevel(logging.INFO)  # progress lines; Beam's own stay at WARNING


@main.group()
def run() -> None:
    """Run a data pipeline on Apache Beam.

    Options the pipeline does not know (--runner, --direct_num_workers,
    --direct_running_mode, --project, ...) go to Beam unchanged. Without --runner the job
    runs locally.
    """


@run.command("build_bi_shards", context_settings=PASS_THROUGH)
@input_options
@click.option("--output", default="bi_shards", show_default=True, help="Output folder or URL.")
@crop_options
@click.option("--neighbours", type=click.IntRange(1), default=100, show_default=True,
              help="k: foreground drawn from the k nearest faces by landmarks.")
@click.option("--pool-size", type=click.IntRange(1), default=20_000, show_default=True,
              help="Random candidate pool the neighbours are searched in.")
@click.option("--fakes-per-real", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Blended samples per real sample (each face gives one real sample).")
@click.option("--deform-std", type=click.FloatRange(0), default=0.03, show_default=True,
              help="Std of the mask grid's random offsets, fraction of the crop side.")
@click.option("--blur-min", type=click.IntRange(1), default=5, show_default=True, help="Smallest odd mask blur kernel, px.")
@click.option("--blur-max", type=click.IntRange(1), default=25, show_default=True, help="Largest odd mask blur kernel, px.")
@click.option("--color-transfer", type=click.Choice(COLOR_TRANSFERS), default="rgb_mean", show_default=True,
              help="Colour correction of the foreground: per-channel RGB mean (paper), Reinhard L*a*b*, or none.")
@output_options
@click.pass_context
def build_bi_shards_command(ctx: click.Context, **opts) -> None:
    """Real faces in, Face X-ray blended-image (BI) shards out.

    Uses the real videos of --input (for FF++ / Celeb-DF: of --split). Writes
    shard-NNNNNN.tar (WebDataset) and faces / index / failures .parquet to --output.
    """
    try:
        if opts["input_dir"] is None:
            sources, skipped = demo_sources(), []
            click.echo("No --input: running on the embedded demo (2 public-domain portraits).")
        else:
            listing = _listing(opts)
            sources, skipped = listing.real(), listing.skipped
            if opts["fail_fast"]:
                _fail_fast_on_skipped(skipped)
            if not sources:
                raise InputError(f"no real videos or images to blend in {opts['input_dir']} (split {opts['split']})")
        config = BiShardsConfig(
            output=_output_config(opts), crops=_crop_config(opts), workers=_worker_config(opts, ctx.args),
            neighbours=opts["neighbours"],
            pool_size=opts["pool_size"], fakes_per_real=opts["fakes_per_real"],
            blend=BlendParams(deform_std=opts["deform_std"], blur_min=opts["blur_min"],
                              blur_max=opts["blur_max"], color_transfer=opts["color_transfer"]))
    except (InputError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"{len(sources)} inputs -> {config.output.directory}")
    _run(ctx, config.output, opts["overwrite"], lambda p: build_bi_shards(p, sources, skipped, config), config,
         "Face X-ray blended-image (BI) shards")


@run.command("build_forgery_shards", context_settings=PASS_THROUGH)
@input_options
@click.option("--output", default="forgery_shards", show_default=True, help="Output folder or URL.")
@crop_options
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
            output=_output_config(opts), crops=_crop_config(opts), workers=_worker_config(opts, ctx.args),
            masks=MaskOptions(opts["masks"], opts["diff_smooth"], opts["diff_threshold"], opts["mask_cleanup"]))
    except (InputError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"{len(groups)} originals with {sum(len(f) for _, f in groups)} manipulated videos "
               f"-> {config.output.directory}")
    _run(ctx, config.output, opts["overwrite"],
         lambda p: build_forgery_shards(p, groups, listing.skipped, config), config,
         "Supervised forgery shards (manipulated videos and their originals)")


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
