"""The data behind the web UI and the report: read-only views of a repository as JSON-ready dicts.

Nothing here knows about HTTP; `gitxp.ui.server` maps URLs onto these
methods and `gitxp.present.report` calls them to inline data into one HTML file.
Every value returned is plain JSON (NaN and ±inf become the strings
"NaN", "Infinity", "-Infinity", as in `gitxp log --format json`).
"""

from __future__ import annotations

import json
import math
import shlex
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, InvalidValueError
from ..store.query import public_row
from . import downsample as ds
from .jsonable import json_safe
from .listing import MAX_BROKEN_LISTED, MAX_COLUMNS, cut_mapping, listing_row, preview, short_key
from .model_views import run_versions

if TYPE_CHECKING:
    from ..store.record import RunRecord
    from ..store.repo import Repo

ROWS_TTL_SECONDS = 1.0
MAX_PAGE = 1000
MAX_POINTS = 20_000
SERIES_CACHE_POINTS = 8_000_000
SORT_ATTRIBUTES = ("name", "experiment", "status", "start_time", "end_time", "duration", "user")


def _safe_dict(value: dict[str, Any]) -> dict[str, Any]:
    """*value* made strict JSON (`jsonable.json_safe`), typed as the dict it stays."""
    out: dict[str, Any] = json_safe(value)
    return out


def _sort_getter(column: str) -> Any:
    """A row getter for a column name: an attribute, or params./metrics./tags.<key>."""
    kind, dot, key = column.partition(".")
    if dot and kind in ("params", "metrics", "tags") and key:
        return lambda row: (row.get(kind) or {}).get(key)
    if column in SORT_ATTRIBUTES:
        return lambda row: row.get(column)
    raise InvalidValueError(
        "sort", f"{column!r} is not a column; use an attribute or params./metrics./tags.<key>"
    )


