"""Killed runs leave no finished-looking partial shard and --resume completes them
byte-identically; bundle retries neither lose nor duplicate samples."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main

VIDEOS = ["liveportrait__d0.mp4", "liveportrait__d11.mp4", "liveportrait__d12.mp4"]
ARGS = ["--frames-per-video", "3", "--samples-per-shard", "4"]   # 9 faces -> 18 samples -> 5 shards

KILLER = textwrap.dedent("""
    import os, signal, sys
    import pipelines.samples as samples
    written = []
    original = samples.write_tar
    def write_then_die(stream, samples):
        written.append(1)
        if len(written) == 3:            # in the middle of the third shard
            stream.write(b"half a shard" * 1000)
            stream.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(stream, samples)
    samples.write_tar = write_then_die
    from pipelines.cli import main
    main(sys.argv[1:])
""")


@pytest.fixture(scope="module")
def videos(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for name in VIDEOS:
        (folder / name).symlink_to(shared_data / "real_videos" / name)
    return folder


def _run(videos, output, *extra):
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(videos), "--output", str(output),
                                       *ARGS, *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("shard-*.tar"))}


def test_sigkill_mid_write_then_resume_gives_identical_shards(videos, tmp_path):
    reference = tmp_path / "reference"
    _run(videos, reference)
    killed = tmp_path / "killed"
    process = subprocess.run([sys.executable, "-c", KILLER, "run", "build_bi_shards", "--input", str(videos),
                              "--output", str(killed), *ARGS], capture_output=True, timeout=300)
    assert process.returncode == -9, process.stderr[-2000:]
    finished = sorted(killed.glob("shard-*.tar"))
    assert len(finished) == 2                              # the two shards completed before the kill
    for shard in finished:                                 # ... are whole: nothing partial under a final name
        assert _digests(killed)[shard.name] == _digests(reference)[shard.name]
    assert len(list(killed.glob(".shard-*.tmp-*"))) == 1    # the interrupted one kept its temporary name

    refused = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(videos), "--output", str(killed), *ARGS])
    assert refused.exit_code == 2 and "--resume" in refused.output
    log = _run(videos, killed, "--resume")
    assert "(2 kept from the interrupted run)" in log
    assert _digests(killed) == _digests(reference)
    assert not list(killed.glob(".shard-*"))
    assert pq.read_table(killed / "index.parquet").num_rows == pq.read_table(reference / "index.parquet").num_rows


KILL_AT_COMMIT = textwrap.dedent("""
    import os, signal, sys
    import pipelines.write as write
    target, count = sys.argv[1], int(sys.argv[2])
    seen = []
    original = write.AtomicFile.commit
    def commit_or_die(self):
        if self.final.endswith(target):
            seen.append(self.final)
            if len(seen) == count:      # its record (face shards) or samples are written; it is not renamed
                os.kill(os.getpid(), signal.SIGKILL)
        return original(self)
    write.AtomicFile.commit = commit_or_die
    from pipelines.cli import main
    main(sys.argv[3:])
""")


def _killed_at(target: str, count: int, *args: str):
    process = subprocess.run([sys.executable, "-c", KILL_AT_COMMIT, target, str(count), *args],
                             capture_output=True, timeout=300)
    assert process.returncode == -9, process.stderr[-2000:]


def test_sigkill_in_extraction_and_in_blending_then_resume_is_byte_identical(videos, tmp_path):
    reference = tmp_path / "reference"
    _run(videos, reference)
    out = tmp_path / "out"
    command = ["run", "build_bi_shards", "--input", str(videos), "--output", str(out), *ARGS]
    _killed_at(".tar", 2, *command)                       # extraction: 1 face shard done, the 2nd not renamed
    assert [p.name for p in (out / "faces").glob("shard-*.tar")] == ["shard-000000.tar"]
    assert not list(out.glob("shard-*.tar"))
    _killed_at("/out/shard-000003.tar", 1, *command, "--resume")   # blending: 3 sample shards done
    assert len(list((out / "faces").glob("shard-*.tar"))) == len(VIDEOS)
    assert len(list(out.glob("shard-*.tar"))) == 3
    log = _run(videos, out, "--resume")
    assert "face shards      3  (3 kept from the interrupted run)" in log
    assert "(3 kept from the interrupted run)" in log.split("shards written")[1]
    assert _digests(out) == _digests(reference) and _digests(out / "faces") == _digests(reference / "faces")
    for table in ("faces", "neighbours", "failures"):
        assert (out / "faces" / f"{table}.parquet").read_bytes() == (reference / "faces" / f"{table}.parquet").read_bytes()
    rows = [pq.read_table(folder / "index.parquet").sort_by("key").to_pylist() for folder in (out, reference)]
    assert rows[0] == rows[1]
    assert not list(out.rglob(".*tmp-*"))


def test_bundle_retries_neither_lose_nor_duplicate_samples(videos, tmp_path, monkeypatch):
    import shards.assemble as assemble
    reference = tmp_path / "reference"
    _run(videos, reference)
    calls = []
    original = assemble.blend

    def fail_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected failure on the first attempt")
        return original(*args, **kwargs)

    monkeypatch.setattr(assemble, "blend", fail_first)
    retried = tmp_path / "retried"
    _run(videos, retried, "--runner", "BundleBasedDirectRunner")
    assert len(calls) > 9                                  # the failed bundle ran again
    keys = [r["key"] for r in pq.read_table(retried / "index.parquet").to_pylist()]
    reference_keys = [r["key"] for r in pq.read_table(reference / "index.parquet").to_pylist()]
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(reference_keys)
    assert _digests(retried) == _digests(reference)
