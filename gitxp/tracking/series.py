"""The buffered, not yet committed points of one metric key, and its running summary.

Points go into typed arrays (`array('q')` for steps and timestamps,
`array('d')` for values): appending costs a fraction of a microsecond. A
logging thread only appends; the checkpointer takes a prefix (`take`), then
deletes it. Under the GIL both are atomic per array, so no lock sits on the
logging path. The summary counts a point once the commit holding it is being
written (`add`); a failed write puts the summary back (`state`/`restore`).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import Any

from ..format.values import from_json_float, json_float


class Series:
    """The buffered, not yet committed points of one metric key, and its running summary."""

    __slots__ = (
        "count",
        "key",
        "last",
        "last_step",
        "last_ts",
        "max",
        "min",
        "next_step",
        "steps",
        "ts",
        "vals",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.steps = array("q")
        self.ts = array("q")
        self.vals = array("d")
        self.next_step = 0
        self.count = 0
        self.last: float | None = None
        self.last_step = -(2**63)
        self.last_ts = 0
        self.min: float | None = None
        self.max: float | None = None

    def take(self) -> tuple[array, array, array] | None:  # type: ignore[type-arg]
        """Remove and return the buffered points (safe against concurrent appends).

        The summary does not count them yet: the caller `add`s them when it commits.
        """
        n = len(self.vals)  # values are appended last, so steps/ts hold at least n
        if n == 0:
            return None
        steps, ts, vals = self.steps[:n], self.ts[:n], self.vals[:n]
        del self.steps[:n]
        del self.ts[:n]
        del self.vals[:n]
        return steps, ts, vals

    def extend(self, steps: Any, ts: Any, vals: Any) -> None:
        """Buffer whole int64/int64/float64 numpy arrays of points (see `array_points`)."""
        self.next_step = int(steps[-1]) + 1
        self.steps.frombytes(steps.tobytes())
        self.ts.frombytes(ts.tobytes())
        self.vals.frombytes(vals.tobytes())

    def state(self) -> tuple[Any, ...]:
        """The summary as it is now, for `restore` after a failed commit."""
        return (self.count, self.last, self.last_step, self.last_ts, self.min, self.max)

    def restore(self, state: tuple[Any, ...]) -> None:
        self.count, self.last, self.last_step, self.last_ts, self.min, self.max = state

    def add(self, steps: array, ts: array, vals: array) -> None:  # type: ignore[type-arg]
        """Count *steps*, *ts*, *vals* (taken points) in the summary."""
        import numpy as np

        v = np.frombuffer(vals, dtype=np.float64)
        s = np.frombuffer(steps, dtype=np.int64)
        self.count += len(v)
        finite = v[~np.isnan(v)]
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
        # the latest point is the one with the highest step; the last logged wins ties
        i = len(s) - 1 - int(np.argmax(s[::-1]))
        if int(s[i]) >= self.last_step:
            self.last_step = int(s[i])
            self.last = float(v[i])
            self.last_ts = int(ts[i])

    def latest(self) -> tuple[float, int, int] | None:
        """(value, step, timestamp) of the point a listing shows as this key's last value:
        the one at the highest step, the later logged on a tie, buffered points included;
        None when nothing was logged."""
        best = None if self.last is None else (self.last, self.last_step, self.last_ts)
        for i in range(len(self.vals)):
            if best is None or self.steps[i] >= best[1]:
                best = (float(self.vals[i]), int(self.steps[i]), int(self.ts[i]))
        return best

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "last": None if self.last is None else json_float(self.last),
            "step": None if self.count == 0 else self.last_step,
            "timestamp": self.last_ts or None,
            "min": None if self.min is None else json_float(self.min),
            "max": None if self.max is None else json_float(self.max),
        }


def from_summary(key: str, s: Mapping[str, Any]) -> Series:
    """The series of *key* of a committed run, from its summary.json entry *s* (nothing buffered)."""
    series = Series(key)
    step = s.get("step")
    series.count = s.get("count", 0)
    series.last = from_json_float(s.get("last"))
    series.last_step = -(2**63) if step is None else step
    series.last_ts = s.get("timestamp") or 0
    series.min = from_json_float(s.get("min"))
    series.max = from_json_float(s.get("max"))
    series.next_step = 0 if step is None else step + 1
    return series
