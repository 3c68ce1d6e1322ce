"""Metric series as Parquet: how points are encoded into, and decoded from, run trees.

A run's points live in `metrics/part-NNNNNN.parquet` files, one per
checkpoint, in long format: `key` (string, dictionary-encoded), `step`
(int64), `timestamp` (int64, ms since the epoch, UTC) and `value` (float64;
NaN and ±inf are kept). Steps and timestamps are delta-encoded and values
byte-stream-split; git's zlib, which deflates every object it stores, does the
compressing, which makes a typical point cost a few bytes.

A part is read only after its footer: the row counts and uncompressed
sizes it declares bound what decoding allocates, and a read whose parts add
up to more than `schema.max_decode_bytes()` is refused before any is decoded
(a few KB of run-length-encoded Parquet can hold 300 million rows). A part
that does not decode as metrics is reported as `schema.Invalid`, which
readers turn into a CorruptRunError naming the run.

pyarrow is imported inside the functions so that `import gitxp` stays light.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import schema

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

COLUMNS = ("key", "step", "timestamp", "value")
# No Parquet compression: git deflates every object it stores, and zlib over the
# byte-stream-split values stores them in as few bytes as zstd did (a 300-point part:
# 2,559 bytes against 2,577; 15,000 points: 0.3% more), while a reader skips the
# decompressor entirely (a cold history read of a small part: 20-30% less in pyarrow).
COMPRESSION = "none"
ROW_GROUP_ROWS = 1 << 20
# How every part is encoded, whether written whole or merged row group by row group.
_WRITE_OPTIONS: dict[str, Any] = {
    "compression": COMPRESSION,
    "use_dictionary": ["key"],
    "column_encoding": {
        "step": "DELTA_BINARY_PACKED",
        "timestamp": "DELTA_BINARY_PACKED",
        "value": "BYTE_STREAM_SPLIT",
    },
    # no column statistics (nothing reads them: a run's parts are read whole) and
    # no embedded Arrow schema (the four types need none): ~370 bytes less a part
    "write_statistics": False,
    "store_schema": False,
}
PART_PREFIX = "metrics/part-"
PART_SUFFIX = ".parquet"


def part_name(sequence: int) -> str:
    """The tree path of the *sequence*-th metrics part."""
    return f"{PART_PREFIX}{sequence:06d}{PART_SUFFIX}"


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("step", pa.int64(), nullable=False),
            pa.field("timestamp", pa.int64(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
        ],
        metadata={b"gitxp.format": b"1"},
    )


def _buffer_array(arrow_type: Any, length: int, data: Any) -> Any:
    """An Arrow array over *data*'s buffer without a copy.

    Built from buffers rather than with `pa.array`, which imports pandas on
    first use: recording a run must not pay for pandas.
    """
    import pyarrow as pa

    return pa.Array.from_buffers(arrow_type, length, [None, pa.py_buffer(data)])


def encode_points(chunks: Sequence[tuple[str, array, array, array]]) -> bytes:  # type: ignore[type-arg]
    """Encode (key, steps, timestamps, values) chunks into one Parquet file."""
    import numpy as np
    import pyarrow as pa

    counts = [len(c[1]) for c in chunks]
    total = sum(counts)
    encoded = [c[0].encode("utf-8") for c in chunks]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(k) for k in encoded])
    dictionary = pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )
    indices = np.repeat(np.arange(len(chunks), dtype=np.int32), counts)
    table = pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(_buffer_array(pa.int32(), total, indices), dictionary),
            _buffer_array(
                pa.int64(), total, np.concatenate([np.frombuffer(c[1], np.int64) for c in chunks])
            ),
            _buffer_array(
                pa.int64(), total, np.concatenate([np.frombuffer(c[2], np.int64) for c in chunks])
            ),
            _buffer_array(
                pa.float64(),
                total,
                np.concatenate([np.frombuffer(c[3], np.float64) for c in chunks]),
            ),
        ],
        names=list(COLUMNS),
    )
    return _write(table)


def encode_table(table: pa.Table) -> bytes:
    """A table of the four metric columns encoded as one part, as gitxp writes parts."""
    return _write(table)


def _write(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=ROW_GROUP_ROWS, **_WRITE_OPTIONS)
    return sink.getvalue()


# Each decoded column costs at least 8 bytes a row (int64, float64; the key's
# offsets and text), and the key costs that again when it is materialised as text.
_MIN_ROW_BYTES = 8


def _estimate(metadata: Any) -> int:
    """About how many bytes decoding a part with this footer allocates."""
    total = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        rows = group.num_rows
        if rows < 0:
            raise ValueError(f"row group {i} claims {rows} rows")
        total += rows * _MIN_ROW_BYTES
        for j in range(group.num_columns):
            total += max(group.column(j).total_uncompressed_size, rows * _MIN_ROW_BYTES)
    return total


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@contextmanager
def _decoding(name: str) -> Iterator[None]:
    """Turn whatever pyarrow raises while decoding part *name* into `schema.Invalid`."""
    try:
        yield
    except MemoryError:
        raise
    except Exception as exc:
        raise schema.Invalid(f"{name} does not decode as metrics ({_first_line(exc)})") from None


def _open_parts(
    blobs: Iterable[bytes], names: Sequence[str] | None, dictionary_key: bool
) -> list[tuple[str, bytes, Any]]:
    """Open every part's footer and check the total against the decode limit, before
    decoding anything: (name, blob, opened reader) per part."""
    limit = schema.max_decode_bytes()
    total = 0
    opened = []
    for i, blob in enumerate(blobs):
        name = names[i] if names is not None else f"metric part {i + 1}"
        try:
            reader, metadata = _open(blob, dictionary_key)
            size = _estimate(metadata)
        except MemoryError:
            raise
        except Exception as exc:  # pyarrow raises many kinds for a damaged footer
            raise schema.Invalid(
                f"{name} is not a Parquet metric part ({_first_line(exc)})"
            ) from None
        total += size
        if total > limit:
            raise schema.Invalid(
                f"{name} declares {metadata.num_rows:,} rows; the parts of this read would "
                f"decode to about {total:,} bytes, over the limit of {limit:,} "
                "(GITXP_MAX_DECODE_BYTES); nothing was decoded"
            )
        opened.append((name, blob, reader))
    return opened


def decode_parts(
    blobs: Iterable[bytes],
    keys: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> pa.Table:
    """Read metric parts into one Arrow table (only *keys* when given).

    *names* name the parts in errors. Raises `schema.Invalid` for a part that
    is not a metric part, or for parts that would decode past the limit.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = []
    for name, blob, reader in _open_parts(blobs, names, False):
        # a part read whole, skipping the dataset layer read_table goes through:
        # the same table from an in-memory part, 3-4x faster for a run's small parts
        with _decoding(name):
            table = _read_opened(reader, blob, False).cast(
                pa.schema(
                    [
                        ("key", pa.string()),
                        ("step", pa.int64()),
                        ("timestamp", pa.int64()),
                        ("value", pa.float64()),
                    ]
                )
            )
        if keys is not None:
            table = table.filter(pc.is_in(table["key"], pa.array(list(keys), pa.string())))
        tables.append(table)
    if not tables:
        return (
            _schema()
            .empty_table()
            .cast(
                pa.schema(
                    [
                        ("key", pa.string()),
                        ("step", pa.int64()),
                        ("timestamp", pa.int64()),
                        ("value", pa.float64()),
                    ]
                )
            )
        )
    return pa.concat_tables(tables)


