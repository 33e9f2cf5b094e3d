"""Shared fixtures. Real-data tests read ../shared/data (or $FORGERY_TEST_DATA) and skip
cleanly when it is absent, as in a user's checkout."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("FORGERY_TEST_DATA",
                                  Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.csv").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def detector():
    from landmarks.detect import FaceDetector

    detector = FaceDetector()
    yield detector
    detector.close()


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# Single-person photos that are not tight face crops (the face is under half the image side).
PORTRAITS = [
    "obama/face_recognition__obama.jpg", "tom_hanks", "kit_harington", "paul_rudd",
    "lin_manuel_miranda", "grace_hopper", "eileen_collins", "tom_cruise", "clapton", "carell",
]


def portrait_paths(root: Path) -> list[Path]:
    """One photo per entry of PORTRAITS (a file, or the first image of a folder)."""
    paths = []
    for entry in PORTRAITS:
        path = root / "real_photos" / entry
        if path.is_dir():
            path = sorted(p for p in path.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[0]
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def aligned_faces(shared_data, detector):
    """(crop (256, 256, 3) uint8, landmarks (68, 2) crop px, identity) of real portraits."""
    from landmarks.align import align_face

    faces = []
    for path in portrait_paths(shared_data):
        found, _ = detector.detect(read_rgb(path))
        assert found, f"no face in {path}"
        crop, landmarks, _ = align_face(read_rgb(path), found[0].landmarks)
        faces.append((crop, landmarks, path.parent.name))
    return faces
