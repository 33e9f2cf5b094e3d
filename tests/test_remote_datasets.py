"""Datasets on a remote file system: FF++ and Celeb-DF in their official layouts on an
object store (the in-memory mem:// one), read and written through Beam FileSystems, give
the very bytes a run from local disk gives, and no output names where the data sat."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import FFPP_FAKES, FFPP_ORIGINALS, FFPP_SPLITS, make_ffpp_tree
from memfs import InMemoryFileSystem
from pipelines.cli import main
from test_build_forgery_shards import _write_mask_video

BUCKET = "mem://bucket"
SMALL = ["--frames-per-video", "2", "--samples-per-shard", "4"]
CELEBDF = {   # Celeb-DF name -> shared video: the FF++ pairs as its syntheses, other real videos
    "Celeb-real/id0_0000.mp4": FFPP_ORIGINALS["004"],
    "Celeb-synthesis/id0_id1_0000.mp4": FFPP_FAKES[("NeuralTextures", "004_982")],
    "Celeb-real/id1_0000.mp4": "real_videos/liveportrait__d12.mp4",
    "Celeb-real/id1_0001.mp4": "real_videos/liveportrait__d12.mp4",     # same bytes: a duplicate to a folder run
    "Celeb-real/id2_0000.mp4": FFPP_ORIGINALS["519"],
    "Celeb-synthesis/id2_id3_0000.mp4": FFPP_FAKES[("Deepfakes", "519_515")],
    "YouTube-real/00000.mp4": "real_videos/liveportrait__d11.mp4",
}
CELEBDF_TEST_LIST = "1 Celeb-real/id2_0000.mp4\n0 Celeb-synthesis/id2_id3_0000.mp4\n"
RUNS = {   # output name -> (dataset, command and options)
    "ffpp_forgery": ("ffpp", ["build_forgery_shards", "--split", "all", "--masks", "official", "--size", "64"]),
    "celebdf_forgery": ("celebdf", ["build_forgery_shards", "--split", "all", "--size", "64"]),
    "ffpp_bi": ("ffpp", ["build_bi_shards", "--split", "train", "--size", "64", "--face-size", "96"]),
    "celebdf_as_folder": ("celebdf", ["extract_faces", "--dataset", "folder", "--face-size", "96",
                                      "--neighbours", "3"]),
}


@pytest.fixture(scope="module")
def trees(shared_data, tmp_path_factory) -> Path:
    """Local trees `ffpp/` (the shared FF++ pairs, splits and an official mask video of
    519_515) and `celebdf/`, as links to the shared data."""
    root = tmp_path_factory.mktemp("datasets")
    ffpp = make_ffpp_tree(root / "ffpp", shared_data, FFPP_SPLITS, FFPP_ORIGINALS, FFPP_FAKES)
    masks = ffpp / "manipulated_sequences/Deepfakes/masks/videos"
    masks.mkdir(parents=True)
    _write_mask_video(masks / "519_515.mp4", 751, (640, 480), (250, 100, 400, 260))
    for name, shared in CELEBDF.items():
        (root / "celebdf" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "celebdf" / name).symlink_to(shared_data / shared)
    (root / "celebdf" / "List_of_testing_videos.txt").write_text(CELEBDF_TEST_LIST)
    return root


def _files(root: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file below `root` (links followed)."""
    found = {}
    for folder, _, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(folder) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def outputs(trees, tmp_path_factory):
    """Each run of RUNS twice: local disk to local disk, and mem:// to mem:// (the trees
    copied into the store). {run: (local files, remote files)}, each {relative path: bytes}."""
    store = InMemoryFileSystem.files
    store.clear()
    for dataset in ("ffpp", "celebdf"):
        for relative, data in _files(trees / dataset).items():
            store[f"{BUCKET}/{dataset}/{relative}"] = data
    local_out = tmp_path_factory.mktemp("out")
    results = {}
    try:
        for name, (dataset, command) in RUNS.items():
            for source, target in ((str(trees / dataset), str(local_out / name)),
                                   (f"{BUCKET}/{dataset}", f"{BUCKET}/out/{name}")):
                result = CliRunner().invoke(main, ["run", *command, "--input", source, "--output", target, *SMALL],
                                            catch_exceptions=False)
                assert result.exit_code == 0, result.output
            prefix = f"{BUCKET}/out/{name}/"
            results[name] = (_files(local_out / name),
                             {p[len(prefix):]: data for p, data in store.items() if p.startswith(prefix)})
    finally:
        store.clear()
    return trees, results


