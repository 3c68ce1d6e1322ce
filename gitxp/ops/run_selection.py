"""Which runs a push or fetch is about: named runs, an experiment's, or all of them.

A push picks local runs (by id, unique id prefix or name, or by
experiment); a fetch picks runs among those the remote advertises, named
as a push would name them, or by an id prefix of a run not known here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import AmbiguousRunError, RunNotFoundError, UsageError
from ..git.refs import RUNS_PREFIX, list_refs

if TYPE_CHECKING:
    from ..git.repository import GitRepo
    from ..store.repo import Repo


def run_id_of(ref: str) -> str:
    """The run id of run ref *ref* (`refs/gitxp/runs/<id>`)."""
    return ref[len(RUNS_PREFIX) :]


def local_selection(
    r: Repo, runs: Sequence[str] | None, experiment: str | Sequence[str] | None, all: bool
) -> dict[str, str]:
    """{ref: commit} of the local runs a push is about."""
    if isinstance(runs, str):
        runs = [runs]
    if all and (runs or experiment):
        raise UsageError("all=True (--all) cannot be combined with runs or an experiment")
    if runs:
        selected: dict[str, str] = {}
        for text in runs:
            ref, sha = r.resolve(text)
            selected[ref] = sha
        if experiment:
            wanted = {experiment} if isinstance(experiment, str) else set(experiment)
            rows = {row["ref"]: row for row in r.rows(experiment=list(wanted))}
            selected = {k: v for k, v in selected.items() if k in rows}
        return selected
    if experiment:
        wanted_exp = [experiment] if isinstance(experiment, str) else list(experiment)
        return {row["ref"]: row["commit"] for row in r.rows(experiment=wanted_exp)}
    return all_runs(r.git)


def all_runs(git: GitRepo) -> dict[str, str]:
    """{ref: commit} of every local run (packed and loose refs)."""
    from ..store.pending import publish_pending

    publish_pending(git.git_dir)
    return list_refs(git, RUNS_PREFIX)


def remote_matcher(r: Repo, runs: Sequence[str] | None) -> Callable[[dict[str, str]], list[str]]:
    """A function picking, from the remote's run refs, those *runs* names (None: all)."""
    if runs is None:
        return lambda refs: sorted(refs)
    if isinstance(runs, str):
        runs = [runs]

    def match(refs: dict[str, str]) -> list[str]:
        chosen: list[str] = []
        for text in runs:
            try:
                ref, _ = r.resolve(text)  # a run we know locally: by id, prefix or name
                chosen.append(ref)
                continue
            except RunNotFoundError:
                pass
            key = text.strip()
            key = key[len(RUNS_PREFIX) :] if key.startswith(RUNS_PREFIX) else key
            if RUNS_PREFIX + key in refs:
                chosen.append(RUNS_PREFIX + key)
                continue
            hits = [ref for ref in refs if len(key) >= 4 and run_id_of(ref).startswith(key.lower())]
            if len(hits) > 1:
                raise AmbiguousRunError(key, sorted(run_id_of(h) for h in hits))
            if not hits:
                raise RunNotFoundError(key)
            chosen.append(hits[0])
        return list(dict.fromkeys(chosen))

    return match
