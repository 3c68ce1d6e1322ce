"""Sharing runs through any git remote: `push`, `fetch`/`pull`, and the refspecs for plain git.

Each run is one ref, `refs/gitxp/runs/<id>`, so runs recorded on different
machines never collide. What can differ is one run's history on two sides
(a run continued, edited or re-tagged on one machine). gitxp compares the
two tips per run:

- same commit: ``up-to-date``;
- one side's tip is an ancestor of the other's (a fast-forward: one side
  simply has more checkpoints or edits): the side that is behind is
  ``updated`` (a push never moves a remote run backwards, a fetch never
  moves a local run backwards);
- diverged: ``rejected``, both sides left as they were, unless
  ``force=True``, which makes the receiving side take the sender's tip.

Every push is one connection and one pack holding only the objects the
remote lacks; every fetch is one negotiation and one pack. A push or fetch
that fails half-way leaves both sides consistent (git only moves a ref once
its objects are stored) and is retried by running it again.

Without `runs` or `experiment`, `push` considers every local run (`all`
says so explicitly): runs the remote already has cost one line of the
remote's ref advertisement and nothing else, so "push everything" is also
the cheapest way to push "whatever is missing".
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._text import count
from ..errors import GitxpError, RefUpdateError, RemoteError, RunNotFoundError
from ..format import storage
from ..format.listing_index import INDEX_PREFIX
from ..git.completeness import Arrivals, incomplete_runs
from ..git.incoming import Incoming
from ..git.packed_refs import create_refs
from ..git.refs import RUNS_PREFIX, log_ref_value, update_ref
from ..git.remote import fetch as _fetch_objects
from ..git.remote import push as _push_objects
from ..git.remote_config import Remote, resolve_remote
from ..git.tags import TAGS_PREFIX
from ..store.history import is_ancestor, run_commits
from ._repoarg import opened
from .index_sharing import IndexFetch, IndexPush
from .remote_setup import SetupResult as SetupResult  # re-exported: callers find them here
from .remote_setup import setup_remote as setup_remote
from .run_selection import all_runs, local_selection, remote_matcher
from .run_selection import run_id_of as _run_id
from .tag_sharing import SharingResults, TagFetch, TagPush, TagResult, count_statuses

if TYPE_CHECKING:
    from ..git.repository import GitRepo

log = logging.getLogger("gitxp.ops.sharing")
Progress = Callable[[str], None]
STATUSES = ("new", "updated", "up-to-date", "rejected", "error")
NEIGHBOUR_RUNS = 16
NEIGHBOUR_DEPTH = 64
# how many of the remote's newest runs are looked for here, to find NEIGHBOUR_RUNS of them:
# a clone holding few of a remote's 100,000 runs must not probe its store 100,000 times
NEIGHBOUR_PROBES = 256


@dataclass(frozen=True)
class RefResult:
    """What a push or fetch did to one run's ref.

    *status* is one of ``new``, ``updated``, ``up-to-date``, ``rejected``,
    ``error``; *message* explains anything but a plain success. *old* and
    *new* are the receiving side's commit ids before and after (None: absent).
    """

    run_id: str
    ref: str
    status: str
    message: str = ""
    old: str | None = None
    new: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ref": self.ref,
            "status": self.status,
            "message": self.message,
            "old": self.old,
            "new": self.new,
        }


# -- push ---------------------------------------------------------------------------------
def push(
    repo: Any = ".",
    remote: str | None = None,
    runs: Sequence[str] | None = None,
    experiment: str | Sequence[str] | None = None,
    all: bool = False,
    force: bool = False,
    artifacts: bool = False,
    progress: Progress | None = None,
    dry_run: bool = False,
    reindex: bool = False,
) -> SharingResults[RefResult]:
    """Push runs to *remote* (a remote name, URL or path; None: as git chooses).

    *runs* names runs by id, unique id prefix or name; *experiment* selects
    an experiment's runs; with neither, every local run is pushed. A run
    whose remote history diverged from the local one is ``rejected`` unless
    *force*. With *artifacts*, large artifacts of the pushed runs are
    uploaded to the artifact store first, so no remote run ever points at
    an artifact nobody can download. With *dry_run*, the remote's refs are
    read and compared but nothing is uploaded or changed: the results say
    what a push would do. Returns one `RefResult` per run, in run-id order,
    whose `tags` attribute lists a `TagResult` per model registry tag of
    those runs (a tag the remote lacks is created there; one it holds with
    other contents is a ``conflict`` and left alone); raises `RemoteError`
    when the remote cannot be used. The rows of the runs sent go into the
    remote's listing index (`gitxp.ops.index_sharing`); with *reindex*, the
    rows of every run of the push, so an index missing some gets them.
    """
    with opened(repo if repo is not None else ".") as r:
        git = r.git
        target = resolve_remote(git, remote, "push")
        local = local_selection(r, runs, experiment, all)
        if not local:
            return SharingResults()
        if artifacts and not dry_run:
            from ..store.artifacts import upload_artifacts

            upload_artifacts(r, sorted(local.values()), target, progress=progress)
        pushing = _Push(git, local, force, dry_run, reindex)
        if progress:
            progress(f"pushing {count(len(local), 'run')} to {target.display}\n")
        outcome = _push_objects(git, target, pushing.decide, pushing.relevant_haves, progress)
        if not dry_run:
            pushing.index.finish(target, outcome.errors)
        return pushing.results_after(outcome.errors)


class _Push:
    """What one push decides, once the remote has said what it has: which of the
    *local* runs ({ref: tip}) to update there, and which of its commits to
    negotiate against. `results` holds one `RefResult` per local run."""

    def __init__(
        self, git: GitRepo, local: dict[str, str], force: bool, dry_run: bool, reindex: bool
    ) -> None:
        self.git = git
        self.local = local
        self.force = force
        self.dry_run = dry_run
        self.results: dict[str, RefResult] = {}
        self.updating: set[str] = set()  # the refs the push sets on the remote
        self.tags = TagPush(git, local)
        self.index = IndexPush(git, local, reindex)

    def decide(self, remote_refs: dict[str, str]) -> dict[str, str]:
        """The run refs to set on the remote ({ref: local tip}); none on a dry run."""
        updates: dict[str, str] = {}
        for ref, ours in sorted(self.local.items()):
            result = self._compare(ref, ours, remote_refs.get(ref))
            self.results[ref] = result
            if result.status in ("new", "updated"):
                updates[ref] = ours
        status = {ref: result.status for ref, result in self.results.items()}
        updates.update(self.tags.decide(remote_refs, status))
        if self.dry_run:
            return {}
        updates.update(self.index.decide(remote_refs, status))
        self.updating.update(updates)
        return updates

    def _compare(self, ref: str, ours: str, theirs: str | None) -> RefResult:
        """What pushing local tip *ours* over the remote's *theirs* (None: absent) does."""
        run_id = _run_id(ref)
        if theirs is None:
            return RefResult(run_id, ref, "new", "", None, ours)
        if theirs == ours:
            return RefResult(run_id, ref, "up-to-date", "", theirs, ours)
        if is_ancestor(self.git, theirs, ours, run_id):
            return RefResult(run_id, ref, "updated", "fast-forward", theirs, ours)
        if self.force:
            replaced = f"forced: the remote's {theirs[:12]} was replaced"
            return RefResult(run_id, ref, "updated", replaced, theirs, ours)
        why = _push_rejection(self.git, theirs, ours, run_id)
        return RefResult(run_id, ref, "rejected", why, theirs)

    def relevant_haves(self, remote_refs: dict[str, str]) -> tuple[list[str], list[str]]:
        """The remote commits to negotiate against, and the run commits whose trees'
        objects count as present there (see `gitxp.git.remote.push`)."""
        # Negotiate against branches and tags (where code commits live),
        # the remote tips of the runs being updated, and the newest runs
        # (their trees hold the blobs a new run most likely shares: the
        # same env.json, the same small artifacts); walking every one of
        # 10,000 remote runs would cost more than it could save.
        git = self.git
        haves = [sha for ref, sha in remote_refs.items() if not ref.startswith("refs/gitxp/")]
        haves += [remote_refs[ref] for ref in self.updating if ref in remote_refs]
        haves += self.index.haves(remote_refs)
        neighbours = []
        runs = (r for r in remote_refs if r.startswith(RUNS_PREFIX))
        for ref in heapq.nlargest(NEIGHBOUR_PROBES, runs):  # run ids sort by time
            if git.has_object(remote_refs[ref]):
                neighbours.append(remote_refs[ref])
                if len(neighbours) >= NEIGHBOUR_RUNS:
                    break
        haves += neighbours
        negotiated = set(haves)
        trees = []
        for ref, sha in remote_refs.items():
            if sha in negotiated and ref.startswith(RUNS_PREFIX):
                trees += run_commits(git, sha, _run_id(ref), NEIGHBOUR_DEPTH)
        return haves, trees

    def results_after(self, errors: dict[str, str]) -> SharingResults[RefResult]:
        """The results in run-id order, the refs the remote refused (*errors*) as ``error``;
        the registry tags' results in `tags`."""
        for ref, error in errors.items():
            if ref in self.results:
                old = self.results[ref]
                self.results[ref] = RefResult(
                    old.run_id,
                    ref,
                    "error",
                    f"the remote refused it: {error}; fix the cause and push again",
                    old.old,
                )
        runs = [self.results[ref] for ref in sorted(self.results)]
        return SharingResults(runs, self.tags.results_after(errors))


