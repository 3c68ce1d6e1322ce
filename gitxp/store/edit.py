"""Changing a committed run: a new commit on its ref, so the run's own history shows every change.

Tags, notes, the name and the trash marker live in `run.json` and
`notes.md`. An edit copies the tip's tree, changes those two files, and
commits the result with the tip as parent (never rewriting history), then
moves the ref with a compare-and-swap, so an edit racing another edit
fails cleanly instead of losing one of them. A run that is still being
recorded is refused: its own process rewrites run.json at every checkpoint.
So is a run whose files fail the schema (CORRUPT) and a run of a newer
format, which this gitxp would rewrite without knowing what it drops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptRunError, GitxpError, RunActiveError, RunNotFoundError
from ..format import schema, storage
from ..format.status import effective_status
from ..git.refs import read_ref, update_ref
from ..git.repository import GitRepo
from .blobs import read_run_file


@dataclass
class RunState:
    """The editable parts of a run: run.json (as a dict) and notes.md (as text)."""

    meta: dict[str, Any]
    notes: str
    params: dict[str, Any]
    summary: dict[str, Any]


def read_state(git: GitRepo, commit_id: str) -> tuple[RunState, dict[str, tuple[int, str]]]:
    """The editable state of the run commit *commit_id* and its full file list."""
    commit = git.read_commit(commit_id)
    files = {path: (mode, sha) for path, mode, sha in git.walk_tree(commit.tree)}
    run_id = commit_id
    try:
        for name in (storage.RUN_FILE, storage.PARAMS_FILE):
            if name not in files:
                raise schema.Invalid(f"missing {name}")
        raw = schema.load_json(
            read_run_file(git, files[storage.RUN_FILE][1], storage.RUN_FILE), storage.RUN_FILE
        )
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            run_id = raw["id"]
        version = schema.meta_format(raw)
        if version > storage.FORMAT_VERSION:
            raise GitxpError(
                f"run {run_id} is in format {version}, newer than this gitxp writes "
                f"(format {storage.FORMAT_VERSION}): it is read-only here; upgrade gitxp "
                "(pip install -U gitxp) to change it"
            )
        meta = schema.check_meta(raw)
        params = schema.check_params(
            schema.load_json(
                read_run_file(git, files[storage.PARAMS_FILE][1], storage.PARAMS_FILE),
                storage.PARAMS_FILE,
            )
        )
        summary: dict[str, Any] = {}
        if storage.SUMMARY_FILE in files:
            summary = schema.check_summary(
                schema.load_json(
                    read_run_file(git, files[storage.SUMMARY_FILE][1], storage.SUMMARY_FILE),
                    storage.SUMMARY_FILE,
                )
            )
        notes = ""
        if storage.NOTES_FILE in files:
            data = read_run_file(git, files[storage.NOTES_FILE][1], storage.NOTES_FILE)
            notes = data.decode("utf-8", "replace").rstrip("\n")
    except schema.Invalid as exc:
        raise CorruptRunError(
            run_id,
            f"{exc}; a CORRUPT run cannot be changed, only removed with `gitxp rm {run_id}`",
        ) from None
    return RunState(meta, notes, params, summary), files


def edit_run(
    git: GitRepo,
    ref: str,
    tip: str,
    detail: str,
    change: Callable[[RunState], None],
    *,
    allow_running: bool = False,
    move_ref: bool = True,
) -> str:
    """Apply *change* to the run at *ref* (expected at *tip*) as one new commit; return its id.

    *detail* names the change in the commit subject ("tag best=yes").
    With *move_ref* false the commit is written but the ref is left alone
    (the caller moves a ref itself, e.g. into the trash).
    """
    if read_ref(git, ref) is None:  # a removed run a model version still names: read-only
        raise RunNotFoundError(
            ref.rsplit("/", 1)[-1],
            note="it was removed; a model version still names it, so it can be read but "
            "not changed",
        )
    state, files = read_state(git, tip)
    if not allow_running and effective_status(state.meta) == "RUNNING":
        raise RunActiveError(str(state.meta.get("id")), detail.split(" ")[0] or "change")
    change(state)
    write = git.write_blob
    files[storage.RUN_FILE] = (0o100644, write(storage.dumps(state.meta)))
    if state.notes.strip():
        files[storage.NOTES_FILE] = (0o100644, write(state.notes.strip().encode() + b"\n"))
    else:
        files.pop(storage.NOTES_FILE, None)
    tree = git.write_tree(files)
    message = storage.commit_message("edit", state.meta, state.params, state.summary, detail)
    commit = git.write_commit(tree, [tip], message, when=time.time())
    if move_ref:
        update_ref(git, ref, tip, commit, message.splitlines()[0])
    return commit
