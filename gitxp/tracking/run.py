"""The live run: buffering points in memory and committing checkpoints to the run's ref.

Each metric key's points wait in a `Series` (typed arrays: appending costs
a fraction of a microsecond and nothing touches disk per point). A
checkpoint encodes the points gathered since the previous one as one
Parquet part and commits a new tree on `refs/gitxp/runs/<id>`, its parent
the previous checkpoint, so the first-parent chain ends at the code commit.
Checkpoints happen every `checkpoint_seconds` (one background thread serves
every run of the process: `gitxp.tracking.checkpointer`), when more than
`buffer_points` points wait, and when the run ends; a killed process loses
at most what came after its last checkpoint.

The first commit waits `start_delay` seconds (default 1; `$GITXP_START_DELAY`):
a run that ends sooner is one commit, not two (one ref update, fewer objects,
about a fifth less disk; docs/format.md), and a reader in the same process
publishes pending runs before it reads (`gitxp.store.pending`), so only other
processes see a run up to a second late.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import GitxpError, InvalidValueError, ParamConflictError, RunFinishedError
from ..format import storage
from ..format.ids import check_run_name, host_name, new_run_id, new_run_name
from ..format.status import HEARTBEAT_SECONDS, now_ms
from ..format.values import (
    check_int,
    check_key,
    check_name,
    check_note,
    check_text,
    int_array,
    non_negative,
    normalize_param,
    to_float,
    to_tag,
)
from ..store import pending
from . import transaction
from .checkpointer import checkpointer
from .series import Series

DEFAULT_CHECKPOINT_SECONDS = 30.0
DEFAULT_BUFFER_POINTS = 1_000_000
MERGE_MAX_POINTS = 2_000_000  # parts are merged into one at the end only up to this size
DEFAULT_START_DELAY = 1.0


def _env_seconds(name: str, default: float, zero_ok: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValueError(name, f"{raw!r} is not a number of seconds") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise InvalidValueError(name, "must be a positive number of seconds")
    return value


class Run:
    """One training or evaluation job being recorded; use it as a context manager.

    Create runs with `gitxp.start_run(...)`; leaving the `with` block commits
    the run as FINISHED, FAILED (on an exception, which propagates) or
    KILLED (on KeyboardInterrupt).
    """

    def __init__(
        self,
        repo: Any,
        experiment: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        notes: str | None = None,
        checkpoint_seconds: float | None = None,
        buffer_points: int = DEFAULT_BUFFER_POINTS,
        snapshot: bool = True,
        max_snapshot_file_size: int | None = None,
        command: Mapping[str, Any] | None = None,
        extra_meta: Mapping[str, Any] | None = None,
        _join: str | None = None,
        system_metrics: bool | None = None,
        system_metrics_seconds: float | None = None,
        code_commit: str | None = None,
    ) -> None:
        from ..git.repository import GitRepo

        self._git: GitRepo = repo
        if checkpoint_seconds is None:
            checkpoint_seconds = _env_seconds(
                "GITXP_CHECKPOINT_SECONDS", DEFAULT_CHECKPOINT_SECONDS
            )
        self.checkpoint_seconds = non_negative(
            "checkpoint_seconds", checkpoint_seconds, zero_ok=False, unit="seconds"
        )
        # how long the first commit waits (see the module docstring); 0: at once
        self._start_delay = _env_seconds("GITXP_START_DELAY", DEFAULT_START_DELAY, zero_ok=True)
        if buffer_points < 1:
            raise InvalidValueError("buffer_points", "must be at least 1")
        # log_metric checkpoints once _buffer_points wait; a failed write raises it (transaction.py)
        self._buffer_points = self._buffer_limit = int(buffer_points)
        from .system_metrics import resolve as resolve_system_metrics

        # checked before anything is committed: a bad setting or a missing psutil fails early
        sm_interval = resolve_system_metrics(system_metrics, system_metrics_seconds)
        self._lock = threading.RLock()
        self._series: dict[str, Series] = {}
        self._pending = 0
        self._held: list[transaction.Chunk] = []  # points taken by commits that failed, to retry
        self._attempt: transaction.Attempt | None = None
        self._files: dict[str, tuple[int, str]] = {}
        self._parts = 0
        self._dirty_meta = True
        self._ended = False
        self._joined = _join is not None
        self._stop = threading.Event()
        self._sampler: Any = None
        if _join is not None:
            self._load_existing(_join)
        else:
            self._create(
                experiment,
                name,
                params,
                tags,
                notes,
                snapshot,
                max_snapshot_file_size,
                command,
                extra_meta,
                code_commit,
            )
        self._last_commit = time.monotonic()
        if self._tip is None:
            if self._start_delay == 0:
                self._commit("start")
            else:
                pending.wait(self, self._git.git_dir)
        # Encoding metrics can import pandas (through pyarrow), which imports
        # concurrent.futures.thread; that import fails once the interpreter is
        # shutting down, which is exactly when runs left open are ended (atexit).
        import concurrent.futures.thread  # noqa: F401

        first = min(self._start_delay, self.checkpoint_seconds) if self._tip is None else None
        checkpointer.add(self, time.monotonic() + (first or self.checkpoint_seconds))
        self._start_system_metrics(sm_interval)

    def _start_system_metrics(self, interval: float | None) -> None:
        """Sample machine utilisation into `system/...` series (see gitxp/system_metrics.py)."""
        if interval is None:
            return
        from .system_metrics import SystemMetricsSampler

        try:
            self._sampler = SystemMetricsSampler(
                self.log_metric,
                self._meta["start_time"],
                interval,
                name=f"gitxp-system-metrics-{self.id[:8]}",
            ).start()
        except Exception as exc:  # the run itself is fine: record it, say why
            print(f"gitxp: system metrics are off for run {self.id}: {exc}", file=sys.stderr)
            return
        self._set_meta(system_metrics_seconds=interval)

    # -- creation ---------------------------------------------------------
    def _create(
        self,
        experiment: str | None,
        name: str | None,
        params: Mapping[str, Any] | None,
        tags: Mapping[str, Any] | None,
        notes: str | None,
        snapshot: bool,
        max_file_size: int | None,
        command: Mapping[str, Any] | None,
        extra_meta: Mapping[str, Any] | None,
        given_code: str | None = None,
    ) -> None:
        from ..git.snapshot import DEFAULT_MAX_FILE_SIZE, take_snapshot
        from . import environment

        experiment, name = check_name("experiment", experiment), check_name("name", name)
        if name is not None:
            name = check_run_name(name)
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._notes = ""
        if params:
            self.log_params(params, _commit=False)
        if tags:
            self.set_tags(tags)
        if notes:
            self._notes = check_note(notes)
        # importers pass the source's start time so the id sorts with the original run
        origin_start = (extra_meta or {}).get("start_time")
        self.id = new_run_id(origin_start if isinstance(origin_start, int) else None)
        self.name = name or new_run_name()
        env_exp = os.environ.get("GITXP_EXPERIMENT") or "default"
        self.experiment = experiment or check_text("GITXP_EXPERIMENT", env_exp).strip()
        self.ref = f"refs/gitxp/runs/{self.id}"
        start = now_ms()
        snap = None
        code_commit: str | None
        if given_code is not None:
            # re-running recorded code (`gitxp reproduce`): the code commit is known
            code_commit = given_code
        elif snapshot:
            cap = DEFAULT_MAX_FILE_SIZE if max_file_size is None else int(max_file_size)
            snap = take_snapshot(
                self._git, cap, f"gitxp: snapshot of the work tree for run {self.id}"
            )
            code_commit = snap.code_commit
        else:
            code_commit = self._git.head()
        ident = self._git.identity()
        self._meta: dict[str, Any] = {
            "format": storage.FORMAT_VERSION,
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": "RUNNING",
            "start_time": start,
            "end_time": None,
            "heartbeat_time": start,
            "checkpoint_seconds": self.checkpoint_seconds,
            "user": ident.name,
            "email": ident.email,
            "host": host_name(),
            "pid": os.getpid(),
            "code_commit": code_commit,
            "head": snap.head if snap else code_commit,
            "branch": self._git.head_branch(),
            "dirty": bool(snap and snap.dirty),
            "command": dict(command) if command else _default_command(self._git.root),
            "tags": {},
        }
        if snap is not None and (snap.changed or snap.excluded_count):
            self._meta["snapshot"] = {
                "changed": snap.changed[:200],
                "changed_count": len(snap.changed),
                "excluded": snap.excluded,
                "excluded_count": snap.excluded_count,
            }
            if snap.unfiltered:  # stored without the filter their attributes name
                self._meta["snapshot"]["unfiltered"] = snap.unfiltered[:200]
        if extra_meta:
            self._meta.update(extra_meta)
        env = environment.capture(self._git.remote_url(), cache_dir=self._git.gitxp_dir())
        # written with the first commit: until a ref reaches it, git may prune it
        self._env_data: bytes | None = storage.dumps_env(env)
        self._tip: str | None = None
        self._parent = code_commit
        self._pinned = False
        if snap and snap.code_commit and snap.code_commit != snap.head and self._start_delay > 0:
            # nothing reaches the snapshot until the first commit: pin it till then
            from ..git.refs import pin_pending

            pin_pending(self._git, self.id, snap.code_commit)
            self._pinned = True

    def _load_existing(self, run_id: str) -> None:
        """Attach to a run created by another process (`gitxp run`) to add to it."""
        from ..git.refs import read_ref

        self.ref = f"refs/gitxp/runs/{run_id}"
        tip = read_ref(self._git, self.ref)
        if tip is None:
            raise GitxpError(f"cannot join run {run_id}: {self.ref} does not exist")
        commit = self._git.read_commit(tip)
        self._files = dict((p, (m, s)) for p, m, s in self._git.walk_tree(commit.tree))

        def read(name: str) -> bytes:
            # within the bounds every reader of a run's files keeps (GITXP_MAX_JSON_BYTES)
            from ..format.schema import Invalid
            from ..store.blobs import read_run_file

            try:
                return read_run_file(self._git, self._files[name][1], name)
            except Invalid as exc:
                raise GitxpError(f"cannot join run {run_id}: {exc}") from None

        self._meta = storage.loads(read(storage.RUN_FILE))
        self._params = storage.loads(read(storage.PARAMS_FILE))
        self._tags = dict(self._meta.get("tags") or {})
        self._notes = read(storage.NOTES_FILE).decode() if storage.NOTES_FILE in self._files else ""
        self._parts = sum(
            1 for p in self._files if p.startswith(storage.METRICS_DIR) and p.endswith(".parquet")
        )
        summary_blob = self._files.get(storage.SUMMARY_FILE)
        if summary_blob:
            from ..format.values import from_json_float

            for key, s in storage.loads(read(storage.SUMMARY_FILE)).items():
                series = Series(key)
                series.count = s.get("count", 0)
                series.last = from_json_float(s.get("last"))
                series.last_step = s.get("step") if s.get("step") is not None else -(2**63)
                series.last_ts = s.get("timestamp") or 0
                series.min = from_json_float(s.get("min"))
                series.max = from_json_float(s.get("max"))
                series.next_step = series.last_step + 1 if s.get("step") is not None else 0
                self._series[key] = series
        self.id = self._meta["id"]
        self.name = self._meta["name"]
        self.experiment = self._meta["experiment"]
        self._tip = tip
        self._parent = tip

    # -- public attributes --------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """The params logged so far (a copy)."""
        return dict(self._params)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    @property
    def status(self) -> str:
        return str(self._meta["status"])

    @property
    def code_commit(self) -> str | None:
        return self._meta.get("code_commit")

    def __repr__(self) -> str:
        return (
            f"<gitxp.Run {self.id} name={self.name!r} experiment={self.experiment!r} {self.status}>"
        )

    # -- logging ------------------------------------------------------------
    def _check_open(self, call: str) -> None:
        if self._ended:
            raise RunFinishedError(self.id, call)

    def log_param(self, key: str, value: Any) -> None:
        """Record one param; logging the same key again with another value is an error."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any], _commit: bool = True) -> None:
        """Record several params at once (all are checked before any is stored)."""
        if _commit:
            self._check_open("log_params")
        if not isinstance(params, Mapping):
            raise InvalidValueError("params", f"expected a dict, got {type(params).__name__}")
        clean: dict[str, Any] = {}
        for key, value in params.items():
            check_key("param", key)
            normal = normalize_param(key, value)
            if key in self._params and self._params[key] != normal:
                raise ParamConflictError(key, self._params[key], normal)
            if key in clean and clean[key] != normal:
                raise ParamConflictError(key, clean[key], normal)
            clean[key] = normal
        self._params.update(clean)
        self._dirty_meta = True

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (a string label that may change during the run)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if getattr(self, "_meta", None) is not None:
            self._check_open("set_tags")
        if not isinstance(tags, Mapping):
            raise InvalidValueError("tags", f"expected a dict, got {type(tags).__name__}")
        clean = {check_key("tag", k): to_tag(k, v) for k, v in tags.items()}
        self._tags.update(clean)
        self._dirty_meta = True

    def note(self, text: str) -> None:
        """Append a paragraph of free text (Markdown) to the run's notes."""
        self._check_open("note")
        text = check_note(text).strip()
        if text:
            self._notes = f"{self._notes}\n\n{text}" if self._notes else text
            self._dirty_meta = True

    def _new_series(self, key: str) -> Series:
        self._check_open("log_metric")
        check_key("metric", key)
        series = Series(key)
        self._series[key] = series
        return series

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point of metric *key* (step defaults to the key's next step)."""
        s = self._series.get(key)
        if s is None:
            s = self._new_series(key)
        if type(value) is not float:
            value = to_float(key, value)
        if step is None:
            step = s.next_step
        elif type(step) is not int:
            step = check_int(key, "step", step)
        ts = (
            time.time_ns() // 1_000_000
            if timestamp is None
            else check_int(key, "timestamp", timestamp)
        )
        try:
            s.steps.append(step)  # first: an out-of-range step fails before anything is stored
        except OverflowError:
            raise InvalidValueError(
                f"metric {key!r}", f"step {step} does not fit in int64"
            ) from None
        s.ts.append(ts)
        s.vals.append(value)
        s.next_step = step + 1
        self._pending += 1
        if self._pending >= self._buffer_points:
            self.checkpoint()

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point for each key of *metrics*, all at the same step and time."""
        if not isinstance(metrics, Mapping):
            raise InvalidValueError("metrics", f"expected a dict, got {type(metrics).__name__}")
        ts = now_ms() if timestamp is None else timestamp
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    def log_metric_array(
        self,
        key: str,
        values: Iterable[float],
        steps: Iterable[int] | None = None,
        timestamps: Iterable[int] | None = None,
    ) -> None:
        """Record a whole array of points of *key* at once (vectorised, numpy-fast).

        Steps default to consecutive steps after the key's last one;
        timestamps default to now.
        """
        import numpy as np

        self._check_open("log_metric_array")
        if values is None:
            raise InvalidValueError(f"metric {key!r}", "values must be numbers, got None")
        try:
            vals = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InvalidValueError(f"metric {key!r}", "values must be numbers") from None
        s = self._series.get(key)
        if s is None:
            check_key("metric", key)
        n = len(vals)
        if steps is None:
            first = 0 if s is None else s.next_step
            st = np.arange(first, first + n, dtype=np.int64)
        else:
            st = int_array(key, "steps", steps, n)
        if timestamps is None:
            tss = np.full(n, now_ms(), dtype=np.int64)
        else:
            tss = int_array(key, "timestamps", timestamps, n)
        if n == 0:
            return
        if s is None:  # only once the points are known good: a failed call leaves no key
            s = self._new_series(key)
        s.next_step = int(st[-1]) + 1
        s.steps.frombytes(st.tobytes())
        s.ts.frombytes(tss.tobytes())
        s.vals.frombytes(vals.tobytes())
        self._pending += n
        if self._pending >= self._buffer_points:
            self.checkpoint()

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
        """Keep file or directory *path* with the run as artifact *name* (default: its base name).

        Files up to the threshold (5 MiB unless configured) are stored in the
        run's git tree; larger ones go to the content-addressed artifact
        store and the run keeps their sha256, size and store URI. Logging a
        name again replaces it. Returns the artifact's manifest entry.
        """
        self._check_open("log_artifact")
        from ..store.artifacts import log_artifact

        return log_artifact(self, path, name)

    def log_text(self, text: str, name: str) -> dict[str, Any]:
        """Keep *text* with the run as the file artifact *name* (`"report.md"`, `"eval/log.txt"`)."""
        self._check_open("log_text")
        from ..store.artifacts import log_text

        return log_text(self, text, name)

    def log_dict(self, value: Any, name: str) -> dict[str, Any]:
        """Keep *value* (a dict, list ...) with the run as artifact *name*: YAML when *name*
        ends in .yaml or .yml, JSON otherwise; numpy values and paths are written plainly."""
        self._check_open("log_dict")
        from ..store.artifacts import log_dict

        return log_dict(self, value, name)

    # -- extension points for other gitxp modules (artifacts, `gitxp run`, ...) --
    def _put_file(self, path: str, data: bytes, mode: int = 0o100644) -> None:
        """Store *data* at *path* in the run tree from the next commit on."""
        self._check_open("put_file")
        with self._lock:
            self._files[path] = (mode, self._git.write_blob(data))
            self._dirty_meta = True

    def _drop_files(self, paths: Iterable[str]) -> None:
        """Remove *paths* from the run tree from the next commit on."""
        with self._lock:
            for path in paths:
                self._files.pop(path, None)
            self._dirty_meta = True

    def _read_file(self, path: str) -> bytes | None:
        """The current content of *path* in the run tree (None when absent)."""
        entry = self._files.get(path)
        return None if entry is None else self._git.read_blob(entry[1])

    def _set_meta(self, **values: Any) -> None:
        """Update fields of run.json (committed with the next checkpoint)."""
        with self._lock:
            self._meta.update(values)
            self._dirty_meta = True

    def _pause_checkpoints(self) -> None:
        """Stop the background checkpoints so another process can commit to the ref.

        `gitxp run` calls this before starting its command, which joins the run
        and commits to the same ref; two writers would race on the ref's CAS.
        """
        self._stop.set()
        with self._lock:
            pass  # a timed commit already under way finishes first; later ones see _stop
        self._publish()  # the other process joins the run through its ref

    def _reload(self) -> None:
        """Re-read the run from the tip of its ref (after another process committed to it).

        Whatever this process buffered and did not commit is dropped; callers
        pause checkpoints and commit first.
        """
        with self._lock:
            self._series = {}
            self._held = []
            self._pending = 0
            self._load_existing(self.id)

    # -- committing -----------------------------------------------------------
    def _publish(self) -> None:
        """Write the run's first commit now if it has none yet (see the start delay)."""
        with self._lock:
            if self._tip is None and not self._ended:
                self._commit("start")

    def _tick(self) -> float | None:
        """One timed step, made by the checkpointer thread: the first commit once the
        start delay is over, then a checkpoint every `checkpoint_seconds` when
        something changed (or a heartbeat). Returns when to tick next, or None."""
        if self._stop.is_set():
            return None
        try:
            with self._lock:
                if self._stop.is_set() or self._ended:
                    return None
                if self._tip is None:
                    self._commit("start")
                elif (
                    self._pending
                    or self._dirty_meta
                    or time.monotonic() - self._last_commit >= HEARTBEAT_SECONDS
                ):
                    self._commit("checkpoint")
        except Exception as exc:  # never kill the training loop from this thread
            transaction.warn_kept(self, exc)
        return time.monotonic() + self.checkpoint_seconds

    def checkpoint(self) -> bool:
        """Commit everything logged so far now (normally automatic); False if that failed.

        A failed write (a full disk) loses nothing: the points stay in memory,
        a warning says so, and the next checkpoint writes them.
        """
        with self._lock:
            if self._ended:
                return False
            try:
                self._commit("checkpoint")
            except Exception as exc:
                transaction.warn_kept(self, exc)
                return False
            return True

    def _flush_points(self) -> int:
        from ..format.metrics import encode_points, part_name

        chunks = transaction.take_points(self)
        self._pending = 0
        if not chunks:
            return 0
        blob = encode_points(chunks)
        self._parts += 1
        name = part_name(self._parts)
        self._files[name] = (0o100644, self._git.write_blob(blob))
        return sum(len(c[1]) for c in chunks)

    def _summary(self) -> dict[str, dict[str, Any]]:
        return {k: s.summary() for k, s in sorted(self._series.items()) if s.count}

    def _commit(self, kind: str, detail: str = "") -> None:
        with transaction.Attempt(self):  # a failed write puts the run back as it was
            self._write_commit(kind, detail)

    def _write_commit(self, kind: str, detail: str) -> None:
        from ..git.refs import update_ref

        if self._tip is None and kind == "checkpoint":
            kind = "start"  # the run's first commit, whatever prompted it
        points = self._flush_points()
        if kind == "checkpoint":
            detail = f"{points:,} new points" if points else "heartbeat"
        now = now_ms()
        if kind == "end":
            # liveness fields only matter while RUNNING (crash detection reads them)
            self._meta.pop("heartbeat_time", None)
            self._meta.pop("checkpoint_seconds", None)
        else:
            self._meta["heartbeat_time"] = now
        self._meta["tags"] = dict(self._tags)
        summary = self._summary()
        write = self._git.write_blob
        files = self._files
        env_data = getattr(self, "_env_data", None)
        if env_data is not None:
            files[storage.ENV_FILE] = (0o100644, write(env_data))
            self._env_data = None
        files[storage.RUN_FILE] = (0o100644, write(storage.dumps(self._meta)))
        files[storage.PARAMS_FILE] = (0o100644, write(storage.dumps(self._params)))
        files[storage.SUMMARY_FILE] = (0o100644, write(storage.dumps(summary)))
        if self._notes:
            files[storage.NOTES_FILE] = (0o100644, write(self._notes.encode() + b"\n"))
        tree = self._git.write_tree(files)
        message = storage.commit_message(
            kind,
            self._meta,
            self._params,
            {k: {"last": s.last} for k, s in self._series.items() if s.count},
            detail,
        )
        parents = [self._parent] if self._parent else []
        commit = self._git.write_commit(tree, parents, message, when=now / 1000)
        # no reflog line: each commit's parent is the previous one, so the ref only
        # ever moves forward along the run's own chain (a line would add a file per run)
        update_ref(self._git, self.ref, self._tip, commit, None)
        self._tip = commit
        if getattr(self, "_pinned", False):
            from ..git.refs import unpin_pending

            self._pinned = False
            unpin_pending(self._git, self.id)
        pending.done(self)
        self._parent = commit
        self._dirty_meta = False
        self._last_commit = time.monotonic()

    def _merge_parts(self) -> None:
        from ..format.metrics import merge_parts, part_name

        names = sorted(
            p for p in self._files if p.startswith(storage.METRICS_DIR) and p.endswith(".parquet")
        )
        if len(names) < 2:
            return
        # A git blob is written from one buffer, so merging holds the whole
        # merged file in memory several times over (10M points: +170 MB of
        # peak RSS). Large runs keep their checkpoint parts as they are, which
        # readers already handle; memory stays bounded however long the run.
        if sum(s.count for s in self._series.values()) > MERGE_MAX_POINTS:
            return
        merged = merge_parts(self._git.read_blob(self._files[n][1]) for n in names)
        for n in names:
            del self._files[n]
        self._files[part_name(1)] = (0o100644, self._git.write_blob(merged))
        self._parts = 1

    def end(
        self, status: str = "FINISHED", error: str | None = None, *, end_time: int | None = None
    ) -> None:
        """Finish the run: commit all remaining data with its final status.

        *end_time* (ms since the epoch) is for importers recording a run that
        ended in the past; by default it is now.
        """
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise InvalidValueError("status", f"{status!r} must be FINISHED, FAILED or KILLED")
        sampler, self._sampler = self._sampler, None
        if sampler is not None and not self._ended:
            sampler.stop()  # before the final commit, which must hold its last sample
        from . import context

        end_ms = now_ms() if end_time is None else int(end_time)
        with self._lock:
            if self._ended:
                return
            self._stop.set()
            try:
                with transaction.Attempt(self):
                    if self._joined:
                        # another process (gitxp run) owns this run and will finish it
                        self._commit("checkpoint")
                    else:
                        self._flush_points()
                        self._merge_parts()
                        self._meta["status"] = status
                        self._meta["end_time"] = end_ms
                        if error:
                            self._meta["error"] = error[:2000]
                        self._commit("end")
            except Exception as exc:  # never FINISHED with points missing: see transaction.py
                transaction.finish_after_failure(self, status, error, end_ms, exc)
            finally:
                self._ended = True
                self._series = {}
                context._forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:  # the block's own exception goes on; a failed final write is reported beside it
            with transaction.report_write_failure(self):
                if issubclass(exc_type, KeyboardInterrupt):
                    self.end("KILLED", "KeyboardInterrupt")
                else:
                    self.end("FAILED", f"{exc_type.__name__}: {exc}")


def _default_command(root: str) -> dict[str, Any]:
    """The command a run made through the Python API was started with."""
    argv = list(sys.argv)
    cwd = os.path.relpath(os.getcwd(), root)
    script = argv[0] if argv else ""
    script_path = os.path.abspath(script) if script and os.path.exists(script) else None
    rel_script = os.path.relpath(script_path, root) if script_path else None
    if rel_script and rel_script.startswith(".."):
        rel_script = None
    from .redaction import command_record

    return command_record(
        ["python", *argv] if script_path and script.endswith(".py") else argv,
        cwd=cwd if not cwd.startswith("..") else ".",
        script=rel_script,
        source="python",
    )
