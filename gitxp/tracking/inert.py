"""The inert run: what `gitxp.start_run()` returns on a rank that does not record.

Under a distributed launcher only global rank 0 records by default
(`gitxp.tracking.ranks`); the same training script runs on every rank, so
the other ranks must be able to make every call rank 0 makes. `InertRun`
is a `Run` in every public respect (the same methods and attributes, a
context manager, the active run of module-level calls and callbacks) that
accepts every call and records nothing: no git writes, no files, no
threads, no checks. Its `params` and `tags` hold what it was given, so a
script reading its own settings back sees the same values on every rank.

Inside `gitxp run` (`GITXP_RUN_ID` set) it mirrors the identity, params and
tags of the run that command records, read once from the run's ref, so
`gitxp.active_run().params` agrees on every rank.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import GitxpError
from ..format.status import now_ms
from . import context
from .options import RunOptions
from .run import Run

log = logging.getLogger("gitxp.tracking.inert")


class InertRun(Run):
    """A run that records nothing: every call of `Run` is accepted and costs next to nothing.

    `gitxp.start_run()` returns one on the ranks of a distributed job that do
    not record (see docs/distributed.md). *joined* is the id of the run of
    `gitxp run` this process belongs to, if any, and *repo* where it lives.
    """

    inert = True  # the one thing a script can ask to tell it apart from a recording run

    def __init__(
        self,
        options: RunOptions | None = None,
        *,
        joined: str | None = None,
        repo: str | os.PathLike[str] | None = None,
    ) -> None:
        # deliberately not Run.__init__: no repository, writer, checkpointer or sampler
        options = RunOptions() if options is None else options
        self.id = joined or ""
        self.name = options.name or ""
        self.experiment = options.experiment or os.environ.get("GITXP_EXPERIMENT") or "default"
        self.ref = f"refs/gitxp/runs/{joined}" if joined else ""
        self.checkpoint_seconds = float(options.checkpoint_seconds or 0)
        self._meta: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": "RUNNING",
            "start_time": now_ms(),
            "end_time": None,
            "code_commit": None,
        }
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._notes = ""
        self._series = {}
        self._ended = False
        self._joined = True  # never ended by a callback on our behalf: nothing to end
        if joined:
            self._mirror(joined, repo)
        self._params.update(options.params or {})
        self._tags.update(options.tags or {})

    def _mirror(self, run_id: str, repo: str | os.PathLike[str] | None) -> None:
        """Take on the identity, params and tags of the run *run_id* (read only)."""
        from ..git.repository import open_for_run, release
        from .start import join

        try:
            git = open_for_run(repo or ".")
        except GitxpError as exc:
            log.debug("gitxp: inert run cannot read run %s: %s", run_id, exc)
            return
        try:
            started = join(git, run_id)
        except GitxpError as exc:
            log.debug("gitxp: inert run cannot read run %s: %s", run_id, exc)
            return
        finally:
            release(git)
        meta = started.meta
        self.name = str(meta.get("name") or "")
        self.experiment = str(meta.get("experiment") or self.experiment)
        self._meta["code_commit"] = meta.get("code_commit")
        self._params.update(started.params)
        self._tags.update(started.tags)

    # -- public attributes --------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """The params given to this run (a copy); nothing is recorded."""
        return dict(self._params)

    @property
    def tags(self) -> dict[str, str]:
        """The tags given to this run (a copy); nothing is recorded."""
        return dict(self._tags)

    @property
    def status(self) -> str:
        return str(self._meta["status"])

    @property
    def code_commit(self) -> str | None:
        return self._meta.get("code_commit")

    @property
    def notes(self) -> str:
        """Always "": notes are accepted and dropped."""
        return ""

    def live_row(self) -> dict[str, Any]:
        """The row of this rank's run as given: no metric, as nothing is recorded."""
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "start_time": self._meta.get("start_time"),
            "end_time": self._meta.get("end_time"),
            "user": self._meta.get("user"),
            "parent": self._meta.get("parent"),
            "params": dict(self._params),
            "tags": dict(self._tags),
            "metrics": {},
            "summary": {},
        }

    def __repr__(self) -> str:
        return f"<gitxp.Run (inert: this rank does not record) experiment={self.experiment!r}>"

    # -- logging: accepted, not recorded ------------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Accepted and dropped: this rank does not record."""

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Accepted and dropped: this rank does not record."""

    def log_metric_array(
        self,
        key: str,
        values: Iterable[float],
        steps: Iterable[int] | None = None,
        timestamps: Iterable[int] | None = None,
    ) -> None:
        """Accepted and dropped: this rank does not record."""

    def log_param(self, key: str, value: Any) -> None:
        """Kept in `params` (unchecked), not recorded."""
        self._params[key] = value

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Kept in `params` (unchecked), not recorded."""
        if isinstance(params, Mapping):
            self._params.update(params)

    def set_tag(self, key: str, value: Any) -> None:
        """Kept in `tags` (unchecked), not recorded."""
        self._tags[key] = str(value)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Kept in `tags` (unchecked), not recorded."""
        if isinstance(tags, Mapping):
            self._tags.update({k: str(v) for k, v in tags.items()})

    def note(self, text: str) -> None:
        """Accepted and dropped: this rank does not record."""

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
        """Accepted, nothing is read or stored; returns an empty manifest entry."""
        return {}

    def log_text(self, text: str, name: str) -> dict[str, Any]:
        """Accepted, nothing is stored; returns an empty manifest entry."""
        return {}

    def log_dict(self, value: Any, name: str) -> dict[str, Any]:
        """Accepted, nothing is stored; returns an empty manifest entry."""
        return {}

    # -- lifetime -----------------------------------------------------------
    def checkpoint(self) -> bool:
        """Nothing to commit: True."""
        return True

    def end(
        self, status: str = "FINISHED", error: str | None = None, *, end_time: int | None = None
    ) -> None:
        """Mark the run ended and no longer active; nothing is committed."""
        if self._ended:
            return
        self._ended = True
        self._meta["status"] = status
        context._drop(self)

    def __enter__(self) -> InertRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.end("FINISHED" if exc_type is None else "FAILED")

    # -- what gitxp's own layers call on a run ------------------------------
    def _set_meta(self, **values: Any) -> None:
        """Accepted and dropped."""

    def _pause_checkpoints(self) -> None:
        """No checkpoints to pause."""

    def _publish(self) -> None:
        """Nothing to publish."""

    def _reload(self) -> None:
        """Nothing to re-read."""

    def _tick(self) -> float | None:
        """Never scheduled; never schedules."""
        return None
