"""Starting runs and the module-level logging calls that act on the active run.

`gitxp.start_run()` inside a process launched by `gitxp run` joins the run
that command created (its id arrives in `GITXP_RUN_ID`), so a script
records into one run whether it is started by hand or through the CLI.

Which run is active is kept per thread and asyncio task by
`gitxp.tracking.context`; the functions here act on that run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NoActiveRunError
from . import context
from .options import RunOptions, options_from
from .ranks import ZERO, detect

if TYPE_CHECKING:
    from .ranks import Rank
    from .run import Run

Where = str | os.PathLike[str] | None  # a repository as `start_run` takes it

ENV_RUN_ID = "GITXP_RUN_ID"
ENV_RUN_REPO = "GITXP_RUN_REPO"
# set by a `gitxp run` that is itself one rank of a job (`srun gitxp run ...`): that rank
ENV_RUN_RANK = "GITXP_RUN_RANK"


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    notes: str | None = None,
    repo: str | os.PathLike[str] | None = None,
    *,
    checkpoint_seconds: float | None = None,
    buffer_points: int | None = None,
    snapshot: bool = True,
    max_snapshot_file_size: int | None = None,
    system_metrics: bool | None = None,
    system_metrics_seconds: float | None = None,
    ranks: str | None = None,
) -> Run:
    """Start recording a run in the git repository at or above *repo* (default: cwd).

    Use it as a context manager::

        with gitxp.start_run(experiment="iris", params={"lr": 0.1}) as run:
            run.log_metric("loss", 0.5)

    Leaving the block commits the run FINISHED, FAILED on an exception, or
    KILLED on KeyboardInterrupt. Inside a process started by `gitxp run`, the
    run that command created is joined instead of a new one started; the
    given params, tags and notes are added to it.

    With *system_metrics* (default: `$GITXP_SYSTEM_METRICS`), a background
    thread records CPU, memory, disk, network and GPU use every
    *system_metrics_seconds* (default: `$GITXP_SYSTEM_METRICS_SECONDS` or 10)
    as `system/...` metrics until the run ends; see docs/integrations.md.

    In a distributed job (torchrun, Slurm, MPI), *ranks* says which ranks
    record (default: `$GITXP_RANKS` or "zero"): with "zero" only global rank 0
    does and the other ranks get an inert run that accepts every call and
    records nothing; with "all" every rank records a run of its own, tagged
    `rank` and `group`, rank 0's run the parent of the others. See
    docs/distributed.md.
    """
    options = options_from(locals(), besides=("repo",))  # first: locals() are the keywords
    rank = detect()
    joined_id = os.environ.get(ENV_RUN_ID) or None
    if rank is not None and not rank.is_zero and options.ranks == ZERO:
        run = _inert(options, joined_id, repo)
    elif joined_id and (rank is None or rank.is_zero or _own_rank(rank)):
        run = _join(joined_id, options, repo, rank)
    else:
        run = _start_new(options, repo, rank, joined_id)
    if not context.is_active(run):  # a joined run started again in the same context
        context.push_active(run)
    return run


def supervised_run_id(repo: Where = None) -> str | None:
    """The id of the run of `gitxp run` that this process records into, as `start_run` joins
    it; None when there is none: not launched by `gitxp run`, a rank of a job that does not
    record into it, or *repo* (a repository's root) another repository than the run's."""
    joined_id = os.environ.get(ENV_RUN_ID) or None
    if joined_id is None:
        return None
    rank = detect()
    if rank is not None and not (rank.is_zero or _own_rank(rank)):
        return None
    where = os.environ.get(ENV_RUN_REPO)
    if repo is not None and where and os.path.realpath(repo) != os.path.realpath(where):
        return None
    return joined_id


def _own_rank(rank: Rank) -> bool:
    """Whether the run of `gitxp run` is this rank's own (`srun gitxp run ...`), not the
    whole job's (`gitxp run -- torchrun ...`)."""
    return os.environ.get(ENV_RUN_RANK) == str(rank.rank)


def _inert(options: RunOptions, joined_id: str | None, repo: Where) -> Run:
    """The run of a rank that does not record (shared by the process under `gitxp run`)."""
    from .inert import InertRun

    existing = context.find_open(joined_id, InertRun) if joined_id else None
    if existing is not None:
        return existing
    where = os.environ.get(ENV_RUN_REPO) or repo
    return InertRun(options, joined=joined_id, repo=where)


def _join(joined_id: str, options: RunOptions, repo: Where, rank: Rank | None) -> Run:
    """The run of `gitxp run` this process records into (rank 0 of a job it launched)."""
    from ..git.repository import open_for_run, release
    from .run import Run

    if rank is not None and options.ranks != ZERO:
        from .rank_groups import group_id, tagged

        options = tagged(options, rank, group_id())
    # the joined run is shared by every thread and task of the process
    existing = context.find_open(joined_id)
    git = open_for_run(os.environ.get(ENV_RUN_REPO) or repo or ".")
    run = existing or Run(git, options, _join=joined_id)
    if existing is not None:
        release(git)
    _add_to(run, options)
    return run


def _start_new(options: RunOptions, repo: Where, rank: Rank | None, joined_id: str | None) -> Run:
    """A new run: this process's own, or one rank's of a job with `ranks="all"`."""
    from ..git.repository import open_for_run, release
    from .run import Run

    if joined_id:  # a rank other than 0 of a job `gitxp run` launched
        repo = os.environ.get(ENV_RUN_REPO) or repo
    git = open_for_run(repo if repo is not None else ".")
    try:
        if options.snapshot:
            git.require_work_tree("gitxp.start_run()")
        if rank is None or options.ranks == ZERO:
            return Run(git, options)
        from .rank_groups import group_id, start, tagged

        return start(git, tagged(options, rank, group_id()), rank, joined_id)
    except BaseException:
        release(git)
        raise


def _add_to(run: Run, options: RunOptions) -> None:
    """Add the params, tags and notes of *options* to a joined run."""
    if options.params:
        run.log_params(options.params)
    if options.tags:
        run.set_tags(options.tags)
    if options.notes:
        run.note(options.notes)


def active_run() -> Run | None:
    """The innermost run active in this thread or asyncio task and not yet ended, or None.

    A new thread has none (an asyncio task has its creator's). In a process
    launched by `gitxp run`, a context without one joins that command's run.
    """
    run = context.current()
    if run is None and os.environ.get(ENV_RUN_ID):
        return start_run()
    return run


def _require(call: str) -> Run:
    run = active_run()
    if run is None:
        raise NoActiveRunError(call)
    return run


def end_run(status: str = "FINISHED") -> None:
    """End this thread's or task's active run (no-op when there is none)."""
    live = context.live()
    if live:
        live[-1].end(status)


def log_param(key: str, value: Any) -> None:
    """Record one param on the active run."""
    _require("log_param").log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Record several params on the active run."""
    _require("log_params").log_params(params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Record one metric point on the active run."""
    _require("log_metric").log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Record one point per key on the active run."""
    _require("log_metrics").log_metrics(metrics, step, timestamp)


def log_metric_array(
    key: str,
    values: Iterable[float],
    steps: Iterable[int] | None = None,
    timestamps: Iterable[int] | None = None,
) -> None:
    """Record a whole array of points on the active run."""
    _require("log_metric_array").log_metric_array(key, values, steps, timestamps)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _require("set_tag").set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    _require("set_tags").set_tags(tags)


def note(text: str) -> None:
    """Append text to the active run's notes."""
    _require("note").note(text)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
    """Keep a file or directory with the active run (see `Run.log_artifact`)."""
    return _require("log_artifact").log_artifact(path, name)


def log_text(text: str, name: str) -> dict[str, Any]:
    """Keep *text* with the active run as artifact *name* (see `Run.log_text`)."""
    return _require("log_text").log_text(text, name)


def log_dict(value: Any, name: str) -> dict[str, Any]:
    """Keep *value* with the active run as a JSON or YAML artifact (see `Run.log_dict`)."""
    return _require("log_dict").log_dict(value, name)
