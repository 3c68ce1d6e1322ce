"""Listing runs fast: the listing cache kept up to date, filtering, ordering, DataFrames.

The cache (`listing_cache.py`, `.git/gitxp/index-v4.bin`, never pushed)
holds every listed run's ref, commit id and row, in listing order, with
what proves the refs unchanged since: when packed-refs and the loose run-ref
directories have not moved, a listing reads neither. Otherwise it lists the
refs (one read of packed-refs unless it is unchanged, one scan of the loose
directories), reads rows only for commits the cache has not seen
(`read_unseen`) and rewrites the cache. A missing, garbled or foreign cache
is rebuilt silently.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..format import schema
from ..git.refs import (
    RUNS_PREFIX,
    SETTLED_NS,
    loose_unchanged,
    read_packed_refs,
    scan_loose_refs,
    stamp_holds,
    warn_ignored,
)
from . import listing_cache
from .filter import compile_filter, parse_order_by, sort_rows
from .listing import BASE_COLUMNS as BASE_COLUMNS
from .listing import Listing, wanted_experiments
from .listing_cache import CACHE_FILE as CACHE_FILE
from .listing_cache import CACHE_VERSION as CACHE_VERSION
from .listing_cache import CacheFile
from .record import listing_row

if TYPE_CHECKING:
    import pandas as pd

    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.store.query")

# 2: rows are validated against the schema (a version-1 cache may hold rows that are not)
# 3: ref-directory stamps are keyed relative to the git directory (a copied repository
#    with a version-2 cache would check the directories it was copied from)
# 4: listing_cache.py's columnar file, index-v4.bin; the JSON file of 1-3 is deleted
LEGACY_FILE = "index-v1.json"
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


# Reading runs the cache has not seen (a first listing after a clone or a big
# pull: ~0.2 ms a run from packs) reports progress once it has taken this long.
PROGRESS_AFTER_SECONDS = 0.5
# A listing with a cache consults the shipped index only for at least this many runs it
# has not seen (each read from its objects costs ~0.3 ms; finding the index ~15 ms).
SHIPPED_INDEX_AFTER = 64


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


def _trusted_file(stamp: list[int] | None) -> tuple[int, ...] | None:
    """`_trusted` for the packed-refs stamp."""
    return None if stamp is None else (*stamp[:3], stamp[3] - stamp[0] >= SETTLED_NS)


def now_ms() -> int:
    """The time a listing judges RUNNING runs at (ms since the epoch); tests fix it."""
    return time.time_ns() // 1_000_000


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while tens of thousands of rows are made.

    Letting it scan them again and again as they pile up made a listing
    several times slower; rows hold no cycles, so it has nothing to find later.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def read_unseen(
    git: GitRepo,
    unseen: dict[str, str],
    progress: Callable[[str], None] | None = None,
    shipped: bool = True,
) -> dict[str, tuple[dict[str, Any], bool]]:
    """The rows of the refs the cache has not seen ({ref: commit}) as {ref: (row, whether
    it may be cached)}: the cold path of a listing. With *shipped*, rows the shipped index
    holds (a fresh clone's, `shipped_index`) are taken from it; the rest are read from git.

    A run that fails the schema is listed as CORRUPT, its verdict cached under
    its commit id like any row; an unreadable object is not cached (a fetch
    may still bring it). *progress* is told how it is getting on (`_Progress`).
    """
    out: dict[str, tuple[dict[str, Any], bool]] = {}
    if shipped and unseen:
        from .shipped_index import rows_for_unseen  # only a listing with unseen runs needs it

        index = rows_for_unseen(git, unseen)
        for ref, sha in list(unseen.items()):
            if sha in index:
                out[ref] = (dict(index[sha]), True)
        unseen = {r: c for r, c in unseen.items() if r not in out}
    ticker = None
    if progress is not None and unseen:
        ticker = _Progress(progress, len(unseen), PROGRESS_AFTER_SECONDS)
    by_commit: dict[str, tuple[dict[str, Any], bool]] = {}
    for ref, sha in unseen.items():
        hit = by_commit.get(sha)
        if hit is None:
            if ticker is not None:
                ticker.tick()
            row, cacheable = listing_row(git, sha, ref.rsplit("/", 1)[-1])
            row.pop("summary", None)  # min/max/count: read per run, kept out of the cache
            hit = (row, cacheable)
            if cacheable:
                by_commit[sha] = hit
        out[ref] = hit
    if ticker is not None:
        ticker.finish()
    return out


def _check_shipped(git: GitRepo, cache: CacheFile | None) -> dict[str, dict[str, Any]]:
    """Rows taken from the shipped index earlier that a check against their runs' files
    found false ({commit: the row from the files}); see `verify_shipped`."""
    if cache is None or not os.path.exists(git.gitxp_dir(listing_cache.UNVERIFIED_FILE)):
        return {}
    from .shipped_index import verify_shipped  # only while shipped rows wait to be checked

    at: dict[str, int] | None = None

    def listed(commit: str) -> dict[str, Any] | None:
        nonlocal at
        if at is None:  # the commit column is decoded only when something is queued
            at = {c: i for i, c in enumerate(cache.column("commit"))}
        i = at.get(commit)
        if i is None:
            return None
        row = cache.row(i)
        row.pop("ref", None)
        return row

    return verify_shipped(git, listed)


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

    def rows(self) -> list[dict[str, Any]]:
        """One row per run (dicts with params, metrics, tags, ...), newest first."""
        listing = self.listing()
        with _collector_paused():
            return listing.rows()

    def listing(self) -> Listing:
        """Every run ref as of now, over the cache (brought up to date first)."""
        from .pending import publish_pending

        publish_pending(self._git.git_dir)
        limits = schema.limits_key()
        cache = CacheFile.read(self._path, limits)
        replaced = _check_shipped(self._git, cache)
        if cache is not None and not replaced and self._unmoved(cache):
            overrides = self._reread(cache)
            if overrides is not None:
                return self._listing(cache, overrides)
        with _collector_paused():
            return self._refresh(cache, limits, replaced)

    def _unmoved(self, cache: CacheFile) -> bool:
        """Whether no run ref can have moved since *cache* was written."""
        git_dir = self._git.git_dir
        dirs = cache.header["dirs"]
        if dirs:
            loose = loose_unchanged(git_dir, dirs)
        else:  # there was no loose run-ref directory: there still is none
            loose = not os.path.lexists(os.path.join(git_dir, *RUNS_PREFIX.strip("/").split("/")))
        return loose and stamp_holds(os.path.join(git_dir, "packed-refs"), cache.header["packed"])

    def _reread(self, cache: CacheFile) -> dict[int, dict[str, Any]] | None:
        """The rows of *cache*'s uncached runs, read again; None when one has become
        readable (the listing must then be rebuilt around it)."""
        overrides: dict[int, dict[str, Any]] = {}
        if cache.header["volatile"]:
            refs, commits = cache.column("ref"), cache.column("commit")
            for i in cache.header["volatile"]:
                row, cacheable = listing_row(self._git, commits[i], refs[i].rsplit("/", 1)[-1])
                if cacheable:
                    return None
                row.pop("summary", None)
                row["ref"] = refs[i]
                overrides[i] = row
        return overrides

    def _listing(self, cache: CacheFile, overrides: dict[int, dict[str, Any]]) -> Listing:
        for name, reason in cache.header["refused"].items():
            warn_ignored(os.path.join(self._git.git_dir, "packed-refs"), name, reason)
        self.broken = dict(cache.header["broken"])
        refs = cache.column("ref") if overrides else []
        for i, row in overrides.items():
            self.broken[refs[i]] = row["corrupt"]
        return Listing(cache, now_ms(), overrides)

    def _refresh(
        self, old: CacheFile | None, limits: Any, replaced: dict[str, dict[str, Any]]
    ) -> Listing:
        """List the refs, read what the cache lacks, rewrite it when something changed;
        *replaced* ({commit: row}) are rows read anew that must replace the cached ones."""
        if old is None:
            # no cache: every row is read again (or taken from the shipped index and queued
            # again), so what was queued for checking before is moot and would only pile up
            for name in (listing_cache.UNVERIFIED_FILE, listing_cache.VERIFIED_FILE):
                with contextlib.suppress(OSError):
                    os.remove(self._git.gitxp_dir(name))
        refs, header, stat_cache = self._current_refs(old, limits)
        if (
            old is not None
            and not replaced
            and not old.header["volatile"]
            and len(refs) == old.n
            and refs == dict(zip(old.column("ref"), old.column("commit"), strict=True))
        ):
            return self._unchanged(old, header, stat_cache, {})
        listed, sources, fresh, new_rows = self._sources(old, refs, replaced)
        commits = [refs[r] for r in listed]
        uncached = {r for r, (_row, cacheable) in fresh.items() if not cacheable}
        header["volatile"] = [i for i, r in enumerate(listed) if r in uncached]
        if (
            old is not None
            and not new_rows
            and listed == old.column("ref")
            and commits == old.column("commit")
        ):
            overrides = {}
            for i in header["volatile"]:
                row = dict(fresh[listed[i]][0])
                row["ref"] = listed[i]
                overrides[i] = row
            return self._unchanged(old, header, stat_cache, overrides)
        corrupt = old.column("corrupt") if old is not None else []
        header["broken"] = {}
        for ref, src in zip(listed, sources, strict=True):
            reason = corrupt[src] if isinstance(src, int) else src.get("corrupt")
            if reason and ref not in uncached:
                header["broken"][ref] = reason
        chunks = listing_cache.encode(header, listed, commits, sources, old, stat_cache)
        cache = None
        if listing_cache.write(self._path, chunks):
            with contextlib.suppress(OSError):
                os.remove(self._git.gitxp_dir(LEGACY_FILE))  # the cache before version 4
            # read back through a map: its pages are the file's, not this process's memory
            # (another listing may have replaced it since: then that one, as fresh)
            cache = CacheFile.read(self._path, limits)
        if cache is None:
            cache = listing_cache.from_bytes(b"".join(chunks))
        del chunks
        return self._listing(cache, {i: cache.row(i) for i in cache.header["volatile"]})

    def _current_refs(
        self, old: CacheFile | None, limits: Any
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        """({ref: commit} of every run ref now, the cache header to write, the loose refs'
        stat cache): the loose directories are scanned, `packed-refs` read unless its
        stamp in *old* still holds (then its refs are those *old* listed as packed)."""
        git_dir = self._git.git_dir
        header: dict[str, Any] = {"limits": limits, "dirs": {}, "packed": None}
        stat_cache: dict[str, Any] = {}
        if old is not None:
            header = dict(old.header)
            stat_cache = old.loose()
        was_loose = set(stat_cache)
        dirs = dict(header["dirs"])
        # loose refs before packed-refs (see git/refs.py list_refs)
        loose = scan_loose_refs(self._git, RUNS_PREFIX, stat_cache, dirs)
        if old is not None and stamp_holds(os.path.join(git_dir, "packed-refs"), header["packed"]):
            packed = {
                r: c
                for r, c in zip(old.column("ref"), old.column("commit"), strict=True)
                if r not in was_loose
            }
            packed.update(header["shadowed"])
            stamp, refused = header["packed"], header["refused"]
        else:
            refused = {}
            stamp, packed = read_packed_refs(git_dir, RUNS_PREFIX, refused)
        refs = dict(packed)
        refs.update(loose)
        header.update(
            limits=limits,
            dirs=dirs,
            packed=stamp,
            shadowed={r: packed[r] for r in loose if r in packed},
            refused=refused,
        )
        return refs, header, stat_cache

    def _sources(
        self, old: CacheFile | None, refs: dict[str, str], replaced: dict[str, dict[str, Any]]
    ) -> tuple[list[str], list[int | dict[str, Any]], dict[str, Any], bool]:
        """(the refs in listing order, each one's row: an index into *old* or a dict, the
        rows read from git as `read_unseen` gave them, whether any row is new); a commit
        in *replaced* takes its row from there, not from *old*."""
        names = sorted(refs)
        # reuse a cached row by ref and commit (its bytes hold the ref), else by commit
        same: dict[tuple[str, str], int] = {}
        by_commit: dict[str, int] = {}
        if old is not None:
            volatile = set(old.header["volatile"])
            for j, (r, c) in enumerate(zip(old.column("ref"), old.column("commit"), strict=True)):
                if j not in volatile and c not in replaced:
                    same[(r, c)] = j
                    by_commit.setdefault(c, j)
        unseen = {
            r: c
            for r in names
            if (r, c := refs[r]) not in same and c not in by_commit and c not in replaced
        }
        # a few new runs beside a cache (one just recorded, a small fetch) are read from
        # their objects faster than the shipped index is found and its shards decoded
        shipped = old is None or len(unseen) >= SHIPPED_INDEX_AFTER
        fresh = read_unseen(self._git, unseen, self.progress, shipped)
        sources: list[int | dict[str, Any]] = []
        keys: list[tuple[Any, str]] = []
        starts = old.column("start_time") if old is not None else []
        ids = old.column("id") if old is not None else []
        new_rows = False
        for r in names:
            at = same.get((r, refs[r]))
            if at is not None:
                sources.append(at)
                keys.append((starts[at], ids[at]))
                continue
            if refs[r] in replaced:
                row = dict(replaced[refs[r]])
                new_rows = True
            elif r in fresh:
                row = dict(fresh[r][0])
                new_rows = new_rows or fresh[r][1]
            else:  # a commit the cache knows under another ref
                assert old is not None
                row = old.row(by_commit[refs[r]])
                new_rows = True
            row["ref"] = r
            sources.append(row)
            keys.append((row.get("start_time"), row["id"]))
        order = listing_cache.ordered(keys)
        return [names[k] for k in order], [sources[k] for k in order], fresh, new_rows

    def _unchanged(
        self,
        old: CacheFile,
        header: dict[str, Any],
        stat_cache: dict[str, Any],
        overrides: dict[int, dict[str, Any]],
    ) -> Listing:
        """The listing of *old*, whose refs turned out unchanged; the file is rewritten
        (its rows as they are) only when a stamp has become trustworthy or moved."""
        now_trusted = (_trusted(header["dirs"]), _trusted_file(header["packed"]))
        if now_trusted != (_trusted(old.header["dirs"]), _trusted_file(old.header["packed"])):
            listing_cache.write(self._path, listing_cache.rewrap(old, header, stat_cache))
        return self._listing(old, overrides)

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
        wanted = wanted_experiments(experiment)
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
