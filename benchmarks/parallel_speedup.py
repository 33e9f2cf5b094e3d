"""Local parallelism: `beam run build_bi_shards` (extraction into face shards, then BI
shards) on the shared real videos with one worker (Beam's default, in-process), with
`--direct_num_workers 2 --direct_running_mode multi_processing`, and, as the ceiling this
machine allows, two independent one-worker commands on the two halves of the videos at
once (no runner between them, nothing shared). Rounds alternate the three so a noisy
machine hurts them alike; figures are medians. Target (issue 13): 2 workers at >= 0.9x the
ceiling measured in the same run.

Every configuration writes `--samples-per-shard` samples a shard (default 64): an output
shard is written whole by one worker, so a small dataset needs small shards to spread
the blending over workers (1,344 samples at 32 frames make 21 shards).

With `--runner dask`, each round also runs the command on Beam's DaskRunner against a
dask.distributed LocalCluster of 2 worker processes (one thread each), started once before
the rounds (as a cluster outlives the jobs sent to it), and compares it with the one direct
worker: the figure of issue 17. Its shards must equal the direct runner's.

CPU s: user + system time of the command and its worker processes (Dask workers included);
cores: CPU s / wall s.

    python benchmarks/parallel_speedup.py [--videos DIR] [--frames-per-video 32] [--rounds 2] [--runner dask]
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


def _command(folder: Path, output: Path, frames: int, per_shard: int, *beam_args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", "build_bi_shards", "--input", str(folder),
            "--output", str(output), "--frames-per-video", str(frames), "--samples-per-shard", str(per_shard),
            *beam_args]


def run(commands: list[list[str]], extra_cpu=lambda: 0.0) -> dict:
    """Run `commands` at once; wall s, CPU s, samples written and pipeline s (the longest).
    extra_cpu(): CPU s so far of worker processes that are not the commands' children."""
    cpu, start = _children_cpu() + extra_cpu(), time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate() for p in processes]
    wall = time.perf_counter() - start
    for process, (out, err) in zip(processes, outputs, strict=True):
        if process.returncode:
            sys.exit(out[-3000:] + err[-3000:])
    logs = [out for out, _ in outputs]
    return {"wall": wall, "cpu": _children_cpu() + extra_cpu() - cpu,
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


def _dask_cluster():
    """A LocalCluster of 2 one-thread worker processes, its client, and a function giving
    the CPU s its workers have used so far."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)

    def worker_cpu() -> float:
        def used() -> float:
            import psutil
            times = psutil.Process().cpu_times()
            return times.user + times.system
        return sum(client.run(used).values())
    return cluster, client, worker_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--frames-per-video", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples-per-shard", type=int, default=64)
    parser.add_argument("--runner", choices=["direct", "dask"], default="direct",
                        help="dask: also run on a LocalCluster of 2 Dask worker processes")
    args = parser.parse_args()
    videos = sorted(args.videos.glob("*.mp4"))
    if not videos:
        sys.exit(f"no .mp4 videos in {args.videos}")
    frames, per_shard = args.frames_per_video, args.samples_per_shard
    results: dict[str, list[dict]] = {"1 worker": [], "2 workers": [], "2 separate commands": []}
    cluster = None
    if args.runner == "dask":
        cluster, client, worker_cpu = _dask_cluster()
        results["2 Dask workers"] = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        every = link_folder(work / "all", videos)
        first, second = (link_folder(work / f"half{i}", half) for i, half in enumerate(halves(videos)))
        same = True
        for round_ in range(args.rounds):
            out = work / f"round{round_}"
            results["1 worker"].append(run([_command(every, out / "one", frames, per_shard)]))
            results["2 workers"].append(run([_command(every, out / "two", frames, per_shard,
                                                      "--direct_num_workers", "2", *MULTI_PROCESSING)]))
            results["2 separate commands"].append(run([_command(first, out / "a", frames, per_shard),
                                                      _command(second, out / "b", frames, per_shard)]))
            same = same and digest(out / "one") == digest(out / "two")
            if cluster is not None:
                results["2 Dask workers"].append(run([_command(every, out / "dask", frames, per_shard, "--runner",
                                                               "DaskRunner", "--dask_client_address",
                                                               cluster.scheduler_address)], worker_cpu))
                same = same and digest(out / "one") == digest(out / "dask")
    if cluster is not None:
        client.close()
        cluster.close()
    print(f"{len(videos)} videos x {frames} frames, {os.cpu_count()} cores, median of {args.rounds} rounds")
    print(f"{'':23} {'command s':>9} {'pipeline s':>10} {'samples/s':>9} {'CPU s':>6} {'cores':>5}")
    median = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    for name, m in median.items():
        print(f"{name:23} {m['wall']:9.1f} {m['pipeline']:10.1f} {m['samples'] / m['wall']:9.1f} "
              f"{m['cpu']:6.1f} {m['cpu'] / m['wall']:5.2f}")
    one = median["1 worker"]["wall"]
    speedup, ceiling = one / median["2 workers"]["wall"], one / median["2 separate commands"]["wall"]
    print(f"identical shards, 1 vs 2 workers{' vs Dask' if cluster else ''}, every round: {same}")
    if cluster is not None:
        dask = one / median["2 Dask workers"]["wall"]
        print(f"dask: 2 Dask workers {dask:.2f}x one direct worker; ratio to ceiling {dask / ceiling:.2f}")
    print(f"parallel speed-up: 2 workers {speedup:.2f}x one worker; ceiling {ceiling:.2f}x; "
          f"ratio to ceiling {speedup / ceiling:.2f}")


if __name__ == "__main__":
    main()
