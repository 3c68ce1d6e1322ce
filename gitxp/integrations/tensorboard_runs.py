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
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .tensorboard_summaries import ROOT, SummaryStore

if TYPE_CHECKING:
    from ..tracking.run import Run

log = logging.getLogger("gitxp.integrations.tensorboard_runs")
_LOCK = threading.Lock()
_registered = False
_HELD: dict[str, int] = {}  # run id -> open writers recording into it
_STORES: dict[str, SummaryStore] = {}  # run id -> its summaries, shared by its writers
_TREES: dict[str, str] = {}  # run id -> the temporary directory its summaries are put in
_RUNS: dict[str, Run] = {}  # run id -> the run, while a store is kept for it


def claim(run: Run) -> bool:
    """Hold the active *run* for one writer; False when another open writer holds it."""
    with _LOCK:
        if _HELD.get(run.id):
            return False
        _HELD[run.id] = 1
        return True


def hold(run: Run) -> SummaryStore:
    """Count one more writer on *run* (once claimed or started); its summaries' store.

    The store puts files in a temporary directory and publishes it as the
    run's `tensorboard` artifact (one directory, as an import logs it): a
    summary costs a file write, the artifact is logged when the tables are
    saved. A run's store lives as long as the run, so writers one after
    another on the active run add to the same artifact.
    """
    _save_at_exit()
    with _LOCK:
        _HELD[run.id] = max(_HELD.get(run.id, 0), 1)
        store = _STORES.get(run.id)
        if store is None:
            tree = tempfile.mkdtemp(prefix="gitxp-tensorboard-")
            store = SummaryStore(_writer_to(tree), lambda: _publish(run, tree))
            _STORES[run.id], _TREES[run.id], _RUNS[run.id] = store, tree, run
        return store


def _writer_to(tree: str) -> Callable[[str, bytes], None]:
    def put(path: str, data: bytes) -> None:
        target = os.path.join(tree, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)

    return put


def _publish(run: Run, tree: str) -> None:
    if os.path.isdir(os.path.join(tree, ROOT)):
        run.log_artifact(os.path.join(tree, ROOT), ROOT)


def release(run: Run, ended: bool) -> None:
    """One writer of *run* is closed; forget the run's store once the run has *ended*."""
    with _LOCK:
        left = _HELD.get(run.id, 1) - 1
        if left > 0:
            _HELD[run.id] = left
            return
        _HELD.pop(run.id, None)
        if not ended:
            return
        _STORES.pop(run.id, None)
        _RUNS.pop(run.id, None)
        tree = _TREES.pop(run.id, None)
    if tree:
        shutil.rmtree(tree, ignore_errors=True)


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
    """Save the summaries of every run that has a store (at exit, before the runs end)."""
    with _LOCK:
        kept = [(_STORES[i], _RUNS[i], _TREES[i]) for i in list(_STORES)]
        _STORES.clear()
        _RUNS.clear()
        _TREES.clear()
    for store, run, tree in kept:
        try:
            if run.status == "RUNNING":
                store.save_tables()
        except Exception as exc:  # exiting: report, never raise
            log.error("gitxp: could not save the TensorBoard summaries of %s: %s", run.id, exc)
        finally:
            shutil.rmtree(tree, ignore_errors=True)


def place(log_dir: str | None) -> tuple[str | None, str | None, str | None]:
    """The run name, experiment and group a log directory gives (None: not given)."""
    if not log_dir:
        return None, None, None
    parts = [p for p in log_dir.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return None, None, None
    # the group is the parent directory as given (absolute stays absolute)
    parent = posixpath.dirname(posixpath.normpath(log_dir.replace("\\", "/"))) or None
    return parts[-1], (parts[-2] if len(parts) > 1 else None), parent
