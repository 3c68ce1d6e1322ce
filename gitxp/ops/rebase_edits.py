"""Replaying one run's local edits on top of the remote's history (`gitxp pull --rebase-edits`).

When the same run was edited on two clones (a tag here, a note there), its
two histories diverge and neither side can fast-forward. The edits are
small, structured changes to `run.json` and `notes.md`, so they can be
replayed: each local edit commit since the last commit both sides share is
turned back into what it changed (tags set or removed, the name, the trash
marker, the notes) and applied, in order, as a new edit commit on top of
the remote's tip. The remote's edits are kept; where both sides changed the
same tag or the name, the local edit, replayed last, wins. Notes appended on
both sides keep both additions.

Only edits replay. A local commit that changed anything else (a checkpoint,
the end of the run, new metrics or artifacts) makes the run refuse with
`NotReplayableError`, leaving it as it was.
"""

from __future__ import annotations

from typing import Any

from ..errors import GitxpError
from ..format import storage
from ..git.refs import log_ref_value, update_ref
from ..git.repository import GitRepo
from ..store.edit import RunState, edit_run, read_state
from ..store.history import MAX_WALK, run_commits

EDITABLE = ("tags", "name", "removed")  # the run.json fields an edit may change


class NotReplayableError(GitxpError):
    """The local history of a run holds more than edits, or shares nothing with the remote's."""


def _edit_of(git: GitRepo, commit: str) -> tuple[dict[str, Any], RunState, str]:
    """What edit commit *commit* changed: ({field: (before, after)}, its parent's state, detail)."""
    info = git.read_commit(commit)
    parent = info.parents[0]
    before, before_files = read_state(git, parent)
    after, after_files = read_state(git, commit)
    others = {p for p in set(before_files) | set(after_files) if p not in _EDIT_FILES}
    if any(before_files.get(p) != after_files.get(p) for p in others):
        raise NotReplayableError(
            f"local commit {commit[:12]} changed more than tags, name or notes"
        )
    keys = (set(before.meta) | set(after.meta)) - set(EDITABLE)
    if any(before.meta.get(k) != after.meta.get(k) for k in keys):
        raise NotReplayableError(
            f"local commit {commit[:12]} changed the run itself (a checkpoint or its end), "
            "not only tags, name or notes"
        )
    subject = info.message.splitlines()[0] if info.message else ""
    detail = "replayed edit"
    if subject.startswith("gitxp: ") and " on run " in subject:
        detail = subject[len("gitxp: ") : subject.rfind(" on run ")]
    return {k: (before.meta.get(k), after.meta.get(k)) for k in EDITABLE}, before, detail


_EDIT_FILES = frozenset({storage.RUN_FILE, storage.NOTES_FILE})


def _apply(state: RunState, fields: dict[str, Any], before: RunState, after_notes: str) -> None:
    """Apply one edit (what changed from *before*) to *state*, which may already differ."""
    old_tags, new_tags = fields["tags"]
    old_tags, new_tags = old_tags or {}, new_tags or {}
    tags = dict(state.meta.get("tags") or {})
    for key in set(old_tags) | set(new_tags):
        if old_tags.get(key) == new_tags.get(key):
            continue
        if key in new_tags:
            tags[key] = new_tags[key]
        else:
            tags.pop(key, None)
    state.meta["tags"] = tags
    for key in ("name", "removed"):
        old, new = fields[key]
        if old != new:
            if new is None:
                state.meta.pop(key, None)
            else:
                state.meta[key] = new
    if after_notes != before.notes:
        if after_notes.startswith(before.notes) and state.notes != before.notes:
            added = after_notes[len(before.notes) :].lstrip("\n")
            state.notes = f"{state.notes}\n\n{added}" if state.notes else added
        else:
            state.notes = after_notes


def replay_edits(git: GitRepo, ref: str, ours: str, theirs: str, run_id: str) -> tuple[str, int]:
    """Rewrite *ref* (at *ours*) as *theirs* plus the local edits; return (new tip, edit count).

    The ref is moved by compare-and-swap from *ours*; the old local tip is
    kept in the ref's reflog. Raises NotReplayableError, changing nothing,
    when the local commits since the shared history are not all edits.
    """
    shared = set(run_commits(git, theirs, run_id, MAX_WALK))
    local: list[str] = []
    for sha in run_commits(git, ours, run_id, MAX_WALK):
        if sha in shared:
            break
        local.append(sha)
    else:
        raise NotReplayableError("the local and the remote histories of this run share no commit")
    edits = [(*_edit_of(git, sha), read_state(git, sha)[0].notes) for sha in reversed(local)]
    tip = theirs
    for fields, before, detail, after_notes in edits:

        def change(state: RunState, f: Any = fields, b: Any = before, n: str = after_notes) -> None:
            _apply(state, f, b, n)

        tip = edit_run(git, ref, tip, detail, change, move_ref=False)
    log_ref_value(git, ref, ours, "gitxp: the local tip before pull --rebase-edits")
    update_ref(git, ref, ours, tip, f"gitxp: pull --rebase-edits ({len(edits)} edits replayed)")
    return tip, len(edits)
