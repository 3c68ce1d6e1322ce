"""After a push: say when Git LFS content of the pushed runs' snapshots is not on the remote.

A run whose work tree held a changed LFS-tracked file has a snapshot commit
with that file's LFS pointer; its content is in the local LFS store only.
Pushing the run sends the pointer, and nothing sends the content (git-lfs's
pre-push hook sees the pushed branches, not runs), so whoever checks the
run out elsewhere would get a smudge error. `unpushed_lfs_objects` finds
those objects and `lfs_push_advice` says how to send them with `git lfs push`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .._text import count


@dataclass
class LfsCheck:
    """LFS objects the pushed snapshots point to, and which the remote was found to lack.

    *checked* is False when the remote's LFS store is a server gitxp does
    not query (http, ssh): then every object is listed in *missing*.
    """

    remote: str
    checked: bool
    missing: list[str] = field(default_factory=list)
    not_local: list[str] = field(default_factory=list)  # not in this repository's store either


def unpushed_lfs_objects(git: Any, results: Iterable[Any], remote: str | None) -> LfsCheck | None:
    """Check the LFS objects of the snapshots of runs a push sent; None when there are none."""
    from ..git import lfs
    from ..git.remote_config import resolve_remote
    from ..store.record import read_row

    snapshots = []
    for result in results:
        if result.status not in ("new", "updated") or not result.new:
            continue
        row = read_row(git, result.new)
        code = row.get("code_commit")
        if row.get("dirty") and isinstance(code, str) and git.has_object(code):
            snapshots.append(code)
    oids = lfs.snapshot_pointers(git, dict.fromkeys(snapshots))
    if not oids:
        return None
    target = resolve_remote(git, remote, "push")
    theirs = lfs.remote_objects_dir(git, target)
    mine = lfs.local_objects_dir(git)
    check = LfsCheck(target.display, theirs is not None)
    for oid in sorted(oids):
        if theirs is None or not os.path.isfile(lfs.object_path(theirs, oid)):
            check.missing.append(oid)
            if not os.path.isfile(lfs.object_path(mine, oid)):
                check.not_local.append(oid)
    return check


def lfs_push_advice(check: LfsCheck) -> str | None:
    """What to tell a person about *check*; None when the remote has everything."""
    if not check.missing:
        return None
    remote = shlex.quote(check.remote)
    command = f"git lfs push --object-id {remote} {' '.join(check.missing)}"
    if check.checked:
        text = (
            f"{count(len(check.missing), 'LFS object')} of the pushed snapshots "
            f"{'is' if len(check.missing) == 1 else 'are'} not on {check.remote}: run "
            f"`{command}` (or `git lfs push --all {remote}`)"
        )
    else:
        text = (
            f"the pushed snapshots point to {count(len(check.missing), 'LFS object')}; gitxp "
            f"cannot check {check.remote}'s LFS server, so make sure it has them: `{command}`"
        )
    if check.not_local:
        text += (
            f"; {len(check.not_local)} of them not in this repository's LFS store either "
            "(push them from where their content is)"
        )
    return text
