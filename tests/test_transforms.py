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

from blending.mix import FakeParams
from blending.recipe import recipe
from pipelines.config import CropConfig, WorkerConfig
from pipelines.extract import ExtractFaces, UnitSummary
from pipelines.face_tables import WriteFaceTables
from pipelines.readers import ReaderOptions, read_sources
from pipelines.samples import WriteBiShards, plan_bi_shards
from pipelines.lanes import Lane, claim, deal
from pipelines.units import plan_units

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
    """Face shards of `units`, extracted by two lanes that share the units through claims."""
    directory = tmp_path_factory.mktemp("faces")
    claims = tmp_path_factory.mktemp("claims")
    with pipeline() as p:
        summaries = (p | beam.Create(deal(units, 2, str(claims), cost=lambda u: u.cost))
                     | ExtractFaces(str(directory), CROPS, WorkerConfig(), total=4))
        assert_that(summaries, equal_to([UnitSummary(0, 1, 1), UnitSummary(1, 2, 0), UnitSummary(2, 1, 0)]))
        done = summaries | WriteFaceTables(str(directory), [], seed=0, k=3, pool_size=10)
        assert_that(done, equal_to([3]), label="tables")
    return directory


def test_units_and_lanes(units):
    assert [[s.path for s in u.sources] for u in units] == [
        ["a_face.jpg", "b_apple.jpg"], ["c_clip.mp4"], ["d_face.jpg"]]
    assert [u.cost for u in units] == [2.0, 2.0, 1.0]       # images, 2 frames (no byte sizes given)


def test_lanes_hand_out_each_item_once(tmp_path):
    lanes = deal(["a", "bb", "ccc"], 2, str(tmp_path), cost=len)
    assert [lane.items for lane in lanes] == [("ccc", "bb", "a")] * 2          # costliest first, every item
    first, second = lanes
    assert claim(first, "ccc") and not claim(second, "ccc") and claim(second, "bb")
    assert claim(first, "ccc")                       # a retried bundle of the same lane keeps its claim
    assert not claim(first, "bb") and claim(first, "a")
    assert deal(["a", "b"], 1, str(tmp_path)) == [Lane(0, ("a",)), Lane(1, ("b",))]   # one worker: one per lane
    assert deal(["a", "b"], 4, "") == [Lane(0, ("a",)), Lane(1, ("b",))]               # no claims: one per lane
    assert claim(Lane(0, ("a",)), "a") and claim(Lane(1, ("a",)), "a")


def test_extract_faces_writes_shards_and_records(faces):
    assert sorted(p.name for p in faces.glob("shard-*.tar")) == [f"shard-00000{i}.tar" for i in range(3)]
    rows = pq.read_table(faces / "faces.parquet").to_pylist()
    assert [r["shard"] for r in rows] == ["shard-000000.tar", "shard-000001.tar", "shard-000001.tar",
                                          "shard-000002.tar"]
    failures = pq.read_table(faces / "failures.parquet").to_pylist()
    assert [(f["path"], f["stage"], f["reason"]) for f in failures] == [
        ("b_apple.jpg", "detect", "no_landmarks")]
    neighbours = pq.read_table(faces / "neighbours.parquet").to_pylist()
    assert [len(n["neighbours"]) for n in neighbours] == [3, 2, 2, 3]    # never the own video


def test_extract_faces_resume_keeps_written_units(faces, units):
    with pipeline() as p:
        summaries = (p | beam.Create(deal(units, 1, ""))
                     | ExtractFaces(str(faces), CROPS, WorkerConfig(), resume=True))
        assert_that(summaries, equal_to([UnitSummary(0, 1, 1, kept=True), UnitSummary(1, 2, 0, kept=True),
                                         UnitSummary(2, 1, 0, kept=True)]))


def test_plan_and_write_bi_shards(faces, tmp_path):
    plan = plan_bi_shards(str(faces), samples_per_shard=3, fakes_per_real=1.0, seed=0)
    assert [(task.index, len(task.samples)) for task in plan.tasks] == [(0, 3), (1, 3), (2, 2)]
    assert [f["reason"] for f in plan.failures] == ["no_landmarks"]
    with pipeline() as p:
        index = (p | beam.Create(deal(plan.tasks, 1, ""))
                 | WriteBiShards(str(faces), str(tmp_path), 128, 1.3, FakeParams(bi=recipe("default")), seed=0))
        assert_that(index | beam.FlatMap(lambda part: [(part[0], r["kind"], r["shard"]) for r in part[1]])
                    | beam.combiners.Count.PerElement(),
                    equal_to([((0, "blended", "shard-000000.tar"), 2), ((0, "real", "shard-000000.tar"), 1),
                              ((1, "blended", "shard-000001.tar"), 1), ((1, "real", "shard-000001.tar"), 2),
                              ((2, "real", "shard-000002.tar"), 1), ((2, "blended", "shard-000002.tar"), 1)]),
                    label="index")
    assert sorted(p.name for p in tmp_path.glob("shard-*.tar")) == ["shard-000000.tar", "shard-000001.tar",
                                                                    "shard-000002.tar"]


def test_a_sample_without_a_planned_slot_is_an_error_not_a_loss():
    from pipelines.write import _to_shard

    assert _to_shard(("k", {"slot": [(3, 7)], "sample": ["s"]})) == [(3, (7, "s"))]
    with pytest.raises(RuntimeError, match="sample k: 0 planned slots"):
        _to_shard(("k", {"slot": [], "sample": ["s"]}))
