"""Which run a `SummaryWriter` records into: a run of its own, named after its log directory.

Runs a writer starts are never made active, so a second writer never joins
them; the active run (a `with gitxp.start_run()` block) is joined by one
open writer at a time. Writers of one run in this process share its
`SummaryStore`, so their summaries land in one index.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .tensorboard_summaries import SummaryStore

if TYPE_CHECKING:
    from ..tracking.run import Run

log = logging.getLogger("gitxp.integrations.tensorboard_runs")
_LOCK = threading.Lock()
_registered = False
_HELD: dict[str, int] = {}  # run id -> open writers recording into it
_STORES: dict[str, SummaryStore] = {}  # run id -> its summaries, shared by its writers


def claim(run: Run) -> bool:
    """Hold the active *run* for one writer; False when another open writer holds it."""
    with _LOCK:
        if _HELD.get(run.id):
            return False
        _HELD[run.id] = 1
        return True


def hold(run_id: str, put: Callable[[str, bytes], None]) -> SummaryStore:
    """Count one more writer on *run_id* (once claimed or started); its summaries' store."""
    _save_at_exit()
    with _LOCK:
        _HELD[run_id] = max(_HELD.get(run_id, 0), 1)
        return _STORES.setdefault(run_id, SummaryStore(put))


def release(run_id: str) -> None:
    """One writer of *run_id* is closed; the last one forgets the run."""
    with _LOCK:
        left = _HELD.get(run_id, 1) - 1
        if left > 0:
            _HELD[run_id] = left
        else:
            _HELD.pop(run_id, None)
            _STORES.pop(run_id, None)


def new_run(
    repo: str | os.PathLike[str] | None,
    experiment: str | None,
    name: str | None,
    tags: Mapping[str, str],
    parent: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Run:
    """Start a run that is not made active (so other writers never join it)."""
    from ..format.ids import usable_run_name
    from ..git.repository import open_for_run, release
    from ..tracking.options import RunOptions
    from ..tracking.run import Run

    options = RunOptions(
        experiment=experiment,
        name=usable_run_name(name),
        params=params,
        tags=tags,
        extra_meta={"parent": parent} if parent else None,
    )
    from ..tracking import pop_active, push_active

    git = open_for_run(repo if repo is not None else ".")
    try:
        git.require_work_tree("gitxp.tensorboard.SummaryWriter")
        run = Run(git, options)
    except BaseException:
        release(git)
        raise
    # registered with the runs ended at interpreter exit, but not left active
    push_active(run)
    pop_active(run)
    return run


def _save_at_exit() -> None:
    """Save the summary tables of writers never closed, before their runs are ended at exit.

    Registered when the first writer opens, after the exit handler of the runs (which
    the writer's run registers first), so it runs before it: atexit is LIFO.
    """
    global _registered
    with _LOCK:
        if _registered:
            return
        _registered = True
    atexit.register(save_all)


def save_all() -> None:
    """Put the summary tables of every run a writer still has open."""
    with _LOCK:
        stores = list(_STORES.values())
    for store in stores:
        try:
            store.save_tables()
        except Exception as exc:  # exiting: report, never raise
            log.error("gitxp: could not save TensorBoard summaries: %s", exc)


def place(log_dir: str | None) -> tuple[str | None, str | None, str | None]:
    """The run name, experiment and group a log directory gives (None: not given)."""
    if not log_dir:
        return None, None, None
    parts = [p for p in log_dir.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return None, None, None
    parent = "/".join(parts[:-1]) or None
    return parts[-1], (parts[-2] if len(parts) > 1 else None), parent
