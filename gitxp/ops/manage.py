"""Managing recorded runs: tag, note, rename, remove (recoverably), restore, branch and gc.

Every change to a run is a new commit on its ref (see `gitxp.store.edit`), so
`git log refs/gitxp/runs/<id>` shows who changed what and when. Removing a
run moves its ref to `refs/gitxp/trash/<id>`, which `restore` moves back;
`gc` deletes trash older than a grace period and tidies the object store.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .._text import count
from ..errors import (
    AmbiguousRunError,
    GitxpError,
    InvalidValueError,
    RunActiveError,
    RunNotFoundError,
    UsageError,
)
from ..format.ids import check_run_name
from ..format.status import now_ms
from ..format.storage import FORMAT_VERSION
from ..format.values import check_key, non_negative, to_tag
from ..store.edit import RunState, edit_run
from ..store.trash import trash_run, untrash_run
from ._repoarg import RepoArg, opened

log = logging.getLogger("gitxp.ops.manage")
TRASH_GRACE_DAYS = 14.0


def _who(repo: Any) -> str:
    ident = repo.git.identity()
    return f"{ident.name} <{ident.email}>"


def tag(
    run: str,
    tags: Mapping[str, Any] | None = None,
    remove: Sequence[str] = (),
    *,
    repo: RepoArg = ".",
) -> dict[str, str]:
    """Set and/or remove tags of a committed run; return its tags afterwards.

    gitxp.ops.manage.tag("swift-otter-42", {"best": "yes"}, remove=["draft"])
    """
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidValueError("tags", f"{tags!r}: give a dict of tag names and values")
    if not isinstance(remove, (list, tuple, set, frozenset)) or not all(
        isinstance(k, str) for k in remove
    ):
        raise InvalidValueError("remove", f"{remove!r}: give a list of tag names")
    clean = {check_key("tag", k): to_tag(k, v) for k, v in (tags or {}).items()}
    if not clean and not remove:
        raise UsageError("give at least one KEY=VALUE to set or a key to remove (-d KEY)")
    with opened(repo) as r:
        ref, tip = r.resolve(run)
        result: dict[str, str] = {}

        def change(state: RunState) -> None:
            current = dict(state.meta.get("tags") or {})
            missing = [k for k in remove if k not in current]
            if missing:
                raise InvalidValueError(
                    "tag", f"run {state.meta['id']} has no tag {', '.join(map(repr, missing))}"
                )
            for key in remove:
                current.pop(key, None)
            current.update(clean)
            state.meta["tags"] = current
            result.update(current)

        parts = [f"{k}={v}" for k, v in clean.items()] + [f"-{k}" for k in remove]
        edit_run(r.git, ref, tip, "tag " + " ".join(parts), change)
        return result


def note(run: str, text: str, *, replace: bool = False, repo: RepoArg = ".") -> str:
    """Append a paragraph to a committed run's notes (or replace them); return the notes."""
    if not isinstance(text, str):
        raise InvalidValueError("note", f"notes are text, got {type(text).__name__}")
    text = text.strip()
    if not text and not replace:
        raise UsageError("the note is empty; give some text (or --replace with '' to clear)")
    with opened(repo) as r:
        ref, tip = r.resolve(run)
        result: list[str] = []

        def change(state: RunState) -> None:
            if replace or not state.notes:
                state.notes = text
            else:
                state.notes = f"{state.notes}\n\n{text}"
            result.append(state.notes)

        edit_run(r.git, ref, tip, "replace notes" if replace else "add a note", change)
        return result[0]


def rename(run: str, name: str, *, repo: RepoArg = ".") -> str:
    """Give a committed run a new name; return the old name."""
    name = check_run_name(name)  # also refuses id-like and shell-unsafe names
    with opened(repo) as r:
        ref, tip = r.resolve(run)
        taken = [row["id"] for row in r.rows() if row.get("name") == name and row["ref"] != ref]
        if taken:
            raise InvalidValueError(
                "name", f"{name!r} is already the name of run {taken[0]}; names should be unique"
            )
        old: list[str] = []

        def change(state: RunState) -> None:
            old.append(str(state.meta.get("name")))
            state.meta["name"] = name

        edit_run(r.git, ref, tip, f"rename to {name}", change)
        return old[0]


