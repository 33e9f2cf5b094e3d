"""The pipelines on Beam's DaskRunner, on a dask.distributed LocalCluster of 2 worker
processes: output byte-identical to the direct runner's, work spread over both workers,
MediaPipe loaded once per worker process, counts read from the outputs; and the rules that
make it hold on any runner (every branch feeds the last transform; a missing output is an
error)."""
from __future__ import annotations

import gc
import json
import logging
import os
import time
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from click.testing import CliRunner

from pipelines.build_bi_shards import BiShardsConfig, build_bi_shards
from pipelines.build_forgery_shards import ForgeryShardsConfig, build_forgery_shards
from pipelines.cli import main
from pipelines.config import OutputConfig
from pipelines.extract_faces import FacesConfig, extract_faces
from pipelines.failures import MissingOutputError, NothingUsableError
from pipelines.readers import ReaderOptions, read_sources
from pipelines.runner import DASK_RUNNER, Stage, _dask_args, run_and_summarize
from pipelines.samples import BiPlan
from pipelines.units import plan_units

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")

VIDEOS = ("ffpp_c23__004.mp4", "ffpp_c23__519.mp4", "liveportrait__d0.mp4", "liveportrait__d11.mp4")
CARD_FILES = {"README.md", "stats.json"}   # they name the output folder and the command line


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield local.scheduler_address, client


