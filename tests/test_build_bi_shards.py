"""`beam run build_bi_shards` end to end on real shared videos: shards, tables, determinism."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from click.testing import CliRunner

from pipelines.cli import main
from shards.sample import MEMBERS, decode_png

VIDEOS = ["liveportrait__d0.mp4", "liveportrait__d11.mp4", "liveportrait__d12.mp4"]
FRAMES = 4


def build(input_dir: Path, output: Path, *extra: str) -> str:
    result = CliRunner().invoke(main, [
        "run", "build_bi_shards", "--input", str(input_dir), "--output", str(output),
        "--frames-per-video", str(FRAMES), "--samples-per-shard", "10", *extra],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def video_dir(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name in VIDEOS:
        (folder / name).symlink_to(shared_data / "real_videos" / name)
    return folder


@pytest.fixture(scope="module")
def run_seed0(video_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("seed0")
    return output, build(video_dir, output, "--seed", "0")


def read_samples(output: Path) -> dict[str, dict]:
    urls = sorted(str(p) for p in output.glob("shard-*.tar"))
    return {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False).decode()}


def shard_digests(output: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(output.glob("shard-*.tar"))}


def test_shards_hold_every_member_and_match_the_index(run_seed0):
    output, log = run_seed0
    samples = read_samples(output)
    faces = pq.read_table(output / "faces" / "faces.parquet").to_pylist()
    index = pq.read_table(output / "index.parquet").to_pylist()
    failures = pq.read_table(output / "failures.parquet")
    assert len(faces) == len(VIDEOS) * FRAMES           # one face per sampled frame
    assert failures.num_rows == 0 and failures.schema.names[:3] == ["path", "stage", "reason"]
    assert len(samples) == len(index) == 2 * len(faces)  # one real + one blend per face
    assert sorted(r["key"] for r in index) == sorted(samples)
    sizes = sorted(sum(1 for r in index if r["shard"] == name) for name in {r["shard"] for r in index})
    assert sizes == [4, 10, 10]
    for key, sample in samples.items():
        assert set(MEMBERS) <= set(sample), key
        row = next(r for r in index if r["key"] == key)
        assert sample["cls"] == row["label"] == (1 if row["kind"] == "blended" else 0)
        assert sample["json"]["key"] == key
    assert f"samples written  {len(samples)}" in log


def test_real_and_blended_samples_obey_the_recipe(run_seed0):
    output, _ = run_seed0
    samples = read_samples(output)
    for key, sample in samples.items():
        meta = sample["json"]
        image = decode_png(sample["img.png"])
        mask, xray = decode_png(sample["mask.png"]), decode_png(sample["xray.png"])
        assert image.shape == (256, 256, 3) and mask.shape == xray.shape == (256, 256)
        if meta["kind"] == "real":
            assert mask.max() == 0 and xray.max() == 0
            continue
        m = mask / 255.0
        assert np.abs(xray / 255.0 - 4 * m * (1 - m)).max() <= 1 / 255
        assert xray.max() / 255 > 0.9          # the mask's edge passes M = 0.5 (opacity >= 0.6)
        background = decode_png(samples[key.rsplit("-", 1)[0] + "-real"]["img.png"])
        np.testing.assert_array_equal(image[mask == 0], background[mask == 0])
        assert not np.array_equal(image[mask > 0], background[mask > 0])
        fg = meta["foreground"]
        assert fg["video"] != meta["video"] and fg["identity"] != meta["identity"]
        assert {"hull", "deform_std", "grid_targets", "morph_kernel", "blur_kernel", "opacity",
                "color_transfer"} <= set(meta["blend"])


def test_same_seed_gives_identical_shards_and_another_seed_other_blends(run_seed0, video_dir, tmp_path):
    output, _ = run_seed0
    build(video_dir, tmp_path / "again", "--seed", "0")
    assert shard_digests(tmp_path / "again") == shard_digests(output)
    build(video_dir, tmp_path / "seed1", "--seed", "1")
    first, other = read_samples(output), read_samples(tmp_path / "seed1")
    assert first.keys() == other.keys()
    blended = [k for k in first if k.endswith("-bi0")]
    assert all(first[k]["mask.png"] != other[k]["mask.png"] for k in blended)
    reals = [k for k in first if k.endswith("-real")]
    assert all(first[k]["img.png"] == other[k]["img.png"] for k in reals)


def test_two_worker_processes_write_the_same_shards_and_tables(run_seed0, video_dir, tmp_path):
    output, _ = run_seed0
    build(video_dir, tmp_path / "two", "--seed", "0",
          "--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
    assert shard_digests(tmp_path / "two") == shard_digests(output)
    for table in ("faces/faces", "faces/neighbours", "faces/failures"):
        assert (output / f"{table}.parquet").read_bytes() == (tmp_path / "two" / f"{table}.parquet").read_bytes()
    assert shard_digests(output / "faces") == shard_digests(tmp_path / "two" / "faces")
    rows = [pq.read_table(folder / "index.parquet").sort_by("key").to_pylist() for folder in (output, tmp_path / "two")]
    assert rows[0] == rows[1]


def test_beam_options_pass_through(video_dir, tmp_path):
    log = build(video_dir, tmp_path / "out", "--frames-per-video", "1", "--fakes-per-real", "0",
                "--direct_num_workers", "1", "--runner", "DirectRunner")
    index = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    assert {r["kind"] for r in index} == {"real"} and len(index) == len(VIDEOS)
    assert "shards written   1" in log


def test_embedded_demo_runs_without_input(tmp_path):
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--output", str(tmp_path / "demo")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    samples = read_samples(tmp_path / "demo")
    assert sorted(s["json"]["kind"] for s in samples.values()) == ["blended", "blended", "real", "real"]
    assert "embedded demo" in result.output


def test_cli_help_lists_pipelines_and_options():
    runner = CliRunner()
    assert "build_bi_shards" in runner.invoke(main, ["run", "--help"]).output
    options = runner.invoke(main, ["run", "build_bi_shards", "--help"]).output
    for option in ["--input", "--frames-per-video", "--size", "--seed", "--samples-per-shard",
                   "--neighbours", "--pool-size", "--color-transfer", "--margin"]:
        assert option in options


def test_bad_inputs_are_clear_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["run", "build_bi_shards", "--input", str(tmp_path / "nope"),
                                   "--output", str(tmp_path / "o1")])
    assert missing.exit_code == 2 and "not found" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(main, ["run", "build_bi_shards", "--input", str(tmp_path / "empty"),
                                 "--output", str(tmp_path / "o2")])
    assert empty.exit_code == 2 and "no videos or images" in empty.output


def test_existing_output_is_refused_without_overwrite(run_seed0, video_dir):
    output, _ = run_seed0
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(video_dir),
                                       "--output", str(output)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_preview_command_writes_a_contact_sheet(run_seed0, tmp_path):
    output, _ = run_seed0
    sheet_path = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["preview", str(output / "shard-{000000..000002}.tar"),
                                       "--out", str(sheet_path), "--samples", "5", "--size", "64"])
    assert result.exit_code == 0, result.output
    sheet = decode_png(sheet_path.read_bytes())
    assert sheet.shape == (22 + 5 * (22 + 64), 4 * 64, 3)


def test_output_folder_explains_itself(run_seed0):
    output, _ = run_seed0
    stats = json.loads((output / "stats.json").read_text())
    index = pq.read_table(output / "index.parquet").to_pylist()
    assert stats["samples"] == len(index) == 24 and stats["shards"] == 3
    assert stats["by_kind"] == {"blended": 12, "real": 12} and stats["by_label"] == {"0": 12, "1": 12}
    assert stats["by_split"] == {"train": 24} and stats["identities"] == 3
    assert stats["failures"] == 0 and stats["parameters"]["output"]["seed"] == 0
    assert stats["parameters"]["fakes"]["bi"]["color_transfer"] == "rgb_mean"
    assert stats["parameters"]["mix"]["weights"] == [["bi", 1.0]]
    assert stats["packages"]["apache-beam"].startswith("2.77")
    assert " run build_bi_shards --input " in stats["command"] and "--frames-per-video 4" in stats["command"]
    card = (output / "README.md").read_text()
    assert "24 samples from 12 face crops" in card and "| blended | 12 |" in card
    preview = decode_png((output / "preview.png").read_bytes())
    assert preview.shape[1] == 4 * 128 and preview.shape[0] == 22 + 12 * (22 + 128)   # the first 12 samples


def test_progress_lines_report_rate_and_eta():
    from pipelines.progress import Progress
    progress = Progress(total=40, workers=2, interval=3600)
    progress.update(inputs=5, faces=150)
    line = progress.line(progress.start + 10.0)
    assert line == "progress (this worker): 5/20 inputs, 150 faces, 15.0 faces/s, ETA 0m30s"
    assert Progress(total=3).line().endswith("ETA ?")
