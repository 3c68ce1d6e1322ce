"""One listing of a repository's runs, read from the listing cache on demand.

A `Listing` is what `RunIndex.listing()` returns: every listed ref in
listing order (newest first), over a `listing_cache.CacheFile`. Selecting
runs (an experiment, a filter, an ordering) reads only the columns involved;
rows and DataFrames are then made for the selected runs alone. What depends
on the current time (a RUNNING run's effective status and duration) is
computed here, at read time, never cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..format.status import effective_status
from .filter import compile_filter, parse_order_by, sort_indices
from .listing_cache import KINDS, CacheFile
from .predicates import Field

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = ("id", "name", "experiment", "status", "start_time", "end_time", "code_commit")


class Listing:
    """The runs of one listing, in listing order; *now* (ms) is the time statuses are
    judged at, and *overrides* ({index: row}) replace rows that could not be cached."""

    def __init__(self, cache: CacheFile, now: int, overrides: dict[int, dict[str, Any]]) -> None:
        self.cache = cache
        self.now = now
        self.overrides = overrides
        self._status: list[Any] | None = None
        self._duration: list[float | None] | None = None

    def __len__(self) -> int:
        return self.cache.n

    def _stored(self, i: int) -> dict[str, Any]:
        row = self.overrides.get(i)
        return dict(row) if row is not None else self.cache.row(i)

    def _finish(self, row: dict[str, Any]) -> dict[str, Any]:
        # a stored row holds its `ref` already (last of its members, as a row always had)
        row["status"] = effective_status(row, self.now)
        end = row.get("end_time") or (self.now if row["status"] == "RUNNING" else None)
        start = row.get("start_time")
        row["duration"] = None if end is None or start is None else (end - start) / 1000
        return row

    def rows(self, indices: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """The rows of the runs at *indices* (None: all), with `ref`, the effective
        `status` and `duration` — the dicts `Repo.rows()` gives."""
        if indices is None or _everyone(indices, self.cache.n):
            stored = self.cache.all_rows()
            for i, row in self.overrides.items():
                stored[i] = dict(row)
            return [self._finish(row) for row in stored]
        return [self._finish(self._stored(i)) for i in indices]

    # -- columns -------------------------------------------------------------
    def statuses(self) -> list[Any]:
        """Each run's status as readers report it (`effective_status` at `now`)."""
        if self._status is None:
            stored = self.cache.column("status")
            try:
                final = all(type(s) is str and s and s != "RUNNING" for s in set(stored))
            except TypeError:  # an unhashable status: judged run by run below
                final = False
            if final and not self.overrides:
                self._status = stored  # no run's status depends on the time: the common case
                return stored
            out = list(stored)
            for i, s in enumerate(stored):
                if s == "RUNNING" or not s or type(s) is not str or i in self.overrides:
                    out[i] = effective_status(self._stored(i), self.now)
            self._status = out
        return self._status

    def durations(self) -> list[float | None]:
        if self._duration is None:
            starts = self.cache.column("start_time")
            ends = self.cache.column("end_time")
            out: list[float | None] = []
            for start, end, status in zip(starts, ends, self.statuses(), strict=True):
                stop = end or (self.now if status == "RUNNING" else None)
                out.append(None if stop is None or start is None else (stop - start) / 1000)
            self._duration = out
        return self._duration

    def column(self, field: Field) -> Sequence[Any]:
        """The value of *field* for every run (None where a run lacks it)."""
        if field.kind == "attr":
            if field.key == "status":
                return self.statuses()
            if field.key == "duration":
                return self.durations()
            return self.cache.column(field.key)
        if field.key not in self.cache.header["keys"][field.kind]:
            return [None] * self.cache.n
        return self.cache.dense(field.kind, field.key, None)

    # -- selecting -----------------------------------------------------------
    def select(
        self,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        order_by: str | list[str] | None = None,
    ) -> Sequence[int]:
        """The indexes of the runs `query.select` would keep, in its order."""
        chosen: Sequence[int] = range(self.cache.n)
        if experiment is not None:
            wanted = wanted_experiments(experiment)
            names = self.cache.column("experiment")
            chosen = [i for i in chosen if names[i] in wanted]
        if filter:
            chosen = compile_filter(filter).select(self.column, chosen)
        order = parse_order_by(order_by)
        if order:
            chosen = sort_indices(chosen, order, self.column)
        return chosen

    def frame(self, indices: Sequence[int] | None = None) -> pd.DataFrame:
        """The DataFrame of `Repo.runs()` for the runs at *indices* (None: all), built
        column by column; equal to `query.to_frame` of their rows."""
        import numpy as np
        import pandas as pd

        n = self.cache.n
        everyone = indices is None or _everyone(indices, n)
        picked: Sequence[int] = range(n) if indices is None else indices

        def take(col: Sequence[Any]) -> list[Any]:
            return list(col) if everyone else [col[i] for i in picked]

        columns: dict[str, Any] = {}
        for name in BASE_COLUMNS:
            columns[name] = take(self.statuses() if name == "status" else self.cache.column(name))
        nat = np.iinfo(np.int64).min  # NaT as an int64 of datetime64
        for name in ("start_time", "end_time"):
            ms = np.array([nat if v is None else v for v in columns[name]], dtype=np.int64)
            columns[name] = pd.DatetimeIndex(ms.view("datetime64[ms]")).tz_localize("UTC")
        marks: bytearray | None = None
        if not everyone:
            marks = bytearray(n)
            for i in picked:
                marks[i] = 1
        nan = float("nan")
        for kind in KINDS:
            for key in sorted(self.cache.keys(kind)):
                idx, values = self.cache.keyed(kind, key)
                if marks is not None and (
                    not picked or (idx is not None and not any(marks[i] for i in idx))
                ):
                    continue  # no selected run has the key
                if idx is not None:
                    dense: list[Any] = [None] * n
                    for i, v in zip(idx, values, strict=True):
                        dense[i] = v
                    values = dense
                col = take(values)
                if kind == "metrics":
                    columns[f"metrics.{key}"] = np.array(
                        [nan if v is None else v for v in col], dtype=np.float64
                    )
                else:
                    columns[f"{kind}.{key}"] = col
        return pd.DataFrame(columns)


def _everyone(indices: Sequence[int], n: int) -> bool:
    """Whether *indices* are all n runs in listing order."""
    if isinstance(indices, range):
        return indices == range(n)
    return len(indices) == n and all(i == k for k, i in enumerate(indices))


def wanted_experiments(experiment: str | list[str]) -> set[str]:
    """The experiment names *experiment* gives (one or a list); InvalidValueError otherwise."""
    if not isinstance(experiment, (str, list, tuple, set, frozenset)) or not all(
        isinstance(e, str) for e in ([experiment] if isinstance(experiment, str) else experiment)
    ):
        raise InvalidValueError(
            "experiment", f"{experiment!r}: give an experiment name or a list of names"
        )
    return {experiment} if isinstance(experiment, str) else set(experiment)