def _push_rejection(git: GitRepo, theirs: str, ours: str, run_id: str) -> str:
    if not git.has_object(theirs):
        return (
            "the remote has commits of this run that are not here; `gitxp pull` first "
            "(push --force would replace them)"
        )
    if is_ancestor(git, ours, theirs, run_id):
        return "the remote has newer commits of this run; `gitxp pull` to get them"
    return (
        "this run's history differs on the remote; `gitxp pull --rebase-edits` replays "
        "your tag/note edits on theirs (then push), push --force replaces theirs"
    )


# -- fetch / pull ---------------------------------------------------------------------------
def fetch(
    repo: Any = ".",
    remote: str | None = None,
    runs: Sequence[str] | None = None,
    force: bool = False,
    artifacts: bool = False,
    progress: Progress | None = None,
    rebase_edits: bool = False,
) -> SharingResults[RefResult]:
    """Fetch runs from *remote* (a remote name, URL or path; None: as git chooses).

    Every run on the remote is fetched unless *runs* names some (id, id
    prefix, or name of a run known locally). A run that exists on both sides
    with diverged histories is ``rejected`` and the local one kept, unless
    *force*, which takes the remote's (the old tip stays in the reflog), or
    *rebase_edits*, which replays the local tag/name/note edits on top of the
    remote's history (see `gitxp.ops.rebase_edits`). With *artifacts*, the large artifacts of the fetched runs are downloaded
    from their store into the local one too.

    `pull` is this same function: runs are never merged into anything, so a
    pull of runs is a fetch.

    The model registry tags of the fetched runs come too (the `tags`
    attribute of the result lists them): a tag is created here only when its
    name is new here and it tags a commit in the local history of a run this
    fetch chose; a local tag is never replaced (a different one of the same
    name on the remote is a ``conflict``, said in one line).
    """
    with opened(repo if repo is not None else ".") as r:
        git = r.git
        keep = Incoming(git)  # the fetched packs stay kept (.keep) until their refs exist
        try:
            target = resolve_remote(git, remote, "fetch")
            choice = _FetchChoice(all_runs(git), remote_matcher(r, runs), TagFetch(git))
            choice.index = IndexFetch(git)
            if progress:
                progress(f"fetching runs from {target.display}\n")
            _receive(git, target, choice, progress, keep)
            results = _set_fetched(git, target, choice, force, rebase_edits)
            tags: list[TagResult] = []
            if choice.tags.wanted or choice.tags.same:  # else no need to list the runs again
                tips = {ref: sha for ref, sha in all_runs(git).items() if ref in choice.plan}
                tags = choice.tags.apply(tips, target.display)
            choice.index.apply(target.display)
            keep.release()
            if artifacts:
                from ..store.artifacts import download_artifacts

                commits = [x.new for x in results if x.status != "error" and x.new]
                download_artifacts(r, commits, target, progress=progress)
            return SharingResults(results, tags)
        finally:
            keep.release()