@dataclass(frozen=True)
class TrashedRun:
    """A run in the trash (or just moved there or back)."""

    id: str
    name: str
    experiment: str
    removed_time: int | None
    removed_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_names(runs: object) -> list[str]:
    """One run (a string) or several (any iterable of strings), as a list."""
    names = [runs] if isinstance(runs, str) else list(runs) if isinstance(runs, Iterable) else None
    if names is None or not all(isinstance(n, str) for n in names):
        raise InvalidValueError("runs", f"{runs!r}: give a run's name or id, or a list of them")
    return names


def rm(runs: str | Iterable[str], *, repo: RepoArg = ".") -> list[TrashedRun]:
    """Move runs to the trash (`refs/gitxp/trash/<id>`); `restore` brings them back.

    They disappear from listings at once; `gc` deletes trash older than its
    grace period (default 14 days).
    """
    from ..git.refs import TRASH_PREFIX

    names = _run_names(runs)
    if not names:
        raise UsageError("name at least one run to remove")
    with opened(repo) as r:
        resolved = [r.resolve(name) for name in names]  # all must exist before any moves
        for ref, _tip in resolved:
            record = r.run(ref.rsplit("/", 1)[-1])
            if record.status == "RUNNING":
                raise RunActiveError(record.id, "remove")
        out = []
        for ref, tip in dict(resolved).items():
            run_id = ref.rsplit("/", 1)[-1]
            record = r.run(run_id)
            if record.corrupt or record.format > FORMAT_VERSION:
                out.append(_move_unreadable(r, ref, TRASH_PREFIX + run_id, tip, "gitxp: rm"))
                continue
            commit = trash_run(r.git, ref, tip, _who(r))
            out.append(_trashed(r.git, commit))
        return out


def _move_unreadable(r: Any, ref: str, target: str, tip: str, message: str) -> TrashedRun:
    """Move a run this gitxp cannot rewrite (CORRUPT, or of a newer format) from *ref* to
    *target* as it is: its files are neither read nor rewritten, and the reflog of
    *target* records when (what `gc` counts its grace period from)."""
    from ..git.maintenance import remove_reflog
    from ..git.refs import delete_ref, read_ref, update_ref

    update_ref(r.git, target, read_ref(r.git, target), tip, message)
    try:
        delete_ref(r.git, ref, tip)
    except GitxpError:
        delete_ref(r.git, target, tip)  # the run moved meanwhile: leave it where it was
        raise
    remove_reflog(r.git, ref)
    run_id = ref.rsplit("/", 1)[-1]
    return TrashedRun(run_id, "", "", now_ms(), _who(r))


def _trashed(git: Any, commit: str) -> TrashedRun:
    """The run in the trash at *commit*; one this gitxp cannot read (CORRUPT, newer format)
    is known by its trash ref's name, removed when that ref's reflog says."""
    from ..git.refs import TRASH_PREFIX, list_refs, reflog_time
    from ..store.edit import read_state

    try:
        state, _ = read_state(git, commit)
    except GitxpError:
        refs = [ref for ref, sha in list_refs(git, TRASH_PREFIX).items() if sha == commit]
        if not refs:
            raise
        return TrashedRun(refs[0].rsplit("/", 1)[-1], "", "", reflog_time(git, refs[0]), None)
    removed = state.meta.get("removed") or {}
    return TrashedRun(
        id=str(state.meta["id"]),
        name=str(state.meta.get("name") or ""),
        experiment=str(state.meta.get("experiment") or ""),
        removed_time=removed.get("time"),
        removed_by=removed.get("by"),
    )


def trash(*, repo: RepoArg = ".") -> list[TrashedRun]:
    """The runs in the trash, most recently removed first."""
    from ..git.refs import TRASH_PREFIX, list_refs

    with opened(repo) as r:
        items = []
        for _ref, sha in list_refs(r.git, TRASH_PREFIX).items():
            try:
                items.append(_trashed(r.git, sha))
            except GitxpError:
                continue
        return sorted(items, key=lambda t: t.removed_time or 0, reverse=True)


def _resolve_trash(r: Any, name: str) -> tuple[str, str]:
    from ..git.refs import TRASH_PREFIX, list_refs

    refs = list_refs(r.git, TRASH_PREFIX)
    text = name.strip().lower()
    hits = [ref for ref in refs if ref.rsplit("/", 1)[-1] == text]
    if not hits and len(text) >= 4:
        hits = [ref for ref in refs if ref.rsplit("/", 1)[-1].startswith(text)]
    if not hits:
        hits = [ref for ref, sha in refs.items() if _trashed(r.git, sha).name == name.strip()]
    if not hits:
        raise RunNotFoundError(name, [])
    if len(hits) > 1:
        raise AmbiguousRunError(name, [h.rsplit("/", 1)[-1] for h in hits])
    return hits[0], refs[hits[0]]