@pytest.fixture(scope="module")
def videos(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for name in VIDEOS:
        (folder / name).symlink_to(shared_data / "real_videos" / name)
    return folder


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(main, ["run", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_identical(direct: Path, dask: Path) -> int:
    """Every file of the two runs byte for byte, the cards but for the folder and command."""
    a, b = _files(direct), _files(dask)
    assert sorted(a) == sorted(b)
    for name in a:
        if Path(name).name in CARD_FILES:
            continue
        assert a[name] == b[name], f"{name} differs between the direct and the Dask run"
    for name in (n for n in a if Path(n).name == "stats.json"):
        x, y = json.loads(a[name]), json.loads(b[name])
        for stats in (x, y):
            stats.pop("command")
            stats.pop("parameters")
        assert x == y
    return len(a)


def _summary(output: str) -> dict[str, str]:
    lines = [line.split(None, 2) for line in output.splitlines()]
    return {" ".join(p[:2]): p[2].split("(")[0].strip() for p in lines
            if len(p) == 3 and " ".join(p[:2]) in ("faces kept", "samples written", "shards written", "face shards")}


def _dask(address: str) -> list[str]:
    return ["--runner", "DaskRunner", "--dask_client_address", address]


def test_bi_shards_on_dask_equal_the_direct_runners(cluster, videos, tmp_path):
    address, client = cluster
    options = ["build_bi_shards", "--input", str(videos), "--frames-per-video", "4", "--size", "96",
               "--samples-per-shard", "8"]
    direct = _run([*options, "--output", str(tmp_path / "direct")])
    with distributed.get_task_stream(client) as tasks:
        on_dask = _run([*options, "--output", str(tmp_path / "dask"), *_dask(address)])
    files = _assert_identical(tmp_path / "direct", tmp_path / "dask")
    assert files >= 4 + 4 + 3 + 4 + 2   # face shards, unit records, face tables, sample shards, tables
    assert (tmp_path / "dask/faces/shard-000003.tar").exists() and (tmp_path / "dask/shard-000003.tar").exists()
    assert "counts read from the outputs" in on_dask
    assert _summary(on_dask) == _summary(direct) == {"faces kept": "16", "samples written": "32",
                                                     "face shards": "4", "shards written": "4"}
    workers = {task["worker"] for task in tasks.data if task["key"][0].startswith(("map-partitions", "apply"))}
    assert len(workers) == 2, "the units were not spread over both workers"
    detectors = client.run(lambda: len(__import__("pipelines.worker", fromlist=["_DETECTORS"])._DETECTORS))
    assert sorted(detectors.values()) == [1, 1], f"MediaPipe detectors per worker process: {detectors}"


def test_extract_faces_on_dask_equals_the_direct_runners(cluster, videos, tmp_path):
    address, _ = cluster
    options = ["extract_faces", "--input", str(videos), "--frames-per-video", "3", "--face-size", "128"]
    _run([*options, "--output", str(tmp_path / "direct")])
    _run([*options, "--output", str(tmp_path / "dask"), *_dask(address)])
    assert _assert_identical(tmp_path / "direct", tmp_path / "dask") >= 4 + 4 + 3


def test_forgery_shards_on_dask_equal_the_direct_runners(cluster, ffpp_tree, tmp_path):
    address, _ = cluster
    options = ["build_forgery_shards", "--input", str(ffpp_tree), "--split", "all", "--frames-per-video", "4",
               "--size", "96", "--samples-per-shard", "5"]
    direct = _run([*options, "--output", str(tmp_path / "direct")])
    on_dask = _run([*options, "--output", str(tmp_path / "dask"), *_dask(address)])
    assert _assert_identical(tmp_path / "direct", tmp_path / "dask") >= 3 + 3
    assert _summary(on_dask)["samples written"] == _summary(direct)["samples written"] == "16"


def test_dask_partitions_follow_the_work_items():
    assert _dask_args(["--runner", "DaskRunner"], 7) == ["--runner", DASK_RUNNER, "--dask_npartitions=7"]
    assert _dask_args(["--runner=DaskRunner", "--dask_partition_size", "3"], 7) == \
        [f"--runner={DASK_RUNNER}", "--dask_partition_size", "3"]


def _leaves(build) -> set[str]:
    """Labels of the transforms whose outputs nothing consumes."""
    pipeline = TestPipeline(runner=FnApiRunner())
    build(pipeline)
    produced, consumed = {}, set()

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            consumed.update(id(i) for i in node.inputs)
            consumed.update(id(s.pvalue) for s in node.side_inputs)
            produced.update({id(o): node.full_label for o in node.outputs.values()})

    pipeline.visit(Visitor())
    return {label for key, label in produced.items() if key not in consumed}


def test_every_branch_feeds_the_last_transform(shared_data, tmp_path):
    """A runner that computes only the last transform (Beam's DaskRunner) still runs all."""
    _, listing = read_sources(str(shared_data / "real_photos/clapton"), "folder", ReaderOptions())
    units = plan_units(listing.sources, 4, 2)
    out = OutputConfig(str(tmp_path / "out"))
    assert _leaves(lambda p: extract_faces(p, units, [], FacesConfig(str(tmp_path)))) == \
        {"WriteFaceTables/WriteTables"}
    assert _leaves(lambda p: build_bi_shards(p, BiShardsConfig(out, str(tmp_path)), BiPlan((), ()))) == \
        {"WriteTables/AllTables/Unmark"}
    assert _leaves(lambda p: build_forgery_shards(p, [], [], ForgeryShardsConfig(out))) == \
        {"WriteOutputs/WriteTables/AllTables/Unmark"}


def test_a_missing_output_is_an_error_naming_it(tmp_path):
    written = tmp_path / "written.txt"
    stage = Stage(lambda p: p | beam.Create([str(written)]) | beam.Map(lambda path: Path(path).write_text("x")), 1,
                  lambda: [str(written), str(tmp_path / "never.txt")])
    with pytest.raises(MissingOutputError, match="1 of its 2 outputs: .*never.txt"):
        run_and_summarize([], [stage])
    assert written.read_text() == "x"


def test_nothing_usable_on_dask_is_the_same_one_line_error(cluster, shared_data, tmp_path):
    """Without runner metrics the 'nothing usable' check reads the written tables."""
    address, _ = cluster
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("debian_opencv_doc__apple.jpg", "dlib__dogs.jpg"):
        (folder / name).symlink_to(shared_data / "no_face" / name)
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(folder), "--output",
                                       str(tmp_path / "out"), *_dask(address)])
    assert result.exit_code == NothingUsableError.exit_code
    assert "no usable face in the input; failures by reason: no_face 1, no_landmarks 1" in result.output
    assert not (tmp_path / "out/faces/faces.parquet").exists()
    assert (tmp_path / "out/faces/failures.parquet").exists()


def test_fail_fast_and_the_input_timeout_reach_dask_workers(cluster, shared_data, tmp_path):
    """The cluster's worker processes started before the run and share nothing of the
    launcher's environment: --input-timeout and --fail-fast reach them in the DoFns'
    configuration, and the fail-fast row comes back through the output folder. Each
    worker process keeps one decoding process, however many partitions it set up."""
    address, client = cluster
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "long.mp4").symlink_to(shared_data / "real_videos/liveportrait__d6.mp4")    # 1008 frames
    (folder / "grace.jpg").symlink_to(shared_data / "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg")
    _run(["extract_faces", "--input", str(folder), "--output", str(tmp_path / "timed"), "--input-timeout", "0.05",
          *_dask(address)])
    rows = pq.read_table(tmp_path / "timed" / "failures.parquet").to_pylist()
    assert [(r["path"], r["reason"]) for r in rows] == [("long.mp4", "timeout")]
    decoders = client.run(lambda: len(__import__("pipelines.worker", fromlist=["_DECODERS"])._DECODERS))
    assert set(decoders.values()) <= {0, 1} and sum(decoders.values()) >= 1, decoders

    (folder / "notes.mp4").write_text("not a video\n" * 20)
    out = tmp_path / "failed"
    result = CliRunner().invoke(main, ["run", "extract_faces", "--input", str(folder), "--output", str(out),
                                       "--fail-fast", *_dask(address)])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == \
        "Error: --fail-fast: notes.mp4: decode/undecodable: no video stream could be opened"
    assert not (out / ".fail-fast").exists() and json.loads((out / "run.json").read_text())["state"] == "failed"


