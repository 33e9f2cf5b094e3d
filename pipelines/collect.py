"""Transforms that hold on every runner, Beam's DaskRunner included.

The DaskRunner (Beam 2.77) computes only the last transform applied and what it depends
on; it hands every output of a multi-output ParDo to each consumer, whatever its tag; and
it computes a side input by re-running its whole upstream inside the consuming task. So
the pipelines never use tagged outputs, `Partition`, side inputs or `CombineGlobally`
(whose default value is a side input): a DoFn yields one stream of typed items that
consumers select with `Only`; a barrier is a `Gather`, a GroupByKey on one int key.
"""
from __future__ import annotations

from typing import Any

import apache_beam as beam

_ONE_KEY = 0
"""The key every element is grouped under (an int: its hash is the same in every process)."""


class _Marker:
    """Stands for "no element" so that an empty input still gives one (empty) list."""

    def __eq__(self, other):
        return isinstance(other, _Marker)

    def __hash__(self):
        return 0


class Gather(beam.PTransform):
    """PCollection -> one element: the list of all its elements, in no defined order (an
    empty list when there are none). A barrier: what consumes it starts once its input is
    complete. All elements go to one worker: use it for records, never pixels."""

    def expand(self, pcoll):
        marker = pcoll.pipeline | "Marker" >> beam.Create([(_ONE_KEY, _Marker())])
        keyed = pcoll | "Key" >> beam.Map(lambda element: (_ONE_KEY, element))
        return ((marker, keyed)
                | "Join" >> beam.Flatten()
                | "Group" >> beam.GroupByKey()
                | "Unmark" >> beam.MapTuple(lambda _, elements: [e for e in elements if not isinstance(e, _Marker)]))


def _of_type(kind: type | tuple[type, ...]):
    def select(element: Any):
        if isinstance(element, kind):
            yield element
    return select


class Only(beam.PTransform):
    """The elements of a mixed stream that are instances of `kind` (instead of a tagged
    output)."""

    def __init__(self, kind: type | tuple[type, ...]):
        super().__init__()
        self._kind = kind

    def expand(self, pcoll):
        return pcoll | "Select" >> beam.FlatMap(_of_type(self._kind))
