"""Listing runs fast: a cache of run rows keyed by commit id, filtering, ordering, DataFrames.

The cache lives in `.git/gitxp/index-v1.json` (never pushed). It maps each
run ref to its commit id (with the ref file's stat, so unchanged refs are
not even read) and each commit id to the run's row. A listing reads the
refs, builds rows only for commits it has not seen, and rewrites the cache
when something changed. A missing or unreadable cache is rebuilt silently.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..format import schema
from ..format.status import effective_status
from ..git.refs import RUNS_PREFIX, SETTLED_NS, list_refs
from .filter import compile_filter, parse_order_by, sort_rows
from .record import listing_row
from .shipped_index import rows_for_listing

if TYPE_CHECKING:
    import pandas as pd

    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.store.query")

CACHE_FILE = "index-v1.json"
# 2: rows are validated against the schema (a version-1 cache may hold rows that are not)
# 3: ref-directory stamps are keyed relative to the git directory (a copied repository
#    with a version-2 cache would check the directories it was copied from)
CACHE_VERSION = 3
# The stable keys of one run as `gitxp log --format json` and the UI's API give it.
PUBLIC_KEYS = (
    "id",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration",
    "code_commit",
    "dirty",
    "user",
    "host",
    "commit",
    "params",
    "metrics",
    "tags",
)
BASE_COLUMNS = ("id", "name", "experiment", "status", "start_time", "end_time", "code_commit")


# Reading runs the cache has not seen (a first listing after a clone or a big
# pull: ~0.2 ms a run from packs) reports progress once it has taken this long.
PROGRESS_AFTER_SECONDS = 0.5


class _Progress:
    """'Indexing runs: 45% (4,500/10,000)' lines for a listing that reads many runs.

    Silent until *after* seconds have passed, then at most ten updates a
    second, each line ending in a carriage return and the last in a newline,
    as git's are.
    """

    def __init__(self, report: Callable[[str], None], total: int, after: float) -> None:
        self.report = report
        self.total = total
        self.done = 0
        self.next = time.monotonic() + after
        self.shown = False

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now >= self.next:
            self.next = now + 0.1
            self.shown = True
            self.report(f"Indexing runs: {self._figures()}\r")

    def finish(self) -> None:
        if self.shown:
            self.report(f"Indexing runs: {self._figures()}, done.\n")

    def _figures(self) -> str:
        return f"{100 * self.done // self.total}% ({self.done:,}/{self.total:,})"


def _trusted(dir_stamps: dict[str, list[int]]) -> dict[str, tuple[int, bool]]:
    """What the cache's directory stamps let a later listing skip: {dir: (mtime, settled)}.

    A new reading time alone changes nothing a listing can use, so it does not
    make the cache worth rewriting (right after runs were recorded every listing
    re-reads the stamps, and rewrote the whole cache each time); a stamp that has
    become settled does.
    """
    return {d: (s[0], s[1] - s[0] >= SETTLED_NS) for d, s in dir_stamps.items()}


class RunIndex:
    """The rows of every run in a repository, served from the on-disk cache.

    *progress*, when given, is told (a line at a time) how a listing that
    must read many runs from git is getting on; see `_Progress`.
    """

    def __init__(self, git: GitRepo, progress: Callable[[str], None] | None = None) -> None:
        self._git = git
        self._path = git.gitxp_dir(CACHE_FILE)
        self.progress = progress
        self.broken: dict[str, str] = {}

    def _load(self) -> dict[str, Any]:
        # The cache holds tens of thousands of small dicts; letting the cyclic
        # garbage collector scan them again and again while they are being
        # built makes the load 3x slower (10,000 runs). JSON cannot contain
        # cycles, so pausing it here frees nothing later.
        paused = gc.isenabled()
        gc.disable()
        try:
            with open(self._path, encoding="utf-8") as f:
                data = json.load(f)
            # a verdict reached under other limits may no longer hold: start again
            if data.get("version") == CACHE_VERSION and data.get("limits") == schema.limits_key():
                return data  # type: ignore[no-any-return]
        except (OSError, ValueError, AttributeError):
            pass
        finally:
            if paused:
                gc.enable()
        return {"version": CACHE_VERSION, "limits": schema.limits_key(), "refs": {}, "rows": {}}

    def _save(self, data: dict[str, Any]) -> None:
        directory = os.path.dirname(self._path)
        try:
            os.makedirs(directory, exist_ok=True)
            # dumps, not dump: json.dump streams through the pure-Python encoder,
            # several times slower than the C one dumps uses
            text = json.dumps(data, separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(prefix=".index-", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self._path)
        except OSError:
            pass  # a read-only repository still lists runs, just without the cache

    def rows(self) -> list[dict[str, Any]]:
        """One row per run (dicts with params, metrics, tags, summary ...)."""
        # Listing 100,000 runs makes 100,000 row dicts (and parses as many from the
        # cache); the cyclic collector would scan them over and over as they pile
        # up (a third of a warm listing's time). Rows hold no cycles, so pausing it
        # leaves nothing for it to find later.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._rows()
        finally:
            if paused:
                gc.enable()

    def _rows(self) -> list[dict[str, Any]]:
        from .pending import publish_pending

        publish_pending(self._git.git_dir)
        data = self._load()
        stat_cache = data["refs"]
        dir_stamps = data.setdefault("dirs", {})
        stamps_before = _trusted(dir_stamps)
        before = len(stat_cache), {k: v[1] for k, v in stat_cache.items()}
        refs = list_refs(self._git, RUNS_PREFIX, stat_cache, dir_stamps)
        cached: dict[str, Any] = data["rows"]
        rows: dict[str, Any] = {}
        shipped, checked = rows_for_listing(self._git, refs, data)
        changed = checked or (
            stamps_before != _trusted(dir_stamps)
            or before[0] != len(stat_cache)
            or any(before[1].get(k) != v[1] for k, v in stat_cache.items())
        )
        self.broken = {}
        ticker = None
        if self.progress is not None:
            unseen = sum(1 for sha in refs.values() if sha not in cached and sha not in shipped)
            if unseen:
                ticker = _Progress(self.progress, unseen, PROGRESS_AFTER_SECONDS)
        listed: list[tuple[str, dict[str, Any]]] = []  # per ref: two refs may share a commit
        for ref, sha in refs.items():
            row = rows.get(sha) or cached.get(sha) or shipped.get(sha)
            if row is None:
                if ticker is not None:
                    ticker.tick()
                # a run that fails the schema is listed as CORRUPT, its verdict cached
                # under its commit id like any row; an unreadable object is not cached
                row, cacheable = listing_row(self._git, sha, ref.rsplit("/", 1)[-1])
                row.pop("summary", None)  # min/max/count: read per run, kept out of the cache
                if cacheable:
                    changed = True
                    rows[sha] = row
            else:
                rows[sha] = row
            if row.get("corrupt"):
                self.broken[ref] = row["corrupt"]
            listed.append((ref, row))
        if ticker is not None:
            ticker.finish()
        if changed or len(rows) != len(cached):
            data["rows"] = rows
            self._save(data)
        now = time.time_ns() // 1_000_000
        out = []
        for ref, cached_row in listed:
            row = dict(cached_row)
            row["ref"] = ref
            row["status"] = effective_status(row, now)
            end = row.get("end_time") or (now if row["status"] == "RUNNING" else None)
            row["duration"] = (
                None
                if end is None or row.get("start_time") is None
                else ((end - row["start_time"]) / 1000)
            )
            out.append(row)
        return out

    def warn_broken(self) -> None:
        """Log a warning, one line each, for the runs listed as CORRUPT and why."""
        for ref, reason in sorted(self.broken.items()):
            log.warning("warning: %s is CORRUPT (%s); listed, not read", ref, reason)


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """One run with exactly the stable keys of PUBLIC_KEYS (what tools may rely on)."""
    out = {k: row.get(k) for k in PUBLIC_KEYS}
    out["dirty"] = bool(out["dirty"])
    out["params"] = dict(row.get("params") or {})
    out["metrics"] = dict(row.get("metrics") or {})
    out["tags"] = dict(row.get("tags") or {})
    if row.get("corrupt"):  # only on a CORRUPT run: why it cannot be read
        out["corrupt"] = row["corrupt"]
    return out


def select(
    rows: list[dict[str, Any]],
    filter: str | None = None,
    experiment: str | list[str] | None = None,
    order_by: str | list[str] | None = None,
) -> list[dict[str, Any]]:
    """Filter and order rows; newest first unless *order_by* says otherwise."""
    if experiment is not None:
        if not isinstance(experiment, (str, list, tuple, set, frozenset)) or not all(
            isinstance(e, str)
            for e in ([experiment] if isinstance(experiment, str) else experiment)
        ):
            raise InvalidValueError(
                "experiment", f"{experiment!r}: give an experiment name or a list of names"
            )
        wanted = {experiment} if isinstance(experiment, str) else set(experiment)
        rows = [r for r in rows if r.get("experiment") in wanted]
    if filter:
        predicate = compile_filter(filter)
        rows = [r for r in rows if predicate(r)]
    rows = sorted(rows, key=lambda r: (r.get("start_time") or 0, r["id"]), reverse=True)
    order = parse_order_by(order_by)
    if order:
        rows = sort_rows(rows, order)
    return rows


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame of `Repo.runs()`: base columns, then params.*, metrics.*, tags.*."""
    import numpy as np
    import pandas as pd

    param_keys: dict[str, None] = {}
    metric_keys: dict[str, None] = {}
    tag_keys: dict[str, None] = {}
    params = [r.get("params") or {} for r in rows]
    metrics = [r.get("metrics") or {} for r in rows]
    tags = [r.get("tags") or {} for r in rows]
    for p, m, t in zip(params, metrics, tags, strict=True):
        param_keys.update(dict.fromkeys(p))
        metric_keys.update(dict.fromkeys(m))
        tag_keys.update(dict.fromkeys(t))
    columns: dict[str, Any] = {c: [r.get(c) for r in rows] for c in BASE_COLUMNS}
    nat = np.iinfo(np.int64).min  # NaT as an int64 of datetime64
    for col in ("start_time", "end_time"):
        # int64 ms straight to datetime64[ms]: no float round trip, no per-value parsing
        ms = np.array([nat if v is None else v for v in columns[col]], dtype=np.int64)
        columns[col] = pd.DatetimeIndex(ms.view("datetime64[ms]")).tz_localize("UTC")
    for key in sorted(param_keys):
        columns[f"params.{key}"] = [p.get(key) for p in params]
    nan = float("nan")
    for key in sorted(metric_keys):
        columns[f"metrics.{key}"] = np.array(
            [nan if (v := m.get(key)) is None else v for m in metrics], dtype=np.float64
        )
    for key in sorted(tag_keys):
        columns[f"tags.{key}"] = [t.get(key) for t in tags]
    return pd.DataFrame(columns)
