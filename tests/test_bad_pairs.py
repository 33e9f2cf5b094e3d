"""Bad pairs for `build_forgery_shards`: a fake at another size, a fake that is its
original, a fake with fewer frames, an empty fake, a FIFO named like a fake. Each ends in
its row (and samples where usable), and every other video's samples are still written."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import make_ffpp_tree
from pipelines.cli import main
from test_bad_inputs import write_video

ORIGINALS = {"100": "real_videos/liveportrait__d0.mp4", "200": "real_videos/liveportrait__d12.mp4",
             "300": "real_videos/liveportrait__d20.mp4", "400": "real_videos/liveportrait__d11.mp4",
             "004": "real_videos/ffpp_c23__004.mp4"}
SPLITS = {"train": [["100", "200"], ["300", "400"], ["004", "982"], ["500", "600"], ["700", "800"]]}


def _frames(path: Path, count: int, size: tuple[int, int] | None = None) -> list:
    capture, frames = cv2.VideoCapture(str(path)), []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frames.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size else rgb)
    capture.release()
    return frames


def _fake(root: Path, method: str, name: str) -> Path:
    folder = root / "manipulated_sequences" / method / "c23/videos"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.mp4"


@pytest.fixture(scope="module")
def bad_pairs(shared_data, tmp_path_factory):
    root = make_ffpp_tree(tmp_path_factory.mktemp("ffpp"), shared_data, SPLITS, ORIGINALS,
                          {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4"})
    paths = {
        "other_size": write_video(_fake(root, "Deepfakes", "100_200"),
                                  _frames(shared_data / ORIGINALS["100"], 78, (256, 256))),
        "fewer_frames": write_video(_fake(root, "Face2Face", "300_400"), _frames(shared_data / ORIGINALS["300"], 40)),
        "good": _fake(root, "NeuralTextures", "004_982"),
    }
    paths["fake_without_original"] = _fake(root, "FaceSwap", "700_800")    # 700.mp4 was never downloaded
    paths["fake_without_original"].symlink_to(shared_data / "real_videos/liveportrait__d19.mp4")
    paths["image_as_fake"] = _fake(root, "NeuralTextures", "100_200")   # a photo saved under a video's name
    paths["image_as_fake"].write_bytes((shared_data / "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg")
                                       .read_bytes())
    paths["same_as_original"] = _fake(root, "FaceSwap", "200_100")
    paths["same_as_original"].symlink_to(shared_data / ORIGINALS["200"])
    paths["empty"] = _fake(root, "FaceShifter", "400_300")
    paths["empty"].write_bytes(b"")
    paths["fifo"] = _fake(root, "Deepfakes", "400_300")
    os.mkfifo(paths["fifo"])
    youtube = root / "original_sequences/youtube/c23/videos"
    paths["empty_original"] = youtube / "500.mp4"
    paths["empty_original"].write_bytes(b"")
    paths["fake_of_empty_original"] = _fake(root, "Deepfakes", "500_600")
    paths["fake_of_empty_original"].symlink_to(shared_data / "real_videos/liveportrait__d14.mp4")
    grass = cv2.cvtColor(cv2.imread(str(shared_data / "no_face/face_alignment__grass.jpg")), cv2.COLOR_BGR2RGB)
    paths["faceless_original"] = write_video(youtube / "600.mp4", [grass[:256, :256]] * 6)
    paths["fake_of_faceless_original"] = write_video(_fake(root, "Deepfakes", "600_500"),
                                                     [grass[:256, :256][::-1].copy()] * 6)
    output = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(main, ["run", "build_forgery_shards", "--input", str(root), "--output", str(output),
                                       "--frames-per-video", "3", "--size", "96"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    index = pq.read_table(output / "index.parquet").to_pylist()
    failures = pq.read_table(output / "failures.parquet").to_pylist()
    return root, paths, index, failures, result.output


EXPECTED = {
    "other_size": ("pair/size_mismatch", False),
    "image_as_fake": ("pair/size_mismatch", False),
    "fake_without_original": ("read/original_missing", False),
    "fewer_frames": ("pair/frame_count_mismatch", True),
    "same_as_original": ("pair/identical_to_original", False),
    "empty": ("decode/undecodable", False),
    "fifo": ("read/not_regular_file", False),
    "good": (None, True),
    "empty_original": ("decode/undecodable", False),
    "fake_of_empty_original": ("pair/original_unusable", False),
    "faceless_original": ("detect/no_face", False),
    "fake_of_faceless_original": ("pair/no_original_face", False),
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_bad_pair_gets_its_row_and_the_others_their_samples(bad_pairs, case):
    root, paths, index, failures, _ = bad_pairs
    path = paths[case].relative_to(root).as_posix()      # rows name inputs relative to --input
    reason, has_samples = EXPECTED[case]
    rows = {f"{r['stage']}/{r['reason']}" for r in failures if r["path"] == path}
    assert rows == ({reason} if reason else set()), rows
    video = f"{Path(path).parent.parent.parent.name}-{Path(path).stem}"
    if "original" in case and not case.startswith("fake"):
        video = f"youtube-{Path(path).stem}"
    samples = [r for r in index if r["video"] == video]
    assert bool(samples) == has_samples, (case, video)


def test_every_original_keeps_its_real_samples(bad_pairs):
    _, _, index, _, _ = bad_pairs
    assert {r["video"] for r in index if r["kind"] == "real"} == {f"youtube-{i}" for i in ORIGINALS}
    # (500 is empty and 600 has no face: their rows are above)


def test_fewer_frames_are_sampled_from_the_frames_both_have(bad_pairs):
    _, paths, index, failures, _ = bad_pairs
    fakes = [r for r in index if r["video"] == "Face2Face-300_400"]
    frames = sorted(int(r["key"].split("__")[2]) for r in fakes)
    assert frames and max(frames) < 40       # the fake has 40 frames; the original 175
    row = next(r for r in failures if r["reason"] == "frame_count_mismatch")
    assert "fake 40 decodable frames, original 175" in row["detail"]


def test_a_pair_check_that_never_returns_times_out_its_group_only(shared_data, tmp_path, stall_fifo, monkeypatch):
    """The group of an original and its fakes shares one hard time limit: a fake whose frame
    count never comes back (a read blocked for ever in the decoding process, `stalls`)
    ends its group in timeout rows; the other group's samples are written."""
    import stalls

    root = make_ffpp_tree(tmp_path / "ffpp", shared_data, {"train": [["004", "982"], ["519", "515"]]},
                          {"004": ORIGINALS["004"], "519": "real_videos/ffpp_c23__519.mp4"},
                          {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4",
                           ("Deepfakes", "519_515"): "fake_videos/ffpp_c23_Deepfakes__519_515.mp4"})
    monkeypatch.setenv("STALL_NAMES", "004_982.mp4")
    monkeypatch.setattr("pipelines.forgery.decodable_frame_count", stalls.decodable_frame_count)
    output = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "build_forgery_shards", "--input", str(root), "--output", str(output),
                                       "--frames-per-video", "2", "--size", "96", "--input-timeout", "6"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    failures = {(Path(r["path"]).name, r["stage"], r["reason"]) for r in pq.read_table(output / "failures.parquet").to_pylist()}
    assert failures == {("004_982.mp4", "decode", "timeout"), ("004.mp4", "decode", "timeout")}
    index = pq.read_table(output / "index.parquet").to_pylist()
    assert {(r["video"], r["kind"]) for r in index} == {("youtube-519", "real"), ("Deepfakes-519_515", "manipulated")}


