"""gitxp-push-runs: when code is pushed, push the runs recorded on it to the same remote.

By default the runs whose code commit (or whose snapshot's parent) is one
of the commits this push sends; `push-runs = "all"` in [tool.gitxp.hooks]
pushes every run. A failure is reported but does not stop the code push,
unless `push-failure = "fail"`.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._text import count
from ._common import guarded, hook_parser, parse_in_repo, say
from .config import load_hooks_config

if TYPE_CHECKING:
    from ..git.repository import GitRepo
    from .pushinfo import PushContext

NAME = "push-runs"
# gitxp.ops.sharing.RefResult statuses meaning the run is on the remote now
# (the others are "rejected": diverged, and "error": the remote refused it)
OK_STATUSES = frozenset({"new", "updated", "up-to-date"})


def select_runs(
    rows: Iterable[dict[str, Any]], commits: set[str], heads: dict[str, str | None]
) -> list[str]:
    """Ids of the runs recorded on any of *commits* (a pure function of its arguments).

    *heads* maps a snapshot code commit to its parent, for rows that lack `head`.
    """
    chosen = []
    for row in rows:
        code = row.get("code_commit")
        head = row.get("head") or (heads.get(code) if code and row.get("dirty") else code)
        if code in commits or (row.get("dirty") and head in commits):
            chosen.append(str(row["id"]))
    return sorted(chosen)


def failures(results: Iterable[Any]) -> list[Any]:
    """The RefResults that did not leave the run on the remote."""
    return [r for r in results if str(getattr(r, "status", "")).lower() not in OK_STATUSES]


@guarded(NAME)
def main(argv: Sequence[str] | None = None) -> int:
    """Push the runs of the pushed commits; 0 unless it failed and push-failure = "fail"."""
    parser = hook_parser(
        NAME,
        "Push the runs recorded on the commits being pushed to the same remote.",
        "Examples:\n  gitxp hook push-runs origin             # runs on HEAD's unpushed commits\n"
        "  gitxp hook push-runs --all origin",
    )
    parser.add_argument("remote", nargs="*", help="pre-push arguments: <remote> <url>.")
    parser.add_argument("--all", action="store_true", help="Push every run, not only these.")
    parser.add_argument("--strict", action="store_true", help="Fail the push when this fails.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Say what was pushed.")
    args, git = parse_in_repo(parser, argv)
    if git is None:
        return 0
    with git:
        config = load_hooks_config(git.root, args.config)
        strict = args.strict or config.push_failure == "fail"
        from ..store.repo import Repo

        context = _push_context(git, args.remote)
        rows = Repo(git).rows()
        if not rows or context.target is None:
            return 0
        runs = _runs_to_push(git, rows, context, args.all or config.push_runs == "all")
        if not runs:
            return 0
        try:
            from ..ops.sharing import push

            results = push(
                str(git.root), context.target, runs=runs, artifacts=config.push_artifacts
            )
        except Exception as exc:  # any failure to push runs must not lose the code push
            say(
                NAME,
                f"{'error' if strict else 'warning'}: could not push {count(len(runs), 'run')} "
                f"to {context.target}: {exc}",
            )
            return 1 if strict else 0
        _warn_unpushed_lfs(git, results, context.target)
    return _report(results, runs, context.target, strict, args.verbose)


def _push_context(git: GitRepo, remote: list[str]) -> PushContext:
    """What the push sends where; run by hand, not from a push: HEAD (to origin by default)."""
    from ..git.history import resolve_commit
    from .pushinfo import PushContext, PushedRef, push_context

    context = push_context(git, remote)
    if context.refs:
        return context
    head = resolve_commit(git, "HEAD")
    refs = [PushedRef("HEAD", head, "", git.ids.zero)] if head else []
    target = context.target is None
    return PushContext("origin" if target else context.remote, context.url, refs)


def _runs_to_push(
    git: GitRepo, rows: list[dict[str, Any]], context: PushContext, push_all: bool
) -> list[str]:
    """Ids of every run (*push_all*) or of the runs on the pushed commits, less git's own."""
    from ..git.history import first_parent
    from .pushinfo import pushed_commits

    if push_all:
        runs = sorted(str(r["id"]) for r in rows)
    else:
        commits = pushed_commits(git, context)
        heads = {
            r["code_commit"]: first_parent(git, r["code_commit"])
            for r in rows
            if r.get("dirty") and not r.get("head") and r.get("code_commit")
        }
        runs = select_runs(rows, commits, heads)
    carried = context.carried_runs()  # git's own refspec pushes these right after us
    return [run for run in runs if run not in carried]


def _report(results: list[Any], runs: list[str], target: str, strict: bool, verbose: bool) -> int:
    """Say which runs did not reach *target* (and, *verbose*, what did); the hook's status."""
    bad = failures(results)
    for r in bad:
        say(
            NAME,
            f"{'error' if strict else 'warning'}: run {r.run_id} not pushed to "
            f"{target}: {r.status}{': ' + r.message if r.message else ''}",
        )
    if bad:
        say(NAME, f"push them later with `gitxp push {shlex.quote(target)}`")
        return 1 if strict else 0
    if verbose:
        say(NAME, f"pushed {count(len(runs), 'run')} to {target}")
    return 0


def _warn_unpushed_lfs(git: Any, results: list[Any], remote: str) -> None:
    """Say when Git LFS content of the pushed runs' snapshots is not on the remote."""
    from ..ops.lfs import lfs_push_advice, unpushed_lfs_objects

    try:
        check = unpushed_lfs_objects(git, results, remote)
    except Exception as exc:  # a failed check must not stop the code push
        say(NAME, f"warning: could not check the runs' LFS objects on {remote}: {exc}")
        return
    advice = lfs_push_advice(check) if check is not None else None
    if advice:
        say(NAME, f"warning: {advice}")
