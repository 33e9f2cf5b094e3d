"""Detection-quality smoke benchmark: train on BI, test on real forgeries.

Builds BI training shards from the shared real videos except the FF++ originals (those
are the test set's reals), BI shards of a few other real videos held out from training,
and forgery test shards from the shared FF++ originals and their fakes (and from a full
FF++ tree given with --ffpp, test split). Trains one family on the BI shards and prints
frame- and video-level AUC per manipulation method and the AUC on the held-out BI videos;
writes everything to <work>/quality.json.

    python benchmarks/detection_quality.py --quick [--family xray] [--ffpp ROOT] [--work DIR]

--quick (2 CPU cores, under 20 minutes): 12 frames a video, 128 px crops, HRNet-W8,
batch 16, 500 steps. Without it: 32 frames, 256 px, HRNet-W18, batch 32, 5,000 steps.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import sys
from pathlib import Path

DATA = Path(os.environ.get("FORGERY_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import make_ffpp_tree  # noqa: E402 - the FF++ layout of links, shared with the tests

FFPP_ORIGINALS = {"004": "real_videos/ffpp_c23__004.mp4", "519": "real_videos/ffpp_c23__519.mp4"}
FFPP_FAKES = {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4",
              ("Deepfakes", "519_515"): "fake_videos/ffpp_c23_Deepfakes__519_515.mp4"}
HELD_OUT = ("liveportrait__d20.mp4", "video_retalking__face5.mp4", "facenet_pytorch__video.mp4",
            "sadtalker__WDA_AlexandriaOcasioCortez_000.mp4")
SETTINGS = {True: dict(frames=12, size=128, width=8, batch=16, steps=500, lr=1e-3),
            False: dict(frames=32, size=256, width=18, batch=32, steps=5000, lr=2e-4)}


def _beam(*args: str) -> None:
    from pipelines.cli import main
    main(list(args), standalone_mode=False)


def _shards(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("shard-*.tar"))


def _link(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).symlink_to(DATA / "real_videos" / name)
    return folder


def _ffpp_tree(root: Path) -> Path:
    """The shared FF++ pairs as an FF++-shaped tree, every pair in the test split."""
    pairs = [name.split("_") for _, name in FFPP_FAKES]
    return make_ffpp_tree(root, DATA, {"test": pairs}, FFPP_ORIGINALS, FFPP_FAKES)


def build_data(work: Path, settings: dict, ffpp: str | None) -> dict[str, list[str]]:
    """{'train': BI shards, 'heldout_bi': BI shards of held-out videos, 'ffpp_shared':
    forgery shards of the shared pairs[, 'ffpp': forgery shards of --ffpp]}."""
    common = ["--frames-per-video", str(settings["frames"]), "--size", str(settings["size"]),
              "--samples-per-shard", "100"]
    videos = sorted(p.name for p in (DATA / "real_videos").glob("*.mp4"))
    training = [v for v in videos if not v.startswith("ffpp_") and v not in HELD_OUT]
    sets = {}
    for name, chosen in (("train", training), ("heldout_bi", list(HELD_OUT))):
        _beam("run", "build_bi_shards", "--input", str(_link(work / f"{name}_videos", chosen)),
              "--output", str(work / name), *common)
        sets[name] = _shards(work / name)
    forgery = [("ffpp_shared", str(_ffpp_tree(work / "ffpp_tree")))] + ([("ffpp", ffpp)] if ffpp else [])
    for name, root in forgery:
        _beam("run", "build_forgery_shards", "--input", root, "--split", "test", "--output", str(work / name),
              *common)
        sets[name] = _shards(work / name)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 CPU cores, under 20 minutes")
    parser.add_argument("--family", default="xray", help="detector family (xray, local, ...)")
    parser.add_argument("--ffpp", default=None, help="a full FF++ tree: its test split is evaluated too")
    parser.add_argument("--work", default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--steps", type=int, default=None, help="override the training length")
    args = parser.parse_args()
    settings = SETTINGS[args.quick] | ({"steps": args.steps} if args.steps else {})
    work = Path(args.work or tempfile.mkdtemp(prefix="detection-quality-"))
    work.mkdir(parents=True, exist_ok=True)

    from trainers.families import get_family
    from trainers.loop import TrainConfig, evaluate, pick_device, train
    from trainers.predict import load_model

    start = time.perf_counter()
    sets = build_data(work, settings, args.ffpp)
    built = time.perf_counter()
    options = {"width": settings["width"]} if args.family == "xray" else {}
    config = TrainConfig(args.family, sets["train"], str(work / "run"), steps=settings["steps"],
                         batch_size=settings["batch"], lr=settings["lr"], image_size=settings["size"],
                         workers=2, log_every=50, checkpoint_every=settings["steps"], options=options)
    train(config)
    trained = time.perf_counter()
    device = pick_device("auto")
    family, model, state = load_model(str(work / "run" / "last.pt"), device)
    reports = {name: evaluate(model, family, urls, settings["size"], 32, 2, device)
               for name, urls in sets.items() if name != "train"}
    for report in reports.values():
        report.pop("samples")
    timing = {"build_s": built - start, "train_s": trained - built, "eval_s": time.perf_counter() - trained}
    (work / "quality.json").write_text(json.dumps({"settings": settings, "family": get_family(args.family).name,
                                                   "timing": timing, "sets": reports}, indent=2))
    print(f"{args.family}, {settings}; build {timing['build_s']:.0f} s, train {timing['train_s']:.0f} s, "
          f"eval {timing['eval_s']:.0f} s")
    print(f"{'set / method':34}{'frame AUC':>10}{'video AUC':>10}{'samples':>9}{'videos':>8}")
    for name, report in reports.items():
        rows = [(name, report)] + [(f"  {method}", m) for method, m in report["per_method"].items()]
        for label, m in rows:
            print(f"{label:34}{m['frame']['auc']:10.4f}{m['video']['auc']:10.4f}{m['frame']['count']:9d}"
                  f"{m['video']['count']:8d}")
    print(f"held-out BI frame AUC: {reports['heldout_bi']['frame']['auc']:.4f}; results in {work / 'quality.json'}")


if __name__ == "__main__":
    main()