class UIData:
    """Read-only queries the UI needs, with small caches suited to a long-lived server."""

    def __init__(self, repo: Repo, per_thread: bool = False) -> None:
        """Serve *repo*; with *per_thread*, each thread reads through its own `Repo`.

        dulwich reads pack files through shared file objects (seek, then read),
        so one repository object must not serve two threads at once. Rather
        than one lock around every request (which let one slow request hold up
        all the others), a threaded server gives each worker thread its own
        repository, opened on first use and closed by `close()`. The caches
        here are shared, each under its own short lock.
        """
        self._main = repo
        self._per_thread = per_thread
        self._local = threading.local()
        self._opened: list[Repo] = []
        self._opened_lock = threading.Lock()
        self._rows_lock = threading.Lock()  # held while one thread re-reads the listing
        self._rows: list[dict[str, Any]] | None = None
        self._broken: dict[str, str] = {}
        self._rows_at = -math.inf
        self._series_lock = threading.Lock()
        self._series: OrderedDict[tuple[str, str], tuple[Any, Any, Any]] = OrderedDict()
        self._series_points = 0

    @property
    def repo(self) -> Repo:
        """The repository this thread reads through."""
        if not self._per_thread:
            return self._main
        repo: Repo | None = getattr(self._local, "repo", None)
        if repo is None:
            from ..store.repo import open as open_repo

            repo = open_repo(self._main.path)
            with self._opened_lock:
                self._opened.append(repo)
            self._local.repo = repo
        return repo

    def close(self) -> None:
        """Close the repositories opened for threads (not the one given)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for repo in opened:
            repo.close()

    # -- runs ------------------------------------------------------------------
    def all_rows(self) -> list[dict[str, Any]]:
        """Every run's listing row, re-read at most once per ROWS_TTL_SECONDS.

        While one thread re-reads, the others get the previous listing
        rather than wait (the first listing ever is waited for).
        """
        rows = self._rows
        fresh = time.monotonic() - self._rows_at <= ROWS_TTL_SECONDS
        if rows is not None and (fresh or not self._rows_lock.acquire(blocking=False)):
            return rows
        if rows is None:
            self._rows_lock.acquire()
        try:
            if self._rows is None or time.monotonic() - self._rows_at > ROWS_TTL_SECONDS:
                repo = self.repo
                self._rows = repo.rows()
                self._broken = repo.broken_runs
                self._rows_at = time.monotonic()
            return self._rows
        finally:
            self._rows_lock.release()

    def experiments(self) -> list[dict[str, Any]]:
        """Each experiment with its number of runs and of running runs."""
        counts: dict[str, list[int]] = {}
        for row in self.all_rows():
            c = counts.setdefault(row.get("experiment") or "default", [0, 0])
            c[0] += 1
            c[1] += row["status"] == "RUNNING"
        return [{"name": k, "runs": v[0], "running": v[1]} for k, v in sorted(counts.items())]

    def runs(
        self,
        filter: str | None = None,
        experiment: str | None = None,
        sort: str | None = None,
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """One page of runs, filtered and sorted, with the columns of the whole selection."""
        from ..store.filter import sort_rows
        from ..store.query import select

        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        rows = select(self.all_rows(), filter or None, experiment or None)
        if sort and sort != "start_time":
            rows = sort_rows(rows, [(_sort_getter(sort), descending)])
        elif not descending:
            rows = rows[::-1]
        params: dict[str, None] = {}
        metrics: dict[str, None] = {}
        tags: dict[str, None] = {}
        status: dict[str, int] = {}
        for r in rows:
            params.update(dict.fromkeys(r.get("params") or {}))
            metrics.update(dict.fromkeys(r.get("metrics") or {}))
            tags.update(dict.fromkeys(r.get("tags") or {}))
            status[r["status"]] = status.get(r["status"], 0) + 1
        page = [listing_row(public_row(r)) for r in rows[offset : offset + limit]]
        return _safe_dict(
            {
                "total": len(rows),
                "offset": offset,
                "limit": limit,
                "columns": {
                    "params": sorted({short_key(k) for k in params})[:MAX_COLUMNS],
                    "metrics": sorted({short_key(k) for k in metrics})[:MAX_COLUMNS],
                    "tags": sorted({short_key(k) for k in tags})[:MAX_COLUMNS],
                },
                "status": status,
                "broken": {
                    ref: preview(why)[0]
                    for ref, why in list(self._broken.items())[:MAX_BROKEN_LISTED]
                },
                "rows": page,
            }
        )

    def record(self, ref: str) -> RunRecord:
        return self.repo.run(ref)

    def run(self, ref: str) -> dict[str, Any]:
        """Everything the run page shows except series, diffs and artifact bytes."""
        record = self.record(ref)
        data = record.to_dict()
        data["ref"] = record.ref
        data["env"] = record.env
        data["history"] = record.history()
        data["artifacts"] = list_artifacts(record)
        data["output_tail"] = record.output[-20_000:] if record.output else ""
        data["models"] = run_versions(self.repo, record.id)
        return _safe_dict(data)

    def head(self, ref: str) -> dict[str, Any]:
        """The run's current tip commit and status: what a page polls to notice checkpoints."""
        record = self.record(ref)
        return {"id": record.id, "commit": record.commit, "status": record.status}

    def _unique_records(self, refs: list[str]) -> list[RunRecord]:
        """The runs *refs* name, in order, each once (two references may name one run)."""
        records: dict[str, RunRecord] = {}
        for ref in refs:
            record = self.record(ref)
            records.setdefault(record.id, record)
        return list(records.values())

    def compare(self, refs: list[str]) -> dict[str, Any]:
        """Two or more runs side by side: params, tags, metric summaries, and which differ."""
        if not refs:
            raise InvalidValueError("runs", "give at least one run to compare")
        records = self._unique_records(refs)
        runs: list[dict[str, Any]] = [
            {
                "id": r.id,
                "name": r.name,
                "experiment": r.experiment,
                "status": r.status,
                "start_time": r.start_time,
                "code_commit": r.code_commit,
                "params": r.params,
                "tags": r.tags,
                "summary": r.summary,
            }
            for r in records
        ]
        param_keys = sorted({k for r in runs for k in r["params"]})
        metric_keys = sorted({k for r in runs for k in r["summary"]})
        differing = [k for k in param_keys if len({_key(r["params"].get(k)) for r in runs}) > 1]
        for run in runs:  # judged on the whole values above, shown cut like the runs table
            cut: list[str] = []
            run["params"] = cut_mapping(run["params"], "params", cut)
            run["tags"] = cut_mapping(run["tags"], "tags", cut)
            if cut:
                run["truncated"] = cut
        return _safe_dict(
            {
                "runs": runs,
                "params": [short_key(k) for k in param_keys][:MAX_COLUMNS],
                "metrics": metric_keys,
                "differing_params": [short_key(k) for k in differing][:MAX_COLUMNS],
            }
        )

    # -- series ------------------------------------------------------------------
    def _arrays(self, record: RunRecord, key: str) -> tuple[Any, Any, Any]:
        """(steps, timestamps, values) of one series, cached by commit id (immutable)."""
        import numpy as np

        cache_key = (record.commit, key)
        with self._series_lock:
            hit = self._series.get(cache_key)
            if hit is not None:
                self._series.move_to_end(cache_key)
                return hit
        frame = record.metric_history(key)
        arrays = (
            frame["step"].to_numpy(np.int64),
            frame["timestamp"].to_numpy(np.int64),
            frame["value"].to_numpy(np.float64),
        )
        self._remember(cache_key, arrays)
        return arrays

    def _remember(self, cache_key: tuple[str, str], arrays: tuple[Any, Any, Any]) -> None:
        with self._series_lock:
            if cache_key not in self._series:
                self._series_points += len(arrays[0])
            self._series[cache_key] = arrays
            while self._series_points > SERIES_CACHE_POINTS and len(self._series) > 1:
                _, old = self._series.popitem(last=False)
                self._series_points -= len(old[0])

    def _many_arrays(self, records: list[RunRecord], key: str) -> list[tuple[Any, Any, Any]]:
        """(steps, timestamps, values) of *key* for each run, the ones not cached read
        together in one bulk read (`Repo.metrics`) rather than run by run."""
        import numpy as np

        out: dict[str, tuple[Any, Any, Any]] = {}
        missing = []
        with self._series_lock:
            for record in records:
                hit = self._series.get((record.commit, key))
                if hit is not None:
                    out[record.id] = hit
                else:
                    missing.append(record)
        if len(missing) == 1:
            out[missing[0].id] = self._arrays(missing[0], key)
        elif missing:
            frame = self.repo.metrics(runs=[r.id for r in missing], keys=key)
            empty = (np.array([], np.int64), np.array([], np.int64), np.array([], np.float64))
            groups = {str(run): rows for run, rows in frame.groupby("run_id", sort=False)}
            for record in missing:
                rows = groups.get(record.id)
                if rows is None and key not in record.summary:
                    record.metric_history(key)  # raises: the run has no such metric
                arrays = empty
                if rows is not None:
                    arrays = (
                        rows["step"].to_numpy(np.int64),
                        rows["timestamp"].to_numpy(np.int64),
                        rows["value"].to_numpy(np.float64),
                    )
                self._remember((record.commit, key), arrays)
                out[record.id] = arrays
        return [out[r.id] for r in records]

    def series(
        self,
        ref: str,
        key: str,
        points: int = ds.DEFAULT_POINTS,
        xaxis: str = "step",
        lo: float | None = None,
        hi: float | None = None,
        method: str = "minmax",
    ) -> dict[str, Any]:
        """One metric of one run, downsampled to about *points* points within [lo, hi]."""
        ds.check_options(xaxis, method)
        record = self.record(ref)
        return ds.series_answer(
            record.id, key, self._arrays(record, key), points, xaxis, lo, hi, method, MAX_POINTS
        )

    def series_many(
        self,
        refs: list[str],
        key: str,
        points: int = ds.DEFAULT_POINTS,
        xaxis: str = "step",
        lo: float | None = None,
        hi: float | None = None,
        method: str = "minmax",
        skip_missing: bool = False,
    ) -> dict[str, Any]:
        """One metric of several runs (the compare view, `gitxp plot`), each downsampled as
        `series` does, the runs read together in one bulk read. A run without the metric
        raises, as in `series`, or with *skip_missing* is left out of the answer."""
        ds.check_options(xaxis, method)
        if not refs:
            raise InvalidValueError("runs", "give at least one run")
        records = self._unique_records(refs)
        if skip_missing:
            records = [r for r in records if key in r.summary]
        arrays = self._many_arrays(records, key)
        return {
            "key": key,
            "series": [
                ds.series_answer(r.id, key, a, points, xaxis, lo, hi, method, MAX_POINTS)
                for r, a in zip(records, arrays, strict=True)
            ],
        }

    # -- code ---------------------------------------------------------------------
    def _base_commit(self, record: RunRecord, against: str) -> tuple[str | None, str]:
        """The commit to diff the run's code against, and a label for it."""
        git = self.repo.git
        if against == "parent":
            if not record.code_commit:
                return None, "nothing"
            parents = git.read_commit(record.code_commit).parents
            label = "HEAD at the time (snapshot base)" if record.meta.get("dirty") else "parent"
            return (parents[0] if parents else None), label
        if against == "HEAD":
            return git.head(), "HEAD"
        other = self.record(against)
        return other.code_commit, f"run {other.name or other.id}"

    def code(self, ref: str, against: str = "parent") -> dict[str, Any]:
        """The run's code commit and the files that differ from *against*.

        *against* is ``parent`` (what the commit or snapshot changed), ``HEAD``
        (the repository's current HEAD) or another run's reference.
        """
        from ..git.treediff import changed_files

        record = self.record(ref)
        base, label = self._base_commit(record, against)
        commit = record.code_commit
        info = None
        files: list[dict[str, Any]] = []
        if commit:
            c = self.repo.git.read_commit(commit)
            info = {
                "id": commit,
                "message": c.message,
                "author": c.author,
                "time": c.author_time,
                "snapshot": bool(record.meta.get("dirty")),
            }
            files = [
                {"status": f.status, "path": f.path, "old_path": f.old_path}
                for f in changed_files(self.repo.git, base, commit)
            ]
        return {
            "run": record.id,
            "commit": info,
            "against": against,
            "base": base,
            "base_label": label,
            "files": files,
            "snapshot": record.meta.get("snapshot"),
        }

    def code_diff(self, ref: str, against: str = "parent", path: str | None = None) -> str:
        """The unified diff of the run's code against *against* (one file when *path*)."""
        from ..git.treediff import unified_diff

        record = self.record(ref)
        base, _ = self._base_commit(record, against)
        if not record.code_commit:
            return ""
        return unified_diff(self.repo.git, base, record.code_commit, [path] if path else None)

    # -- artifacts -----------------------------------------------------------------------
    def artifact(self, ref: str, name: str) -> tuple[bytes, str]:
        """The bytes of an artifact stored in the run's tree, and its file name."""
        record = self.record(ref)
        return read_artifact(self.repo, record, name), name.rsplit("/", 1)[-1]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _safe_artifact_path(name: str) -> str:
    """*name* if it is a relative path inside the artifacts directory, else an error."""
    parts = name.split("/")
    if (
        not name
        or "\\" in name
        or "\0" in name
        or name.startswith("/")
        or any(p in ("", ".", "..", ".git") for p in parts)
    ):
        raise InvalidValueError("artifact", f"{name!r} is not an artifact path of this run")
    return name


