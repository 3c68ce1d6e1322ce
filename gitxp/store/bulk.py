"""Reading many runs' metrics at once: which runs, where their parts are, one long table.

`Repo.metrics()` and `Repo.dataset()` both start here. `select_runs` turns
the caller's selection (run references, a filter, experiments) into (run id,
commit id) pairs, from the listing cache. `PartsIndex` says which Parquet
parts a run commit holds: the answer is read from git once (the commit, its
tree, the `metrics/` tree) and kept in `.git/gitxp/parts-v1.json` under the
commit id, which never changes its content, so a later bulk read goes straight
to the part blobs. `read_long_table` reads those blobs and decodes them into
one Arrow table (`gitxp.format.bulk`).

Each run's parts are checked against the decode limit on their own, as a
single run's read is, so a hostile run is refused by name
(`CorruptRunError`) and never allocates what its footer claims.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CorruptRunError, InvalidValueError, ObjectTooLargeError
from ..format import schema, storage
from .query import select

if TYPE_CHECKING:
    import pyarrow as pa

    from ..git.repository import GitRepo
    from .repo import Repo

log = logging.getLogger("gitxp.store.bulk")

PARTS_FILE = "parts-v1.json"
PARTS_VERSION = 1
Parts = list[tuple[str, str]]  # (path in the run's tree, blob id), in path order


def names(value: str | Iterable[str] | None, what: str) -> list[str] | None:
    """*value* (one string or several) as a list without repeats; None stays None."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    try:
        out = list(dict.fromkeys(items))
    except TypeError:
        raise InvalidValueError(what, f"{value!r}: give a string or a list of strings") from None
    bad = [v for v in out if not isinstance(v, str) or not v]
    if bad:
        raise InvalidValueError(what, f"{bad[0]!r} is not a {what} (give non-empty strings)")
    return out


def _run_id(row: dict[str, Any]) -> str:
    """A listed run's id as its ref names it (run.json's `id` is not trusted as a path)."""
    return str(row["ref"]).rsplit("/", 1)[-1]


