"""`build_forgery_shards` (and `build_bi_shards` on dataset layouts) on a mini FF++ tree
made from the shared, frame-aligned FF++ pairs."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from blending.masks import hull_mask
from conftest import FFPP_ORIGINALS, make_ffpp_tree
from pipelines.cli import main
from shards.sample import decode_png
from test_build_bi_shards import read_samples

FRAMES = 4


def run(command: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["run", command, "--frames-per-video", str(FRAMES), *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def forgery_output(ffpp_tree, tmp_path_factory):
    output = tmp_path_factory.mktemp("forgery")
    run("build_forgery_shards", "--input", str(ffpp_tree), "--split", "all", "--output", str(output))
    return output


@pytest.fixture(scope="module")
def pairs(forgery_output):
    """method -> list of (fake sample, its original's real sample), decoded."""
    samples = read_samples(forgery_output)
    by_method = defaultdict(list)
    for sample in samples.values():
        meta = sample["json"]
        if meta["kind"] == "manipulated":
            by_method[meta["method"]].append((sample, samples[meta["original_key"]]))
    return by_method


def _arrays(sample):
    meta = sample["json"]
    return (decode_png(sample["img.png"]).astype(np.float32), decode_png(sample["mask.png"]),
            decode_png(sample["xray.png"]), np.array(meta["landmarks"], np.float32))


def test_every_fake_frame_has_its_original_and_labels(pairs, forgery_output):
    assert sorted(pairs) == ["Deepfakes", "NeuralTextures"]
    assert all(len(items) == FRAMES for items in pairs.values())
    index = pq.read_table(forgery_output / "index.parquet").to_pylist()
    assert sorted((r["kind"], r["label"]) for r in index) == [("manipulated", 1)] * 8 + [("real", 0)] * 8
    for method, items in pairs.items():
        for fake, real in items:
            assert fake["cls"] == 1 and real["cls"] == 0
            assert fake["json"]["frame"] == real["json"]["frame"]
            assert fake["json"]["method_id"] == {"Deepfakes": 1, "NeuralTextures": 4}[method]
            assert real["json"]["method_id"] == 0
            assert decode_png(real["mask.png"]).max() == 0 and decode_png(real["xray.png"]).max() == 0
            assert fake["hull.png"] == real["hull.png"]  # both cropped with the original's landmarks


def test_pairs_are_pixel_aligned(pairs):
    """Mean |fake - original| outside the face hull stays under 10 grey levels (measured:
    <= 8.5 for NeuralTextures, whose original is far more compressed, <= 2.5 for Deepfakes);
    inside the forgery it is large (Deepfakes' whole inner face, >= 15 measured ~19-27)."""
    for method, items in pairs.items():
        for fake, real in items:
            fake_img, mask, _, landmarks = _arrays(fake)
            real_img = decode_png(real["img.png"]).astype(np.float32)
            difference = np.abs(fake_img - real_img).mean(2)
            hull = hull_mask(landmarks, difference.shape[0]) > 0
            assert difference[~hull].mean() < 10, method
            assert difference[mask > 0].mean() > 2 * difference[~hull].mean(), method
            if method == "Deepfakes":
                assert difference[hull].mean() >= 15
                assert difference[~hull].mean() <= 4


def test_neuraltextures_mask_is_mostly_below_the_nose(pairs):
    shares = []
    for fake, _ in pairs["NeuralTextures"]:
        _, mask, _, landmarks = _arrays(fake)
        rows = np.nonzero(mask)[0]
        shares.append((rows > landmarks[30, 1]).mean())
    assert np.mean(shares) >= 0.75 and min(shares) >= 0.6, shares


def test_deepfakes_mask_covers_the_face(pairs):
    """IoU with the landmark hull >= 0.45: the swap replaces the inner face (eyes to chin),
    not the brows-to-jaw hull edge; measured 0.54-0.61 over 8 frames."""
    for fake, _ in pairs["Deepfakes"]:
        _, mask, xray, landmarks = _arrays(fake)
        hull = hull_mask(landmarks, mask.shape[0]) > 0
        assert ((mask > 0) & hull).sum() / ((mask > 0) | hull).sum() >= 0.45
        m = mask / 255.0
        soft = xray / 255.0
        assert soft.max() > 0.5 and soft[m == 1].mean() < 0.2  # the X-ray marks the mask's boundary


def test_no_video_or_identity_in_two_splits(forgery_output, ffpp_tree, tmp_path):
    index = pq.read_table(forgery_output / "index.parquet").to_pylist()
    bi_out = tmp_path / "bi"
    run("build_bi_shards", "--input", str(ffpp_tree), "--split", "all", "--output", str(bi_out))
    index += pq.read_table(bi_out / "index.parquet").to_pylist()
    for field in ("video", "identity"):
        splits = defaultdict(set)
        for row in index:
            splits[row[field]].add(row["split"])
        assert all(len(s) == 1 for s in splits.values()), field
    assert {r["split"] for r in index} == {"train", "test"}
    blends = [s["json"] for s in read_samples(bi_out).values() if s["json"]["kind"] == "blended"]
    assert blends and all(b["foreground"]["key"].split("__")[1] != b["video"] for b in blends)
    split_of = {s["json"]["video"]: s["json"]["split"] for s in read_samples(bi_out).values()}
    assert all(split_of[b["foreground"]["video"]] == b["split"] for b in blends)
    assert {b["video"].split("-")[0] for b in blends} == {"youtube"}  # BI uses real videos only


def test_real_and_fake_frames_get_identical_processing(shared_data, tmp_path):
    """A 'fake' that decodes to the same frames as its original (its bytes plus 16 zero
    bytes, so it is not refused as the same file) must give byte-identical crops and empty
    masks: real and fake pass through the same decoding, warping and PNG encoding."""
    copy = tmp_path / "copy.mp4"
    copy.write_bytes((shared_data / FFPP_ORIGINALS["004"]).read_bytes() + b"\0" * 16)
    root = make_ffpp_tree(tmp_path / "ffpp", shared_data, {"train": [["004", "982"]]},
                          {"004": FFPP_ORIGINALS["004"]}, {("NeuralTextures", "004_982"): str(copy)})
    run("build_forgery_shards", "--input", str(root), "--output", str(tmp_path / "out"))
    samples = read_samples(tmp_path / "out")
    fakes = [s for s in samples.values() if s["json"]["kind"] == "manipulated"]
    assert len(fakes) == FRAMES
    for fake in fakes:
        real = samples[fake["json"]["original_key"]]
        assert fake["img.png"] == real["img.png"]
        assert decode_png(fake["mask.png"]).max() == 0 and fake["json"]["mask_area"] == 0


def test_forgery_pipeline_needs_a_dataset_with_fakes(shared_data, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.mp4").symlink_to(shared_data / "real_videos/liveportrait__d0.mp4")
    result = CliRunner().invoke(main, ["run", "build_forgery_shards", "--input", str(folder),
                                       "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no manipulated videos" in result.output


def test_celebdf_blends_never_pair_two_clips_of_one_identity(shared_data, tmp_path):
    from test_readers import _celebdf_tree
    root = _celebdf_tree(tmp_path / "celebdf", shared_data, ["1 YouTube-real/00000.mp4"])
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(root), "--split", "train",
                                       "--frames-per-video", "3", "--output", str(tmp_path / "out")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    blends = [s["json"] for s in read_samples(tmp_path / "out").values() if s["json"]["kind"] == "blended"]
    backgrounds = {b["video"] for b in blends}
    assert {"Celeb-real-id0_0000", "Celeb-real-id0_0001"} <= backgrounds
    for blend in blends:
        assert blend["foreground"]["identity"] != blend["identity"]
        if blend["identity"] == "id0":   # id0 has two clips; neither may be the other's foreground
            assert blend["foreground"]["video"] not in {"Celeb-real-id0_0000", "Celeb-real-id0_0001"}


def _write_mask_video(path, frames: int, size: tuple[int, int], box: tuple[int, int, int, int]) -> None:
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = box
    frame[y0:y1, x0:x1] = 255
    for _ in range(frames):
        writer.write(frame)
    writer.release()


def test_official_mask_videos_are_cropped_like_the_frames(shared_data, tmp_path):
    import cv2
    root = make_ffpp_tree(tmp_path / "ffpp", shared_data, {"train": [["004", "982"]]},
                          {"004": FFPP_ORIGINALS["004"]},
                          {("NeuralTextures", "004_982"): "fake_videos/ffpp_c23_NeuralTextures__004_982.mp4"})
    masks = root / "manipulated_sequences/NeuralTextures/masks/videos"
    masks.mkdir(parents=True)
    box = (640, 200, 780, 330)   # frame px, around 004's mouth and chin
    _write_mask_video(masks / "004_982.mp4", 309, (1280, 720), box)
    run("build_forgery_shards", "--input", str(root), "--masks", "official", "--output", str(tmp_path / "out"))
    fakes = [s for s in read_samples(tmp_path / "out").values() if s["json"]["kind"] == "manipulated"]
    assert len(fakes) == FRAMES
    rectangle = np.zeros((720, 1280), np.uint8)
    rectangle[box[1]:box[3], box[0]:box[2]] = 255
    for fake in fakes:
        assert fake["json"]["mask_source"] == "official"
        matrix = np.array(fake["json"]["crop_matrix"], np.float64)
        expected = cv2.warpAffine(rectangle, matrix, (256, 256)) >= 128
        mask = decode_png(fake["mask.png"]) > 0
        assert expected.sum() > 1000
        assert (mask & expected).sum() / (mask | expected).sum() > 0.95  # mp4v coding blurs edges slightly


def test_all_faces_gives_every_face_of_a_fake_its_sample(shared_data, tmp_path):
    """A four-person clip (a group photo, 4 frames) and a brightened copy as its 'fake': with
    --all-faces, each face of each frame gets its fake sample, keyed by the same face
    number, cropped with that face's own transform."""
    import cv2

    frames = [cv2.imread(str(shared_data / "real_photos/_group/facenet_pytorch__multiface.jpg"))] * 4
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, shift in (("original.mp4", 0), ("fake.mp4", 40)):
        writer = cv2.VideoWriter(str(clips / name), cv2.VideoWriter_fourcc(*"mp4v"), 25, frames[0].shape[1::-1])
        for frame in frames:
            writer.write(cv2.add(frame, np.full_like(frame, shift)))
        writer.release()
    tree = make_ffpp_tree(tmp_path / "ffpp", clips, {"train": [["100", "101"]]}, {"100": "original.mp4"},
                          {("Deepfakes", "100_101"): "fake.mp4"})
    output = tmp_path / "out"
    run("build_forgery_shards", "--input", str(tree), "--output", str(output), "--all-faces", "--size", "96",
        "--frames-per-video", "2")
    samples = read_samples(output)
    fakes = sorted(k for k in samples if k.endswith("-fake"))
    reals = sorted(k for k in samples if k.endswith("-real"))
    def original(key: str) -> str:
        return key.replace("__Deepfakes-100_101__", "__youtube-100__").replace("-fake", "-real")

    assert len(reals) == 2 * 4 and sorted(original(k) for k in fakes) == reals
    assert {k.rsplit("__", 1)[1] for k in fakes} == {f"f{i}-fake" for i in range(4)}
    for key in fakes:
        fake, real = (decode_png(samples[k]["img.png"]).astype(int) for k in (key, original(key)))
        assert abs((fake - real).mean() - 40) < 8          # the same face, 40 grey levels brighter
