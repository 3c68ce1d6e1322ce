"""`Repo.dataset()`: every run's metric parts as Parquet files that query engines read in place.

A run's parts are git blobs, which DuckDB, Polars or pyarrow cannot open.
So each part is copied once into a content-addressed cache,
`.git/gitxp/metrics-v1/run_id=<run id>/<blob id>.parquet`: the file holds the
blob's bytes (or, for a part another writer encoded with other column types,
the same points re-encoded with the metric types), so a file never goes
stale, and the `run_id=` directories (hive partitioning) give every row its
run. A call copies only the parts it has not seen, deletes the files of a
run's parts that its tip no longer holds (a finished run merges its
checkpoint parts), and deletes the directories of runs that are gone (removed,
or never fetched here). A part is decoded in full, within the decode limit,
before it is copied: a file in the cache was a valid metric part.

The cache is derived data: it is never pushed and can be deleted at any
time. It costs about as much disk as the metric parts themselves, which are
stored without Parquet compression (git's zlib compresses them in the
repository), plus a file-system block or so per part.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import GitxpError
from ..format.ids import is_run_id
from .bulk import Parts, PartsIndex, decode_run, read_part_blobs, select_runs

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pa_ds

    from ..git.repository import GitRepo
    from .repo import Repo

log = logging.getLogger("gitxp.store.dataset")

DATASET_DIR = "metrics-v1"
RUN_DIR_PREFIX = "run_id="
_PART_FILE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\.parquet")
_TEMPORARY = ".tmp-"
_TEMPORARY_MAX_AGE = 3600.0  # seconds: a copy left by a killed process, not one under way


def open_dataset(
    repo: Repo,
    runs: str | Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
) -> pa_ds.Dataset:
    """The selected runs' parts (every run's by default) as one pyarrow dataset, the
    cache brought up to date first (see the module's docstring)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    selected, everything = select_runs(repo, runs, filter, experiment)
    root = repo.git.gitxp_dir(DATASET_DIR)
    index = PartsIndex(repo.git)
    files: list[str] = []
    try:
        for run_id, commit in selected:
            if not is_run_id(run_id):  # pragma: no cover - run refs are checked when listed
                log.warning("warning: run ref %r is not a run id; left out", run_id)
                continue
            files += _materialise(repo.git, root, run_id, index.parts(commit))
    finally:
        index.save(set(everything.values()))
    _drop_gone_runs(root, set(everything))
    return ds.dataset(
        files,
        schema=dataset_schema(),
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("run_id", pa.string())]), flavor="hive"),
        partition_base_dir=root,
    )


def dataset_schema() -> pa.Schema:
    """The columns of `Repo.dataset()`: the four metric columns, then run_id."""
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("step", pa.int64()),
            ("timestamp", pa.int64()),
            ("value", pa.float64()),
            ("run_id", pa.string()),
        ]
    )


def _materialise(git: GitRepo, root: str, run_id: str, parts: Parts) -> list[str]:
    """Copy the run's parts the cache lacks, delete the files of parts it no longer has,
    and return the paths of its parts' files."""
    directory = os.path.join(root, RUN_DIR_PREFIX + run_id)
    wanted = {f"{sha}.parquet": (name, sha) for name, sha in parts}
    try:
        present = set(os.listdir(directory))
    except FileNotFoundError:
        present = set()
    except OSError as exc:
        raise _unwritable(root, exc) from None
    missing = [part for file, part in wanted.items() if file not in present]
    if missing:
        blobs = read_part_blobs(git, run_id, missing)
        tables = decode_run(run_id, missing, blobs)  # every part checked before any is copied
        for (_, sha), blob, table in zip(missing, blobs, tables, strict=True):
            _write(directory, f"{sha}.parquet", blob if _as_stored(blob) else _encode(table))
    for file in present - wanted.keys():
        _discard(directory, file)
    return [os.path.join(directory, file) for file in wanted]


def _as_stored(blob: bytes) -> bool:
    """Whether the part reads with exactly the dataset's metric columns and types, in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..format.metrics import COLUMNS

    found = pq.read_schema(pa.BufferReader(blob))
    wanted = dataset_schema()
    return found.names == list(COLUMNS) and all(
        found.field(c).type == wanted.field(c).type for c in COLUMNS
    )


def _encode(table: pa.Table) -> bytes:
    from ..format.metrics import encode_table

    return encode_table(table)


def _write(directory: str, file: str, data: bytes) -> None:
    """Write *file* whole or not at all (a temporary file renamed into place)."""
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TEMPORARY, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(directory, file))
        except BaseException:
            _discard(directory, os.path.basename(tmp), force=True)
            raise
    except OSError as exc:
        raise _unwritable(os.path.dirname(directory), exc) from None


def _discard(directory: str, file: str, force: bool = False) -> None:
    """Delete a part file that is no longer wanted, or a temporary file left by a killed
    process (one under way in another process is younger than an hour and kept)."""
    path = os.path.join(directory, file)
    try:
        if (
            _PART_FILE.fullmatch(file)
            or force
            or (
                file.startswith(_TEMPORARY)
                and time.time() - os.stat(path).st_mtime > _TEMPORARY_MAX_AGE
            )
        ):
            os.unlink(path)
    except OSError:
        pass  # gone already, or another process holds it: the next call tries again


def _drop_gone_runs(root: str, current: set[str]) -> None:
    """Delete the directories of runs that no longer exist in the repository."""
    try:
        entries = os.listdir(root)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(RUN_DIR_PREFIX) or entry[len(RUN_DIR_PREFIX) :] in current:
            continue
        directory = os.path.join(root, entry)
        try:
            files = os.listdir(directory)
        except OSError:
            continue
        for file in files:
            _discard(directory, file)
        with contextlib.suppress(OSError):  # a file being written: the next call removes it
            os.rmdir(directory)


def _unwritable(root: str, exc: OSError) -> GitxpError:
    return GitxpError(
        f"cannot write the metrics dataset under {root}: {exc.strerror or exc}; "
        "Repo.dataset() copies the runs' metric parts there (Repo.metrics() needs no copy)"
    )