def select_runs(
    repo: Repo,
    runs: str | Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The selected runs as (run id, commit id) pairs, and every run's commit by run id.

    *runs* (ids, id prefixes, names) keeps the order given, each run once; an
    unknown one raises `RunNotFoundError`. Without it, the runs `Repo.runs`
    would list for *filter* and *experiment*, newest first; with it, those of
    the named runs that the filter and experiment also select.
    """
    wanted = names(runs, "run")
    rows = repo.rows()  # every run, newest first (the listing cache)
    everything = {_run_id(r): r["commit"] for r in rows}
    if wanted is None:
        chosen = select(rows, filter, experiment)
        return [(_run_id(r), r["commit"]) for r in chosen], everything
    pairs: dict[str, str] = {}
    for ref in wanted:
        ref_name, commit = repo.resolve(ref)
        pairs.setdefault(ref_name.rsplit("/", 1)[-1], commit)
    everything.update(pairs)
    if filter is None and experiment is None:
        return list(pairs.items()), everything
    kept = {_run_id(r) for r in select(rows, filter, experiment)}
    return [(i, c) for i, c in pairs.items() if i in kept], everything


class PartsIndex:
    """Which metric parts each run commit holds, cached in `.git/gitxp/parts-v1.json`.

    A commit's content never changes, so an entry never goes stale; `save` keeps
    only the commits that are still the tip of a run.
    """

    def __init__(self, git: GitRepo) -> None:
        self._git = git
        self._path = git.gitxp_dir(PARTS_FILE)
        self._known: dict[str, Parts] = self._load()
        self._changed = False

    def _load(self) -> dict[str, Parts]:
        try:
            with open(self._path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("version") == PARTS_VERSION and isinstance(data.get("commits"), dict):
                return {
                    commit: [(str(n), str(s)) for n, s in parts]
                    for commit, parts in data["commits"].items()
                }
        except (OSError, ValueError, TypeError, AttributeError):
            pass  # missing or damaged: rebuilt from git as runs are read
        return {}

    def parts(self, commit: str) -> Parts:
        """The (path, blob id) of every metric part in the tree of run commit *commit*."""
        hit = self._known.get(commit)
        if hit is None:
            hit = self._read(commit)
            self._known[commit] = hit
            self._changed = True
        return hit

    def _read(self, commit: str) -> Parts:
        git = self._git
        entry = git.read_tree(git.commit_tree(commit)).get(storage.METRICS_DIR.rstrip("/"))
        if entry is None:
            return []
        return [
            (storage.METRICS_DIR + name, sha)
            for name, (_, sha) in sorted(git.read_tree(entry[1]).items())
            if name.endswith(".parquet")
        ]

    def save(self, tips: set[str]) -> None:
        """Write the cache when it learned something, keeping only the commits in *tips*."""
        stale = [c for c in self._known if c not in tips]
        if not self._changed and not stale:
            return
        for commit in stale:
            del self._known[commit]
        directory = os.path.dirname(self._path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".parts-", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(
                    {"version": PARTS_VERSION, "commits": self._known}, f, separators=(",", ":")
                )
            os.replace(tmp, self._path)
        except OSError:
            pass  # a read-only repository still reads, without the cache
        self._changed = False


def read_part_blobs(
    git: GitRepo, run_id: str, parts: Parts, limit: int | None = None
) -> list[bytes]:
    """The bytes of a run's metric parts; a part declaring more than *limit* bytes
    (`GITXP_MAX_DECODE_BYTES`) is refused (`CorruptRunError`) before it is inflated."""
    bound = schema.max_decode_bytes() if limit is None else limit
    out = []
    for name, sha in parts:
        try:
            out.append(git.read_blob(sha, limit=bound))
        except ObjectTooLargeError as exc:
            raise CorruptRunError(
                run_id,
                f"{name} inflates to {exc.size:,} bytes, over the limit of {bound:,} "
                "bytes (GITXP_MAX_DECODE_BYTES)",
            ) from None
    return out


def decode_run(run_id: str, parts: Parts, blobs: Sequence[bytes]) -> list[pa.Table]:
    """A run's parts decoded (`metrics.part_tables`); a bad part is a `CorruptRunError`
    naming the run, with a hint to leave it out of a bulk read."""
    from ..format.metrics import part_tables

    try:
        return part_tables(blobs, [name for name, _ in parts])
    except schema.Invalid as exc:
        raise CorruptRunError(
            run_id,
            f"{exc}; leave the run out with filter=\"attributes.run_id != '{run_id}'\"",
        ) from None


# Decoding releases the GIL (pyarrow's Parquet reader), reading git objects mostly
# does not and must stay on one thread (dulwich's pack files are shared file objects):
# so the calling thread reads every blob while a few workers decode the runs read so far.
DECODE_WORKERS = 4
_THREADED_FROM = 8  # runs; fewer are decoded on the calling thread


def read_long_table(
    git: GitRepo, selected: Sequence[tuple[str, str]], index: PartsIndex, keys: list[str] | None
) -> pa.Table:
    """Every point of the *selected* runs (only *keys* when given) as one long table."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from ..format.bulk import long_table

    limit = schema.max_decode_bytes()
    work = [(run_id, index.parts(commit)) for run_id, commit in selected]
    work = [(run_id, parts) for run_id, parts in work if parts]
    if len(work) < _THREADED_FROM:
        decoded = [
            (run_id, decode_run(run_id, parts, read_part_blobs(git, run_id, parts, limit)))
            for run_id, parts in work
        ]
        return long_table(decoded, keys)
    workers = max(1, min(DECODE_WORKERS, os.cpu_count() or 1))
    pending: list[tuple[str, Future[list[pa.Table]]]] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="gitxp-decode") as pool:
        try:
            for run_id, parts in work:
                blobs = read_part_blobs(git, run_id, parts, limit)
                pending.append((run_id, pool.submit(decode_run, run_id, parts, blobs)))
            decoded = [(run_id, future.result()) for run_id, future in pending]
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
    return long_table(decoded, keys)


def read_metrics(
    repo: Repo,
    runs: str | Iterable[str] | None = None,
    keys: str | Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
) -> Any:
    """`Repo.metrics()`: the selected runs' points as one long pandas DataFrame."""
    from ..format.bulk import to_frame

    wanted_keys = names(keys, "metric key")
    selected, everything = select_runs(repo, runs, filter, experiment)
    index = PartsIndex(repo.git)
    try:
        table = read_long_table(repo.git, selected, index, wanted_keys)
    finally:
        index.save(set(everything.values()))
    log.debug("read %d points of %d runs", table.num_rows, len(selected))
    return to_frame(table)
