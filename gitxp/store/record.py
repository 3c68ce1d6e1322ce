"""Reading a committed run: its metadata, params, tags, notes, environment and metric series."""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import CorruptRunError, GitxpError, InvalidValueError, ObjectTooLargeError
from ..format import schema, storage
from ..format.status import CORRUPT, effective_status
from ..format.values import from_json_float
from .blobs import read_run_file

if TYPE_CHECKING:
    import pandas as pd

    from ..git.repository import GitRepo

_log = logging.getLogger("gitxp.store.record")


def _blob(git: GitRepo, tree: dict[str, tuple[int, str]], name: str) -> bytes | None:
    entry = tree.get(name)
    return None if entry is None else read_run_file(git, entry[1], name)


def _read_params(git: GitRepo, tree: dict[str, tuple[int, str]], newer: bool) -> dict[str, Any]:
    """A run's params.json, checked (`schema.Invalid` when it is missing or does not pass;
    a run of a *newer* format whose params do not pass has none)."""
    data = _blob(git, tree, storage.PARAMS_FILE)
    if data is None:
        raise schema.Invalid(f"missing {storage.PARAMS_FILE}")
    try:
        return schema.check_params(schema.load_json(data, storage.PARAMS_FILE))
    except schema.Invalid:
        if not newer:
            raise
        return {}


def _read_summary(git: GitRepo, tree: dict[str, tuple[int, str]], newer: bool) -> dict[str, Any]:
    """A run's summary.json, checked ({} when there is none; `schema.Invalid` when it does
    not pass, except for a run of a *newer* format, which then has none)."""
    data = _blob(git, tree, storage.SUMMARY_FILE)
    if data is None:
        return {}
    try:
        return schema.check_summary(schema.load_json(data, storage.SUMMARY_FILE), not newer)
    except schema.Invalid:
        if not newer:
            raise
        return {}


def read_row(git: GitRepo, commit_id: str, run_id: str | None = None) -> dict[str, Any]:
    """The listing row of the run whose tip is *commit_id* (what the cache stores).

    run.json, params.json and summary.json are parsed within the bounds of
    `gitxp.format.schema` and checked against the format-1 schema; a run that does
    not pass raises `CorruptRunError` (its `salvage` holds the identity
    fields that did pass). A run of a newer format is read as far as the
    format-1 schema allows: ill-typed members are left out, and the row says
    its `format` so edits can be refused.
    """
    who = run_id or commit_id
    tree = git.read_tree(git.commit_tree(commit_id))
    raw: Any = None
    try:
        data = _blob(git, tree, storage.RUN_FILE)
        if data is None:
            raise schema.Invalid(f"missing {storage.RUN_FILE}")
        raw = schema.load_json(data, storage.RUN_FILE)
        version = schema.meta_format(raw)
        newer = version > storage.FORMAT_VERSION
        meta = schema.check_meta(raw, strict=not newer)
        params = _read_params(git, tree, newer)
        summary = _read_summary(git, tree, newer)
    except schema.Invalid as exc:
        raise _Unreadable(who, str(exc), _salvage(raw)) from None
    row = {"id": meta["id"], "status": meta.get("status")}
    row.update((k, meta.get(k)) for k in schema.LISTED_META)
    row.update(
        {
            "dirty": meta.get("dirty", False),
            "supervised": bool(meta.get("supervised")),
            "commit": commit_id,
            "params": params,
            "tags": meta.get("tags") or {},
            "summary": summary,
            "metrics": {k: from_json_float(s.get("last")) for k, s in summary.items()},
            "notes": storage.NOTES_FILE in tree,
        }
    )
    if newer:
        row["format"] = version
    return row


class _Unreadable(CorruptRunError):
    """A run whose files fail the schema, with the identity members that passed."""

    def __init__(self, run_id: str, reason: str, salvage: dict[str, Any]) -> None:
        super().__init__(run_id, reason)
        self.salvage = salvage


# identity members a CORRUPT row keeps when they pass their own check, so it can be found
_SALVAGED = ("name", "experiment", "start_time", "end_time", "user", "host")


def _salvage(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in _SALVAGED if k in raw and schema.META_FIELDS[k](raw[k])}


def corrupt_row(
    commit_id: str, run_id: str, reason: str, salvage: dict[str, Any]
) -> dict[str, Any]:
    """The listing row of a run that cannot be read: status CORRUPT, the reason in `corrupt`."""
    row: dict[str, Any] = dict.fromkeys(schema.LISTED_META)
    row.update(salvage)
    row.update(
        {
            "id": run_id,
            "status": CORRUPT,
            "corrupt": reason,
            "dirty": False,
            "supervised": False,
            "commit": commit_id,
            "params": {},
            "tags": {},
            "summary": {},
            "metrics": {},
            "notes": False,
        }
    )
    return row