def test_official_masks_that_cannot_be_used_give_way_to_differences_with_a_row(shared_data, tmp_path):
    """--masks official: a mask video that does not decode, one at another frame size (its
    masks would not align) and one that ends early each get a row naming the mask video;
    the fake keeps its samples, their masks from differences where the official one is
    missing, and each sample records which it got."""
    from test_build_bi_shards import read_samples
    from test_build_forgery_shards import _write_mask_video

    root = make_ffpp_tree(tmp_path / "ffpp", shared_data, {"train": [["004", "982"], ["519", "515"], ["300", "400"]]},
                          {"004": ORIGINALS["004"], "519": "real_videos/ffpp_c23__519.mp4", "300": ORIGINALS["300"]},
                          {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4",
                           ("Deepfakes", "519_515"): "fake_videos/ffpp_c23_Deepfakes__519_515.mp4"})
    write_video(_fake(root, "Face2Face", "300_400"), _frames(shared_data / ORIGINALS["300"], 175))
    masks = {name: root / "manipulated_sequences" / method / "masks/videos" / f"{name}.mp4"
             for method, name in (("NeuralTextures", "004_982"), ("Deepfakes", "519_515"), ("Face2Face", "300_400"))}
    for path in masks.values():
        path.parent.mkdir(parents=True)
    masks["004_982"].write_bytes(b"not a video")
    _write_mask_video(masks["519_515"], 3, (256, 256), (50, 50, 200, 200))      # the fake is 640 x 480
    _write_mask_video(masks["300_400"], 1, (480, 480), (150, 150, 330, 330))    # one frame of 175
    output = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "build_forgery_shards", "--input", str(root), "--output", str(output),
                                       "--masks", "official", "--frames-per-video", "3", "--size", "96"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {(r["path"], r["stage"], r["reason"]) for r in pq.read_table(output / "failures.parquet").to_pylist()}
    relative = {name: path.relative_to(root).as_posix() for name, path in masks.items()}
    assert rows == {(relative["004_982"], "decode", "undecodable"), (relative["519_515"], "pair", "size_mismatch"),
                    (relative["300_400"], "decode", "truncated")}
    sources: dict[str, dict[int, str]] = {}
    for sample in read_samples(output).values():
        if sample["json"]["kind"] == "manipulated":
            sources.setdefault(sample["json"]["video"], {})[sample["json"]["frame"]] = sample["json"]["mask_source"]
    assert set(sources) == {"NeuralTextures-004_982", "Deepfakes-519_515", "Face2Face-300_400"}
    assert set(sources["NeuralTextures-004_982"].values()) == set(sources["Deepfakes-519_515"].values()) == {"diff"}
    assert sources["Face2Face-300_400"] == {0: "official", 87: "diff", 174: "diff"}


@pytest.mark.parametrize("splits, message", [
    ({"train": '[["004", "982"]', "val": "[]", "test": "[]"}, "train.json is not valid JSON"),
    ({"train": '{"004": "982"}', "val": "[]", "test": "[]"}, "train.json must be a JSON list of id pairs"),
    ({"train": '[["004", "982"]]', "test": "[]"}, "split files not found"),
    ({"train": '[["004", "982"]]', "val": '[["004", "519"]]', "test": "[]"}, "id 004 is in both train.json and "
                                                                            "val.json"),
    ({"train": "[]", "val": "[]", "test": '[["004", "982"]]'}, "no manipulated videos with their originals"),
])
def test_ffpp_split_files_that_cannot_be_used_are_one_line(shared_data, tmp_path, splits, message):
    root = make_ffpp_tree(tmp_path / "ffpp", shared_data, {}, {"004": ORIGINALS["004"]},
                          {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4"})
    for split in ("train", "val", "test"):
        (root / "splits" / f"{split}.json").unlink()
    for split, text in splits.items():
        (root / "splits" / f"{split}.json").write_text(text)
    result = CliRunner().invoke(main, ["run", "build_forgery_shards", "--input", str(root), "--output",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output.strip().splitlines()[-1], result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
