"""One run per tuning trial (Optuna, Ray Tune), all recorded on the code captured once.

A tuner runs many trials in one process (the Optuna study loop, the Ray
Tune driver). Each trial gets a run of its own: unlike the framework
callbacks, a trial never joins the run that is active (nor the run of a
`gitxp run` around the tuning script), because trials are the runs being
compared. The work tree is snapshotted for the first trial only; every
later trial of the same `TrialRuns` records that same code commit, so a
file the tuning process writes meanwhile does not end up in each trial.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._frameworks import clean_params

if TYPE_CHECKING:
    from ..tracking.run import Run

MAX_TAG_CHARS = 5000  # a longer tag value (a user attr, a config) is cut, as MLflow does


class TrialRuns:
    """Starts the runs of one tuner's trials in the repository at or above *repo* (default: cwd)."""

    def __init__(
        self,
        repo: str | os.PathLike[str] | None = None,
        *,
        system_metrics: bool | None = False,
    ) -> None:
        self._repo = repo
        self._system_metrics = system_metrics
        self._code_commit: str | None = None
        self._lock = threading.Lock()

    def start(
        self,
        experiment: str | None,
        name: str | None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Run:
        """A new run for one trial, on the code of the first trial's run.

        The run is registered like any started run (ended at interpreter exit
        if still open) but not made active: the caller activates it where needed.
        """
        from ..format.ids import usable_run_name
        from ..git.repository import open_for_run, release
        from ..tracking.context import pop_active, push_active
        from ..tracking.options import RunOptions
        from ..tracking.run import Run

        with self._lock:
            code_commit = self._code_commit
            git = open_for_run(self._repo if self._repo is not None else ".")
            try:
                if code_commit is None:
                    git.require_work_tree("recording a trial")
                options = RunOptions(
                    experiment=(experiment or "").strip() or None,
                    name=usable_run_name(name),
                    params=clean_params(params or {}),
                    tags={k: tag_text(v) for k, v in (tags or {}).items()},
                    code_commit=code_commit,
                    system_metrics=self._system_metrics,
                )
                run = Run(git, options)
            except BaseException:
                release(git)
                raise
            if self._code_commit is None:
                self._code_commit = run.code_commit
        push_active(run)  # registered for interpreter exit...
        pop_active(run)  # ...but active nowhere
        return run


def tag_text(value: Any) -> str:
    """*value* as tag text, cut to `MAX_TAG_CHARS`."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 3] + "..."
