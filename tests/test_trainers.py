"""Shared training machinery and the Face X-ray family, on CPU with tiny BI shards built
from shared real videos."""
from __future__ import annotations

import csv
import io
import json
import tarfile
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pipelines.cli import main
from shards.sample import encode_sample
from shards.tar import write_tar
from trainers.data import ShardStream, StreamConfig, make_loader
from trainers.failures import FailureLog
from trainers.urls import expand_urls
from trainers.decode import make_decoder
from trainers.families.xray import FaceXrayNet, linear_decay_last_quarter
from trainers.loop import TrainConfig, train

TINY = dict(steps=24, batch_size=6, lr=2e-3, image_size=64, samples_per_epoch=36, workers=2,
            shuffle_buffer=16, eval_every=12, checkpoint_every=12, log_every=4, options={"width": 4})


@pytest.fixture(scope="module")
def bi_shards(shared_data, tmp_path_factory):
    videos = tmp_path_factory.mktemp("videos")
    for name in ["liveportrait__d0.mp4", "liveportrait__d11.mp4", "liveportrait__d12.mp4", "liveportrait__d6.mp4"]:
        (videos / name).symlink_to(shared_data / "real_videos" / name)
    out = tmp_path_factory.mktemp("bi")
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(videos), "--output", str(out),
                                       "--frames-per-video", "5", "--samples-per-shard", "10", "--size", "96"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shards = sorted(str(p) for p in out.glob("shard-*.tar"))
    assert len(shards) == 4      # 40 samples
    return shards[:3], shards[3:]


def _read_log(path):
    with open(path) as stream:
        return list(csv.DictReader(stream))


def _params(path):
    return torch.load(path, weights_only=True)["model"]


def test_loss_falls_and_resume_is_exact(bi_shards, tmp_path):
    train_urls, val_urls = bi_shards
    config = {**TINY, "steps": 48, "checkpoint_every": 3}
    straight = tmp_path / "straight"
    train(TrainConfig("xray", train_urls, str(straight), val_urls, **config))
    losses = [float(r["loss"]) for r in _read_log(straight / "train_log.csv")]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    assert (straight / "best.pt").is_file()

    # the same 48-step run with 2 workers over 3 shards, killed right after its step-9
    # checkpoint (mid-epoch: 3 of 6 batches consumed, mid logging window), then resumed
    interrupted = tmp_path / "interrupted"
    first = TrainConfig("xray", train_urls, str(interrupted), val_urls, **config)
    _train_until(first, 9)
    assert torch.load(interrupted / "last.pt", weights_only=True)["step"] == 9
    train(first, resume=True)
    _assert_same_run(straight, interrupted)


