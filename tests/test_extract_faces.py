"""Face shards as the durable intermediate: `beam run extract_faces` on shared real videos
and photos, the neighbour rule, BI shards made from face shards alone, refusals."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from landmarks.neighbours import GRID, normalize_landmarks
from pipelines.cli import main
from shards.sample import decode_png
from shards.tar import read_member, read_tar

VIDEOS = ["liveportrait__d0.mp4", "liveportrait__d11.mp4", "liveportrait__d12.mp4"]
PHOTOS = ["angelina_jolie", "clapton", "paul_rudd"]          # identity folders; 2 images each
FRAMES = 3
ARGS = ["--frames-per-video", str(FRAMES), "--images-per-unit", "4", "--neighbours", "5"]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, ["run", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory) -> Path:
    """3 videos and 6 photos of 3 identities (folder per identity), as links."""
    folder = tmp_path_factory.mktemp("inputs")
    for name in VIDEOS:
        (folder / name).symlink_to(shared_data / "real_videos" / name)
    for person in PHOTOS:
        (folder / person).mkdir()
        photos = sorted(p for p in (shared_data / "real_photos" / person).iterdir()
                        if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:2]
        for photo in photos:
            (folder / person / photo.name).symlink_to(photo)
    return folder


@pytest.fixture(scope="module")
def faces(inputs, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("faces") / "faces"
    invoke("extract_faces", "--input", str(inputs), "--output", str(output), *ARGS)
    return output


def test_one_face_shard_per_unit_in_sorted_input_order(faces, inputs):
    rows = pq.read_table(faces / "faces.parquet").to_pylist()
    # sorted paths: angelina_jolie/*, clapton/* (4 images: unit 0), liveportrait x3 (units 1-3), paul_rudd/* (unit 4)
    assert sorted(p.name for p in faces.glob("shard-*.tar")) == [f"shard-{i:06d}.tar" for i in range(5)]
    by_shard = {}
    for row in rows:
        by_shard.setdefault(row["shard"], set()).add(row["video"])
    assert len(by_shard["shard-000000.tar"]) == 4 and all(v.startswith(("angelina_jolie", "clapton"))
                                                          for v in by_shard["shard-000000.tar"])
    assert [len(by_shard[f"shard-00000{i}.tar"]) for i in (1, 2, 3)] == [1, 1, 1]
    assert all(v.startswith("paul_rudd") for v in by_shard["shard-000004.tar"])
    assert [r["shard"] for r in rows] == sorted(r["shard"] for r in rows)        # rows in shard order
    assert len(rows) == len(VIDEOS) * FRAMES + 2 * len(PHOTOS)


def test_face_samples_hold_the_full_record_and_rows_point_at_their_bytes(faces):
    rows = pq.read_table(faces / "faces.parquet").to_pylist()
    for shard in sorted(faces.glob("shard-*.tar")):
        data = shard.read_bytes()
        stream = io.BytesIO(data)
        shard_rows = [r for r in rows if r["shard"] == shard.name]
        samples = list(read_tar(io.BytesIO(data)))
        assert [s["__key__"] for s in samples] == [r["key"] for r in shard_rows]
        for sample, row in zip(samples, shard_rows, strict=True):
            assert set(sample) == {"__key__", "img.png", "hull.png", "json"}
            assert read_member(stream, (row["image_offset"], row["image_bytes"])) == sample["img.png"]
            assert read_member(stream, (row["json_offset"], row["json_bytes"])) == sample["json"]
            image, hull = decode_png(sample["img.png"]), decode_png(sample["hull.png"])
            assert image.shape == (384, 384, 3) and hull.shape == (384, 384) and set(np.unique(hull)) == {0, 255}
            meta = json.loads(sample["json"])
            for field in ("dataset", "split", "video", "identity", "frame", "path", "score"):
                assert meta[field] == pytest.approx(row[field]), field
            assert meta["frame_size"] == [row["frame_width"], row["frame_height"]]
            assert meta["crop"] == {"size": 384, "margin": 2.0}
            landmarks, mesh = np.array(meta["landmarks"], np.float32), np.array(meta["mesh"], np.float32)
            assert landmarks.shape == (68, 2) and mesh.shape == (478, 2)
            np.testing.assert_array_equal(landmarks.ravel(), np.array(row["landmarks"], np.float32))
            # the mesh reaches the forehead, above every 68-point landmark, and lies on the face
            assert mesh[:, 1].min() < landmarks[:, 1].min() - 10
            assert 0 < mesh.min() and mesh.max() < 384
            # the stored crop is generous: the face box spans about half its side
            side = landmarks.max(0) - landmarks.min(0)
            assert 0.4 * 384 < side.max() < 0.6 * 384


def test_neighbours_follow_the_rule(faces):
    rows = pq.read_table(faces / "faces.parquet").to_pylist()
    table = pq.read_table(faces / "neighbours.parquet").to_pylist()
    assert [n["key"] for n in table] == [r["key"] for r in rows]
    grid = np.round(normalize_landmarks(np.array([r["landmarks"] for r in rows], np.float32).reshape(-1, 68, 2))
                    / GRID)
    for query, entry in enumerate(table):
        mine = rows[query]
        eligible = [j for j, r in enumerate(rows) if r["split"] == mine["split"] and r["video"] != mine["video"]
                    and r["identity"] != mine["identity"]]
        distances = ((grid[eligible] - grid[query]) ** 2).sum(1) * GRID ** 2
        order = np.lexsort((eligible, distances))[:5]               # nearest, ties to the lower row
        assert entry["neighbours"] == [eligible[i] for i in order]
        np.testing.assert_allclose(entry["distances"], distances[order], rtol=1e-6)


def test_dataset_card_of_the_face_shards(faces):
    stats = json.loads((faces / "stats.json").read_text())
    assert stats["faces"] == len(VIDEOS) * FRAMES + 2 * len(PHOTOS) and stats["shards"] == 5
    assert stats["parameters"]["crops"]["face_size"] == 384 and stats["parameters"]["neighbours"] == 5
    assert "extract_faces" in stats["command"]
    assert "face crops of 9 videos" in (faces / "README.md").read_text()
    assert decode_png((faces / "preview.png").read_bytes()).shape[1] == 2 * 128    # image and hull


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("shard-*.tar"))}


def test_bi_shards_from_face_shards_need_no_video(faces, inputs, tmp_path):
    direct = tmp_path / "direct"
    invoke("build_bi_shards", "--input", str(inputs), "--output", str(direct), *ARGS, "--samples-per-shard", "8")
    assert _digests(direct / "faces") == _digests(faces)
    moved = tmp_path / "faces_only"
    shutil.copytree(faces, moved)
    gone = tmp_path / "inputs_moved"
    shutil.move(str(inputs), gone)
    try:
        log = invoke("build_bi_shards", "--faces", str(moved), "--output", str(tmp_path / "blended"),
                     "--samples-per-shard", "8")
    finally:
        shutil.move(str(gone), inputs)
    assert "frames decoded   0" in log
    assert _digests(tmp_path / "blended") == _digests(direct)
    index = pq.read_table(tmp_path / "blended" / "index.parquet").to_pylist()
    assert len(index) == 2 * (len(VIDEOS) * FRAMES + 2 * len(PHOTOS))
    failures = pq.read_table(tmp_path / "blended" / "failures.parquet").to_pylist()
    assert failures == pq.read_table(faces / "failures.parquet").to_pylist()   # extraction's rows carried over


def test_faces_refuses_extraction_options_and_wider_crops(faces, inputs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "build_bi_shards", "--faces", str(faces), "--output", str(tmp_path / "a"),
                                  "--frames-per-video", "8", "--min-score", "0.7"])
    assert result.exit_code == 2 and "--frames-per-video, --min-score" in result.output
    result = runner.invoke(main, ["run", "build_bi_shards", "--faces", str(faces), "--input", str(inputs),
                                  "--output", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--input" in result.output
    result = runner.invoke(main, ["run", "build_bi_shards", "--faces", str(faces), "--output", str(tmp_path / "c"),
                                  "--margin", "2.5"])
    assert result.exit_code == 2 and "--margin 2.5 needs more context" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
