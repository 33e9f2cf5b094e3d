"""Local parallelism: `beam run build_bi_shards` on shared real videos with one worker,
then with `--direct_num_workers 2 --direct_running_mode multi_processing`, in one run.
Target (issue 7): >= 1.6x the one-worker throughput on a 2-core machine.

    python benchmarks/parallel_speedup.py [--videos DIR] [--frames-per-video 32]
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_VIDEOS = Path(__file__).resolve().parents[2] / "shared/data/real_videos"
CLIPS = ["liveportrait__d0.mp4", "liveportrait__d6.mp4", "liveportrait__d10.mp4", "liveportrait__d11.mp4",
         "liveportrait__d12.mp4", "liveportrait__d14.mp4", "liveportrait__d18.mp4", "liveportrait__d19.mp4"]


def run(folder: Path, output: Path, frames: int, *beam_args: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "build_bi_shards", "--input", str(folder),
                             "--output", str(output), "--frames-per-video", str(frames), *beam_args],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])
    samples = int(next(line for line in result.stdout.splitlines() if line.startswith("samples written")).split()[2])
    return seconds, samples


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("shard-*.tar")))).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--frames-per-video", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "input"
        folder.mkdir()
        for clip in CLIPS:
            (folder / clip).symlink_to(args.videos / clip)
        one, samples = run(folder, Path(work) / "one", args.frames_per_video)
        two, _ = run(folder, Path(work) / "two", args.frames_per_video,
                     "--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
        same = digest(Path(work) / "one") == digest(Path(work) / "two")
    print(f"{len(CLIPS)} videos x {args.frames_per_video} frames -> {samples} samples (whole command, start-up included)")
    print(f"1 worker:  {one:6.1f} s  {samples / one:6.1f} samples/s")
    print(f"2 workers: {two:6.1f} s  {samples / two:6.1f} samples/s")
    print(f"speed-up:  {one / two:6.2f}x  (target >= 1.6); identical shards: {same}")


if __name__ == "__main__":
    main()