def listing_row(git: GitRepo, commit_id: str, run_id: str) -> tuple[dict[str, Any], bool]:
    """The row of the run *run_id* at *commit_id*, a CORRUPT row when it cannot be read.

    Also returns whether the row may be cached under the commit id: a verdict
    on the content of the commit's files is final, while a missing or
    damaged object may be repaired (a fetch completes, a pack is restored).
    """
    try:
        return read_row(git, commit_id, run_id), True
    except CorruptRunError as exc:
        return corrupt_row(commit_id, run_id, exc.reason, getattr(exc, "salvage", {})), True
    except Exception as exc:  # a missing or damaged object: list it, do not cache it
        reason = str(exc) if isinstance(exc, GitxpError) else f"{type(exc).__name__}: {exc}"
        _log.warning("run %s: cannot read commit %s: %s", run_id, commit_id, reason)
        return corrupt_row(commit_id, run_id, f"unreadable: {reason}", {}), False


class RunRecord:
    """A committed run, as read from the tip of its ref (`Repo.run(...)` returns these)."""

    def __init__(
        self, git: GitRepo, ref: str, commit_id: str, row: dict[str, Any] | None = None
    ) -> None:
        self._git = git
        self.ref = ref
        self.commit = commit_id
        if row is not None:
            self._row = row

    @cached_property
    def _row(self) -> dict[str, Any]:
        """run.json, params.json and summary.json, read on first use (a metric
        history alone never needs them); a CORRUPT row when they fail the schema."""
        return listing_row(self._git, self.commit, self.ref.rsplit("/", 1)[-1])[0]

    def __repr__(self) -> str:
        return f"<gitxp.RunRecord {self.id} name={self.name!r} {self.status}>"

    # -- metadata ------------------------------------------------------------
    @cached_property
    def _tree(self) -> dict[str, tuple[int, str]]:
        return self._git.read_tree(self._git.commit_tree(self.commit))

    def _blob(self, name: str) -> bytes | None:
        """The file *name* of the run (None when absent); `schema.Invalid` when it is over
        its limit."""
        return _blob(self._git, self._tree, name)

    def _text(self, name: str) -> str:
        """A text file of the run ('' when absent); one over the limit is a CorruptRunError."""
        try:
            data = self._blob(name)
        except schema.Invalid as exc:
            raise CorruptRunError(self.id, str(exc)) from None
        return data.decode("utf-8", "replace") if data else ""

    @cached_property
    def meta(self) -> dict[str, Any]:
        """Everything in run.json (command, host, snapshot report, ...) that passes the
        schema; members of the wrong type are left out, and a CORRUPT run gives {}."""
        try:
            data = self._blob(storage.RUN_FILE)
            return (
                schema.check_meta(schema.load_json(data, storage.RUN_FILE), strict=False)
                if data
                else {}
            )
        except schema.Invalid:
            return {}

    @property
    def corrupt(self) -> str | None:
        """Why the run cannot be read (its status is then CORRUPT), or None."""
        return self._row.get("corrupt")

    @property
    def format(self) -> int:
        """The format version the run was written in; above `storage.FORMAT_VERSION` the run
        is read as far as this gitxp understands it, and cannot be changed."""
        return int(self._row.get("format") or storage.FORMAT_VERSION)

    @property
    def id(self) -> str:
        return str(self._row["id"])

    @property
    def name(self) -> str:
        return str(self._row.get("name") or "")

    @property
    def experiment(self) -> str:
        return str(self._row.get("experiment") or "")

    @property
    def status(self) -> str:
        """FINISHED, FAILED, KILLED, RUNNING, CRASHED for a run whose process died, or
        CORRUPT for a run whose files fail the schema (`corrupt` says why)."""
        return effective_status(self._row)

    @property
    def start_time(self) -> int | None:
        return self._row.get("start_time")

    @property
    def end_time(self) -> int | None:
        return self._row.get("end_time")

    @property
    def parent(self) -> str | None:
        """The id of the run this one is nested in (MLflow's nested runs), or None."""
        return self._row.get("parent")

    @property
    def source(self) -> str | None:
        """Where an imported run came from, e.g. ``mlflow:<run_id>``, or None."""
        return self._row.get("source")

    @property
    def code_commit(self) -> str | None:
        """The commit holding the code the run ran (HEAD, or a snapshot of the work tree)."""
        return self._row.get("code_commit")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._row.get("params") or {})

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._row.get("tags") or {})

    @property
    def summary(self) -> dict[str, dict[str, Any]]:
        """Per metric: count, last (value at the highest step), step, min, max."""
        out = {}
        for key, s in (self._row.get("summary") or {}).items():
            out[key] = {**s, **{f: from_json_float(s.get(f)) for f in ("last", "min", "max")}}
        return out

    @property
    def last_metrics(self) -> dict[str, float | None]:
        return dict(self._row.get("metrics") or {})

    @cached_property
    def notes(self) -> str:
        """The run's notes (notes.md); over `GITXP_MAX_JSON_BYTES`, a CorruptRunError."""
        return self._text(storage.NOTES_FILE).rstrip("\n")

    @cached_property
    def env(self) -> dict[str, Any]:
        """The recorded environment (Python, platform, packages, allow-listed variables)."""
        try:
            data = self._blob(storage.ENV_FILE)
            return schema.check_env(schema.load_json(data, storage.ENV_FILE)) if data else {}
        except schema.Invalid as exc:
            _log.warning("run %s: environment not shown: %s", self.id, exc)
            return {}

    @cached_property
    def output(self) -> str:
        """The captured output of a `gitxp run` command (its tail), or ''; over
        `GITXP_MAX_JSON_BYTES`, a CorruptRunError."""
        return self._text(storage.OUTPUT_FILE)

    # -- metrics -----------------------------------------------------------------
    def _part_names(self) -> list[tuple[str, str]]:
        metrics = self._tree.get(storage.METRICS_DIR.rstrip("/"))
        if metrics is None:
            return []
        entries = self._git.read_tree(metrics[1])
        return [
            (storage.METRICS_DIR + name, sha)
            for name, (_, sha) in sorted(entries.items())
            if name.endswith(".parquet")
        ]

    def _part_blobs(self, parts: list[tuple[str, str]] | None = None) -> list[bytes]:
        """The metric parts' bytes; a part over `GITXP_MAX_DECODE_BYTES` is refused
        (`CorruptRunError`) before it is inflated."""
        limit = schema.max_decode_bytes()
        out = []
        for name, sha in self._part_names() if parts is None else parts:
            try:
                out.append(self._git.read_blob(sha, limit=limit))
            except ObjectTooLargeError as exc:
                raise CorruptRunError(
                    self.id,
                    f"{name} inflates to {exc.size:,} bytes, over the limit of {limit:,} "
                    "bytes (GITXP_MAX_DECODE_BYTES)",
                ) from None
        return out

    def metrics(self) -> pd.DataFrame:
        """Every metric point, long format: key, step, timestamp (ms), value.

        A part that is not a metric part, or whose footer promises more than
        `GITXP_MAX_DECODE_BYTES` of data, raises `CorruptRunError` before
        anything is decoded.
        """
        from ..format.metrics import decode_parts, to_frame

        parts = self._part_names()
        try:
            return to_frame(decode_parts(self._part_blobs(parts), names=[n for n, _ in parts]))
        except schema.Invalid as exc:
            raise CorruptRunError(self.id, str(exc)) from None

    def metric_history(self, key: str) -> pd.DataFrame:
        """One metric's points ordered by step: step, timestamp (ms), value."""
        from ..format.metrics import read_history

        if not isinstance(key, str):
            raise InvalidValueError("metric key", f"{key!r} must be a string")
        parts = self._part_names()
        try:
            frame = read_history(self._part_blobs(parts), key, names=[n for n, _ in parts])
        except schema.Invalid as exc:
            raise CorruptRunError(self.id, str(exc)) from None
        if len(frame) == 0 and key not in (self._row.get("summary") or {}):
            known = ", ".join(sorted(self._row.get("summary") or {})) or "none"
            raise GitxpError(f"run {self.id} has no metric {key!r} (it has: {known})")
        return frame

    # -- artifacts ----------------------------------------------------------------------
    def artifacts(self, name: str | None = None) -> list[dict[str, Any]]:
        """The run's artifact files: name, path, size, sha256, mode, location (tree|store)
        and, for large files, the store URI. *name* narrows to one artifact or path."""
        from .artifacts import record_files

        return record_files(self, name)

    def download_artifacts(
        self, name: str | None = None, to: str | os.PathLike[str] = "."
    ) -> list[str]:
        """Write the run's artifacts (all, or *name*) under directory *to*; return the paths.

        Large files come from the local artifact store or the shared one;
        every file is checked against its sha256 and no path may leave *to*.
        """
        from .artifacts import download

        return download(self._git, self.commit, self.id, name, to)

    # -- history --------------------------------------------------------------------
    def history(self) -> list[dict[str, Any]]:
        """The run's own commits, newest first: start, checkpoints, end and later edits."""
        out = []
        sha: str | None = self.commit
        code = self.code_commit
        while sha and sha != code:
            c = self._git.read_commit(sha)
            out.append(
                {
                    "commit": sha,
                    "time": c.commit_time,
                    "author": c.author,
                    "subject": c.message.splitlines()[0] if c.message else "",
                }
            )
            sha = c.parents[0] if c.parents else None
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the run (the `--format json` of `gitxp show`)."""
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "code_commit": self.code_commit,
            "dirty": bool(self._row.get("dirty")),
            "commit": self.commit,
            "user": self._row.get("user"),
            "host": self._row.get("host"),
            "params": self.params,
            "metrics": {k: _json_num(v) for k, v in self.last_metrics.items()},
            "summary": {
                k: {f: _json_num(x) if isinstance(x, float) else x for f, x in s.items()}
                for k, s in self.summary.items()
            },
            "tags": self.tags,
            "notes": self.notes,
            "command": self.meta.get("command"),
            "snapshot": self.meta.get("snapshot"),
            "error": self.meta.get("error"),
            **({"corrupt": self.corrupt} if self.corrupt else {}),
            **({"format": self.format} if self.format > storage.FORMAT_VERSION else {}),
        }


def _json_num(value: float | None) -> float | str | None:
    from ..format.values import json_float

    return None if value is None else json_float(value)
