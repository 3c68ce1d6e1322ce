"""Compiled filters: a condition tree judging one run row, or many runs column by column.

`filter.compile_filter` parses the filter grammar into these nodes. Called on a
row (a dict of the listing), a node says whether the run matches; `select`
gives the same verdicts for many runs at once, reading one column of values
per field (`listing.Listing.column`), so a listing of 100,000 runs decodes
only the fields a filter names and makes no dict per run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]


class Field:
    """A field a filter or an ordering reads: an attribute (kind "attr", key the row member)
    or a key of the row's params, metrics or tags. Called on a row, it gives the value
    (None when the row lacks it)."""

    __slots__ = ("key", "kind")

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key

    def __call__(self, row: Row) -> Any:
        if self.kind == "attr":
            return row.get(self.key)
        return (row.get(self.kind) or {}).get(self.key)

    def __repr__(self) -> str:
        return f"Field({self.kind!r}, {self.key!r})"


# The values of one field for every run of a listing (None where a run lacks it), for
# evaluating a filter column by column (`Filter.select`) instead of run by run.
Column = Callable[[Field], Sequence[Any]]


class Filter:
    """A compiled filter: called on a run row it says whether the run matches; `select`
    gives the same verdicts for many runs at once, reading one column per field."""

    def __call__(self, row: Row) -> bool:
        raise NotImplementedError

    def select(self, column: Column, candidates: Sequence[int]) -> list[int]:
        """The *candidates* (indexes into the columns) that match, in their order."""
        raise NotImplementedError


class Leaf(Filter):
    """One condition: *test* of the value of *field*."""

    def __init__(self, field: Field, test: Callable[[Any], bool]) -> None:
        self.field = field
        self.test = test

    def __call__(self, row: Row) -> bool:
        return self.test(self.field(row))

    def select(self, column: Column, candidates: Sequence[int]) -> list[int]:
        values = column(self.field)
        test = self.test
        seen: dict[str, bool] = {}  # a string's verdict: params repeat a few values
        out = []
        for i in candidates:
            v = values[i]
            if type(v) is str:
                hit = seen.get(v)
                if hit is None:
                    hit = seen[v] = test(v)
            else:
                hit = test(v)
            if hit:
                out.append(i)
        return out


class AllOf(Filter):
    """Conditions joined by `and`: each narrows the runs the next one is asked about."""

    def __init__(self, parts: list[Filter]) -> None:
        self.parts = parts

    def __call__(self, row: Row) -> bool:
        return all(p(row) for p in self.parts)

    def select(self, column: Column, candidates: Sequence[int]) -> list[int]:
        out = list(candidates)
        for part in self.parts:
            if not out:
                break
            out = part.select(column, out)
        return out


class AnyOf(Filter):
    """Conditions joined by `or`: each is asked only about runs none before matched."""

    def __init__(self, parts: list[Filter]) -> None:
        self.parts = parts

    def __call__(self, row: Row) -> bool:
        return any(p(row) for p in self.parts)

    def select(self, column: Column, candidates: Sequence[int]) -> list[int]:
        matched: set[int] = set()
        rest: Sequence[int] = candidates
        for part in self.parts:
            if not rest:
                break
            found = part.select(column, rest)
            matched.update(found)
            if found:
                rest = [i for i in rest if i not in matched]
        return [i for i in candidates if i in matched]


class Negation(Filter):
    """`not` a condition."""

    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    def __call__(self, row: Row) -> bool:
        return not self.inner(row)

    def select(self, column: Column, candidates: Sequence[int]) -> list[int]:
        found = set(self.inner.select(column, candidates))
        return [i for i in candidates if i not in found]
