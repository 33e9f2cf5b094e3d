"""Samples from faces: real samples and Face X-ray blended samples, encoded for a shard."""
from __future__ import annotations

from functools import lru_cache

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from blending.bi import BlendParams, blend
from blending.masks import hull_mask, quantize, xray
from pipelines.forgery import ForgeryCrop
from pipelines.pairing import Pairing
from pipelines.records import Face, ShardSample
from pipelines.worker import prepare_worker_process
from shards.keys import key_rng, sample_key
from shards.labels import method_id
from shards.sample import encode_sample


def counted(function, name: str):
    """`function` that also counts its calls as Beam counter `samples/<name>`."""
    counter = Metrics.counter("samples", name)

    def run(element):
        counter.inc()
        return function(element)
    return run


@lru_cache(maxsize=4)
def _zeros(size: int) -> np.ndarray:
    zeros = np.zeros((size, size), np.uint8)
    zeros.flags.writeable = False
    return zeros


def _meta(face: Face, kind: str, method: str) -> dict:
    s = face.source
    return {"dataset": s.dataset, "split": s.split, "video": s.video, "identity": s.identity,
            "frame": face.frame, "kind": kind, "method": method, "method_id": method_id(method),
            "path": s.path,
            "box": np.round(face.box, 2).tolist(),
            "crop_matrix": np.round(face.matrix, 6).tolist(),
            "landmarks": np.round(face.landmarks, 2).tolist()}


def _index_row(key: str, face: Face, kind: str, label: int, method: str,
               foreground_key: str = "") -> dict:
    s = face.source
    return {"key": key, "kind": kind, "label": label, "method": method, "split": s.split,
            "identity": s.identity, "video": s.video, "foreground_key": foreground_key}


def real_sample(face: Face) -> ShardSample:
    """The face as it is: label 0, all-zero X-ray and mask, hull of its landmarks."""
    key = sample_key(face.key, "real")
    size = face.size
    zeros = _zeros(size)
    meta = _meta(face, "real", "real") | {"key": key}
    encoded = encode_sample(key, face.image, zeros, zeros, quantize(hull_mask(face.landmarks, size)), 0, meta)
    return ShardSample(encoded, _index_row(key, face, "real", 0, "real"))


def blended_sample(pairing: Pairing, background: Face, foreground: Face, params: BlendParams,
                   seed: int) -> ShardSample:
    """The Face X-ray BI sample of a pairing: label 1; every random choice in its json."""
    result = blend(background.crop, foreground.crop, background.landmarks,
                   key_rng(seed, "blend", pairing.key), params)
    fg = foreground
    meta = _meta(background, "blended", "bi") | {
        "key": pairing.key, "seed": seed,
        "foreground": {"key": fg.key, "video": fg.source.video, "identity": fg.source.identity,
                       "neighbour_rank": pairing.neighbour_rank, "neighbours": pairing.neighbours},
        "blend": result.choices}
    encoded = encode_sample(pairing.key, result.image, result.xray, result.mask, result.hull, 1, meta)
    return ShardSample(encoded, _index_row(pairing.key, background, "blended", 1, "bi", fg.key))


def manipulated_sample(forgery: ForgeryCrop) -> ShardSample:
    """A crop of a manipulated video: label 1, its forgery mask, X-ray 4M(1-M) of the mask
    (a hard mask is first softened by a 3 x 3 Gaussian, Face X-ray Sec. 3.1), and the hull
    of the original frame's landmarks."""
    face = forgery.face
    key = sample_key(face.key, "fake")
    size = face.size
    method = face.source.method
    meta = _meta(face, "manipulated", method) | {
        "key": key, "original_key": sample_key(forgery.original_key, "real"),
        "mask_source": forgery.mask_source, "mask_area": round(float(forgery.mask.mean()), 5)}
    encoded = encode_sample(key, face.image, quantize(xray(forgery.mask)), quantize(forgery.mask),
                            quantize(hull_mask(face.landmarks, size)), 1, meta)
    return ShardSample(encoded, _index_row(key, face, "manipulated", 1, method))


def _route(face: Face, pairings_by_background):
    """(foreground key, (pairing or None, face)): the face to its own group (None), and to
    the group of each foreground it is the background of."""
    yield face.key, (None, face)
    for pairing in pairings_by_background[face.key]:
        yield pairing.foreground, (pairing, face)


class _SynthesizeFn(beam.DoFn):
    """One group: a face and the pairings that take it as foreground -> its real sample
    and those blended samples."""

    def __init__(self, params: BlendParams, seed: int):
        self._params, self._seed = params, seed
        self._real = Metrics.counter("samples", "real")
        self._blended = Metrics.counter("samples", "blended")

    def setup(self):
        prepare_worker_process()

    def process(self, group):
        _, members = group
        (face,) = [f for pairing, f in members if pairing is None]
        self._real.inc()
        yield real_sample(face)
        for pairing, background in members:
            if pairing is None:
                continue
            self._blended.inc()
            yield blended_sample(pairing, background, face, self._params, self._seed)


class SynthesizeSamples(beam.PTransform):
    """(faces, pairings) -> ShardSample: one real sample per face, one blended sample per
    pairing.

    Each face crosses between workers twice at most: once to its own group, which makes its
    real sample, and once to the group of each foreground it is blended with. A background
    is looked up in a multimap side input of the (light) pairings, so faces are never
    joined with a CoGroupByKey (whose Flatten would move every crop one extra time).
    """

    def __init__(self, params: BlendParams, seed: int):
        super().__init__()
        self._params, self._seed = params, seed

    def expand(self, inputs):
        faces, pairings = inputs
        by_background = pairings | "ByBackground" >> beam.Map(lambda p: (p.background, p))
        return (faces
                | "Route" >> beam.FlatMap(_route, beam.pvalue.AsMultiMap(by_background))
                | "GroupByForeground" >> beam.GroupByKey()
                | "Synthesize" >> beam.ParDo(_SynthesizeFn(self._params, self._seed)))
