"""Online blending speed: samples/s/core of the training loader blending face shards at every
draw (`beam train --train-faces`), against reading pre-built shards of the same faces
(`build_bi_shards --faces`), both decoded to training tensors by one loader process on one
core, in the same run. Also: how many blends of the same face differ between two epochs.
Targets (issues 14, 18): >= 150 samples/s/core online, ratio >= 0.5.

    python benchmarks/online_bi.py FACES [--recipe bi|sbi|mix:bi=0.5,sbi=0.5] [--image-size 256]
        [--samples 600]
"""
from __future__ import annotations

import _single_core  # noqa: F401  (must precede numpy)

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blending.augment import AUGMENTS
from blending.mix import FakeParams, RecipeMix
from trainers.data import ShardStream, StreamConfig
from trainers.decode import Decoder
from trainers.online import OnlineConfig

MEMBERS = ("img.png", "xray.png", "mask.png", "hull.png")


def rate(urls: list[str], decoder: Decoder, samples: int, epoch: int = 0) -> tuple[float, list[dict]]:
    """samples/s of one loader process (no worker processes) over `samples` samples."""
    stream = ShardStream(StreamConfig(tuple(urls), 32, shuffle_buffer=256, samples_per_epoch=samples), decoder,
                         epoch=epoch)
    start = time.process_time()
    decoded = list(stream)
    return len(decoded) / (time.process_time() - start), decoded


def blends_by_face(decoded: list[dict]) -> dict[str, tuple]:
    """face key -> (foreground, mask choices) of its first blend in an epoch."""
    found = {}
    for sample in decoded:
        meta = json.loads(sample["json"])
        if meta["kind"] == "blended":
            found.setdefault(sample["key"].rsplit("-", 1)[0], (meta["foreground"]["key"],
                                                               json.dumps(meta["blend"], sort_keys=True)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("faces", type=Path, help="a face-shard folder (beam run extract_faces)")
    parser.add_argument("--recipe", default="bi")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=600)
    args = parser.parse_args()
    face_urls = [str(p) for p in sorted(args.faces.glob("shard-*.tar"))]
    if not face_urls:
        sys.exit(f"no face shards in {args.faces}")
    size = args.image_size
    online = OnlineConfig(0.5, FakeParams(), RecipeMix.parse(args.recipe), size=size)
    decoder = Decoder(MEMBERS, size, augment=AUGMENTS["default"], online=online)
    with tempfile.TemporaryDirectory() as work:
        built = Path(work) / "shards"
        subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "build_bi_shards", "--faces", str(args.faces),
                        "--output", str(built), "--recipe", args.recipe, "--size", str(size),
                        "--samples-per-shard", "200"], check=True, capture_output=True)
        offline_urls = [str(p) for p in sorted(built.glob("shard-*.tar"))]
        rate(face_urls, decoder, 64)                               # warm-up: libraries, deformation grids
        online_rate, first = rate(face_urls, decoder, args.samples)
        offline_rate, _ = rate(offline_urls, Decoder(MEMBERS, size, augment=AUGMENTS["default"]), args.samples)
        _, second = rate(face_urls, decoder, args.samples, epoch=1)
    one, two = blends_by_face(first), blends_by_face(second)
    common = one.keys() & two.keys()
    differ = 100.0 * sum(one[k] != two[k] for k in common) / max(len(common), 1)
    print(f"{len(face_urls)} face shards, recipe {args.recipe}, {size} px, {args.samples} samples a run, "
          f"members {', '.join(MEMBERS)}, augmentation on; {len(common)} faces blended in both epochs")
    print(f"online BI: {online_rate:.0f} samples/s/core; offline shards: {offline_rate:.0f} samples/s/core; "
          f"ratio {online_rate / offline_rate:.2f}; epochs differ {differ:.0f}%")


if __name__ == "__main__":
    main()
