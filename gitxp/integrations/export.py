"""`gitxp export parquet`: every run and metric point as a Hive-partitioned dataset.

    OUTDIR/
      runs.parquet                          one row per run (as `Repo.runs()`, plus
                                            parent, source, user, host, commit)
      metrics/experiment=<exp>/run=<id>/part-0.parquet
                                            key, step, timestamp (ms, UTC), value

Partition values are URI-encoded, as pyarrow, DuckDB, Spark and polars
expect. With ``fmt="csv"`` the same layout holds `.csv` files. A manifest
(`_gitxp_export.json`) remembers which commit of each run was written, so
exporting again rewrites only runs that changed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidValueError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "_gitxp_export.json"
EXTRA_COLUMNS = ("parent", "source", "user", "host", "commit")


@dataclass
class ExportResult:
    """What an export wrote: runs written, runs unchanged since the last export, points."""

    outdir: str
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    points: int = 0
    notes: list[str] = field(default_factory=list)  # columns written as text, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "outdir": self.outdir,
            "written": self.written,
            "unchanged": self.unchanged,
            "points": self.points,
            "notes": self.notes,
        }


def _uniform(
    frame: pd.DataFrame, raw: dict[str, list[Any]], notes: list[str] | None = None
) -> pd.DataFrame:
    """One type per column, so Arrow and CSV readers agree: integer params stay int64
    (nullable: a run without the param is null, not NaN), ints mixed with floats are
    float64, and mixed types (an int here, text there) become text, noted in *notes*;
    lists and objects become JSON. *raw* holds the params' values as recorded."""
    import pandas as pd

    for col in frame.columns:
        values = raw.get(col, list(frame[col]))
        kinds = {type(v) for v in values if v is not None}
        if kinds == {int}:
            frame[col] = pd.array(values, dtype="Int64")
            continue
        if frame[col].dtype != object:
            continue
        if kinds <= {int} or kinds <= {float, int} or kinds <= {bool} or kinds <= {str}:
            continue
        if notes is not None and len(kinds) > 1:
            names = ", ".join(sorted(k.__name__ for k in kinds))
            notes.append(f"{col} has values of several types ({names}): written as text")
        frame[col] = [
            None if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else str(v))
            for v in frame[col]
        ]
    return frame


def runs_table(rows: list[dict[str, Any]], notes: list[str] | None = None) -> pd.DataFrame:
    """The runs table: the columns of `Repo.runs()` plus parent, source, user, host, commit.

    A param column of mixed types is written as text, with a line in *notes*.
    """
    from ..store.query import to_frame

    frame = to_frame(rows)
    for i, col in enumerate(EXTRA_COLUMNS):
        frame.insert(7 + i, col, [r.get(col) for r in rows])
    keys = {k for r in rows for k in (r.get("params") or {})}
    raw = {f"params.{k}": [(r.get("params") or {}).get(k) for r in rows] for k in keys}
    return _uniform(frame, raw, notes)


def _write(frame: Any, path: str, fmt: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = (
            frame
            if isinstance(frame, pa.Table)
            else pa.Table.from_pandas(frame, preserve_index=False)
        )
        pq.write_table(table, tmp, compression="zstd")
    else:
        if not hasattr(frame, "to_csv"):
            frame = frame.to_pandas()
        frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def export_parquet(
    outdir: str | os.PathLike[str],
    repo: str | os.PathLike[str] = ".",
    *,
    fmt: str = "parquet",
    filter: str | None = None,
    experiment: str | list[str] | None = None,
) -> ExportResult:
    """Write the runs of *repo* (optionally filtered) as a dataset under *outdir*."""
    from ..format.metrics import decode_parts
    from ..store.repo import open as open_repo

    if fmt not in ("parquet", "csv"):
        raise InvalidValueError("format", f"{fmt!r} must be parquet or csv")
    out = os.path.abspath(os.fspath(outdir))
    if os.path.exists(out) and not os.path.isdir(out):
        raise InvalidValueError("OUTDIR", f"{out} exists and is not a directory")
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, MANIFEST)
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("format") != fmt:
            manifest = {}
    except (OSError, ValueError):
        manifest = {}
    done: dict[str, dict[str, str]] = manifest.get("runs", {})
    result = ExportResult(outdir=out)
    ext = fmt
    with open_repo(repo) as handle:
        rows = handle.rows(filter, experiment)
        for row in rows:
            run_id = row["id"]
            exp = row.get("experiment") or "default"
            rel = f"metrics/experiment={quote(exp, safe='')}/run={run_id}"
            previous = done.get(run_id)
            if previous and previous["commit"] == row["commit"] and previous["dir"] == rel:
                result.unchanged.append(run_id)
                continue
            if previous:
                shutil.rmtree(os.path.join(out, previous["dir"]), ignore_errors=True)
            record = handle.run(run_id)
            table = decode_parts(record._part_blobs())
            table = table.sort_by([("key", "ascending"), ("step", "ascending")])
            if table.num_rows:
                _write(
                    table if fmt == "parquet" else table.to_pandas(),
                    os.path.join(out, rel, f"part-0.{ext}"),
                    fmt,
                )
            result.points += table.num_rows
            done[run_id] = {"commit": row["commit"], "dir": rel}
            result.written.append(run_id)
        _write(runs_table(rows, result.notes), os.path.join(out, f"runs.{ext}"), fmt)
    # the dataset mirrors this export's selection: drop runs no longer in it
    selected = {r["id"] for r in rows}
    for run_id in [r for r in done if r not in selected]:
        shutil.rmtree(os.path.join(out, done.pop(run_id)["dir"]), ignore_errors=True)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"format": fmt, "runs": done}, f)
    os.replace(tmp, manifest_path)
    return result
