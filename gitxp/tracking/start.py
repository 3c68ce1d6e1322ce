"""Starting a run: a new one (`create`) or one another process created (`join`).

A new run gets its id and name, the code it runs (the work tree's snapshot,
or HEAD, or a commit the caller knows), run.json's first fields (who,
where, which command) and the environment (env.json, written with its
first commit). Joining reads a run back from the tip of its ref: `gitxp
run` creates the run, and the command it starts adds to it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError
from ..format import storage
from ..format.ids import host_name, new_run_id, new_run_name
from ..format.status import now_ms
from ..format.values import check_text
from ..store.writer import RunWriter
from .series import Series, from_summary

if TYPE_CHECKING:
    from ..git.repository import GitRepo
    from ..git.snapshot import Snapshot
    from .options import RunOptions


@dataclass
class Started:
    """A run as it starts: its writer, run.json's fields, params, tags, notes and series."""

    writer: RunWriter
    meta: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    series: dict[str, Series] = field(default_factory=dict)


def create(git: GitRepo, options: RunOptions) -> Started:
    """A new run as *options* describe it; nothing is committed yet (the first commit is the
    caller's), but a snapshot of the work tree is pinned if the first commit waits."""
    from . import environment

    # importers pass the source's start time so the id sorts with the original run
    origin_start = (options.extra_meta or {}).get("start_time")
    run_id = new_run_id(origin_start if isinstance(origin_start, int) else None)
    env_exp = os.environ.get("GITXP_EXPERIMENT") or "default"
    meta: dict[str, Any] = {
        "format": storage.FORMAT_VERSION,
        "id": run_id,
        "name": options.name or new_run_name(),
        "experiment": options.experiment or check_text("GITXP_EXPERIMENT", env_exp).strip(),
        "status": "RUNNING",
        "start_time": now_ms(),
    }
    snap, code_commit = _code(git, options, run_id)
    _describe(meta, git, options, code_commit, snap)
    writer = RunWriter(git, run_id, code_commit)
    env = environment.capture(git.remote_url(), cache_dir=git.gitxp_dir())
    # written with the first commit: until a ref reaches it, git may prune it
    writer.env_data = storage.dumps_env(env)
    if snap and snap.code_commit and snap.code_commit != snap.head and options.start_delay:
        writer.pin(snap.code_commit)  # nothing reaches the snapshot until the first commit
    params, tags = dict(options.params or {}), dict(options.tags or {})
    return Started(writer, meta, params, tags, options.notes or "")


def _code(git: GitRepo, options: RunOptions, run_id: str) -> tuple[Snapshot | None, str | None]:
    """The snapshot of the work tree (None when none is taken) and the run's code commit."""
    if options.code_commit is not None:
        # re-running recorded code (`gitxp reproduce`): the code commit is known
        return None, options.code_commit
    if not options.snapshot:
        return None, git.head()
    from ..git.snapshot import DEFAULT_MAX_FILE_SIZE, take_snapshot

    cap = options.max_snapshot_file_size
    snap = take_snapshot(
        git,
        DEFAULT_MAX_FILE_SIZE if cap is None else cap,
        f"gitxp: snapshot of the work tree for run {run_id}",
    )
    return snap, snap.code_commit


def _describe(
    meta: dict[str, Any],
    git: GitRepo,
    options: RunOptions,
    code_commit: str | None,
    snap: Snapshot | None,
) -> None:
    """Complete run.json of a new run: liveness, who and where, code, command, extra fields."""
    ident = git.identity()
    meta.update(
        end_time=None,
        heartbeat_time=meta["start_time"],
        checkpoint_seconds=options.checkpoint_seconds,
        user=ident.name,
        email=ident.email,
        host=host_name(),
        pid=os.getpid(),
        code_commit=code_commit,
        head=snap.head if snap else code_commit,
        branch=git.head_branch(),
        dirty=bool(snap and snap.dirty),
        command=dict(options.command) if options.command else default_command(git.root),
        tags={},
    )
    if snap is not None and (snap.changed or snap.excluded_count):
        meta["snapshot"] = {
            "changed": snap.changed[:200],
            "changed_count": len(snap.changed),
            "excluded": snap.excluded,
            "excluded_count": snap.excluded_count,
        }
        if snap.unfiltered:  # stored without the filter their attributes name
            meta["snapshot"]["unfiltered"] = snap.unfiltered[:200]
    if options.extra_meta:
        meta.update(options.extra_meta)


def join(git: GitRepo, run_id: str) -> Started:
    """The run *run_id* as its ref's tip has it, to add to (GitxpError if it cannot be read)."""
    return read_back(RunWriter.resume(git, run_id))


def read_back(writer: RunWriter) -> Started:
    """The run *writer* writes, as its last commit has it (after `RunWriter.reload`)."""
    from ..format.schema import Invalid
    from ..store.blobs import read_run_file

    def read(name: str) -> bytes:
        # within the bounds every reader of a run's files keeps (GITXP_MAX_JSON_BYTES)
        try:
            return read_run_file(writer.git, writer.files[name][1], name)
        except Invalid as exc:
            raise GitxpError(f"cannot join run {writer.run_id}: {exc}") from None

    meta = storage.loads(read(storage.RUN_FILE))
    started = Started(writer, meta, storage.loads(read(storage.PARAMS_FILE)))
    started.tags = dict(meta.get("tags") or {})
    if storage.NOTES_FILE in writer.files:
        started.notes = read(storage.NOTES_FILE).decode()
    if writer.files.get(storage.SUMMARY_FILE):
        summary = storage.loads(read(storage.SUMMARY_FILE))
        started.series = {key: from_summary(key, s) for key, s in summary.items()}
    return started


def default_command(root: str) -> dict[str, Any]:
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
