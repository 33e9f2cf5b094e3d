"""Untrusted inputs: split files, shard URLs and tar member names cannot reach outside
what the user pointed at, and nothing runs a shell command built from them."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from pipelines.readers import ReaderOptions, read_sources
from trainers.data import ShardStream, StreamConfig, make_loader
from trainers.failures import FailureLog
from trainers.urls import open_url
from trainers.decode import make_decoder


def test_ffpp_split_ids_cannot_name_paths_outside_the_root(ffpp_tree, tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train.json").write_text(json.dumps([["004", "982"], ["../../../etc/passwd", "/etc/shadow"]]))
    (splits / "val.json").write_text("[]")
    (splits / "test.json").write_text("[]")
    _, listing = read_sources(str(ffpp_tree), "ffpp", ReaderOptions(split="all", splits_dir=str(splits)))
    inside = lambda path: not path.startswith("/") and ".." not in path.split("/")   # relative to the root
    assert listing.sources and all(s.root == str(ffpp_tree) and inside(s.path) for s in listing.sources)
    assert all(not s.original or inside(s.original) for s in listing.sources)
    assert {s.video for s in listing.sources} == {"youtube-004", "NeuralTextures-004_982"}


def test_cloud_urls_never_spawn_a_shell(monkeypatch):
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    for url in ("gs://bucket/shard-000000.tar;rm -rf ~", "s3://bucket/$(whoami).tar"):
        with pytest.raises((ImportError, ValueError, OSError)):
            open_url(url)


def test_unsafe_member_names_are_skipped_and_counted(tmp_path):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as archive:
        for name in ("../escape.img.png", "ok__v__000000__f0-real.json"):
            data = b"{}"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    failures = FailureLog()
    stream = ShardStream(StreamConfig((str(path),), 1, shuffle_buffer=0), make_decoder(("img.png",), 8),
                         failures=failures)
    assert list(make_loader(stream, 0, drop_last=False)) == []
    # the unsafe name, and the sample missing its members
    assert [(f.sample, f.reason.split(":")[0]) for f in failures.entries()] == [
        ("(empty key)", "unsafe member name"), ("ok__v__000000__f0-real", "MissingMembers")]


def test_checkpoints_are_loaded_without_running_code(tmp_path):
    import pickle

    from trainers.checkpoint import CheckpointError, load_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as stream:
        pickle.dump({"model": Payload()}, stream)
    with pytest.raises(CheckpointError, match="Weights only load failed") as refused:
        load_checkpoint(str(path))
    assert isinstance(refused.value.__cause__, pickle.UnpicklingError)
    assert not (tmp_path / "pwned").exists()
