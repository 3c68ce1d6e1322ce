"""The points a run has logged and not yet committed, and the calls that log them.

`MetricBuffer` keeps one `Series` per metric key (`gitxp.tracking.series`)
and counts the points waiting. `Run` is a `MetricBuffer`: a base class, not
a member, so that `log_metric` (a hot path, a fraction of a microsecond)
reaches the run's own attributes with no step between. A commit takes the
waiting points (`_flush_points`); a commit that fails gives them back
(`_attempt`), ahead of anything logged since, for the next one to retry.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..format.status import now_ms
from ..format.values import check_int, check_key, int_array, to_float
from ..store.transaction import Attempt, points
from .series import Series

if TYPE_CHECKING:
    from ..store.writer import Chunk, RunWriter


class MetricBuffer:
    """The metric points of a run waiting for a commit; a checkpoint is due once
    *buffer_points* of them wait.

    A subclass provides `checkpoint()` (commit now) and `_check_open(call)`
    (raise when the run has ended).
    """

    def __init__(self, buffer_points: int) -> None:
        self._series: dict[str, Series] = {}
        self._held: list[Chunk] = []  # points taken by commits that failed, to retry
        self._pending = 0
        # log_metric checkpoints once _buffer_points wait; a failed commit raises it (_attempt)
        self._buffer_points = self._buffer_limit = buffer_points
        self._try: Attempt | None = None  # the commit under way

    def checkpoint(self) -> bool:
        raise NotImplementedError

    def _check_open(self, call: str) -> None:
        raise NotImplementedError

    def _new_series(self, key: str) -> Series:
        self._check_open("log_metric")
        check_key("metric", key)
        series = Series(key)
        self._series[key] = series
        return series

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point of metric *key* (step defaults to the key's next step)."""
        s = self._series.get(key)
        if s is None:
            s = self._new_series(key)
        if type(value) is not float:
            value = to_float(key, value)
        if step is None:
            step = s.next_step
        elif type(step) is not int:
            step = check_int(key, "step", step)
        ts = (
            time.time_ns() // 1_000_000
            if timestamp is None
            else check_int(key, "timestamp", timestamp)
        )
        try:
            s.steps.append(step)  # first: an out-of-range step fails before anything is stored
        except OverflowError:
            raise InvalidValueError(
                f"metric {key!r}", f"step {step} does not fit in int64"
            ) from None
        s.ts.append(ts)
        s.vals.append(value)
        s.next_step = step + 1
        self._pending += 1
        if self._pending >= self._buffer_points:
            self.checkpoint()

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point for each key of *metrics*, all at the same step and time."""
        if not isinstance(metrics, Mapping):
            raise InvalidValueError("metrics", f"expected a dict, got {type(metrics).__name__}")
        ts = now_ms() if timestamp is None else timestamp
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    def log_metric_array(
        self,
        key: str,
        values: Iterable[float],
        steps: Iterable[int] | None = None,
        timestamps: Iterable[int] | None = None,
    ) -> None:
        """Record a whole array of points of *key* at once (vectorised, numpy-fast).

        Steps default to consecutive steps after the key's last one;
        timestamps default to now.
        """
        self._check_open("log_metric_array")
        vals = float_values(key, values)
        s = self._series.get(key)
        if s is None:
            check_key("metric", key)
        first = 0 if s is None else s.next_step
        st, tss = steps_and_times(key, len(vals), steps, timestamps, first)
        if len(vals) == 0:
            return
        if s is None:  # only once the points are known good: a failed call leaves no key
            s = self._new_series(key)
        s.extend(st, tss, vals)
        self._pending += len(vals)
        if self._pending >= self._buffer_points:
            self.checkpoint()

    # -- for commits -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _attempt(self, writer: RunWriter, meta: dict[str, Any]) -> Iterator[Attempt]:
        """One all-or-nothing try at committing through *writer* (`gitxp.store.transaction`);
        a try made inside another joins it. A try that fails puts *meta* back and keeps
        the points it took, ahead of any logged since, for the next one."""
        if self._try is not None:
            yield self._try
            return
        attempt = self._try = Attempt(writer, meta)
        try:
            with attempt:
                yield attempt
        finally:
            self._try = None
            if attempt.failed:
                self._held = attempt.chunks + self._held
                self._pending += points(attempt.chunks)
                # a full buffer retries at the next timed checkpoint, or once as many
                # points again have come in: not on every point logged meanwhile
                self._buffer_points = self._pending + self._buffer_limit
            else:
                self._buffer_points = self._buffer_limit

    def _flush_points(self, writer: RunWriter) -> int:
        """Encode the points waiting as *writer*'s next metric part; how many there were."""
        chunks = take_points(self._series, self._held, self._try)
        self._held = []
        self._pending = 0
        return writer.add_part(chunks)

    def _unwritten(self) -> list[Chunk]:
        """Take every point no commit holds (the final commit failed: they go elsewhere)."""
        chunks = self._held + [(k, *t) for k, s in self._series.items() if (t := s.take())]
        self._held = []
        self._pending = 0
        return chunks


def float_values(key: str, values: Iterable[float]) -> Any:
    """*values* (points of metric *key*) as a flat float64 numpy array, or InvalidValueError."""
    import numpy as np

    if values is None:
        raise InvalidValueError(f"metric {key!r}", "values must be numbers, got None")
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidValueError(f"metric {key!r}", "values must be numbers") from None


def steps_and_times(
    key: str,
    n: int,
    steps: Iterable[int] | None,
    timestamps: Iterable[int] | None,
    first: int,
) -> tuple[Any, Any]:
    """int64 arrays of the steps (default: *first* on) and timestamps (default: now) of
    *n* points of metric *key*."""
    import numpy as np

    if steps is None:
        st = np.arange(first, first + n, dtype=np.int64)
    else:
        st = int_array(key, "steps", steps, n)
    if timestamps is None:
        tss = np.full(n, now_ms(), dtype=np.int64)
    else:
        tss = int_array(key, "timestamps", timestamps, n)
    return st, tss


def take_points(
    series: Mapping[str, Series], held: list[Chunk], attempt: Attempt | None
) -> list[Chunk]:
    """The points to commit now, one chunk per key: those *held* from failed commits, then
    the newly logged.

    Each key's summary counts them from here on; *attempt* (the commit under
    way) notes each summary as it was, and the chunks, to put back if it fails.
    """
    earlier = {c[0]: c for c in held}
    chunks: list[Chunk] = []
    for key, s in list(series.items()):
        taken = s.take()
        old = earlier.pop(key, None)
        if old is not None:
            taken = (
                old[1:]
                if taken is None
                else (old[1] + taken[0], old[2] + taken[1], old[3] + taken[2])
            )
        if taken is None:
            continue
        if attempt is not None:
            attempt.taking(key, s)
        s.add(*taken)
        chunks.append((key, *taken))
    if attempt is not None:
        attempt.chunks.extend(chunks)
    return chunks
