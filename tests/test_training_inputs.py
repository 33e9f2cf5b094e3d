"""Bad training inputs end in a named record or a one-line error: labels other than 0/1,
checkpoints that are not ours."""
from __future__ import annotations

import csv

import numpy as np
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
