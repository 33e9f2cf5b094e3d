"""Dataset readers: FF++ and Celeb-DF layouts as shipped, official splits, clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.readers import InputError, ReaderOptions, detect_layout, read_sources
from pipelines.readers.celebdf import parse_test_list


def _videos(listing, kind=None):
    return sorted(s.video for s in listing.sources if kind is None or s.kind == kind)


def test_ffpp_is_detected_and_read_by_official_split(ffpp_tree):
    assert detect_layout(str(ffpp_tree)) == "ffpp"
    _, train = read_sources(str(ffpp_tree), None, ReaderOptions(split="train"))
    assert _videos(train, "real") == ["youtube-004", "youtube-100", "youtube-200"]
    (fake,) = train.manipulated()
    assert (fake.video, fake.method, fake.identity, fake.split) == ("NeuralTextures-004_982", "NeuralTextures", "004", "train")
    assert (fake.path, fake.original, fake.mask) == ("manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
                                                     "original_sequences/youtube/c23/videos/004.mp4", "")
    assert fake.root == str(ffpp_tree) and fake.location == str(ffpp_tree / fake.path)   # paths relative to the root
    _, test = read_sources(str(ffpp_tree), "ffpp", ReaderOptions(split="test"))
    assert _videos(test) == ["Deepfakes-519_515", "youtube-300", "youtube-400", "youtube-519"]
    _, everything = read_sources(str(ffpp_tree), "ffpp", ReaderOptions(split="all"))
    assert len(everything.sources) == 8 and everything.skipped == []
    _, only_df = read_sources(str(ffpp_tree), "ffpp", ReaderOptions(split="all", methods=("Deepfakes",)))
    assert [s.method for s in only_df.manipulated()] == ["Deepfakes"]


def test_ffpp_errors_name_what_is_missing(ffpp_tree, tmp_path):
    with pytest.raises(InputError, match=r"c40/videos"):
        read_sources(str(ffpp_tree), "ffpp", ReaderOptions(compression="c40"))
    with pytest.raises(InputError, match="unknown FF.. methods"):
        read_sources(str(ffpp_tree), "ffpp", ReaderOptions(methods=("DeepFaceLab",)))
    with pytest.raises(InputError, match="FaceSwap videos not found"):
        read_sources(str(ffpp_tree), "ffpp", ReaderOptions(methods=("FaceSwap",)))
    bare = tmp_path / "bare"
    (bare / "original_sequences/youtube/c23/videos").mkdir(parents=True)
    with pytest.raises(InputError, match=r"split files not found.*--splits"):
        read_sources(str(bare), None, ReaderOptions())


def test_ffpp_videos_outside_every_split_are_reported(ffpp_tree, tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    for split, pairs in {"train": '[["004", "982"]]', "val": "[]", "test": "[]"}.items():
        (splits / f"{split}.json").write_text(pairs)
    _, listing = read_sources(str(ffpp_tree), "ffpp", ReaderOptions(split="all", splits_dir=str(splits)))
    assert _videos(listing) == ["NeuralTextures-004_982", "youtube-004"]
    youtube = "original_sequences/youtube/c23/videos"
    assert sorted(r["path"] for r in listing.skipped) == [
        "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
        *(f"{youtube}/{i}.mp4" for i in ("100", "200", "300", "400", "519"))]
    assert {r["reason"] for r in listing.skipped} == {"not_in_any_split"}


def _celebdf_tree(root: Path, data: Path, test_lines: list[str], videos_level: bool = False) -> Path:
    files = {"Celeb-real/id0_0000.mp4": "liveportrait__d0.mp4", "Celeb-real/id0_0001.mp4": "liveportrait__d11.mp4",
             "Celeb-real/id1_0000.mp4": "liveportrait__d12.mp4", "Celeb-real/id2_0000.mp4": "liveportrait__d10.mp4",
             "YouTube-real/00000.mp4": "liveportrait__d6.mp4",
             "Celeb-synthesis/id0_id1_0000.mp4": "liveportrait__d0.mp4",
             "Celeb-synthesis/id2_id0_0000.mp4": "liveportrait__d10.mp4"}
    for name, shared in files.items():
        folder, file = name.split("/")
        target = root / folder / ("videos" if videos_level else "") / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(data / "real_videos" / shared)
    (root / "List_of_testing_videos.txt").write_text("\n".join(test_lines) + "\n")
    return root


@pytest.mark.parametrize("videos_level", [False, True])
def test_celebdf_test_list_and_identity_split(shared_data, tmp_path, videos_level):
    root = _celebdf_tree(tmp_path, shared_data, ["1 Celeb-real/id2_0000.mp4", "0 Celeb-synthesis/id2_id0_0000.mp4"],
                         videos_level)
    assert detect_layout(str(root)) == "celebdf"
    _, test = read_sources(str(root), None, ReaderOptions(split="test"))
    assert [(s.video, s.kind, s.identity) for s in test.sources] == [
        ("Celeb-real-id2_0000", "real", "id2"), ("Celeb-synthesis-id2_id0_0000", "manipulated", "id2")]
    level = "/videos" if videos_level else ""
    assert (test.manipulated()[0].path, test.manipulated()[0].original) == (
        f"Celeb-synthesis{level}/id2_id0_0000.mp4", f"Celeb-real{level}/id2_0000.mp4")
    _, train = read_sources(str(root), None, ReaderOptions(split="train"))
    # id0 appears in the test split (as the face of id2_id0_0000), so its training videos are left out
    assert _videos(train) == ["Celeb-real-id1_0000", "YouTube-real-00000"]
    assert sorted(r["path"] for r in train.skipped) == [f"Celeb-real{level}/id0_0000.mp4", f"Celeb-real{level}/id0_0001.mp4",
                                                        f"Celeb-synthesis{level}/id0_id1_0000.mp4"]
    assert {r["reason"] for r in train.skipped} == {"identity_in_test_split"}
    with pytest.raises(InputError, match="no validation split"):
        read_sources(str(root), None, ReaderOptions(split="val"))


def test_celebdf_test_list_parsing(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id1_id0_0007.mp4\n\n1 Celeb-real/id3_0001.mp4\n")
    assert parse_test_list(str(good)) == {"YouTube-real/00170.mp4": 1, "Celeb-synthesis/id1_id0_0007.mp4": 0,
                                          "Celeb-real/id3_0001.mp4": 1}
    for bad in ["2 Celeb-real/id3_0001.mp4", "Celeb-real/id3_0001.mp4", "1 ../../etc/passwd"]:
        (tmp_path / "bad.txt").write_text(bad + "\n")
        with pytest.raises(InputError):
            parse_test_list(str(tmp_path / "bad.txt"))


def test_celebdf_label_contradicting_its_folder_is_an_error(shared_data, tmp_path):
    root = _celebdf_tree(tmp_path, shared_data, ["0 Celeb-real/id2_0000.mp4"])
    with pytest.raises(InputError, match="labels Celeb-real/id2_0000.mp4 as fake"):
        read_sources(str(root), None, ReaderOptions(split="test"))
