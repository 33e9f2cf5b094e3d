"""Shared fixtures. Real-data tests read ../shared/data (or $FORGERY_TEST_DATA) and skip
cleanly when it is absent, as in a user's checkout."""
from __future__ import annotations

import json
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
        rgb = read_rgb(path)
        found, _ = detector.detect(rgb)
        assert found, f"no face in {path}"
        crop, landmarks, _ = align_face(rgb, found[0].landmarks)
        faces.append((crop, landmarks, path.parent.name))
    return faces


def make_ffpp_tree(root: Path, data: Path, splits: dict[str, list[list[str]]],
                   originals: dict[str, str], fakes: dict[tuple[str, str], str]) -> Path:
    """A FaceForensics++-shaped tree of symlinks: originals {id: shared path},
    fakes {(method, 'a_b'): shared path}, split files from `splits`."""
    youtube = root / "original_sequences/youtube/c23/videos"
    youtube.mkdir(parents=True)
    for video_id, path in originals.items():
        (youtube / f"{video_id}.mp4").symlink_to(data / path)
    for (method, name), path in fakes.items():
        folder = root / "manipulated_sequences" / method / "c23/videos"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.mp4").symlink_to(data / path)
    (root / "splits").mkdir()
    for split in ("train", "val", "test"):
        (root / "splits" / f"{split}.json").write_text(json.dumps(splits.get(split, [])))
    return root


FFPP_ORIGINALS = {"004": "real_videos/ffpp_c23__004.mp4", "519": "real_videos/ffpp_c23__519.mp4",
                  "100": "real_videos/liveportrait__d0.mp4", "200": "real_videos/liveportrait__d11.mp4",
                  "300": "real_videos/liveportrait__d12.mp4", "400": "real_videos/liveportrait__d10.mp4"}
FFPP_FAKES = {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4",
              ("Deepfakes", "519_515"): "fake_videos/ffpp_c23_Deepfakes__519_515.mp4"}
FFPP_SPLITS = {"train": [["004", "982"], ["100", "200"]], "test": [["519", "515"], ["300", "400"]]}


@pytest.fixture(scope="session")
def ffpp_tree(shared_data, tmp_path_factory) -> Path:
    """Mini FF++: 004 + its NeuralTextures fake and 100, 200 in train; 519 + its Deepfakes
    fake and 300, 400 in test (the shared FF++ pairs, other ids from other real videos)."""
    return make_ffpp_tree(tmp_path_factory.mktemp("ffpp"), shared_data, FFPP_SPLITS,
                          FFPP_ORIGINALS, FFPP_FAKES)


@pytest.fixture(scope="session")
def forgery_shards(ffpp_tree, tmp_path_factory) -> tuple[list[str], list[str]]:
    """Supervised shards from the shared FF++ pairs (both splits): 12 frames of 004 /
    NeuralTextures and 519 / Deepfakes, 96 px crops, 12 samples a shard; (train, val) URLs."""
    from click.testing import CliRunner

    from pipelines.cli import main
    out = tmp_path_factory.mktemp("forgery_shards")
    result = CliRunner().invoke(main, ["run", "build_forgery_shards", "--input", str(ffpp_tree), "--split", "all",
                                       "--frames-per-video", "12", "--size", "96", "--samples-per-shard", "12",
                                       "--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shards = sorted(str(p) for p in out.glob("shard-*.tar"))
    assert len(shards) == 4
    return shards[:3], shards[3:]


@pytest.fixture
def stall_fifo(tmp_path, monkeypatch) -> Path:
    """A FIFO nobody writes, as $STALL_FIFO for the misbehaving decoders of `stalls`. The
    process's shared decoding processes are ended before and after, so the next one starts
    with the test's environment ($STALL_NAMES, $CRASH_NAMES set by the test)."""
    from pipelines.worker import close_decoders

    fifo = tmp_path / "nobody-writes"
    os.mkfifo(fifo)
    monkeypatch.setenv("STALL_FIFO", str(fifo))
    close_decoders()
    yield fifo
    close_decoders()
