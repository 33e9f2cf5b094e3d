"""Run-level outcomes: the run record (run.json) and what --resume and --overwrite do with
it, output folders that cannot be used, runs that end without a usable result, the
per-input time limit, Ctrl-C, fail-fast from worker processes, and quiet output. Each is
one line and an exit status, never a traceback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main

REPO = Path(__file__).resolve().parents[1]
GRACE = "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg"
ASTRONAUT = "real_photos/eileen_collins/pypi_skimage__astronaut.png"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def extract(folder: Path, output: Path, *extra: str):
    return invoke("run", "extract_faces", "--input", str(folder), "--output", str(output), *extra)


@pytest.fixture
def photos(shared_data, tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "grace.jpg").write_bytes((shared_data / GRACE).read_bytes())
    return folder


def test_run_record_holds_the_configuration(photos, tmp_path):
    result = extract(photos, tmp_path / "out", "--seed", "7")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["state"] == "complete"
    config = record["config"]
    assert config["seed"] == 7 and config["version"] and config["options"]["frames_per_video"] == 32
    assert [f[0] for f in config["inputs"]["files"]] == ["grace.jpg"]
    assert config["inputs"]["files"][0][1] == (photos / "grace.jpg").stat().st_size
    assert {"README.md", "faces.parquet", "shard-000000.tar"} <= set(record["files"])


@pytest.mark.parametrize("change, named", [
    (lambda folder: ["--seed", "1"], "--seed 0 -> 1"),
    (lambda folder: ["--frames-per-video", "8"], "--frames-per-video 32 -> 8"),
    (lambda folder: (folder / "more.jpg").write_bytes(b"x") and [], "inputs: 1 added (e.g. more.jpg)"),
    (lambda folder: (folder / "grace.jpg").write_bytes((folder / "grace.jpg").read_bytes() + b"\0") and [],
     "inputs: 1 changed (e.g. grace.jpg)"),
])
def test_resume_refuses_another_configuration_naming_it(photos, tmp_path, change, named):
    assert extract(photos, tmp_path / "out").exit_code == 0
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    extra = change(photos)
    result = extract(photos, tmp_path / "out", "--resume", *extra)
    assert result.exit_code == 2 and named in result.output, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before      # nothing touched


def test_overwrite_removes_only_the_runs_own_files(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("my notes\n")
    refused = extract(photos, out)
    assert refused.exit_code == 2 and "README.md" in refused.output and "not an earlier run's" in refused.output
    refused = extract(photos, out, "--overwrite")
    assert refused.exit_code == 2 and "README.md" in refused.output
    assert (out / "README.md").read_text() == "my notes\n"

    out = tmp_path / "out2"
    assert extract(photos, out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    refused = extract(photos, out, "--overwrite")
    assert refused.exit_code == 2 and "notes.txt" in refused.output
    (out / "notes.txt").unlink()
    again = extract(photos, out, "--overwrite")
    assert again.exit_code == 0, again.output
    assert json.loads((out / "run.json").read_text())["state"] == "complete"


def test_output_that_is_a_file_is_one_line(photos, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = extract(photos, target)
    assert result.exit_code == 2 and "is a file" in result.output and "Traceback" not in result.output
    assert target.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_output_is_one_line(photos, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = extract(photos, parent / "out")
    finally:
        parent.chmod(0o755)
    assert result.exit_code == 2 and "read-only" in result.output


def test_bi_without_any_possible_pair_is_an_error_listing_reasons(photos, tmp_path):
    result = invoke("run", "build_bi_shards", "--input", str(photos), "--output", str(tmp_path / "out"),
                    "--frames-per-video", "1")
    assert result.exit_code == 1, result.output
    assert "no blended sample was written (1 real samples)" in result.output and "no_neighbour 1" in result.output
    out = tmp_path / "out"
    assert not (out / "index.parquet").exists() and not (out / "README.md").exists()
    assert pq.read_table(out / "failures.parquet").column("reason").to_pylist() == ["no_neighbour"]


def test_input_timeout_gives_a_row_and_the_run_goes_on(photos, shared_data, tmp_path):
    (photos / "long.mp4").symlink_to(shared_data / "real_videos/liveportrait__d6.mp4")   # 1008 frames
    result = extract(photos, tmp_path / "out", "--input-timeout", "0.05")
    assert result.exit_code == 0, result.output
    failures = pq.read_table(tmp_path / "out" / "failures.parquet").to_pylist()
    assert [(Path(r["path"]).name, r["stage"], r["reason"]) for r in failures] == [("long.mp4", "decode", "timeout")]
    faces = [Path(r["path"]).name for r in pq.read_table(tmp_path / "out" / "faces.parquet").to_pylist()]
    assert faces.count("grace.jpg") == 1
    decoded = faces.count("long.mp4")     # the frames done before the limit are kept
    assert decoded < 32 and f"; {decoded} frames decoded" in failures[0]["detail"]


def test_a_decoder_call_that_never_returns_is_stopped_and_the_run_goes_on(photos, shared_data, tmp_path, stall_fifo,
                                                                         monkeypatch):
    """The time limit is hard: a video whose decoding blocks for ever inside one call (a read
    on a stalled mount, simulated in the decoding process by `stalls`) ends in a timeout
    row that keeps the frame decoded before; a decoding process that crashes is its input's
    row; the other inputs' faces are written, and the run ends soon after the limit."""
    import threading

    import stalls
    from conftest import read_rgb
    from test_bad_inputs import write_video

    monkeypatch.setenv("STALL_NAMES", "stall.mp4")
    monkeypatch.setenv("CRASH_NAMES", "crash.jpg")
    monkeypatch.setattr("pipelines.extract.read_frames", stalls.read_frames)
    write_video(photos / "stall.mp4", [read_rgb(shared_data / ASTRONAUT)] * 3)
    (photos / "crash.jpg").write_bytes((photos / "grace.jpg").read_bytes() + b"another file")
    (photos / "astronaut.png").write_bytes((shared_data / ASTRONAUT).read_bytes())
    results = []
    run = threading.Thread(target=lambda: results.append(extract(photos, tmp_path / "out", "--input-timeout", "3")),
                           daemon=True)
    start = time.monotonic()
    run.start()
    run.join(timeout=120)
    assert results, "the run did not end"
    assert results[0].exit_code == 0, results[0].output
    failures = {Path(r["path"]).name: r for r in pq.read_table(tmp_path / "out" / "failures.parquet").to_pylist()}
    assert {name: f"{r['stage']}/{r['reason']}" for name, r in failures.items()} == \
        {"stall.mp4": "decode/timeout", "crash.jpg": "decode/decoder_crashed"}
    assert "no answer from the decoding process" in failures["stall.mp4"]["detail"]
    assert failures["stall.mp4"]["detail"].endswith("; 1 frames decoded")
    assert f"(signal {signal.SIGSEGV.value})" in failures["crash.jpg"]["detail"]
    faces = sorted((Path(r["path"]).name, r["frame"]) for r in pq.read_table(tmp_path / "out" / "faces.parquet").to_pylist())
    assert faces == [("astronaut.png", 0), ("grace.jpg", 0), ("stall.mp4", 0)]
    assert time.monotonic() - start < 60


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def test_default_output_is_quiet_and_verbose_shows_native_lines(photos, tmp_path):
    quiet = subprocess.run(_command("run", "extract_faces", "--input", str(photos), "--output", str(tmp_path / "a")),
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    for noise in ("apitools", "W0000", "absl", "XNNPACK", "INFO:", "WARNING"):
        assert noise not in quiet.stderr + quiet.stdout, noise
    assert "faces kept       1" in quiet.stdout
    loud = subprocess.run(_command("-v", "run", "extract_faces", "--input", str(photos), "--output", str(tmp_path / "b")),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr


def test_a_damaged_video_logs_nothing_by_default(photos, shared_data, tmp_path):
    """FFmpeg reports a damaged H.264 stream from its decoding threads, also after the call
    that decoded it returned (so between the frames' silenced calls); in the decoding
    process those lines go nowhere without -v, and with -v they are shown."""
    from test_bad_inputs import _flipped

    damaged = _flipped((shared_data / "real_videos/liveportrait__d18.mp4").read_bytes(), 1, 100)
    (photos / "damaged.mp4").write_bytes(damaged)
    args = ["run", "extract_faces", "--input", str(photos), "--frames-per-video", "3"]
    quiet = subprocess.run(_command(*args, "--output", str(tmp_path / "a")), cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run(_command("-v", *args, "--output", str(tmp_path / "b")), cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert loud.returncode == 0 and "[h264 @" in loud.stderr


def test_fail_fast_from_worker_processes_is_typed_and_leaves_no_tables(photos, tmp_path):
    (photos / "notes.mp4").write_text("not a video\n" * 20)
    out = tmp_path / "out"
    result = subprocess.run(_command("run", "extract_faces", "--input", str(photos), "--output", str(out),
                                     "--fail-fast", "--direct_num_workers", "2", "--direct_running_mode",
                                     "multi_processing"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --fail-fast: ")
    assert "notes.mp4: decode/undecodable" in result.stderr and "Traceback" not in result.stderr
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert not [p for p in left if p.endswith(".parquet") or "beam-temp" in p or ".tmp-" in p or p == "README.md"]
    assert not [p for p in left if p.startswith(".fail-fast")], left     # the row was read, then removed
    assert json.loads((out / "run.json").read_text())["state"] == "failed"


def test_fail_fast_row_travels_through_the_output_file_system(photos, tmp_path, monkeypatch):
    """The failing worker leaves its row in OUT/.fail-fast/ through Beam FileSystems, so the
    launcher learns it from a worker on any machine; here the output is an object store
    (mem://), and the row is removed once read."""
    from memfs import InMemoryFileSystem

    (photos / "notes.mp4").write_text("not a video\n" * 20)
    monkeypatch.chdir(tmp_path)
    store = InMemoryFileSystem.files
    store.clear()
    result = invoke("run", "extract_faces", "--input", str(photos), "--output", "mem://bucket/out", "--fail-fast")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == \
        "Error: --fail-fast: notes.mp4: decode/undecodable: no video stream could be opened"
    assert not [path for path in store if "/.fail-fast" in path], sorted(store)
    assert json.loads(store["mem://bucket/out/run.json"])["state"] == "failed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_fail_fast_folder_left_by_a_killed_launcher_is_the_runs_own(photos, tmp_path):
    out = tmp_path / "out"
    assert extract(photos, out).exit_code == 0
    (out / ".fail-fast").mkdir()
    (out / ".fail-fast" / "0123.json").write_text("{}")
    again = extract(photos, out, "--overwrite")
    assert again.exit_code == 0, again.output
    assert not (out / ".fail-fast").exists()


def test_ctrl_c_exits_130_with_one_line_and_no_temporary_folders(shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("liveportrait__d6.mp4", "liveportrait__d14.mp4", "liveportrait__d10.mp4"):
        (folder / name).symlink_to(shared_data / "real_videos" / name)
    out = tmp_path / "out"
    process = subprocess.Popen(_command("run", "extract_faces", "--input", str(folder), "--output", str(out),
                                        "--frames-per-video", "200"),
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["Error: interrupted (Ctrl-C); finished shards are kept: rerun with "
                                           "--resume to complete the run"]
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert not [p for p in left if "beam-temp" in p or ".tmp-" in p or p.endswith(".parquet")], left
    assert json.loads((out / "run.json").read_text())["state"] == "failed"


def test_fail_fast_on_an_input_the_reader_left_out(photos, tmp_path):
    (photos / "notes.txt").write_text("x")
    result = extract(photos, tmp_path / "out", "--fail-fast")
    assert result.exit_code == 1 and "--fail-fast: " in result.output
    assert "notes.txt: read/unsupported_type" in result.output and not (tmp_path / "out").exists()


def test_output_of_an_older_version_without_run_record_is_refused_clearly(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "shard-000000.tar").write_bytes(b"x")
    (out / "faces.parquet").write_bytes(b"x")
    for flag in ([], ["--resume"], ["--overwrite"]):
        result = extract(photos, out, *flag)
        assert result.exit_code == 2 and "without a run record" in result.output, result.output
    assert sorted(p.name for p in out.iterdir()) == ["faces.parquet", "shard-000000.tar"]


def test_output_inside_the_input_is_refused(photos):
    result = extract(photos, photos / "out")
    assert result.exit_code == 2 and "is inside --input" in result.output
    assert not (photos / "out").exists()


def test_a_writer_killed_mid_file_leaves_no_temporary_in_a_finished_run(tmp_path):
    """A worker killed while writing (its item retried by the runner, as Dask does) leaves a
    file under a temporary name; the finished run deletes it and does not record it."""
    from pipelines.runner import finish_run, prepare_output, read_run_record

    out = tmp_path / "out"
    prepare_output(str(out), overwrite=False, config={"seed": 0})
    (out / "units").mkdir()
    for name in ("shard-000000.tar", "units/shard-000000.json", "faces.parquet", ".shard-000000.tar.tmp-dead",
                 "units/.shard-000000.json.tmp-dead", ".faces.parquet.tmp-dead"):
        (out / name).write_bytes(b"x")
    finish_run(str(out))
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == ["faces.parquet", "run.json", "shard-000000.tar", "units/shard-000000.json"]
    assert read_run_record(str(out))["files"] == ["faces.parquet", "shard-000000.tar", "units/shard-000000.json"]


def test_folders_named_with_glob_characters_are_taken_literally(photos, tmp_path):
    """'[', '*' and '?' are legal in folder names: an input and an output named so are read,
    written, carded and refused on a second run like any other (not matched as patterns)."""
    folder = tmp_path / "in[2024]"
    photos.rename(folder)
    out = tmp_path / "out[1]*?"
    result = extract(folder, out, "--face-size", "96")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "faces.parquet", "failures.parquet",
                                                     "neighbours.parquet", "preview.png", "run.json",
                                                     "shard-000000.tar", "stats.json", "units"]
    assert json.loads((out / "run.json").read_text())["config"]["inputs"]["files"][0][0] == "grace.jpg"
    again = extract(folder, out, "--face-size", "96")
    assert again.exit_code == 2 and f"{out} already holds 9 output files of an earlier run" in again.output
    assert extract(folder, out, "--face-size", "96", "--overwrite").exit_code == 0


def test_a_relative_output_is_made_absolute(photos, tmp_path, monkeypatch):
    """Workers may run in another directory (a Dask worker, a container): the folders they
    are given are absolute."""
    monkeypatch.chdir(tmp_path)
    result = extract(photos, Path("rel/out"), "--face-size", "96")
    assert result.exit_code == 0, result.output
    assert f"1 inputs in 1 units -> {tmp_path}/rel/out\n" in result.output
    assert (tmp_path / "rel/out/shard-000000.tar").is_file()


def test_faces_that_are_not_face_shards_are_one_line(tmp_path):
    result = invoke("run", "build_bi_shards", "--faces", str(tmp_path / "none"), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: --faces {tmp_path}/none holds no face shards made by `beam run extract_faces` (its faces.parquet: "
        f"[Errno 2] No such file or directory: '{tmp_path}/none/faces.parquet')")
    assert not (tmp_path / "out").exists()