pull = fetch


class _FetchChoice:
    """The runs one fetch takes: `plan` maps each chosen run ref to the remote's tip,
    filled in once the remote has said what it has; `local` is {ref: tip} here;
    `tags` picks the registry tags that come along."""

    def __init__(
        self,
        local: dict[str, str],
        matcher: Callable[[dict[str, str]], list[str]],
        tags: TagFetch,
    ) -> None:
        self.local = local
        self.matcher = matcher
        self.tags = tags
        self.index: IndexFetch | None = None
        self.plan: dict[str, str] = {}

    def choose(self, remote_refs: dict[str, str]) -> list[str]:
        """The objects to download: the remote tips of the chosen runs that differ here,
        and the registry tags not held here as they are there."""
        runs = {ref: sha for ref, sha in remote_refs.items() if ref.startswith(RUNS_PREFIX)}
        for ref in self.matcher(runs):
            if ref not in runs:
                raise RunNotFoundError(_run_id(ref), ())
            self.plan[ref] = runs[ref]
        index = self.index.choose(remote_refs) if self.index else []
        return list(self.changed().values()) + self.tags.choose(remote_refs) + index

    def heads(self, remote_refs: dict[str, str]) -> list[str]:
        """The local tips of the chosen runs that differ: common ground to negotiate on."""
        local = self.local
        index = self.index.heads() if self.index else []
        heads = [local[ref] for ref, sha in self.plan.items() if ref in local and local[ref] != sha]
        return heads + index

    def changed(self) -> dict[str, str]:
        """{ref: remote tip} of the chosen runs whose remote tip is not the local one."""
        return {ref: sha for ref, sha in self.plan.items() if self.local.get(ref) != sha}


