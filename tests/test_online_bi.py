"""Online BI: training samples blended from face shards at every draw, deterministic,
regenerable from their json, different every epoch, augmented alike for real and fake."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blending.augment import AUGMENTS, apply_augment
from pipelines.cli import main
from shards.sample import decode_png
from shards.tar import read_tar
from test_trainers import _assert_same_run
from trainers.data import ShardStream, StreamConfig
from trainers.decode import Decoder, resize_square
from trainers.online import FaceLibrary, OnlineConfig, online_sample, regenerate
from trainers.urls import open_url

VIDEOS = ["liveportrait__d0.mp4", "liveportrait__d11.mp4", "liveportrait__d12.mp4", "video_retalking__face1.mp4"]


@pytest.fixture(scope="module")
def faces(shared_data, tmp_path_factory) -> Path:
    """Face shards of 4 shared real videos, 6 frames each."""
    videos = tmp_path_factory.mktemp("videos")
    for name in VIDEOS:
        (videos / name).symlink_to(shared_data / "real_videos" / name)
    out = tmp_path_factory.mktemp("faces") / "faces"
    result = CliRunner().invoke(main, ["run", "extract_faces", "--input", str(videos), "--output", str(out),
                                       "--frames-per-video", "6"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def pattern(faces: Path) -> str:
    return str(faces / "shard-{000000..000003}.tar")


def train(faces: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(main, ["train", "local", "--train-faces", pattern(faces), "--out", str(out),
                                       "--batch-size", "6", "--image-size", "64", "--samples-per-epoch", "24",
                                       "--log-every", "1", "--checkpoint-every", "2", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_two_training_steps_online_then_exact_resume(faces, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(faces, straight, "--steps", "6", "--workers", "2")
    losses = [float(r.split(",")[3]) for r in (straight / "train_log.csv").read_text().splitlines()[1:]]
    assert len(losses) == 6 and all(np.isfinite(losses))
    train(faces, resumed, "--steps", "2", "--workers", "2")
    train(faces, resumed, "--steps", "6", "--workers", "2", "--resume")
    _assert_same_run(straight, resumed)


@pytest.mark.parametrize("recipe", ["bi", "sbi"])
def test_dumped_samples_regenerate_exactly_from_their_json(faces, tmp_path, recipe):
    train(faces, tmp_path / "run", "--steps", "1", "--image-size", "256", "--batch-size", "12",
          "--dump-samples", "12", "--workers", "0", "--recipe", recipe)
    dumped = list(read_tar((tmp_path / "run" / "dumped_samples.tar").open("rb")))
    assert len(dumped) == 12
    kinds = {json.loads(s["json"])["kind"] for s in dumped}
    assert kinds == {"real", "blended"}
    library = FaceLibrary(str(faces), open_url)
    for sample in dumped:
        meta = json.loads(sample["json"])
        made = regenerate(meta, library)
        again = apply_augment(meta["augment"], made.image, (made.mask, made.xray, made.hull))
        np.testing.assert_array_equal(resize_square(again.image, 256), decode_png(sample["img.png"]))
        masks = [(m, mask) for m, mask in zip(("mask.png", "xray.png", "hull.png"), again.masks, strict=True)
                 if m in sample]
        assert masks                                            # the family reads at least one
        for member, mask in masks:
            np.testing.assert_array_equal(mask, decode_png(sample[member]), err_msg=f"{meta['key']} {member}")
        if meta["kind"] == "blended":
            assert meta["method"] == recipe and meta["draw"]["epoch"] == 0
            assert {"hull", "deform_std", "grid_targets", "morph_kernel", "blur_kernel", "opacity"} <= set(meta["blend"])
            fg = meta["foreground"]
            if recipe == "bi":
                assert fg["video"] != meta["video"] and fg["identity"] != meta["identity"]
            else:                                   # a self-blend's foreground is the face itself
                assert (fg["key"], fg["video"], fg["identity"], fg["frame"]) == (
                    meta["key"].rsplit("-", 1)[0], meta["video"], meta["identity"], meta["frame"])
                assert meta["method_id"] == 9 and {"swap", "rgb_shift", "shift", "scale"} <= set(meta["blend"])


def _epoch(faces: Path, epoch: int, seed: int = 0) -> list[dict]:
    urls = tuple(str(p) for p in sorted(faces.glob("shard-*.tar")))
    decoder = Decoder(("img.png", "mask.png"), 64, seed=seed, augment=AUGMENTS["default"], online=OnlineConfig())
    stream = ShardStream(StreamConfig(urls, 4, seed, shuffle_buffer=8, samples_per_epoch=96), decoder, epoch=epoch)
    return list(stream)


def test_same_seed_same_samples_and_epochs_blend_anew(faces):
    first, again = _epoch(faces, 0), _epoch(faces, 0)
    assert [s["key"] for s in first] == [s["key"] for s in again]
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"]) for a, b in zip(first, again))
    other_seed = _epoch(faces, 0, seed=1)
    assert [s["key"] for s in other_seed] != [s["key"] for s in first]
    fakes = sum(int(s["label"]) for s in first)
    assert 0.3 * len(first) < fakes < 0.7 * len(first)            # --fake-fraction 0.5
    # the blends of one face in two epochs: another foreground or another mask
    blends = [{}, {}]
    for index, epoch in enumerate((_epoch(faces, 0), _epoch(faces, 1))):
        for sample in epoch:
            meta = json.loads(sample["json"])
            if meta["kind"] == "blended":
                face = sample["key"].rsplit("-", 1)[0]
                blends[index].setdefault(face, (meta["foreground"]["key"], meta["blend"]["grid_targets"]))
    common = blends[0].keys() & blends[1].keys()
    assert len(common) >= 10
    assert sum(blends[0][f] != blends[1][f] for f in common) >= 0.9 * len(common)


def test_augmentation_choices_do_not_depend_on_the_label(faces):
    library = FaceLibrary(str(faces), open_url)
    raw = next(read_tar((faces / "shard-000000.tar").open("rb")))
    draw = (0, 0, 5)
    real = online_sample(raw, library, OnlineConfig(fake_fraction=0.0), 0, draw)
    fake = online_sample(raw, library, OnlineConfig(fake_fraction=1.0), 0, draw)
    assert (real.label, fake.label) == (0, 1)
    decoder = Decoder(("img.png",), 64, augment=AUGMENTS["default"], online=OnlineConfig())
    choices = []
    for fraction in (0.0, 1.0):
        decoder.online = OnlineConfig(fake_fraction=fraction)
        sample = {**raw, "__draw__": draw, "__url__": str(faces / "shard-000000.tar")}
        choices.append(json.loads(decoder(sample)["json"])["augment"])
    assert choices[0] == choices[1]


def test_offline_mix_of_recipes(faces, tmp_path):
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--faces", str(faces), "--output", str(tmp_path / "mix"),
                                       "--recipe", "mix:bi=0.5,sbi=0.5", "--fakes-per-real", "2"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "mix" / "stats.json").read_text())
    assert stats["by_method"]["real"] == 24 and stats["by_method"]["bi"] + stats["by_method"]["sbi"] == 48
    assert 12 <= stats["by_method"]["sbi"] <= 36
    again = CliRunner().invoke(main, ["run", "build_bi_shards", "--faces", str(faces), "--output", str(tmp_path / "again"),
                                      "--recipe", "mix:bi=0.5,sbi=0.5", "--fakes-per-real", "2"], catch_exceptions=False)
    assert again.exit_code == 0
    assert (tmp_path / "mix" / "shard-000000.tar").read_bytes() == (tmp_path / "again" / "shard-000000.tar").read_bytes()


def test_paired_sbi_draws_give_a_real_face_and_its_self_blend_side_by_side(faces, tmp_path):
    train(faces, tmp_path / "run", "--steps", "1", "--image-size", "256", "--batch-size", "8", "--recipe", "sbi",
          "--paired", "--dump-samples", "8", "--workers", "0")
    dumped = list(read_tar((tmp_path / "run" / "dumped_samples.tar").open("rb")))
    library = FaceLibrary(str(faces), open_url)
    for real, fake in zip(dumped[::2], dumped[1::2], strict=True):
        real_meta, fake_meta = json.loads(real["json"]), json.loads(fake["json"])
        assert (real["cls"], fake["cls"]) == (b"0", b"1") and real_meta["target_of"]["key"] == fake_meta["key"]
        assert real_meta["augment"] == fake_meta["augment"]             # one draw, one augmentation
        made = {}
        for sample, meta in ((real, real_meta), (fake, fake_meta)):
            made[meta["kind"]] = regenerate(meta, library)
            again = apply_augment(meta["augment"], made[meta["kind"]].image, (made[meta["kind"]].mask,))
            np.testing.assert_array_equal(again.image, decode_png(sample["img.png"]))
        outside = made["blended"].mask == 0        # before augmentation (JPEG mixes 8 x 8 blocks) they agree there
        np.testing.assert_array_equal(made["real"].image[outside], made["blended"].image[outside])
    refused = CliRunner().invoke(main, ["train", "local", "--train-faces", pattern(faces), "--out", str(tmp_path / "x"),
                                        "--paired", "--recipe", "bi"])
    assert refused.exit_code == 2 and "--recipe sbi" in refused.output
