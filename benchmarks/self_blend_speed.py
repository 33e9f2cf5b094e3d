"""Self-blend (SBI) cost on one core: ms per `blending.sbi.self_blend` of an aligned crop in
memory (mask, deformation, blur, colour and frequency alteration, source warp, blend,
X-ray, hull), at each crop side asked for. No decoding or encoding.

    python benchmarks/self_blend_speed.py [--sizes 256 380] [--samples 300] [--repeat 5]

Each figure is the best of --repeat passes, in CPU time of this (one-thread) process, so
a busy neighbour on a shared machine mostly drops out (cache contention remains).
"""
from __future__ import annotations

import _single_core  # noqa: F401  (must precede numpy)

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from blending.sbi import SbiParams, self_blend
from landmarks.align import align_face, apply_affine, frame_valid_map
from landmarks.detect import FaceDetector


def faces(paths: list[Path], size: int) -> list[tuple]:
    """(crop, landmarks, mesh, valid) of the largest face of each photo, crop px."""
    detector, found = FaceDetector(), []
    for path in paths:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        detected, _ = detector.detect(rgb)
        if detected:
            crop, landmarks, matrix = align_face(rgb, detected[0].landmarks, size)
            found.append((crop, landmarks, apply_affine(matrix, detected[0].mesh),
                          frame_valid_map(matrix, rgb.shape[1::-1], size)))
    detector.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 380])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/real_photos")
    args = parser.parse_args()
    paths = sorted(args.photos.glob("*/*.jpg"))[:20]
    for size in args.sizes:
        crops = faces(paths, size)
        rng, params = np.random.default_rng(0), SbiParams()
        self_blend(*crops[0][:2], rng, params, mesh=crops[0][2], valid=crops[0][3])  # warm the grid cache
        best = np.inf
        for _ in range(args.repeat):
            start = time.process_time()
            for i in range(args.samples):
                crop, landmarks, mesh, valid = crops[i % len(crops)]
                self_blend(crop, landmarks, rng, params, mesh=mesh, valid=valid)
            best = min(best, (time.process_time() - start) / args.samples)
        print(f"{size} px: {1000 * best:.2f} ms per self-blend ({len(crops)} faces, best of {args.repeat}, CPU time)")


if __name__ == "__main__":
    main()