@pytest.mark.parametrize("run", list(RUNS))
def test_a_remote_dataset_gives_the_bytes_of_a_local_one(outputs, run):
    _, results = outputs
    local, remote = results[run]
    assert sorted(local) == sorted(remote)
    records = [name for name in local if name.endswith("run.json")]   # each records its own root
    different = [name for name in local if name not in records and local[name] != remote[name]]
    assert different == [], different
    assert "run.json" in records and {"failures.parquet", "README.md", "stats.json", "preview.png"} <= set(local)
    assert any(name.endswith(".tar") for name in local)


@pytest.mark.parametrize("run", list(RUNS))
def test_outputs_name_inputs_relative_to_the_root_recorded_once(outputs, run):
    trees, results = outputs
    dataset = RUNS[run][0]
    local, remote = results[run]
    for files, root in ((local, str(trees / dataset)), (remote, f"{BUCKET}/{dataset}")):
        for name, data in files.items():
            if name.endswith("run.json"):
                continue
            assert str(trees).encode() not in data and b"mem://" not in data, name
            if name.endswith(".parquet"):
                table = pq.read_table(io.BytesIO(data))
                if "path" in table.column_names:
                    paths = table.column("path").to_pylist()
                    assert all(p and not p.startswith("/") and "://" not in p for p in paths), (name, paths[:3])
                    assert all(p.startswith(("original_sequences/", "manipulated_sequences/", "Celeb-", "YouTube-",
                                             "List_of_testing_videos.txt")) for p in paths), (name, paths[:3])
        record = json.loads(files["run.json"])
        assert record["state"] == "complete" and record["config"]["inputs"]["root"] == root


def test_remote_official_layouts_are_read_whole(outputs):
    """What the runs read from mem://: FF++ with its mask video, Celeb-DF with its test
    list, and the Celeb-DF tree as a plain folder (its duplicate and its text file as rows)."""
    _, results = outputs
    _, ffpp = results["ffpp_forgery"]
    index = pq.read_table(io.BytesIO(ffpp["index.parquet"])).to_pylist()
    assert {(r["video"], r["kind"]) for r in index} == {
        ("youtube-004", "real"), ("youtube-519", "real"),
        ("NeuralTextures-004_982", "manipulated"), ("Deepfakes-519_515", "manipulated")}
    stats = json.loads(ffpp["stats.json"])
    assert stats["by_kind"] == {"manipulated": 4, "real": 4}
    assert "--input INPUT" in stats["command"] and "--output OUTPUT" in stats["command"]
    sources = {}
    for shard in (n for n in ffpp if n.startswith("shard-")):
        with tarfile.open(fileobj=io.BytesIO(ffpp[shard])) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".json"):
                    meta = json.loads(archive.extractfile(member).read())
                    sources[meta["video"]] = meta.get("mask_source", "")
    assert sources["Deepfakes-519_515"] == "official" and sources["NeuralTextures-004_982"] == "diff"

    _, celebdf = results["celebdf_forgery"]
    index = pq.read_table(io.BytesIO(celebdf["index.parquet"])).to_pylist()
    assert {(r["video"], r["split"]) for r in index if r["kind"] == "manipulated"} == {
        ("Celeb-synthesis-id0_id1_0000", "train"), ("Celeb-synthesis-id2_id3_0000", "test")}

    _, folder = results["celebdf_as_folder"]
    failures = pq.read_table(io.BytesIO(folder["failures.parquet"])).to_pylist()
    read_rows = {(r["path"], r["reason"], r["detail"]) for r in failures if r["stage"] == "read"}
    assert read_rows == {("Celeb-real/id1_0001.mp4", "duplicate_content", "same bytes as Celeb-real/id1_0000.mp4"),
                         ("List_of_testing_videos.txt", "unsupported_type", "not a video or image extension")}
    faces = pq.read_table(io.BytesIO(folder["faces.parquet"])).to_pylist()
    assert {r["video"] for r in faces} == {"Celeb-real-id0_0000-mp4", "Celeb-real-id1_0000-mp4",
                                           "Celeb-real-id2_0000-mp4", "Celeb-synthesis-id0_id1_0000-mp4",
                                           "Celeb-synthesis-id2_id3_0000-mp4", "YouTube-real-00000-mp4"}