def _receive(
    git: GitRepo, target: Remote, choice: _FetchChoice, progress: Progress | None, keep: Incoming
) -> None:
    """Fetch the objects of the chosen runs from *target*; each run whose history does
    not arrive whole is dropped from the plan with a warning."""
    plan = choice.plan
    arrivals = Arrivals(git)
    try:
        prefixes = (RUNS_PREFIX, TAGS_PREFIX, INDEX_PREFIX)
        _fetch_objects(git, target, choice.choose, choice.heads, prefixes, progress, keep)
    except RemoteError:
        if not choice.changed():
            raise  # failed before the remote said what it has: nothing to isolate
        _isolate_broken(git, target, plan, choice.local, sorted(choice.changed()), progress, keep)
    changed = choice.changed()  # the others are the local tips already
    for ref, sha in list(changed.items()):
        if not git.has_object(sha):  # the remote did not send what it advertised
            _skip_broken(target, ref, plan, "the remote did not send it")
            del changed[ref]
    for ref, why in incomplete_runs(
        git, arrivals, changed, choice.local.values(), storage.TRAILER_RUN
    ).items():
        _skip_broken(target, ref, plan, why)  # a lying pack: its tip came, not all below


def _set_fetched(
    git: GitRepo, target: Remote, choice: _FetchChoice, force: bool, rebase_edits: bool
) -> list[RefResult]:
    """Set the local refs of the fetched runs; one `RefResult` per run, in run-id order.

    New runs are created in one packed-refs write; the others move one
    compare-and-swap each, when that loses nothing (see `_apply`).
    """
    local = choice.local
    created = {ref: sha for ref, sha in choice.plan.items() if ref not in local}
    failed = create_refs(git, created)
    results = []
    for ref, theirs in sorted(choice.plan.items()):
        if local.get(ref) == theirs:  # most runs of a fetch, at 100,000
            results.append(RefResult(_run_id(ref), ref, "up-to-date", "", theirs, theirs))
        elif ref not in created:
            results.append(_apply(git, ref, local.get(ref), theirs, force, target, rebase_edits))
        elif ref in failed:
            results.append(RefResult(_run_id(ref), ref, "error", failed[ref], None, None))
        else:
            results.append(RefResult(_run_id(ref), ref, "new", "", None, theirs))
    return results


