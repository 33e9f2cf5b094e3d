"""Bad training inputs end in a named record or a one-line error: labels other than 0/1,
samples with bad or missing members, damaged shards, checkpoints that are not ours or not
this family's, validation sets that cannot be read."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from shards.sample import encode_sample
from shards.tar import write_tar


def _shard(path, labels: list[bytes]) -> str:
    rng = np.random.default_rng(0)
    zeros = np.zeros((32, 32), np.uint8)
    samples = []
    for i, label in enumerate(labels):
        sample = encode_sample(f"ds__v{i}__000000__f0-real", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                               zeros, zeros, zeros, 0, {"dataset": "ds", "video": f"v{i}", "method": "real"})
        sample.members["cls"] = label
        samples.append(sample)
    with open(path, "wb") as stream:
        write_tar(stream, samples)
    return str(path)


def test_labels_other_than_0_or_1_are_skipped_and_recorded(tmp_path):
    shard = _shard(tmp_path / "shard.tar", [b"2", b"-1", b"x"] + [b"0", b"1"] * 4)    # read first, in order
    result = CliRunner().invoke(main, ["train", "patch", "--train", shard, "--out", str(tmp_path / "run"),
                                       "--steps", "2", "--batch-size", "4", "--image-size", "32", "--workers", "0",
                                       "--samples-per-epoch", "8", "--log-every", "1", "--augment", "none",
                                       "--shuffle-buffer", "0", "--open-shards", "1"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "run" / "train_log.csv") as stream:
        assert int(list(csv.DictReader(stream))[-1]["read_failures"]) == 3


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(b"not a checkpoint")
    shard = _shard(tmp_path / "shard.tar", [b"0", b"1"])
    for command in (["eval", "--checkpoint", str(garbage), "--shards", shard],
                    ["predict", "--checkpoint", str(garbage), str(tmp_path / "some.jpg")],
                    ["eval", "--checkpoint", str(tmp_path / "missing.pt"), "--shards", shard]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "checkpoint" in result.output


def _training(steps: int = 2, samples_per_epoch: int = 8) -> list[str]:
    """Options of a short CPU run reading samples in shard order."""
    return ["--steps", str(steps), "--batch-size", "4", "--image-size", "32", "--workers", "0", "--samples-per-epoch",
            str(samples_per_epoch), "--log-every", "1", "--augment", "none", "--shuffle-buffer", "0", "--open-shards",
            "1", "--device", "cpu"]


TRAIN = _training()


def _read_failures(run) -> list[tuple[str, str]]:
    with open(run / "read_failures.csv") as stream:
        return sorted({(row["sample"], row["reason"].split(":")[0]) for row in csv.DictReader(stream)})


def _with_members(path, changes: list[dict], good: int = 8) -> str:
    """A shard of len(changes) + `good` samples whose first ones have their members changed
    (a value None removes the member)."""
    rng = np.random.default_rng(1)
    zeros = np.zeros((32, 32), np.uint8)
    samples = []
    for i in range(len(changes) + good):
        sample = encode_sample(f"ds__v{i}__000000__f0-real", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                               zeros, zeros, zeros, i % 2, {"dataset": "ds", "video": f"v{i}", "method": "real"})
        for member, value in (changes[i] if i < len(changes) else {}).items():
            if value is None:
                del sample.members[member]
            else:
                sample.members[member] = value
        samples.append(sample)
    with open(path, "wb") as stream:
        write_tar(stream, samples)
    return str(path)


def test_samples_with_bad_members_are_skipped_and_named(tmp_path):
    """A grey or 16-bit face, a PNG that does not decode, a label that is not 0/1 (NaN,
    1.0), a sample without its label or metadata (a shard cut short between members): each
    is skipped, counted and named in read_failures.csv with its type; training goes on."""
    import cv2

    grey = cv2.imencode(".png", np.zeros((32, 32), np.uint8))[1].tobytes()
    deep = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint16))[1].tobytes()
    shard = _with_members(tmp_path / "shard.tar", [{"img.png": grey}, {"img.png": deep}, {"img.png": b"\x89PNG..."},
                                                   {"cls": b"nan"}, {"cls": b"1.0"}, {"cls": None},
                                                   {"json": None}])
    result = CliRunner().invoke(main, ["train", "patch", "--train", shard, "--out", str(tmp_path / "run"),
                                       *_training(3, 12)])
    assert result.exit_code == 0, result.output
    assert _read_failures(tmp_path / "run") == [
        ("ds__v0__000000__f0-real", "BadImage"), ("ds__v1__000000__f0-real", "BadImage"),
        ("ds__v2__000000__f0-real", "ValueError"), ("ds__v3__000000__f0-real", "BadLabel"),
        ("ds__v4__000000__f0-real", "BadLabel"), ("ds__v5__000000__f0-real", "MissingMembers"),
        ("ds__v6__000000__f0-real", "MissingMembers")]


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_tar"])
def test_a_damaged_shard_beside_good_ones_is_named_and_training_goes_on(tmp_path, damage):
    good = _shard(tmp_path / "good.tar", [b"0", b"1"] * 4)
    data = open(good, "rb").read()
    bad = tmp_path / f"{damage}.tar"
    bad.write_bytes({"truncated": data[:len(data) // 2 + 100], "empty": b"", "not_a_tar": b"not a tar\n" * 10}[damage])
    result = CliRunner().invoke(main, ["train", "patch", "--train", good, "--train", str(bad), "--out",
                                       str(tmp_path / "run"), *_training(8, 16)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "run" / "read_failures.csv") as stream:
        rows = {(row["shard"], row["reason"].split(":")[0]) for row in csv.DictReader(stream)}
    assert {shard for shard, _ in rows} == {str(bad)}
    assert rows <= {(str(bad), "ReadError"), (str(bad), "MissingMembers")}, rows


def test_run_level_training_errors_are_one_line(tmp_path):
    good = _shard(tmp_path / "good.tar", [b"0", b"1"] * 4)
    faces_like = _with_members(tmp_path / "faces.tar", [{"cls": None, "xray.png": None, "mask.png": None}] * 8, good=0)
    text = tmp_path / "text.tar"
    text.write_text("not a tar\n")
    assert CliRunner().invoke(main, ["train", "patch", "--train", good, "--out", str(tmp_path / "run"),
                                     *TRAIN]).exit_code == 0
    cases = {
        "--val that cannot be read": (["train", "patch", "--train", good, "--val", str(text), "--eval-every", "1",
                                       "--out", str(tmp_path / "v"), *TRAIN], 1, "--val: no sample could be read"),
        "--resume with another family": (["train", "local", "--train", good, "--out", str(tmp_path / "run"),
                                          "--resume", *TRAIN], 1, "is a checkpoint of 'patch', not 'local'"),
        "--resume with other model options": (["train", "patch", "--trunk", "resnet18-layer1", "--train", good,
                                               "--out", str(tmp_path / "run"), "--resume", *TRAIN], 1,
                                              "holds a patch model with other options"),
        "--train matching nothing": (["train", "patch", "--train", str(tmp_path / "none-*.tar"), "--out",
                                      str(tmp_path / "n"), *TRAIN], 2, "not found"),
        "face shards as --train": (["train", "patch", "--train", faces_like, "--out", str(tmp_path / "f"), *TRAIN],
                                   1, "face shards go to --train-faces"),
    }
    for name, (args, code, text_) in cases.items():
        result = CliRunner().invoke(main, args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == code and text_ in lines[-1] and "Traceback" not in result.output, (name, result.output)
