"""Many runs' metric points as one long table: `run_id, key, step, timestamp, value`.

`Repo.metrics()` decodes every part of every run it reads (see
`metrics.part_tables`), then hands them here: the tables are concatenated
once, the wanted keys kept with one vectorised comparison, each row given its
run as an index into the list of runs (no string is repeated per point), the
rows put in order (run, key, step) only when they are not already, and the
result converted to pandas once. `run_id` and `key` come out as pandas
categoricals: a long frame repeats a few distinct values hundreds of thousands
of times, and a categorical stores each once.

pyarrow and pandas are imported inside the functions so that `import gitxp`
stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

COLUMNS = ("run_id", "key", "step", "timestamp", "value")


def long_table(
    runs: Sequence[tuple[str, Sequence[pa.Table]]], keys: Sequence[str] | None = None
) -> pa.Table:
    """One Arrow table of every point of *runs* ((run id, decoded part tables) pairs),
    only *keys* when given: run_id and key dictionary-encoded, ordered by run (in the
    order given), key (alphabetical), then step (the order of logging within a step)."""
    import numpy as np
    import pyarrow as pa

    tables: list[pa.Table] = []
    owner: list[int] = []
    for index, (_, parts) in enumerate(runs):
        for table in parts:
            if table.num_rows:
                tables.append(table)
                owner.append(index)
    if not tables:
        return empty_table()
    table = pa.concat_tables(tables).unify_dictionaries()
    counts = np.fromiter((t.num_rows for t in tables), dtype=np.int64, count=len(tables))
    run_codes = np.repeat(np.asarray(owner, dtype=np.int32), counts)
    key_column = table.column("key")
    words = key_column.chunk(0).dictionary.to_pylist()  # one dictionary for every chunk now
    codes = np.concatenate(
        [c.indices.to_numpy(zero_copy_only=False) for c in key_column.chunks]
    ).astype(np.int32, copy=False)
    if keys is not None:
        chosen = set(keys)
        wanted = [i for i, w in enumerate(words) if w in chosen]
        mask = np.isin(codes, np.asarray(wanted, dtype=np.int32))
        if not mask.any():
            return empty_table()
        table = table.filter(pa.array(mask))
        run_codes, codes = run_codes[mask], codes[mask]
    # the keys that have points, renumbered so that their codes sort as the words do
    present = np.unique(codes)
    kept = np.array([words[i] for i in present], dtype=object)
    alphabetical = np.argsort(kept, kind="stable")
    rank = np.full(len(words), -1, dtype=np.int32)
    rank[present[alphabetical]] = np.arange(len(present), dtype=np.int32)
    key_codes = rank[codes]
    steps = table.column("step").to_numpy()
    order = _order(run_codes, key_codes, steps)
    used = np.unique(run_codes)  # only the runs that have points, in the order given
    remap = np.full(len(runs), -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    run_ids = pa.array([runs[i][0] for i in used], pa.string())
    sorted_words = pa.array(kept[alphabetical].tolist(), pa.string())
    columns = [
        pa.DictionaryArray.from_arrays(_take(remap[run_codes], order), run_ids),
        pa.DictionaryArray.from_arrays(_take(key_codes, order), sorted_words),
        _take(steps, order),
        _take(table.column("timestamp").to_numpy(), order),
        _take(table.column("value").to_numpy(), order),
    ]
    return pa.Table.from_arrays(columns, schema=schema())


def _order(run_codes: Any, key_codes: Any, steps: Any) -> Any:
    """The permutation putting rows in (run, key, step) order, stable (None: they already are)."""
    import numpy as np

    n = len(steps)
    if n < 2:
        return None
    run_step = np.diff(run_codes)
    key_step = np.diff(key_codes)
    ordered = (run_step > 0) | (
        (run_step == 0) & ((key_step > 0) | ((key_step == 0) & (np.diff(steps) >= 0)))
    )
    if bool(ordered.all()):
        return None
    return np.lexsort((steps, key_codes, run_codes))


def _take(values: Any, order: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    return pa.array(values if order is None else np.ascontiguousarray(values[order]))


def schema() -> pa.Schema:
    """The Arrow schema of a long table."""
    import pyarrow as pa

    return pa.schema(
        [
            ("run_id", pa.dictionary(pa.int32(), pa.string())),
            ("key", pa.dictionary(pa.int32(), pa.string())),
            ("step", pa.int64()),
            ("timestamp", pa.int64()),
            ("value", pa.float64()),
        ]
    )


def empty_table() -> pa.Table:
    """A long table without rows, of the same schema."""
    return schema().empty_table()


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The long table as pandas: run_id and key categoricals (of strings), step and
    timestamp int64 (ms since the epoch, UTC, for timestamp), value float64."""
    import pandas as pd

    frame = table.to_pandas()
    for column in ("run_id", "key"):
        if not isinstance(frame[column].dtype, pd.CategoricalDtype):  # pragma: no cover
            frame[column] = frame[column].astype("category")
    return frame
