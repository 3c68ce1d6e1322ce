"""The live run: buffering points in memory and committing checkpoints to the run's ref.

Each metric key's points wait in a `Series` (typed arrays: appending costs
a fraction of a microsecond and nothing touches disk per point). A
checkpoint encodes the points gathered since the previous one as one
Parquet part, and the run's `RunWriter` (`gitxp.store.writer`) commits a
new tree on `refs/gitxp/runs/<id>`, its parent the previous checkpoint, so
the first-parent chain ends at the code commit; a failed write undoes
itself (`gitxp.store.transaction`). Checkpoints happen every
`checkpoint_seconds` (one background thread serves every run of the
process: `gitxp.tracking.checkpointer`), when more than `buffer_points`
points wait, and when the run ends; a killed process loses at most what
came after its last checkpoint. How a run starts (snapshot, environment,
joining a run of `gitxp run`) is `gitxp.tracking.start`.

The first commit waits `start_delay` seconds (default 1; `$GITXP_START_DELAY`):
a run that ends sooner is one commit, not two (one ref update, fewer objects,
about a fifth less disk; docs/format.md), and a reader in the same process
publishes pending runs before it reads (`gitxp.store.pending`), so only other
processes see a run up to a second late.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError, RunFinishedError
from ..format.status import HEARTBEAT_SECONDS, now_ms
from ..format.values import check_note
from ..store import pending, transaction
from . import start
from .buffer import MetricBuffer
from .checkpointer import checkpointer
from .options import RunOptions, checked_params, checked_tags

if TYPE_CHECKING:
    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.tracking.run")


class Run(MetricBuffer):
    """One training or evaluation job being recorded; use it as a context manager.

    Create runs with `gitxp.start_run(...)`; leaving the `with` block commits
    the run as FINISHED, FAILED (on an exception, which propagates) or
    KILLED (on KeyboardInterrupt). `Run(repo, options)` records into the
    `GitRepo` *repo* as `RunOptions` *options* say.
    """

    inert = False  # True for the run of a rank that does not record (tracking/inert.py)

    def __init__(
        self, repo: GitRepo, options: RunOptions | None = None, *, _join: str | None = None
    ) -> None:
        options = RunOptions() if options is None else options
        seconds, delay = options.checkpoint_seconds, options.start_delay
        assert seconds and delay is not None and options.buffer_points  # settled by RunOptions
        super().__init__(options.buffer_points)
        self._git = repo
        self.checkpoint_seconds = seconds
        self._start_delay = delay  # how long the first commit waits (see above); 0: at once
        # checked before anything is committed: a bad setting or a missing psutil fails early
        sampling = options.sampling_interval()
        self._ended = False
        self._joined = _join is not None
        self._stop = threading.Event()
        self._sampler: Any = None
        self._adopt(start.create(repo, options) if _join is None else start.join(repo, _join))
        self._lock = self._writer.lock
        if self._writer.tip is None:
            if self._start_delay == 0:
                self._commit("start")
            else:
                pending.wait(self, self._git.git_dir)
        # Encoding metrics can import pandas (through pyarrow), which imports
        # concurrent.futures.thread; that import fails once the interpreter is
        # shutting down, which is exactly when runs left open are ended (atexit).
        import concurrent.futures.thread  # noqa: F401

        first = (
            min(self._start_delay, self.checkpoint_seconds) if self._writer.tip is None else None
        )
        checkpointer.add(self, time.monotonic() + (first or self.checkpoint_seconds))
        self._start_system_metrics(sampling)

    def _adopt(self, started: start.Started) -> None:
        """Take on the state of a run that starts (or that another process wrote to)."""
        self._writer = started.writer
        self._meta = started.meta
        self._params = started.params
        self._tags = started.tags
        self._notes = started.notes
        self._series = started.series
        self.id: str = self._meta["id"]
        self.name: str = self._meta["name"]
        self.experiment: str = self._meta["experiment"]
        self.ref = self._writer.ref

    def _start_system_metrics(self, interval: float | None) -> None:
        """Sample machine utilisation into `system/...` series (see tracking/system_metrics.py)."""
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
            log.warning("gitxp: system metrics are off for run %s: %s", self.id, exc)
            return
        self._set_meta(system_metrics_seconds=interval)

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
    def notes(self) -> str:
        """The notes written so far ("" when none)."""
        return self._notes or ""

    def live_row(self) -> dict[str, Any]:
        """This run's listing row as it stands in memory, buffered points included: what
        `Repo.rows()` will show once it is committed, for bridges that show a live run
        (MLflow's `get_run` of an active run). ``summary`` holds each key's last step and
        timestamp."""
        meta = self._meta
        lasts = {k: p for k, s in list(self._series.items()) if (p := s.latest()) is not None}
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": meta.get("status"),
            "start_time": meta.get("start_time"),
            "end_time": meta.get("end_time"),
            "user": meta.get("user"),
            "parent": meta.get("parent"),
            "params": dict(self._params),
            "tags": dict(self._tags),
            "metrics": {k: v[0] for k, v in lasts.items()},
            "summary": {k: {"step": v[1], "timestamp": v[2]} for k, v in lasts.items()},
        }

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

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several params at once (all are checked before any is stored)."""
        self._check_open("log_params")
        self._params.update(checked_params(params, self._params))
        self._writer.dirty = True

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (a string label that may change during the run)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._check_open("set_tags")
        self._tags.update(checked_tags(tags))
        self._writer.dirty = True

    def note(self, text: str) -> None:
        """Append a paragraph of free text (Markdown) to the run's notes."""
        self._check_open("note")
        text = check_note(text).strip()
        if text:
            self._notes = f"{self._notes}\n\n{text}" if self._notes else text
            self._writer.dirty = True

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
        """Keep file or directory *path* with the run as artifact *name* (default: its base name).

        Files up to the threshold (5 MiB unless configured) are stored in the
        run's git tree; larger ones go to the content-addressed artifact
        store and the run keeps their sha256, size and store URI. Logging a
        name again replaces it. Returns the artifact's manifest entry.
        """
        self._check_open("log_artifact")
        from ..store.artifacts import log_artifact

        return log_artifact(self._writer, path, name)

    def log_text(self, text: str, name: str) -> dict[str, Any]:
        """Keep *text* with the run as the file artifact *name* (`"report.md"`, `"eval/log.txt"`)."""
        self._check_open("log_text")
        from ..store.artifacts import log_text

        return log_text(self._writer, text, name)

    def log_dict(self, value: Any, name: str) -> dict[str, Any]:
        """Keep *value* (a dict, list ...) with the run as artifact *name*: YAML when *name*
        ends in .yaml or .yml, JSON otherwise; numpy values and paths are written plainly."""
        self._check_open("log_dict")
        from ..store.artifacts import log_dict

        return log_dict(self._writer, value, name)

    # -- for other gitxp modules (`gitxp run`, integrations) ----------------------------------------
    def _set_meta(self, **values: Any) -> None:
        """Update fields of run.json (committed with the next checkpoint)."""
        with self._lock:
            self._meta.update(values)
            self._writer.dirty = True

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
            self._unwritten()  # dropped
            self._writer.reload()
            self._adopt(start.read_back(self._writer))

    # -- committing -----------------------------------------------------------
    def _publish(self) -> None:
        """Write the run's first commit now if it has none yet (see the start delay)."""
        with self._lock:
            if self._writer.tip is None and not self._ended:
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
                writer = self._writer
                if writer.tip is None:
                    self._commit("start")
                elif (
                    self._pending
                    or writer.dirty
                    or time.monotonic() - writer.last_commit >= HEARTBEAT_SECONDS
                ):
                    self._commit("checkpoint")
        except Exception as exc:  # never kill the training loop from this thread
            transaction.warn_kept(self.id, self._pending, exc)
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
                transaction.warn_kept(self.id, self._pending, exc)
                return False
            return True

    def _commit(self, kind: str) -> None:
        """Commit what was logged as a commit of *kind* (start, checkpoint or end)."""
        with self._attempt(self._writer, self._meta):  # a failed write undoes itself
            points = self._flush_points(self._writer)
            self._meta["tags"] = dict(self._tags)
            series = self._series
            self._writer.commit(
                kind,
                points,
                meta=self._meta,
                params=self._params,
                notes=self._notes,
                summary={k: s.summary() for k, s in sorted(series.items()) if s.count},
                lasts={k: {"last": s.last} for k, s in series.items() if s.count},
            )
            pending.done(self)

    def _commit_end(self, end_ms: int, status: str, error: str | None) -> None:
        """Commit the final commit: the run's status, end time and error."""
        self._meta["status"] = status
        self._meta["end_time"] = end_ms
        if error:
            self._meta["error"] = error[:2000]
        self._commit("end")

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
                with self._attempt(self._writer, self._meta):
                    if self._joined:
                        # another process (gitxp run) owns this run and will finish it
                        self._commit("checkpoint")
                    else:
                        self._flush_points(self._writer)
                        self._writer.merge_parts(sum(s.count for s in self._series.values()))
                        self._commit_end(end_ms, status, error)
            except Exception as exc:  # never FINISHED with points missing: see store/transaction
                transaction.finish_after_failure(
                    self.id,
                    exc,
                    status,
                    error,
                    joined=self._joined,
                    commit_end=lambda final, why: self._commit_end(end_ms, final, why),
                    unwritten=self._unwritten,
                )
            finally:
                self._ended = self._writer.closed = True
                self._series = {}
                context._forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:  # the block's own exception goes on; a failed final write is reported beside it
            with transaction.report_write_failure():
                if issubclass(exc_type, KeyboardInterrupt):
                    self.end("KILLED", "KeyboardInterrupt")
                else:
                    self.end("FAILED", f"{exc_type.__name__}: {exc}")
