"""Each named PTransform on its own, in a Beam TestPipeline, with `assert_that` on what it
outputs (and on the files it writes)."""
from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from blending.recipe import recipe
from pipelines.config import CropConfig, WorkerConfig
from pipelines.extract import ExtractFaces, UnitSummary
from pipelines.face_tables import WriteFaceTables
from pipelines.readers import ReaderOptions, read_sources
from pipelines.samples import PlanBiShards, WriteBiShards
from pipelines.units import balanced_lanes, plan_units

CROPS = CropConfig(frames_per_video=2, face_size=192)


def pipeline() -> TestPipeline:
    return TestPipeline(runner=FnApiRunner())


@pytest.fixture(scope="module")
def units(shared_data, tmp_path_factory):
    """Unit 0: two photos (one with no face); unit 1: a video; unit 2: a photo."""
    folder = tmp_path_factory.mktemp("in")
    (folder / "a_face.jpg").symlink_to(shared_data / "real_photos/clapton/openface__clapton-1.jpg")
    (folder / "b_apple.jpg").symlink_to(shared_data / "no_face/debian_opencv_doc__apple.jpg")
    (folder / "c_clip.mp4").symlink_to(shared_data / "real_videos/liveportrait__d0.mp4")
    (folder / "d_face.jpg").symlink_to(shared_data / "real_photos/kit_harington" /
                                       sorted(p.name for p in (shared_data / "real_photos/kit_harington").iterdir())[0])
    _, listing = read_sources(str(folder), "folder", ReaderOptions())
    return plan_units(listing.sources, images_per_unit=2, frames_per_video=CROPS.frames_per_video)


@pytest.fixture(scope="module")
def faces(units, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("faces")
    with pipeline() as p:
        summaries = (p | beam.Create(balanced_lanes(units, 2))
                     | ExtractFaces(str(directory), CROPS, WorkerConfig(), total=4))
        assert_that(summaries, equal_to([UnitSummary(0, 1, 1), UnitSummary(1, 2, 0), UnitSummary(2, 1, 0)]))
        done = summaries | WriteFaceTables(str(directory), [], seed=0, k=3, pool_size=10)
        assert_that(done, equal_to([3]), label="tables")
    return directory


def test_units_and_lanes(units):
    assert [[s.path.rsplit("/", 1)[1] for s in u.sources] for u in units] == [
        ["a_face.jpg", "b_apple.jpg"], ["c_clip.mp4"], ["d_face.jpg"]]
    assert [u.cost for u in units] == [2.0, 2.0, 1.0]       # images, 2 frames (no byte sizes given)
    assert [[u.index for u in lane] for lane in balanced_lanes(units, 2)] == [[0, 2], [1]]
    assert [[u.index for u in lane] for lane in balanced_lanes(units, 5)] == [[0], [1], [2]]


def test_extract_faces_writes_shards_and_records(faces):
    assert sorted(p.name for p in faces.glob("shard-*.tar")) == [f"shard-00000{i}.tar" for i in range(3)]
    rows = pq.read_table(faces / "faces.parquet").to_pylist()
    assert [r["shard"] for r in rows] == ["shard-000000.tar", "shard-000001.tar", "shard-000001.tar",
                                          "shard-000002.tar"]
    failures = pq.read_table(faces / "failures.parquet").to_pylist()
    assert [(f["path"].rsplit("/", 1)[1], f["stage"], f["reason"]) for f in failures] == [
        ("b_apple.jpg", "detect", "no_landmarks")]
    neighbours = pq.read_table(faces / "neighbours.parquet").to_pylist()
    assert [len(n["neighbours"]) for n in neighbours] == [3, 2, 2, 3]    # never the own video


def test_extract_faces_resume_keeps_written_units(faces, units):
    with pipeline() as p:
        summaries = (p | beam.Create([units])
                     | ExtractFaces(str(faces), CROPS, WorkerConfig(), resume=True))
        assert_that(summaries, equal_to([UnitSummary(0, 1, 1, kept=True), UnitSummary(1, 2, 0, kept=True),
                                         UnitSummary(2, 1, 0, kept=True)]))


def test_plan_and_write_bi_shards(faces, tmp_path):
    with pipeline() as p:
        planned = p | PlanBiShards(str(faces), samples_per_shard=3, fakes_per_real=1.0, seed=0, fail_fast=False)
        assert_that(planned.tasks | beam.Map(lambda t: (t.index, len(t.samples))),
                    equal_to([(0, 3), (1, 3), (2, 2)]), label="tasks")
        assert_that(planned.failures | beam.Map(lambda f: f["reason"]), equal_to(["no_landmarks"]), label="failures")
        index = planned.tasks | WriteBiShards(str(faces), str(tmp_path), 128, 1.3, recipe("default"), seed=0)
        assert_that(index | beam.Map(lambda r: (r["kind"], r["shard"][:6])),
                    equal_to([("real", "shard-")] * 4 + [("blended", "shard-")] * 4), label="index")
    assert sorted(p.name for p in tmp_path.glob("shard-*.tar")) == ["shard-000000.tar", "shard-000001.tar",
                                                                    "shard-000002.tar"]
