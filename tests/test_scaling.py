"""What can be checked offline of the distributed paths: the package remote workers
install, Beam options passing through, file-system paths."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.runner import make_pipeline, previous_outputs, prepare_output
from staged_package import run_as_a_worker, unpack_sdist

ROOT = Path(__file__).resolve().parents[1]


def test_workers_can_install_the_package_beam_stages(tmp_path):
    """Beam's own stager builds the sdist that --setup_file ./pyproject.toml ships to
    Dataflow workers; it holds every module, and the pipelines and trainers import from it
    alone."""
    pytest.importorskip("build")
    from apache_beam.runners.portability.stager import Stager
    sdist = Stager._build_setup_package(str(ROOT / "pyproject.toml"), str(tmp_path))
    run_as_a_worker(unpack_sdist(Path(sdist), tmp_path / "unpacked"), tmp_path)


def test_runner_options_pass_through_unchanged(tmp_path):
    jar = tmp_path / "beam-runners-spark-job-server.jar"
    pipeline = make_pipeline(["--runner", "SparkRunner", "--spark_job_server_jar", str(jar),
                              "--environment_type", "DOCKER", "--environment_config", "repo/worker:1"])
    options = pipeline.options.get_all_options()
    assert options["runner"] == "SparkRunner" and options["spark_job_server_jar"] == str(jar)
    assert options["environment_type"] == "DOCKER" and options["environment_config"] == "repo/worker:1"
    flink = make_pipeline(["--runner=FlinkRunner", "--flink_job_server_jar", str(jar), "--flink_master", "host:8081"])
    assert flink.options.get_all_options()["flink_master"] == "host:8081"
    local = make_pipeline(["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])
    assert type(local.runner).__name__ == "FnApiRunner"
    assert local.options.get_all_options()["direct_num_workers"] == 2


def test_output_preparation_goes_through_beam_filesystems(tmp_path):
    output = str(tmp_path / "nested" / "out")
    prepare_output(output, overwrite=False)
    assert Path(output).is_dir() and previous_outputs(output) == []
    (Path(output) / "shard-000000.tar").write_bytes(b"x")
    (Path(output) / "stats.json").write_text("{}")
    assert [Path(p).name for p in previous_outputs(output)] == ["shard-000000.tar", "stats.json"]
    prepare_output(output, overwrite=False, resume=True)
    assert [Path(p).name for p in previous_outputs(output)] == ["shard-000000.tar"]


def test_pipeline_reads_and_writes_through_beam_filesystems(shared_data, tmp_path, monkeypatch):
    """Input and output on a non-local file system (an in-memory one registered under
    mem://): nothing in the pipeline may assume a local path."""
    import io

    import pyarrow.parquet as pq
    import webdataset as wds
    from click.testing import CliRunner

    from memfs import InMemoryFileSystem
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    store = InMemoryFileSystem.files
    store.clear()
    for name in ("liveportrait__d0.mp4", "liveportrait__d12.mp4"):
        store[f"mem://bucket/in/clips/{name}"] = (shared_data / "real_videos" / name).read_bytes()
    store["mem://bucket/in/photo.jpg"] = (shared_data / "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg").read_bytes()
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", "mem://bucket/in", "--output", "mem://bucket/out",
                                       "--frames-per-video", "2", "--samples-per-shard", "4"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = {path.removeprefix("mem://bucket/out/") for path in store if path.startswith("mem://bucket/out/")}
    assert {"faces/faces.parquet", "faces/neighbours.parquet", "faces/shard-000000.tar", "index.parquet",
            "failures.parquet", "stats.json", "README.md", "preview.png"} <= written
    shards = sorted(name for name in written if name.startswith("shard-"))
    assert shards == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert not [name for name in written if "beam-temp" in name or "/." in f"/{name}"]
    assert list(tmp_path.iterdir()) == []          # nothing landed on the local disk
    index = pq.read_table(io.BytesIO(store["mem://bucket/out/index.parquet"])).to_pylist()
    assert len(index) == 10 and {r["identity"] for r in index} == {"liveportrait__d0", "liveportrait__d12", "photo"}
    local = tmp_path.parent / "copy.tar"
    local.write_bytes(store["mem://bucket/out/shard-000000.tar"])
    assert len(list(wds.WebDataset(str(local), shardshuffle=False))) == 4


def test_worker_process_runs_blas_single_threaded_and_freezes_long_lived_objects():
    import gc

    import numpy  # noqa: F401 - loads the BLAS that the limit applies to
    from threadpoolctl import threadpool_info, threadpool_limits

    from pipelines.worker import prepare_worker_process

    threadpool_limits(limits=2, user_api="blas")   # as a fresh process starts (or an earlier test left it)
    gc.unfreeze()
    try:
        prepare_worker_process()
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and all(pool["num_threads"] == 1 for pool in blas)
        assert gc.get_freeze_count() > 10_000     # modules, classes, functions alive now
    finally:
        gc.unfreeze()