def test_a_relative_output_is_written_where_the_launcher_is(cluster, shared_data, tmp_path, monkeypatch):
    """The workers run in another directory than the launcher: a relative --output names the
    launcher's folder for them too (not one of their own, which the run would then miss)."""
    address, client = cluster
    workers_cwd = set(client.run(os.getcwd).values())
    assert str(tmp_path) not in workers_cwd
    (tmp_path / "in").mkdir()
    (tmp_path / "in/grace.jpg").symlink_to(shared_data / "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg")
    monkeypatch.chdir(tmp_path)
    _run(["extract_faces", "--input", "in", "--output", "out", "--face-size", "96", *_dask(address)])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "README.md", "faces.parquet", "failures.parquet", "neighbours.parquet", "preview.png", "run.json",
        "shard-000000.tar", "stats.json", "units"]
    assert not any(os.path.exists(os.path.join(cwd, "out")) for cwd in workers_cwd)
    (tmp_path / "in/notes.mp4").write_text("not a video\n" * 20)   # --fail-fast's row comes back from there too
    failed = CliRunner().invoke(main, ["run", "extract_faces", "--input", "in", "--output", "failed", "--fail-fast",
                                       *_dask(address)])
    assert failed.exit_code == 1 and failed.output.strip().splitlines()[-1] == \
        "Error: --fail-fast: notes.mp4: decode/undecodable: no video stream could be opened"
    assert not any(os.path.exists(os.path.join(cwd, "failed")) for cwd in workers_cwd)


def test_a_job_the_cluster_cancelled_is_an_error_not_a_success(cluster):
    """Beam's DaskRunner reports a job whose results were cancelled (the scheduler, or the
    connection to it, lost) as done; the run says what happened instead."""
    from apache_beam.runners.dask.dask_runner import DaskRunnerResult

    from pipelines.failures import PipelineError
    from pipelines.runner import _require_finished

    _, client = cluster
    future = client.submit(time.sleep, 30, pure=False, resources={"none_has_it": 1})   # never starts
    client.cancel([future])
    result = DaskRunnerResult(client, [future])
    assert result.wait_until_finish() == "DONE"
    with pytest.raises(PipelineError, match=r"^the Dask cluster cancelled the job before it finished \(was the "
                                            r"scheduler, or the connection to it, lost\?\); finished shards are kept"):
        _require_finished(result)


def test_the_dask_clients_log_lines_are_not_shown_without_verbose():
    """A lost scheduler is the run's one-line error; the client's reconnection tracebacks
    (logged at ERROR by dask.distributed, which sets its loggers' levels on import) are not."""
    assert CliRunner().invoke(main, ["run", "extract_faces", "--help"]).exit_code == 0
    handlers = logging.getLogger().handlers
    record = logging.LogRecord("distributed.client", logging.ERROR, __file__, 1, "Failed to reconnect", None, None)
    assert handlers and not any(handler.filter(record) for handler in handlers)
    assert all(handler.filter(logging.LogRecord("forgery.progress", logging.INFO, __file__, 1, "10/20", None, None))
               for handler in handlers)


def test_a_run_leaves_no_dask_client_behind(cluster, videos, tmp_path):
    """Beam's DaskRunner opens a client per job and never closes it; left open, the clients
    of a run live on in the launching process and keep reconnecting once the cluster is gone."""
    address, client = cluster
    _run(["extract_faces", "--input", str(videos), "--output", str(tmp_path / "out"), "--frames-per-video", "1",
          "--face-size", "64", *_dask(address)])
    open_clients = [c for c in gc.get_objects() if isinstance(c, distributed.Client) and c is not client
                    and c.status not in ("closed", "closing")]
    assert open_clients == []
