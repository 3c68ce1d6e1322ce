"""`gitxp.checkout()`: get a run's exact code back, into a new directory or onto a new branch."""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import GitxpError, InvalidValueError, UsageError
from ._repoarg import RepoArg, opened


@dataclass(frozen=True)
class CheckoutResult:
    """Where a run's code went, and where any saved work is."""

    run_id: str
    name: str
    code_commit: str
    path: str | None = None
    branch: str | None = None
    files: int = 0
    saved_ref: str | None = None
    restore_hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkout(
    run: str,
    path: str | os.PathLike[str] | None = None,
    branch: str | None = None,
    *,
    force: bool = False,
    repo: RepoArg = ".",
) -> CheckoutResult:
    """Materialise a run's code commit (uncommitted-changes snapshot included).

    With *path*: write its files into a new or empty directory (your work
    tree is not touched). With *branch*: create that branch at the code
    commit and switch to it; uncommitted work makes this fail, listing the
    files, unless *force*, which saves the work to `refs/gitxp/saved/...`
    first and says how to get it back.

        gitxp.checkout("swift-otter-42", path="/tmp/otter")
        gitxp.checkout("swift-otter-42", branch="try-otter")
    """
    from ..git.checkout import materialize, switch_to_new_branch

    if (path is None) == (branch is None):
        where = "give one of them, not both" if path is not None else "say where the code goes"
        raise UsageError(
            f"checkout: {where}: --path DIR (path=) writes a copy and leaves your work tree "
            f"alone, -b BRANCH (branch=) switches to a new branch at the run's code; "
            f"e.g. gitxp checkout {shlex.quote(run) if isinstance(run, str) else 'RUN'} "
            "--path ../code-copy"
        )
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InvalidValueError("path", f"{path!r}: give the directory to write the code into")
    if branch is not None and (not isinstance(branch, str) or not branch.strip()):
        raise InvalidValueError("branch", f"{branch!r}: give the new branch's name")
    with opened(repo) as r:
        if branch is not None:
            r.git.require_work_tree("gitxp checkout -b")
        record = r.run(run)
        code = record.code_commit
        if not code or not r.git.has_object(code):
            raise GitxpError(
                f"run {record.id} has no code commit in this repository"
                + (f" ({code[:12]} is missing; fetch it with `gitxp pull`)" if code else "")
            )
        if path is not None:
            target = os.path.abspath(os.fspath(path))
            count = materialize(r.git, code, target)
            return CheckoutResult(record.id, record.name, code, path=target, files=count)
        assert branch is not None
        # where to go back to: the branch HEAD is on now, or its detached commit
        head, on_branch = r.git.head(), r.git.head_branch()
        if head is None:
            back = None
        elif on_branch:
            back = f"git switch {on_branch}"
        else:
            back = f"git switch --detach {head}"
        saved = switch_to_new_branch(r.git, branch, code, force=force)
        hint = None
        if saved:
            restore = f"git checkout {saved} -- . && git reset -q"
            hint = f"{back} && {restore}" if back else restore
        return CheckoutResult(
            record.id, record.name, code, branch=branch, saved_ref=saved, restore_hint=hint
        )