def test_an_input_that_cannot_be_opened_is_a_row_naming_no_location(tmp_path):
    """An object listed and then gone (or a local file refused) is a read/unreadable row
    with its relative path; the error's own text, which carries the URL or the local path,
    is not copied into the detail."""
    from landmarks.decoder import DecoderProcess
    from pipelines.extract import decode_failure, input_limits, source_frames
    from pipelines.records import Source

    InMemoryFileSystem.files.clear()
    gone = Source(path="videos/gone.mp4", dataset="d", video="v", identity="i", root=f"{BUCKET}/data")
    with DecoderProcess() as decoder:
        (row,) = list(source_frames(gone, 2, None, input_limits(0), decoder))
    assert (row["path"], row["stage"], row["reason"]) == ("videos/gone.mp4", "read", "unreadable")
    assert row["detail"] == "BeamIOError: FileNotFoundError"
    _, detail = decode_failure(PermissionError(13, "Permission denied", str(tmp_path / "x.mp4")), 0)
    assert detail == "PermissionError: Permission denied"


PHOTOS = ("real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg",
          "real_photos/eileen_collins/pypi_skimage__astronaut.png")


def _remote_photos(shared_data, prefix: str) -> None:
    InMemoryFileSystem.files.clear()
    for path in PHOTOS:
        InMemoryFileSystem.files[f"{prefix}/{Path(path).name}"] = (shared_data / path).read_bytes()


def test_prefixes_named_with_glob_characters_are_taken_literally(shared_data):
    """An object-store prefix may hold '[', '*' or '?': the input is listed and the output
    written, carded and refused on a second run as under any other name."""
    _remote_photos(shared_data, f"{BUCKET}/in[2024]")
    out = f"{BUCKET}/out[1]*?"
    try:
        args = ["run", "extract_faces", "--input", f"{BUCKET}/in[2024]", "--output", out, "--face-size", "96"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        written = sorted(p[len(out) + 1:] for p in InMemoryFileSystem.files if p.startswith(out + "/"))
        assert written == ["README.md", "faces.parquet", "failures.parquet", "neighbours.parquet", "preview.png",
                           "run.json", "shard-000000.tar", "stats.json", "units/shard-000000.json"]
        faces = pq.read_table(io.BytesIO(InMemoryFileSystem.files[f"{out}/faces.parquet"])).to_pylist()
        assert sorted(r["path"] for r in faces) == ["pypi_matplotlib__grace_hopper.jpg", "pypi_skimage__astronaut.png"]
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 2 and f"{out} already holds 9 output files of an earlier run" in again.output
    finally:
        InMemoryFileSystem.files.clear()


@pytest.mark.parametrize("output", [f"{BUCKET}/in/out", f"{BUCKET}/in", f"{BUCKET}/in/"])
def test_an_output_inside_a_remote_input_is_refused(shared_data, output):
    _remote_photos(shared_data, f"{BUCKET}/in")
    try:
        result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", f"{BUCKET}/in/", "--output", output])
        assert result.exit_code == 2
        assert result.output.splitlines()[-1] == (f"Error: --output {output.rstrip('/')} is inside --input {BUCKET}/in/:"
                                                  f" a later run would read the outputs as inputs; choose an output "
                                                  f"folder outside it")
        assert sorted(InMemoryFileSystem.files) == [f"{BUCKET}/in/{Path(p).name}" for p in PHOTOS]
    finally:
        InMemoryFileSystem.files.clear()