def _isolate_broken(
    git: GitRepo,
    target: Remote,
    plan: dict[str, str],
    local: dict[str, str],
    refs: list[str],
    progress: Progress | None,
    keep: Incoming,
) -> None:
    """Fetch *refs* of *plan* again in halves, until each run that cannot be fetched is alone.

    A remote run whose history is incomplete (a parent or tree missing
    there) makes the remote abort the whole pack. Halving the set of runs
    finds the broken ones in about 2·k·log2(n) fetches for k broken runs
    among n; each is dropped from *plan* with a warning and the rest
    arrive. A failure before the remote's refs were read (the remote went
    away) is raised: that is not one run's fault.
    """
    halves = [refs[: len(refs) // 2], refs[len(refs) // 2 :]] if len(refs) > 1 else [refs]
    for part in halves:
        if not part:
            continue
        asked = [False]

        def choose(
            remote_refs: dict[str, str], part: list[str] = part, asked: list[bool] = asked
        ) -> list[str]:
            asked[0] = True
            return [plan[ref] for ref in part if remote_refs.get(ref) == plan[ref]]

        def heads(remote_refs: dict[str, str], part: list[str] = part) -> list[str]:
            return [local[ref] for ref in part if ref in local]

        try:
            _fetch_objects(git, target, choose, heads, RUNS_PREFIX, progress, keep)
        except RemoteError as exc:
            if not asked[0]:
                raise
            if len(part) == 1:
                _skip_broken(target, part[0], plan, exc.reason)
            else:
                _isolate_broken(git, target, plan, local, part, progress, keep)


def _skip_broken(target: Remote, ref: str, plan: dict[str, str], reason: str) -> None:
    """Drop run *ref* from *plan* and say so: its history cannot be fetched from *target*."""
    sha = plan.pop(ref)
    log.warning(
        "warning: skipped run %s (at %s) from %s: its history there is incomplete or "
        "unreadable (%s); the other runs were fetched; ask whoever pushed it to push it again",
        _run_id(ref),
        sha[:12],
        target.display,
        reason,
    )


def _apply(
    git: GitRepo,
    ref: str,
    ours: str | None,
    theirs: str,
    force: bool,
    target: Remote,
    rebase_edits: bool = False,
) -> RefResult:
    """Move local *ref* to the fetched *theirs* when that loses nothing (or *force*)."""
    run_id = _run_id(ref)
    reason = f"gitxp: fetch from {target.display}"
    try:
        if ours is None:
            update_ref(git, ref, None, theirs, reason)
            return RefResult(run_id, ref, "new", "", None, theirs)
        if ours == theirs:
            return RefResult(run_id, ref, "up-to-date", "", ours, ours)
        if is_ancestor(git, theirs, ours, run_id):
            return RefResult(
                run_id,
                ref,
                "up-to-date",
                "the local run has newer commits; `gitxp push` them",
                ours,
                ours,
            )
        if is_ancestor(git, ours, theirs, run_id):
            update_ref(git, ref, ours, theirs, reason + " (fast-forward)")
            return RefResult(run_id, ref, "updated", "fast-forward", ours, theirs)
        if force:
            log_ref_value(git, ref, ours, "gitxp: the local tip before a forced fetch")
            update_ref(git, ref, ours, theirs, f"{reason} (forced, was {ours})")
            return RefResult(
                run_id,
                ref,
                "updated",
                f"forced: the local {ours[:12]} was replaced (see `git reflog {ref}`)",
                ours,
                theirs,
            )
        if rebase_edits:
            from .rebase_edits import replay_edits

            tip, n = replay_edits(git, ref, ours, theirs, run_id)
            return RefResult(
                run_id,
                ref,
                "updated",
                f"{count(n, 'local edit')} replayed on the remote's history; "
                "`gitxp push` publishes them",
                ours,
                tip,
            )
        return RefResult(
            run_id,
            ref,
            "rejected",
            f"this run's history differs on the remote ({theirs[:12]}); local kept; "
            "`gitxp pull --rebase-edits` replays your tag/note edits on theirs, "
            "`--force` takes theirs",
            ours,
            ours,
        )
    except GitxpError as exc:  # RefUpdateError, or edits that cannot be replayed
        if not isinstance(exc, RefUpdateError):
            return RefResult(run_id, ref, "rejected", f"not rebased: {exc}; local kept", ours, ours)
        return RefResult(run_id, ref, "error", str(exc), ours, ours)


def summarize(results: Iterable[RefResult]) -> dict[str, int]:
    """Count results per status (every status present, in a fixed order)."""
    return count_statuses(results, STATUSES)


__all__ = [
    "RefResult",
    "SetupResult",
    "fetch",
    "is_ancestor",
    "pull",
    "push",
    "setup_remote",
    "summarize",
]
