"""Face extraction throughput on one core: sampled frames/s on a 720p video, end to end
(decode by grab/retrieve, detection, face mesh, alignment and crop). Target (issue 2):
>= 30 frames/s/core.

    python benchmarks/face_extraction.py [VIDEO] [--frames 32]
"""
from __future__ import annotations

import _single_core  # noqa: F401  (must precede numpy)

import argparse
import time
from pathlib import Path

from landmarks.align import align_face
from landmarks.detect import FaceDetector
from landmarks.frames import read_frames

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared/data/real_videos/ffpp_c23__004.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    parser.add_argument("--frames", type=int, default=32, help="frames sampled from the video")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    detector = FaceDetector()
    best = 0.0
    for _ in range(args.repeat):
        start = time.perf_counter()
        frames = faces = 0
        for _, rgb in read_frames(args.video, args.frames):
            frames += 1
            for face in detector.detect(rgb)[0]:
                align_face(rgb, face.landmarks)
                faces += 1
        best = max(best, frames / (time.perf_counter() - start))
    detector.close()
    print(f"{args.video}: {frames} frames sampled, {faces} faces")
    print(f"face extraction: {best:.1f} frames/s/core (best of {args.repeat}; target >= 30)")


if __name__ == "__main__":
    main()
