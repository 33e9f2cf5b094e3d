"""Peak memory of face extraction on a 4K video: runs `beam run build_bi_shards` (one
in-process worker) on a generated 3840 x 2160 video in a child process and reports the
child's peak RSS. Target (issue 6): under 1.5 GB per worker.

    python benchmarks/extraction_memory.py [--frames 120] [--frames-per-video 32]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data


def write_4k_video(path: Path, frames: int) -> None:
    """A 4K mp4v video: the scikit-image astronaut portrait, drifting across the frame."""
    face = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (1600, 1600))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (3840, 2160))
    for index in range(frames):
        canvas = np.full((2160, 3840, 3), 40, np.uint8)
        left = 200 + index * 10
        canvas[280:1880, left:left + 1600] = face
        writer.write(canvas)
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="frames in the generated video")
    parser.add_argument("--frames-per-video", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "input"
        folder.mkdir()
        video = folder / "uhd.mp4"
        write_4k_video(video, args.frames)
        size_mb = video.stat().st_size / 1e6
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "build_bi_shards", "--input",
                                 str(folder), "--output", str(Path(work) / "out"), "--frames-per-video",
                                 str(args.frames_per_video)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if result.returncode != 0:
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])
    faces = next(line for line in result.stdout.splitlines() if line.startswith("faces kept"))
    print(f"4K video: {args.frames} frames, {size_mb:.0f} MB; "
          f"{args.frames_per_video} sampled; {faces.strip()}; {seconds:.1f} s")
    print(f"peak RSS of the pipeline process: {peak_mb:.0f} MB (target < 1500 MB)")


if __name__ == "__main__":
    main()
