"""`beam train <family>`, `beam eval`, `beam predict`."""
from __future__ import annotations

import functools
import json
import os

import click

from blending.augment import AUGMENTS
from blending.recipe import RECIPES

from trainers.families import FAMILIES, Family
from trainers.loop import DEFAULT_STEPS, PRESETS


@click.group()
def train() -> None:
    """Train a detector family on shards (streamed; CUDA when present).

    Data-parallel on several GPUs: torchrun --nproc_per_node N $(which beam) train <family> ...
    """


def _one_line_errors(function):
    """A command whose checkpoint errors (missing, unreadable, not ours) end in one line."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        from trainers.checkpoint import CheckpointError
        try:
            return function(*args, **kwargs)
        except CheckpointError as error:
            raise click.ClickException(str(error)) from error
    return run


def _model_option(option) -> click.Option:
    flag = option.name.replace("_", "-")
    if option.type is bool:
        return click.Option([f"--{flag}/--no-{flag}", option.name], default=option.default, show_default=True,
                            help=option.help)
    return click.Option([f"--{flag}", option.name], type=click.Choice(option.choices) if option.choices else option.type,
                        default=option.default, show_default=True, help=option.help)


def _train_command(family: type[Family]) -> click.Command:
    d, p = family.defaults, family.paper

    @click.pass_context
    @_one_line_errors
    def command(ctx: click.Context, **opts) -> None:
        from trainers.failures import NoSamplesRead, UnreadableShards
        from trainers.loop import NoPretrainedBackbone, NoTrainingData, PresetNeedsSteps, TrainConfig
        from trainers.loop import train as run_training
        from blending.mix import RecipeSpecError
        from trainers.online import FaceFolderError, OnlineOptionsError
        from trainers.urls import MissingShards
        options = {o.name: opts.pop(o.name) for o in family.OPTIONS}
        resume = opts.pop("resume")
        config = TrainConfig(family=family.name, train=list(opts.pop("train_urls")), val=list(opts.pop("val_urls")),
                             train_faces=list(opts.pop("train_faces")), options=options, **opts)
        if resume and not os.path.isfile(os.path.join(config.out, "last.pt")):
            raise click.UsageError(f"--resume: no checkpoint at {os.path.join(config.out, 'last.pt')}")
        try:
            report = run_training(config, resume=resume)
        except (MissingShards, PresetNeedsSteps, NoPretrainedBackbone, NoTrainingData, RecipeSpecError,
                OnlineOptionsError) as error:
            raise click.UsageError(str(error)) from error
        except (UnreadableShards, FaceFolderError) as error:
            raise click.ClickException(str(error)) from error
        except NoSamplesRead as error:   # only validation reads a set through (training resamples)
            raise click.ClickException(f"--val: {error}") from error
        if report:
            click.echo(json.dumps({"validation": report["frame"], "video": report["video"]}, indent=2))
        click.echo(f"checkpoints and logs in {config.out}")

    params = [
        click.Option(["--train", "train_urls"], multiple=True,
                     help="Training sample shards: brace pattern, glob-expanded list or URL (repeatable)."),
        click.Option(["--train-faces", "train_faces"], multiple=True,
                     help="Face shards (from `beam run extract_faces`; repeatable) blended online: each draw of a "
                          "face is its real sample or, with probability --fake-fraction, a fresh blend with one "
                          "of its neighbours. At least one of --train / --train-faces; both may be mixed."),
        click.Option(["--fake-fraction"], type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Online: probability that a draw is a blend."),
        click.Option(["--recipe"], default="bi", show_default=True,
                     help="Online: what makes the fakes: 'bi' (a neighbour's face pasted in), 'sbi' (the face "
                          "blended with an altered copy of itself), or a per-draw mix such as 'mix:bi=0.5,sbi=0.5'."),
        click.Option(["--paired"], is_flag=True,
                     help="Online, --recipe sbi: every draw gives the face's real (target) copy and its own "
                          "self-blend, side by side in a batch, as SBI training pairs them (--fake-fraction unused)."),
        click.Option(["--mask-recipe"], type=click.Choice(sorted(RECIPES)), default="default", show_default=True,
                     help="Online: the BI mask recipe ('default': the reference generators' variety; 'paper': "
                          "Face X-ray Sec. 3.2). A data option: --preset never changes it."),
        click.Option(["--augment"], type=click.Choice(sorted(AUGMENTS)), default="default", show_default=True,
                     help="Per-draw augmentation of every training sample, alike for real and fake: flip, "
                          "colour jitter, JPEG. 'none' turns it off; evaluation never augments."),
        click.Option(["--dump-samples"], type=click.IntRange(0), default=0, show_default=True,
                     help="Write the first N training samples (as the model sees them, every choice in their "
                          "json) to <out>/dumped_samples.tar."),
        click.Option(["--val", "val_urls"], multiple=True, help="Validation shards (model selection uses only these)."),
        click.Option(["--out"], required=True, help="Run folder: last.pt, best.pt, train_log.csv, val_log.csv."),
        click.Option(["--preset"], type=click.Choice(PRESETS), default="none", show_default=True,
                     help=f"'paper' sets the paper's input size, batch size, learning rate and length "
                          f"(the optimiser and schedule are always the paper's): {p.image_size} px, batch "
                          f"{p.batch_size}, lr {p.lr}, "
                          f"{f'{p.steps:,} steps' if p.steps else 'no fixed length'}"
                          f"{f', backbone frozen {p.freeze_backbone_steps:,} steps when pretrained' if p.freeze_backbone_steps else ''}"
                          f". Source: {p.source}. Flags given explicitly win; data options (--mask-recipe, "
                          f"--augment, --fake-fraction) are never set by a preset."),
        click.Option(["--steps"], type=click.IntRange(1), default=None,
                     help=f"Optimiser steps. Default {DEFAULT_STEPS}, or the preset's."),
        click.Option(["--batch-size"], type=click.IntRange(1), default=None,
                     help=f"Per GPU/process. Default {d.batch_size}, or the preset's."),
        click.Option(["--lr"], type=float, default=None, help=f"Default {d.lr}, or the preset's."),
        click.Option(["--image-size"], type=click.IntRange(16), default=None,
                     help=f"Input side, px. Default {d.image_size}, or the preset's."),
        click.Option(["--freeze-backbone-steps"], type=click.IntRange(0), default=None,
                     help="Keep the pretrained backbone fixed (no gradients, batch-norm statistics kept) for the "
                          "first N steps. Default 0, or the preset's when pretrained weights are given."),
        click.Option(["--samples-per-epoch"], type=click.IntRange(1), default=10_000, show_default=True,
                     help="Samples per resampled epoch (all processes together)."),
        click.Option(["--workers"], type=click.IntRange(0), default=2, show_default=True, help="DataLoader workers."),
        click.Option(["--shuffle-buffer"], type=click.IntRange(0), default=1000, show_default=True,
                     help="Samples each loader worker holds for shuffling."),
        click.Option(["--open-shards"], type=click.IntRange(1), default=8, show_default=True,
                     help="Shards each loader worker reads at once, drawing every sample from a random one."),
        click.Option(["--seed"], type=int, default=0, show_default=True),
        click.Option(["--eval-every"], type=click.IntRange(1), default=500, show_default=True),
        click.Option(["--checkpoint-every"], type=click.IntRange(1), default=500, show_default=True),
        click.Option(["--log-every"], type=click.IntRange(1), default=10, show_default=True),
        click.Option(["--amp/--no-amp"], default=True, show_default=True, help="bf16 mixed precision on CUDA."),
        click.Option(["--compile"], is_flag=True, help="torch.compile the model."),
        click.Option(["--postprocess"], default="none", show_default=True,
                     help="Training-time image degradation (AMTEN Table IX): none, mix, jpeg:70, jpeg2000:4, "
                          "median:5, mean:3, gaussian:7, gamma:1.4, upscale:10, downscale:25."),
        click.Option(["--device"], default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ..."),
        click.Option(["--resume"], is_flag=True, help="Continue from <out>/last.pt at its step, same data order."),
    ] + [_model_option(o) for o in family.OPTIONS]
    return click.Command(family.name, callback=command, params=params, help=family.description)


for _family in FAMILIES.values():
    train.add_command(_train_command(_family))


@click.command("eval")
@click.option("--checkpoint", required=True, help="A checkpoint written by beam train.")
@click.option("--shards", "shard_urls", multiple=True, help="Shards of one set to evaluate (repeatable).")
@click.option("--set", "set_specs", multiple=True, metavar="NAME=PATTERN",
              help="A named set, e.g. --set ffpp='ffpp/shard-{000000..000009}.tar' --set celebdf=... "
                   "(instead of --shards).")
@click.option("--out", default=None, help="Metrics JSON path (the Markdown table goes beside it as .md). "
                                          "Default: <checkpoint dir>/eval.json.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True)
@click.option("--postprocess", default="none", show_default=True,
              help="Degrade the images first (robustness test): none, mix, jpeg:70, median:5, ...")
@click.option("--device", default="auto", show_default=True)
@_one_line_errors
def evaluate_command(checkpoint: str, shard_urls: tuple[str, ...], set_specs: tuple[str, ...], out: str | None,
                     batch_size: int, workers: int, postprocess: str, device: str) -> None:
    """Evaluate a checkpoint on one set (--shards) or several named sets (--set): frame and
    video AUC / AP / EER / accuracy per set and per manipulation method, with sample and
    video counts (and mIoU for dense families). Writes one JSON, one Markdown table and a
    per-sample scores CSV."""
    import csv

    from trainers.failures import NoSamplesRead
    from trainers.loop import evaluate, pick_device
    from trainers.predict import load_model
    from trainers.report import BadSetSpec, markdown, parse_sets, selection_note
    from trainers.urls import MissingShards, checked_urls

    if bool(shard_urls) == bool(set_specs):
        raise click.UsageError("give either --shards or one or more --set NAME=PATTERN")
    try:
        patterns = {"shards": list(shard_urls)} if shard_urls else {n: [p] for n, p in parse_sets(set_specs).items()}
        sets = {name: checked_urls("--shards" if shard_urls else f"--set {name}", pattern)
                for name, pattern in patterns.items()}
    except (MissingShards, BadSetSpec) as error:
        raise click.UsageError(str(error)) from error
    torch_device = pick_device(device)
    family, model, state = load_model(checkpoint, torch_device)
    reports, samples = {}, []
    for name, urls in sets.items():
        try:
            report = evaluate(model, family, urls, int(state["image_size"]), batch_size,
                              workers, torch_device, postprocessing=postprocess)
        except NoSamplesRead as error:
            raise click.ClickException(f"set {name}: {error}") from error
        samples += [{"set": name, **sample} for sample in report.pop("samples")]
        reports[name] = {"shards": patterns[name], **report}
    out = out or os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "eval.json")
    note = selection_note(state)
    with open(out, "w") as stream:
        json.dump({"checkpoint": checkpoint, "family": family.name, "postprocess": postprocess,
                   "model_selection": note, "sets": reports}, stream, indent=2)
    table = markdown(checkpoint, reports, note, postprocess)
    with open(os.path.splitext(out)[0] + ".md", "w") as stream:
        stream.write(table)
    with open(os.path.splitext(out)[0] + "_scores.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["set", "key", "video", "method", "label", "score"])
        writer.writeheader()
        writer.writerows(samples)
    click.echo(table)
    for name, report in reports.items():
        if "miou" in report["frame"]:
            click.echo(f"{name}: mIoU (dense output vs {family.dense_target}) {report['frame']['miou']:.4f}")
        if report["unreadable_shard_count"] or report["unreadable_sample_count"]:
            click.echo(f"{name}: could not read {report['unreadable_shard_count']} shard(s) and "
                       f"{report['unreadable_sample_count']} sample(s) (listed in {out}):")
            for item, reason in (list(report["unreadable_shards"].items())
                                 + list(report["unreadable_samples"].items())[:20]):
                click.echo(f"  {item}: {reason}")
    click.echo(f"wrote {out}, {os.path.splitext(out)[0]}.md")


@click.command()
@click.argument("media", nargs=-1, required=True)
@click.option("--checkpoint", required=True)
@click.option("--out", default="predictions", show_default=True,
              help="Folder for predictions.csv (one row per input) and <name>_scores.json / _prediction.png.")
@click.option("--frames", type=click.IntRange(1), default=32, show_default=True, help="Frames sampled per video.")
@click.option("--device", default="auto", show_default=True)
@_one_line_errors
def predict(media: tuple[str, ...], checkpoint: str, out: str, frames: int, device: str) -> None:
    """Score videos or images: fake score per frame, video score, and a picture of the
    faces with the predicted X-ray (or mask / heatmap) and an overlay. Faces are cropped
    with the recipe recorded in the checkpoint (that of its training shards). Every input
    gets a row in predictions.csv, 'no_face' or 'unreadable' when it could not be scored."""
    from trainers.predict import predict_media

    for result in predict_media(checkpoint, list(media), out, frames, device=device):
        if result["status"] == "ok":
            click.echo(f"{result['path']}: video fake score {result['video_score']:.4f} "
                       f"over {len(result['frames'])} frames")
        else:
            click.echo(f"{result['path']}: {result['status']} {result.get('error', '')}".rstrip())
    click.echo(f"wrote {os.path.join(out, 'predictions.csv')}")