def _assert_same_run(a, b) -> None:
    """Two run folders hold bit-identical final states and identical logged losses."""
    one, two = (torch.load(folder / "last.pt", weights_only=True) for folder in (a, b))
    for name, value in one["model"].items():
        assert torch.equal(value, two["model"][name]), name
    for index, state in one["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, two["optimizer"]["state"][index][name]), (index, name)
    assert one["scheduler"] == two["scheduler"] and torch.equal(one["rng"], two["rng"])
    for log in ("train_log.csv", "val_log.csv"):
        rows = [[{k: v for k, v in row.items() if k != "samples_per_s"} for row in _read_log(folder / log)]
                for folder in (a, b) if (folder / log).is_file()]
        assert len(rows) in (0, 2) and (not rows or rows[0] == rows[1]), log


def test_cli_resume_of_a_shorter_run_equals_the_longer_run(bi_shards, tmp_path):
    """beam train local: 6 steps, against 3 steps then --resume to 6 (constant schedule),
    2 workers, 3 shards, 5 batches an epoch (the resume starts mid-epoch and crosses it)."""
    train_urls, _ = bi_shards
    common = ["--batch-size", "4", "--samples-per-epoch", "20", "--image-size", "64", "--workers", "2",
              "--shuffle-buffer", "8", "--log-every", "1", "--checkpoint-every", "3"]
    train_flags = [f"--train={u}" for u in train_urls] + common
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for out, steps, extra in ((straight, 6, []), (resumed, 3, []), (resumed, 6, ["--resume"])):
        result = CliRunner().invoke(main, ["train", "local", *train_flags, "--out", str(out), "--steps", str(steps),
                                           *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    _assert_same_run(straight, resumed)


def _train_until(config: TrainConfig, stop: int) -> None:
    """Run `config` but kill it (by exception) right after the checkpoint at `stop`."""
    import trainers.loop as loop

    original = loop.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_stop(path, state):
        original(path, state)
        if path.endswith("last.pt") and state["step"] >= stop:
            raise Stop

    loop.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            train(config)
    finally:
        loop.save_checkpoint = original


def test_eval_and_predict_commands(bi_shards, shared_data, tmp_path):
    train_urls, val_urls = bi_shards
    run = tmp_path / "run"
    train(TrainConfig("xray", train_urls, str(run), val_urls, **{**TINY, "steps": 6, "eval_every": 6}))
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(run / "best.pt"), "--shards", val_urls[0],
                                       "--workers", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval.json").read_text())["sets"]["shards"]
    for level in ("frame", "video"):
        assert set(report[level]) >= {"auc", "ap", "eer", "accuracy", "count"}
        assert 0 <= report[level]["accuracy"] <= 1
    assert report["frame"]["count"] == 10 and 0 <= report["frame"]["miou"] <= 1
    assert list(report["per_method"]) == ["bi"]
    assert (run / "eval_scores.csv").read_text().count("\n") == 11
    assert "Model selection used only the training run's --val shards" in (run / "eval.md").read_text()
    with open(run / "eval_scores.csv") as stream:
        rows = list(csv.DictReader(stream))
    groups = {}
    for row in rows:    # a blend is a group of its own videos; a real frame its video's
        assert ("+" in row["video"]) == (row["label"] == "1"), row
        groups.setdefault(row["video"], set()).add(row["label"])
    assert all(len(labels) == 1 for labels in groups.values())
    assert report["video"]["count"] == len(groups) and 0 < report["video"]["count"] < 10

    # every input gets a row; same names in different folders keep their own outputs
    photo = shared_data / "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg"
    other = tmp_path / "elsewhere" / photo.name
    other.parent.mkdir()
    other.symlink_to(shared_data / "real_photos/obama/face_recognition__obama.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    grass = shared_data / "no_face/face_alignment__grass.jpg"
    result = CliRunner().invoke(main, ["predict", str(photo), str(grass), str(other), str(broken),
                                       "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "pred")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "pred" / "predictions.csv")))
    assert [(r["path"], r["status"], r["frames_scored"]) for r in rows] == [
        (str(photo), "ok", "1"), (str(grass), "no_face", "0"), (str(other), "ok", "1"), (str(broken), "unreadable", "0")]
    names = [r["name"] for r in rows]
    assert len(set(names)) == 4 and names[0] != names[2] and names[0].startswith("pypi_matplotlib__grace_hopper-")
    scores = [json.loads((tmp_path / "pred" / f"{name}_scores.json").read_text()) for name in names]
    assert [s["path"] for s in scores] == [r["path"] for r in rows]
    assert scores[0]["video_score"] != scores[2]["video_score"] and scores[1]["video_score"] is None
    import cv2
    assert cv2.imread(str(tmp_path / "pred" / f"{names[0]}_prediction.png")).shape == (64, 3 * 64, 3)
    assert not (tmp_path / "pred" / f"{names[1]}_prediction.png").exists()


def test_checkpoint_records_the_crop_recipe_and_predict_applies_it(bi_shards, shared_data, tmp_path):
    from conftest import read_rgb
    from landmarks.align import align_face
    from landmarks.detect import FaceDetector
    from trainers.decode import resize_square
    from trainers.predict import Predictor
    train_urls, _ = bi_shards
    run = tmp_path / "run"
    train(TrainConfig("xray", train_urls, str(run), **{**TINY, "steps": 1}))
    recipe = torch.load(run / "last.pt", weights_only=True)["crop_recipe"]
    assert {k: v for k, v in recipe.items() if k != "source"} == {
        "size": 96, "margin": 1.3, "face_size": None, "face_margin": None, "min_score": 0.5, "min_face_size": 64.0,
        "max_eye_error": 0.25}    # the BI shards were built with --size 96 (stats.json)
    assert recipe["source"].startswith("stats.json")

    photo = shared_data / "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg"
    predictor = Predictor(str(run / "last.pt"), "cpu")
    seen = []
    model = predictor.model
    predictor.model = lambda images: seen.append(images) or model(images)
    predictor.predict(str(photo), str(tmp_path / "pred"), "photo")
    predictor.close()
    rgb = read_rgb(photo)
    detector = FaceDetector()
    landmarks = detector.detect(rgb)[0][0].landmarks
    detector.close()
    as_trained = resize_square(align_face(rgb, landmarks, 96, 1.3)[0], 64)     # crop at 96 px, then resize
    assert torch.equal(seen[0][0], torch.from_numpy(as_trained).permute(2, 0, 1))
    assert not torch.equal(seen[0][0], torch.from_numpy(align_face(rgb, landmarks, 64, 1.3)[0]).permute(2, 0, 1))


def test_crop_recipe_from_sample_json_over_stats_and_default_with_warning(tmp_path):
    from trainers.recipe import CropRecipe, RecipeWarning, read_recipe
    plain = _synthetic_shards(tmp_path, shards=1, per_shard=1)
    with pytest.warns(RecipeWarning):
        assert read_recipe(plain) == CropRecipe()
    (tmp_path / "stats.json").write_text(json.dumps({"parameters": {"crops": {
        "size": 8, "margin": 1.5, "face_size": 384, "face_margin": 2.0, "detector": {"min_score": 0.7, "min_size": 40.0}}}}))
    assert read_recipe(plain) == CropRecipe(size=8, margin=1.5, face_size=384, face_margin=2.0, min_score=0.7,
                                            min_face_size=40.0, source=f"stats.json of {tmp_path}")
    with_crop = tmp_path / "cropped"
    with_crop.mkdir()
    path = with_crop / "shard-000000.tar"
    with open(path, "wb") as stream:
        write_tar(stream, [encode_sample("syn__v0__000000__f0-real", np.zeros((8, 8, 3), np.uint8), *[np.zeros((8, 8), np.uint8)] * 3,
                                         0, {"crop": {"size": 8, "margin": 2.0}})])
    assert read_recipe([str(path)]) == CropRecipe(size=8, margin=2.0, source=f"sample json of {with_crop}")


def test_a_blend_is_grouped_by_both_of_its_videos(bi_shards):
    from shards.tar import read_tar
    decode = make_decoder(("img.png",), 32)
    with open(bi_shards[0][0], "rb") as stream:
        samples = list(read_tar(stream))
    kinds = set()
    for sample in samples:
        meta = json.loads(sample["json"])
        kinds.add(meta["kind"])
        group = f"{meta['dataset']}/{meta['video']}"
        if meta["kind"] == "blended":
            group += f"+{meta['foreground']['video']}"
            assert meta["foreground"]["video"] != meta["video"]
        assert decode(sample)["video"] == group
    assert kinds == {"real", "blended"}


def test_eval_of_named_sets_writes_one_json_and_one_table(bi_shards, tmp_path):
    train_urls, val_urls = bi_shards
    run = tmp_path / "run"
    train(TrainConfig("xray", train_urls[:2], str(run), val_urls, **{**TINY, "steps": 2, "eval_every": 2}))
    out = tmp_path / "report" / "eval.json"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(run / "best.pt"), "--workers", "0",
                                       "--set", f"heldout={val_urls[0]}", "--set", f"seen={train_urls[2]}",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert list(report["sets"]) == ["heldout", "seen"] and val_urls[0] in report["model_selection"]
    rows = [line.split(" | ") for line in (out.parent / "eval.md").read_text().splitlines()
            if line.startswith("| heldout") or line.startswith("| seen")]
    assert [(r[0], r[1]) for r in rows] == [("| heldout", "all"), ("| heldout", "bi"), ("| seen", "all"), ("| seen", "bi")]
    for row in rows:
        name, method = row[0][2:], row[1]
        metrics = report["sets"][name] if method == "all" else report["sets"][name]["per_method"][method]
        assert row[2] == f"{metrics['frame']['auc']:.4f}" and row[6] == f"{metrics['video']['auc']:.4f}"
        assert int(row[10]) == metrics["frame"]["count"] == 10 and int(row[11].rstrip(" |")) == metrics["video"]["count"]
    scores = list(csv.DictReader(open(out.parent / "eval_scores.csv")))
    assert [r["set"] for r in scores] == ["heldout"] * 10 + ["seen"] * 10
    for wrong in (["--shards", val_urls[0], "--set", f"a={val_urls[0]}"], ["--set", f"a={val_urls[0]}", "--set", f"a={val_urls[0]}"],
                  ["--set", f"a={tmp_path}/none.tar"]):
        result = CliRunner().invoke(main, ["eval", "--checkpoint", str(run / "best.pt"), *wrong])
        assert result.exit_code == 2, (wrong, result.output)


def _synthetic_shards(folder, shards: int, per_shard: int) -> list[str]:
    urls = []
    for s in range(shards):
        samples = [encode_sample(f"syn__v{s}__{i:06d}__f0-real", np.full((8, 8, 3), i % 256, np.uint8),
                                 np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8),
                                 np.zeros((8, 8), np.uint8), 0, {"video": f"v{s}", "method": "real"})
                   for i in range(per_shard)]
        path = folder / f"shard-{s:06d}.tar"
        with open(path, "wb") as stream:
            write_tar(stream, samples)
        urls.append(str(path))
    return urls


def _keys(stream: ShardStream, workers: int) -> list[str]:
    return [k for batch in make_loader(stream, workers, drop_last=False) for k in batch["key"]]


def test_two_ranks_with_two_workers_see_disjoint_samples_covering_the_epoch(tmp_path):
    urls = _synthetic_shards(tmp_path, shards=8, per_shard=5)
    decode = make_decoder(("img.png",), 8)
    config = StreamConfig(tuple(urls), batch_size=5, seed=3, shuffle_buffer=4)
    seen = [_keys(ShardStream(config, decode, rank=rank, world=2), workers=2) for rank in (0, 1)]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(f"syn__v{s}__{i:06d}__f0-real" for s in range(8) for i in range(5))
    # resampled epochs: every rank yields the same number of full batches
    resampled = StreamConfig(tuple(urls), batch_size=4, seed=3, shuffle_buffer=4, samples_per_epoch=56)
    counts = [len(list(make_loader(ShardStream(resampled, decode, rank=r, world=2), 2, drop_last=True)))
              for r in (0, 1)]
    assert counts == [7, 7]


def test_corrupt_members_are_skipped_and_counted_quickly(tmp_path):
    urls = _synthetic_shards(tmp_path, shards=1, per_shard=6)
    broken = tmp_path / "broken.tar"
    with tarfile.open(urls[0]) as source, tarfile.open(broken, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.startswith("syn__v0__000002") and member.name.endswith("img.png"):
                data = b"not a png"
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(open(urls[0], "rb").read()[:3000])
    failures = FailureLog()
    stream = ShardStream(StreamConfig((str(broken), str(truncated)), 2, shuffle_buffer=0),
                         make_decoder(("img.png",), 8), failures=failures)
    start = time.perf_counter()
    keys = _keys(stream, workers=0)
    assert time.perf_counter() - start < 1.0
    # broken.tar gives its 5 good samples; truncated.tar ends inside its first sample
    assert sorted(keys) == [f"syn__v0__{i:06d}__f0-real" for i in (0, 1, 3, 4, 5)]
    summary = failures.summary()
    assert list(summary["unreadable_samples"]) == ["syn__v0__000002__f0-real"]
    assert list(summary["unreadable_shards"]) == [str(truncated)]
    assert summary["unreadable_sample_count"] == summary["unreadable_shard_count"] == 1


def _unreadable_shards(folder, good_url: str) -> list[str]:
    """Three shards nothing can be read from: not a tar, empty, and a tar whose every
    image is corrupt."""
    garbage, empty, broken = folder / "garbage.tar", folder / "empty.tar", folder / "broken.tar"
    garbage.write_bytes(b"this is not a tar file" * 50)
    empty.write_bytes(b"")
    with tarfile.open(good_url) as source, tarfile.open(broken, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            data = b"not a png" if member.name.endswith(".png") else data
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    return [str(garbage), str(empty), str(broken)]


def test_training_on_unreadable_shards_stops_and_names_them(bi_shards, tmp_path):
    from trainers.failures import UnreadableShards
    bad = _unreadable_shards(tmp_path, bi_shards[0][0])
    start = time.perf_counter()
    with pytest.raises(UnreadableShards) as raised:
        train(TrainConfig("xray", bad, str(tmp_path / "run"), **{**TINY, "steps": 4}))
    assert time.perf_counter() - start < 30
    message = str(raised.value)
    assert all(url in message for url in bad), message
    assert "undecodable samples" in message and "ReadError" in message


def test_eval_names_what_it_could_not_read_and_fails_on_nothing(bi_shards, tmp_path):
    train_urls, val_urls = bi_shards
    run = tmp_path / "run"
    train(TrainConfig("xray", train_urls, str(run), **{**TINY, "steps": 1}))
    garbage, _, broken = _unreadable_shards(tmp_path, val_urls[0])
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(run / "last.pt"), "--workers", "2",
                                       "--shards", val_urls[0], "--shards", garbage, "--shards", broken],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval.json").read_text())["sets"]["shards"]
    assert report["frame"]["count"] == 10
    assert list(report["unreadable_shards"]) == [garbage] and report["unreadable_shard_count"] == 1
    from shards.tar import read_tar
    with open(val_urls[0], "rb") as stream:   # broken.tar holds the same keys, every image corrupt
        assert sorted(report["unreadable_samples"]) == sorted(sample["__key__"] for sample in read_tar(stream))
    assert report["unreadable_sample_count"] == 10
    assert "could not read 1 shard(s) and 10 sample(s)" in result.output and garbage in result.output
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(run / "last.pt"), "--shards", garbage])
    assert result.exit_code == 1 and "no sample could be read" in result.output


def test_every_shard_pattern_is_checked_before_the_first_step(bi_shards, tmp_path):
    from trainers.urls import MissingShards, checked_urls
    train_urls, _ = bi_shards
    missing = str(tmp_path / "val-{000000..000001}.tar")
    result = CliRunner().invoke(main, ["train", "xray", "--train", train_urls[0], "--val", missing,
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "--val" in result.output and "val-000001.tar" in result.output
    assert not (tmp_path / "run").exists()
    with pytest.raises(MissingShards) as raised:
        checked_urls("--set celebdf", [train_urls[0], ""])
    assert raised.value.option == "--set celebdf" and raised.value.missing == ["''"]
    assert checked_urls("--train", train_urls) == train_urls


def test_a_batch_mixes_many_shards(tmp_path):
    """10 shards of 1,000 samples, batch 32, the default 1,000-sample buffer, 2 workers:
    the mean over batches of the largest share of one shard (perfect mixing ~22%)."""
    urls = _synthetic_shards(tmp_path, shards=10, per_shard=1000)

    def largest_share(open_shards: int) -> float:
        config = StreamConfig(tuple(urls), batch_size=32, samples_per_epoch=32 * 100, open_shards=open_shards)
        stream = ShardStream(config, lambda sample: {"shard": int(sample["__key__"].split("__")[1][1:])})
        shares = [np.bincount(batch["shard"]).max() / 32 for batch in make_loader(stream, 2, drop_last=True)]
        assert len(shares) == 100
        return float(np.mean(shares))

    mixed, one_at_a_time = largest_share(StreamConfig.open_shards), largest_share(1)
    print(f"largest share of one shard per batch: {mixed:.3f} (8 open shards), {one_at_a_time:.3f} (1)")
    assert mixed <= 0.30 and one_at_a_time > 0.45


def test_face_xray_model_and_schedule():
    model = FaceXrayNet(18)
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert 9.4e6 < backbone < 9.8e6     # HRNetV2-W18 backbone, ~9.6 M parameters
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 256, 256, dtype=torch.uint8))
    assert out["xray_logits"].shape == (1, 1, 256, 256) and out["class_logits"].shape == (1, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    schedule = linear_decay_last_quarter(optimizer, 100)
    factors = [schedule.lr_lambdas[0](s) for s in (0, 74, 75, 90, 100)]
    assert factors == pytest.approx([1.0, 1.0, 1.0, 0.4, 0.0])


def test_expand_urls():
    assert expand_urls("a/shard-{000000..000002}.tar") == [f"a/shard-00000{i}.tar" for i in range(3)]
    assert expand_urls(["x.tar", "y-{0..1}.tar"]) == ["x.tar", "y-0.tar", "y-1.tar"]