def _readable(git: Any, commit: str) -> bool:
    """Whether this gitxp can rewrite the run at *commit* (not CORRUPT, not a newer format)."""
    from ..store.edit import read_state

    try:
        read_state(git, commit)
    except GitxpError:
        return False
    return True


def restore(runs: str | Iterable[str], *, repo: RepoArg = ".") -> list[TrashedRun]:
    """Bring removed runs back from the trash (by id, id prefix or name)."""
    from ..git.maintenance import remove_reflog
    from ..git.refs import RUNS_PREFIX, delete_ref, read_ref

    names = _run_names(runs)
    if not names:
        raise UsageError("name at least one run to restore (see `gitxp rm --list`)")
    with opened(repo) as r:
        found = [_resolve_trash(r, n) for n in names]
        out = []
        for trash_ref, tip in dict(found).items():
            run_id = trash_ref.rsplit("/", 1)[-1]
            target = RUNS_PREFIX + run_id
            live = read_ref(r.git, target)
            if live is not None:  # an rm or a restore was killed between its two ref updates
                if _interrupted(r.git, live, tip) is None:
                    raise GitxpError(
                        f"run {run_id} exists both as a run and in the trash, with different "
                        f"commits; `gitxp rm {run_id}` keeps the run's in the trash"
                    )
                delete_ref(r.git, trash_ref, tip)  # the run is back as it was: finish the undo
                remove_reflog(r.git, trash_ref)
                out.append(_trashed(r.git, live))
                continue
            if not _readable(r.git, tip):
                out.append(_move_unreadable(r, trash_ref, target, tip, "gitxp: restore"))
                continue

            commit = untrash_run(r.git, trash_ref, tip)
            out.append(_trashed(r.git, commit))
        return out


def _interrupted(git: Any, live: str, trashed: str) -> str | None:
    """What left a run both under refs/gitxp/runs/ (at *live*) and in the trash (*trashed*).

    `rm` writes the trash ref (a removal commit on the run's tip, or the tip
    itself) before it deletes the run ref; `restore` writes the run ref (a
    commit on the trash tip) before it deletes the trash ref. A kill in
    between leaves both: "rm" or "restore" names which, None means the two
    histories differ and neither may be dropped silently.
    """

    def parent(sha: str) -> str | None:
        try:
            parents = git.read_commit(sha).parents
        except (GitxpError, KeyError):
            return None
        return parents[0] if parents else None

    if live == trashed or parent(trashed) == live:
        return "rm"
    if parent(live) == trashed:
        return "restore"
    return None


def _settle(git: Any, run_id: str, trash_sha: str) -> bool:
    """Finish an `rm` or `restore` killed between its two ref updates; True if one was."""
    from ..git.maintenance import remove_reflog
    from ..git.refs import RUNS_PREFIX, TRASH_PREFIX, delete_ref, read_ref

    live = read_ref(git, RUNS_PREFIX + run_id)
    how = None if live is None else _interrupted(git, live, trash_sha)
    if live is None or how is None:
        return False
    ref, sha = (RUNS_PREFIX + run_id, live) if how == "rm" else (TRASH_PREFIX + run_id, trash_sha)
    delete_ref(git, ref, sha)
    remove_reflog(git, ref)
    log.warning("finished the interrupted `gitxp %s` of run %s", how, run_id)
    return True


def branch(run: str, name: str, *, force: bool = False, repo: RepoArg = ".") -> str:
    """Create branch *name* at the run's newest commit; return the full ref name.

    The branch holds the run's files (run.json, params.json, metrics/ ...)
    on top of its code commit, so hosting sites that hide custom refs show
    the run; `git push origin NAME` publishes it. (To work on the run's
    code, use `gitxp checkout RUN -b BRANCH`.)
    """
    from ..git.checkout import create_branch

    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError("branch name", f"{name!r}: give the new branch's name")
    with opened(repo) as r:
        _ref, tip = r.resolve(run)
        return create_branch(r.git, name, tip, force=force)


