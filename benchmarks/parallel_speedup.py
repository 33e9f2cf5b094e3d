"""Local parallelism: `beam run build_bi_shards` on the shared real videos with one worker
(Beam's default, in-process), with `--direct_num_workers 2 --direct_running_mode
multi_processing`, with one worker in that same multi-process mode (which separates the
cost of the mode from the gain of the second worker), and, as the ceiling this machine
allows, two independent one-worker commands on the two halves of the videos at once (no
runner between them, nothing shared). Rounds alternate the four so a noisy machine hurts
them alike; figures are medians. Target (issue 7): >= 1.6x the one-worker throughput on a
2-core machine.

CPU s: user + system time of the command and its worker processes; cores: CPU s / wall s.
A one-worker run already keeps more than one core busy (video decoding, MediaPipe and
OpenCV run threads of their own), which bounds any speed-up by cores / (its cores).

    python benchmarks/parallel_speedup.py [--videos DIR] [--frames-per-video 32] [--rounds 2]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

DEFAULT_VIDEOS = Path(__file__).resolve().parents[2] / "shared/data/real_videos"
MULTI_PROCESSING = ("--direct_running_mode", "multi_processing")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _command(folder: Path, output: Path, frames: int, *beam_args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", "build_bi_shards", "--input", str(folder),
            "--output", str(output), "--frames-per-video", str(frames), *beam_args]


def run(commands: list[list[str]]) -> dict:
    """Run `commands` at once; wall s, CPU s, samples written and pipeline s (the longest)."""
    cpu, start = _children_cpu(), time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate() for p in processes]
    wall = time.perf_counter() - start
    for process, (out, err) in zip(processes, outputs, strict=True):
        if process.returncode:
            sys.exit(out[-3000:] + err[-3000:])
    logs = [out for out, _ in outputs]
    return {"wall": wall, "cpu": _children_cpu() - cpu,
            "samples": sum(int(re.search(r"samples written\s+(\d+)", log)[1]) for log in logs),
            "pipeline": max(float(re.search(r"wall time\s+([\d.]+) s", log)[1]) for log in logs)}


def halves(videos: list[Path]) -> tuple[list[Path], list[Path]]:
    """Two halves of about equal work: decoded pixels (every frame is decoded) plus a fixed
    cost per video, longest first into the lighter half."""
    def cost(path: Path) -> float:
        capture = cv2.VideoCapture(str(path))
        frames, width, height = (capture.get(p) for p in (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH,
                                                          cv2.CAP_PROP_FRAME_HEIGHT))
        return frames * width * height + 64e6
    parts: tuple[list[Path], list[Path]] = ([], [])
    loads = [0.0, 0.0]
    for video in sorted(videos, key=cost, reverse=True):
        lighter = loads.index(min(loads))
        parts[lighter].append(video)
        loads[lighter] += cost(video)
    return parts


def link_folder(folder: Path, videos: list[Path]) -> Path:
    folder.mkdir()
    for video in videos:
        (folder / video.name).symlink_to(video.resolve())
    return folder


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("shard-*.tar")))).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--frames-per-video", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    videos = sorted(args.videos.glob("*.mp4"))
    if not videos:
        sys.exit(f"no .mp4 videos in {args.videos}")
    frames = args.frames_per_video
    results: dict[str, list[dict]] = {"1 worker": [], "2 workers": [], "1 worker, multi-process": [],
                                      "2 separate commands": []}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        every = link_folder(work / "all", videos)
        first, second = (link_folder(work / f"half{i}", half) for i, half in enumerate(halves(videos)))
        same = True
        for round_ in range(args.rounds):
            out = work / f"round{round_}"
            results["1 worker"].append(run([_command(every, out / "one", frames)]))
            results["2 workers"].append(run([_command(every, out / "two", frames, "--direct_num_workers", "2",
                                                      *MULTI_PROCESSING)]))
            results["1 worker, multi-process"].append(run([_command(every, out / "one_mp", frames,
                                                                    *MULTI_PROCESSING)]))
            results["2 separate commands"].append(run([_command(first, out / "a", frames),
                                                      _command(second, out / "b", frames)]))
            same = same and digest(out / "one") == digest(out / "two")
    print(f"{len(videos)} videos x {frames} frames, {os.cpu_count()} cores, median of {args.rounds} rounds")
    print(f"{'':23} {'command s':>9} {'pipeline s':>10} {'samples/s':>9} {'CPU s':>6} {'cores':>5}")
    median = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    for name, m in median.items():
        print(f"{name:23} {m['wall']:9.1f} {m['pipeline']:10.1f} {m['samples'] / m['wall']:9.1f} "
              f"{m['cpu']:6.1f} {m['cpu'] / m['wall']:5.2f}")
    one = median["1 worker"]["wall"]
    print(f"speed-up, 2 workers:           {one / median['2 workers']['wall']:.2f}x  (target >= 1.6)")
    print(f"ceiling, 2 separate commands:  {one / median['2 separate commands']['wall']:.2f}x")
    one_mp = median["1 worker, multi-process"]["wall"]
    print(f"2 vs 1 worker, both multi-process: {one_mp / median['2 workers']['wall']:.2f}x")
    print(f"identical shards, 1 vs 2 workers, every round: {same}")


if __name__ == "__main__":
    main()