def list_artifacts(record: RunRecord) -> list[dict[str, Any]]:
    """The run's artifacts: name, size, and where they live ("tree" or a store URI).

    Uses `RunRecord.artifacts()` when this gitxp has it (the sharing layer
    defines it); otherwise lists the files under `artifacts/` in the run tree.
    """
    from ..format import storage

    lister = getattr(record, "artifacts", None)
    if callable(lister):
        try:
            items = lister()
        except GitxpError:
            items = []
        out = []
        for item in items or []:
            d = item if isinstance(item, dict) else getattr(item, "__dict__", {})
            name = d.get("path") or d.get("name")  # the file's path under artifacts/
            if not name:
                continue
            stored = d.get("location") == "store" or bool(d.get("uri"))
            out.append(
                {
                    "name": str(name),
                    "size": d.get("size"),
                    "sha256": d.get("sha256"),
                    "where": "store" if stored else "tree",
                    "uri": d.get("uri"),
                }
            )
        return out
    git = record._git
    tree = record._tree.get(storage.ARTIFACTS_DIR.rstrip("/"))
    if tree is None:
        return []
    out = []
    from ..git.objects import object_size

    for path, _mode, sha in git.walk_tree(tree[1]):
        size = object_size(git, sha)  # from the object's header: nothing is inflated
        out.append({"name": path, "size": size, "sha256": None, "where": "tree", "uri": None})
    return out