@dataclass
class GcReport:
    """What `gc` did."""

    deleted: list[TrashedRun]
    kept_in_trash: int
    packs_before: int
    packs_after: int
    loose_before: int
    loose_after: int
    refs_packed: int
    refs_skipped: str | None
    locks_cleared: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deleted"] = [t.to_dict() for t in self.deleted]
        return data


def gc(
    *, grace_days: float = TRASH_GRACE_DAYS, repack: bool = True, repo: RepoArg = "."
) -> GcReport:
    """Delete trash older than *grace_days*, repack objects, pack gitxp's refs when safe.

    One `gitxp gc` runs at a time (`.git/gitxp/gc.pid`, like git's `gc.pid`).
    It first removes lock files a killed process provably left (see
    `gitxp.git.locks`), and pins of runs that now exist. Refs are packed with
    git's lock-compare-delete protocol, so concurrent writers lose nothing;
    they are left loose while a run is being recorded. Objects are never
    deleted here, and unreachable loose objects stay loose (git's grace
    period protects them): `git gc --prune=now` reclaims deleted runs' space.
    """
    from ..git import maintenance
    from ..git.incoming import clear_stale
    from ..git.locks import clear_stale_locks, gc_lock
    from ..git.refs import TRASH_PREFIX, delete_ref, list_refs, read_ref
    from ..store.query import RunIndex

    grace_days = non_negative("grace_days", grace_days, unit="days")
    cutoff = now_ms() - grace_days * 86_400_000
    with opened(repo) as r, gc_lock(r.git):
        cleared = [lock.describe() for lock in clear_stale_locks(r.git)]
        cleared += [f"{keep} (left by a killed fetch)" for keep in clear_stale(r.git)]
        _drop_pins(r.git)
        deleted, kept = [], 0
        for ref, sha in list_refs(r.git, TRASH_PREFIX).items():
            if _settle(r.git, ref[len(TRASH_PREFIX) :], sha) and read_ref(r.git, ref) is None:
                continue  # an interrupted restore, finished: the run is back
            try:
                item = _trashed(r.git, sha)
            except GitxpError:
                kept += 1  # unreadable: leave it for a human (`git log <ref>`)
                continue
            when = item.removed_time or r.git.read_commit(sha).commit_time * 1000
            if when <= cutoff:
                delete_ref(r.git, ref, sha)
                maintenance.remove_reflog(r.git, ref)
                deleted.append(item)
            else:
                kept += 1
        packs, loose = maintenance.object_counts(r.git)
        stats = maintenance.RepackStats(packs, loose, packs, loose)
        if repack:
            stats = maintenance.repack(r.git)
        running = [row["id"] for row in r.rows() if row["status"] == "RUNNING"]
        skipped = None
        packed = 0
        if running:
            skipped = f"{count(len(running), 'run')} still being recorded"
        else:
            packed, skipped = maintenance.pack_gitxp_refs(r.git)
        RunIndex(r.git).rows()  # rewrites the listing cache without the deleted runs
        return GcReport(
            deleted=deleted,
            kept_in_trash=kept,
            packs_before=stats.packs_before,
            packs_after=stats.packs_after,
            loose_before=stats.loose_before,
            loose_after=stats.loose_after,
            refs_packed=packed,
            refs_skipped=skipped,
            locks_cleared=cleared,
        )


PIN_MAX_AGE_SECONDS = 86_400.0


def _drop_pins(git: Any) -> None:
    """Delete pending refs no run needs: its run (or trashed run) exists, or it is a
    day old (the process that made it died before the run's first commit)."""
    from ..git.refs import (
        PENDING_PREFIX,
        RUNS_PREFIX,
        TRASH_PREFIX,
        list_refs,
        read_ref,
        unpin_pending,
    )

    now = time.time()
    for ref, sha in list_refs(git, PENDING_PREFIX).items():
        run_id = ref[len(PENDING_PREFIX) :]
        exists = any(read_ref(git, p + run_id) for p in (RUNS_PREFIX, TRASH_PREFIX))
        try:  # a loose pin's age is its file's; a packed one's, its commit's
            made = os.stat(os.path.join(git.git_dir, *ref.split("/"))).st_mtime
        except OSError:
            try:
                made = git.read_commit(sha).commit_time
            except (GitxpError, KeyError):
                made = 0
        old = now - made > PIN_MAX_AGE_SECONDS
        if exists or old:
            unpin_pending(git, run_id)