def part_tables(blobs: Sequence[bytes], names: Sequence[str]) -> list[pa.Table]:
    """Each metric part of one run as its own Arrow table of the four metric columns,
    the key dictionary-encoded (as parts store it), for readers that put many runs'
    parts side by side.

    The parts are checked together against the decode limit before any is decoded,
    as `decode_parts` checks them; errors are the same `schema.Invalid`s.
    """
    wanted = _canonical()
    out = []
    for name, blob, reader in _open_parts(blobs, names, True):
        with _decoding(name):
            table = _read_opened(reader, blob, True)
            if not table.schema.equals(wanted):
                # another writer's types (int32 steps, float32 values): the metric types
                table = table.select(list(COLUMNS)).cast(wanted)
        out.append(table)
    return out


_CANONICAL: list[Any] = []


def _canonical() -> pa.Schema:
    """The Arrow schema of a part read by `part_tables`: key a dictionary of strings,
    step and timestamp int64, value float64."""
    if not _CANONICAL:
        import pyarrow as pa

        _CANONICAL.append(
            pa.schema(
                [
                    ("key", pa.dictionary(pa.int32(), pa.string())),
                    ("step", pa.int64()),
                    ("timestamp", pa.int64()),
                    ("value", pa.float64()),
                ]
            )
        )
    return _CANONICAL[0]


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A long DataFrame (key, step, timestamp, value) sorted by key then step."""
    import numpy as np
    import pandas as pd

    keys = table.column("key").to_numpy(zero_copy_only=False)
    steps = table.column("step").to_numpy()
    # built from numpy columns: several times faster than Table.to_pandas() + sort_values
    order = np.lexsort((steps, keys)) if len(keys) else np.arange(0)
    return pd.DataFrame(
        {
            "key": keys[order],
            "step": steps[order],
            "timestamp": table.column("timestamp").to_numpy()[order],
            "value": table.column("value").to_numpy()[order],
        },
        copy=False,  # fancy indexing made fresh arrays already
    )


def _open(blob: bytes, dictionary_key: bool) -> tuple[Any, Any]:
    """A reader over one in-memory part with its footer parsed, and that footer.

    The reader `pq.ParquetFile` wraps is used directly where this pyarrow has
    it, which skips about 35 µs of Python a call (most of a history read is
    fixed cost like this); any other pyarrow takes the public route.
    """
    import pyarrow as pa

    reader_class = _parquet_reader()
    if reader_class is not None:
        reader = reader_class()
        reader.open(pa.BufferReader(blob), read_dictionary=[0] if dictionary_key else None)
        return reader, reader.metadata
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(pa.BufferReader(blob), read_dictionary=["key"] if dictionary_key else None)
    return pf, pf.metadata


def _read_opened(reader: Any, blob: bytes, dictionary_key: bool) -> pa.Table:
    """Every column of one opened part, decoded on this thread (a part is small:
    Arrow's thread pool costs more to wake than it saves)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(reader, pq.ParquetFile):
        table = reader.read_all(use_threads=False)
        if table.column_names == list(COLUMNS):
            return table
        # another writer's column order: read again by name (the key may not be first)
        reader = pq.ParquetFile(
            pa.BufferReader(blob), read_dictionary=["key"] if dictionary_key else None
        )
    return reader.read(columns=list(COLUMNS), use_threads=False)


_READER: list[Any] = []  # the class found on first use (an import statement per part
# costs a few µs of a history read that is mostly fixed cost)


def _parquet_reader() -> Any:
    """pyarrow's low-level Parquet reader class, or None where it is not there."""
    if not _READER:
        try:
            from pyarrow._parquet import ParquetReader
        except ImportError:  # pragma: no cover - every pyarrow gitxp supports has it
            ParquetReader = None
        _READER.append(ParquetReader)
    return _READER[0]


_HISTORY_COLUMNS: Any = None


def history_frame(step: Any, stamp: Any, value: Any) -> pd.DataFrame:
    """The (step, timestamp, value) DataFrame over three fresh numpy arrays, no copy.

    `DataFrame._from_arrays` with a column index built once takes half the time
    of the public dict constructor (which infers an index from the keys and
    checks every array again); the columns are int64, int64 and float64 by the
    format. A pandas without it gets the public constructor.
    """
    import pandas as pd

    global _HISTORY_COLUMNS
    if _HISTORY_COLUMNS is None:
        _HISTORY_COLUMNS = pd.Index(["step", "timestamp", "value"])
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is not None:
        try:
            return from_arrays(
                [step, stamp, value],
                columns=_HISTORY_COLUMNS._view(),  # each frame its own: names are settable
                index=pd.RangeIndex(len(step)),
                verify_integrity=False,
            )
        except TypeError:  # pragma: no cover - a pandas whose private signature moved
            pass
    return pd.DataFrame({"step": step, "timestamp": stamp, "value": value}, copy=False)


def read_history(
    blobs: Iterable[bytes], key: str, names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One metric's points from metric parts, ordered by step: step, timestamp, value.

    The key column stays dictionary-encoded and is matched by its index, so
    no string is compared per point. Errors as `decode_parts`.
    """
    import numpy as np

    steps, stamps, values = [], [], []
    for name, blob, reader in _open_parts(blobs, names, True):
        with _decoding(name):
            # all four columns are read (a part holds just these), by position
            keys, step_col, stamp_col, value_col = _read_opened(reader, blob, True).columns
            masks = []
            for chunk in keys.chunks:
                words = chunk.dictionary.to_pylist()
                if key in words:
                    masks.append(chunk.indices.to_numpy() == words.index(key))
                else:
                    masks.append(np.zeros(len(chunk), dtype=bool))
            if not masks:
                continue
            mask = masks[0] if len(masks) == 1 else np.concatenate(masks)
            if not mask.any():
                continue
            # boolean indexing copies: the frame below can own these arrays as they are
            steps.append(step_col.to_numpy()[mask])
            stamps.append(stamp_col.to_numpy()[mask])
            values.append(value_col.to_numpy()[mask])
    if not steps:
        empty = np.array([], np.int64)
        return history_frame(empty, empty.copy(), np.array([], np.float64))
    if len(steps) == 1:
        step, stamp, value = steps[0], stamps[0], values[0]
    else:
        step, stamp, value = np.concatenate(steps), np.concatenate(stamps), np.concatenate(values)
    if len(step) > 1 and (step[1:] < step[:-1]).any():  # parts are usually in step order
        order = np.argsort(step, kind="stable")
        step, stamp, value = step[order], stamp[order], value[order]
    return history_frame(step, stamp, value)


def merge_parts(blobs: Iterable[bytes]) -> bytes:
    """Re-encode several parts as one file, streaming row group by row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    writer: Any = None
    for blob in blobs:
        pf = pq.ParquetFile(pa.BufferReader(blob))
        for i in range(pf.num_row_groups):
            table = pf.read_row_group(i, columns=list(COLUMNS))
            table = (
                table.cast(
                    pa.schema(
                        [
                            ("key", pa.dictionary(pa.int32(), pa.string())),
                            ("step", pa.int64()),
                            ("timestamp", pa.int64()),
                            ("value", pa.float64()),
                        ]
                    )
                )
                if not pa.types.is_dictionary(table.schema.field("key").type)
                else table
            )
            if writer is None:
                writer = pq.ParquetWriter(sink, table.schema, **_WRITE_OPTIONS)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    if writer is None:
        return b""
    writer.close()
    return sink.getvalue()