def read_artifact(repo: Repo, record: RunRecord, name: str) -> bytes:
    """The content of artifact *name* from the run's own tree (never from the disk)."""
    from ..errors import GitxpError
    from ..format import storage

    _safe_artifact_path(name)
    git = repo.git
    root = git.read_commit(record.commit).tree
    entry = git.lookup_path(root, storage.ARTIFACTS_DIR + name)
    if entry is None or entry[0] not in (0o100644, 0o100755):
        known = [a["name"] for a in list_artifacts(record) if a["where"] == "tree"]
        stored = [a["name"] for a in list_artifacts(record) if a["where"] != "tree"]
        if name in stored:
            raise GitxpError(
                f"artifact {name!r} of run {record.id} is in the artifact store; "
                f"fetch it with `gitxp artifacts get {record.id[:12]} {shlex.quote(name)}`"
            )
        raise GitxpError(
            f"run {record.id} has no artifact {name!r}"
            + (f" (it has: {', '.join(known[:10])})" if known else "")
        )
    # a hostile run's blob may inflate to gigabytes: read no more than the
    # manifest says the file holds (or, for a file it does not list, the
    # largest file this repository keeps in a run's tree)
    sizes = [
        a["size"] for a in list_artifacts(record) if a["name"] == name and a["where"] == "tree"
    ]
    if sizes and isinstance(sizes[0], int):
        limit = sizes[0]
    else:
        from ..store.artifacts import settings

        limit = settings(git).threshold
    return git.read_blob(entry[1], limit=limit)
