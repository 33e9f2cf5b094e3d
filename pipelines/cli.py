"""The `beam` command: `beam run <pipeline> [options] [Beam pipeline options]`."""
from __future__ import annotations

import logging

import click
import cv2

from blending.bi import BlendParams
from blending.color import COLOR_TRANSFERS
from landmarks.detect import DetectorConfig
from pipelines.build_bi_shards import BiShardsConfig, build_bi_shards
from pipelines.runner import OutputExistsError, make_pipeline, prepare_output, run_and_summarize
from pipelines.sources import READERS, InputError, ReaderOptions, demo_sources

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.group()
def main() -> None:
    """Face-forgery detection datasets: build training shards, train detectors."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.group()
def run() -> None:
    """Run a data pipeline on Apache Beam.

    Options the pipeline does not know (--runner, --direct_num_workers,
    --direct_running_mode, --project, ...) go to Beam unchanged. Without --runner the job
    runs locally.
    """


@run.command("build_bi_shards", context_settings=PASS_THROUGH)
@click.option("--input", "input_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of real face videos/images (recursive). Default: the embedded demo.")
@click.option("--output", default="bi_shards", show_default=True, help="Output folder or URL.")
@click.option("--dataset", type=click.Choice(sorted(READERS)), default="folder", show_default=True,
              help="Layout of --input.")
@click.option("--dataset-name", default=None, help="Dataset field of keys. Default: the input folder's name.")
@click.option("--identity-from", type=click.Choice(["stem", "parent"]), default="stem", show_default=True,
              help="Identity of a file: its name, or its parent folder's name (photos/<identity>/...).")
@click.option("--split", default="train", show_default=True, help="Split recorded for every sample.")
@click.option("--frames-per-video", type=click.IntRange(1), default=32, show_default=True,
              help="Evenly spaced frames sampled per video.")
@click.option("--size", type=click.IntRange(32), default=256, show_default=True, help="Crop side S, px.")
@click.option("--margin", type=click.FloatRange(1.0), default=1.3, show_default=True,
              help="Crop side as a multiple of the face box side.")
@click.option("--min-face-size", type=click.FloatRange(0), default=64.0, show_default=True,
              help="Drop faces whose detector box is smaller, px.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Drop faces below this detector confidence.")
@click.option("--all-faces", is_flag=True, help="Keep every face of a frame, not only the largest.")
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
@click.option("--samples-per-shard", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier run in --output.")
@click.pass_context
def build_bi_shards_command(ctx: click.Context, **opts) -> None:
    """Real faces in, Face X-ray blended-image (BI) shards out.

    Writes shard-NNNNNN.tar (WebDataset) and faces / index / failures .parquet to --output.
    """
    try:
        if opts["input_dir"] is None:
            sources = demo_sources()
            click.echo("No --input: running on the embedded demo (2 public-domain portraits).")
        else:
            sources = READERS[opts["dataset"]](opts["input_dir"], ReaderOptions(
                dataset=opts["dataset_name"], identity_from=opts["identity_from"], split=opts["split"]))
        config = BiShardsConfig(
            output=opts["output"], frames_per_video=opts["frames_per_video"], size=opts["size"],
            margin=opts["margin"],
            detector=DetectorConfig(min_score=opts["min_score"], min_size=opts["min_face_size"],
                                    all_faces=opts["all_faces"]),
            neighbours=opts["neighbours"], pool_size=opts["pool_size"],
            fakes_per_real=opts["fakes_per_real"],
            blend=BlendParams(deform_std=opts["deform_std"], blur_min=opts["blur_min"],
                              blur_max=opts["blur_max"], color_transfer=opts["color_transfer"]),
            samples_per_shard=opts["samples_per_shard"], seed=opts["seed"])
        prepare_output(config.output, opts["overwrite"])
    except (InputError, OutputExistsError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(f"{len(sources)} inputs -> {config.output}")
    summary = run_and_summarize(make_pipeline(ctx.args),
                                lambda p: build_bi_shards(p, sources, config))
    click.echo("\n".join(summary.lines()))
    if summary.get("samples", "written") == 0:
        raise click.ClickException(
            "no samples were written: no usable face in the input (see failures.parquet)")


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
